"""Hostile input: fuzzed hparams, non-finite weights, odd shapes (issue 7).

* Random and malformed hparam strings (and override dicts) given to the
  parser and to `Pruning` raise only ValueError (or KeyError for an unknown
  name in a dict, as upstream) with a message, and never hang (hypothesis
  deadline).
* Weights with NaN or +-Inf get a defined mask for every threshold method:
  NaN counts as magnitude 0 (pruned first), +-Inf as the dtype's largest
  finite magnitude (kept first); the threshold is never NaN.
* Empty and scalar weights are refused with a clear error; a 1e9-element
  weight (never initialised) gets its pruning ops built quickly as a small
  graph; one too large for int32 indexing is refused and told to partition.
"""
import datetime
import resource

import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref

_NAMES = sorted(pruning.get_pruning_hparams().values())
_METHODS = ['histogram', 'sort', 'exact']
_DEADLINE = datetime.timedelta(seconds=10)

_atoms = st.one_of(
    st.sampled_from(_NAMES), st.sampled_from(['=', ',', '[', ']', ':', ' ',
                                              'x', '-1', '0', '1.5', '1e400',
                                              'nan', 'inf', 'true', '2:4',
                                              '(', '*', '\\', '\x00', 'é']),
    st.integers(-10**12, 10**12).map(str), st.floats().map(repr),
    st.text(max_size=8))
_hparam_strings = st.one_of(
    st.text(max_size=60),
    st.lists(_atoms, max_size=12).map(''.join),
    st.lists(st.tuples(st.sampled_from(_NAMES), _atoms), max_size=4).map(
        lambda pairs: ','.join('%s=%s' % pair for pair in pairs)),
    st.lists(st.tuples(st.sampled_from(_NAMES),
                       st.lists(_atoms, max_size=4)), max_size=3).map(
        lambda pairs: ','.join('%s=[%s]' % (n, ','.join(v))
                               for n, v in pairs)))


def _build_pruning(hparams):
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('layer') as scope:
      pruning.apply_mask(tf.compat.v1.get_variable('weights', [4, 3]), scope)
    pruning.Pruning(hparams, global_step=step).conditional_mask_update_op()


def _check_error(error):
  assert isinstance(error, (ValueError, KeyError)), repr(error)
  assert str(error).strip(), 'empty message in %r' % error


@hypothesis.settings(max_examples=150, deadline=_DEADLINE)
@hypothesis.given(text=_hparam_strings)
def test_parse_raises_only_value_error(text):
  try:
    pruning.get_pruning_hparams().parse(text)
  except Exception as error:  # pylint: disable=broad-except
    _check_error(error)


@hypothesis.settings(max_examples=60, deadline=_DEADLINE)
@hypothesis.given(text=_hparam_strings)
def test_parsed_hparams_build_pruning_or_raise_value_error(text):
  try:
    hparams = pruning.get_pruning_hparams().parse(text)
    _build_pruning(hparams)
  except Exception as error:  # pylint: disable=broad-except
    _check_error(error)


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6),
                    st.floats(), st.text(max_size=10),
                    st.lists(st.text(max_size=10), max_size=3))


@hypothesis.settings(max_examples=60, deadline=_DEADLINE)
@hypothesis.given(overrides=st.dictionaries(
    st.one_of(st.sampled_from(_NAMES), st.text(max_size=5)), _values,
    max_size=3))
def test_override_dicts_build_pruning_or_raise(overrides):
  try:
    _build_pruning(overrides)
  except Exception as error:  # pylint: disable=broad-except
    _check_error(error)


# --- Non-finite weights --------------------------------------------------------

_NAN_INF = np.array([[0.3, np.nan, -2.0, np.inf],
                     [1.5, -np.inf, 0.7, -0.1],
                     [np.nan, 2.5, -0.9, 1.1],
                     [0.05, -1.7, 0.2, 3.0]], np.float32)


def _update_once(values, method, sparsity, dtype=tf.float32):
  """(threshold, mask) after one mask update of a weight holding `values`."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('layer') as scope:
      weight = tf.compat.v1.get_variable(
          'weights', values.shape, dtype=dtype,
          initializer=tf.compat.v1.constant_initializer(values))
      pruning.apply_mask(weight, scope)
    hparams = pruning.get_pruning_hparams().override_from_dict(dict(
        threshold_method=method, threshold_decay=0.0, seed=1,
        sparsity_function_end_step=10, target_sparsity=sparsity))
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      step.load(10, sess)
      sess.run(update)
      return sess.run([pruning.get_thresholds()[0], pruning.get_masks()[0]])


def _expected(values, method, sparsity):
  if method == 'histogram':
    return ref.magnitude_mask(values, sparsity, 'histogram', nbins=256)
  return ref.magnitude_mask(values, sparsity, 'sort')


@pytest.mark.parametrize('method', _METHODS)
@pytest.mark.parametrize('dtype', [tf.float32, tf.float16],
                         ids=['float32', 'float16'])
def test_nan_and_inf_weights_get_the_documented_mask(method, dtype):
  threshold, mask = _update_once(_NAN_INF, method, 0.5, dtype)
  assert np.isfinite(threshold)
  _, expected = _expected(_NAN_INF, method, 0.5)
  if method == 'histogram':
    # Inf counts as float32 max, so every finite magnitude falls in bin 0:
    # theta = 0 and exactly the non-zero magnitudes survive (NaN does not).
    np.testing.assert_array_equal(expected, ~np.isnan(_NAN_INF))
  np.testing.assert_array_equal(mask, expected)
  # Both infinities are kept, both NaNs pruned, whatever the method.
  assert np.all(mask[np.isinf(_NAN_INF)] == 1)
  assert np.all(mask[np.isnan(_NAN_INF)] == 0)


@pytest.mark.parametrize('method', _METHODS)
def test_all_nan_weight_gets_a_defined_mask(method):
  values = np.full([3, 4], np.nan, np.float32)
  threshold, mask = _update_once(values, method, 0.5)
  assert threshold == 0.0
  if method == 'exact':   # exactly k of the tied zero magnitudes survive
    assert mask.sum() == ref.keep_count(values.size, 0.5)
  else:   # sort keeps all ties at theta = 0; histogram keeps |w| > 0: none
    np.testing.assert_array_equal(mask, _expected(values, method, 0.5)[1])


# --- Shapes ----------------------------------------------------------------------


@pytest.mark.parametrize('shape,needle', [
    ([], 'scalar'), ([0, 5], 'no elements'), ([3, 0, 2], 'no elements'),
    ([100000, 30000], 'partitioner'),
], ids=['scalar', 'empty', 'empty_rank3', 'beyond_int32'])
def test_unprunable_weight_is_refused_with_a_clear_error(shape, needle):
  with tf.Graph().as_default():
    with tf.compat.v1.variable_scope('layer') as scope:
      weight = tf.compat.v1.get_variable(
          'weights', shape, initializer=tf.compat.v1.zeros_initializer())
      with pytest.raises(ValueError, match=needle) as error:
        pruning.apply_mask(weight, scope)
  assert 'layer/weights' in str(error.value)


def test_unknown_shape_is_refused():
  with tf.Graph().as_default():
    weight = tf.compat.v1.placeholder(tf.float32, [None, 4], name='w')
    with pytest.raises(ValueError, match='fully defined static shape'):
      pruning.apply_mask(weight, 'layer')


def _max_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@pytest.mark.parametrize('partitioned,method', [
    (False, 'exact'), (True, 'histogram'),
], ids=['exact', 'partitioned_histogram'])
def test_billion_element_weight_builds_a_small_graph(method, partitioned):
  """Ops for 1e9 weights (4 GB if materialised): built, never run."""
  rss_before = _max_rss_mb()
  with tf.Graph().as_default() as graph:
    step = tf.compat.v1.train.get_or_create_global_step()
    partitioner = (tf.compat.v1.fixed_size_partitioner(8) if partitioned
                   else None)
    with tf.compat.v1.variable_scope('huge', partitioner=partitioner) as scope:
      weight = tf.compat.v1.get_variable(
          'weights', [1000000, 1000],
          initializer=tf.compat.v1.zeros_initializer())
      masked = pruning.apply_mask(weight, scope)
    hparams = pruning.get_pruning_hparams().override_from_dict(dict(
        threshold_method=method))
    update = pruning.Pruning(hparams, global_step=step)
    update.mask_update_op()
    update.conditional_mask_update_op()
    graph_bytes = graph.as_graph_def().ByteSize()
  assert masked.get_shape().as_list() == [1000000, 1000]
  assert graph_bytes < 2 * 1024 * 1024, graph_bytes
  assert _max_rss_mb() - rss_before < 1024
