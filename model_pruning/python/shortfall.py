"""How far below its target a pruned weight may fall by its method alone.

A threshold method resolves sparsity only so finely: the keep count rounds
to whole cells (or blocks), and a histogram threshold is the lower edge of
the k-th score's bin, so that whole bin stays. `shortfall_allowance` gives
that share from the folded weights alone (pure numpy), for the strip
report's below-target check.
"""
import collections
import warnings

import numpy as np

# How the stored spec picks one weight's zeros: `method` the threshold_method
# ('histogram', 'sort', 'exact'), or None when the scores are not |W| alone
# (gradient pruning) or an N:M pattern fixes the mask; `block_dims` [h, w]
# (-1: the whole dimension) and `pooling` its block_pooling_function.
PruningMethod = collections.namedtuple(
    'PruningMethod', ['method', 'nbins', 'block_dims', 'pooling'])


def _unit_scores(value, block_dims, pooling):
  """(score, cells) of each pruning unit of a folded weight, as float64.

  A unit is one cell, or one block of a weight that squeezes to 2-D with
  block_dims other than [1, 1]; its score is |w|, or the block's 'AVG' or
  'MAX' of |w| over its real cells (edge blocks are cut short, as
  pruning_utils.pool_blocks pools them).
  """
  magnitudes = np.abs(np.asarray(value, np.float64))
  squeezed = [d for d in magnitudes.shape if d != 1]
  if len(squeezed) != 2 or list(block_dims) == [1, 1]:
    flat = magnitudes.ravel()
    return flat, np.ones_like(flat)
  block = [squeezed[i] if block_dims[i] == -1 else block_dims[i]
           for i in range(2)]
  rows, cols = (-(-squeezed[i] // block[i]) for i in range(2))
  shape = (rows, block[0], cols, block[1])
  padded = np.full((rows * block[0], cols * block[1]), np.nan)
  padded[:squeezed[0], :squeezed[1]] = magnitudes.reshape(squeezed)
  real = np.zeros(padded.shape, bool)
  real[:squeezed[0], :squeezed[1]] = True
  pool = np.nanmax if pooling == 'MAX' else np.nanmean
  with warnings.catch_warnings():
    # A block of NaN weights only pools to NaN, which no comparison keeps,
    # without numpy's empty-slice warning.
    warnings.simplefilter('ignore', RuntimeWarning)
    scores = pool(padded.reshape(shape), axis=(1, 3)).ravel()
  cells = np.sum(real.reshape(shape), axis=(1, 3)).ravel()
  return scores, cells.astype(np.float64)


def shortfall_allowance(values, method=None):
  """Share of folded weights' cells their threshold method may leave unpruned.

  One pruning unit (the keep count rounds to whole cells or blocks), plus for
  'histogram' the cells of kept units scoring below s_min + max / nbins,
  s_min the smallest kept score: variant H's threshold theta is its k-th's
  bin edge, theta <= s_min, and it keeps that whole bin [theta, theta +
  max / nbins). Pruned units are the all-zero ones.

  Args:
    values: the folded (masked) weights thresholded together: one weight's
      own, or a pruning group's.
    method: their PruningMethod, or None (one cell's share).
  """
  size = sum(np.size(value) for value in values)
  if method is None:
    return 1.0 / max(1, size)
  if not size:
    return 0.0
  units = [_unit_scores(value, method.block_dims, method.pooling)
           for value in values]
  scores = np.concatenate([unit[0] for unit in units])
  cells = np.concatenate([unit[1] for unit in units])
  allowance = cells.max()
  kept = scores > 0
  if method.method == 'histogram' and kept.any():
    width = scores[kept].max() / method.nbins
    allowance += cells[kept & (scores < scores[kept].min() + width)].sum()
  return float(allowance / cells.sum())
