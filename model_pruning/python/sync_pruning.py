"""Mask updates inside the synchronous apply step (SyncReplicasOptimizer).

With `tf.compat.v1.train.SyncReplicasOptimizer` the chief applies the
averaged gradients of step t and then releases a token per worker for step
t+1. A `PruningHook` on the chief updates the masks only after its own
`session.run` returns, by which time another worker may already have
computed its step t+1 gradient with the old masks: the run is still correct
pruning, but no longer step-for-step equal to one process.

`MaskUpdateAfterApply` wraps the optimizer given to SyncReplicasOptimizer so
that the aggregated apply runs the conditional mask update right after the
weights and the global step change, before the tokens are released:

  opt = sync_pruning.MaskUpdateAfterApply(
      tf.compat.v1.train.GradientDescentOptimizer(0.1), pruning_obj)
  opt = tf.compat.v1.train.SyncReplicasOptimizer(opt, replicas_to_aggregate=n,
                                                 total_num_replicas=n)

Only the chief runs the aggregated apply (in its queue runner), so the masks
are still updated by one task, once per step; no hook is needed. Every step's
gradients then see the masks a single process would use. For a run equal to
one process's bit for bit, also start without tokens,
`opt.make_session_run_hook(is_chief, num_tokens=0)`: a start-up token lets a
worker hand in a second step-0 gradient computed while the apply was half
done (docs/multi_worker.md).
"""
import tensorflow as tf


class MaskUpdateAfterApply(tf.compat.v1.train.Optimizer):
  """Delegates to `optimizer`; `apply_gradients` then updates the masks."""

  def __init__(self, optimizer, pruning_obj, name='MaskUpdateAfterApply'):
    """Wraps `optimizer`.

    Args:
      optimizer: a `tf.compat.v1.train.Optimizer`.
      pruning_obj: a `pruning.Pruning` (anything with
        `conditional_mask_update_op()`), built after the model so its
        masks exist.
      name: the optimizer's name.
    """
    super().__init__(use_locking=False, name=name)
    self._optimizer = optimizer
    self._pruning_obj = pruning_obj

  def compute_gradients(self, *args, **kwargs):
    return self._optimizer.compute_gradients(*args, **kwargs)

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    """Applies the gradients, then runs the conditional mask update.

    The update reads the global step after the apply incremented it, so it
    fires at the same steps as a single process that runs it after each
    training step.
    """
    apply_op = self._optimizer.apply_gradients(grads_and_vars,
                                               global_step=global_step,
                                               name=name)
    with tf.control_dependencies([apply_op]):
      update = self._pruning_obj.conditional_mask_update_op()
    return tf.group(apply_op, update, name='apply_and_update_masks')

  def get_slot(self, *args, **kwargs):
    return self._optimizer.get_slot(*args, **kwargs)

  def get_slot_names(self, *args, **kwargs):
    return self._optimizer.get_slot_names(*args, **kwargs)

  def variables(self):
    return self._optimizer.variables()
