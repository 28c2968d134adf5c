"""Numpy oracles for N:M sparsity driven by the pruning schedule.

Never imports model_pruning. The per-group mask itself comes from
`tests.reference_nm.m_by_n_mask` (a stable sort per group); this module adds
the schedule side: how many weights a group keeps at a given step, what the
per-group survivor counts must be, and the unstructured fallback.

Schedule (docs/upstream.md, per-weight interpolation of docs/upstream.md):
  p    = clip((t - t0) / (t1 - t0), 0, 1)
  s(t) = tau + (s_i - tau) * (1 - p) ** e
N:M along the schedule (pruning's documented rule):
  r    = clip(s(t) / tau, 0, 1)         (r = 1 when tau = 0)
  keep = N - floor((N - M) * r)          survivors per full group of N
"""
import math

import numpy as np

from tests import reference_nm

# Slack the library adds before flooring so float32 rounding of an exact
# boundary (e.g. r = 1/3 with N - M = 3) does not lose a step.
_FLOOR_SLACK = 1e-6


def scheduled_sparsity(step, begin, end, initial, target, exponent):
  """s(t) = tau + (s_i - tau) * (1 - p) ** e with p clipped to [0, 1]."""
  progress = min(max(float(step - begin) / float(end - begin), 0.0), 1.0)
  return target + (initial - target) * (1.0 - progress) ** exponent


def zeros_times(sparsity, target, m, n):
  """(N - M) * r, the unfloored number of zeros per group."""
  done = 1.0 if target == 0 else min(max(sparsity / target, 0.0), 1.0)
  return (n - m) * done


def keep_per_group(sparsity, target, m, n):
  """Survivors per full group: N - floor((N - M) * r)."""
  return n - int(math.floor(zeros_times(sparsity, target, m, n) +
                            _FLOOR_SLACK))


def near_step_boundary(sparsity, target, m, n, margin=1e-4):
  """True when float32 rounding could move the floor (a badly chosen step)."""
  value = zeros_times(sparsity, target, m, n)
  nearest = round(value)
  return value != nearest and abs(value - nearest) < margin


def expected_group_counts(shape, n, keep, axis=-2):
  """min(keep, group length) per N-group, in `nonzeros_per_group`'s order."""
  depth = shape[axis]
  lines = int(np.prod(shape)) // depth
  per_line = [min(keep, len(range(start, min(start + n, depth))))
              for start in range(0, depth, n)]
  return np.array(per_line * lines)


def scheduled_mask(weights, keep, n):
  """The mask keeping `keep` of every n by |w| (all ones when keep >= n)."""
  weights = np.asarray(weights)
  if keep >= n:
    return np.ones_like(weights)
  return reference_nm.m_by_n_mask(weights, keep, n)


def top_k_mask(weights, sparsity):
  """Unstructured oracle: the round(size * (1 - s)) largest |w| survive.

  Assumes distinct magnitudes (see `distinct_weights`), so no ties.
  """
  weights = np.asarray(weights)
  keep = int(np.round(weights.size * (1.0 - sparsity)))
  order = np.argsort(-np.abs(weights).ravel(), kind='stable')
  mask = np.zeros(weights.size, dtype=weights.dtype)
  mask[order[:keep]] = 1.0
  return mask.reshape(weights.shape)


def distinct_weights(shape, seed):
  """float32 weights with distinct non-zero magnitudes and random signs."""
  rng = np.random.RandomState(seed)
  size = int(np.prod(shape))
  magnitudes = (rng.permutation(size) + 1.0) / size
  signs = np.where(rng.rand(size) < 0.5, -1.0, 1.0)
  return (magnitudes * signs).reshape(shape).astype(np.float32)
