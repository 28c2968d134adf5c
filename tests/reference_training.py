"""Plain numpy oracles for the training-loop and hook tests.

Never imports model_pruning: these re-derive, from docs/upstream.md, 2.4.7 (variant
T) and 2.4.12, which steps update the masks and how many weights survive.
"""
import numpy as np


def scheduled_sparsity(step, initial, target, begin_step, end_step, exponent):
  """s(t) = s_f + (s_i - s_f) (1 - p)^e, p = clip((t - t0) / (t1 - t0), 0, 1)."""
  progress = np.clip(np.float32(step - begin_step) /
                     np.float32(end_step - begin_step), 0.0, 1.0)
  return np.float32(target + (initial - target) *
                    (1.0 - progress) ** exponent)


def sort_kept_count(size, sparsity):
  """Variant T with distinct weights and no threshold decay: k = round(N(1-s)).

  float32 arithmetic and round-half-to-even, as tf.round does.
  """
  return int(np.round(np.float32(size) * (np.float32(1.0) -
                                          np.float32(sparsity))))


def conditional_update_steps(steps_run, begin, end, frequency):
  """Steps at which `conditional_mask_update_op` updates when run at `steps_run`.

  pred = (t >= b) and (t <= e or e < 0) and (L + f <= t); L starts at 0 and
  becomes t at each update.
  """
  last, updates = 0, []
  for step in steps_run:
    if step >= begin and (step <= end or end < 0) and last + frequency <= step:
      updates.append(step)
      last = step
  return updates


def kept_counts_after_each_step(steps_run, update_steps, size, sparsity_at):
  """Non-zero mask entries after each run; `sparsity_at(t)` is the schedule."""
  kept, counts = size, []
  for step in steps_run:
    if step in update_steps:
      kept = sort_kept_count(size, sparsity_at(step))
    counts.append(kept)
  return counts
