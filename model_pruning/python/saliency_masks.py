"""New (threshold, mask) pairs from weight saliency: element-wise, blocks, N:M.

Pure tensor math used by `Pruning`: no variables are created or read here
except the previous threshold value handed in for smoothing.

Magnitudes that are not finite get a defined mask: NaN counts as magnitude 0
(pruned first) and +-Inf as the largest finite magnitude (kept first), so a
threshold is never NaN.
"""
import collections

from absl import logging
import tensorflow as tf

from model_pruning.python import native_kernels
from model_pruning.python import nm_sparsity
from model_pruning.python import pruning_utils
from model_pruning.python import thresholds

ThresholdMethod = collections.namedtuple(
    'ThresholdMethod', ['name', 'nbins', 'decay', 'seed', 'step'])


def _compute_dtype(dtype):
  return tf.float64 if dtype == tf.float64 else tf.float32


def saliency(weights, gradients=None, use_gradient=False):
  """|W|, or |W| * g for gradient-based pruning, in the compute dtype."""
  magnitudes = tf.abs(tf.cast(weights, _compute_dtype(weights.dtype)))
  if not use_gradient:
    return magnitudes
  if gradients is None:
    raise ValueError('gradient tensor cannot be None.')
  return magnitudes * tf.cast(gradients, magnitudes.dtype)


def _finite_and_max(values):
  """(cleaned values, their maximum) of non-negative `values`.

  Cleaning replaces NaN by 0 and Inf by the dtype's max. One read pass when
  all are finite: TensorFlow's reduce_max propagates NaN (checked by
  tests/thresholds_test.py), so max(v) is finite exactly when every
  value is (v >= 0, so no -Inf); only then is the cleaning pass skipped.
  """
  largest = tf.reduce_max(values)

  def clean():
    no_nan = tf.where(tf.math.is_nan(values), tf.zeros_like(values), values)
    cleaned = tf.minimum(no_nan, values.dtype.max)
    return cleaned, tf.reduce_max(cleaned)

  return tf.cond(tf.math.is_finite(largest),
                 lambda: (tf.identity(values), largest), clean)


def _finite(values):
  """`values` with NaN as 0 and Inf as the dtype's max (see above)."""
  return _finite_and_max(values)[0]


def _smooth(new_threshold, previous_threshold, decay):
  """theta' = (1 - d) * theta + d * theta_prev (skipped when d = 0)."""
  if not decay:
    return new_threshold
  previous = tf.cast(previous_threshold, new_threshold.dtype)
  return (1.0 - decay) * new_threshold + decay * previous


def _warm_hint(previous_threshold, size):
  """The previous threshold as a warm-start hint, or None for a cold start.

  Small tensors are sorted directly anyway; a Python 0 (no previous
  threshold, e.g. a group without a threshold variable) gives no hint.
  """
  if previous_threshold is None or size <= thresholds.warm_start_min_size():
    return None
  if isinstance(previous_threshold, (int, float)) and not previous_threshold:
    return None  # A constant 0: no previous update to start from.
  return previous_threshold


def _select(raw, k, hint, cleaned=None, extra_width=0.0, shift=None,
            in_band=None):
  """(values, kth, above, at): the k-th largest of the cleaned `raw`.

  `values` is what the mask compares: `raw` itself when the warm band held
  the k-th value (see `thresholds.warm_band`: the same mask as the cleaned
  values then, since theta > 0), else the cleaned values. `cleaned`, when
  given, is `_finite(raw)` already built (and then `raw` is not used).
  `shift`: k - k_prev, the ranks the schedule moved k since the hint.
  `in_band(band, rank)`, when given, replaces the warm path's k-th value by
  one its caller finds equivalent (then `above` and `at` are not computed).
  """
  def cold():
    values = _finite(raw) if cleaned is None else cleaned
    return (values,) + tuple(thresholds.kth_largest_with_counts(values, k))

  if hint is None:
    return cold()
  values = raw if cleaned is None else cleaned
  band, rank, above, found = thresholds.warm_band(
      values, k, hint, extra_width, finite=cleaned is not None, shift=shift)

  def warm():
    if in_band is None:
      return (values,) + tuple(thresholds.kth_in_band(band, rank, above))
    return values, in_band(band, rank), above, tf.constant(0)

  return tf.cond(found, warm, cold, name='warm_or_cold_selection')


def _exact_keep(size, sparsity):
  return thresholds.exact_rank(size, thresholds.keep_count(size, sparsity))


def _selected_rank(method_name, size, sparsity):
  """(k, detail): the rank of the k-th largest the method selects, and what
  its mask needs besides: exact's keep count, histogram's c*, sort None."""
  if method_name == 'exact':
    keep = _exact_keep(size, sparsity)
    return tf.maximum(keep, 1), keep
  if method_name == 'sort':
    return thresholds.sort_rank(size, sparsity), None
  return thresholds.histogram_rank(size, sparsity)


def _runs_native(values):
  """Whether the fused kernels take `values` (float32/64, static shape)."""
  return (native_kernels.available() and
          values.dtype in native_kernels.NATIVE_DTYPES and
          values.get_shape().is_fully_defined())


def _native_threshold_and_mask(values, sparsity, previous_threshold, method,
                               take_abs):
  """`threshold_and_mask` as one fused op (`native_kernels.mask_update`),
  with the same rules as the TensorFlow-op path; exact's rare random
  tie-break runs the TensorFlow-op oracle."""
  update = native_kernels.mask_update(values, sparsity, previous_threshold,
                                      method.name, method.nbins,
                                      method.decay, take_abs)
  if method.name != 'exact':
    return update.threshold, update.mask
  keep = update.k

  def some_ties():
    # Ties at the k-th value straddle the cut: the TF-op oracle.
    cleaned = _finite(tf.abs(values) if take_abs else values)
    _, mask = thresholds.exact_mask_from_kth(
        cleaned, keep, (update.kth, update.count_above, update.count_at),
        method.seed, method.step)
    return tf.cast(mask, tf.float32)

  mask = tf.cond(keep - update.count_above >= update.count_at,
                 lambda: update.mask, some_ties)
  mask.set_shape(values.get_shape())
  return update.threshold, mask


def threshold_and_mask(magnitudes, sparsity, previous_threshold, method,
                       previous_sparsity=None, take_abs=False):
  """(threshold, float32 mask) for non-negative `magnitudes` of any shape.

  histogram: mask = |w| > theta (bin-quantised); sort: mask = |w| >= theta,
  theta the k-th largest; exact: exactly k = round(N (1 - s)) survive.
  `take_abs`: `magnitudes` are signed weights, ranked by their |w|.
  With the native kernels (float32/64) one op does it all, mostly in one
  pass over the values.
  Else the k-th selection starts next to `previous_threshold` (the
  threshold variable's last value; `previous_sparsity`, when known, is the
  sparsity it was computed for, so the start also follows the schedule's
  move) and falls back to the cold selection when the k-th value moved
  away. All paths give the same exact answer.
  """
  if _runs_native(magnitudes):
    return _native_threshold_and_mask(magnitudes, sparsity,
                                      previous_threshold, method, take_abs)
  if take_abs:
    magnitudes = tf.abs(magnitudes)
  shape = magnitudes.get_shape()
  raw = tf.reshape(magnitudes, [-1])
  size = shape.num_elements()
  hint = _warm_hint(previous_threshold, size)
  k, detail = _selected_rank(method.name, size, sparsity)
  shift = None
  if hint is not None and previous_sparsity is not None:
    shift = k - _selected_rank(method.name, size, previous_sparsity)[0]
  if method.name == 'exact':
    values, kth, above, at = _select(raw, k, hint, shift=shift)
    threshold, mask = thresholds.exact_mask_from_kth(
        values, detail, (kth, above, at), method.seed, method.step)
  elif method.name == 'sort':
    values, kth, _, _ = _select(raw, k, hint, shift=shift)
    threshold = _smooth(kth, previous_threshold, method.decay)
    mask = values >= threshold
  else:
    # The bin width needs the maximum of the cleaned values: clean first.
    values, max_value = _finite_and_max(raw)
    count_below = detail
    # Warm, only the k-th value's bin matters: found without sorting.
    values, kth, _, _ = _select(
        raw, k, hint, cleaned=values, extra_width=max_value / method.nbins,
        shift=shift, in_band=lambda band, rank: thresholds.same_bin_as_kth(
            band, rank, max_value, method.nbins))
    threshold = _smooth(
        thresholds.histogram_from_kth(kth, max_value, count_below,
                                      method.nbins),
        previous_threshold, method.decay)
    mask = values > threshold
  return threshold, tf.reshape(tf.cast(mask, tf.float32), shape)


def elementwise_mask(weights, gradients, use_gradient, sparsity,
                     previous_threshold, method, previous_sparsity=None):
  """Element-wise pruning of one tensor by |W| (or |W| * g)."""
  if use_gradient:
    values, take_abs = saliency(weights, gradients, True), False
  else:
    # |W| is taken inside the kernels' pass (or by threshold_and_mask).
    values = tf.cast(weights, _compute_dtype(weights.dtype))
    take_abs = True
  return threshold_and_mask(values, sparsity, previous_threshold, method,
                            previous_sparsity, take_abs=take_abs)


def _plain_resource_variable(variable):
  """A resource variable of one device: not a ref variable, nor a
  distribution strategy's (whose handle depends on the replica)."""
  if (not isinstance(variable, tf.Variable) or
      isinstance(variable, tf.distribute.DistributedValues) or
      tf.distribute.has_strategy()):
    return False
  try:
    return variable.handle is not None
  except (AttributeError, ValueError):
    return False


def _kernels_write_mask(weights, mask):
  """Whether a kernel can write `mask` itself: the kernels loaded, and a
  local float32 resource variable of the weights' static shape."""
  return (native_kernels.available() and
          _plain_resource_variable(mask) and
          mask.dtype == tf.float32 and
          weights.get_shape().is_fully_defined() and
          mask.get_shape() == weights.get_shape())


def updates_in_place(weights, mask, method):
  """Whether `elementwise_mask_in_place` can update `mask` from |weights|:
  `_kernels_write_mask`, histogram or sort (exact's tie-break needs a mask
  tensor), and weights the kernels read."""
  return (_kernels_write_mask(weights, mask) and
          method.name in ('histogram', 'sort') and
          _compute_dtype(weights.dtype) in native_kernels.NATIVE_DTYPES)


def elementwise_mask_in_place(weights, mask, sparsity, previous_threshold,
                              method):
  """`elementwise_mask` by |W| that writes the mask into the variable `mask`
  (`updates_in_place`) instead of returning it: no new mask buffer per
  update and no old one freed, so training between updates does not page
  memory back in. Returns the new threshold (running it updates)."""
  values = tf.cast(weights, _compute_dtype(weights.dtype))
  return native_kernels.mask_update_in_place(
      values, mask, sparsity, previous_threshold, method.name, method.nbins,
      method.decay, take_abs=True).threshold


def _resolve_block_dims(matrix_shape, block_dims):
  """-1 means the whole dimension; resolved on a copy (docs/upstream.md Q9)."""
  return [matrix_shape[i] if block_dims[i] == -1 else block_dims[i]
          for i in range(2)]


def _pooled_scores(weights, gradients, block_dims, pooling, use_tpu):
  """Pools |W| (and |g|) of a weight that squeezes to 2-D over blocks."""
  squeezed = [d for d in weights.get_shape().as_list() if d != 1]
  dims = _resolve_block_dims(squeezed, block_dims)
  dtype = _compute_dtype(weights.dtype)
  native = (not use_tpu and weights.get_shape().is_fully_defined() and
            native_kernels.pools_blocks(dtype, dims, pooling))

  def pool(values):
    matrix = tf.reshape(tf.cast(values, dtype), squeezed)
    if native:  # One pass, the same rounding.
      return native_kernels.pool_blocks(matrix, dims, pooling)
    return pruning_utils.pool_blocks(tf.abs(matrix), dims, pooling, use_tpu)

  scores = pool(weights)
  if gradients is not None:
    scores *= pool(gradients)
  return scores, dims


def _expand_block_mask(block_mask_, dims, weight_shape):
  """Repeats each block's mask value over its block, crops, restores shape."""
  squeezed = [d for d in weight_shape if d != 1]
  if native_kernels.available() and None not in squeezed:
    return tf.reshape(
        native_kernels.expand_blocks(block_mask_, dims, squeezed),
        weight_shape)
  expanded = pruning_utils.expand_tensor(block_mask_, dims)
  if expanded.get_shape().as_list() != squeezed:
    # Edge blocks reach past the weight: crop (a copy, so only then).
    expanded = expanded[:squeezed[0], :squeezed[1]]
  return tf.reshape(expanded, weight_shape)


def _pooled_threshold_and_mask(weights, gradients, block_dims, pooling,
                               use_tpu, sparsity, previous_threshold, method,
                               previous_sparsity):
  """(threshold, float32 mask of the blocks, resolved block dims)."""
  scores, dims = _pooled_scores(weights, gradients, block_dims, pooling,
                                use_tpu)
  threshold, pooled_mask = threshold_and_mask(scores, sparsity,
                                              previous_threshold, method,
                                              previous_sparsity)
  return threshold, pooled_mask, dims


def block_mask(weights, gradients, block_dims, pooling, use_tpu, sparsity,
               previous_threshold, method, previous_sparsity=None):
  """Block pruning: threshold the pooled blocks, expand back.

  Example: a 4x4 weight with 2x2 block averages [[0.1, 0.2], [0.3, 0.4]] at
  s = 0.5 keeps the two blocks 0.3 and 0.4: rows 2-3 ones, rows 0-1 zeros.
  """
  threshold, pooled_mask, dims = _pooled_threshold_and_mask(
      weights, gradients, block_dims, pooling, use_tpu, sparsity,
      previous_threshold, method, previous_sparsity)
  return threshold, _expand_block_mask(pooled_mask, dims,
                                       weights.get_shape().as_list())


def updates_blocks_in_place(weights, mask):
  """Whether `block_mask_in_place` can write `mask` (`_kernels_write_mask`)."""
  return _kernels_write_mask(weights, mask)


def block_mask_in_place(weights, mask, block_dims, pooling, use_tpu, sparsity,
                        previous_threshold, method, previous_sparsity=None):
  """`block_mask` by |W| that writes the expanded mask into the variable
  `mask` (`updates_blocks_in_place`), as `elementwise_mask_in_place` does.

  Returns:
    (new threshold, the op that writes the mask).
  """
  threshold, pooled_mask, dims = _pooled_threshold_and_mask(
      weights, None, block_dims, pooling, use_tpu, sparsity,
      previous_threshold, method, previous_sparsity)
  squeezed = [d for d in weights.get_shape().as_list() if d != 1]
  return threshold, native_kernels.expand_blocks_in_place(pooled_mask, dims,
                                                          mask, squeezed)


def scheduled_m_by_n_mask(weights, m_by_n, sparsity, target_sparsity,
                          name, fallback, saliency=None):
  """N:M mask, reached gradually along the schedule.

  Each group of N consecutive input channels keeps N - z weights, with
  z = floor((N - M) * r) and r = s(t) / target_sparsity the part of the
  schedule done (r = 1 when target_sparsity is 0). At the end of the schedule
  exactly M of every N survive; a constant schedule reaches M:N at once.

  Args:
    weights: the weight; ranked by |weights| unless `saliency` is given.
    m_by_n: the (M, N) pair.
    sparsity: scheduled sparsity tensor for this weight.
    target_sparsity: the schedule's final sparsity (a Python float).
    name: the weight's name, for the fallback warning.
    fallback: callable returning (threshold, mask) for unstructured pruning,
      used when the shape cannot hold N:M groups.
    saliency: optional scores of `weights`' shape (e.g. |W| * g).
  """
  m, n = m_by_n
  weights = tf.cast(weights, _compute_dtype(weights.dtype))
  if not nm_sparsity.can_apply_m_by_n(weights.get_shape(), n):
    logging.warning('%s (shape %s) cannot be pruned %d:%d along its input '
                    'channels; falling back to unstructured pruning.', name,
                    weights.get_shape(), m, n)
    return fallback()
  zeros = _m_by_n_zeros(m_by_n, sparsity, target_sparsity)

  scores = weights if saliency is None else saliency
  native = _runs_native(scores)

  def keep(count):
    if count == n:
      return lambda: tf.ones_like(weights, dtype=tf.float32)
    if native:  # One pass, the same rule (nm_sparsity._pairwise_keep).
      return lambda: native_kernels.m_by_n_mask(scores, count, n,
                                                take_abs=saliency is None)
    return lambda: tf.cast(
        nm_sparsity.m_by_n_mask(weights, count, n, saliency), tf.float32)

  branches = [keep(n - z) for z in range(n - m + 1)]
  mask = tf.switch_case(tf.clip_by_value(zeros, 0, n - m), branches)
  mask.set_shape(weights.get_shape())
  return tf.zeros([], weights.dtype), mask


def _m_by_n_zeros(m_by_n, sparsity, target_sparsity):
  """z = floor((N - M) r), r = s(t) / target_sparsity clipped to [0, 1]
  (1 when the target is 0): how many of every N the schedule prunes now,
  as an int32 tensor."""
  m, n = m_by_n
  if target_sparsity > 0:
    done = tf.clip_by_value(tf.cast(sparsity, tf.float32) / target_sparsity,
                            0.0, 1.0)
  else:
    done = tf.constant(1.0)
  return tf.cast(tf.floor(float(n - m) * done + 1e-6), tf.int32)


def updates_m_by_n_in_place(weights, mask, m_by_n):
  """Whether `scheduled_m_by_n_mask_in_place` can write `mask` from
  |weights|: `_kernels_write_mask`, weights the kernels read, and a shape
  that holds N:M groups (else the update falls back to unstructured)."""
  return (_kernels_write_mask(weights, mask) and
          _compute_dtype(weights.dtype) in native_kernels.NATIVE_DTYPES and
          nm_sparsity.can_apply_m_by_n(weights.get_shape(), m_by_n[1]))


def scheduled_m_by_n_mask_in_place(weights, mask, m_by_n, sparsity,
                                   target_sparsity):
  """`scheduled_m_by_n_mask` by |W| that writes the mask into the variable
  `mask` (`updates_m_by_n_in_place`), as `elementwise_mask_in_place` does:
  one op that takes how many survive (N - z) as an input. Returns
  (threshold 0, the op that writes the mask)."""
  m, n = m_by_n
  values = tf.cast(weights, _compute_dtype(weights.dtype))
  keep = n - tf.clip_by_value(_m_by_n_zeros(m_by_n, sparsity, target_sparsity),
                              0, n - m)
  write = native_kernels.m_by_n_mask_in_place(values, keep, n, mask,
                                              take_abs=True)
  return tf.zeros([], values.dtype), write


def joint_masks(weights_list, gradients_list, block_dims, pooling, use_tpu,
                sparsity, method, previous_threshold=0.0,
                previous_sparsity=None):
  """One threshold shared by a group of weights (google-research groups).

  The scores of all members (element-wise, or pooled when block_dims is not
  [1, 1]) are concatenated and thresholded together, so the group as a whole
  reaches the sparsity while single members may be sparser or denser: with
  a 0.5 target, members [1, 2] and [3, 4] get masks [0, 0] and [1, 1].

  Args:
    weights_list: the members' weight tensors.
    gradients_list: their gradient accumulators (None entries for |W| only).
    block_dims: [height, width] of the pooling blocks, [1, 1] element-wise.
    pooling: 'AVG' or 'MAX'.
    use_tpu: pool with `factorized_pool`.
    sparsity: the group's sparsity tensor.
    method: a ThresholdMethod.
    previous_threshold: the group's threshold before this update, smoothed
      into the new one with threshold_decay (histogram and sort).
    previous_sparsity: the group's sparsity at the previous update (the
      warm start's hint of how far the k-th value moved), or None.

  Returns:
    (threshold, [float32 mask per member]).
  """
  blocked = list(block_dims) != [1, 1]
  scores, dims = [], []
  for weights, gradients in zip(weights_list, gradients_list):
    if blocked:
      squeezed = [d for d in weights.get_shape().as_list() if d != 1]
      if len(squeezed) != 2:
        raise ValueError(
            'Group block pruning needs weights that squeeze to 2-D, got %s '
            'for %s; set the group\'s block dims to 1x1 in '
            'group_block_dims_map or leave the weight out of the group.' %
            (weights.get_shape(), weights.name))
      score, dim = _pooled_scores(weights, gradients, block_dims, pooling,
                                  use_tpu)
    else:
      score, dim = saliency(weights, gradients, gradients is not None), None
    scores.append(score)
    dims.append(dim)
  dtype = (tf.float64 if all(s.dtype == tf.float64 for s in scores)
           else tf.float32)
  flat = tf.concat([tf.reshape(tf.cast(s, dtype), [-1]) for s in scores],
                   axis=0)
  threshold, flat_mask = threshold_and_mask(flat, sparsity, previous_threshold,
                                            method, previous_sparsity)
  pieces = tf.split(flat_mask, [s.get_shape().num_elements() for s in scores])
  masks = []
  for piece, score, dim, weights in zip(pieces, scores, dims, weights_list):
    piece = tf.reshape(piece, score.get_shape())
    if blocked:
      piece = _expand_block_mask(piece, dim, weights.get_shape().as_list())
    masks.append(piece)
  return threshold, masks


def decayed_gradient(weight, old_weight, old_old_weight, gradient, rate):
  """g <- r g + (1 - r) l2_normalize(|movement|) (google-research 2.4.13).

  First order: movement = W - W_old; second order: W + W_oldold - 2 W_old.
  The normalisation runs over all elements.
  """
  if old_old_weight is None:
    movement = weight - old_weight
  else:
    movement = weight + old_old_weight - 2.0 * old_weight
  delta = tf.math.l2_normalize(tf.abs(movement))
  return rate * gradient + (1.0 - rate) * delta
