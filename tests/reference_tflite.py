"""Numpy oracles for the TFLite export tests (never imports model_pruning).

A fully connected layer y = x @ W + b computed in float64 is the exact
reference; the bounds below say how far any correct float32, float16 or
int8 dynamic-range implementation may land from it, whatever order it adds
the products in (TensorFlow and TFLite's dense and sparse kernels all use
different orders, so they do not agree bit for bit). The pruning masks and
zero_fraction come from tests/reference.py.
"""
import numpy as np

# Unit roundoff of float32 and float16 (round to nearest).
U32 = 2.0 ** -24
U16 = 2.0 ** -11
# Largest absolute rounding error of a float16 subnormal (spacing 2**-24).
F16_SUBNORMAL_ERROR = 2.0 ** -25


def fc_exact(x, weights, bias):
  """x @ W + b in float64."""
  return (x.astype(np.float64) @ weights.astype(np.float64) +
          bias.astype(np.float64))


def _abs_terms(x, weights, bias):
  """|x| @ |W| + |b| in float64: the scale of every rounding error."""
  return np.abs(x.astype(np.float64)) @ np.abs(weights.astype(np.float64)) + (
      np.abs(bias.astype(np.float64)))


def float32_bound(x, weights, bias):
  """Worst-case error of a float32 sum of the n + 1 terms, any order.

  gamma_m * (|x| @ |W| + |b|) with gamma_m = m*u / (1 - m*u), m = n + 1
  (Higham, Accuracy and Stability of Numerical Algorithms, 3.1); a fused
  multiply-add only makes it smaller.
  """
  m = weights.shape[0] + 1
  gamma = m * U32 / (1.0 - m * U32)
  return gamma * _abs_terms(x, weights, bias)


def float16_bound(x, weights, bias):
  """Error bound when W and b are stored in float16, computed in float32.

  Each stored value w' = w (1 + d) + e with |d| <= 2**-11 (normal) and
  |e| <= 2**-25 (subnormal), so the result moves by at most
  2**-11 (|x| @ |W| + |b|) + 2**-25 (sum |x| + 1), plus the float32 sum's
  own error on the slightly larger terms.
  """
  stored = U16 * _abs_terms(x, weights, bias)
  subnormal = F16_SUBNORMAL_ERROR * (
      np.abs(x.astype(np.float64)).sum(axis=1, keepdims=True) + 1.0)
  return stored + subnormal + (1.0 + U16) * float32_bound(x, weights, bias)


def int8_dynamic_range_bound(x, weights, bias):
  """Error bound of int8 dynamic-range (hybrid) quantization.

  Weights are quantized symmetrically with step s_w <= max|W| / 127 (one
  scale per tensor or per output channel, either is at most that), each
  input row with step s_x <= max|x_row| / 127 (symmetric, or asymmetric over
  a range holding 0: (max - min) / 255 <= 2 max|x| / 255). Rounding moves a
  value by at most half a step, so

    |err| <= s_w/2 sum|x| + s_x/2 sum_k |W_k| + n s_x/2 s_w/2

  (integer accumulation is exact), plus float32 rounding of the rescaled
  result and the bias.
  """
  x64 = np.abs(x.astype(np.float64))
  w64 = np.abs(weights.astype(np.float64))
  s_w = w64.max() / 127.0
  s_x = x64.max(axis=1, keepdims=True) / 127.0
  n = weights.shape[0]
  quantization = (s_w / 2 * x64.sum(axis=1, keepdims=True) +
                  s_x / 2 * w64.sum(axis=0, keepdims=True) +
                  n * (s_x / 2) * (s_w / 2))
  # The result is rebuilt in float32 from an exact integer sum: a few
  # roundings of values no bigger than the terms plus the quantization error.
  rounding = 4 * U32 * (_abs_terms(x, weights, bias) + quantization)
  return quantization + rounding


def roundoff_units(values, x, weights, bias):
  """max |values - exact| in units of u32 * (|x| @ |W| + |b|).

  The worst-case float32 bound is n + 1 of these units; a reordered sum
  typically lands within a few.
  """
  error = np.abs(values.astype(np.float64) - fc_exact(x, weights, bias))
  return float((error / (U32 * _abs_terms(x, weights, bias))).max())
