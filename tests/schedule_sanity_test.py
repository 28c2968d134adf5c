"""Pruning warns about schedules that can never finish (issue 7, point 4).

`Pruning(...)` logs an absl warning when, with the conditional update run once
per step, the masks can never reach target_sparsity: pruning ends before the
schedule does, the last update falls before the schedule's end, or the
frequency is longer than the window. Impossible windows (end before begin)
are ValueErrors. The property test checks the warning against a step-by-step
simulation of the update predicate (tests/reference_reliability.py).
"""

import hypothesis
from hypothesis import strategies as st
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference_reliability as ref
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
  updates = ref.update_steps(end + frequency, begin, end, frequency,
                             first_step=0)
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
