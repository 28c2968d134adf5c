"""Plain-numpy oracles for the masked layers and LSTM cells.

Independent of model_pruning (never import it here) and of TensorFlow: each
function recomputes a layer's output from its weights with numpy only.
"""
import numpy as np


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def conv_nd(x, kernel, strides, padding, dilation):
  """N-D cross-correlation, channels last, like tf.nn.convolution.

  Args:
    x: `[batch, *spatial, in_channels]`.
    kernel: `[*kernel_size, in_channels, out_channels]`.
    strides, dilation: one int per spatial dimension.
    padding: 'SAME' (out = ceil(n / s), padding split low-first as TF does)
      or 'VALID' (out = ceil((n - d + 1) / s), d the dilated kernel size).

  Returns:
    `[batch, *out_spatial, out_channels]`.
  """
  spatial = x.shape[1:-1]
  ksize = kernel.shape[:-2]
  dilated = [k + (k - 1) * (d - 1) for k, d in zip(ksize, dilation)]
  if padding == 'SAME':
    out = [-(-n // s) for n, s in zip(spatial, strides)]
    pads = [max((o - 1) * s + d - n, 0)
            for o, s, d, n in zip(out, strides, dilated, spatial)]
    x = np.pad(x, [(0, 0)] + [(p // 2, p - p // 2) for p in pads] + [(0, 0)])
  else:
    out = [-(-(n - d + 1) // s) for n, d, s in zip(spatial, dilated, strides)]
  result = np.zeros((x.shape[0],) + tuple(out) + (kernel.shape[-1],),
                    dtype=np.float64)
  for offset in np.ndindex(*ksize):
    index = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                  for o, d, n, s in zip(offset, dilation, out, strides))
    window = x[(slice(None),) + index]
    result += np.tensordot(window, kernel[offset], axes=[[-1], [0]])
  return result


def dense(x, kernel, bias=None):
  """`x . kernel (+ bias)` over the last axis of x."""
  y = np.tensordot(x, kernel, axes=[[-1], [0]])
  return y if bias is None else y + bias


def lstm_step(x, c, h, kernel, bias, forget_bias=1.0, peepholes=None,
              cell_clip=None, proj_kernel=None, proj_clip=None,
              activation=np.tanh):
  """One LSTM step, gates i, j, f, o (TF1 LSTMCell / BasicLSTMCell order).

  `z = [x, h] . kernel + bias`; `peepholes` is `(w_f, w_i, w_o)` or None.

  Returns:
    (c_new, m_new): the new cell state and output (projected when
    `proj_kernel` is given).
  """
  z = np.concatenate([x, h], axis=1) @ kernel + bias
  i, j, f, o = np.split(z, 4, axis=1)
  if peepholes is None:
    c_new = sigmoid(f + forget_bias) * c + sigmoid(i) * activation(j)
  else:
    w_f, w_i, _ = peepholes
    c_new = (sigmoid(f + forget_bias + w_f * c) * c +
             sigmoid(i + w_i * c) * activation(j))
  if cell_clip is not None:
    c_new = np.clip(c_new, -cell_clip, cell_clip)
  if peepholes is None:
    m = sigmoid(o) * activation(c_new)
  else:
    m = sigmoid(o + peepholes[2] * c_new) * activation(c_new)
  if proj_kernel is not None:
    m = m @ proj_kernel
    if proj_clip is not None:
      m = np.clip(m, -proj_clip, proj_clip)
  return c_new, m


def lstm_sequence(xs, c, h, step_kwargs):
  """Runs `lstm_step` over `xs` `[batch, time, depth]`; -> outputs, c, h."""
  outputs = []
  for t in range(xs.shape[1]):
    c, h = lstm_step(xs[:, t], c, h, **step_kwargs)
    outputs.append(h)
  return np.stack(outputs, axis=1), c, h

