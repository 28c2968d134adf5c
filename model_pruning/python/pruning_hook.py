"""Session hooks that update pruning masks inside `MonitoredTrainingSession`.

* `PruningHook` runs `Pruning.conditional_mask_update_op()` after every
  training step; the op itself decides (from the global step and
  `pruning_frequency`) whether the masks change.
* `ModelPruningHook` and `ModelPruningListener` keep google-research's
  behaviour (docs/upstream.md): the hook calls its listeners every `every_steps`
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
from model_pruning.python import sparsity_log

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


class _SessionCallable:
  """Runs fixed `fetches` through `session.make_callable`, made once per
  session: a callable skips `session.run`'s per-call fetch and executor
  lookup, which cost ~0.25 ms per MLP update step, ~3% of the step
  (docs/benchmarks.md). Sessions without `make_callable` use `run`."""

  def __init__(self, fetches):
    self._fetches = fetches
    self._session = None
    self._callable = None

  def __call__(self, session):
    if session is not self._session:
      make_callable = getattr(session, 'make_callable', None)
      self._callable = (make_callable(self._fetches) if make_callable
                        else lambda: session.run(self._fetches))
      self._session = session
    return self._callable()


class _FoldedUpdate:
  """The conditional update run inside the training step's own
  `session.run`, after `train_op` (a control dependency), with the global
  and last-update steps read after it: on a step the host expects to be
  due, the hook adds these fetches instead of running the update in a
  second `session.run` afterwards."""

  def __init__(self, train_op, pruning_obj, global_step, last_update_step):
    self._train_op = train_op.op if isinstance(train_op, tf.Tensor) else (
        train_op)
    with tf.control_dependencies([self._train_op]):
      update = pruning_obj.conditional_mask_update_op()
    with tf.control_dependencies([update]):
      self.fetches = [tf.identity(global_step),
                      tf.identity(last_update_step)]

  def runs_with(self, fetches):
    """Whether the caller's fetches hold the train op: only then may the
    update (which depends on it) join the run without training a step the
    caller did not ask for."""
    try:
      flat = tf.nest.flatten(fetches)
    except (TypeError, ValueError):
      return False
    return any(element is self._train_op or
               getattr(element, 'op', None) is self._train_op
               for element in flat)


def _single_train_op():
  """The graph's TRAIN_OP collection's op when it holds exactly one."""
  train_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.TRAIN_OP)
  return train_ops[0] if len(train_ops) == 1 else None


def _global_step_tensor(hook_name):
  """Returns the graph's global step (created if missing) or raises."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  if global_step is None:
    raise RuntimeError('Global step should be created to use %s; call '
                       'tf.compat.v1.train.get_or_create_global_step() when '
                       'building the graph.' % hook_name)
  return global_step


class PruningHook(tf.compat.v1.train.SessionRunHook):
  """Updates the masks after every `MonitoredSession.run` that needs it.

  Give either a `Pruning` object (its `conditional_mask_update_op()` is built
  in `begin()`, before the session finalizes the graph) or a prebuilt op.

  With a `Pruning` object the hook decides on the host, from the global step
  it fetches with the training step and the schedule, whether an update can
  be due; only then does it run the conditional update op (which re-checks
  in the graph, so a wrong guess never updates twice or skips an update).
  Steps without an update cost no extra `session.run`. When the hook knows
  the train op (`train_op`, or the graph's TRAIN_OP collection holding one)
  and a run fetches it, an update the previous step makes due joins that
  run, after the train op; no second `session.run` either. With a prebuilt
  op the op is run after every step.

  When the session ends, a hook with a `Pruning` object runs the conditional
  update once more: in a ps/worker job another worker's step may be the last
  one, and may be due after this hook's last look. Given as a chief-only
  hook, which MonitoredTrainingSession runs before its checkpoint saver, the
  hook leaves that step's masks in the final checkpoint.

  Every `log_every_n_steps` steps the hook logs the sparsity the schedule
  asks for and the sparsity each weight's mask has (`sparsity_log`).
  """

  def __init__(self, pruning_obj=None, mask_update_op=None,
               log_every_n_steps=100, train_op=None):
    """Creates the hook.

    Args:
      pruning_obj: a `pruning.Pruning` (or anything with
        `conditional_mask_update_op()`).
      mask_update_op: a prebuilt op (or tensor) to run instead.
      log_every_n_steps: log asked vs achieved sparsity this often (global
        steps); 0 or None never.
      train_op: the train op whose runs due updates may join (with a
        `Pruning` object); default the TRAIN_OP collection's single op.

    Raises:
      ValueError: unless exactly one of the two is given.
    """
    if (pruning_obj is None) == (mask_update_op is None):
      raise ValueError('PruningHook needs exactly one of pruning_obj and '
                       'mask_update_op, got %s.' % (
                           'neither' if pruning_obj is None else 'both'))
    self._pruning_obj = pruning_obj
    self._mask_update_op = mask_update_op
    self._schedule = getattr(pruning_obj, 'schedule', None)
    self._log_every_n_steps = log_every_n_steps
    self._sparsity_logger = None
    self._global_step = None
    self._last_update_step = None
    self._known_last_update = None
    self._run_update = None
    self._train_op = train_op
    self._folded = None
    self._folded_this_run = False
    self._last_seen_step = None
    self._step_watch = _StepWatch('PruningHook', 'two mask updates')

  def begin(self):
    self._global_step = _global_step_tensor('PruningHook')
    if self._mask_update_op is None:
      self._mask_update_op = self._pruning_obj.conditional_mask_update_op()
    last = getattr(self._pruning_obj, 'last_update_step', None)
    if self._schedule is not None and last is not None:
      self._last_update_step = last.read_value()
      self._run_update = _SessionCallable(
          [self._mask_update_op, self._global_step, self._last_update_step])
      train_op = (self._train_op if self._train_op is not None
                  else _single_train_op())
      if train_op is not None:
        self._folded = _FoldedUpdate(train_op, self._pruning_obj,
                                     self._global_step, last)
      # The step fetched with the train op may be read before or after the
      # increment, so one repeat can be a read-order artefact.
      self._step_watch = _StepWatch('PruningHook', 'three session runs',
                                    repeats_allowed=1)
    else:
      self._run_update = _SessionCallable(
          [self._mask_update_op, self._global_step])
    self._sparsity_logger = sparsity_log.SparsityLogger(
        self._log_every_n_steps)

  def after_create_session(self, session, coord):
    del coord  # Unused.
    if self._last_update_step is not None:
      last, step = session.run([self._last_update_step, self._global_step])
      self._known_last_update = int(last)
      self._last_seen_step = int(step)

  def before_run(self, run_context):
    if self._last_update_step is None:
      return None
    # The step after this run is at most one past the one after the last
    # (the fetched step may be read before the last run's increment).
    self._folded_this_run = (
        self._folded is not None and self._last_seen_step is not None and
        self._may_be_due(self._last_seen_step + 1) and
        self._folded.runs_with(run_context.original_args.fetches))
    if self._folded_this_run:
      return tf.compat.v1.train.SessionRunArgs(self._folded.fetches)
    return tf.compat.v1.train.SessionRunArgs(self._global_step)

  def _may_be_due(self, fetched_step):
    """Whether the step after the run can be an update step.

    The step fetched with the train op is read before or after the train op
    increments it, so both candidates are checked.
    """
    return any(self._schedule.is_update_step(step, self._known_last_update)
               for step in (fetched_step, fetched_step + 1))

  def after_run(self, run_context, run_values):
    session = run_context.session
    if self._last_update_step is None:
      _, step = self._run_update(session)
      self._step_watch.observe(int(step))
    elif self._folded_this_run:
      # The update ran after the train op and decided at the step it left.
      step, last = run_values.results
      self._step_watch.observe(int(step))
      self._known_last_update = int(last)
    else:
      step = int(run_values.results)
      self._step_watch.observe(step)
      if self._may_be_due(step):
        _, step, last = self._run_update(session)
        self._known_last_update = int(last)
    if self._last_update_step is not None:
      self._last_seen_step = int(step)
    self._sparsity_logger.maybe_log(session, int(step))

  def end(self, session):
    # In one process the last after_run already updated any due step: the
    # op re-checks in the graph and changes nothing then.
    if self._last_update_step is not None:
      self._run_update(session)


class ModelPruningListener(tf.compat.v1.train.CheckpointSaverListener):
  """Updates one pruned object whenever its `ModelPruningHook` fires.

  `pruning_obj` is either a `pruning.Pruning`, whose conditional mask update
  op is built in `begin()` and run, or any object with its own
  `run_update_step(session, global_step)` (google-research's compression
  objects, duck types), which is called as is.
  """

  def __init__(self, pruning_obj):
    self._pruning_obj = pruning_obj
    self._run_update = None

  def begin(self):
    if _is_plain_pruning(self._pruning_obj):
      self._run_update = _SessionCallable(
          self._pruning_obj.conditional_mask_update_op())

  def before_save(self, session, global_step_value):
    if self._run_update is not None:
      self._run_update(session)
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

  google-research's hook (docs/upstream.md): the listeners run once right after the
  session is created, then whenever the global step reaches the last
  triggered step plus `every_steps`, and once more at the end if the last
  step was not covered. A listener's `after_save` returning True stops
  training. `listeners=None` means no listeners (upstream crashed on it).
  """
  _STEPS_PER_RUN = 1

  def __init__(self, every_steps=None, listeners=None, log_every_n_steps=100):
    """Args: every_steps: steps between listener calls; listeners: the
    ModelPruningListeners; log_every_n_steps: log asked vs achieved sparsity
    this often (global steps; 0 or None never)."""
    logging.info('Creating ModelPruningHook.')
    self._log_every_n_steps = log_every_n_steps
    self._sparsity_logger = None
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
    self._sparsity_logger = sparsity_log.SparsityLogger(
        self._log_every_n_steps)

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
    self._sparsity_logger.maybe_log(run_context.session,
                                    int(stale_global_step))
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
