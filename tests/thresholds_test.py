"""thresholds.py against full-sort / full-histogram numpy oracles.

The fast k-th selection has several paths (direct sort, sampled bracket over
one or many chunks, a second bracket on the candidates, the full-sort
fallback); the `path` fixture shrinks the module's size constants so that
small tensors take each of them, and every test runs on every path.
"""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import saliency_masks
from model_pruning.python import thresholds
from tests import reference

_SMALL = dict(_CHUNK_SIZE=4096, _FULL_SORT_MAX_SIZE=256, _SAMPLE_SIZE=512,
              _INNER_SAMPLE_SIZE=64)
# (name, constants to patch, tensor size). Sizes are chosen so that each path
# really runs: e.g. 'chunked' splits 12000 values into 3 chunks and its
# bracket holds ~2500 candidates, more than the 256 sorted directly, so they
# are bracketed once more.
_PATHS = [
    ('direct_sort', {}, 2000),
    ('bracket', {}, 40000),
    ('chunked', _SMALL, 12000),
    ('fallback', dict(_SMALL, _MARGIN_STDDEVS=-1000.0), 12000),
    ('inner_fallback', dict(_SMALL, _INNER_MARGIN_STDDEVS=-1000.0), 12000),
]


# The last three paths build many cond branches (tens of seconds on a busy
# 2-core machine): they still run in CI.
_SLOW_PATHS = ('bracket', 'fallback', 'inner_fallback')


@pytest.fixture(params=[
    pytest.param(p, marks=pytest.mark.slow) if p[0] in _SLOW_PATHS else p
    for p in _PATHS], ids=[p[0] for p in _PATHS])
def path(request, monkeypatch):
  """Returns the tensor size for this path, with its constants patched."""
  _, constants, size = request.param
  for name, value in constants.items():
    monkeypatch.setattr(thresholds, name, value)
  return size


def _data(kind, size, seed=0):
  rng = np.random.default_rng(seed)
  if kind == 'gaussian':
    return np.abs(rng.standard_normal(size)).astype(np.float32)
  if kind == 'few_values':  # heavy ties everywhere
    return rng.integers(0, 7, size).astype(np.float32)
  if kind == 'constant':
    return np.full(size, 0.25, np.float32)
  if kind == 'zeros_and_inf':
    values = np.abs(rng.standard_normal(size)).astype(np.float32)
    values[: size // 3] = 0.0
    values[rng.choice(size, 5, replace=False)] = np.inf
    return values
  raise ValueError(kind)


_KINDS = ['gaussian', 'few_values', 'constant', 'zeros_and_inf']


def _run(build, values):
  """Builds `build(constant)` in a fresh graph and runs it in a session."""
  with tf.Graph().as_default():
    result = build(tf.constant(values))
    with tf.compat.v1.Session() as session:
      return session.run(result)


_SPARSITIES = [0.0, 0.5, 0.9, 0.999]
_HISTOGRAM_CASES = [(256, s) for s in _SPARSITIES] + [(255, 0.5)]


def _build_all(values, ks):
  """Every public function for several k / sparsities, in one graph."""
  return dict(
      kth=[thresholds.kth_largest_with_counts(values, tf.constant(k))
           for k in ks],
      sort=[thresholds.sort_threshold(values, s) for s in _SPARSITIES],
      histogram=[thresholds.histogram_threshold(values, s, nbins)
                 for nbins, s in _HISTOGRAM_CASES],
      exact=[thresholds.exact_k_mask(values, k, seed=7, step=3)
             for k in [0] + ks])


@pytest.mark.parametrize('kind', _KINDS, ids=_KINDS)
def test_every_method_matches_the_oracle(path, kind):
  values = _data(kind, path)
  ks = [1, path // 4, path // 2, path]
  got = _run(lambda v: _build_all(v, ks), values)
  for k, result in zip(ks, got['kth']):
    assert tuple(result) == reference.kth_largest_with_counts(values, k), k
  for sparsity, result in zip(_SPARSITIES, got['sort']):
    assert result == reference.sort_threshold(values, sparsity), sparsity
  # Variant H scales by the max, so it needs finite values: the caller
  # (saliency_masks) replaces Inf first; see the NaN/Inf test below.
  histograms = got['histogram'] if np.all(np.isfinite(values)) else []
  for (nbins, sparsity), result in zip(_HISTOGRAM_CASES, histograms):
    expected = reference.histogram_threshold(values, sparsity, nbins)
    # The graph may round (j / nbins) * max differently by one ulp.
    np.testing.assert_array_max_ulp(result, expected, maxulp=1)
  for k, (kth, mask) in zip([0] + ks, got['exact']):
    assert mask.shape == values.shape
    assert np.count_nonzero(mask) == k
    expected_kth = reference.kth_largest_with_counts(values, max(k, 1))[0]
    assert kth == expected_kth
    if k:
      assert np.all(mask[values > expected_kth])
      assert not np.any(mask[values < expected_kth])


def test_exact_k_mask_tie_break_is_seeded():
  values = _data('few_values', 5000)
  k = 2500

  def build(v):
    return thresholds.exact_k_mask(v, k, seed=11, step=4)[1]

  first, second = _run(build, values), _run(build, values)
  np.testing.assert_array_equal(first, second)
  other_step = _run(lambda v: thresholds.exact_k_mask(v, k, seed=11,
                                                      step=5)[1], values)
  assert np.count_nonzero(other_step) == k
  assert np.any(other_step != first)


def test_histogram_threshold_worked_example():
  """W = 1..100, s = 0.5: theta 50 with 256 bins, 49.8 with 255 (docs/upstream.md)."""
  values = np.arange(1, 101, dtype=np.float32)
  for nbins, survivors in ((256, 50), (255, 51)):
    theta = _run(lambda v, b=nbins: thresholds.histogram_threshold(v, 0.5, b),
                 values)
    assert np.count_nonzero(values > theta) == survivors


def test_threshold_and_mask_with_nan_and_inf(path):
  """NaN counts as magnitude 0 and Inf as the float32 max, on every path."""
  values = _data('gaussian', path, seed=4)
  values[::97] = np.nan
  values[5] = np.inf
  clean = reference.finite_magnitudes(values)
  sparsity = 0.7
  methods = ['histogram', 'sort', 'exact']

  def build(v):
    return [saliency_masks.threshold_and_mask(
        v, sparsity, 0.0, saliency_masks.ThresholdMethod(
            name=name, nbins=256, decay=0.0, seed=1, step=0))
            for name in methods]

  got = dict(zip(methods, _run(build, values)))
  theta, mask = got['histogram']
  expected = reference.histogram_threshold(clean, sparsity, 256)
  np.testing.assert_array_max_ulp(theta, expected, maxulp=1)
  np.testing.assert_array_equal(mask, (clean > theta).astype(np.float32))
  theta, mask = got['sort']
  assert theta == reference.sort_threshold(clean, sparsity)
  np.testing.assert_array_equal(mask, (clean >= theta).astype(np.float32))
  theta, mask = got['exact']
  k = reference.keep_count(values.size, sparsity)
  assert theta == reference.kth_largest_with_counts(clean, k)[0]
  assert np.count_nonzero(mask) == k
  for _, mask in got.values():
    assert not np.any(mask[np.isnan(values)])


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_reduce_max_propagates_nan_wherever_it_is(dtype):
  """saliency_masks skips its cleaning pass when max(|w|) is finite: that
  relies on TensorFlow's reduce_max returning NaN for any NaN input, at any
  position (vectorised lanes, chunk edges, the tail)."""
  rng = np.random.default_rng(4)
  cases = []
  for size in (1, 7, 16, 17, 1000, 4099, 100003, 1 << 20):
    for position in sorted({0, 1, size // 2, size - 2, size - 1,
                            int(rng.integers(size))}):
      if 0 <= position < size:
        values = rng.random(size).astype(dtype)
        values[position] = np.nan
        cases.append(values)
  with tf.Graph().as_default():
    feed = tf.compat.v1.placeholder(dtype, [None])
    largest = tf.reduce_max(feed)
    with tf.compat.v1.Session() as session:
      results = [session.run(largest, {feed: v}) for v in cases]
  assert all(np.isnan(r) for r in results)


@pytest.mark.parametrize('size', [10, 255, 256, 257, 128 * 300, 128 * 300 + 5,
                                  1 << 18])
def test_count_large_matches_numpy(size):
  condition = np.random.default_rng(size).random(size) < 0.3
  with tf.Graph().as_default():
    count = thresholds._count_large(tf.constant(condition))  # pylint: disable=protected-access
    with tf.compat.v1.Session() as session:
      assert session.run(count) == np.count_nonzero(condition)


def test_same_bin_as_kth_finds_the_kth_values_bin_without_sorting():
  """Against numpy: the bin of the rank-th largest, for every rank, with
  values exactly on bin edges and repeated values."""
  nbins, max_value = 16, 3.2
  rng = np.random.default_rng(7)
  edges = (np.arange(nbins) * max_value / nbins).astype(np.float32)
  band = np.concatenate([rng.uniform(0.0, max_value, 200), edges, edges[:5],
                         [max_value]]).astype(np.float32)

  def numpy_bin(value):  # as histogram_bin: float64 of the float32 maximum
    return min(max(np.floor(np.float64(value) * nbins /
                            np.float64(np.float32(max_value))), 0.0),
               nbins - 1)

  ordered = np.sort(band)[::-1]
  ranks = list(range(1, band.size + 1))
  with tf.Graph().as_default():
    rank = tf.compat.v1.placeholder(tf.int32, [])
    value = thresholds.same_bin_as_kth(tf.constant(band), rank,
                                       tf.constant(max_value, tf.float32),
                                       nbins)
    with tf.compat.v1.Session() as session:
      got = [session.run(value, {rank: r}) for r in ranks]
  for r, v in zip(ranks, got):
    assert v in band
    assert numpy_bin(v) == numpy_bin(ordered[r - 1]), r
