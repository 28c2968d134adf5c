"""Session hooks that update pruning masks inside `MonitoredTrainingSession`.

* `PruningHook` runs `Pruning.conditional_mask_update_op()` after every
  training step; the op itself decides (from the global step and
  `pruning_frequency`) whether the masks change.
* `ModelPruningHook` and `ModelPruningListener` keep google-research's
  behaviour (SPEC 2.12): the hook calls its listeners every `every_steps`
  steps, and each listener updates one pruned object.

A graph can also do without a hook, with one op per step that trains and then
updates the masks:

  with tf.control_dependencies([train_op]):
    train_and_prune = p.conditional_mask_update_op()

Both hooks warn once when the global step stands still between two mask
updates: the schedule is driven by the global step, so a train op that does
not increment it (`minimize(loss)` without `global_step=`) never prunes.
"""
from absl import logging
import tensorflow as tf

from model_pruning.python import pruning

_NOT_ADVANCING_MESSAGE = (
    '%s: the global step stayed at %d across %s, so the pruning schedule '
    'does not move and masks may never change. Increment the global step in '
    'the train op (optimizer.minimize(loss, global_step=global_step)).')


class _StepWatch:
  """Warns once when consecutive observed global steps are equal."""

  def __init__(self, owner_name, span, repeats_allowed=0):
    self._owner_name = owner_name
    self._span = span
    self._repeats_allowed = repeats_allowed
    self._last_step = None
    self._repeats = 0
    self._warned = False

  def observe(self, step):
    """Records `step`; logs the warning the first time it stalls too long."""
    self._repeats = self._repeats + 1 if step == self._last_step else 0
    self._last_step = step
    if self._repeats > self._repeats_allowed and not self._warned:
      self._warned = True
      logging.warning(_NOT_ADVANCING_MESSAGE, self._owner_name, step,
                      self._span)


def _global_step_tensor(hook_name):
  """Returns the graph's global step (created if missing) or raises."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  if global_step is None:
    raise RuntimeError('Global step should be created to use %s; call '
                       'tf.compat.v1.train.get_or_create_global_step() when '
                       'building the graph.' % hook_name)
  return global_step


class PruningHook(tf.compat.v1.train.SessionRunHook):
  """Runs the conditional mask update after every `MonitoredSession.run`.

  Give either a `Pruning` object (its `conditional_mask_update_op()` is built
  in `begin()`, before the session finalizes the graph) or a prebuilt op. The
  op and the global step are fetched together in one extra `session.run` per
  step, outside the hooked run, so the update sees the finished step.
  """

  def __init__(self, pruning_obj=None, mask_update_op=None):
    """Creates the hook.

    Args:
      pruning_obj: a `pruning.Pruning` (or anything with
        `conditional_mask_update_op()`).
      mask_update_op: a prebuilt op (or tensor) to run instead.

    Raises:
      ValueError: unless exactly one of the two is given.
    """
    if (pruning_obj is None) == (mask_update_op is None):
      raise ValueError('PruningHook needs exactly one of pruning_obj and '
                       'mask_update_op, got %s.' % (
                           'neither' if pruning_obj is None else 'both'))
    self._pruning_obj = pruning_obj
    self._mask_update_op = mask_update_op
    self._fetches = None
    self._step_watch = _StepWatch('PruningHook', 'two mask updates')

  def begin(self):
    global_step = _global_step_tensor('PruningHook')
    if self._mask_update_op is None:
      self._mask_update_op = self._pruning_obj.conditional_mask_update_op()
    self._fetches = [self._mask_update_op, global_step]

  def after_run(self, run_context, run_values):
    del run_values  # The update reads the step after the run instead.
    _, step = run_context.session.run(self._fetches)
    self._step_watch.observe(int(step))


class ModelPruningListener(tf.compat.v1.train.CheckpointSaverListener):
  """Updates one pruned object whenever its `ModelPruningHook` fires.

  `pruning_obj` is either a `pruning.Pruning`, whose conditional mask update
  op is built in `begin()` and run, or any object with its own
  `run_update_step(session, global_step)` (google-research's compression
  objects, duck types), which is called as is.
  """

  def __init__(self, pruning_obj):
    self._pruning_obj = pruning_obj
    self._mask_update_op = None

  def begin(self):
    if _is_plain_pruning(self._pruning_obj):
      self._mask_update_op = self._pruning_obj.conditional_mask_update_op()

  def before_save(self, session, global_step_value):
    if self._mask_update_op is not None:
      session.run(self._mask_update_op)
      return
    _run_update_step(self._pruning_obj, session, global_step_value)


def _is_plain_pruning(pruning_obj):
  """True unless the object brings its own `run_update_step`.

  `pruning.Pruning.run_update_step` only runs the conditional mask update, so
  a `Pruning` (not overriding it) gets that op built before the graph is
  finalized instead.
  """
  run_update_step = getattr(pruning_obj, 'run_update_step', None)
  if not callable(run_update_step):
    return True
  return (getattr(run_update_step, '__func__', None) is
          pruning.Pruning.run_update_step)


def _run_update_step(pruning_obj, session, global_step_value):
  """Calls `pruning_obj.run_update_step`, unfinalizing only if it must.

  google-research always unfinalized the session's graph first (a private
  TF API), because some compression objects add ops while updating. Here the
  call is tried on the graph as it is, and only an object that does add ops
  gets the upstream treatment, after which the graph is finalized again.
  """
  graph = session.graph
  try:
    pruning_obj.run_update_step(session, global_step_value)
    return
  except RuntimeError as error:
    if not (graph.finalized and 'finalized' in str(error)):
      raise
  logging.warning('%s.run_update_step adds ops to the graph; unfinalizing '
                  'it for the call.', type(pruning_obj).__name__)
  graph._unsafe_unfinalize()  # pylint: disable=protected-access
  try:
    pruning_obj.run_update_step(session, global_step_value)
  finally:
    graph.finalize()


class ModelPruningHook(tf.compat.v1.train.SessionRunHook):
  """Calls `ModelPruningListener`s every `every_steps` global steps.

  google-research's hook (SPEC 2.12): the listeners run once right after the
  session is created, then whenever the global step reaches the last
  triggered step plus `every_steps`, and once more at the end if the last
  step was not covered. A listener's `after_save` returning True stops
  training. `listeners=None` means no listeners (upstream crashed on it).
  """
  _STEPS_PER_RUN = 1

  def __init__(self, every_steps=None, listeners=None):
    logging.info('Creating ModelPruningHook.')
    self._timer = tf.compat.v1.train.SecondOrStepTimer(every_steps=every_steps)
    self._listeners = list(listeners or [])
    self._steps_per_run = self._STEPS_PER_RUN
    self._global_step_tensor = None
    # The step fetched with the train op may be read before or after the
    # train op increments it, so one repeat can be a read-order artefact;
    # two repeats in a row cannot.
    self._step_watch = _StepWatch('ModelPruningHook', 'three session runs',
                                  repeats_allowed=1)

  def begin(self):
    self._global_step_tensor = _global_step_tensor('ModelPruningHook')
    for listener in self._listeners:
      listener.begin()

  def after_create_session(self, session, coord):
    del coord  # Unused.
    global_step = session.run(self._global_step_tensor)
    self._call_prune_listener(session, global_step)
    self._timer.update_last_triggered_step(global_step)

  def before_run(self, run_context):
    del run_context  # Unused.
    return tf.compat.v1.train.SessionRunArgs(self._global_step_tensor)

  def after_run(self, run_context, run_values):
    stale_global_step = run_values.results
    self._step_watch.observe(int(stale_global_step))
    if not self._timer.should_trigger_for_step(stale_global_step +
                                               self._steps_per_run):
      return
    global_step = run_context.session.run(self._global_step_tensor)
    if self._timer.should_trigger_for_step(global_step):
      self._timer.update_last_triggered_step(global_step)
      if self._call_prune_listener(run_context.session, global_step):
        run_context.request_stop()

  def end(self, session):
    last_step = session.run(self._global_step_tensor)
    if last_step != self._timer.last_triggered_step():
      self._call_prune_listener(session, last_step)
    for listener in self._listeners:
      listener.end(session, last_step)

  def _call_prune_listener(self, session, step):
    """Runs every listener's before_save, then after_save; True to stop."""
    logging.info('Calling prune listeners for step %d.', step)
    for listener in self._listeners:
      listener.before_save(session, step)
    should_stop = False
    for listener in self._listeners:
      if listener.after_save(session, step):
        logging.info('A prune listener requested that training be stopped. '
                     'listener: %s', listener)
        should_stop = True
    return should_stop
