"""Numpy oracles for the reliability tests (never imports model_pruning).

The schedule and update predicate of docs/upstream.md / 2.4.12, the three
threshold methods of docs/upstream.md (with docs/upstream.md non-finite rule), and
a simulator of which steps a run that calls the conditional update once per
step updates its masks.
"""
import numpy as np


def scheduled_sparsity(step, begin, end, initial, target, exponent):
  """s(t) = s_f + (s_i - s_f) (1 - p)^e, p = clip((t - t0)/(t1 - t0), 0, 1)."""
  progress = np.float32(min(max((step - begin) / float(end - begin), 0.0),
                            1.0))
  return np.float32(target + (initial - target) *
                    (np.float32(1.0) - progress) ** np.float32(exponent))


def is_update_step(step, last_update, begin, end, frequency):
  """(t >= b) and (t <= e or e < 0) and (L + f <= t)."""
  in_window = step >= begin and (step <= end or end < 0)
  return in_window and last_update + frequency <= step


def update_steps(num_steps, begin, end, frequency, first_step=1):
  """Steps at which masks update when the op runs once after every step."""
  last, steps = 0, []
  for step in range(first_step, num_steps + 1):
    if is_update_step(step, last, begin, end, frequency):
      last = step
      steps.append(step)
  return steps


def finite_magnitudes(weights):
  """|w| with NaN -> 0 and +-Inf -> the float32 maximum (the lead's rule)."""
  magnitudes = np.abs(np.asarray(weights, np.float32))
  magnitudes = np.where(np.isnan(magnitudes), np.float32(0), magnitudes)
  return np.minimum(magnitudes, np.finfo(np.float32).max)


def keep_count(size, sparsity):
  """k = round_half_even(float32(N) * (1 - s)), as TF computes it."""
  return int(np.round(np.float32(size) * (np.float32(1.0) -
                                          np.float32(sparsity))))


def sort_mask(weights, sparsity):
  """Variant T: theta = k-th largest |w| (k clamped to [1, N]); |w| >= theta."""
  magnitudes = finite_magnitudes(weights)
  flat = np.sort(magnitudes.ravel())[::-1]
  k = min(max(keep_count(flat.size, sparsity), 1), flat.size)
  threshold = flat[k - 1]
  return threshold, (magnitudes >= threshold).astype(np.float32)


def histogram_mask(weights, sparsity, nbins):
  """Variant H via an explicit histogram: theta = #{c[i] < s} / B * max."""
  magnitudes = finite_magnitudes(weights)
  top = magnitudes.max()
  if top == 0:
    return np.float32(0), np.zeros_like(magnitudes)
  bins = np.clip(np.floor(nbins * (magnitudes.astype(np.float64) / top)),
                 0, nbins - 1).astype(np.int64)
  counts = np.bincount(bins.ravel(), minlength=nbins)
  cdf = np.cumsum(counts) / float(magnitudes.size)
  threshold = np.float32(np.sum(cdf < sparsity) / float(nbins) * top)
  return threshold, (magnitudes > threshold).astype(np.float32)
