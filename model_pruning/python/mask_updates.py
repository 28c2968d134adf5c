"""Threshold and mask assign ops for weight records, at an explicit step.

`Pruning` hands each record and an `UpdateContext` (the step, the sparsity
per target, the threshold method) to `record_assign_ops`, which reads the
weight as the surrounding control dependencies leave it, computes the new
(threshold, mask) with `saliency_masks` and assigns both. Nothing here keeps
state between calls.
"""
import collections
import contextlib

import tensorflow as tf

from model_pruning.python import pruning_variables
from model_pruning.python import saliency_masks

# `step`: int32 step tensor the update sees; `sparsity_for(target)`: the
# scheduled sparsity tensor of a weight whose own target is `target` (None:
# the global one); `method`: a saliency_masks.ThresholdMethod; `use_gradient`:
# saliency is |W| * gradient; `spec`: the full hparams;
# `previous_sparsity_for(target)` (optional): the sparsity the thresholds
# were last computed for, which tells the warm start how far the schedule
# moved the k-th value since.
UpdateContext = collections.namedtuple(
    'UpdateContext', ['step', 'sparsity_for', 'method', 'use_gradient',
                      'spec', 'previous_sparsity_for'], defaults=[None])


def previous_sparsity(context, target):
  """The context's sparsity at the previous update for `target`, or None."""
  if context.previous_sparsity_for is None:
    return None
  return context.previous_sparsity_for(target)


def _read(variable):
  return None if variable is None else pruning_variables.read_in_order(variable)


def _is_blocked(weights, block_dims):
  squeezed = [d for d in weights.get_shape().as_list() if d != 1]
  return len(squeezed) == 2 and list(block_dims) != [1, 1]


def new_threshold_and_mask(record, context):
  """(threshold, float32 mask) of one record: N:M, blocks or element-wise."""
  settings = record.settings
  weights = _read(record.weight)
  gradients = _read(record.gradient) if context.use_gradient else None
  sparsity = context.sparsity_for(settings.target)
  previous = previous_sparsity(context, settings.target)
  spec = context.spec
  with tf.compat.v1.name_scope(record.name + '_pruning_ops'):
    if settings.m_by_n is not None or not _is_blocked(weights,
                                                      settings.block_dims):
      def elementwise():
        return saliency_masks.elementwise_mask(
            weights, gradients, context.use_gradient, sparsity,
            record.threshold, context.method, previous)

      if settings.m_by_n is None:
        return elementwise()
      return saliency_masks.scheduled_m_by_n_mask(
          weights, settings.m_by_n, sparsity, _own_target(settings, spec),
          record.name,
          fallback=elementwise,
          saliency=(saliency_masks.saliency(weights, gradients, True)
                    if context.use_gradient else None))
    if context.use_gradient and gradients is None:
      raise ValueError('Gradient based pruning needs the gradient tensor for '
                       'block sparsity of %s.' % record.name)
    return saliency_masks.block_mask(
        weights, gradients, settings.block_dims, spec.block_pooling_function,
        spec.use_tpu, sparsity, record.threshold, context.method, previous)


def _own_target(settings, spec):
  """The weight's own target sparsity: N:M measures the part of the
  schedule done against it, so that it too ends exactly M:N."""
  return (spec.target_sparsity if settings.target is None
          else settings.target)


def assign_ops(record, new_threshold, new_mask):
  """Assigns the new threshold and mask (cast to their variables' dtypes)."""
  threshold = record.threshold
  return [
      pruning_variables.assign_variable(
          threshold, tf.cast(new_threshold, threshold.dtype)),
      pruning_variables.assign_variable(
          record.mask, tf.cast(new_mask, record.mask.dtype)),
  ]


def _in_place_assign_ops(record, context):
  """The threshold assign (and block expansion or N:M write) of a |W|
  update whose kernel writes the mask variable itself
  (`saliency_masks.updates_in_place`, `updates_blocks_in_place`,
  `updates_m_by_n_in_place`), or None."""
  settings = record.settings
  mask = record.mask
  if (context.use_gradient or
      pruning_variables.is_partitioned(mask) or
      pruning_variables.is_partitioned(record.weight) or
      not runs_in_one_call([mask])):
    return None
  # Decided from the variable's static shape and dtype: no read is built
  # for an update that takes the other path.
  m_by_n = settings.m_by_n
  blocked = m_by_n is None and _is_blocked(record.weight, settings.block_dims)
  if m_by_n is not None:
    if not saliency_masks.updates_m_by_n_in_place(record.weight, mask,
                                                  m_by_n):
      return None
  elif blocked:
    if not saliency_masks.updates_blocks_in_place(record.weight, mask):
      return None
  elif not saliency_masks.updates_in_place(record.weight, mask,
                                           context.method):
    return None
  sparsity = context.sparsity_for(settings.target)
  writes = []
  with tf.compat.v1.name_scope(record.name + '_pruning_ops'):
    if m_by_n is not None:
      threshold, write = saliency_masks.scheduled_m_by_n_mask_in_place(
          _read(record.weight), mask, m_by_n, sparsity,
          _own_target(settings, context.spec))
      writes.append(write)
    elif blocked:
      spec = context.spec
      threshold, write = saliency_masks.block_mask_in_place(
          _read(record.weight), mask, settings.block_dims,
          spec.block_pooling_function, spec.use_tpu, sparsity,
          record.threshold, context.method,
          previous_sparsity(context, settings.target))
      writes.append(write)
    else:
      threshold = saliency_masks.elementwise_mask_in_place(
          _read(record.weight), mask, sparsity, record.threshold,
          context.method)
  return writes + [pruning_variables.assign_variable(
      record.threshold, tf.cast(threshold, record.threshold.dtype))]


def record_assign_ops(record, context):
  """The ops that update one record's threshold and mask."""
  in_place = _in_place_assign_ops(record, context)
  if in_place is not None:
    return in_place
  return assign_ops(record, *new_threshold_and_mask(record, context))


@contextlib.contextmanager
def tf1_control_flow():
  """Builds TF1 control flow inside the block; restores the setting after."""
  was_v2 = tf.compat.v1.control_flow_v2_enabled()
  tf.compat.v1.disable_control_flow_v2()
  try:
    yield
  finally:
    if was_v2:
      tf.compat.v1.enable_control_flow_v2()


def runs_in_one_call(values):
  """True when one function call may read and assign all of `values`.

  A session hands a function only resource variables of its own task: ref
  variables (TF1's `disable_resource_variables`) cannot be assigned inside
  one, and a resource on another task (`/job:ps`) fails there unless the
  session shares cluster devices. Tensors of this task pass as inputs.
  """
  for value in values:
    if not hasattr(value, 'dtype'):
      continue  # A Python number becomes a constant inside the function.
    dtype = tf.as_dtype(value.dtype)
    if dtype != dtype.base_dtype:
      return False
    job = tf.DeviceSpec.from_string(getattr(value, 'device', '') or '').job
    if job not in (None, 'localhost'):
      return False
  return True


def one_call(body, name):
  """`body()` as a single function-call op that the session never inlines;
  returns its output, a bool tensor (True)."""
  def traced():
    with tf.control_dependencies([body()]):
      return tf.constant(True, name='done')

  function = tf.function(traced, autograph=False,
                         experimental_attributes={'_noinline': True})
  with tf.compat.v1.name_scope(name):
    return function()


def _gated_call(pred, body, name):
  """`body()` as one call op that runs only when `pred`: Switch -> pivot
  -> (control) call -> Merge, the TF1 cond's own pieces without a Switch
  per captured input.

  A not-due step visits five nodes (Switch, the dead pivot and call, Merge,
  the group): a TF1 cond around the call adds a Switch for every resource
  it captures (11 on a 3-layer MLP). Deadness reaches the call through the
  pivot's control edge, as for any op without inputs in a TF1 cond branch.
  """
  with tf.compat.v1.name_scope(name + '_gate'):
    not_due, due = tf.raw_ops.Switch(data=pred, pred=pred)
    pivot = tf.identity(due, name='pivot')  # Dead when `pred` is false.
  with tf.control_dependencies([pivot]):
    done = one_call(body, name)
  merged, _ = tf.raw_ops.Merge(inputs=[not_due, done], name=name + '_merge')
  return tf.group(merged, name=name)


def conditional(pred, true_fn, name, one_call=False):
  """`true_fn()` when `pred`, else nothing, as TF1 (Switch/Merge) control
  flow, which the session runs without function machinery.

  With `one_call` (the caller checked `runs_in_one_call`) the update is one
  call of a function holding it, gated by `_gated_call`: a not-due step
  costs the predicate and five node visits (not inside a `tf.function`,
  where a cond is built). Otherwise it is a TF1 cond with
  the update ops inline: a dead branch costs a visit per op (~2% of an MLP
  step). An `If` op (control flow v2) costs ~1.5-3%; inside a `tf.function`
  TensorFlow builds one regardless
  (`benchmarks/conditional_op_benchmark.py`).

  Returns:
    An Operation named `name`.
  """
  if one_call and not tf.inside_function():
    return _gated_call(pred, true_fn, name)
  with tf1_control_flow():
    merged = tf.compat.v1.cond(pred, true_fn, tf.no_op, name=name + '_cond')
  return tf.group(merged, name=name)
