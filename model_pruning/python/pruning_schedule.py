"""The sparsity schedule as plain Python math (no TensorFlow).

The graph builds the same formula with TF ops (`pruning.Pruning`); this module
lets tools that only hold a checkpoint's hparams (the strip report, tests,
resume checks) say what the schedule asked for at a given step.
"""
from model_pruning.python import pruning_spec


def schedule_progress(step, begin_step, end_step):
  """Fraction of the schedule done at `step`: clip((t - t0) / (t1 - t0), 0, 1)."""
  if end_step <= begin_step:
    raise ValueError(
        'sparsity_function_end_step (%d) must be greater than '
        'sparsity_function_begin_step (%d)' % (end_step, begin_step))
  progress = float(step - begin_step) / float(end_step - begin_step)
  return min(max(progress, 0.0), 1.0)


def polynomial_sparsity(progress, initial_sparsity, target_sparsity, exponent):
  """s = s_f + (s_i - s_f) * (1 - p) ** e  (SPEC 2.4.3).

  Example with the defaults (s_i=0, s_f=0.5, e=3): p=0.1 gives
  0.5 * (1 - 0.9**3) = 0.1355.
  """
  return target_sparsity + (initial_sparsity - target_sparsity) * (
      1.0 - progress) ** exponent


def scheduled_sparsity(step, hparams, weight_name=None):
  """Target sparsity the hparams give at `step`, for one weight if named.

  A weight matched by `weight_sparsity_map` with target tau follows
  s_w(t) = tau + (s_i - tau) * (1 - p)**e (our fix of upstream's scaling,
  identical to it when initial_sparsity is 0).

  Args:
    step: the global step (int).
    hparams: an HParams with the pruning hparams (or anything with the same
      attributes).
    weight_name: optional op name of the weight (e.g. 'conv1/weights').

  Returns:
    The scheduled sparsity as a Python float.
  """
  progress = schedule_progress(step, hparams.sparsity_function_begin_step,
                               hparams.sparsity_function_end_step)
  target = hparams.target_sparsity
  if weight_name is not None:
    entries = pruning_spec.parse_sparsity_map(hparams.weight_sparsity_map,
                                              'weight_sparsity_map')
    override = pruning_spec.lookup_map(entries, weight_name,
                                       'weight_sparsity_map')
    if override is not None:
      target = override
  return polynomial_sparsity(progress, hparams.initial_sparsity, target,
                             hparams.sparsity_function_exponent)


def is_update_step(step, last_update_step, hparams):
  """Whether the conditional mask update fires at `step` (SPEC 2.4.12).

  pred = (t >= b) and (t <= e or e < 0) and (last + f <= t)
  """
  begin = hparams.begin_pruning_step
  end = hparams.end_pruning_step
  in_window = step >= begin and (step <= end or end < 0)
  return in_window and last_update_step + hparams.pruning_frequency <= step
