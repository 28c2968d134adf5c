"""Tiny MobileNet-style graphs for the XNNPACK checker and policy tests.

`build(**knobs)` builds, in the default graph, one inverted-residual block
with masked layers:

  input 1x16x16x3 -> Pad 1 -> first 3x3/2 conv (16) -> relu6
    -> expand 1x1 (64) -> relu6 -> Pad 1 -> depthwise 3x3 -> relu6
    -> project 1x1 (16) -> + first -> Mean over H, W -> head FC (10) 'logits'

Each knob breaks one of XNNPACK's sparse-path rules. `export(...)` sets the
two 1x1 masks to keep the largest `sparsity` fraction of magnitudes (the
numpy oracle of what is zero), freezes, strips and converts to TFLite.
"""
import numpy as np
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import tflite_export
from model_pruning.python.layers import layers

ONE_BY_ONE = ('expand', 'project')
_PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]
_SEED = 0


def _depthwise(x, stride, padding):
  with tf.compat.v1.variable_scope('depthwise') as scope:
    kernel = tf.compat.v1.get_variable(
        'weights', [3, 3, int(x.shape[-1]), 1],
        initializer=tf.compat.v1.random_normal_initializer(seed=_SEED))
    masked = pruning.apply_mask(kernel, scope)
  if padding == 'explicit':
    x, padding = tf.pad(x, _PAD1), 'VALID'
  return tf.nn.relu6(tf.nn.depthwise_conv2d(
      x, masked, [1, stride, stride, 1], padding))


def build(first_padding='explicit', dw_stride=1, dw_padding='explicit',
          max_pool_inside=False, expand_is_output=False, end='mean'):
  """Builds the model in the default graph; returns its output node names."""
  tf.compat.v1.set_random_seed(_SEED)
  init = tf.compat.v1.glorot_uniform_initializer(seed=_SEED)
  x = tf.compat.v1.placeholder(tf.float32, [1, 16, 16, 3], name='input')
  if first_padding == 'explicit':
    x, first_padding = tf.pad(x, _PAD1), 'VALID'
  first = layers.masked_conv2d(x, 16, 3, stride=2, padding=first_padding,
                               activation_fn=tf.nn.relu6,
                               weights_initializer=init, scope='first')
  expand = layers.masked_conv2d(first, 64, 1, activation_fn=tf.nn.relu6,
                                weights_initializer=init, scope='expand')
  outputs = ['logits']
  if expand_is_output:
    tf.identity(expand, name='expand_out')
    outputs.append('expand_out')
  depthwise = _depthwise(expand, dw_stride, dw_padding)
  project = layers.masked_conv2d(depthwise, 16, 1, activation_fn=None,
                                 weights_initializer=init, scope='project')
  net = project + first if dw_stride == 1 else project
  if max_pool_inside:
    net = tf.nn.max_pool2d(net, 3, 1, 'SAME')
  if end == 'mean':
    net = tf.reduce_mean(net, [1, 2])
  else:
    net = tf.reshape(net, [1, -1])
  logits = layers.masked_fully_connected(net, 10, activation_fn=None,
                                         weights_initializer=init,
                                         scope='head')
  tf.identity(logits, name='logits')
  return outputs


def magnitude_mask(weights, sparsity):
  """1.0 for the largest (1 - sparsity) fraction of |weights|, else 0.0."""
  flat = np.abs(weights).ravel()
  keep = flat.size - int(round(sparsity * flat.size))
  mask = np.zeros(flat.size, np.float32)
  mask[np.argsort(-flat, kind='stable')[:keep]] = 1.0
  return mask.reshape(weights.shape)


def export(sparsity=0.9, quantization='none', sparse=True, **knobs):
  """Builds, prunes the 1x1s to `sparsity`, strips, converts.

  Returns:
    (tflite bytes, {layer scope: masked weight array}) for the 1x1 layers
    and the head, in TF layout.
  """
  with tf.Graph().as_default() as graph:
    outputs = build(**knobs)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      values = {}
      for mask, weight in zip(pruning.get_masks(), pruning.get_weights()):
        scope = weight.op.name.split('/')[0]
        array = sess.run(weight)
        if scope in ONE_BY_ONE:
          sess.run(mask.assign(magnitude_mask(array, sparsity)))
        values[scope] = array * sess.run(mask)
      frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
          sess, graph.as_graph_def(), outputs)
  stripped, _ = strip_pruning_vars_lib.fold_masked_weights(frozen, outputs)
  model = tflite_export.convert(stripped, outputs, quantization=quantization,
                                sparse=sparse)
  return model, values
