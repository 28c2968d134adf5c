"""The TF1-style conditional mask update saves, restores and strips.

`Pruning.conditional_mask_update_op` is built with TF1 control flow: one
Switch on the predicate gates one never-inlined function call (through a
pivot's control edge) and a Merge ends it, because that not-due path is the
cheapest (`benchmarks/conditional_op_benchmark.py`).
Ref variables and variables on another task keep the update ops inline. The
graph must still behave as before: update only on due steps, survive a
checkpoint and meta-graph round trip (the imported op still updates), and
strip to a graph without pruning variables.
"""
import os

import numpy as np
import tensorflow as tf

from model_pruning.python import mask_updates
from model_pruning.python import pruning
from model_pruning.python import strip_pruning_vars_lib
from tests import reference


def _masked_layer_pruning(weights, use_resource=True):
  """(step, Pruning) of one masked layer ('layer/logits'): sort, sparsity
  0.5 from the start, an update due every 10 steps."""
  step = tf.compat.v1.train.get_or_create_global_step()
  inputs = tf.compat.v1.placeholder(tf.float32, [None, weights.shape[0]],
                                    name='inputs')
  # The scope's use_resource also makes the mask and threshold variables.
  with tf.compat.v1.variable_scope('layer',
                                   use_resource=use_resource) as scope:
    kernel = tf.compat.v1.get_variable('weights', initializer=weights)
    tf.identity(tf.matmul(inputs, pruning.apply_mask(kernel, scope)),
                name='logits')
  hparams = pruning.get_pruning_hparams().parse(
      'threshold_method=sort,initial_sparsity=0.5,target_sparsity=0.5,'
      'threshold_decay=0.0,pruning_frequency=10,begin_pruning_step=0')
  return step, pruning.Pruning(hparams, global_step=step)


def _build(weights, use_resource=True):
  step, prune = _masked_layer_pruning(weights, use_resource)
  return step, prune.conditional_mask_update_op()


def _update_types(graph):
  return {op.type for op in graph.get_operations()
          if 'conditional_mask_update' in op.name}


def _pruning_ops_inline(graph):
  return [op.name for op in graph.get_operations()
          if '_pruning_ops/' in op.name]


def _fires_when_due(weights, step, update, mask):
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    session.run(step.assign(5))
    session.run(update)  # Not due: last update 0, frequency 10.
    assert np.all(session.run(mask) == 1.0)
    session.run(step.assign(10))
    session.run(update)
    np.testing.assert_array_equal(
        session.run(mask), reference.magnitude_mask(weights, 0.5, 'sort')[1])


def test_conditional_op_is_one_gated_call_and_fires_when_due():
  weights = np.random.default_rng(0).standard_normal((64, 64)).astype(
      np.float32)
  with tf.Graph().as_default() as graph:
    step, update = _build(weights)
    types = _update_types(graph)
    assert {'Switch', 'Merge', 'StatefulPartitionedCall'} <= types
    assert not types & {'If', 'StatelessIf'}
    # The dead branch is the call alone: no update op sits in the graph.
    assert not _pruning_ops_inline(graph)
    [call] = [op for op in graph.get_operations()
              if op.type == 'StatefulPartitionedCall']
    # One Switch gates the call through a pivot (its control input); the
    # resources the call captures come straight from their handles, so a
    # not-due step visits no Switch per input.
    assert [op.type for op in graph.get_operations()].count('Switch') == 1
    assert not [t for t in call.inputs if t.op.type == 'Switch']
    [pivot] = call.control_inputs
    assert pivot.type == 'Identity' and pivot.inputs[0].op.type == 'Switch'
    assert pivot.inputs[0].value_index == 1  # The true output: dead if not due.
    function = graph.as_graph_def().library.function
    [body] = [f for f in function if f.signature.name ==
              call.get_attr('f').name]
    assert body.attr['_noinline'].b  # Else the session inlines it again.
    _fires_when_due(weights, step, update, pruning.get_masks()[0])
  assert tf.compat.v1.control_flow_v2_enabled()  # Restored after the build.


def test_ref_variables_keep_the_update_inline_and_fire_when_due():
  weights = np.random.default_rng(2).standard_normal((64, 64)).astype(
      np.float32)
  with tf.Graph().as_default() as graph:
    step, update = _build(weights, use_resource=False)
    [mask] = pruning.get_masks()
    assert mask.dtype != mask.dtype.base_dtype  # A ref variable.
    types = _update_types(graph)
    assert {'Switch', 'Merge'} <= types and 'StatefulPartitionedCall' not in types
    assert _pruning_ops_inline(graph)
    _fires_when_due(weights, step, update, mask)


def test_variables_on_a_ps_task_keep_the_update_inline():
  """A TF1 session cannot hand a ps task's resource to a function call."""
  weights = np.random.default_rng(4).standard_normal((64, 64)).astype(
      np.float32)
  with tf.Graph().as_default() as graph:
    with tf.compat.v1.device(
        tf.compat.v1.train.replica_device_setter(ps_tasks=1)):
      _build(weights)
    [mask] = pruning.get_masks()
    assert mask.device.startswith('/job:ps')
    assert 'StatefulPartitionedCall' not in _update_types(graph)
    assert _pruning_ops_inline(graph)


def test_runs_in_one_call_only_for_local_resource_variables():
  with tf.Graph().as_default():
    local = tf.compat.v1.get_variable('local', [2], use_resource=True)
    ref = tf.compat.v1.get_variable('ref', [2], use_resource=False)
    with tf.device('/job:ps/task:0'):
      remote = tf.compat.v1.get_variable('remote', [2], use_resource=True)
    with tf.device('/job:localhost/replica:0/task:0/device:CPU:0'):
      here = tf.compat.v1.get_variable('here', [2], use_resource=True)
    tensor = tf.constant(1.0)
    assert mask_updates.runs_in_one_call([local, here, tensor, 0.5])
    assert not mask_updates.runs_in_one_call([local, ref])
    assert not mask_updates.runs_in_one_call([remote, local])


def test_meta_graph_round_trip_updates_and_strips(tmp_path):
  weights = np.random.default_rng(1).standard_normal((64, 64)).astype(
      np.float32)
  prefix = os.path.join(str(tmp_path), 'model.ckpt')
  with tf.Graph().as_default():
    step, update = _build(weights)
    mask_name = pruning.get_masks()[0].name
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, prefix)
  update_name = update.name
  with tf.Graph().as_default() as graph:
    saver = tf.compat.v1.train.import_meta_graph(prefix + '.meta')
    with tf.compat.v1.Session() as session:
      saver.restore(session, prefix)
      step = tf.compat.v1.train.get_global_step()
      session.run(step.assign(10))
      session.run(graph.get_operation_by_name(update_name))
      [mask] = [v for v in tf.compat.v1.global_variables()
                if v.name == mask_name]
      mask = session.run(mask.read_value())
      np.testing.assert_array_equal(mask, reference.magnitude_mask(weights, 0.5, 'sort')[1])
      saver.save(session, prefix)
  stripped = strip_pruning_vars_lib.strip_pruning_vars_fn(
      strip_pruning_vars_lib.graph_def_from_checkpoint(
          str(tmp_path), ['layer/logits']), ['layer/logits'])
  names = {node.name for node in stripped.node}
  assert 'layer/logits' in names and 'layer/mask' not in names
  assert not any(node.op in ('Switch', 'Merge') for node in stripped.node)
  assert not stripped.library.function  # The update's function is dropped.


def test_mask_update_op_builds_inside_a_v2_cond():
  """Inside a control-flow-v2 branch (a FuncGraph) tensors are unhashable:
  the update must not key anything on them."""
  weights = np.random.default_rng(1).standard_normal((64, 64)).astype(
      np.float32)
  with tf.Graph().as_default():
    _, prune = _masked_layer_pruning(weights)
    update = tf.cond(tf.constant(True), prune.mask_update_op, tf.no_op)
    [mask] = pruning.get_masks()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(update)
      np.testing.assert_array_equal(
          session.run(mask), reference.magnitude_mask(weights, 0.5, 'sort',
                                                      256)[1])


def test_conditional_op_builds_and_fires_inside_a_tf_function():
  """Inside a FuncGraph the cond is an `If` whose branch calls the update."""
  weights = np.random.default_rng(3).standard_normal((64, 64)).astype(
      np.float32)
  with tf.Graph().as_default() as graph:
    step, prune = _masked_layer_pruning(weights)

    @tf.function(autograph=False)
    def update():
      prune.conditional_mask_update_op()

    update()
    [call] = [op for op in graph.get_operations()
              if op.type == 'StatefulPartitionedCall']
    [mask] = pruning.get_masks()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(step.assign(10))
      session.run(call)
      np.testing.assert_array_equal(
          session.run(mask), reference.magnitude_mask(weights, 0.5, 'sort')[1])


def test_conditional_op_inside_an_outer_tf1_cond_fires_only_when_both_hold():
  weights = np.random.default_rng(5).standard_normal((64, 64)).astype(
      np.float32)
  was_v2 = tf.compat.v1.control_flow_v2_enabled()
  tf.compat.v1.disable_control_flow_v2()
  try:
    with tf.Graph().as_default():
      step, prune = _masked_layer_pruning(weights)
      outer = tf.compat.v1.placeholder(tf.bool, [])
      update = tf.compat.v1.cond(
          outer, lambda: tf.group(prune.conditional_mask_update_op()),
          tf.no_op)
      [mask] = pruning.get_masks()
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        session.run(step.assign(10))  # Due.
        session.run(update, {outer: False})
        assert np.all(session.run(mask) == 1.0)
        assert session.run(prune.last_update_step) == 0
        session.run(update, {outer: True})
        assert session.run(prune.last_update_step) == 10
        np.testing.assert_array_equal(
            session.run(mask),
            reference.magnitude_mask(weights, 0.5, 'sort')[1])
        session.run(step.assign(15))  # Not due.
        session.run(update, {outer: True})
        assert session.run(prune.last_update_step) == 10
  finally:
    if was_v2:
      tf.compat.v1.enable_control_flow_v2()
