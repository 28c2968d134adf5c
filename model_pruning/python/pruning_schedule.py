"""The pruning schedule: the sparsity formula and the mask-update window.

One `Schedule` holds both forms of each rule side by side, the TensorFlow one
that the graph runs and the plain-Python one that tools holding only a
checkpoint's hparams use (the strip report, the build-time warnings, tests),
so that the two cannot drift apart:

  sparsity:  s(t) = tau + (s_i - tau) * (1 - p)**e,
             p = clip((t - t0) / (t1 - t0), 0, 1)
  update:    due(t) = t >= b and (t <= e_p or e_p < 0) and last + f <= t

with t0/t1 the sparsity function's begin/end steps, b/e_p the pruning window
and f the pruning frequency. Example with the defaults (s_i=0, tau=0.5, e=3,
t0=0, t1=100): s(10) = 0.5 * (1 - 0.9**3) = 0.1355.
"""
import math

import tensorflow as tf

# A smoothed threshold is "there" when within this fraction of its target.
DECAY_TOLERANCE = 0.05


def _check(condition, message, *args):
  if not condition:
    raise ValueError(message % args)


class Schedule:
  """Sparsity along the global step, and when masks may change."""

  def __init__(self, initial_sparsity=0.0, target_sparsity=0.5,
               begin_step=0, end_step=100, exponent=3.0,
               begin_pruning_step=0, end_pruning_step=-1, frequency=10):
    """Validates the schedule; errors name the hparam and the fix.

    Args:
      initial_sparsity: s_i, sparsity at `begin_step`, in [0, 1).
      target_sparsity: tau, sparsity at `end_step` and after, in [0, 1).
      begin_step: t0 (`sparsity_function_begin_step`), >= 0.
      end_step: t1 (`sparsity_function_end_step`), > t0.
      exponent: e (`sparsity_function_exponent`), >= 0; 1 linear, 3 cubic.
      begin_pruning_step: first step at which masks may change, >= 0.
      end_pruning_step: last such step (inclusive), or -1 for no end.
      frequency: f (`pruning_frequency`), global steps between updates, >= 1.

    Raises:
      ValueError: a value out of range, naming the hparam.
    """
    _check(begin_pruning_step >= 0, 'Illegal value for begin_pruning_step: '
           '%d; it must be >= 0', begin_pruning_step)
    _check(end_pruning_step == -1 or begin_pruning_step < end_pruning_step,
           'Pruning must begin before it can end: begin_pruning_step=%d, '
           'end_pruning_step=%d. Use end_pruning_step=-1 to prune until '
           'training ends.', begin_pruning_step, end_pruning_step)
    _check(begin_step >= 0, 'sparsity_function_begin_step must be >= 0, got '
           '%d', begin_step)
    _check(begin_step < end_step, 'Sparsity function requires begin_step < '
           'end_step: sparsity_function_begin_step=%d, '
           'sparsity_function_end_step=%d', begin_step, end_step)
    for name, value in (('initial_sparsity', initial_sparsity),
                        ('target_sparsity', target_sparsity)):
      _check(0.0 <= value < 1.0, '%s must be in [0, 1), got %r', name, value)
    _check(exponent >= 0, 'sparsity_function_exponent must be >= 0, got %r',
           exponent)
    _check(frequency >= 1, 'pruning_frequency must be >= 1 (global steps '
           'between mask updates), got %d', frequency)
    self.initial_sparsity = float(initial_sparsity)
    self.target_sparsity = float(target_sparsity)
    self.begin_step = int(begin_step)
    self.end_step = int(end_step)
    self.exponent = float(exponent)
    self.begin_pruning_step = int(begin_pruning_step)
    self.end_pruning_step = int(end_pruning_step)
    self.frequency = int(frequency)

  @classmethod
  def from_hparams(cls, hparams):
    """The schedule of a pruning HParams (or any object with its fields)."""
    return cls(initial_sparsity=hparams.initial_sparsity,
               target_sparsity=hparams.target_sparsity,
               begin_step=hparams.sparsity_function_begin_step,
               end_step=hparams.sparsity_function_end_step,
               exponent=hparams.sparsity_function_exponent,
               begin_pruning_step=hparams.begin_pruning_step,
               end_pruning_step=hparams.end_pruning_step,
               frequency=hparams.pruning_frequency)

  # Sparsity: Python and TensorFlow --------------------------------------------

  def progress(self, step):
    """p = clip((t - t0) / (t1 - t0), 0, 1) for an int step."""
    progress = float(step - self.begin_step) / (self.end_step - self.begin_step)
    return min(max(progress, 0.0), 1.0)

  def sparsity(self, step, target=None):
    """s(t) for a weight whose target is `target` (default tau), a float."""
    target = self.target_sparsity if target is None else float(target)
    return target + (self.initial_sparsity - target) * (
        1.0 - self.progress(step)) ** self.exponent

  def progress_tensor(self, step):
    """`progress` for an integer step tensor, a float32 scalar."""
    progress = tf.cast(step - self.begin_step, tf.float32) / float(
        self.end_step - self.begin_step)
    return tf.clip_by_value(progress, 0.0, 1.0, name='schedule_progress')

  def sparsity_tensor(self, step, target=None, name=None):
    """`sparsity` for an integer step tensor, a float32 scalar."""
    target = self.target_sparsity if target is None else float(target)
    return tf.add(
        target, (self.initial_sparsity - target) *
        tf.pow(1.0 - self.progress_tensor(step), self.exponent), name=name)

  # The update window: Python and TensorFlow -----------------------------------

  def in_window(self, step):
    """t >= b and (t <= e_p or e_p < 0)."""
    return step >= self.begin_pruning_step and (
        step <= self.end_pruning_step or self.end_pruning_step < 0)

  def is_update_step(self, step, last_update_step):
    """Whether the conditional mask update fires at `step`."""
    return (self.in_window(step) and
            last_update_step + self.frequency <= step)

  def in_window_tensor(self, step):
    return tf.logical_and(
        tf.greater_equal(step, self.begin_pruning_step),
        tf.logical_or(tf.less_equal(step, self.end_pruning_step),
                      tf.less(self.end_pruning_step, 0)))

  def is_update_step_tensor(self, step, last_update_step):
    return tf.logical_and(
        self.in_window_tensor(step),
        tf.less_equal(last_update_step + self.frequency, step),
        name='is_mask_update_step')

  def masks_step(self, step, last_update_step):
    """The step whose sparsity masks saved at `step` should hold.

    That of the last update (`last_mask_update_step`) while no later one
    was missed: the next falls due at n = max(b, last + f), and a checkpoint
    may be saved at n before that step's update runs (a saver hook ahead of
    the pruning hook). Else `step`: an update fell due before `step` and did
    not run (n < step), or the window closed before `step` (e_p < step) and
    the masks stay at the last update's sparsity, short of the schedule. Also
    `step` when `last` is unknown (None) or after `step` (not this run's).
    """
    if last_update_step is None or not 0 <= last_update_step <= step:
      return step
    next_due = max(self.begin_pruning_step, last_update_step + self.frequency)
    if next_due < step or 0 <= self.end_pruning_step < step:
      return step
    return last_update_step

  def first_update_pending(self, step, last_update_step):
    """Whether masks saved at `step` hold no update yet (all ones).

    `last_mask_update_step` still holds its initial 0 and the first update,
    due at max(b, f), was not skipped before `step` (`masks_step` gives 0).
    A `mask_update_op` run at step 0 also leaves 0; its masks are sparser
    than the none this implies, so a check for too few zeros stays quiet.
    """
    return last_update_step == 0 and self.masks_step(step, 0) == 0

  # Where the updates fall (the op run once per step from step 0) -------------

  def first_update_step(self):
    """max(b, f): last_mask_update_step starts at 0."""
    return max(self.begin_pruning_step, self.frequency)

  def last_update_step(self):
    """Step of the last update, or None without an end (or any update)."""
    first, end = self.first_update_step(), self.end_pruning_step
    if end < 0 or first > end:
      return None
    return first + (end - first) // self.frequency * self.frequency

  def updates_from(self, step):
    """How many updates fall at or after `step`; None without an end."""
    last = self.last_update_step()
    if self.end_pruning_step < 0:
      return None
    if last is None or last < step:
      return 0
    first = self.first_update_step()
    if step <= first:
      return (last - first) // self.frequency + 1
    return (last - step) // self.frequency + 1

  # Build-time sanity ----------------------------------------------------------

  def warnings(self, threshold_decay=0.0, threshold_method='histogram'):
    """Messages for schedules that cannot do what they seem to ask."""
    messages = []
    end, target = self.end_pruning_step, self.target_sparsity
    if 0 <= end < self.end_step:
      messages.append(
          'end_pruning_step=%d comes before sparsity_function_end_step=%d: '
          'masks stop updating before the schedule reaches target_sparsity=%g.'
          % (end, self.end_step, target))
    last = self.last_update_step()
    if last is not None and end >= self.end_step > last:
      messages.append(
          'The last mask update (step %d: every pruning_frequency=%d steps up '
          'to end_pruning_step=%d) comes before sparsity_function_end_step=%d:'
          ' masks never reach target_sparsity=%g. Lower the frequency or move '
          'end_pruning_step.' % (last, self.frequency, end, self.end_step,
                                 target))
    if end >= 0 and end - self.begin_pruning_step < self.frequency:
      messages.append(
          'pruning_frequency=%d is longer than the pruning window [%d, %d]: '
          'the masks are updated at most once.' %
          (self.frequency, self.begin_pruning_step, end))
    if self.frequency > self.end_step - self.begin_step:
      messages.append(
          'pruning_frequency=%d is longer than the sparsity schedule (%d '
          'steps): the schedule is sampled at most once before its end.' %
          (self.frequency, self.end_step - self.begin_step))
    decay_message = self._decay_warning(threshold_decay, threshold_method)
    if decay_message:
      messages.append(decay_message)
    return messages

  def _decay_warning(self, decay, method):
    """The warning for a threshold_decay the schedule leaves no time for."""
    if not decay or method == 'exact' or self.end_pruning_step < 0:
      return None
    needed = decay_updates_needed(decay)
    left = self.updates_from(self.end_step)
    if left >= needed:
      return None
    return (
        'threshold_decay=%g smooths each new threshold with the last one, so '
        'after sparsity_function_end_step=%d the threshold needs %d mask '
        'updates to come within %d%% of the one for target_sparsity=%g, but '
        'only %d remain (every pruning_frequency=%d steps up to '
        'end_pruning_step=%d): the masks will end below the target. Set '
        'threshold_decay=0.0 (follow the schedule exactly), or move '
        'end_pruning_step to at least %d.' %
        (decay, self.end_step, needed, round(100 * DECAY_TOLERANCE),
         self.target_sparsity, left, self.frequency, self.end_pruning_step,
         self._step_of_update(needed)))

  def _step_of_update(self, count):
    """The step of the `count`-th update at or after t1 (1-based)."""
    first = self.first_update_step()
    start = first if self.end_step <= first else (
        first + -(-(self.end_step - first) // self.frequency) * self.frequency)
    return start + (count - 1) * self.frequency


def decay_updates_needed(decay, tolerance=DECAY_TOLERANCE):
  """Updates n after which d**n <= tolerance: ceil(ln tol / ln d).

  With theta_n = (1 - d) theta* + d theta_{n-1}, the gap to the target theta*
  shrinks by d per update; starting from a gap of at most theta* (the
  threshold only grows), n such updates leave at most d**n of it. Examples:
  d = 0.9 needs 29 updates, d = 0.5 needs 5.
  """
  if not decay:
    return 0
  return int(math.ceil(math.log(tolerance) / math.log(decay) - 1e-9))
