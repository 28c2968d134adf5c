"""Pruning warns about schedules that can never finish (issue 7, point 4).

`Pruning(...)` logs an absl warning when, with the conditional update run once
per step, the masks can never reach target_sparsity: pruning ends before the
schedule does, the last update falls before the schedule's end, or the
frequency is longer than the window. Impossible windows (end before begin)
are ValueErrors. The property test checks the warning against a step-by-step
simulation of the update predicate (tests/reference.py).
"""

import hypothesis
from hypothesis import strategies as st
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref
from tests import log_capture


def _construct(**overrides):
  """Warnings logged while building Pruning with these hparams."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    hparams = pruning.get_pruning_hparams().override_from_dict(overrides)
    with log_capture.absl_warnings() as messages:
      pruning.Pruning(hparams, global_step=step)
  return messages


@pytest.mark.parametrize('overrides', [
    {},
    dict(end_pruning_step=100, pruning_frequency=10),
    dict(begin_pruning_step=20, end_pruning_step=200, pruning_frequency=5,
         sparsity_function_begin_step=20, sparsity_function_end_step=150),
], ids=['defaults', 'ends_with_schedule', 'late_begin'])
def test_healthy_schedule_logs_no_warning(overrides):
  assert _construct(**overrides) == []


@pytest.mark.parametrize('overrides,needle', [
    (dict(end_pruning_step=50), 'end_pruning_step=50 comes before'),
    (dict(begin_pruning_step=10, end_pruning_step=15, pruning_frequency=10),
     'pruning_frequency=10 is longer than the pruning window [10, 15]'),
    (dict(end_pruning_step=8, pruning_frequency=10),
     'pruning_frequency=10 is longer than the pruning window'),
    (dict(end_pruning_step=100, pruning_frequency=60),
     'last mask update (step 60'),
    (dict(pruning_frequency=200), 'longer than the sparsity schedule'),
], ids=['ends_before_schedule', 'frequency_exceeds_window', 'never_updates',
        'last_update_misses_schedule_end', 'frequency_exceeds_schedule'])
def test_unfinishable_schedule_logs_a_warning(overrides, needle):
  messages = _construct(**overrides)
  assert any(needle in m for m in messages), messages


@pytest.mark.parametrize('overrides,needle', [
    (dict(begin_pruning_step=50, end_pruning_step=10),
     'Pruning must begin before it can end'),
    (dict(sparsity_function_begin_step=100, sparsity_function_end_step=50),
     'Sparsity function requires begin_step < end_step'),
    (dict(pruning_frequency=0), 'pruning_frequency must be >= 1'),
], ids=['end_before_begin', 'schedule_end_before_begin', 'zero_frequency'])
def test_impossible_window_is_an_error(overrides, needle):
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    hparams = pruning.get_pruning_hparams().override_from_dict(overrides)
    with pytest.raises(ValueError, match=needle.replace('(', r'\(').replace(
        '[', r'\[')):
      pruning.Pruning(hparams, global_step=step)


def _never_finishes(begin, end, frequency, schedule_begin, schedule_end):
  """True when no update lands at or after the schedule's end (e >= 0)."""
  if end < 0:
    return False
  updates = ref.update_steps(range(end + frequency + 1), begin=begin,
                             end=end, frequency=frequency)
  return not updates or updates[-1] < schedule_end


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    begin=st.integers(0, 60), length=st.one_of(st.just(None),
                                                st.integers(1, 120)),
    frequency=st.integers(1, 80), schedule_begin=st.integers(0, 60),
    schedule_length=st.integers(1, 120))
def test_warning_whenever_the_schedule_cannot_finish(
    begin, length, frequency, schedule_begin, schedule_length):
  end = -1 if length is None else begin + length
  schedule_end = schedule_begin + schedule_length
  messages = _construct(
      begin_pruning_step=begin, end_pruning_step=end,
      pruning_frequency=frequency,
      sparsity_function_begin_step=schedule_begin,
      sparsity_function_end_step=schedule_end)
  if _never_finishes(begin, end, frequency, schedule_begin, schedule_end):
    assert messages, 'no warning for an unfinishable schedule'


# threshold_decay > 0: enough updates after the schedule's end? -------------


def _smoothed_gap(decay, updates):
  """Relative gap left after `updates` smoothings from a zero threshold."""
  threshold = 0.0
  for _ in range(updates):
    threshold = (1 - decay) * 1.0 + decay * threshold
  return 1.0 - threshold


def _decay_warnings(**overrides):
  return [m for m in _construct(**overrides) if 'threshold_decay=' in m]


def test_default_threshold_decay_is_zero_and_never_warns():
  assert pruning.get_pruning_hparams().threshold_decay == 0.0
  assert _decay_warnings(end_pruning_step=110) == []


def test_too_few_updates_for_the_decay_warn_with_the_fix():
  # Updates at 100, 110, ..., 140 fall at or after the schedule's end: 5 of
  # the 29 that d = 0.9 needs (0.9**28 = 0.052 > 0.05 >= 0.9**29).
  messages = _decay_warnings(threshold_decay=0.9, end_pruning_step=140)
  assert len(messages) == 1, messages
  message = messages[0]
  for needle in ('threshold_decay=0.9', 'sparsity_function_end_step=100',
                 'needs 29 mask updates', 'only 5 remain',
                 'pruning_frequency=10', 'end_pruning_step=140',
                 'Set threshold_decay=0.0',
                 'end_pruning_step to at least 380'):
    assert needle in message, (needle, message)


@pytest.mark.parametrize('overrides', [
    dict(threshold_decay=0.9, end_pruning_step=380),
    dict(threshold_decay=0.9, end_pruning_step=-1),
    dict(threshold_decay=0.5, end_pruning_step=140),
    dict(threshold_decay=0.9, end_pruning_step=140,
         threshold_method='exact'),
], ids=['enough_updates', 'no_end', 'small_decay', 'exact_ignores_decay'])
def test_enough_updates_for_the_decay_do_not_warn(overrides):
  assert _decay_warnings(**overrides) == []


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(decay=st.sampled_from([0.3, 0.5, 0.8, 0.9, 0.95]),
                  begin=st.integers(0, 50), tail=st.integers(0, 400),
                  frequency=st.integers(1, 30))
def test_decay_warning_matches_a_simulated_threshold(decay, begin, tail,
                                                     frequency):
  """Warned exactly when the simulated smoothed threshold ends > 5% short."""
  schedule_end = begin + 100
  end = schedule_end + tail
  updates = ref.update_steps(range(end + frequency + 1), begin=begin,
                             end=end, frequency=frequency)
  after_end = len([u for u in updates if u >= schedule_end])
  messages = _decay_warnings(
      threshold_decay=decay, begin_pruning_step=begin, end_pruning_step=end,
      pruning_frequency=frequency, sparsity_function_begin_step=begin,
      sparsity_function_end_step=schedule_end)
  assert bool(messages) == (_smoothed_gap(decay, after_end) > 0.05 + 1e-12)
