"""A MobileNetV2-style classifier built with model_pruning's masked layers.

  input 32x32x3 -> Pad 1 -> 3x3/2 conv (16) -> relu6
    -> inverted residual blocks: 1x1 expand (x4) -> relu6 -> Pad 1
       -> depthwise 3x3 (stride 1 or 2, VALID) -> relu6 -> 1x1 project,
       + input when the shape is kept
    -> 1x1 conv (160) -> relu6 -> global average pool -> fully connected (10)

Every convolution and the head are masked (MaskedConv2D, `apply_mask` on
the depthwise kernels, MaskedFullyConnected), so the latency policy has
something to decide for each. Padding is explicit (Pad + VALID), never SAME
with stride 2, which XNNPACK's sparse path does not accept.
"""
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python.layers import layers

# (expansion, output channels, stride) per inverted residual block.
BLOCKS = ((4, 16, 1), (4, 24, 2), (4, 24, 1), (4, 40, 2), (4, 40, 1))
FIRST_CHANNELS = 16
LAST_CHANNELS = 160
_PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]


def _depthwise(net, stride, scope):
  with tf.compat.v1.variable_scope(scope) as var_scope:
    kernel = tf.compat.v1.get_variable(
        'weights', [3, 3, int(net.shape[-1]), 1],
        initializer=tf.compat.v1.glorot_uniform_initializer())
    masked = pruning.apply_mask(kernel, var_scope)
  net = tf.nn.depthwise_conv2d(tf.pad(net, _PAD1), masked,
                               [1, stride, stride, 1], 'VALID')
  return tf.nn.relu6(net)


def _block(net, expansion, channels, stride, scope):
  with tf.compat.v1.variable_scope(scope):
    inner = int(net.shape[-1]) * expansion
    out = layers.masked_conv2d(net, inner, 1, activation_fn=tf.nn.relu6,
                               scope='expand')
    out = _depthwise(out, stride, 'depthwise')
    out = layers.masked_conv2d(out, channels, 1, activation_fn=None,
                               scope='project')
  if stride == 1 and int(net.shape[-1]) == channels:
    out = out + net
  return out


def inference(images, num_classes=10):
  """Logits [batch, num_classes] for images [batch, 32, 32, 3]."""
  net = layers.masked_conv2d(tf.pad(images, _PAD1), FIRST_CHANNELS, 3,
                             stride=2, padding='VALID',
                             activation_fn=tf.nn.relu6, scope='first')
  for index, (expansion, channels, stride) in enumerate(BLOCKS):
    net = _block(net, expansion, channels, stride, 'block%d' % index)
  net = layers.masked_conv2d(net, LAST_CHANNELS, 1, activation_fn=tf.nn.relu6,
                             scope='last')
  net = tf.reduce_mean(net, [1, 2])
  return layers.masked_fully_connected(net, num_classes, activation_fn=None,
                                       scope='head')
