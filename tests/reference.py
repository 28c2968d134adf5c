"""Plain-numpy oracles for the pruning math. Never imports model_pruning.

Each function recomputes one formula the slow, obvious way (a full sort, a
full histogram, a loop over blocks or groups), independently of the
library's TensorFlow graph, and each formula is written here once. Sections:

* schedule and update steps: s(t), the update predicate, which steps of a
  run update the masks and how many weights survive after each;
* counts, thresholds and masks: k = round(N (1 - s)), the non-finite rule,
  the sort / histogram / exact threshold methods with threshold decay;
* blocks and groups: block pooling and expansion, joint group thresholds;
* gradient pruning: the decayed gradient accumulator;
* N:M sparsity: the per-group mask, group counts, N:M along the schedule;
* zero_fraction.

The topic modules beside this one hold what is not pruning math:
reference_layers (conv / dense / LSTM outputs), reference_tflite (float
error bounds), reference_cifar10 (the data format), reference_hparam
(upstream's hparam pattern).
"""
import math

import numpy as np

# --- schedule and update steps -----------------------------------------------


def scheduled_sparsity(step, *, begin_step=0, end_step=100, initial=0.0,
                       target=0.5, exponent=3.0, dtype=np.float64):
  """The schedule's sparsity at `step` (defaults: contrib's hparam defaults).

    p    = clip((t - t0) / (t1 - t0), 0, 1)
    s(t) = s_f + (s_i - s_f) * (1 - p) ** e

  with t0 = begin_step, t1 = end_step, s_i = initial, s_f = target. The
  arguments are keyword-only: copies of this oracle used to take them in
  different orders. `dtype=np.float32` rounds p, 1 - p, e and the result to
  float32 as the library's float32 graph does; float64 is the exact formula.
  """
  progress = min(max((step - begin_step) / float(end_step - begin_step), 0.0),
                 1.0)
  progress = dtype(progress)
  return dtype(target + (initial - target) *
               (dtype(1.0) - progress) ** dtype(exponent))


def is_update_step(step, last_update, *, begin, end, frequency):
  """pred = (t >= b) and (t <= e or e < 0) and (L + f <= t)."""
  in_window = step >= begin and (step <= end or end < 0)
  return in_window and last_update + frequency <= step


def update_steps(steps, *, begin, end, frequency):
  """Steps at which the masks update when the conditional op runs at `steps`.

  The op runs once at each step of `steps` in order; L (the last update
  step) starts at 0 and becomes t at each update (`is_update_step`).
  """
  last, fired = 0, []
  for step in steps:
    if is_update_step(step, last, begin=begin, end=end, frequency=frequency):
      fired.append(step)
      last = step
  return fired


def kept_counts_after_each_step(steps_run, fired, size, sparsity_at):
  """Non-zero mask entries after each step run (variant T, distinct weights).

  All `size` weights survive until the first update; an update at t keeps
  keep_count(size, sparsity_at(t)) of them.
  """
  kept, counts = size, []
  for step in steps_run:
    if step in fired:
      kept = keep_count(size, sparsity_at(step))
    counts.append(kept)
  return counts


# --- counts, thresholds and masks --------------------------------------------

METHODS = ('histogram', 'sort', 'exact')


def keep_count(size, sparsity):
  """k = round(N (1 - s)) in float32, round half to even (as tf.round)."""
  return int(np.round(np.float32(size) * (np.float32(1.0) -
                                          np.float32(sparsity))))


def finite_magnitudes(values):
  """|v| in float32 with NaN -> 0 and +-Inf -> the float32 maximum.

  The documented clean-up of non-finite weights before thresholding.
  """
  magnitudes = np.abs(np.asarray(values, np.float32))
  magnitudes = np.where(np.isnan(magnitudes), np.float32(0), magnitudes)
  return np.minimum(magnitudes, np.finfo(np.float32).max)


def kth_largest_with_counts(values, k):
  """(k-th largest, #values above it, #values equal to it), 1 <= k <= N."""
  ordered = np.sort(np.asarray(values).ravel())[::-1]
  kth = ordered[k - 1]
  return kth, int(np.sum(ordered > kth)), int(np.sum(ordered == kth))


def sort_threshold(magnitudes, sparsity):
  """Variant T: theta = the k-th largest magnitude, k clamped to [1, N]."""
  size = np.asarray(magnitudes).size
  k = min(max(keep_count(size, sparsity), 1), size)
  return kth_largest_with_counts(magnitudes, k)[0]


def histogram_cdf(values, low, high, nbins):
  """Normalised CDF over nbins equal bins of [low, high], ends clipped.

  Bin of v: clip(floor(nbins (v - low) / (high - low)), 0, nbins - 1),
  computed in float64; cdf_j = #{v in bins <= j} / N in float32.
  """
  values = np.asarray(values, np.float64).ravel()
  index = np.floor(nbins * (values - low) / (high - low)).astype(np.int64)
  index = np.clip(index, 0, nbins - 1)
  counts = np.bincount(index, minlength=nbins).astype(np.float32)
  cdf = np.cumsum(counts)
  return cdf / cdf[-1]


def histogram_threshold(magnitudes, sparsity, nbins):
  """Variant H: theta = #{j : cdf_j < s} / nbins * max (0 when max = 0).

  cdf is `histogram_cdf` over [0, max]. The CDF is compared in float32 as
  upstream did; bins and theta are computed in float64 and theta is rounded
  once to the magnitudes' float type (float32 for integers).
  """
  magnitudes = np.asarray(magnitudes)
  dtype = (magnitudes.dtype.type if np.issubdtype(magnitudes.dtype,
                                                  np.floating)
           else np.float32)
  top = np.float64(magnitudes.max())
  if top == 0:
    return dtype(0.0)
  cdf = histogram_cdf(magnitudes, 0.0, top, nbins)
  below = np.count_nonzero(cdf < np.float32(sparsity))
  return dtype(below * top / nbins)


def histogram_bin_population(scores, sparsity, nbins):
  """How many scores lie within one bin width of variant H's threshold.

  The tolerance of a histogram-thresholded survivor count.
  """
  flat = np.ravel(np.asarray(scores, np.float64))
  width = flat.max() / nbins
  threshold = histogram_threshold(flat, sparsity, nbins)
  return int(np.sum((flat >= threshold - width) & (flat <= threshold + width)))


def threshold_mask(scores, sparsity, method, nbins=256, previous_threshold=0.0,
                   decay=0.0):
  """(theta, float32 0/1 mask) of non-negative scores for one method.

  * 'sort':      theta = sort_threshold, mask = scores >= theta (ties kept);
  * 'histogram': theta = histogram_threshold, mask = scores > theta;
  * 'exact':     the k = keep_count(N, s) largest survive; theta is None.
    Raises ValueError when the k-th and (k+1)-th largest scores tie (the
    library breaks such ties at random, so no oracle can predict them).

  Threshold decay: theta <- (1 - decay) theta + decay * previous_threshold,
  applied before the comparison (a no-op for decay = 0).
  """
  scores = np.asarray(scores)
  if method == 'exact':
    flat = scores.ravel()
    k = keep_count(flat.size, sparsity)
    order = np.argsort(-flat, kind='stable')
    if 0 < k < flat.size and flat[order[k - 1]] == flat[order[k]]:
      raise ValueError('the exact oracle cannot break the tie at the %d-th '
                       'largest score (%r); use distinct scores'
                       % (k, flat[order[k - 1]]))
    keep = np.zeros(flat.size, np.float32)
    keep[order[:k]] = 1.0
    return None, keep.reshape(scores.shape)
  if method == 'sort':
    threshold = sort_threshold(scores, sparsity)
  elif method == 'histogram':
    threshold = histogram_threshold(scores, sparsity, nbins)
  else:
    raise ValueError('method must be one of %s, got %r' % (METHODS, method))
  threshold = (1 - decay) * threshold + decay * previous_threshold
  if method == 'sort':
    return threshold, (scores >= threshold).astype(np.float32)
  return threshold, (scores > threshold).astype(np.float32)


def magnitude_mask(weights, sparsity, method='sort', nbins=256):
  """(theta, mask) of |w| for `method`, after the non-finite rule."""
  return threshold_mask(finite_magnitudes(weights), sparsity, method, nbins)


# --- blocks and groups -------------------------------------------------------


def block_pool(matrix, block_dims, pooling):
  """'AVG' or 'MAX' over non-overlapping blocks of a 2-D matrix, in float64.

  Edge blocks pool their real cells only (SAME padding excluding the pad).
  """
  if pooling not in ('AVG', 'MAX'):
    raise ValueError("pooling must be 'AVG' or 'MAX', got %r" % (pooling,))
  matrix = np.asarray(matrix, np.float64)
  height, width = matrix.shape
  bh, bw = block_dims
  out = np.zeros((math.ceil(height / bh), math.ceil(width / bw)))
  for r in range(out.shape[0]):
    for c in range(out.shape[1]):
      block = matrix[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw]
      out[r, c] = block.max() if pooling == 'MAX' else block.mean()
  return out


def expand_blocks(matrix, block_dims, shape=None):
  """out[r, c] = matrix[r // bh, c // bw] (Kronecker product with ones).

  Cropped to `shape` when given (a weight whose sides are not multiples of
  the block).
  """
  expanded = np.kron(np.asarray(matrix), np.ones(block_dims))
  if shape is None:
    return expanded
  return expanded[:shape[0], :shape[1]]


def block_scores(weight, block_dims, pooling, gradient=None):
  """pool(|W|), times pool(|g|) for gradient pruning."""
  scores = block_pool(np.abs(weight), block_dims, pooling)
  if gradient is not None:
    scores = scores * block_pool(np.abs(gradient), block_dims, pooling)
  return scores


def joint_masks(scores_list, sparsity, method, nbins=256):
  """Thresholds the concatenated scores once; returns one mask per member."""
  flat = np.concatenate([np.ravel(s) for s in scores_list])
  _, flat_mask = threshold_mask(flat, sparsity, method, nbins)
  sizes = np.cumsum([np.size(s) for s in scores_list])[:-1]
  return [piece.reshape(np.shape(s))
          for piece, s in zip(np.split(flat_mask, sizes), scores_list)]


def joint_block_masks(weights, sparsity, method, block_dims, pooling,
                      gradients=None):
  """Group block pruning of 2-D weights: joint threshold on pooled scores."""
  gradients = gradients or [None] * len(weights)
  scores = [block_scores(w, block_dims, pooling, g)
            for w, g in zip(weights, gradients)]
  block_masks = joint_masks(scores, sparsity, method)
  return [expand_blocks(m, block_dims, np.shape(w))
          for m, w in zip(block_masks, weights)]


def block_mask(weight, sparsity, method, block_dims, pooling, gradient=None):
  """The block mask of one 2-D weight: `joint_block_masks` of a group of one."""
  (mask,) = joint_block_masks([weight], sparsity, method, block_dims, pooling,
                              [gradient])
  return mask


# --- gradient pruning --------------------------------------------------------


def l2_normalize(values):
  """x / sqrt(max(sum(x^2), 1e-12)) over all elements, in float64."""
  values = np.asarray(values, np.float64)
  return values / np.sqrt(max(np.sum(values**2), 1e-12))


def decayed_gradient(weight, old_weight, gradient, rate, old_old_weight=None):
  """One gradient-accumulator update: g <- r g + (1 - r) l2_normalize(|m|).

  The movement m = W - W_old (first order, `old_old_weight` None) or
  W + W_oldold - 2 W_old (second order). Masks then score |W| * g.
  """
  weight = np.asarray(weight, np.float64)
  old_weight = np.asarray(old_weight, np.float64)
  if old_old_weight is None:
    movement = weight - old_weight
  else:
    movement = weight + np.asarray(old_old_weight, np.float64) - 2 * old_weight
  return rate * np.asarray(gradient, np.float64) + (
      1 - rate) * l2_normalize(np.abs(movement))


# --- N:M sparsity ------------------------------------------------------------

# Slack the library adds before flooring so float32 rounding of an exact
# boundary (e.g. r = 1/3 with N - M = 3) does not lose a step.
_FLOOR_SLACK = 1e-6


def m_by_n_mask(weights, m, n, saliency=None, axis=-2):
  """Keeps the m largest scores of every n along `axis`; ties -> lower index.

  Scores are |w| (or `saliency`); each group is sorted with a stable sort, the
  slow obvious way, independent of the library's pairwise-rank counting. A
  partial last group keeps its m largest too.
  """
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


def zeros_times(sparsity, target, m, n):
  """(N - M) * r with r = clip(s / tau, 0, 1) (r = 1 when tau = 0).

  The unfloored number of zeros per group of N along the schedule.
  """
  done = 1.0 if target == 0 else min(max(sparsity / target, 0.0), 1.0)
  return (n - m) * done


def keep_per_group(sparsity, target, m, n):
  """Survivors per full group along the schedule: N - floor((N - M) * r)."""
  return n - int(math.floor(zeros_times(sparsity, target, m, n) +
                            _FLOOR_SLACK))


def near_step_boundary(sparsity, target, m, n, margin=1e-4):
  """True when float32 rounding could move the floor (a badly chosen step)."""
  value = zeros_times(sparsity, target, m, n)
  nearest = round(value)
  return value != nearest and abs(value - nearest) < margin


def expected_group_counts(shape, n, keep, axis=-2):
  """min(keep, group length) per N-group, in `nonzeros_per_group`'s order."""
  depth = shape[axis]
  lines = int(np.prod(shape)) // depth
  per_line = [min(keep, len(range(start, min(start + n, depth))))
              for start in range(0, depth, n)]
  return np.array(per_line * lines)


def scheduled_nm_mask(weights, keep, n):
  """The mask keeping `keep` of every n by |w| (all ones when keep >= n)."""
  weights = np.asarray(weights)
  if keep >= n:
    return np.ones_like(weights)
  return m_by_n_mask(weights, keep, n)


def distinct_weights(shape, seed):
  """float32 test weights with distinct non-zero magnitudes, random signs."""
  rng = np.random.RandomState(seed)
  size = int(np.prod(shape))
  magnitudes = (rng.permutation(size) + 1.0) / size
  signs = np.where(rng.rand(size) < 0.5, -1.0, 1.0)
  return (magnitudes * signs).reshape(shape).astype(np.float32)


# --- sparsity of a result ----------------------------------------------------


def zero_fraction(values):
  """Share of exact zeros in `values`: #{v == 0} / N."""
  values = np.asarray(values)
  return float(np.sum(values == 0)) / values.size
