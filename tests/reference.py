"""Plain-numpy oracles for the pruning math. Never imports model_pruning.

Each function recomputes one formula of docs/upstream.md.md the slow, obvious way.
"""
import math

import numpy as np


def schedule(step, begin, end, initial, target, exponent):
  """s(t) = s_f + (s_i - s_f) * (1 - clip((t - t0) / (t1 - t0), 0, 1)) ** e."""
  progress = min(max((step - begin) / float(end - begin), 0.0), 1.0)
  return target + (initial - target) * (1.0 - progress) ** exponent


def keep_count(size, sparsity):
  """k = round(N (1 - s)) in float32, half to even (tf.round)."""
  return int(np.round(np.float32(size) * (np.float32(1.0) -
                                          np.float32(sparsity))))


def histogram_cdf(values, low, high, nbins):
  """Normalised CDF over nbins equal bins of [low, high], ends clipped."""
  values = np.asarray(values, np.float64).ravel()
  index = np.floor(nbins * (values - low) / (high - low)).astype(np.int64)
  index = np.clip(index, 0, nbins - 1)
  counts = np.bincount(index, minlength=nbins).astype(np.float32)
  cdf = np.cumsum(counts)
  return cdf / cdf[-1]


def histogram_threshold(magnitudes, sparsity, nbins):
  """Variant H: theta = (#bins with cdf < s) / nbins * max.

  The CDF is compared in float32 as upstream did; bin edges and the threshold
  are computed exactly (float64) and rounded once to float32.
  """
  magnitudes = np.asarray(magnitudes, np.float32).ravel()
  max_value = np.float64(magnitudes.max())
  if max_value == 0:
    return np.float32(0.0)
  index = np.floor(magnitudes.astype(np.float64) * nbins / max_value)
  index = np.clip(index, 0, nbins - 1).astype(np.int64)
  counts = np.cumsum(np.bincount(index, minlength=nbins))
  cdf = (counts / float(magnitudes.size)).astype(np.float32)
  below = np.count_nonzero(cdf < np.float32(sparsity))
  return np.float32(below * max_value / nbins)


def histogram_mask(weights, sparsity, nbins):
  magnitudes = np.abs(np.asarray(weights, np.float32))
  return (magnitudes > histogram_threshold(magnitudes, sparsity, nbins)
          ).astype(np.float32)


def sort_threshold(magnitudes, sparsity):
  """Variant T: the k-th largest magnitude, k clamped to [1, N]."""
  flat = np.sort(np.asarray(magnitudes).ravel())[::-1]
  k = min(max(keep_count(flat.size, sparsity), 1), flat.size)
  return flat[k - 1]


def sort_mask(weights, sparsity):
  magnitudes = np.abs(np.asarray(weights))
  return (magnitudes >= sort_threshold(magnitudes, sparsity)).astype(
      np.float32)


def block_pool(matrix, block_dims, pooling):
  """Non-overlapping block pooling, SAME padding excluding padded cells."""
  matrix = np.asarray(matrix, np.float64)
  height, width = matrix.shape
  bh, bw = block_dims
  out = np.zeros((math.ceil(height / bh), math.ceil(width / bw)))
  for r in range(out.shape[0]):
    for c in range(out.shape[1]):
      block = matrix[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw]
      out[r, c] = block.max() if pooling == 'MAX' else block.mean()
  return out


def expand(matrix, block_dims):
  """out[r, c] = matrix[r // bh, c // bw] (Kronecker product with ones)."""
  return np.kron(np.asarray(matrix), np.ones(block_dims))


def block_sort_mask(weights, block_dims, pooling, sparsity):
  """Variant T on pooled |W| blocks, expanded and cropped to the weight."""
  weights = np.asarray(weights)
  pooled = block_pool(np.abs(weights), block_dims, pooling)
  block_mask = sort_mask(pooled, sparsity)
  return expand(block_mask, block_dims)[:weights.shape[0], :weights.shape[1]]


def conditional_update_steps(steps, begin, end, frequency):
  """Steps at which the conditional op fires when run once per step."""
  fired, last = [], 0
  for step in steps:
    in_window = step >= begin and (step <= end or end < 0)
    if in_window and last + frequency <= step:
      fired.append(step)
      last = step
  return fired
