"""Numpy oracles for gradient-based and group pruning (never imports the package).

Formulas (docs/upstream.md, 2.4.8, 2.4.13, 2.4.14):

* gradient saliency update:  g <- r g + (1 - r) l2_normalize(|m|), with the
  movement m = W - W_old (first order) or W + W_oldold - 2 W_old (second),
  l2_normalize(x) = x / sqrt(max(sum(x^2), 1e-12)) over all elements;
* saliency used for masks: |W| * g (blocks: pool(|W|) * pool(|g|));
* k = round(N (1 - s)) survivors, computed in float32, round half to even;
* sort:      theta = k-th largest, mask = a >= theta (ties kept);
* exact:     exactly k survive (here: values must be distinct);
* histogram: theta = #{i : cdf[i] < s} / B * max(a), mask = a > theta;
* groups: the members' scores are concatenated and thresholded together.
"""
import numpy as np

METHODS = ('histogram', 'sort', 'exact')


def l2_normalize(values):
  values = np.asarray(values, np.float64)
  return values / np.sqrt(max(np.sum(values**2), 1e-12))


def decayed_gradient(weight, old_weight, gradient, rate, old_old_weight=None):
  """One gradient-accumulator update (first order when old_old is None)."""
  weight = np.asarray(weight, np.float64)
  old_weight = np.asarray(old_weight, np.float64)
  if old_old_weight is None:
    movement = weight - old_weight
  else:
    movement = weight + np.asarray(old_old_weight, np.float64) - 2 * old_weight
  return rate * np.asarray(gradient, np.float64) + (
      1 - rate) * l2_normalize(np.abs(movement))


def keep_count(size, sparsity):
  """k = round(N (1 - s)) in float32, round half to even (as tf.round)."""
  kept = np.float32(size) * (np.float32(1.0) - np.float32(sparsity))
  return int(np.round(kept))


def sort_threshold(scores, sparsity):
  flat = np.sort(np.ravel(scores))[::-1]
  k = min(max(keep_count(flat.size, sparsity), 1), flat.size)
  return flat[k - 1]


def histogram_threshold(scores, sparsity, nbins):
  """Variant H on non-negative scores: bin-quantised CDF threshold."""
  flat = np.ravel(np.asarray(scores, np.float64))
  top = flat.max()
  if top == 0:
    return 0.0
  bins = np.clip(np.floor(nbins * flat / top), 0, nbins - 1).astype(int)
  cdf = np.cumsum(np.bincount(bins, minlength=nbins)) / flat.size
  return np.sum(cdf.astype(np.float32) < np.float32(sparsity)) / nbins * top


def element_mask(scores, sparsity, method, nbins=256, previous_threshold=0.0,
                 decay=0.0):
  """(threshold, 0/1 mask) of one score tensor for one threshold method."""
  scores = np.asarray(scores, np.float64)
  if method == 'exact':
    flat = np.ravel(scores)
    if len(np.unique(flat)) != flat.size:
      raise ValueError('the exact oracle needs distinct scores')
    k = keep_count(flat.size, sparsity)
    keep = np.zeros(flat.size)
    keep[np.argsort(-flat)[:k]] = 1.0
    return None, keep.reshape(scores.shape)
  if method == 'sort':
    threshold = sort_threshold(scores, sparsity)
  else:
    threshold = histogram_threshold(scores, sparsity, nbins)
  threshold = (1 - decay) * threshold + decay * previous_threshold
  if method == 'sort':
    return threshold, (scores >= threshold).astype(np.float64)
  return threshold, (scores > threshold).astype(np.float64)


def pool_blocks(matrix, block_dims, pooling):
  """AVG/MAX over non-overlapping blocks; edge blocks use real cells only."""
  matrix = np.asarray(matrix, np.float64)
  height, width = block_dims
  rows = -(-matrix.shape[0] // height)
  cols = -(-matrix.shape[1] // width)
  pooled = np.zeros([rows, cols])
  for r in range(rows):
    for c in range(cols):
      block = matrix[r * height:(r + 1) * height, c * width:(c + 1) * width]
      pooled[r, c] = block.mean() if pooling == 'AVG' else block.max()
  return pooled


def expand_block_mask(block_mask, block_dims, shape):
  """M[r, c] = m[r // bh, c // bw], cropped to `shape`."""
  expanded = np.kron(block_mask, np.ones(block_dims))
  return expanded[:shape[0], :shape[1]]


def block_scores(weight, block_dims, pooling, gradient=None):
  """pool(|W|), times pool(|g|) for gradient pruning."""
  scores = pool_blocks(np.abs(weight), block_dims, pooling)
  if gradient is not None:
    scores = scores * pool_blocks(np.abs(gradient), block_dims, pooling)
  return scores


def joint_masks(scores_list, sparsity, method, nbins=256):
  """Thresholds the concatenated scores once; returns one mask per member."""
  flat = np.concatenate([np.ravel(s) for s in scores_list])
  _, flat_mask = element_mask(flat, sparsity, method, nbins)
  sizes = np.cumsum([np.size(s) for s in scores_list])[:-1]
  return [piece.reshape(np.shape(s))
          for piece, s in zip(np.split(flat_mask, sizes), scores_list)]


def joint_block_masks(weights, sparsity, method, block_dims, pooling,
                      gradients=None):
  """Group block pruning for 2-D weights: joint threshold on pooled scores."""
  gradients = gradients or [None] * len(weights)
  scores = [block_scores(w, block_dims, pooling, g)
            for w, g in zip(weights, gradients)]
  block_masks = joint_masks(scores, sparsity, method)
  return [expand_block_mask(m, block_dims, np.shape(w))
          for m, w in zip(block_masks, weights)]


def histogram_bin_population(scores, sparsity, nbins):
  """How many scores share the threshold's bin: histogram's count tolerance."""
  flat = np.ravel(np.asarray(scores, np.float64))
  top = flat.max()
  threshold = histogram_threshold(flat, sparsity, nbins)
  width = top / nbins
  return int(np.sum((flat >= threshold - width) & (flat <= threshold + width)))


def scheduled_sparsity(step, initial, target, begin, end, exponent):
  """s(t) = target + (initial - target) (1 - p)^e, p = clip((t-b)/(e-b))."""
  progress = min(max((step - begin) / float(end - begin), 0.0), 1.0)
  return target + (initial - target) * (1.0 - progress)**exponent
