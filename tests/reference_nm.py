"""Numpy oracles for N:M sparsity (never imports model_pruning).

The oracle sorts each group with a stable sort, the slow obvious way, so it is
independent of the pairwise-rank counting the library uses.
"""
import numpy as np


def m_by_n_mask(weights, m, n, saliency=None, axis=-2):
  """Keeps the m largest scores of every n along `axis`; ties -> lower index."""
  weights = np.asarray(weights)
  score = np.abs(weights) if saliency is None else np.asarray(saliency)
  score = np.moveaxis(score.astype(np.float64), axis, -1)
  depth = score.shape[-1]
  pad = (-depth) % n
  padded = np.concatenate(
      [score, np.full(score.shape[:-1] + (pad,), -np.inf)], axis=-1)
  groups = padded.reshape(-1, n)
  mask = np.zeros_like(groups)
  for row, group in enumerate(groups):
    order = np.argsort(-group, kind='stable')  # stable: ties keep index order
    mask[row, order[:m]] = 1.0
  mask = mask.reshape(padded.shape)[..., :depth]
  return np.moveaxis(mask, -1, axis).astype(weights.dtype)


def nonzeros_per_group(array, n, axis=-2):
  """Non-zero count of every n-group along `axis` (partial last group too)."""
  nonzero = np.moveaxis(np.asarray(array) != 0, axis, -1)
  counts = []
  for line in nonzero.reshape(-1, nonzero.shape[-1]):
    for start in range(0, line.size, n):
      counts.append(int(line[start:start + n].sum()))
  return np.array(counts)
