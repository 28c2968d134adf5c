"""Weights split by a partitioner prune like the unsplit weight (issue 7).

The parameter-server layout stores one logical weight as several variables
(`tf.compat.v1.fixed_size_partitioner`, `variable_axis_size_partitioner`).
`apply_mask` accepts the PartitionedVariable; the mask is partitioned the same
way when created in the partitioned scope, or a plain variable otherwise.
Either way the masks must equal those of an unsplit copy of the weight, and
the numpy oracle, for every threshold method.
"""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref

# Each factory takes the weight's size in bytes and aims at 3-4 shards.
_PARTITIONERS = {
    'fixed3': lambda nbytes: tf.compat.v1.fixed_size_partitioner(3),
    'fixed3_axis1': lambda nbytes: tf.compat.v1.fixed_size_partitioner(
        3, axis=1),
    'axis_size': lambda nbytes: tf.compat.v1.variable_axis_size_partitioner(
        max_shard_bytes=nbytes // 3),
}


def _slice_initializer(values):
  """Initializer that gives each partition its slice of `values`."""
  def initializer(shape, dtype=None, partition_info=None):
    offset = (partition_info.var_offset if partition_info is not None
              else [0] * len(shape))
    piece = values[tuple(slice(o, o + s) for o, s in zip(offset, shape))]
    return tf.constant(piece, dtype=dtype)
  return initializer


def _prune_both(values, partitioner, mask_layout, hparams, step_value):
  """Masks of (unsplit, split) copies after one update at `step_value`."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('plain') as scope:
      plain = tf.compat.v1.get_variable(
          'weights', values.shape,
          initializer=tf.compat.v1.constant_initializer(values))
      pruning.apply_mask(plain, scope)
    with tf.compat.v1.variable_scope(
        'split', partitioner=_PARTITIONERS[partitioner](values.nbytes)) as scope:
      split = tf.compat.v1.get_variable(
          'weights', values.shape, initializer=_slice_initializer(values))
      mask_scope = scope if mask_layout == 'partitioned_mask' else 'split_mask'
      masked = pruning.apply_mask(split, mask_scope)
    num_parts = len(list(split))
    update = pruning.Pruning(hparams, global_step=step)
    mask_update = update.mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      step.load(step_value, sess)
      sess.run(mask_update)
      plain_mask, split_mask, split_masked = sess.run(
          [pruning.get_masks()[0].value(),
           tf.convert_to_tensor(pruning.get_masks()[1]), masked])
  return plain_mask, split_mask, split_masked, num_parts


# Every partitioner and mask layout on a small weight (full sort of the
# magnitudes), and one layout on a weight above 2**14 elements, where the k-th
# largest magnitude is found from a random sample first.
_CASES = [
    pytest.param(partitioner, layout, (30, 21),
                 id='%s-%s-small' % (partitioner, layout))
    for partitioner in sorted(_PARTITIONERS)
    for layout in ('partitioned_mask', 'plain_mask')
] + [pytest.param('fixed3', 'partitioned_mask', (180, 100),
                  id='fixed3-partitioned_mask-sampled_kth')]


@pytest.mark.parametrize('method', ['histogram', 'sort', 'exact'])
@pytest.mark.parametrize('partitioner,mask_layout,shape', _CASES)
def test_split_weight_prunes_like_unsplit(method, partitioner, mask_layout,
                                          shape):
  values = np.random.RandomState(7).normal(size=shape).astype(np.float32)
  hparams = pruning.get_pruning_hparams().override_from_dict(dict(
      threshold_method=method, threshold_decay=0.0, seed=3,
      sparsity_function_end_step=10, target_sparsity=0.6))
  plain_mask, split_mask, split_masked, num_parts = _prune_both(
      values, partitioner, mask_layout, hparams, step_value=10)
  assert num_parts > 1
  np.testing.assert_array_equal(split_mask, plain_mask)
  np.testing.assert_array_equal(split_masked, values * plain_mask)
  if method == 'histogram':
    _, expected = ref.magnitude_mask(values, 0.6, 'histogram', nbins=256)
  else:   # sort and exact agree when all magnitudes are distinct
    _, expected = ref.magnitude_mask(values, 0.6, 'sort')
  np.testing.assert_array_equal(plain_mask, expected)


def test_sparsity_map_matches_partitioned_weight_by_its_own_name():
  values = np.random.RandomState(1).normal(size=(40, 10)).astype(np.float32)
  hparams = pruning.get_pruning_hparams().override_from_dict(dict(
      threshold_method='sort', threshold_decay=0.0,
      sparsity_function_end_step=10, target_sparsity=0.5,
      weight_sparsity_map=['^split/weights$:0.9']))
  plain_mask, split_mask, _, _ = _prune_both(
      values, 'fixed3', 'partitioned_mask', hparams, step_value=10)
  np.testing.assert_array_equal(plain_mask,
                                ref.magnitude_mask(values, 0.5, 'sort')[1])
  np.testing.assert_array_equal(split_mask,
                                ref.magnitude_mask(values, 0.9, 'sort')[1])
