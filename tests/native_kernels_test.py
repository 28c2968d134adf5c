"""The fused kernels (native_kernels) against plain numpy, and against the
TensorFlow-op pipeline they replace.

The kernels' k-th selection brackets the k-th value from a sample and falls
back to a selection over all values when the bracket misses: both must give
the oracle's answer, on random data, heavy ties, NaN/Inf, negative values,
float64, sizes around the direct-selection limit, and data built to make
the bracket miss.
"""
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import native_build
from model_pruning.python import native_kernels
from model_pruning.python import nm_sparsity
from model_pruning.python import pruning_utils
from model_pruning.python import saliency_masks
from model_pruning.python import thresholds
from tests import reference

# Only an explicit MODEL_PRUNING_NATIVE=0 skips these: a machine that fails
# to build the kernels fails here, where the build error is shown.
pytestmark = pytest.mark.skipif(
    os.environ.get('MODEL_PRUNING_NATIVE') == '0',
    reason='MODEL_PRUNING_NATIVE=0 turns the kernels off')


@pytest.fixture(params=['widest', 'widest-streaming', 'sse2',
                        'sse2-streaming'])
def vector_isa(request, monkeypatch):
  """Runs a test on the CPU's widest passes (AVX2 where it has it) and on
  the SSE2 ones, which every x86-64 runs, each with the mask written by
  cached stores and by streaming ones (which large masks get, from an
  aligned entry on): the answers must not differ."""
  isa, _, streaming = request.param.partition('-')
  if isa == 'sse2':
    monkeypatch.setenv('MODEL_PRUNING_NATIVE_ISA', 'sse2')
    assert native_kernels.vector_isa() in ('sse2', 'scalar')
  else:
    monkeypatch.delenv('MODEL_PRUNING_NATIVE_ISA', raising=False)
  # Forced either way: the test sizes are below the streaming size.
  monkeypatch.setenv('MODEL_PRUNING_NATIVE_STREAM', '1' if streaming else '0')


def test_kernels_are_built_and_loaded():
  assert native_kernels.available(), native_kernels.load_error()

_MAX32 = np.finfo(np.float32).max


def _clean(values, take_abs):
  """The kernels' cleaning: |v| (if asked), NaN -> 0, v -> min(v, max)."""
  values = np.abs(values) if take_abs else np.array(values)
  values = np.where(np.isnan(values), 0, values)
  return np.minimum(values, np.finfo(values.dtype).max).astype(values.dtype)


def _data(kind, size, dtype=np.float32, seed=0):
  rng = np.random.default_rng(seed)
  if kind == 'gaussian':
    return rng.standard_normal(size).astype(dtype)
  if kind == 'few_values':  # heavy ties everywhere, both signs
    return rng.integers(-3, 4, size).astype(dtype)
  if kind == 'constant':
    return np.full(size, -0.25, dtype)
  if kind == 'nan_inf':
    values = rng.standard_normal(size).astype(dtype)
    values[::97] = np.nan
    values[5::1001] = np.inf
    values[7::1003] = -np.inf
    values[: size // 5] = 0.0
    return values
  if kind == 'sorted':  # the stratified sample sees a staircase
    return np.sort(rng.standard_normal(size)).astype(dtype)
  if kind == 'periodic':  # large every 64th value: strata can alias
    values = rng.random(size).astype(dtype) * 1e-3
    values[::64] += 1.0
    return values
  raise ValueError(kind)


_KINDS = ['gaussian', 'few_values', 'constant', 'nan_inf', 'sorted',
          'periodic']
# Around the direct-selection limit (2^12), a small layer (1024 x 10) and
# well past it.
_SIZES = [1, 17, 1 << 12, (1 << 12) + 1, 10240, 100003]


def _run(build, *values):
  with tf.Graph().as_default():
    result = build(*[tf.constant(v) for v in values])
    with tf.compat.v1.Session() as session:
      return session.run(result)


def _ks(size):
  return sorted({k for k in (1, 2, size // 10, size // 2, size - 1, size)
                 if 1 <= k <= size})


@pytest.mark.parametrize('kind', _KINDS)
@pytest.mark.parametrize('size', _SIZES)
@pytest.mark.parametrize('take_abs', [True, False])
@pytest.mark.usefixtures('vector_isa')
def test_kth_largest_matches_numpy(kind, size, take_abs):
  values = _data(kind, size)
  clean = _clean(values, take_abs)
  ks = _ks(size)
  got = _run(lambda v: [native_kernels.kth_largest(v, tf.constant(k),
                                                   take_abs) for k in ks],
             values)
  for k, (kth, above, at, largest) in zip(ks, got):
    assert (kth, above, at) == reference.kth_largest_with_counts(clean, k), k
    assert largest == clean.max()


def test_vector_isa_follows_the_cpu_and_the_switch(monkeypatch):
  monkeypatch.delenv('MODEL_PRUNING_NATIVE_ISA', raising=False)
  if platform.machine() not in ('x86_64', 'AMD64'):
    assert native_kernels.vector_isa() == 'scalar'
    return
  with open('/proc/cpuinfo') as cpuinfo:
    has_avx2 = ' avx2' in cpuinfo.read()
  assert native_kernels.vector_isa() == ('avx2' if has_avx2 else 'sse2')
  monkeypatch.setenv('MODEL_PRUNING_NATIVE_ISA', 'sse2')
  assert native_kernels.vector_isa() == 'sse2'


def test_kth_largest_float64_and_any_shape():
  values = _data('nan_inf', 60000, np.float64).reshape(100, 600)
  values[3, 4:700] = 1e300  # beyond float32: stays a float64 magnitude
  clean = _clean(values, True)
  got = _run(lambda v: native_kernels.kth_largest(v, tf.constant(777), True),
             values)
  assert got[0].dtype == np.float64
  assert tuple(got[:3]) == reference.kth_largest_with_counts(clean, 777)
  assert got[3] == clean.max() == np.finfo(np.float64).max  # Inf, cleaned


@pytest.mark.usefixtures('vector_isa')
def test_kth_largest_warm_bracket_across_runs():
  """The kernel keeps the last update's bracket as the next one's start:
  small moves, a schedule moving k, a jump of k, and weights replaced
  (a warm miss, then the sample's bracket) all give numpy's answer."""
  rng = np.random.default_rng(3)
  weights = rng.standard_normal(200000).astype(np.float32)
  plan = []  # (weights, k) per run
  k = 150000
  for run in range(12):
    weights = weights + rng.normal(0, 1e-3, weights.size).astype(np.float32)
    k -= 300 * (run < 6)  # the schedule raises sparsity, then stops
    plan.append((weights, k))
  plan.append((weights, 20000))  # k jumps far away
  plan.append((weights * 10.0, 20000))  # every weight moved a lot
  plan.append((np.sort(weights), 20300))  # same values, new order
  with tf.Graph().as_default():
    values = tf.compat.v1.placeholder(tf.float32, [weights.size])
    k_feed = tf.compat.v1.placeholder(tf.int32, [])
    selection = native_kernels.kth_largest(values, k_feed, True)
    with tf.compat.v1.Session() as session:
      for weights, k in plan:
        got = session.run(selection, {values: weights, k_feed: k})
        clean = _clean(weights, True)
        assert tuple(got[:3]) == reference.kth_largest_with_counts(clean, k)
        assert got[3] == clean.max()


def test_kth_largest_clamps_k():
  values = _data('gaussian', 50000)
  clean = _clean(values, True)
  low, high = _run(lambda v: [native_kernels.kth_largest(v, tf.constant(k),
                                                         True)
                              for k in (0, 10**9)], values)
  assert tuple(low[:3]) == reference.kth_largest_with_counts(clean, 1)
  assert tuple(high[:3]) == reference.kth_largest_with_counts(clean,
                                                              clean.size)


def _mask_update(values, sparsity, method, take_abs=True, decay=0.0,
                 previous=0.0, nbins=256):
  return native_kernels.mask_update(values, sparsity, previous, method, nbins,
                                    decay, take_abs)


def _infinite_bins_clip():
  """The reference's histogram bins -Inf (and values whose bin overflows)
  to a clipped end; numpy warns about the cast on the way."""
  return np.errstate(invalid='ignore', over='ignore')


def _expected_mask(clean, threshold, method, keep=None):
  """numpy's mask for the op's threshold (exact: at or above the k-th)."""
  if method == 'histogram':
    return (clean > threshold).astype(np.float32)
  if method == 'exact' and keep == 0:
    return np.zeros(clean.shape, np.float32)
  return (clean >= threshold).astype(np.float32)


@pytest.mark.parametrize('kind', ['gaussian', 'few_values', 'nan_inf',
                                  'periodic'])
@pytest.mark.parametrize('size', [17, 10240, 100003])
@pytest.mark.parametrize('method', ['histogram', 'sort', 'exact'])
@pytest.mark.parametrize('take_abs', [True, False])
@pytest.mark.usefixtures('vector_isa')
def test_mask_update_matches_numpy(kind, size, method, take_abs):
  """One cold update: the threshold is numpy's (within 1 ulp, as the
  TensorFlow ops), the mask exactly the comparison with it."""
  values = _data(kind, size).reshape(-1, 1)
  clean = _clean(values, take_abs)
  sparsities = [0.0, 0.3, 0.9, 0.999, 1.0]
  got = _run(lambda v: [_mask_update(v, s, method, take_abs)
                        for s in sparsities], values)
  for sparsity, update in zip(sparsities, got):
    assert update.mask.dtype == np.float32
    assert update.mask.shape == values.shape
    keep = reference.keep_count(size, sparsity)
    if method == 'exact':
      assert update.k == keep
      assert update.threshold == update.kth
      assert ((update.kth, update.count_above, update.count_at) ==
              reference.kth_largest_with_counts(clean, max(keep, 1)))
    else:
      with _infinite_bins_clip():
        expected, _ = reference.threshold_mask(clean, sparsity, method)
      np.testing.assert_array_max_ulp(update.threshold,
                                      np.float32(expected), maxulp=1)
    assert update.max_value == clean.max()
    np.testing.assert_array_equal(
        update.mask, _expected_mask(clean, update.threshold, method, keep),
        err_msg='sparsity %s' % sparsity)


def test_mask_update_float64_with_decay():
  values = _data('nan_inf', 60000, np.float64).reshape(200, 300)
  clean = _clean(values, True)
  for method in ('histogram', 'sort'):
    update = _run(lambda v: _mask_update(v, 0.7, method, decay=0.25,
                                         previous=0.5), values)
    assert update.threshold.dtype == np.float64
    with _infinite_bins_clip():
      expected, _ = reference.threshold_mask(clean, 0.7, method,
                                             previous_threshold=0.5,
                                             decay=0.25)
    np.testing.assert_array_max_ulp(update.threshold, expected, maxulp=2)
    np.testing.assert_array_equal(
        update.mask, _expected_mask(clean, update.threshold, method))


def _drifting_runs(kind, size):
  """(values, sparsity) per run: small moves and a ramping sparsity, a
  small shrink, then a jump of the sparsity, every value scaled, the values reordered, and the
  k-th value moving down (values shrinking, sparsity falling)."""
  rng = np.random.default_rng(11)
  values = _data(kind, size, seed=4)
  runs = []
  sparsity = 0.5
  for run in range(10):
    values = values + rng.normal(0, 1e-3, size).astype(np.float32)
    sparsity += 0.002 * (run < 6)
    runs.append((values, sparsity))
  # Every value shrinks a little: the k-th leaves the warm bracket but
  # (histogram) stays in the band reaching down to the bin edge.
  runs.append((values * 0.995, sparsity))
  runs.append((values, 0.95))
  runs.append((values * 8.0, 0.95))
  runs.append((np.sort(values), 0.95))
  # The k-th value falls into lower bins: below the last bin edge.
  runs.append((np.sort(values) * 0.97, 0.95))
  runs.append((np.sort(values) * 0.97, 0.94))
  return runs


@pytest.mark.parametrize('kind', ['gaussian', 'nan_inf', 'few_values'])
@pytest.mark.parametrize('method', ['histogram', 'sort', 'exact'])
@pytest.mark.parametrize('decay', [0.0, 0.3])
@pytest.mark.usefixtures('vector_isa')
def test_mask_update_across_runs_same_as_tf_op_pipeline(kind, method, decay):
  """Runs of one op keep a warm start: its pass writes the mask outside a
  band around the k-th value and compares only the band after (histogram:
  the band reaches down to the bin edge); a threshold outside the band
  (smoothing, a jump) rewrites every entry. Every run equals the TensorFlow
  ops bit for bit, signed and |w| scores alike."""
  size = 120000
  for take_abs in (True, False):
    with tf.Graph().as_default():
      values = tf.compat.v1.placeholder(tf.float32, [size])
      sparsity = tf.compat.v1.placeholder(tf.float32, [])
      previous = tf.compat.v1.placeholder(tf.float32, [])
      args = (sparsity, previous, _method(method, decay), None, take_abs)
      native = saliency_masks.threshold_and_mask(values, *args)
      assert 'ModelPruningMaskUpdate' in [
          op.type for op in tf.compat.v1.get_default_graph().get_operations()]
      with native_kernels.disabled():
        tf_ops = saliency_masks.threshold_and_mask(values, *args)
      with tf.compat.v1.Session() as session:
        threshold = 0.0
        for run, (weights, level) in enumerate(
            _drifting_runs(kind, size)):
          feed = {values: weights, sparsity: level, previous: threshold}
          (threshold, mask), (tf_threshold, tf_mask) = session.run(
              [native, tf_ops], feed)
          assert threshold == tf_threshold, (take_abs, run)
          np.testing.assert_array_equal(mask, tf_mask,
                                        err_msg='%s run %d' % (take_abs, run))


def test_mask_update_ranks_follow_thresholds_rules():
  """The op's rank rules (float32 arithmetic, half to even) against
  thresholds.py's tensors at many sparsities, boundaries included."""
  rng = np.random.default_rng(2)
  size = 100003
  boundaries = np.float32(np.arange(0, size + 1, 1009) / size)
  sparsities = np.concatenate([
      np.linspace(0, 1, 41, dtype=np.float32), rng.random(60, np.float32),
      boundaries, np.nextafter(boundaries, np.float32(0)),
      np.nextafter(boundaries, np.float32(1))]).astype(np.float32)
  # Out of [0, 1] the rules clip (the schedule never hands such values in).
  sparsities = np.concatenate([sparsities, np.float32([-0.5, 1.5, 1e30])])
  values = _data('gaussian', size)
  with tf.Graph().as_default():
    level = tf.compat.v1.placeholder(tf.float32, [])
    ops = {method: _mask_update(tf.constant(values), level, method).k
           for method in ('histogram', 'sort', 'exact')}
    rules = {'histogram': thresholds.histogram_rank(size, level)[0],
             'sort': thresholds.sort_rank(size, level),
             'exact': thresholds.exact_rank(
                 size, thresholds.keep_count(size, level))}
    with tf.compat.v1.Session() as session:
      for sparsity in sparsities:
        got, expected = session.run([ops, rules], {level: sparsity})
        assert got == expected, sparsity


_NM_SHAPES = [(16, 24), (10, 7), (3, 3, 13, 5), (2, 3, 8, 6, 4), (6, 1)]


@pytest.mark.parametrize('shape', _NM_SHAPES, ids=str)
@pytest.mark.parametrize('kind', ['gaussian', 'few_values', 'nan_inf'])
def test_m_by_n_mask_same_as_nm_sparsity(shape, kind, vector_isa):
  """Every (M, N) with N in {2, 4, 8}, full and partial groups, ranks 2-5,
  ties and NaN, on both vector widths with cached and streaming stores
  (rows of 7, 5 or 1 values leave most of them unaligned): the kernel's
  mask equals nm_sparsity.m_by_n_mask's."""
  weights = _data(kind, int(np.prod(shape)), seed=11).reshape(shape)
  cases = [(m, n) for n in (2, 4, 8) for m in range(1, n)]

  def build(w):
    native = [native_kernels.m_by_n_mask(w, m, n, take_abs=True)
              for m, n in cases]
    tf_ops = [tf.cast(nm_sparsity.m_by_n_mask(w, m, n), tf.float32)
              for m, n in cases]
    return native, tf_ops

  native, tf_ops = _run(build, weights)
  for (m, n), got, expected in zip(cases, native, tf_ops):
    np.testing.assert_array_equal(got, expected, err_msg='%d:%d' % (m, n))
  if kind == 'gaussian':  # distinct scores: the numpy oracle applies too
    for (m, n), got in zip(cases, native):
      np.testing.assert_array_equal(
          got, reference.m_by_n_mask(weights, m, n).astype(np.float32))


def test_m_by_n_mask_with_signed_saliency_and_float64():
  rng = np.random.default_rng(12)
  scores = rng.standard_normal((12, 9)).astype(np.float64)  # negative too
  got, expected = _run(lambda s: (
      native_kernels.m_by_n_mask(s, 2, 4, take_abs=False),
      tf.cast(nm_sparsity.m_by_n_mask(tf.ones_like(s), 2, 4, saliency=s),
              tf.float32)), scores)
  np.testing.assert_array_equal(got, expected)


def test_scheduled_m_by_n_same_as_tf_op_pipeline():
  """Pruning's gradual N:M (with |W| and with |W| * g) through the kernels
  and through TensorFlow ops, at every point of the schedule."""
  rng = np.random.default_rng(13)
  weights = rng.standard_normal((64, 40)).astype(np.float32)
  gradient = np.abs(rng.standard_normal((64, 40))).astype(np.float32)
  sparsities = [0.0, 0.2, 0.3, 0.5]

  def build(w, g):
    results = []
    for sparsity in sparsities:
      for saliency in (None, tf.abs(w) * g):
        results.append(saliency_masks.scheduled_m_by_n_mask(
            w, (2, 4), sparsity, 0.5, 'w', fallback=None,
            saliency=saliency)[1])
    return results

  native, tf_ops = _both_pipelines(build, weights, gradient)
  for got, expected in zip(native, tf_ops):
    np.testing.assert_array_equal(got, expected)
  kept = [int(m.sum()) for m in native[::2]]
  assert kept == [2560, 2560, 1920, 1280]  # 4, 4, 3, 2 of every 4


def test_bad_inputs_name_the_problem():
  with pytest.raises(tf.errors.InvalidArgumentError, match='must not be empty'):
    _run(lambda v: native_kernels.kth_largest(v, tf.constant(1), True),
         np.zeros([0], np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='k must be a '
                     'scalar'):
    _run(lambda v: native_kernels.kth_largest(v, tf.constant([1, 2]), True),
         np.ones([4], np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='sparsity is NaN'):
    _run(lambda v: _mask_update(v, float('nan'), 'sort'),
         np.ones([4], np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='must not be empty'):
    _run(lambda v: _mask_update(v, 0.5, 'histogram'), np.zeros([0, 3],
                                                            np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='smoothing must '
                     'hold 2 values'):
    _run(lambda v: native_kernels.load().model_pruning_mask_update(
        v, 0.5, 0.0, [1.0, 0.0, 0.0], method='sort'),
         np.ones([4], np.float32))


def _method(name, decay=0.0):
  return saliency_masks.ThresholdMethod(name=name, nbins=256, decay=decay,
                                        seed=3, step=2)


def _both_pipelines(build, *values):
  """build's results with the kernels, then with TensorFlow ops only."""
  native = _run(build, *values)
  with native_kernels.disabled():
    tf_ops = _run(build, *values)
  return native, tf_ops


def _assert_same_per_sparsity(sparsities, native, tf_ops):
  """Each sparsity's (threshold, mask) equal on both pipelines."""
  for sparsity, (theta, mask), (tf_theta, tf_mask) in zip(sparsities, native,
                                                          tf_ops):
    assert theta == tf_theta, sparsity
    np.testing.assert_array_equal(mask, tf_mask)


@pytest.mark.parametrize('kind', ['gaussian', 'few_values', 'nan_inf',
                                  'periodic'])
@pytest.mark.parametrize('method', ['histogram', 'sort', 'exact'])
@pytest.mark.parametrize('decay', [0.0, 0.1])
def test_threshold_and_mask_same_as_tf_op_pipeline(kind, method, decay):
  """Element-wise masks of signed weights, as Pruning builds them: every
  method, with and without decay, and exact's random tie-break, equal bit
  for bit."""
  weights = _data(kind, 60000, seed=5).reshape(200, 300)
  sparsities = [0.0, 0.3, 0.9, 0.999, 1.0]

  def build(w):
    return [saliency_masks.elementwise_mask(
        w, None, False, s, tf.constant(0.4), _method(method, decay=decay))
            for s in sparsities]

  native, tf_ops = _both_pipelines(build, weights)
  _assert_same_per_sparsity(sparsities, native, tf_ops)
  if method != 'exact':  # also against numpy (exact ties are random)
    theta, mask = native[2]
    expected_theta, _ = reference.threshold_mask(
        reference.finite_magnitudes(weights), 0.9, method,
        previous_threshold=0.4, decay=decay)
    np.testing.assert_array_max_ulp(theta, expected_theta, maxulp=1)


@pytest.mark.parametrize('nbins', [37, 200, 1000])
def test_histogram_bins_not_a_power_of_two_same_as_tf_op_pipeline(nbins):
  """The bin edge bin * max / nbins: the op divides in float64 where
  TensorFlow may multiply by a folded 1 / nbins; the thresholds agree."""
  weights = _data('gaussian', 50000, seed=nbins) * 3.0
  sparsities = list(np.linspace(0.01, 0.99, 12))
  method = saliency_masks.ThresholdMethod(name='histogram', nbins=nbins,
                                          decay=0.0, seed=3, step=2)

  def build(w):
    return [saliency_masks.threshold_and_mask(w, s, 0.0, method,
                                              take_abs=True)
            for s in sparsities]

  native, tf_ops = _both_pipelines(build, weights)
  _assert_same_per_sparsity(sparsities, native, tf_ops)


def test_gradient_blocks_and_groups_same_as_tf_op_pipeline():
  """The other callers: |W| * g scores, pooled blocks, a group's joint
  threshold (all pass non-negative scores, take_abs off)."""
  rng = np.random.default_rng(9)
  first = rng.standard_normal((120, 200)).astype(np.float32)
  second = rng.standard_normal((200, 64)).astype(np.float32)
  gradient = np.abs(rng.standard_normal((120, 200))).astype(np.float32)

  def build(w1, w2, g):
    method = _method('sort')
    return [
        saliency_masks.elementwise_mask(w1, g, True, 0.7, 0.0, method),
        saliency_masks.block_mask(w1, None, [4, 4], 'AVG', False, 0.6, 0.0,
                                  _method('histogram')),
        saliency_masks.joint_masks([w1, w2], [None, None], [1, 1], 'AVG',
                                   False, 0.8, _method('exact')),
    ]

  native, tf_ops = _both_pipelines(build, first, second, gradient)
  for got, expected in zip(tf.nest.flatten(native), tf.nest.flatten(tf_ops)):
    np.testing.assert_array_equal(got, expected)
  theta, mask = native[0]
  expected_theta, expected_mask = reference.threshold_mask(
      np.abs(first) * gradient, 0.7, 'sort')
  assert theta == expected_theta
  np.testing.assert_array_equal(mask, expected_mask)


def test_float16_weights_run_through_float32():
  weights = _data('gaussian', 30000).astype(np.float16).reshape(100, 300)
  native, tf_ops = _both_pipelines(
      lambda w: saliency_masks.elementwise_mask(w, None, False, 0.5, 0.0,
                                                _method('sort')), weights)
  np.testing.assert_array_equal(native[1], tf_ops[1])
  assert native[0] == tf_ops[0]


def test_update_graph_uses_the_fused_ops():
  """What makes it fast: the update of a weight is one op, with no |W|
  tensor and no rank or threshold arithmetic around it."""
  for method in ('histogram', 'sort'):
    with tf.Graph().as_default() as graph:
      weights = tf.compat.v1.placeholder(tf.float32, [300, 400])
      saliency_masks.elementwise_mask(weights, None, False, 0.5, 0.0,
                                      _method(method))
      types = [op.type for op in graph.get_operations()]
    assert types.count('ModelPruningMaskUpdate') == 1
    assert 'ModelPruningKthLargest' not in types
    assert not {'Abs', 'Ceil', 'Round', 'Floor', 'Greater'} & set(types)


# --- blocks: pooling and expansion -------------------------------------------

# Blocks whose AVG the op rounds as TensorFlow does (native_kernels
# .pools_blocks), with edge blocks on both sides, and wider ones for MAX.
_AVG_BLOCKS = {np.float32: [(1, 1), (1, 4), (4, 1), (2, 2), (3, 5), (4, 4),
                            (7, 7), (6, 2)],
               np.float64: [(1, 1), (1, 3), (3, 1), (2, 2), (3, 3)]}
_MAX_BLOCKS = [(1, 1), (2, 3), (4, 4), (8, 8), (16, 5), (1, 64)]


def _block_data(shape, dtype, seed):
  """Magnitudes over four decades, with NaN, +-Inf and zeros in places."""
  rng = np.random.default_rng(seed)
  values = (rng.standard_normal(shape) *
            10.0 ** rng.uniform(-2, 2, shape)).astype(dtype)
  flat = values.reshape(-1)
  flat[::211] = np.nan
  flat[5::307] = np.inf
  flat[9::401] = -np.inf
  flat[13::17] = 0.0
  return values


def _tf_pool(matrix, block_dims, pooling):
  return pruning_utils.pool_blocks(tf.abs(matrix), block_dims, pooling)


@pytest.mark.parametrize('dtype,pooling,block_dims', [
    (dtype, 'AVG', dims) for dtype, blocks in _AVG_BLOCKS.items()
    for dims in blocks] + [(np.float32, 'MAX', dims) for dims in _MAX_BLOCKS]
    + [(np.float64, 'MAX', (5, 9))])
@pytest.mark.parametrize('shape', [(64, 96), (61, 101), (1, 1), (3, 700)])
def test_pool_blocks_equals_tf_pool_blocks_bit_for_bit(dtype, pooling,
                                                       block_dims, shape):
  """The rounding of TensorFlow's two reduce_means (or its NaN-propagating
  reduce_max), edge blocks included: pooled scores, and so masks, do not
  depend on which pipeline built the update."""
  assert native_kernels.pools_blocks(tf.as_dtype(dtype), block_dims, pooling)
  values = _block_data(shape, dtype, seed=sum(shape) + block_dims[0])
  native, tf_ops = _run(lambda v: (
      native_kernels.pool_blocks(v, block_dims, pooling),
      _tf_pool(v, block_dims, pooling)), values)
  assert native.dtype == tf_ops.dtype and native.shape == tf_ops.shape
  np.testing.assert_array_equal(native.view(np.uint8), tf_ops.view(np.uint8))
  finite = np.isfinite(tf_ops)
  np.testing.assert_allclose(
      native[finite], reference.block_pool(np.abs(values), block_dims,
                                           pooling)[finite], rtol=1e-6)


def test_pool_blocks_of_large_weights_equals_tf_pool_blocks():
  """Large enough for TensorFlow to reduce in parallel: still the same."""
  values = _block_data((1024, 1031), np.float32, seed=1)
  for block_dims in [(4, 4), (1, 4), (7, 3)]:
    native, tf_ops = _run(lambda v, dims=block_dims: (
        native_kernels.pool_blocks(v, dims, 'AVG'),
        _tf_pool(v, dims, 'AVG')), values)
    np.testing.assert_array_equal(native.view(np.uint8),
                                  tf_ops.view(np.uint8))


def test_pools_blocks_only_where_the_rounding_is_tensorflows():
  """AVG blocks as wide or tall as Eigen's vector (8 float32, 4 float64
  lanes) are summed lane-wise by TensorFlow: those stay on its ops."""
  on_x86 = platform.machine().lower() in ('x86_64', 'amd64')
  assert native_kernels.pools_blocks(tf.float32, [7, 7], 'AVG') == on_x86
  assert not native_kernels.pools_blocks(tf.float32, [8, 1], 'AVG')
  assert not native_kernels.pools_blocks(tf.float32, [1, 8], 'AVG')
  assert not native_kernels.pools_blocks(tf.float64, [4, 4], 'AVG')
  assert native_kernels.pools_blocks(tf.float32, [64, 64], 'MAX')
  assert not native_kernels.pools_blocks(tf.float16, [2, 2], 'MAX')
  with native_kernels.disabled():
    assert not native_kernels.pools_blocks(tf.float32, [2, 2], 'MAX')


@pytest.mark.parametrize('block_dims,shape', [
    ((4, 4), (64, 96)), ((3, 5), (61, 101)), ((1, 1), (7, 9)),
    ((16, 9), (40, 50)), ((2, 2), (1, 1))])
def test_expand_blocks_equals_expand_tensor_cropped(block_dims, shape):
  rows, cols = (-(-shape[0] // block_dims[0]), -(-shape[1] // block_dims[1]))
  blocks = (np.random.default_rng(2).random((rows, cols)) > 0.5).astype(
      np.float32)
  native = _run(lambda b: native_kernels.expand_blocks(b, block_dims, shape),
                blocks)
  np.testing.assert_array_equal(
      native, reference.expand_blocks(blocks, block_dims, shape))


def test_block_ops_name_bad_inputs():
  with tf.Graph().as_default():
    values = tf.compat.v1.placeholder(tf.float32, None)
    pooled = native_kernels.pool_blocks(values, [2, 2], 'AVG')
    with tf.compat.v1.Session() as session:
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match=r'values must be a matrix, got shape '
                         r'\[2,3,4\]'):
        session.run(pooled, {values: np.ones([2, 3, 4], np.float32)})
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'block_mask must be \[2, 3\] for a 8x9 mask of '
                     r'4x3 blocks, got shape \[2,2\]'):
    _run(lambda b: native_kernels.expand_blocks(b, [4, 3], [8, 9]),
         np.ones([2, 2], np.float32))


def test_update_graph_of_blocks_uses_the_block_ops():
  with tf.Graph().as_default() as graph:
    weights = tf.compat.v1.placeholder(tf.float32, [300, 400])
    saliency_masks.block_mask(weights, None, [4, 4], 'AVG', False, 0.5, 0.0,
                              _method('sort'))
    types = [op.type for op in graph.get_operations()]
  assert types.count('ModelPruningPoolBlocks') == 1
  assert types.count('ModelPruningExpandBlocks') == 1
  assert not {'Abs', 'Mean', 'Max', 'Tile', 'Pad'} & set(types)


def test_build_key_follows_the_source(tmp_path):
  source = tmp_path / 'kernels.cc'
  source.write_text('// one\n')
  first = native_build.build_key(str(source))
  source.write_text('// two\n')
  assert native_build.build_key(str(source)) != first


def test_without_a_compiler_the_tf_op_pipeline_runs(tmp_path):
  """A fresh cache and no compiler: one warning that names the fix, and
  pruning still works (with TensorFlow ops)."""
  script = (
      'from model_pruning.python import native_kernels as n\n'
      'from model_pruning.python import saliency_masks as s\n'
      'import tensorflow as tf\n'
      'assert not n.available(), n.load_error()\n'
      'with tf.Graph().as_default():\n'
      '  m = s.ThresholdMethod("sort", 256, 0.0, None, None)\n'
      '  t, mask = s.elementwise_mask(tf.constant([[1., -3.], [2., 0.5]]),\n'
      '                               None, False, 0.5, 0.0, m)\n'
      '  with tf.compat.v1.Session() as session:\n'
      '    print("MASK", session.run(mask).ravel().tolist())\n')
  # A copy of the package without any library built beside it (Bazel puts
  # one there), an empty cache, and no compiler.
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  shutil.copytree(os.path.join(repo, 'model_pruning'),
                  tmp_path / 'src' / 'model_pruning',
                  ignore=shutil.ignore_patterns('*.so', '__pycache__'))
  env = dict(os.environ, MODEL_PRUNING_CACHE_DIR=str(tmp_path / 'cache'),
             CXX=str(tmp_path / 'no-such-compiler'),
             PATH=str(tmp_path),  # no g++ on PATH either
             PYTHONPATH=str(tmp_path / 'src'))
  result = subprocess.run([sys.executable, '-c', script], env=env,
                          cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=240,
                          check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'MASK [0.0, 1.0, 1.0, 0.0]' in result.stdout
  assert 'no C++ compiler found' in result.stderr
  assert 'Install g++' in result.stderr
