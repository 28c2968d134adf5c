"""N:M sparsity driven by the Pruning hparams (issue 8, point 1).

`sparsity_m_by_n` and the regex map `m_by_n_map` make `Pruning` build masks
with at most M non-zeros in every N consecutive input channels. Every mask
here is checked three ways: with `nm_sparsity.count_m_by_n_violations`,
against the numpy mask oracle and against the per-group survivor counts the
schedule formula predicts (both in tests/reference.py).
"""

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import check_sparsity
from model_pruning.python import nm_sparsity
from model_pruning.python import pruning
from model_pruning.python.layers import core_layers
from model_pruning.python.layers import layers
from model_pruning.python.layers import rnn_cells
from tests import reference as ref
from tests import log_capture

_FALLBACK = 'falling back to unstructured pruning'


# --- model builders: each returns the kernel variable it creates ------------


def _dense(depth, units=6, name='fc'):
  layer = core_layers.MaskedFullyConnected(units, name=name)
  layer(tf.zeros([2, depth]))
  return layer.kernel


def _dense_fn(depth, units=5):
  layers.masked_fully_connected(tf.zeros([2, depth]), units, scope='fc_fn')
  return pruning.get_weights()[-1]


def _conv(rank, depth, filters=3, kernel_size=2, name='conv'):
  cls = {1: core_layers.MaskedConv1D, 2: core_layers.MaskedConv2D,
         3: core_layers.MaskedConv3D}[rank]
  layer = cls(filters, kernel_size, name=name)
  layer(tf.zeros([1] + [4] * rank + [depth]))
  return layer.kernel


def _conv2d_fn(depth):
  layers.masked_conv2d(tf.zeros([1, 5, 5, depth]), 4, 3, scope='conv_fn')
  return pruning.get_weights()[-1]


def _lstm(input_depth, units=4):
  """Kernel [input_depth + units, 4 * units]: input depth = in + h."""
  cell = rnn_cells.MaskedBasicLSTMCell(units)
  inputs = [tf.zeros([2, input_depth]) for _ in range(2)]
  tf.compat.v1.nn.static_rnn(cell, inputs, dtype=tf.float32)
  return cell.kernel


# (builder, kernel shape); input depth on axis -2, many not a multiple of 4.
_LAYOUTS = {
    'dense_depth10': (lambda: _dense(10), (10, 6)),
    'dense_fn_depth9': (lambda: _dense_fn(9), (9, 5)),
    'conv1d_depth6': (lambda: _conv(1, 6), (2, 6, 3)),
    'conv2d_depth8': (lambda: _conv(2, 8), (2, 2, 8, 3)),
    'conv2d_fn_depth5': (lambda: _conv2d_fn(5), (3, 3, 5, 4)),
    'conv3d_depth7': (lambda: _conv(3, 7), (2, 2, 2, 7, 3)),
    'lstm_depth7': (lambda: _lstm(3), (7, 16)),
}


def _hparams(text='', **overrides):
  """Pruning hparams from a contrib string, then keyword overrides."""
  hparams = pruning.get_pruning_hparams()
  if text:
    hparams = hparams.parse(text)
  return hparams.override_from_dict(overrides)


def _loader(variable):
  """Returns load(session, value) assigning `value` to `variable`."""
  value = tf.compat.v1.placeholder(variable.dtype.base_dtype,
                                   variable.get_shape())
  assign = tf.compat.v1.assign(variable, value)
  return lambda session, array: session.run(assign, {value: array})


class _Run(object):
  """A session over one graph with step, weights and masks at hand."""

  def __init__(self, session, step, update_op):
    self.session = session
    self._set_step = _loader(step)
    self._update_op = update_op
    self._loaders = [_loader(w) for w in pruning.get_weights()]
    session.run(tf.compat.v1.global_variables_initializer())

  def load(self, index, array):
    self._loaders[index](self.session, array)

  def update(self, step):
    """Sets the global step, runs the update op, returns every mask."""
    self._set_step(self.session, step)
    self.session.run(self._update_op)
    return self.session.run(pruning.get_masks())


def _check_m_by_n(mask, weights, keep, n):
  """Asserts the mask keeps exactly min(keep, group) of every N, by |w|."""
  if keep < n:
    assert nm_sparsity.count_m_by_n_violations(mask, keep, n)[1] == 0
  np.testing.assert_array_equal(mask, ref.scheduled_nm_mask(weights, keep, n))
  np.testing.assert_array_equal(
      ref.nonzeros_per_group(mask, n),
      ref.expected_group_counts(weights.shape, n, keep))


# --- layouts: dense, conv 1-D/2-D/3-D, LSTM; partial groups ----------------


@pytest.mark.parametrize('pattern', ['2:4', '1:2'], ids=['2of4', '1of2'])
@pytest.mark.parametrize('layout', sorted(_LAYOUTS), ids=sorted(_LAYOUTS))
def test_every_layout_gets_an_exact_m_by_n_mask(layout, pattern):
  build, shape = _LAYOUTS[layout]
  m, n = nm_sparsity.parse_m_by_n(pattern)
  weights = ref.distinct_weights(shape, seed=len(layout))
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    kernel = build()
    assert kernel.get_shape().as_list() == list(shape)
    hparams = _hparams('sparsity_m_by_n=%s' % pattern, target_sparsity=0.5,
                       initial_sparsity=0.5)
    with log_capture.absl_warnings() as warnings:
      update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    assert not [w for w in warnings if _FALLBACK in w]
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      (mask,) = run.update(step=0)
      masked = sess.run(pruning.get_masked_weights()[0])
  groups, failing = nm_sparsity.count_m_by_n_violations(mask, m, n)
  assert (groups, failing) == (ref.expected_group_counts(shape, n, m).size, 0)
  _check_m_by_n(mask, weights, m, n)
  np.testing.assert_array_equal(masked, weights * mask)


# --- the schedule: gradual, or at once ---------------------------------------


_STEPS = [0, 5, 20, 35, 50, 65, 80, 100, 120]


@pytest.mark.parametrize('layout,pattern,target,exponent', [
    ('conv2d_depth8', '1:4', 0.75, 1),
    ('lstm_depth7', '2:4', 0.5, 3),
    ('dense_depth10', '3:8', 0.6, 2),
], ids=['conv_1of4_linear', 'lstm_2of4_cubic', 'dense_3of8_quadratic'])
def test_gradual_survivors_follow_the_schedule_formula(layout, pattern, target,
                                                       exponent):
  build, shape = _LAYOUTS[layout]
  m, n = nm_sparsity.parse_m_by_n(pattern)
  weights = ref.distinct_weights(shape, seed=3)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    build()
    hparams = _hparams(sparsity_m_by_n=pattern, target_sparsity=target,
                       sparsity_function_exponent=exponent)
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      masks = {t: run.update(step=t)[0] for t in _STEPS}
  visited = []
  for t in _STEPS:
    s = ref.scheduled_sparsity(t, begin_step=0, end_step=100, initial=0.0,
                               target=target, exponent=exponent)
    assert not ref.near_step_boundary(s, target, m, n), t
    keep = ref.keep_per_group(s, target, m, n)
    _check_m_by_n(masks[t], weights, keep, n)
    visited.append(keep)
  # Gradual: every count from N down to M, in order, ending exactly at M:N.
  assert sorted(set(visited), reverse=True) == list(range(n, m - 1, -1))
  assert visited == sorted(visited, reverse=True) and visited[-1] == m


@pytest.mark.parametrize('overrides', [
    dict(initial_sparsity=0.5, target_sparsity=0.5),
    dict(target_sparsity=0.0),
    dict(begin_pruning_step=100, target_sparsity=0.5),
], ids=['constant_schedule', 'zero_target', 'prune_after_schedule_end'])
def test_m_by_n_at_once(overrides):
  weights = ref.distinct_weights((10, 6), seed=5)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _dense(10)
    hparams = _hparams(sparsity_m_by_n='2:4', **overrides)
    update = pruning.Pruning(hparams,
                             global_step=step).conditional_mask_update_op()
    first = hparams.begin_pruning_step + hparams.pruning_frequency
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      (mask,) = run.update(step=first)  # the first update already ends it
  _check_m_by_n(mask, weights, 2, 4)


def test_external_sparsity_tensor_drives_the_survivor_count():
  weights = ref.distinct_weights((10, 6), seed=6)
  values = [0.0, 0.2, 0.3, 0.5, 0.7]  # r = s / 0.5, clipped to 1
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _dense(10)
    sparsity = tf.compat.v1.get_variable('external_sparsity', initializer=0.0,
                                         use_resource=True)
    update = pruning.Pruning(
        _hparams(sparsity_m_by_n='2:4', target_sparsity=0.5),
        global_step=step, sparsity=sparsity).mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      set_sparsity = _loader(sparsity)
      masks = []
      for value in values:
        set_sparsity(sess, value)
        masks.append(run.update(step=0)[0])
  for value, mask in zip(values, masks):
    _check_m_by_n(mask, weights, ref.keep_per_group(value, 0.5, 2, 4), 4)


@pytest.mark.parametrize('weight_target', [0.25, 0.9], ids=['below', 'above'])
def test_weight_sparsity_map_target_is_the_weights_own_end(weight_target):
  """A mapped weight measures progress against its own target (fixed bug)."""
  weights = ref.distinct_weights((10, 6), seed=7)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _dense(10)
    hparams = _hparams(sparsity_m_by_n='2:4', target_sparsity=0.5,
                       sparsity_function_exponent=1,
                       weight_sparsity_map=['fc/kernel:%g' % weight_target])
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      masks = {t: run.update(step=t)[0] for t in (30, 60, 100)}
  for t, mask in masks.items():
    s = ref.scheduled_sparsity(t, begin_step=0, end_step=100, initial=0.0,
                               target=weight_target, exponent=1)
    _check_m_by_n(mask, weights, ref.keep_per_group(s, weight_target, 2, 4), 4)
  _check_m_by_n(masks[100], weights, 2, 4)


# --- per-layer patterns: m_by_n_map ------------------------------------------


def _three_layers():
  """conv2 (depth 8), local3 (depth 12) and fc4 (depth 16), in that order."""
  _conv(2, 8, name='conv2')
  _dense(12, name='local3')
  _dense(16, name='fc4')
  return [(2, 2, 8, 3), (12, 6), (16, 6)]


@pytest.mark.parametrize('text,patterns', [
    ('m_by_n_map=[conv2:2:4,local3:1:4]', ['2:4', '1:4', None]),
    ('m_by_n_map=[conv2:2:4,local3:1:4],sparsity_m_by_n=2:8',
     ['2:4', '1:4', '2:8']),
    ('m_by_n_map=[^(conv|local)\\d/:1:2]', ['1:2', '1:2', None]),
], ids=['map_only_rest_unstructured', 'map_over_global', 'regex_search'])
def test_m_by_n_map_picks_each_weights_pattern(text, patterns):
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    shapes = _three_layers()
    hparams = _hparams(text, threshold_method='exact', target_sparsity=0.5,
                       initial_sparsity=0.5)
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    weights = [ref.distinct_weights(shape, seed=i)
               for i, shape in enumerate(shapes)]
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      for i, array in enumerate(weights):
        run.load(i, array)
      masks = run.update(step=0)
  for pattern, array, mask in zip(patterns, weights, masks):
    if pattern is None:  # no entry, no global pattern: unstructured at 0.5
      np.testing.assert_array_equal(
          mask, ref.magnitude_mask(array, 0.5, 'exact')[1])
    else:
      m, n = nm_sparsity.parse_m_by_n(pattern)
      _check_m_by_n(mask, array, m, n)


def test_m_by_n_map_with_two_matching_entries_names_both():
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _three_layers()
    hparams = _hparams('m_by_n_map=[conv:2:4,conv2:1:4]')
    with pytest.raises(ValueError, match="Multiple matches in m_by_n_map for "
                       "weight conv2/kernel: 'conv', 'conv2'"):
      pruning.Pruning(hparams, global_step=step)


def test_group_member_with_a_pattern_is_pruned_m_by_n_on_its_own():
  """N:M wins over a group's joint threshold; the others stay joint."""
  joint = ref.distinct_weights((2, 10, 6), seed=13)  # b and c: no ties
  arrays = [ref.distinct_weights((10, 6), seed=14), joint[0], joint[1]]
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    for name in 'abc':
      with tf.compat.v1.variable_scope(name) as scope:
        variable = tf.compat.v1.get_variable('weights', shape=[10, 6])
        pruning.apply_mask_with_group(variable, scope, group_name='g1')
    hparams = _hparams(
        'group_pruning=true,group_sparsity_map=[g1:0.5],m_by_n_map=[^a/:2:4]',
        threshold_method='exact', target_sparsity=0.5, initial_sparsity=0.5)
    p = pruning.Pruning(hparams, global_step=step)
    with log_capture.absl_warnings() as warnings:
      update = p.mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      for i, array in enumerate(arrays):
        run.load(i, array)
      masks = run.update(step=0)
  assert [w for w in warnings if 'a/weights has an N:M pattern' in w]
  _check_m_by_n(masks[0], arrays[0], 2, 4)
  np.testing.assert_array_equal(np.stack(masks[1:]),
                                ref.magnitude_mask(joint, 0.5, 'exact')[1])


# --- masks follow the weights at every update -------------------------------


def test_mask_update_op_recomputes_from_the_current_weights():
  first = ref.distinct_weights((12, 5), seed=8)
  second = ref.distinct_weights((12, 5), seed=9)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _dense(12, units=5)
    hparams = _hparams(sparsity_m_by_n='2:4', target_sparsity=0.0)
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, first)
      (mask_first,) = run.update(step=0)
      run.load(0, second)
      (mask_second,) = run.update(step=0)
  _check_m_by_n(mask_first, first, 2, 4)
  _check_m_by_n(mask_second, second, 2, 4)
  assert (mask_first != mask_second).any()


def test_conditional_update_follows_weights_only_on_update_steps():
  first = ref.distinct_weights((12, 5), seed=10)
  second = ref.distinct_weights((12, 5), seed=11)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _dense(12, units=5)
    hparams = _hparams(sparsity_m_by_n='2:4', target_sparsity=0.0,
                       pruning_frequency=10)
    update = pruning.Pruning(hparams,
                             global_step=step).conditional_mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, first)
      (at_10,) = run.update(step=10)
      run.load(0, second)
      (at_15,) = run.update(step=15)  # not due: the mask stays
      (at_20,) = run.update(step=20)
  _check_m_by_n(at_10, first, 2, 4)
  np.testing.assert_array_equal(at_15, at_10)
  _check_m_by_n(at_20, second, 2, 4)
  assert (at_20 != at_10).any()


# --- shapes that cannot hold N:M groups --------------------------------------


@pytest.mark.parametrize('shape', [
    (1, 16), (3, 3, 1, 8), (16,)],
    ids=['dense_one_input_channel', 'conv_one_input_channel', 'bias'])
def test_unprunable_shape_falls_back_to_unstructured_with_warning(shape):
  weights = ref.distinct_weights(shape, seed=12)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('odd') as scope:
      variable = tf.compat.v1.get_variable('weights', shape=shape)
      pruning.apply_mask(variable, scope)
    hparams = _hparams(sparsity_m_by_n='2:4', target_sparsity=0.5,
                       initial_sparsity=0.5, threshold_method='exact')
    p = pruning.Pruning(hparams, global_step=step)
    with log_capture.absl_warnings() as warnings:
      update = p.mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      (mask,) = run.update(step=0)
  fallbacks = [w for w in warnings if _FALLBACK in w]
  assert len(fallbacks) == 1, warnings
  assert 'odd/weights' in fallbacks[0] and '2:4' in fallbacks[0]
  np.testing.assert_array_equal(
      mask, ref.magnitude_mask(weights, 0.5, 'exact')[1])


# --- the check_sparsity tool on a checkpoint pruned by Pruning -------------


def _run_check_sparsity(*args):
  """Parses flags like the binary and calls main(); returns its exit code."""
  with flagsaver.flagsaver():
    remaining = flags.FLAGS(['check_sparsity'] + list(args))
    return check_sparsity.main(remaining)


def _train_and_save(directory, stop_step):
  """Runs the conditional update every step up to `stop_step`, saves."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    _conv(2, 8, name='conv2')
    _dense(10, name='fc3')
    hparams = _hparams(sparsity_m_by_n='2:4', target_sparsity=0.5,
                       sparsity_function_end_step=40, pruning_frequency=10)
    update = pruning.Pruning(hparams,
                             global_step=step).conditional_mask_update_op()
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      for t in range(stop_step + 1):
        run.update(step=t)
      return saver.save(sess, str(directory / 'model.ckpt'),
                        global_step=stop_step)


def test_check_sparsity_passes_a_checkpoint_pruned_2_of_4(tmp_path, capsys):
  _train_and_save(tmp_path, stop_step=40)
  code = _run_check_sparsity(str(tmp_path), '--m_by_n=2:4')
  out = capsys.readouterr().out
  assert code == 0, out
  assert 'conv2/kernel' in out and 'fc3/kernel' in out
  assert 'every group passes' in out


def test_check_sparsity_fails_a_checkpoint_halfway_along_the_schedule(
    tmp_path, capsys):
  # At step 10 of 40 (cubic): r = 1 - 0.75**3 = 0.58, keep 4 - 1 = 3 of 4.
  _train_and_save(tmp_path, stop_step=10)
  assert _run_check_sparsity(str(tmp_path), '--m_by_n=2:4') == 1
  assert _run_check_sparsity(str(tmp_path), '--m_by_n=3:4') == 0
  capsys.readouterr()


def test_depth_below_n_is_one_partial_group():
  """A [3, 8] kernel at 2:4 is one short group per column: it keeps 2."""
  weights = ref.distinct_weights((3, 8), seed=13)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('short') as scope:
      variable = tf.compat.v1.get_variable('weights', shape=(3, 8))
      pruning.apply_mask(variable, scope)
    hparams = _hparams(sparsity_m_by_n='2:4', target_sparsity=0.5,
                       initial_sparsity=0.5, threshold_method='exact')
    p = pruning.Pruning(hparams, global_step=step)
    with log_capture.absl_warnings() as warnings:
      update = p.mask_update_op()
    with tf.compat.v1.Session() as sess:
      run = _Run(sess, step, update)
      run.load(0, weights)
      (mask,) = run.update(step=0)
  assert not [w for w in warnings if _FALLBACK in w]
  np.testing.assert_array_equal(mask.sum(axis=0), np.full(8, 2.0))
  largest_two = np.argsort(-np.abs(weights), axis=0)[:2]
  for column in range(8):
    assert set(np.flatnonzero(mask[:, column])) == set(largest_two[:, column])
