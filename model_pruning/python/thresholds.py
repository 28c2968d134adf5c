"""Threshold and mask math for the three `threshold_method`s (SPEC 2.4.7).

Pure tensor functions: magnitudes in, threshold or mask out.

All three rest on one primitive, `kth_largest`: the k-th largest of N values.
Sorting all N values (upstream) costs seconds at 4096x4096. We instead sort a
random sample, bracket the k-th value between two sample order statistics with
a wide statistical margin, count what lies above the bracket in one pass, and
sort only the few values inside it. If the bracket ever misses (probability
below 1e-5, or adversarial data), a full sort gives the same exact answer.

* histogram (variant H): theta = (j / nbins) * max, with j the number of bins
  whose normalised CDF is below s; mask = |w| > theta. j is the bin of the
  c*-th smallest value (c* the smallest count with c*/N >= s), so it is
  computed exactly from one order statistic instead of a full histogram.
* sort (variant T): theta = k-th largest |w|, k = round(N * (1 - s)) clamped
  to [1, N]; mask = |w| >= theta (ties kept).
* exact (variant X): exactly k survive; ties at the k-th value broken at
  random (seeded when a seed is given).
"""
import math

import tensorflow as tf

_FULL_SORT_MAX_SIZE = 1 << 14
_SAMPLE_SIZE = 1 << 15
_MARGIN_STDDEVS = 5.0
_SAMPLE_SEED = (20171107, 1)


def _sorted_descending(values):
  return tf.sort(values, direction='DESCENDING')


def keep_count(size, sparsity):
  """k = round(N * (1 - s)) in float32 then int32 (round half to even)."""
  return tf.cast(
      tf.round(tf.cast(size, tf.float32) * (1.0 - tf.cast(sparsity,
                                                          tf.float32))),
      tf.int32)


def _bracket(values, k, size):
  """Sample bounds (low, high) that hold the k-th largest with high odds."""
  sample_index = tf.random.stateless_uniform(
      [_SAMPLE_SIZE], seed=_SAMPLE_SEED, minval=0, maxval=size,
      dtype=tf.int32)
  sample = _sorted_descending(tf.gather(values, sample_index))
  fraction = tf.cast(k, tf.float32) / float(size)
  expected = fraction * _SAMPLE_SIZE
  margin = _MARGIN_STDDEVS * tf.sqrt(
      _SAMPLE_SIZE * fraction * (1.0 - fraction)) + 2.0
  high_index = tf.cast(tf.floor(expected - margin), tf.int32)
  low_index = tf.cast(tf.math.ceil(expected + margin), tf.int32)
  inf = tf.constant(math.inf, values.dtype)
  high = tf.where(high_index >= 0,
                  tf.gather(sample, tf.maximum(high_index, 0)), inf)
  low = tf.where(low_index < _SAMPLE_SIZE,
                 tf.gather(sample, tf.minimum(low_index, _SAMPLE_SIZE - 1)),
                 -inf)
  return low, high


def kth_largest_with_counts(values, k):
  """Returns (v, count_above, count_at) for the k-th largest of 1-D `values`.

  v = the k-th largest value (1 <= k <= N, a scalar int32 tensor);
  count_above = #(values > v); count_at = #(values == v). NaNs must have been
  removed by the caller.
  """
  size = values.get_shape().as_list()[0]
  if size <= _FULL_SORT_MAX_SIZE:
    ordered = _sorted_descending(values)
    kth = ordered[k - 1]
    return kth, _count(ordered > kth), _count(tf.equal(ordered, kth))

  low, high = _bracket(values, k, size)
  above_band = _count(values > high)
  candidates = tf.boolean_mask(values, (values >= low) & (values <= high))
  rank_in_band = k - above_band
  num_candidates = tf.size(candidates)
  found = (rank_in_band >= 1) & (rank_in_band <= num_candidates)

  def from_band():
    ordered = _sorted_descending(candidates)
    kth = ordered[rank_in_band - 1]
    return (kth, above_band + _count(ordered > kth),
            _count(tf.equal(ordered, kth)))

  def from_full_sort():
    ordered = _sorted_descending(values)
    kth = ordered[k - 1]
    return kth, _count(ordered > kth), _count(tf.equal(ordered, kth))

  return tf.cond(found, from_band, from_full_sort)


def _count(condition):
  return tf.reduce_sum(tf.cast(condition, tf.int32))


def sort_threshold(magnitudes, sparsity):
  """Variant T: the k-th largest magnitude, k clamped to [1, N]."""
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  k = tf.clip_by_value(keep_count(size, sparsity), 1, size)
  kth, _, _ = kth_largest_with_counts(values, k)
  return kth


def histogram_threshold(magnitudes, sparsity, nbins):
  """Variant H: the bin-quantised threshold of the normalised-CDF method.

  Worked example: magnitudes 1..100, s = 0.5, nbins = 256: c* = 50, the 50th
  smallest is 50, its bin is floor(256 * 50 / 100) = 128, so theta =
  128 / 256 * 100 = 50.0 and 50 weights survive (nbins = 255: theta = 49.8,
  51 survive).
  """
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  dtype = values.dtype
  sparsity = tf.cast(sparsity, tf.float32)
  # Smallest c in [0, N] with float32(c / N) >= s, as upstream's float32 CDF.
  guess = tf.cast(tf.math.ceil(sparsity * size), tf.int32)
  candidates = tf.clip_by_value(guess + tf.constant([-1, 0, 1]), 0, size)
  meets = tf.cast(candidates, tf.float32) / float(size) >= sparsity
  count_below = tf.reduce_min(tf.where(meets, candidates, size))
  k = tf.clip_by_value(size - count_below + 1, 1, size)
  kth, _, _ = kth_largest_with_counts(values, k)
  max_value = tf.reduce_max(values)
  safe_max = tf.where(max_value > 0, max_value, tf.ones([], dtype))
  bin_index = tf.floor(float(nbins) * (kth / safe_max))
  bin_index = tf.clip_by_value(bin_index, 0.0, float(nbins - 1))
  threshold = bin_index / float(nbins) * max_value
  return tf.where(count_below > 0, threshold, tf.zeros([], dtype))


def exact_k_mask(magnitudes, k, seed=None, step=None):
  """Variant X: (k-th largest value, boolean mask with exactly k True).

  0 <= k <= N; for k = 0 the value is the largest magnitude and the mask is
  all False.

  Entries above the k-th largest value are kept; among entries equal to it,
  just enough are kept, chosen uniformly at random. With `seed`, the choice
  is a deterministic function of (seed, step).
  """
  shape = tf.shape(magnitudes)
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  k = tf.clip_by_value(tf.cast(k, tf.int32), 0, size)
  kth, above, at = kth_largest_with_counts(values, tf.maximum(k, 1))
  needed_ties = k - above

  def keep_all_ties():
    return values >= kth

  def keep_some_ties():
    tie_index = tf.where(tf.equal(values, kth))[:, 0]
    num_ties = tf.size(tie_index)
    if seed is None:
      keys = tf.random.uniform([num_ties])
    else:
      step_seed = tf.cast(step if step is not None else 0, tf.int32)
      keys = tf.random.stateless_uniform(
          [num_ties], seed=tf.stack([tf.constant(seed, tf.int32), step_seed]))
    _, order = tf.math.top_k(keys, k=needed_ties)
    chosen = tf.gather(tie_index, order)
    chosen_mask = tf.scatter_nd(chosen[:, tf.newaxis],
                                tf.ones_like(chosen, dtype=tf.int32),
                                [size]) > 0
    return (values > kth) | chosen_mask

  mask = tf.cond(needed_ties >= at, keep_all_ties, keep_some_ties)
  mask = tf.logical_and(mask, k > 0)
  return kth, tf.reshape(mask, shape)
