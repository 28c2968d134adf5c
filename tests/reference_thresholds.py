"""Plain-numpy oracles for the k-th selection and the three threshold methods.

Never imports model_pruning. Everything is recomputed the slow, obvious way:
a full sort, a full histogram.
"""
import numpy as np


def keep_count(size, sparsity):
  """k = round(N (1 - s)) in float32, half to even (as tf.round)."""
  return int(np.round(np.float32(size) * (np.float32(1.0) -
                                          np.float32(sparsity))))


def kth_largest_with_counts(values, k):
  """(k-th largest, #values above it, #values equal to it), 1 <= k <= N."""
  ordered = np.sort(np.asarray(values).ravel())[::-1]
  kth = ordered[k - 1]
  return kth, int(np.sum(ordered > kth)), int(np.sum(ordered == kth))


def sort_threshold(magnitudes, sparsity):
  """Variant T: the k-th largest magnitude, k clamped to [1, N]."""
  size = np.asarray(magnitudes).size
  k = min(max(keep_count(size, sparsity), 1), size)
  return kth_largest_with_counts(magnitudes, k)[0]


def histogram_threshold(magnitudes, sparsity, nbins):
  """Variant H: theta = (#bins whose normalised CDF < s) / nbins * max.

  Bins of [0, max]: index floor(float32(nbins) * (v / max)), clipped to
  [0, nbins - 1]; float32 math throughout, as the TF graph.
  """
  magnitudes = np.asarray(magnitudes, np.float32).ravel()
  max_value = magnitudes.max()
  if max_value == 0:
    return np.float32(0.0)
  index = np.floor(np.float32(nbins) * (magnitudes / max_value))
  index = np.clip(index, 0, nbins - 1).astype(np.int64)
  cdf = np.cumsum(np.bincount(index, minlength=nbins)).astype(np.float32)
  cdf /= cdf[-1]
  below = np.count_nonzero(cdf < np.float32(sparsity))
  return np.float32(below) / np.float32(nbins) * max_value


def finite_magnitudes(values):
  """NaN -> 0 and +-Inf -> the float32 max, the documented clean-up."""
  values = np.array(values, np.float32)
  values[np.isnan(values)] = 0.0
  return np.minimum(values, np.finfo(np.float32).max)
