"""Tests for PruningHook, ModelPruningHook and ModelPruningListener."""
import logging

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python import pruning_hook
from tests import log_capture
from tests import reference as ref

_SIZE = 100
_SCHEDULE = dict(initial=0.0, target=0.9, begin_step=0, end_step=10,
                 exponent=1.0)


class _MockPrunedObject:
  """Records the global steps at which `run_update_step` is called."""

  def __init__(self):
    self.logged_steps = []

  def run_update_step(self, session, global_step):
    del session  # Unused.
    self.logged_steps.append(int(global_step))


def _pruned_weight(frequency):
  """Masks a 1..100 weight; Pruning with the sort method and _SCHEDULE."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  weight = tf.compat.v1.get_variable(
      'weight', initializer=np.linspace(1.0, 100.0, _SIZE, dtype=np.float32))
  pruning.apply_mask(weight)
  spec = dict(name='hook_pruning', threshold_method='sort',
              threshold_decay=0.0, pruning_frequency=frequency,
              begin_pruning_step=0, end_pruning_step=-1,
              initial_sparsity=_SCHEDULE['initial'],
              target_sparsity=_SCHEDULE['target'],
              sparsity_function_begin_step=_SCHEDULE['begin_step'],
              sparsity_function_end_step=_SCHEDULE['end_step'],
              sparsity_function_exponent=_SCHEDULE['exponent'])
  increment = tf.compat.v1.assign_add(global_step, 1)
  return pruning.Pruning(spec, global_step=global_step), increment


def _expected_counts(steps_run, update_steps):
  return ref.kept_counts_after_each_step(
      steps_run, update_steps, _SIZE,
      lambda step: ref.scheduled_sparsity(step, dtype=np.float32,
                                          **_SCHEDULE))


def _kept_counts(hooks, train_op, num_runs):
  """Runs `train_op` in a MonitoredSession; mask non-zeros after each run."""
  mask = pruning.get_masks()[0]
  counts = []
  with tf.compat.v1.train.MonitoredSession(hooks=hooks) as sess:
    for _ in range(num_runs):
      sess.run(train_op)
      counts.append(int(sess.run_step_fn(
          lambda step_context: np.count_nonzero(
              step_context.session.run(mask)))))
  return counts


def _warnings(caplog):
  return [record for record in caplog.records
          if record.levelno == logging.WARNING and
          'global step stayed' in record.getMessage()]


@pytest.mark.parametrize('prebuilt', [False, True], ids=['pruning_obj', 'op'])
def test_pruning_hook_updates_masks_at_due_steps(prebuilt):
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=3)
    hook = (pruning_hook.PruningHook(
        mask_update_op=p.conditional_mask_update_op()) if prebuilt else
            pruning_hook.PruningHook(pruning_obj=p))
    counts = _kept_counts([hook], increment, num_runs=12)
  steps_run = list(range(1, 13))  # The hook runs after each increment.
  updates = ref.update_steps(steps_run, begin=0, end=-1,
                             frequency=3)
  assert updates == [3, 6, 9, 12]
  assert counts == _expected_counts(steps_run, updates)


@pytest.mark.parametrize('frequency', [1, 3])
@pytest.mark.parametrize('source', ['argument', 'collection'])
def test_pruning_hook_folds_due_updates_into_the_train_run(
    frequency, source, monkeypatch):
  # Knowing the train op, the hook runs each due update inside the run that
  # trains, after the train op: the same masks at the same steps, and never
  # a second session.run (which would not update: it is stubbed out).
  second_runs = []
  monkeypatch.setattr(
      pruning_hook._SessionCallable, '__call__',  # pylint: disable=protected-access
      lambda unused_self, session: second_runs.append(session))
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=frequency)
    if source == 'collection':
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.TRAIN_OP,
                                     increment)
    hook = pruning_hook.PruningHook(
        pruning_obj=p, train_op=increment if source == 'argument' else None)
    counts = _kept_counts([hook], increment, num_runs=12)
  steps_run = list(range(1, 13))
  updates = ref.update_steps(steps_run, begin=0, end=-1, frequency=frequency)
  assert counts == _expected_counts(steps_run, updates)
  # Only end()'s one look after training (stubbed here too).
  assert len(second_runs) == 1


class _OtherWorker(tf.compat.v1.train.SessionRunHook):
  """Plays the second worker of a ps/worker job: once the chief's run has
  left the global step at `at`, it takes the next step itself, the job's
  last, and the job stops."""

  def __init__(self, increment, at):
    self._increment = increment
    self._at = at

  def after_run(self, run_context, run_values):
    del run_values  # Unused.
    step = tf.compat.v1.train.get_global_step()
    if run_context.session.run(step) == self._at:
      run_context.session.run(self._increment)
      run_context.request_stop()


@pytest.mark.parametrize('folded', [True, False], ids=['folded', 'after_run'])
def test_final_checkpoint_has_the_masks_of_another_workers_last_step(
    tmp_path, folded):
  # Updates fall at 3, 6, 9: the chief's last run leaves step 8 (not due),
  # the other worker's step 9 ends the job after the chief's last look.
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=3)
    hook = pruning_hook.PruningHook(
        pruning_obj=p, log_every_n_steps=0,
        train_op=increment if folded else None)
    with tf.compat.v1.train.MonitoredTrainingSession(
        checkpoint_dir=str(tmp_path), chief_only_hooks=[hook],
        hooks=[_OtherWorker(increment, at=8)], save_summaries_steps=None,
        save_checkpoint_secs=None, save_checkpoint_steps=1000) as sess:
      while not sess.should_stop():
        sess.run(increment)
    mask_name = pruning.get_masks()[0].op.name
    last_name = p.last_update_step.op.name
  reader = tf.train.load_checkpoint(str(tmp_path))
  assert reader.get_tensor('global_step') == 9
  assert reader.get_tensor(last_name) == 9
  assert np.count_nonzero(reader.get_tensor(mask_name)) == _expected_counts(
      [9], [9])[-1]


def test_folded_update_never_trains_a_run_without_the_train_op():
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    hook = pruning_hook.PruningHook(pruning_obj=p, train_op=increment)
    step = tf.compat.v1.train.get_global_step()
    with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as sess:
      sess.run(increment)
      for _ in range(3):  # Due every step, but nothing here trains.
        assert sess.run(step) == 1
      sess.run(increment)
      assert sess.run(step) == 2


def test_pruning_hook_inside_monitored_training_session(tmp_path):
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    hooks = [pruning_hook.PruningHook(pruning_obj=p),
             tf.compat.v1.train.StopAtStepHook(last_step=_SCHEDULE['end_step'])]
    with tf.compat.v1.train.MonitoredTrainingSession(
        checkpoint_dir=str(tmp_path), hooks=hooks,
        save_summaries_steps=None, save_checkpoint_secs=None,
        save_checkpoint_steps=1000) as sess:
      while not sess.should_stop():
        sess.run(increment)
    mask_name = pruning.get_masks()[0].op.name
  mask = tf.train.load_checkpoint(str(tmp_path)).get_tensor(mask_name)
  assert np.count_nonzero(mask) == ref.keep_count(_SIZE,
                                                       _SCHEDULE['target'])


@pytest.mark.parametrize('kwargs', [{}, {'pruning_obj': object(),
                                         'mask_update_op': object()}],
                         ids=['neither', 'both'])
def test_pruning_hook_needs_exactly_one_source(kwargs):
  with pytest.raises(ValueError, match='exactly one of pruning_obj'):
    pruning_hook.PruningHook(**kwargs)


@pytest.mark.parametrize('folds', [False, True], ids=['after', 'folded'])
@pytest.mark.parametrize('advances', [True, False], ids=['advancing', 'stuck'])
def test_pruning_hook_warns_once_when_step_stands_still(caplog, advances,
                                                         folds):
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    train_op = increment if advances else tf.no_op()
    hook = pruning_hook.PruningHook(pruning_obj=p,
                                    train_op=train_op if folds else None)
    with caplog.at_level(logging.WARNING):
      _kept_counts([hook], train_op, num_runs=5)
  assert len(_warnings(caplog)) == (0 if advances else 1)


def _mock_hook_graph():
  """Global step, a dummy train op and an increment op (docs/upstream.md)."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  train_op = tf.constant(1.0)
  increment = tf.compat.v1.assign_add(global_step, 1)
  return train_op, increment


def test_prune_after_session_creation():
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    pruned = _MockPrunedObject()
    hook = pruning_hook.ModelPruningHook(
        every_steps=10,
        listeners=[pruning_hook.ModelPruningListener(pruned)])
    with tf.compat.v1.train.MonitoredSession(hooks=[hook]):
      assert pruned.logged_steps == [0]


def test_prune_every_n_steps():
  with tf.Graph().as_default():
    train_op, increment = _mock_hook_graph()
    pruned = _MockPrunedObject()
    hook = pruning_hook.ModelPruningHook(
        every_steps=10,
        listeners=[pruning_hook.ModelPruningListener(pruned)])
    with tf.compat.v1.train.MonitoredSession(
        tf.compat.v1.train.ChiefSessionCreator(), hooks=[hook]) as sess:
      sess.run(train_op)
      sess.run(increment)
      assert pruned.logged_steps == [0]
      for _ in range(9):
        sess.run(train_op)
        sess.run(increment)
      assert pruned.logged_steps == [0, 10]
      for _ in range(9):
        sess.run(train_op)
        sess.run(increment)
      assert pruned.logged_steps == [0, 10]
    # end(): step 19 was not covered by a trigger, so the listeners run once more.
    assert pruned.logged_steps == [0, 10, 19]


def test_model_pruning_hook_default_listeners():
  with tf.Graph().as_default():
    _, increment = _mock_hook_graph()
    hook = pruning_hook.ModelPruningHook(every_steps=2)
    with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as sess:
      steps = [int(sess.run(increment)) for _ in range(5)]
  # listeners=None means none (upstream crashed in begin()); training runs.
  assert steps == [1, 2, 3, 4, 5]


class _StopAtListener(tf.compat.v1.train.CheckpointSaverListener):
  """Asks to stop after the update at `stop_step`."""

  def __init__(self, stop_step):
    self._stop_step = stop_step

  def after_save(self, session, global_step_value):
    return global_step_value >= self._stop_step


def test_model_pruning_hook_stops_when_a_listener_asks():
  with tf.Graph().as_default():
    _, increment = _mock_hook_graph()
    hook = pruning_hook.ModelPruningHook(
        every_steps=2, listeners=[_StopAtListener(stop_step=4)])
    with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as sess:
      runs = 0
      while not sess.should_stop():
        sess.run(increment)
        runs += 1
  assert runs == 4


def test_model_pruning_listener_runs_conditional_update_of_plain_pruning():
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    hook = pruning_hook.ModelPruningHook(
        every_steps=4, listeners=[pruning_hook.ModelPruningListener(p)])
    counts = _kept_counts([hook], increment, num_runs=10)
  # Listener calls at 0 (after session creation; not yet due), 4 and 8.
  steps_run = list(range(1, 11))
  assert counts == _expected_counts(steps_run, update_steps=[4, 8])


class _OpBuildingPrunedObject(_MockPrunedObject):
  """A compression-style object that adds ops while updating."""

  def run_update_step(self, session, global_step):
    session.run(tf.constant(0.0))
    super().run_update_step(session, global_step)


def test_model_pruning_listener_unfinalizes_only_when_needed(caplog):
  with tf.Graph().as_default() as graph:
    tf.compat.v1.train.get_or_create_global_step()
    pruned = _OpBuildingPrunedObject()
    hook = pruning_hook.ModelPruningHook(
        every_steps=10,
        listeners=[pruning_hook.ModelPruningListener(pruned)])
    with caplog.at_level(logging.WARNING):
      with tf.compat.v1.train.MonitoredSession(hooks=[hook]):
        assert graph.finalized
  assert pruned.logged_steps == [0]
  assert any('adds ops to the graph' in record.getMessage()
             for record in caplog.records)


@pytest.mark.parametrize('advances', [True, False], ids=['advancing', 'stuck'])
def test_model_pruning_hook_warns_once_when_step_stands_still(caplog,
                                                              advances):
  with tf.Graph().as_default():
    train_op, increment = _mock_hook_graph()
    pruned = _MockPrunedObject()
    hook = pruning_hook.ModelPruningHook(
        every_steps=2, listeners=[pruning_hook.ModelPruningListener(pruned)])
    with caplog.at_level(logging.WARNING):
      with tf.compat.v1.train.MonitoredSession(hooks=[hook]) as sess:
        for _ in range(6):
          sess.run(increment if advances else train_op)
  assert len(_warnings(caplog)) == (0 if advances else 1)
  assert pruned.logged_steps == ([0, 2, 4, 6] if advances else [0])


# Achieved vs asked in the log; updates decided on the host ------------------


class _CountingSession:
  """A session proxy that counts `run` calls, and calls of the callables it
  makes (`make_callable` only when `callables`)."""

  def __init__(self, session, callables=True):
    self._session = session
    self.runs = 0
    self.callables_made = 0
    if callables:
      self.make_callable = self._make_callable

  def run(self, fetches, *args, **kwargs):
    self.runs += 1
    return self._session.run(fetches, *args, **kwargs)

  def _make_callable(self, fetches):
    self.callables_made += 1
    run_fetches = self._session.make_callable(fetches)

    def counted():
      self.runs += 1
      return run_fetches()
    return counted


class _RunContext:

  def __init__(self, session):
    self.session = session


def _drive_hook(hook, increment, num_steps, callables=True):
  """Calls the hook around `num_steps` train steps; extra runs per step."""
  hook.begin()
  extra_runs, masks = [], []
  mask = pruning.get_masks()[0]
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    hook.after_create_session(session, None)
    counting = _CountingSession(session, callables)
    for _ in range(num_steps):
      fetched = session.run(increment) - 1  # The step read before the run.
      before = counting.runs
      hook.after_run(_RunContext(counting),
                     tf.compat.v1.train.SessionRunValues(
                         results=fetched, options=None, run_metadata=None))
      extra_runs.append(counting.runs - before)
      masks.append(int(np.count_nonzero(session.run(mask))))
  if callables:
    # One callable for the session, however many updates ran through it.
    assert counting.callables_made == 1
  return extra_runs, masks


@pytest.mark.parametrize('callables', [True, False],
                         ids=['make_callable', 'run_only_session'])
def test_pruning_hook_runs_nothing_extra_on_steps_without_an_update(
    callables):
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=5)
    hook = pruning_hook.PruningHook(p, log_every_n_steps=0)
    extra_runs, masks = _drive_hook(hook, increment, 30, callables)
  steps_run = list(range(1, 31))
  updates = ref.update_steps(steps_run, begin=0, end=-1,
                             frequency=5)
  assert masks == _expected_counts(steps_run, updates)
  # An extra run only where the step after the run (or the one before, the
  # read-order candidate) can be an update step: at most 2 per update.
  ran = [step for step, runs in zip(steps_run, extra_runs) if runs]
  assert set(updates) <= set(ran)
  assert len(ran) <= 2 * len(updates) and len(ran) < len(steps_run) / 2


def test_pruning_hook_updates_through_each_new_session():
  # A recovered MonitoredSession hands the hook a new session: the update
  # must run in that one, not through the callable made for the old one.
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    hook = pruning_hook.PruningHook(p, log_every_n_steps=0)
    hook.begin()
    mask = pruning.get_masks()[0]
    kept = []
    for _ in range(2):
      with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        hook.after_create_session(session, None)
        counting = _CountingSession(session)
        for _ in range(3):
          fetched = session.run(increment) - 1
          hook.after_run(_RunContext(counting),
                         tf.compat.v1.train.SessionRunValues(
                             results=fetched, options=None,
                             run_metadata=None))
        assert counting.callables_made == 1
        kept.append(int(np.count_nonzero(session.run(mask))))
  expected = _expected_counts([1, 2, 3], [1, 2, 3])[-1]
  assert kept == [expected, expected]


def test_pruning_hook_logs_asked_and_achieved_every_n_steps():
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    hook = pruning_hook.PruningHook(p, log_every_n_steps=4)
    with log_capture.absl_warnings(logging.INFO) as messages:
      _, masks = _drive_hook(hook, increment, 12)
  lines = [m for m in messages if 'sparsity weight asked' in m]
  assert [line.split(':')[0] for line in lines] == [
      'step 1', 'step 5', 'step 9']
  asked = ref.scheduled_sparsity(9, dtype=np.float32, **_SCHEDULE)
  achieved = 1.0 - masks[8] / _SIZE
  assert 'weight asked %.3f achieved %.3f' % (asked, achieved) in lines[-1]


def test_train_logs_asked_and_achieved_sparsity(tmp_path):
  from model_pruning.python import learning  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    p, increment = _pruned_weight(frequency=1)
    update = p.conditional_mask_update_op()
    loss = tf.identity(tf.cast(increment, tf.float32))
    with log_capture.absl_warnings(logging.INFO) as messages:
      learning.train(loss, str(tmp_path), update, number_of_steps=9,
                     log_every_n_steps=100, sparsity_log_every_n_steps=3,
                     save_summaries_secs=0, save_interval_secs=0)
  lines = [m for m in messages if 'sparsity weight asked' in m]
  assert [line.split(':')[0] for line in lines] == [
      'step 1', 'step 4', 'step 7']
  asked = ref.scheduled_sparsity(7, dtype=np.float32, **_SCHEDULE)
  assert lines[-1].endswith('asked %.3f achieved %.3f' % (asked, asked))
