"""|W| updates write the mask variable in place.

`Pruning`'s element-wise histogram and sort updates of a local float32
resource mask run `ModelPruningMaskUpdateInPlace`, block updates (every
method) expand their blocks' mask with `ModelPruningExpandBlocksInPlace`,
and N:M updates by |W| run `ModelPruningMByNMaskInPlace`; each writes the
variable's own buffer when no read of it is alive (else a
new one, leaving the read its values): the masks must equal the
TensorFlow-op pipeline's bit for bit over drifting updates, the update must
allocate no mask-sized buffer, and every other case (element-wise exact,
gradients, ref variables) keeps the mask assign.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import bench_util
from model_pruning.python import native_kernels
from model_pruning.python import pruning

pytestmark = pytest.mark.skipif(
    os.environ.get('MODEL_PRUNING_NATIVE') == '0',
    reason='MODEL_PRUNING_NATIVE=0 turns the kernels off')

_SHAPE = (256, 384)


def _pruned_layer(method, extra='', use_resource=True):
  """(weights variable, mask, step, Pruning) of one masked layer."""
  step = tf.compat.v1.train.get_or_create_global_step()
  initial = np.random.default_rng(3).standard_normal(_SHAPE).astype(
      np.float32)
  with tf.compat.v1.variable_scope('layer',
                                   use_resource=use_resource) as scope:
    kernel = tf.compat.v1.get_variable('weights', initializer=initial)
    option = ('first_order_gradient' if 'first_order_gradient' in extra
              else 'weight')
    pruning.apply_mask(kernel, scope, prune_option=option)
  hparams = pruning.get_pruning_hparams().parse(
      'threshold_method=%s,initial_sparsity=0.3,target_sparsity=0.8,'
      'begin_pruning_step=0,end_pruning_step=100,'
      'sparsity_function_end_step=100,pruning_frequency=1,'
      'threshold_decay=0.0%s' % (method, extra))
  prune = pruning.Pruning(hparams, global_step=step)
  [mask] = pruning.get_masks()
  return kernel, mask, step, prune


def _op_types(graph):
  return [op.type for op in graph.get_operations()]


def _masks_over_updates(method, native, extra='', scales=None):
  """The mask and threshold after each of 8 updates on drifting weights,
  at steps 0, 10, ..., 70; with `scales`, all at step 50 (one sparsity, so
  each update starts from the last one's bracket) and the weights' largest
  magnitude first scaled by scales[i]."""
  rng = np.random.default_rng(5)
  with tf.Graph().as_default() as graph:
    if native:
      kernel, mask, step, prune = _pruned_layer(method, extra)
      update = prune.mask_update_op()
    else:
      with native_kernels.disabled():
        kernel, mask, step, prune = _pruned_layer(method, extra)
        update = prune.mask_update_op()
    [threshold] = pruning.get_thresholds()
    drift = tf.compat.v1.placeholder(tf.float32, _SHAPE)
    move = kernel.assign_add(drift)
    scale = tf.compat.v1.placeholder(tf.float32, [])
    largest = tf.equal(tf.abs(kernel), tf.reduce_max(tf.abs(kernel)))
    rescale = kernel.assign(tf.where(largest, kernel * scale, kernel))
    results = []
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for i in range(8):
        session.run(move, {drift: rng.normal(0, 0.01, _SHAPE)})
        if scales is not None:
          session.run(rescale, {scale: scales[i]})
        session.run(step.assign(10 * i if scales is None else 50))
        session.run(update)
        results.append(session.run([mask, threshold, kernel]))
  return _op_types(graph), results


@pytest.mark.parametrize('stream', ['0', '1'])  # Cached or streaming stores.
@pytest.mark.parametrize('method', ['histogram', 'sort'])
def test_in_place_masks_equal_the_tf_op_pipeline(method, stream, monkeypatch):
  monkeypatch.setenv('MODEL_PRUNING_NATIVE_STREAM', stream)
  types, native = _masks_over_updates(method, native=True)
  assert types.count('ModelPruningMaskUpdateInPlace') == 1
  assert 'ModelPruningMaskUpdate' not in types
  tf_types, tf_ops = _masks_over_updates(method, native=False)
  assert 'ModelPruningMaskUpdateInPlace' not in tf_types
  for i, ((mask, threshold, weights), (tf_mask, tf_threshold, _)) in (
      enumerate(zip(native, tf_ops))):
    assert threshold == tf_threshold, i
    np.testing.assert_array_equal(mask, tf_mask, err_msg='update %d' % i)
    expected = (np.abs(weights) > threshold if method == 'histogram'
                else np.abs(weights) >= threshold)
    np.testing.assert_array_equal(mask, expected.astype(np.float32))
  assert 0.0 < native[-1][0].mean() < 0.9  # The schedule pruned.


@pytest.mark.parametrize('scales', [
    # The histogram threshold is a bin edge, in proportion to the maximum:
    # shrinking it by less than the band's slack below the predicted
    # threshold (1/512), by more (the mask's second pass), and growing it.
    [1.0, 0.9995, 0.999, 0.996, 0.99, 1.004, 0.98, 1.05],
    [0.998, 0.997, 0.995, 0.999, 0.993, 0.996, 0.9985, 0.994],
])
def test_histogram_masks_equal_the_tf_op_pipeline_as_the_maximum_moves(
    scales):
  _, native = _masks_over_updates('histogram', native=True, scales=scales)
  _, tf_ops = _masks_over_updates('histogram', native=False, scales=scales)
  for i, ((mask, threshold, weights), (tf_mask, tf_threshold, _)) in (
      enumerate(zip(native, tf_ops))):
    assert threshold == tf_threshold, i
    np.testing.assert_array_equal(mask, tf_mask, err_msg='update %d' % i)
    np.testing.assert_array_equal(
        mask, (np.abs(weights) > threshold).astype(np.float32))


# 5x7 blocks leave edge blocks on both sides of the 256x384 weight.
_BLOCKS = [',block_height=4,block_width=4',
           ',block_height=5,block_width=7,block_pooling_function=MAX',
           ',block_height=5,block_width=7']


@pytest.mark.parametrize('blocks', _BLOCKS)
@pytest.mark.parametrize('method', ['histogram', 'sort', 'exact'])
def test_in_place_block_masks_equal_the_tf_op_pipeline(method, blocks):
  types, native = _masks_over_updates(method, native=True, extra=blocks)
  assert types.count('ModelPruningExpandBlocksInPlace') == 1
  assert types.count('ModelPruningPoolBlocks') == 1
  assert 'AssignVariableOp' in types  # The threshold's.
  tf_types, tf_ops = _masks_over_updates(method, native=False, extra=blocks)
  assert 'ModelPruningExpandBlocksInPlace' not in tf_types
  for i, ((mask, threshold, _), (tf_mask, tf_threshold, _)) in (
      enumerate(zip(native, tf_ops))):
    assert threshold == tf_threshold, i
    np.testing.assert_array_equal(mask, tf_mask, err_msg='update %d' % i)
  assert 0.0 < native[-1][0].mean() < 0.9  # The schedule pruned.


@pytest.mark.parametrize('m_by_n', ['2:4', '1:4', '3:8'])
def test_in_place_m_by_n_masks_equal_the_tf_op_pipeline(m_by_n):
  """The gradual schedule keeps fewer of every N as it runs (2:4: 4, then
  3; steps 0-70 of a schedule that ends at 100)."""
  extra = ',sparsity_m_by_n=%s' % m_by_n
  types, native = _masks_over_updates('histogram', native=True, extra=extra)
  assert types.count('ModelPruningMByNMaskInPlace') == 1
  assert 'ModelPruningMByNMask' not in types
  tf_types, tf_ops = _masks_over_updates('histogram', native=False,
                                         extra=extra)
  assert 'ModelPruningMByNMaskInPlace' not in tf_types
  m, n = (int(part) for part in m_by_n.split(':'))
  kept = set()
  for i, ((mask, threshold, _), (tf_mask, tf_threshold, _)) in (
      enumerate(zip(native, tf_ops))):
    assert threshold == tf_threshold == 0.0, i
    np.testing.assert_array_equal(mask, tf_mask, err_msg='update %d' % i)
    per_group = mask.reshape(-1, n, _SHAPE[1]).sum(axis=1)
    assert np.all(per_group == per_group.flat[0]), i
    kept.add(int(per_group.flat[0]))
  assert len(kept) > 1 and min(kept) >= m, kept


def test_a_partial_m_by_n_group_keeps_at_most_m():
  """A depth that N does not divide: the last group keeps min(M, rows)."""
  scores = np.random.default_rng(7).standard_normal((6, 5)).astype(np.float32)
  with tf.Graph().as_default():
    mask = tf.compat.v1.get_variable(
        'mask', initializer=np.zeros((6, 5), np.float32), use_resource=True)
    keep = tf.compat.v1.placeholder(tf.int32, [])
    write = native_kernels.m_by_n_mask_in_place(tf.constant(scores), keep, 4,
                                                mask, take_abs=True)
    with tf.compat.v1.Session() as session:
      session.run(mask.initializer)
      for m in range(6):
        session.run(write, {keep: m})
        expected = native_kernels.m_by_n_mask(
            tf.constant(scores), min(m, 4), 4, take_abs=True)
        np.testing.assert_array_equal(session.run(mask),
                                      session.run(expected), err_msg=str(m))
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match=r'm must be >= 0 \(how many of every 4 '
                         r'survive\), got -1'):
        session.run(write, {keep: -1})


@pytest.mark.parametrize('method,extra', [('sort', ''),
                                          ('exact', _BLOCKS[0]),
                                          ('histogram', ',sparsity_m_by_n=2:4')])
def test_in_place_update_allocates_no_mask_buffer(method, extra):
  mask_bytes = np.prod(_SHAPE) * 4
  with tf.Graph().as_default():
    _, _, step, prune = _pruned_layer(method, extra)
    update = prune.mask_update_op()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(update)
      session.run(step.assign(50))
      session.run(update)
      peak = bench_util.peak_step_bytes(session, update)
  # The weights' read shares the variable's buffer; the band is small.
  assert peak < mask_bytes / 4, peak


@pytest.mark.parametrize('extra,at_step,kept', [
    ('', 0, 0.7),  # initial_sparsity 0.3.
    (_BLOCKS[0], 0, 0.7),
    (',sparsity_m_by_n=2:4', 100, 0.5)])  # The end of the schedule.
def test_a_live_read_keeps_the_old_mask(extra, at_step, kept):
  """A read of the mask that the update waits for holds its buffer: the
  update writes a new one and the read still shows the old values."""
  with tf.Graph().as_default():
    _, mask, step, prune = _pruned_layer('sort', extra)
    before = mask.read_value()
    with tf.control_dependencies([before]):
      update = prune.mask_update_op()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(step.assign(at_step))
      old, _ = session.run([before, update])
      new = session.run(mask)
  np.testing.assert_array_equal(old, np.ones(_SHAPE, np.float32))
  assert new.mean() == pytest.approx(kept, abs=1e-3)


@pytest.mark.parametrize('extra', [
    ',prune_option=first_order_gradient',
    ',prune_option=first_order_gradient,block_height=2,block_width=2'])
def test_gradients_keep_the_mask_assign(extra):
  with tf.Graph().as_default() as graph:
    _pruned_layer('sort', extra)[-1].mask_update_op()
    types = _op_types(graph)
    assert 'ModelPruningMaskUpdateInPlace' not in types
    assert 'ModelPruningExpandBlocksInPlace' not in types
    assert 'ModelPruningMaskUpdate' in types


def test_exact_and_ref_variables_keep_the_mask_assign():
  for method, use_resource, extra in (('exact', True, ''),
                                      ('sort', False, ''),
                                      ('sort', False, _BLOCKS[0])):
    with tf.Graph().as_default() as graph:
      _pruned_layer(method, extra,
                    use_resource=use_resource)[-1].mask_update_op()
      types = _op_types(graph)
      assert 'ModelPruningMaskUpdateInPlace' not in types
      assert 'ModelPruningExpandBlocksInPlace' not in types
      assert 'ModelPruningMaskUpdate' in types


def test_bad_mask_variable_names_the_problem():
  with tf.Graph().as_default():
    values = tf.constant(np.ones((4, 4), np.float32))
    wrong_shape = tf.compat.v1.get_variable(
        'wrong', initializer=np.ones((2, 8), np.float32), use_resource=True)
    update = native_kernels.mask_update_in_place(
        values, wrong_shape, 0.5, 0.0, 'sort', 256, 0.0, True)
    with tf.compat.v1.Session() as session:
      session.run(wrong_shape.initializer)
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match=r'float32 variable of the values\' shape '
                         r'\[4,4\], got float 2,8|\[2,8\]'):
        session.run(update.threshold)


def test_bad_block_mask_variable_names_the_problem():
  with tf.Graph().as_default():
    wrong_size = tf.compat.v1.get_variable(
        'wrong', initializer=np.ones((2, 8), np.float32), use_resource=True)
    write = native_kernels.expand_blocks_in_place(
        tf.ones([2, 2]), [2, 2], wrong_size, [4, 4])
    squeezable = tf.compat.v1.get_variable(
        'squeezable', initializer=np.ones((4, 1, 4), np.float32),
        use_resource=True)
    fine = native_kernels.expand_blocks_in_place(
        tf.constant([[1.0, 0.0], [0.0, 1.0]]), [2, 2], squeezable, [4, 4])
    with tf.compat.v1.Session() as session:
      session.run([wrong_size.initializer, squeezable.initializer])
      session.run(fine)
      np.testing.assert_array_equal(
          session.run(squeezable)[:, 0, :],
          np.kron([[1.0, 0.0], [0.0, 1.0]], np.ones((2, 2))))
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match=r'mask must be an initialized float32 '
                         r'variable of 4x4 values \(up to dimensions of 1\), '
                         r'got float \[2,8\]'):
        session.run(write)
