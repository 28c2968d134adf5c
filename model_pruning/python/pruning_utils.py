"""Tensor math for pruning: pooling, block expansion, histograms and CDFs.

Tensors in, tensors out: no variables, no collections, no global step. The
variable factories and assign helpers that upstream kept here live in
`pruning_variables`; their upstream names still resolve from this module.
"""
import numpy as np
import tensorflow as tf

_NBINS = 256


def _static_shape(tensor, what):
  shape = tensor.get_shape()
  if not shape.is_fully_defined():
    raise ValueError('%s needs a fully defined static shape, got %s for %s' %
                     (what, shape, getattr(tensor, 'name', tensor)))
  return shape.as_list()


def kronecker_product(mat1, mat2):
  """Kronecker product of two rank-2 tensors with static shapes.

  out[i*m2 + p, j*n2 + q] = mat1[i, j] * mat2[p, q], shape [m1*m2, n1*n2].
  """
  m1, n1 = _static_shape(mat1, 'kronecker_product')
  m2, n2 = _static_shape(mat2, 'kronecker_product')
  mat1_rsh = tf.reshape(mat1, [m1, 1, n1, 1])
  mat2_rsh = tf.reshape(mat2, [1, m2, 1, n2])
  return tf.reshape(mat1_rsh * mat2_rsh, [m1 * m2, n1 * n2])


def expand_tensor(tensor, block_dims):
  """Repeats each element into a block: out[r, c] = tensor[r // bh, c // bw].

  A 2x2 input [[1, 2], [3, 4]] with block_dims [2, 2] becomes the 4x4
  [[1,1,2,2],[1,1,2,2],[3,3,4,4],[3,3,4,4]]. Block dims <= 1 leave that axis
  unchanged.
  """
  if len(block_dims) != 2:
    raise ValueError('block_dims must have 2 elements, got %r' % (block_dims,))
  if tensor.get_shape().ndims != 2:
    raise ValueError('Input tensor must be rank 2, got shape %s' %
                     tensor.get_shape())
  height, width = _static_shape(tensor, 'expand_tensor')
  block_height, block_width = (max(int(d), 1) for d in block_dims)
  expanded = tf.reshape(tensor, [height, 1, width, 1])
  expanded = tf.tile(expanded, [1, block_height, 1, block_width])
  return tf.reshape(expanded, [height * block_height, width * block_width])


def factorized_pool(input_tensor, window_shape, pooling_type, strides,
                    padding, name=None):
  """2-D pooling of a matrix as two 1-D pools (rows, then columns).

  Equal to reshaping to [1, H, W, 1] and calling tf.nn.pool; this form avoids
  4-D pooling (the TPU-friendly variant). Returns a rank-2 tensor.
  """
  if input_tensor.get_shape().ndims != 2:
    raise ValueError('factorized_pool() accepts tensors of rank 2 only, got '
                     'shape %s' % input_tensor.get_shape())
  with tf.compat.v1.name_scope(name, 'factorized_pool'):
    # Pool along columns of each row: [H, W] -> [H, W', 1].
    rows = tf.expand_dims(input_tensor, 2)
    rows = tf.nn.pool(rows, window_shape=[window_shape[1]],
                      pooling_type=pooling_type, strides=[strides[1]],
                      padding=padding)
    # Pool the result along rows: [W', H, 1].
    cols = tf.transpose(rows, [1, 0, 2])
    cols = tf.nn.pool(cols, window_shape=[window_shape[0]],
                      pooling_type=pooling_type, strides=[strides[0]],
                      padding=padding)
    return tf.squeeze(tf.transpose(cols, [2, 1, 0]), axis=[0])


def pool_blocks(matrix, block_dims, pooling_type, use_factorized=False):
  """Pools a rank-2 matrix over non-overlapping blocks anchored at [0, 0].

  Edge blocks are padded at the end and average over their real cells only,
  so a 3x3 matrix [[1,2,3],[4,5,6],[7,8,9]] with 2x2 blocks gives
  [[3, 4.5], [7.5, 9]]. Unlike tf.nn.pool with SAME padding (upstream), which
  pads on both sides, the blocks line up with `expand_tensor`, so block k of
  the pooled matrix is exactly the cells its mask value is expanded to.

  Args:
    matrix: rank-2 tensor with a static shape.
    block_dims: [block_height, block_width], positive.
    pooling_type: 'AVG' or 'MAX'.
    use_factorized: pool with `factorized_pool` (two 1-D pools, the TPU
      variant) instead of a reshape and reduce.
  """
  height, width = _static_shape(matrix, 'block pooling')
  block_height, block_width = block_dims
  pad_rows = -height % block_height
  pad_cols = -width % block_width
  fill = 0.0 if pooling_type == 'AVG' else matrix.dtype.min
  padded = tf.pad(matrix, [[0, pad_rows], [0, pad_cols]], constant_values=fill)
  if use_factorized:
    pooled = factorized_pool(padded, window_shape=block_dims,
                             pooling_type=pooling_type, strides=block_dims,
                             padding='VALID')
  else:
    blocks = tf.reshape(padded, [(height + pad_rows) // block_height,
                                 block_height,
                                 (width + pad_cols) // block_width,
                                 block_width])
    reduce_fn = tf.reduce_mean if pooling_type == 'AVG' else tf.reduce_max
    # Within each row first (contiguous), then across the block's rows: one
    # reduction over axes [1, 3] would transpose a copy of the whole matrix.
    pooled = reduce_fn(reduce_fn(blocks, axis=3), axis=1)
  if pooling_type == 'AVG' and (pad_rows or pad_cols):
    pooled *= _real_cell_correction(height, width, block_dims, matrix.dtype)
  return pooled


def _real_cell_correction(height, width, block_dims, dtype):
  """Factor turning an average over padded blocks into one over real cells."""
  block_height, block_width = block_dims
  rows = np.minimum(block_height,
                    height - np.arange(0, height, block_height))
  cols = np.minimum(block_width, width - np.arange(0, width, block_width))
  real_cells = np.outer(rows, cols).astype(np.float64)
  return tf.constant(block_height * block_width / real_cells, dtype=dtype)


def _histogram(values, value_range, nbins=100, dtype=tf.int32, name=None):
  """Counts of `values` in `nbins` equal bins of `value_range` (clipped ends)."""
  with tf.compat.v1.name_scope(name, 'histogram', [values, value_range]):
    values = tf.reshape(values, [-1])
    value_range = tf.cast(value_range, values.dtype)
    low, high = value_range[0], value_range[1]
    scaled = (values - low) / (high - low)
    indices = tf.cast(tf.floor(tf.cast(nbins, values.dtype) * scaled),
                      tf.int32)
    indices = tf.clip_by_value(indices, 0, nbins - 1)
    return tf.math.unsorted_segment_sum(tf.ones_like(indices, dtype=dtype),
                                        indices, nbins)


def compute_cdf_from_histogram(values, value_range, **kwargs):
  """Normalised CDF of `values` over `nbins` bins of `value_range`.

  |[-1, 0, 1, 1.5, 2, 3, 4, 5, 10, 100]| on [0, 5] with 5 bins gives
  [0.1, 0.4, 0.5, 0.6, 1.0].
  """
  nbins = kwargs.get('nbins', _NBINS)
  with tf.compat.v1.name_scope(kwargs.get('name'), 'cdf', [values]):
    histogram = _histogram(values, value_range, nbins=nbins, dtype=tf.float32)
    cdf = tf.cumsum(histogram)
    return cdf / cdf[-1]


def compute_cdf(values, value_range, **kwargs):
  """Same CDF without histogram ops: count bin indices <= i for every bin.

  (Upstream looped with tf.while_loop for TPUs; a search in the sorted bin
  indices gives the identical counts.)
  """
  nbins = kwargs.get('nbins', _NBINS)
  with tf.compat.v1.name_scope(kwargs.get('name'), 'cdf', [values]):
    values = tf.reshape(values, [-1])
    value_range = tf.cast(value_range, values.dtype)
    low, high = value_range[0], value_range[1]
    indices = tf.cast(
        tf.floor(tf.cast(nbins, values.dtype) * (values - low) / (high - low)),
        tf.int32)
    indices = tf.clip_by_value(indices, 0, nbins - 1)
    at_or_below = tf.searchsorted(tf.sort(indices), tf.range(nbins),
                                  side='right')
    cdf = tf.cast(at_or_below, tf.float32)
    return cdf / cdf[-1]


_MOVED_TO_PRUNING_VARIABLES = (
    'weight_mask_variable', 'weight_threshold_variable',
    'weight_gradient_variable', 'old_weight_variable',
    'old_old_weight_variable', 'variable_assign', 'partitioned_variable_assign',
    'determine_partitioned_axis')


def __getattr__(name):
  """Upstream's variable helpers, which live in `pruning_variables` now."""
  if name in _MOVED_TO_PRUNING_VARIABLES:
    from model_pruning.python import pruning_variables  # pylint: disable=g-import-not-at-top
    return getattr(pruning_variables, name)
  raise AttributeError('module %r has no attribute %r' % (__name__, name))
