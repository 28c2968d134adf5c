"""The warm-started k-th selection gives the oracle's answer, hit or miss.

`thresholds.warm_band` starts from the previous threshold; when the band
misses the k-th value, `saliency_masks.threshold_and_mask` falls back to the
cold selection. Both must give exactly what the numpy oracles give, for every
threshold method, for blocks and for N:M, on data with ties, NaN and Inf,
and across updates between which the weights moved a little (as in
training) or the schedule moved the sparsity.

The warm start belongs to the TensorFlow-op pipeline, which runs where the
native kernels are off or unavailable: every test here builds with them off
(tests/native_kernels_test.py checks the kernels against the same oracles).
"""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import native_kernels
from model_pruning.python import pruning
from model_pruning.python import saliency_masks
from model_pruning.python import thresholds
from tests import reference

# Small chunks so that the band pass runs over several of them and the band
# itself (more than 256 values) goes through the candidates' bracket.
_CHUNKED = dict(_CHUNK_SIZE=4096, _FULL_SORT_MAX_SIZE=256,
                _INNER_SAMPLE_SIZE=64)
_SIZE = 20000
_METHODS = ['histogram', 'sort', 'exact']


@pytest.fixture(autouse=True)
def _tf_op_pipeline():
  with native_kernels.disabled():
    yield


def _run(build, *feeds):
  with tf.Graph().as_default():
    result = build(*[tf.constant(f) for f in feeds])
    with tf.compat.v1.Session() as session:
      return session.run(result)


def _data(kind, seed=0):
  rng = np.random.default_rng(seed)
  values = np.abs(rng.standard_normal(_SIZE)).astype(np.float32)
  if kind == 'few_values':
    values = rng.integers(1, 7, _SIZE).astype(np.float32)
  elif kind == 'nan_inf':
    values[::97] = np.nan
    values[5] = np.inf
  return values


@pytest.fixture(params=['one_chunk', 'chunked'])
def constants(request, monkeypatch):
  if request.param == 'chunked':
    for name, value in _CHUNKED.items():
      monkeypatch.setattr(thresholds, name, value)


@pytest.mark.parametrize('hint_factor,found', [(1.0, True), (1.0005, True),
                                               (3.0, False), (0.0, False)],
                         ids=['at_kth', 'near_kth', 'far', 'zero'])
def test_warm_band_finds_the_kth_value_or_says_not(constants, hint_factor,
                                                   found):
  values = _data('gaussian')
  k = _SIZE // 10
  kth = reference.kth_largest_with_counts(values, k)[0]

  def build(v, finish):
    band, rank, above, hit = thresholds.warm_band(
        v, tf.constant(k), kth * hint_factor)
    # kth_in_band is only defined for a found band (the caller's cond).
    return [hit] + (list(thresholds.kth_in_band(band, rank, above))
                    if finish else [])

  hit = _run(lambda v: build(v, False), values)[0]
  assert hit == found
  if found:
    result = _run(lambda v: build(v, True), values)[1:]
    assert tuple(result) == reference.kth_largest_with_counts(
        values, k)


@pytest.mark.parametrize('k_move', [+300, -300])
def test_warm_band_follows_the_schedule_shift(constants, k_move):
  """A k that moved 1.5% of the ranks since the hint (a steep schedule) lies
  outside the +-0.1% band around it, unless the band is told the shift."""
  values = _data('gaussian')
  k_prev = _SIZE // 10
  k = k_prev + k_move
  hint = reference.kth_largest_with_counts(values, k_prev)[0]

  def build(v, shift):
    band, rank, above, hit = thresholds.warm_band(
        v, tf.constant(k), hint, shift=shift)
    return [hit], list(thresholds.kth_in_band(band, rank, above))

  assert not _run(lambda v: build(v, None)[0], values)[0]
  assert _run(lambda v: build(v, tf.constant(k_move))[0], values)[0]
  found = _run(lambda v: build(v, tf.constant(k_move))[1], values)
  assert tuple(found) == reference.kth_largest_with_counts(values, k)


@pytest.mark.parametrize('kind', ['gaussian', 'few_values', 'nan_inf'])
@pytest.mark.parametrize('hint_factor', [1.0, 1.01, 0.5, 20.0, 0.0],
                         ids=['same', 'moved', 'low', 'far', 'none'])
def test_threshold_and_mask_with_hint_matches_the_oracle(constants, kind,
                                                         hint_factor):
  values = _data(kind)
  clean = reference.finite_magnitudes(values)
  sparsity = 0.8
  hint = np.float32(hint_factor * reference.sort_threshold(clean, sparsity))

  def build(v, h):
    return [saliency_masks.threshold_and_mask(
        v, sparsity, h, saliency_masks.ThresholdMethod(
            name=name, nbins=256, decay=0.0, seed=3, step=1))
            for name in _METHODS]

  got = dict(zip(_METHODS, _run(build, values, hint)))
  theta, mask = got['histogram']
  np.testing.assert_array_max_ulp(
      theta, reference.histogram_threshold(clean, sparsity, 256), maxulp=1)
  np.testing.assert_array_equal(mask, (clean > theta).astype(np.float32))
  theta, mask = got['sort']
  assert theta == reference.sort_threshold(clean, sparsity)
  np.testing.assert_array_equal(mask, (clean >= theta).astype(np.float32))
  theta, mask = got['exact']
  k = reference.keep_count(_SIZE, sparsity)
  assert theta == reference.kth_largest_with_counts(clean, k)[0]
  assert np.count_nonzero(mask) == k
  assert np.all(mask[clean > theta]) and not np.any(mask[clean < theta])
  for _, mask in got.values():
    assert not np.any(mask[np.isnan(values)])


def _expected_mask(weights, method, structure, sparsity):
  if structure == 'block4x4':
    pooled = reference.block_pool(np.abs(weights), [4, 4], 'AVG')
    block = reference.magnitude_mask(pooled.astype(np.float32), sparsity,
                                     method, 256)[1]
    return reference.expand_blocks(block, [4, 4])
  if structure == '2:4':
    keep = reference.keep_per_group(sparsity, 0.5, 2, 4)
    return reference.scheduled_nm_mask(weights, keep, 4)
  return reference.magnitude_mask(weights, sparsity, method, 256)[1]


def _masked_layer(weights):
  """(global step, weight variable holding `weights`, masked by apply_mask)."""
  step = tf.compat.v1.train.get_or_create_global_step()
  with tf.compat.v1.variable_scope('layer') as scope:
    weight = tf.compat.v1.get_variable('weights', initializer=weights,
                                       use_resource=True)
    pruning.apply_mask(weight, scope)
  return step, weight


@pytest.mark.parametrize('structure', ['elementwise', 'block4x4', '2:4'])
@pytest.mark.parametrize('method', _METHODS)
def test_pruning_updates_match_the_oracle_as_weights_move(method, structure):
  """Three updates: weights nudged (warm hit), then a schedule jump."""
  side = 272  # 4x4 blocks pool to 68x68 = 4624 values: above the direct sort
  rng = np.random.default_rng(1)
  weights = rng.standard_normal((side, side)).astype(np.float32)
  extra = {'block4x4': ',block_height=4,block_width=4',
           '2:4': ',sparsity_m_by_n=2:4'}.get(structure, '')
  with tf.Graph().as_default():
    step, weight = _masked_layer(weights)
    hparams = pruning.get_pruning_hparams().parse(
        'threshold_method=%s,initial_sparsity=0.1,target_sparsity=0.5,'
        'threshold_decay=0.0,sparsity_function_end_step=100,seed=5%s'
        % (method, extra))
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    new_weights = tf.compat.v1.placeholder(tf.float32, weights.shape)
    assign = weight.assign(new_weights)
    set_step = step.assign(tf.compat.v1.placeholder_with_default(
        tf.constant(0, tf.int64), []))
    [mask] = pruning.get_masks()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for global_step, nudge in ((10, 0.0), (10, 1e-3), (60, 1e-3)):
        weights = weights + nudge * rng.standard_normal(
            weights.shape).astype(np.float32)
        session.run(assign, {new_weights: weights})
        session.run(set_step, {set_step.op.inputs[1]: global_step})
        session.run(update)
        got = session.run(mask)
        sparsity = reference.scheduled_sparsity(
            global_step, begin_step=0, end_step=100, initial=0.1, target=0.5,
            exponent=3)
        if method == 'exact' and structure == 'elementwise':
          k = reference.keep_count(weights.size, sparsity)
          assert np.count_nonzero(got) == k
          kth = reference.kth_largest_with_counts(
              np.abs(weights).ravel(), k)[0]
          assert np.all(got[np.abs(weights) > kth])
        elif method == 'exact' and structure == 'block4x4':
          pooled = reference.block_pool(np.abs(weights), [4, 4], 'AVG')
          kept = got[::4, ::4]
          assert np.count_nonzero(kept) == reference.keep_count(
              pooled.size, sparsity)
        else:
          np.testing.assert_array_equal(
              got, _expected_mask(weights, method, structure, sparsity))


def _warm_predicates(graph):
  """The `found` predicate of every warm-or-cold selection in `graph`."""
  return [op.inputs[0] for op in graph.get_operations()
          if 'warm_or_cold_selection' in op.name and
          op.type in ('If', 'StatelessIf')]


@pytest.mark.parametrize('method', _METHODS)
def test_pruning_warm_start_follows_the_schedule(method):
  """Between two updates 10 steps apart the schedule moves k by ~1% of the
  ranks, ten times the band's own reach: Pruning tells the band how far
  (from last_mask_update_step), so the update stays warm, and exact."""
  rng = np.random.default_rng(2)
  weights = rng.standard_normal((200, 200)).astype(np.float32)
  with tf.Graph().as_default() as graph:
    step, _ = _masked_layer(weights)
    hparams = pruning.get_pruning_hparams().parse(
        'threshold_method=%s,initial_sparsity=0.1,target_sparsity=0.5,'
        'threshold_decay=0.0,sparsity_function_end_step=1000,'
        'pruning_frequency=10,seed=5' % method)
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    [found] = _warm_predicates(graph)
    [mask] = pruning.get_masks()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for global_step, warm in ((100, False), (110, True)):
        session.run(step.assign(global_step))
        was_warm, _ = session.run([found, update])
        assert was_warm == warm
        sparsity = reference.scheduled_sparsity(
            global_step, begin_step=0, end_step=1000, initial=0.1,
            target=0.5, exponent=3)
        got = session.run(mask)
        if method == 'exact':
          assert np.count_nonzero(got) == reference.keep_count(
              weights.size, sparsity)
        else:
          np.testing.assert_array_equal(
              got, _expected_mask(weights, method, 'elementwise', sparsity))
