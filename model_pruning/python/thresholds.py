"""Threshold and mask math for the three `threshold_method`s.

Pure tensor functions: magnitudes in, threshold or mask out.

All three rest on one primitive, `kth_largest_with_counts`: the k-th largest
of N values. Sorting all N values (upstream) costs seconds at 4096x4096. We
instead sort a random sample, bracket the k-th value between two sample order
statistics with a wide statistical margin (5 standard deviations), and then,
in one pass over the values cut into cache-sized chunks, count what lies above
the bracket and collect the few values inside it. The bracketed candidates go
through the same step once more (or are sorted when few), so no large
temporary is ever sorted or even allocated. If a bracket ever misses
(probability below 1e-5, or adversarial data), a full sort of that level's
values gives the same exact answer.

* histogram (variant H): theta = (j / nbins) * max, with j the number of bins
  whose normalised CDF is below s; mask = |w| > theta. j is the bin of the
  c*-th smallest value (c* the smallest count with c*/N >= s), so it is
  computed exactly from one order statistic instead of a full histogram.
* sort (variant T): theta = k-th largest |w|, k = round(N * (1 - s)) clamped
  to [1, N]; mask = |w| >= theta (ties kept).
* exact (variant X): exactly k survive; ties at the k-th value broken at
  random (seeded when a seed is given).

Warm start (`warm_band`, `kth_in_band`): between two frequent updates the
weights barely move, so the new k-th value lies next to the previous
threshold. One band pass over a narrow band around theta_prev (sized from
an 8K-value sample to about +-0.1% of the ranks, widened by the ranks the
schedule moved k since then) counts what lies above and collects the values
inside, which are few and go to the candidates' selection: no large sort,
no second bracket, no cleaning pass for NaN/Inf. It reports whether the band
held the k-th value; the caller falls back to the cold path above when it
did not, so the answer is the same exact one either way.
"""
import math

import tensorflow as tf

# At most this many values are sorted directly.
_FULL_SORT_MAX_SIZE = 1 << 14
# Values are scanned in chunks of this many elements: each chunk's temporaries
# (a few hundred KB) stay in cache and below glibc's mmap threshold, and the
# chunks run on all inter-op threads.
_CHUNK_SIZE = 1 << 20
_MAX_CHUNKS = 64
_SAMPLE_SIZE = 1 << 15
_INNER_SAMPLE_SIZE = 1 << 12
_MARGIN_STDDEVS = 5.0
_INNER_MARGIN_STDDEVS = 5.0
# Warm start: the band around the previous threshold spans about this share
# of the ranks either side, read off a sample of this size.
_WARM_RANK_FRACTION = 1.0 / 1024
_WARM_SAMPLE_SIZE = 1 << 13
# ... and at most 1/16 of the sample's positions past the hint (a schedule
# move longer than ~6% of the ranks is left to the cold path).
_WARM_MAX_REACH_DIVISOR = 16
# Tensors up to this size are sorted directly, with no warm start.
_WARM_MIN_SIZE = 1 << 12
_WARM_MAX_CHUNKS = 32
_SAMPLE_SEED = (20171107, 1)
# Booleans are counted in uint8 rows of this many (no overflow below 256).
_COUNT_ROW = 128
_INNER_SAMPLE_SEED = (20171107, 2)


def warm_start_min_size():
  """Tensors up to this size are sorted directly, without a warm start."""
  return _WARM_MIN_SIZE


def _sorted_descending(values):
  return tf.sort(values, direction='DESCENDING')


def keep_count(size, sparsity):
  """k = round(N * (1 - s)) in float32 then int32 (round half to even)."""
  return tf.cast(
      tf.round(tf.cast(size, tf.float32) * (1.0 - tf.cast(sparsity,
                                                          tf.float32))),
      tf.int32)


def _count(condition):
  return tf.reduce_sum(tf.cast(condition, tf.int32))


def _count_large(condition):
  """#True of a 1-D boolean tensor of static size, via byte row sums.

  Summing uint8 rows of _COUNT_ROW values (at most 128, so no overflow) and
  then the few row sums reads the booleans once and writes 1/128 of them,
  where a cast to int32 writes and reads 4 bytes per value: about 2.5x
  faster per million values (docs/benchmarks.md).
  """
  size = condition.get_shape().as_list()[0]
  if size is None or size < 2 * _COUNT_ROW:
    return _count(condition)
  rows = size // _COUNT_ROW
  head_size = rows * _COUNT_ROW
  pieces = (tf.split(condition, [head_size, size - head_size])
            if head_size < size else [condition])
  bytes_ = tf.reshape(tf.cast(pieces[0], tf.uint8), [rows, _COUNT_ROW])
  total = tf.reduce_sum(tf.cast(tf.reduce_sum(bytes_, axis=1), tf.int32))
  return total + _count(pieces[1]) if len(pieces) > 1 else total


def _split(values, max_chunks=None):
  """Static chunks of a 1-D tensor; dim-0 splits share the buffer (no copy).

  At most _MAX_CHUNKS chunks, so the graph stays small for huge weights (a
  1e9-element weight would otherwise need ~3800 chunks, ~30k ops, and
  minutes and gigabytes just to build).
  """
  size = values.get_shape().as_list()[0]
  chunk = max(_CHUNK_SIZE, -(-size // (max_chunks or _MAX_CHUNKS)))
  if size <= chunk:
    return [values]
  sizes = [chunk] * (size // chunk)
  if size % chunk:
    sizes.append(size % chunk)
  return tf.split(values, sizes)


def _bracket(values, k, size, sample_size, seed, margin_stddevs):
  """Sample bounds (low, high) that hold the k-th largest with high odds.

  A sample of n draws (with replacement) has about k n / N values above the
  k-th largest, with standard deviation sqrt(n p (1 - p)), p = k / N; the
  bounds are the sample order statistics 5 deviations (+2) either side.
  """
  sample_index = tf.random.stateless_uniform(
      [sample_size], seed=seed, minval=0, maxval=size, dtype=tf.int32)
  sample = _sorted_descending(tf.gather(values, sample_index))
  fraction = tf.cast(k, tf.float32) / tf.cast(size, tf.float32)
  expected = fraction * sample_size
  margin = margin_stddevs * tf.sqrt(
      sample_size * fraction * (1.0 - fraction)) + 2.0
  high_index = tf.cast(tf.floor(expected - margin), tf.int32)
  low_index = tf.cast(tf.math.ceil(expected + margin), tf.int32)
  inf = tf.constant(math.inf, values.dtype)
  high = tf.where(high_index >= 0, tf.gather(sample, _clamp(high_index,
                                                            sample_size)), inf)
  low = tf.where(low_index < sample_size,
                 tf.gather(sample, _clamp(low_index, sample_size)), -inf)
  return low, high


def _clamp(index, size):
  return tf.clip_by_value(index, 0, size - 1)


def _band_pass(chunks, low, high):
  """(#(v > high), the values in [low, high]) in one pass over the chunks."""
  counts, bands = [], []
  for chunk in chunks:
    at_least_low = chunk >= low
    band = tf.boolean_mask(chunk, tf.logical_and(at_least_low, chunk <= high))
    # #(v > high) = #(v >= low) - #(low <= v <= high): one pass fewer than
    # counting `chunk > high` separately.
    counts.append(_count_large(at_least_low) - tf.size(band))
    bands.append(band)
  if len(chunks) == 1:
    return counts[0], bands[0]
  return tf.add_n(counts), tf.concat(bands, axis=0)


def _by_sort(values, k):
  """(k-th largest, #above, #equal) by sorting `values` (1 <= k <= N)."""
  ordered = _sorted_descending(values)
  kth = ordered[k - 1]
  return kth, _count(ordered > kth), _count(tf.equal(ordered, kth))


def _from_band(band, k, above, fallback, select):
  """Finishes the selection in `band` when the bracket held the k-th value."""
  rank = k - above
  found = tf.logical_and(rank >= 1, rank <= tf.size(band))

  def in_band():
    kth, band_above, at = select(band, rank)
    return kth, above + band_above, at

  return tf.cond(found, in_band, fallback)


def _kth_of_few(values, k):
  """Selection in a 1-D tensor of dynamic (usually small) size."""
  size = tf.size(values)

  def bracketed():
    low, high = _bracket(values, k, size, _INNER_SAMPLE_SIZE,
                         _INNER_SAMPLE_SEED, _INNER_MARGIN_STDDEVS)
    above, band = _band_pass([values], low, high)
    return _from_band(band, k, above, lambda: _by_sort(values, k), _by_sort)

  return tf.cond(size <= _FULL_SORT_MAX_SIZE, lambda: _by_sort(values, k),
                 bracketed)


def kth_largest_with_counts(values, k):
  """Returns (v, count_above, count_at) for the k-th largest of 1-D `values`.

  v = the k-th largest value (1 <= k <= N, a scalar int32 tensor);
  count_above = #(values > v); count_at = #(values == v). NaNs must have been
  removed by the caller.
  """
  size = values.get_shape().as_list()[0]
  if size <= _FULL_SORT_MAX_SIZE:
    return _by_sort(values, k)
  # A sample much smaller than N keeps the sort cheap for mid-sized tensors.
  sample_size = min(_SAMPLE_SIZE, max(size // 128, _INNER_SAMPLE_SIZE))
  low, high = _bracket(values, k, size, sample_size, _SAMPLE_SEED,
                       _MARGIN_STDDEVS)
  above, band = _band_pass(_split(values), low, high)
  return _from_band(band, k, above, lambda: _by_sort(values, k), _kth_of_few)


def _sample_reach(shift, size, sample_size):
  """Sample positions (up, down) the band reaches above and below the hint.

  About _WARM_RANK_FRACTION of the ranks either side (what weights that
  moved a little since the last update cross), plus, on the side the
  schedule moved the k-th value to, the `shift` = k_new - k_prev ranks it
  moved (k falls as sparsity rises, so the threshold rises: reach up).
  At most 1 / _WARM_MAX_REACH_DIVISOR of the sample either side: a longer
  move is left to the cold path.
  """
  reach = max(2, int(round(_WARM_RANK_FRACTION * sample_size)))
  limit = max(reach, sample_size // _WARM_MAX_REACH_DIVISOR)
  if shift is None:
    return reach, reach
  # The sample's count over `m` expected positions varies by about sqrt(m):
  # reach 4 deviations further.
  expected = tf.abs(tf.cast(shift, tf.float32)) * (sample_size / size)
  moved = tf.cast(tf.math.ceil(expected + 4.0 * tf.sqrt(expected)), tf.int32)
  up = reach + tf.where(shift < 0, moved, 0)
  down = reach + tf.where(shift > 0, moved, 0)
  return tf.minimum(up, limit), tf.minimum(down, limit)


def warm_band(values, k, hint, extra_width=0.0, finite=False, shift=None):
  """(band, rank, above, found): the k-th largest's neighbourhood of `hint`.

  h = `hint` is the previous threshold, `shift` (optional) = k - k_prev, how
  many ranks the schedule moved the k-th value since h was the k_prev-th.
  The band [low, high] reaches, read off a sample (`_sample_reach`), about
  _WARM_RANK_FRACTION of the ranks either side of h, plus the shift and its
  sampling error, and its upper end extra_width further (so it holds the
  new k-th value when at most that share of values crossed it since, at
  any threshold size, even near 0).
  One pass: `above` counts the values above `high`, `band` holds those
  inside, `rank` = k - above is the k-th largest's rank within the band, and
  `found` says the band holds it (and low > 0, high finite). Finish with
  `kth_in_band`.

  The sample is never sorted: the band's ends are the up-th smallest sample
  value above h and the down-th largest at or below it (two small top-k),
  or 2 h and h / 2 when the sample has fewer.

  NaN and +-Inf need no cleaning first: with low > 0 a NaN (cleaned to 0)
  lies below the band, and an Inf (cleaned to the largest finite value)
  above a finite `high`, cleaned or not, so counts and the k-th value are
  those of the cleaned values.
  """
  dtype = values.dtype
  size = values.get_shape().as_list()[0]
  hint = tf.cast(hint, dtype)
  sample_size = min(_WARM_SAMPLE_SIZE, size)
  sample = tf.gather(values, tf.random.stateless_uniform(
      [sample_size], seed=_SAMPLE_SEED, minval=0, maxval=size,
      dtype=tf.int32))
  up, down = _sample_reach(shift, size, sample_size)
  inf = tf.constant(math.inf, dtype)
  # NaN is neither above nor at-or-below h: it takes part in neither end.
  nearest_above = -tf.math.top_k(-tf.where(sample > hint, sample, inf),
                                 up).values[up - 1]
  nearest_below = tf.math.top_k(tf.where(sample <= hint, sample, -inf),
                                down).values[down - 1]
  low = tf.minimum(hint, tf.where(nearest_below > -inf, nearest_below,
                                  hint / 2))
  # `extra_width` on top: the k_prev-th value itself may lie up to that far
  # above h (a histogram threshold is a bin edge below it).
  high = tf.maximum(hint, tf.where(nearest_above < inf, nearest_above,
                                   2 * hint)) + tf.cast(extra_width, dtype)
  # Fewer chunks than the cold pass: the warm pass is built next to it, and
  # a huge weight's graph stays small (a few hundred ops, not thousands).
  above, band = _band_pass(_split(values, _WARM_MAX_CHUNKS), low, high)
  rank = k - above
  # Values already cleaned (`finite`) may use a band from 0: a histogram
  # threshold is 0 whenever the k-th value lies in the first bin.
  low_ok = True if finite else low > 0
  found = low_ok & tf.math.is_finite(high) & (rank >= 1) & (
      rank <= tf.size(band))
  return band, rank, above, found


def kth_in_band(band, rank, above):
  """(v, count_above, count_at) of the whole tensor from a found band."""
  kth, band_above, at = _kth_of_few(band, rank)
  return kth, above + band_above, at


def sort_rank(size, sparsity):
  """k of variant T: round(N (1 - s)) clamped to [1, N]."""
  return tf.clip_by_value(keep_count(size, sparsity), 1, size)


def sort_threshold(magnitudes, sparsity):
  """Variant T: the k-th largest magnitude, k clamped to [1, N]."""
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  kth, _, _ = kth_largest_with_counts(values, sort_rank(size, sparsity))
  return kth


def histogram_rank(size, sparsity):
  """(k, c*) of variant H: c* the smallest c in [0, N] with c / N >= s (as
  upstream's float32 CDF) and k = N - c* + 1 clamped to [1, N], the rank
  from the top of the c*-th smallest value."""
  sparsity = tf.cast(sparsity, tf.float32)
  guess = tf.cast(tf.math.ceil(sparsity * size), tf.int32)
  candidates = tf.clip_by_value(guess + tf.constant([-1, 0, 1]), 0, size)
  # Divide in float64 and round once: a float32 division by the constant N
  # may be rewritten as a multiplication by 1/N, which rounds differently.
  fraction = tf.cast(tf.cast(candidates, tf.float64) / float(size), tf.float32)
  meets = fraction >= sparsity
  count_below = tf.reduce_min(tf.where(meets, candidates, size))
  return tf.clip_by_value(size - count_below + 1, 1, size), count_below


def histogram_bin(values, max_value, nbins):
  """Bin index of each value: floor(v * nbins / max) in float64, clipped to
  [0, nbins - 1] (max <= 0 counts as 1)."""
  # Bin in float64, rounded once, so that no rewrite of a division by a
  # constant into a multiplication can move a value that sits exactly on a
  # bin edge.
  max64 = tf.cast(max_value, tf.float64)
  safe_max = tf.where(max64 > 0, max64, tf.ones([], tf.float64))
  return tf.clip_by_value(
      tf.floor(tf.cast(values, tf.float64) * nbins / safe_max), 0.0,
      float(nbins - 1))


def histogram_from_kth(kth, max_value, count_below, nbins):
  """theta = (floor(kth * nbins / max) / nbins) * max, 0 when c* = 0."""
  dtype = kth.dtype
  bin_index = histogram_bin(kth, max_value, nbins)
  threshold = tf.cast(bin_index * tf.cast(max_value, tf.float64) / nbins,
                      dtype)
  return tf.where(count_below > 0, threshold, tf.zeros([], dtype))


def same_bin_as_kth(band, rank, max_value, nbins):
  """A value of `band` in the histogram bin of its rank-th largest.

  The histogram threshold depends on the k-th value only through its bin,
  and bins are monotone in the value, so counting the band per bin (from
  the top) finds that bin without sorting the band: the smallest band value
  in it has the same bin by the same formula (`histogram_bin`).
  """
  bins = tf.cast(histogram_bin(band, max_value, nbins), tf.int32)
  counts = tf.math.bincount(bins, minlength=nbins, maxlength=nbins,
                            dtype=tf.int32)
  from_top = tf.cumsum(counts, reverse=True)
  kth_bin = _count(from_top >= rank) - 1
  return tf.reduce_min(tf.where(tf.equal(bins, kth_bin), band,
                                tf.constant(math.inf, band.dtype)))


def histogram_threshold(magnitudes, sparsity, nbins):
  """Variant H: the bin-quantised threshold of the normalised-CDF method.

  Worked example: magnitudes 1..100, s = 0.5, nbins = 256: c* = 50, the 50th
  smallest is 50, its bin is floor(256 * 50 / 100) = 128, so theta =
  128 / 256 * 100 = 50.0 and 50 weights survive (nbins = 255: theta = 49.8,
  51 survive).
  """
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  k, count_below = histogram_rank(size, sparsity)
  kth, _, _ = kth_largest_with_counts(values, k)
  return histogram_from_kth(kth, tf.reduce_max(values), count_below, nbins)


def exact_k_mask(magnitudes, k, seed=None, step=None):
  """Variant X: (k-th largest value, boolean mask with exactly k True).

  0 <= k <= N; for k = 0 the value is the largest magnitude and the mask is
  all False.

  Entries above the k-th largest value are kept; among entries equal to it,
  just enough are kept, chosen uniformly at random. With `seed`, the choice
  is a deterministic function of (seed, step).
  """
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  k = exact_rank(size, k)
  kth, above, at = kth_largest_with_counts(values, tf.maximum(k, 1))
  return exact_mask_from_kth(magnitudes, k, (kth, above, at), seed, step)


def exact_rank(size, k):
  """k of variant X clamped to [0, N], int32."""
  return tf.clip_by_value(tf.cast(k, tf.int32), 0, size)


def exact_mask_from_kth(magnitudes, k, selection, seed=None, step=None):
  """`exact_k_mask` given `selection` = (v, #above, #at) for max(k, 1)."""
  kth, above, at = selection
  shape = tf.shape(magnitudes)
  values = tf.reshape(magnitudes, [-1])
  size = values.get_shape().as_list()[0]
  needed_ties = k - above
  # k = 0 keeps nothing: compare against +inf (values are finite here).
  cut = tf.where(k > 0, kth, tf.constant(math.inf, values.dtype))

  def keep_all_ties():
    return values >= cut

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
  return kth, tf.reshape(mask, shape)
