"""The studies' models, built only from the library's masked layers.

Each builder takes the input tensor and returns the output tensor (logits or
a [batch] prediction); every kernel is masked (`masked_conv2d`,
`masked_fully_connected`, `MaskedLSTMCell` under `dynamic_rnn`), so the same
graph serves the dense baseline (masks stay all ones) and every pruned
attempt. Scopes give the weights stable names (conv1, conv2, dense1,
logits, rnn, head, ...) for hparam maps and reports.
"""
import tensorflow as tf

from model_pruning.python.layers import layers
from model_pruning.python.layers import rnn_cells


def digits_cnn(images):
  """[b, 8, 8, 1] -> conv 3x3x16 -> conv 3x3x32 -> pool -> 64 -> 10 logits.

  38,282 parameters: conv1 144 + 16, conv2 4,608 + 32, dense1 32,768 + 64,
  logits 640 + 10.
  """
  net = layers.masked_conv2d(images, 16, 3, padding='SAME', scope='conv1')
  net = layers.masked_conv2d(net, 32, 3, padding='SAME', scope='conv2')
  net = tf.nn.max_pool2d(net, ksize=2, strides=2, padding='VALID')
  net = tf.reshape(net, [-1, 4 * 4 * 32])
  net = layers.masked_fully_connected(net, 64, scope='dense1')
  return layers.masked_fully_connected(net, 10, activation_fn=None,
                                       scope='logits')


def regression_mlp(features, hidden=64):
  """[b, d] -> hidden -> hidden -> [b] prediction (ReLU)."""
  net = layers.masked_fully_connected(features, hidden, scope='dense1')
  net = layers.masked_fully_connected(net, hidden, scope='dense2')
  net = layers.masked_fully_connected(net, 1, activation_fn=None,
                                      scope='head')
  return net[:, 0]


def lstm_forecaster(sequences, num_units=32):
  """[b, t, 1] -> MaskedLSTMCell under dynamic_rnn -> last output -> [b]."""
  cell = rnn_cells.MaskedLSTMCell(num_units)
  outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, sequences, dtype=tf.float32,
                                           scope='rnn')
  net = layers.masked_fully_connected(outputs[:, -1], 1, activation_fn=None,
                                      scope='head')
  return net[:, 0]
