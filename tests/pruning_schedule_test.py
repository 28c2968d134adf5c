"""pruning_schedule.Schedule: the TF and Python forms agree with the oracle."""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning_schedule
from tests import reference as ref

_SCHEDULES = {
    'cubic_defaults': dict(),
    'linear_offset': dict(initial_sparsity=0.2, target_sparsity=0.8,
                          begin_step=30, end_step=130, exponent=1.0),
    'window': dict(begin_pruning_step=5, end_pruning_step=77, frequency=7),
}


@pytest.mark.parametrize('name', sorted(_SCHEDULES))
def test_python_and_tensorflow_forms_agree_with_the_oracle(name):
  schedule = pruning_schedule.Schedule(**_SCHEDULES[name])
  steps = list(range(0, 200, 3))
  with tf.Graph().as_default():
    step = tf.compat.v1.placeholder(tf.int32, [])
    last = tf.compat.v1.placeholder(tf.int32, [])
    sparsity = schedule.sparsity_tensor(step)
    mapped = schedule.sparsity_tensor(step, target=0.95)
    due = schedule.is_update_step_tensor(step, last)
    with tf.compat.v1.Session() as sess:
      for t in steps:
        for previous in (0, t - schedule.frequency, t - 1):
          feed = {step: t, last: previous}
          got, got_mapped, got_due = sess.run([sparsity, mapped, due], feed)
          expected = ref.scheduled_sparsity(
              t, begin_step=schedule.begin_step, end_step=schedule.end_step,
              initial=schedule.initial_sparsity,
              target=schedule.target_sparsity, exponent=schedule.exponent,
              dtype=np.float32)
          assert schedule.sparsity(t) == pytest.approx(expected, abs=1e-6)
          assert got == pytest.approx(expected, abs=1e-6)
          assert got_mapped == pytest.approx(
              schedule.sparsity(t, 0.95), abs=1e-6)
          oracle_due = ref.is_update_step(
              t, previous, begin=schedule.begin_pruning_step,
              end=schedule.end_pruning_step, frequency=schedule.frequency)
          assert schedule.is_update_step(t, previous) == oracle_due
          assert bool(got_due) == oracle_due


@pytest.mark.parametrize('begin,end,frequency,since', [
    (0, 140, 10, 100), (0, 141, 10, 95), (3, 50, 7, 0), (0, 100, 10, 101),
    (20, 25, 10, 0)])
def test_update_counts_match_a_step_by_step_run(begin, end, frequency, since):
  schedule = pruning_schedule.Schedule(
      begin_pruning_step=begin, end_pruning_step=end, frequency=frequency)
  updates = ref.update_steps(range(end + frequency + 1), begin=begin,
                             end=end, frequency=frequency)
  assert schedule.updates_from(since) == len([u for u in updates
                                              if u >= since])
  assert schedule.last_update_step() == (updates[-1] if updates else None)


def test_no_end_has_no_update_count():
  assert pruning_schedule.Schedule().updates_from(100) is None


@pytest.mark.parametrize('decay,needed', [(0.9, 29), (0.5, 5), (0.0, 0),
                                          (0.95, 59)])
def test_decay_updates_needed(decay, needed):
  assert pruning_schedule.decay_updates_needed(decay) == needed
  if needed:
    assert decay ** needed <= 0.05 < decay ** (needed - 1)


@pytest.mark.parametrize('kwargs,message', [
    (dict(frequency=0), 'pruning_frequency must be >= 1'),
    (dict(begin_step=10, end_step=10), 'begin_step < end_step'),
    (dict(target_sparsity=1.0), r'target_sparsity must be in \[0, 1\)'),
    (dict(exponent=-1.0), 'sparsity_function_exponent must be >= 0'),
])
def test_bad_schedules_name_the_hparam(kwargs, message):
  with pytest.raises(ValueError, match=message):
    pruning_schedule.Schedule(**kwargs)


def test_from_hparams_reads_every_schedule_hparam():
  from model_pruning.python import pruning_spec  # pylint: disable=g-import-not-at-top
  hparams = pruning_spec.default_hparams().parse(
      'initial_sparsity=0.1,target_sparsity=0.6,sparsity_function_begin_step=2,'
      'sparsity_function_end_step=12,sparsity_function_exponent=2,'
      'begin_pruning_step=1,end_pruning_step=20,pruning_frequency=3')
  schedule = pruning_schedule.Schedule.from_hparams(hparams)
  assert (schedule.initial_sparsity, schedule.target_sparsity,
          schedule.begin_step, schedule.end_step, schedule.exponent,
          schedule.begin_pruning_step, schedule.end_pruning_step,
          schedule.frequency) == (0.1, 0.6, 2, 12, 2.0, 1, 20, 3)
  assert np.isclose(schedule.sparsity(7), 0.6 - 0.5 * 0.5 ** 2)


def _expected_masks_step(step, last, first_missed, end):
  """What a checkpoint at `step` should be judged at, from a simulated run:
  the last update's step unless a due update was skipped before `step` or
  the window closed before it."""
  if (first_missed is not None and first_missed < step) or 0 <= end < step:
    return step
  return last


@pytest.mark.parametrize('pause_at', [None, 0, 23, 61], ids=str)
@pytest.mark.parametrize('name', sorted(_SCHEDULES))
def test_masks_step_follows_a_step_by_step_run(name, pause_at):
  """The conditional update runs every step until `pause_at` (a hook that
  stopped), then no more; checkpoints saved before and after each step's
  run answer to the last update until a due update is skipped before them,
  or the pruning window closes."""
  schedule = pruning_schedule.Schedule(**_SCHEDULES[name])
  end = schedule.end_pruning_step
  last, first_missed = 0, None
  for step in range(200):
    assert schedule.masks_step(step, last) == _expected_masks_step(
        step, last, first_missed, end), ('before', step)
    if ref.is_update_step(step, last, begin=schedule.begin_pruning_step,
                          end=end, frequency=schedule.frequency):
      if pause_at is None or step < pause_at:
        last = step
      elif first_missed is None:
        first_missed = step
    assert schedule.masks_step(step, last) == _expected_masks_step(
        step, last, first_missed, end), ('after', step)


@pytest.mark.parametrize('step,last,expected', [
    (25, 20, 20),    # between updates
    (30, 20, 20),    # the update due at 30 not run yet (saver hook first)
    (31, 20, 31),    # the one due at 30 was skipped
    (5, 0, 0),       # none due yet: the first falls at f = 10
    (15, 0, 15),     # the first was skipped
    (25, None, 25),  # no last_mask_update_step in the checkpoint
    (25, 40, 25),    # a later update than the step: not this run's
    (25, -1, 25),
])
def test_masks_step_by_hand(step, last, expected):
  assert pruning_schedule.Schedule().masks_step(step, last) == expected


@pytest.mark.parametrize('step,last,expected', [
    (99, 90, 90),     # next due at 100, the window's last step
    (100, 90, 90),    # ... not run yet
    (100, 100, 100),
    (105, 100, 105),  # the window closed: judged by the schedule
    (45, 0, 0),       # the first update falls at begin_pruning_step = 50
    (50, 0, 0),
    (51, 0, 51),
])
def test_masks_step_in_a_pruning_window_by_hand(step, last, expected):
  schedule = pruning_schedule.Schedule(begin_pruning_step=50,
                                       end_pruning_step=100)
  assert schedule.masks_step(step, last) == expected


@pytest.mark.parametrize('step,last,pending', [
    (0, 0, True),       # saved right after initialization
    (5, 0, True),       # the first update falls at f = 10
    (10, 0, True),      # ... not run yet (a saver hook first)
    (11, 0, False),     # the first was skipped: judged at the step
    (15, 10, False),    # one update ran
    (5, None, False),   # no last_mask_update_step: judged at the step
    (5, 3, False),
])
def test_first_update_pending_by_hand(step, last, pending):
  assert pruning_schedule.Schedule().first_update_pending(step, last) == (
      pending)


def test_first_update_pending_waits_for_the_pruning_window():
  schedule = pruning_schedule.Schedule(begin_pruning_step=50,
                                       end_pruning_step=100)
  assert schedule.first_update_pending(50, 0)
  assert not schedule.first_update_pending(51, 0)
  # A window that closed with no update: the masks missed the schedule.
  late = pruning_schedule.Schedule(begin_pruning_step=50, end_pruning_step=60,
                                   frequency=100)
  assert late.first_update_pending(60, 0)
  assert not late.first_update_pending(61, 0)


@pytest.mark.parametrize('name', sorted(_SCHEDULES))
def test_first_update_pending_until_a_step_by_step_run_updates(name):
  """With the conditional update run at every step, a checkpoint holds no
  update exactly until the first one runs."""
  schedule = pruning_schedule.Schedule(**_SCHEDULES[name])
  last, updated = 0, False
  for step in range(200):
    assert schedule.first_update_pending(step, last) == (not updated), step
    if ref.is_update_step(step, last, begin=schedule.begin_pruning_step,
                          end=schedule.end_pruning_step,
                          frequency=schedule.frequency):
      last, updated = step, True
    assert schedule.first_update_pending(step, last) == (not updated), step
