"""N:M structured sparsity math: at most M non-zeros in every N weights.

An N:M pattern (written `M:N`, e.g. `2:4`) keeps at most M of every N
consecutive weights along the INPUT-channel axis, the axis a matrix multiply or
convolution reduces over; sparse tensor cores accelerate exactly that layout.

Layouts (the input axis is always axis -2):
  dense / LSTM kernel `[in, out]`, 1-D conv `[w, in, out]`,
  2-D conv `[h, w, in, out]`, 3-D conv `[d, h, w, in, out]`.

Worked example, 2:4 on one column of a dense kernel `[in=6, out=1]`:
  w    = [0.1, -0.9, 0.3, 0.3, 0.5, 0.2]     groups: rows 0-3 and rows 4-5
  mask = [0,    1,   1,   0,   1,   1  ]     ties (0.3, 0.3): lower row wins;
                                             the partial group keeps both.

This module is pure math (tensors in, tensors out: no variables, no
collections), plus a numpy checker `count_m_by_n_violations` used by the
check_sparsity tool, which must not need a graph.
"""
import numpy as np
import tensorflow as tf

from model_pruning.python.hparam_maps import parse_m_by_n  # pylint: disable=unused-import

SUPPORTED_RANKS = (2, 3, 4, 5)
# Input (reduction) axis of every supported TF kernel layout.
INPUT_AXIS = -2


def can_apply_m_by_n(shape, n):
  """True when an N:M pattern makes sense for a weight of this shape.

  It does when the rank is 2..5 (a kernel of a supported layout) and the input
  axis (-2) is statically known and holds at least two channels; a depth below
  N is one partial group, which keeps at most M. It does not for biases
  (rank 1), one input channel (nothing to choose from), or an unknown input
  depth.

  Args:
    shape: a list, tuple or `tf.TensorShape` (entries may be None).
    n: the group size N.
  """
  shape = tf.TensorShape(shape)
  if shape.rank is None or shape.rank not in SUPPORTED_RANKS:
    return False
  depth = shape[INPUT_AXIS]
  del n  # Any depth of 2 or more holds groups (the last may be partial).
  return depth is not None and depth >= 2


def _check_args(rank, m, n):
  m, n = parse_m_by_n((m, n))
  if rank not in SUPPORTED_RANKS:
    raise ValueError(
        'm_by_n_mask needs a kernel of rank 2, 3, 4 or 5 (input channels on '
        'axis -2), got rank %s; leave biases and other tensors out' % rank)
  return m, n


def _pairwise_keep(slices, m):
  """Keep flags for N same-shaped score slices (slice i = group position i).

  rank_i = #{j : s_j > s_i} + #{j < i : s_j == s_i}; keep_i = rank_i < m.
  Each unordered pair i < j is compared once, c_ij = [s_j > s_i]; then
  #{j < i : s_j >= s_i} = i - sum_{k<i} c_ki, so
    keep_i  <=>  sum_{j>i} c_ij - sum_{k<i} c_ki < m - i.
  That is N(N-1)/2 comparisons on 1/N of the tensor each: no sort, no
  transpose, no gather.
  """
  n = len(slices)
  wins = {(i, j): tf.cast(slices[j] > slices[i], tf.int8)
          for i in range(n) for j in range(i + 1, n)}
  keep = []
  for i in range(n):
    beaten = [wins[(i, j)] for j in range(i + 1, n)]
    beating = [wins[(k, i)] for k in range(i)]
    if not beating:
      keep.append(tf.math.add_n(beaten) < m - i)
    elif not beaten:
      keep.append(tf.math.add_n(beating) > i - m)
    else:
      keep.append(tf.math.add_n(beaten) - tf.math.add_n(beating) < m - i)
  return keep


def m_by_n_mask(weights, m, n, saliency=None):
  """Returns a 0/1 mask keeping at most M of every N weights along axis -2.

  In each group of N consecutive input channels (same output channel and
  spatial position) the M entries with the largest score survive, where the
  score is `|weights|` or `saliency`. Ties go to the lower input index, so
  exactly min(M, group size) survive per group. When the input depth is not a
  multiple of N, the last, partial group keeps at most M (all of it if it has
  M or fewer entries).

  Args:
    weights: float tensor of rank 2..5, input channels on axis -2.
    m: number of survivors per group (0 < m < n).
    n: group size.
    saliency: optional tensor of `weights`' shape ranking the entries instead
      of `|weights|` (e.g. |w * grad|); larger is kept.

  Returns:
    A tensor of `weights`' shape and dtype with values 0 and 1.

  Raises:
    ValueError: bad (m, n), unsupported or unknown rank.
  """
  weights = tf.convert_to_tensor(weights)
  m, n = _check_args(weights.shape.rank, m, n)
  with tf.name_scope('m_by_n_mask'):
    static_depth = weights.shape[-2]
    padded = static_depth is None or static_depth % n != 0
    # Ranking |weights| of a depth that is a multiple of N: slice the weights
    # into the N group positions first (one copy), then take |.| of each
    # slice in place, so the whole |weights| is never held beside the slices.
    late_abs = saliency is None and not padded
    if saliency is not None:
      score = tf.convert_to_tensor(saliency, dtype=weights.dtype)
    else:
      score = weights if late_abs else tf.abs(weights)
    full_shape = tf.shape(score)
    depth, out = full_shape[-2], full_shape[-1]
    score = tf.reshape(score, [-1, depth, out])
    pad = 0  # the common case, a multiple of n: no padding or slicing copies
    if padded:
      pad = tf.math.floormod(-depth, n)
      # Padding ranks below every real entry: lowest value, highest index.
      score = tf.pad(score, [[0, 0], [0, pad], [0, 0]],
                     constant_values=score.dtype.min)
    groups = tf.reshape(score, [tf.shape(score)[0], -1, n, out])
    slices = tf.unstack(groups, num=n, axis=2)
    if late_abs:
      slices = [tf.abs(s) for s in slices]
    keep = _pairwise_keep(slices, m)
    mask = tf.cast(tf.stack(keep, axis=2), weights.dtype)
    if padded:
      mask = tf.reshape(mask, [tf.shape(mask)[0], depth + pad, out])
      mask = mask[:, :depth, :]
    mask = tf.reshape(mask, full_shape)
    mask.set_shape(weights.shape)
    return mask


def count_m_by_n_violations(array, m, n, axis=INPUT_AXIS):
  """Counts N-groups along `axis` holding more than M non-zeros (numpy).

  Groups are N consecutive entries along `axis` (the input axis: -2 for TF
  kernels, -1 for TFLite's `[out, ..., in]` weights); a partial last group
  counts as a group too and fails only if it has more than M non-zeros.

  Args:
    array: array-like of rank >= 2.
    m, n: the pattern (0 < m < n).
    axis: the input-channel axis.

  Returns:
    `(num_groups, num_failing)` as Python ints.
  """
  m, n = parse_m_by_n((m, n))
  nonzero = np.asarray(array) != 0
  if nonzero.ndim < 2:
    raise ValueError('count_m_by_n_violations needs rank >= 2, got shape %s'
                     % (nonzero.shape,))
  nonzero = np.moveaxis(nonzero, axis, -1)
  depth = nonzero.shape[-1]
  pad = (-depth) % n
  nonzero = np.pad(nonzero, [(0, 0)] * (nonzero.ndim - 1) + [(0, pad)])
  per_group = nonzero.reshape(-1, n).sum(axis=1)
  return int(per_group.size), int(np.count_nonzero(per_group > m))
