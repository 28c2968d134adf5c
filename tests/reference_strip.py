"""Plain-numpy oracles for the strip tool's tests; never imports model_pruning.

The schedule is docs/upstream.md with docs/upstream.md per-weight interpolation:
p = clip((t - t0) / (t1 - t0), 0, 1), s = tau + (s_i - tau) * (1 - p) ** e.
"""
import numpy as np


def scheduled_sparsity(step, begin_step=0, end_step=100, initial=0.0,
                       target=0.5, exponent=3.0):
  """The schedule's sparsity at `step` (defaults are the contrib defaults)."""
  progress = np.clip((step - begin_step) / float(end_step - begin_step),
                     0.0, 1.0)
  return target + (initial - target) * (1.0 - progress) ** exponent


def zero_fraction(values):
  """Share of exact zeros in `values`."""
  values = np.asarray(values)
  return float(np.sum(values == 0)) / values.size
