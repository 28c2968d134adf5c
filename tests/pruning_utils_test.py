"""pruning_utils against numpy (docs/upstream.md)."""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning_utils
from tests import reference

_SHAPES_AND_BLOCKS = [
    ('Input_32x32_block_1x1', [32, 32], [1, 1]),
    ('Input_3x3_block_6x6', [3, 3], [6, 6]),
    ('Input_32x32_block_6x6', [32, 32], [6, 6]),
    ('Input_2x32_block_6x6', [2, 32], [6, 6]),
    ('Input_32x2_block_6x6', [32, 2], [6, 6]),
    ('Input_30x30_block_6x6', [30, 30], [6, 6]),
    ('Input_32x32_block_4x4', [32, 32], [4, 4]),
    ('Input_2x32_block_4x4', [2, 32], [4, 4]),
    ('Input_32x2_block_4x4', [32, 2], [4, 4]),
    ('Input_30x30_block_4x4', [30, 30], [4, 4]),
    ('Input_32x32_block_1x4', [32, 32], [1, 4]),
    ('Input_2x32_block_1x4', [2, 32], [1, 4]),
    ('Input_32x2_block_1x4', [32, 2], [1, 4]),
    ('Input_30x30_block_1x4', [30, 30], [1, 4]),
    ('Input_32x32_block_4x1', [32, 32], [4, 1]),
    ('Input_2x32_block_4x1', [2, 32], [4, 1]),
    ('Input_32x2_block_4x1', [32, 2], [4, 1]),
    ('Input_30x30_block_4x1', [30, 30], [4, 1]),
]
_IDS = [case[0] for case in _SHAPES_AND_BLOCKS]


def _evaluate(build):
  """Builds tensors in a fresh graph and evaluates them."""
  with tf.Graph().as_default():
    fetches = build()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return sess.run(fetches)


def test_histogram_of_linspace_is_all_ones():
  values = np.linspace(0.0, 1.0, 100).reshape(10, 10).astype(np.float32)
  hist = _evaluate(lambda: pruning_utils._histogram(  # pylint: disable=protected-access
      tf.constant(values), [0.0, 1.0], 100, dtype=tf.float32))
  np.testing.assert_array_equal(hist, np.ones(100))


def test_cdf_from_histogram_oracle():
  values = np.abs(np.array([-1, 0, 1, 1.5, 2, 3, 4, 5, 10, 100], np.float32))
  cdf = _evaluate(lambda: pruning_utils.compute_cdf_from_histogram(
      tf.constant(values), [0.0, 5.0], nbins=5))
  np.testing.assert_array_equal(cdf, np.array([0.1, 0.4, 0.5, 0.6, 1.0],
                                              np.float32))
  np.testing.assert_allclose(cdf, reference.histogram_cdf(values, 0, 5, 5))


@pytest.mark.parametrize('shape', [[100, 100], [5, 5, 128, 128]],
                         ids=['2D', '4D'])
def test_cdf_equivalence(shape):
  values = np.abs(np.random.RandomState(0).randn(*shape)).astype(np.float32)

  def build():
    tensor = tf.constant(values)
    value_range = [0.0, tf.reduce_max(tensor)]
    return (pruning_utils.compute_cdf_from_histogram(
        tensor, value_range, nbins=pruning_utils._NBINS),  # pylint: disable=protected-access
            pruning_utils.compute_cdf(tensor, value_range,
                                      nbins=pruning_utils._NBINS))  # pylint: disable=protected-access
  from_histogram, from_counts = _evaluate(build)
  np.testing.assert_array_equal(from_histogram, from_counts)


@pytest.mark.parametrize('name,shape,block', _SHAPES_AND_BLOCKS, ids=_IDS)
@pytest.mark.parametrize('pooling', ['AVG', 'MAX'])
def test_factorized_pool_matches_nn_pool(name, shape, block, pooling):
  del name
  values = np.random.RandomState(1).randn(*shape).astype(np.float32)

  def build():
    tensor = tf.constant(values)
    factorized = pruning_utils.factorized_pool(
        tensor, window_shape=block, pooling_type=pooling, strides=block,
        padding='SAME')
    pooled = tf.nn.pool(tf.reshape(tensor, [1] + shape + [1]),
                        window_shape=block, pooling_type=pooling,
                        strides=block, padding='SAME')
    return factorized, tf.squeeze(pooled, axis=[0, 3])
  factorized, pooled = _evaluate(build)
  np.testing.assert_allclose(factorized, pooled, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,shape,block', _SHAPES_AND_BLOCKS, ids=_IDS)
@pytest.mark.parametrize('pooling', ['AVG', 'MAX'])
@pytest.mark.parametrize('factorized', [False, True],
                         ids=['reshape', 'factorized'])
def test_pool_blocks_matches_numpy_blocks(name, shape, block, pooling,
                                          factorized):
  del name
  values = np.abs(np.random.RandomState(3).randn(*shape)).astype(np.float32)
  pooled = _evaluate(lambda: pruning_utils.pool_blocks(
      tf.constant(values), block, pooling, use_factorized=factorized))
  np.testing.assert_allclose(pooled, reference.block_pool(values, block,
                                                          pooling),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,shape,block', _SHAPES_AND_BLOCKS, ids=_IDS)
def test_expand_tensor_equals_kronecker(name, shape, block):
  del name
  values = np.random.RandomState(2).randn(*shape).astype(np.float32)
  expanded, kron = _evaluate(lambda: (
      pruning_utils.expand_tensor(tf.constant(values), block),
      pruning_utils.kronecker_product(tf.constant(values),
                                      tf.ones(block))))
  np.testing.assert_array_equal(expanded, kron)
  np.testing.assert_array_equal(expanded,
                                reference.expand_blocks(values, block))


def test_pool_blocks_excludes_padding_from_average():
  matrix = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
  for factorized in (False, True):
    pooled = _evaluate(lambda: pruning_utils.pool_blocks(
        tf.constant(matrix), [2, 2], 'AVG', use_factorized=factorized))  # pylint: disable=cell-var-from-loop
    np.testing.assert_allclose(pooled, [[3.0, 4.5], [7.5, 9.0]])


def test_expand_tensor_rejects_bad_arguments():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='rank 2'):
      pruning_utils.expand_tensor(tf.ones([2, 2, 2]), [2, 2])
    with pytest.raises(ValueError, match='2 elements'):
      pruning_utils.expand_tensor(tf.ones([2, 2]), [2, 2, 2])
    with pytest.raises(ValueError, match='rank 2'):
      pruning_utils.factorized_pool(tf.ones([2]), [2, 2], 'AVG', [2, 2],
                                    'SAME')


@pytest.mark.parametrize('partitions,axis', [([3, 1], 0), ([1, 4], 1)],
                         ids=['rows', 'columns'])
def test_partitioned_variable_assign(partitions, axis):
  values = np.arange(48, dtype=np.float32).reshape(12, 4)
  with tf.Graph().as_default():
    var = tf.compat.v1.get_variable(
        'var', shape=[12, 4], initializer=tf.compat.v1.zeros_initializer(),
        partitioner=tf.compat.v1.fixed_size_partitioner(
            partitions[axis], axis=axis))
    assert pruning_utils.determine_partitioned_axis(var) == axis
    assign = pruning_utils.partitioned_variable_assign(var, values)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(assign)
      # A separate run: as_tensor() clears control dependencies, so a read
      # fetched together with the assign could run before it.
      assigned = sess.run(var.as_tensor())
  np.testing.assert_array_equal(assigned, values)


def test_variable_factories_make_non_trainable_variables():
  with tf.Graph().as_default():
    weight = tf.compat.v1.get_variable('w', shape=[3, 4], dtype=tf.float64)
    mask = pruning_utils.weight_mask_variable(weight, 'layer')
    threshold = pruning_utils.weight_threshold_variable(weight, 'layer')
    gradient = pruning_utils.weight_gradient_variable(weight, 'layer')
    assert mask.op.name == 'layer/mask'
    assert threshold.op.name == 'layer/threshold'
    assert gradient.op.name == 'layer/gradient'
    assert mask.dtype.base_dtype == tf.float64
    assert threshold.get_shape().as_list() == []
    trainable = tf.compat.v1.trainable_variables()
    assert all(v not in trainable for v in (mask, threshold, gradient))
