"""The CIFAR-10 model of the pruning example, with every weight masked.

Upstream's network: conv1 -> pool1 -> norm1 -> conv2 -> norm2 ->
pool2 -> local3 -> local4 -> softmax_linear. Each of the five weights goes
through `pruning.apply_mask(weight, scope)` with its enclosing VariableScope,
so the graph has `<layer>/mask` and `<layer>/threshold` variables and the
masked weight op `<layer>/weights/masked_weight` that the strip tool folds.

Differences from upstream: shapes are read as Python ints (`.shape[1]`, docs/upstream.md Q19),
so `inference` accepts any batch size; the input wrappers take `data_dir` and
`batch_size` arguments instead of flags; nothing downloads
(`maybe_download_and_extract` only extracts a tarball you placed by hand).
"""
import os
import re
import tarfile

import tensorflow as tf

from examples.cifar10 import cifar10_input
from model_pruning.python import pruning

IMAGE_SIZE = cifar10_input.IMAGE_SIZE
NUM_CLASSES = cifar10_input.NUM_CLASSES
NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN = (
    cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN)
NUM_EXAMPLES_PER_EPOCH_FOR_EVAL = cifar10_input.NUM_EXAMPLES_PER_EPOCH_FOR_EVAL

BATCH_SIZE = 128
DATA_DIR = '/tmp/cifar10_data'
MOVING_AVERAGE_DECAY = 0.9999
NUM_EPOCHS_PER_DECAY = 350.0
LEARNING_RATE_DECAY_FACTOR = 0.1
INITIAL_LEARNING_RATE = 0.1
TOWER_NAME = 'tower'
DATA_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'
BATCHES_DIRNAME = 'cifar-10-batches-bin'
# The logits op of `inference` (an Identity at the graph's root, so its name
# does not depend on how apply_mask opens name scopes): strip_pruning_vars'
# output node.
LOGITS_NODE_NAME = 'logits'
# Names of the masked layers, in network order.
LAYER_NAMES = ('conv1', 'conv2', 'local3', 'local4', 'softmax_linear')


def _activation_summary(x):
  """Histogram `<name>/activations` and zero-fraction `<name>/sparsity`."""
  tensor_name = re.sub('%s_[0-9]*/' % TOWER_NAME, '', x.op.name)
  tf.compat.v1.summary.histogram(tensor_name + '/activations', x)
  tf.compat.v1.summary.scalar(tensor_name + '/sparsity',
                              tf.nn.zero_fraction(x))


def _variable_on_cpu(name, shape, initializer):
  """A float32 `get_variable` placed on the CPU."""
  with tf.device('/cpu:0'):
    return tf.compat.v1.get_variable(name, shape, initializer=initializer,
                                     dtype=tf.float32)


def _variable_with_weight_decay(name, shape, stddev, wd):
  """Truncated-normal variable; adds `wd * l2_loss(var)` to 'losses' if wd set.

  `wd=0.0` still adds a (zero) term, as upstream did.
  """
  var = _variable_on_cpu(
      name, shape,
      tf.compat.v1.truncated_normal_initializer(stddev=stddev,
                                                dtype=tf.float32))
  if wd is not None:
    weight_decay = tf.multiply(tf.nn.l2_loss(var), wd, name='weight_loss')
    tf.compat.v1.add_to_collection('losses', weight_decay)
  return var


def batches_dir(data_dir):
  """The `cifar-10-batches-bin` directory under `data_dir`."""
  return os.path.join(data_dir, BATCHES_DIRNAME)


def distorted_inputs(data_dir=DATA_DIR, batch_size=BATCH_SIZE,
                     num_threads=cifar10_input.DEFAULT_NUM_THREADS):
  """Augmented training batches from `<data_dir>/cifar-10-batches-bin`."""
  return cifar10_input.distorted_inputs(batches_dir(data_dir), batch_size,
                                        num_threads=num_threads)


def inputs(eval_data, data_dir=DATA_DIR, batch_size=BATCH_SIZE,
           num_threads=cifar10_input.DEFAULT_NUM_THREADS, num_examples=None):
  """Eval batches (test set if `eval_data`, else the train files)."""
  return cifar10_input.inputs(eval_data, batches_dir(data_dir), batch_size,
                              num_threads=num_threads,
                              num_examples=num_examples)


def _conv_layer(name, inputs_, in_channels, bias_init):
  """5x5 stride-1 SAME masked conv + bias + ReLU (op named `name`)."""
  with tf.compat.v1.variable_scope(name) as scope:
    kernel = _variable_with_weight_decay(
        'weights', shape=[5, 5, in_channels, 64], stddev=5e-2, wd=0.0)
    conv = tf.nn.conv2d(inputs_, pruning.apply_mask(kernel, scope),
                        [1, 1, 1, 1], padding='SAME')
    biases = _variable_on_cpu('biases', [64],
                              tf.compat.v1.constant_initializer(bias_init))
    output = tf.nn.relu(tf.nn.bias_add(conv, biases), name=scope.name)
  _activation_summary(output)
  return output


def _fc_layer(name, inputs_, units, stddev, wd, bias_init, relu=True):
  """Masked fully connected layer (+ ReLU unless `relu` is False)."""
  with tf.compat.v1.variable_scope(name) as scope:
    weights = _variable_with_weight_decay(
        'weights', shape=[int(inputs_.shape[1]), units], stddev=stddev, wd=wd)
    biases = _variable_on_cpu('biases', [units],
                              tf.compat.v1.constant_initializer(bias_init))
    pre = tf.add(tf.matmul(inputs_, pruning.apply_mask(weights, scope)),
                 biases, name=None if relu else scope.name)
    output = tf.nn.relu(pre, name=scope.name) if relu else pre
  _activation_summary(output)
  return output


def inference(images):
  """Builds the network; returns unnormalised logits [batch, NUM_CLASSES].

  The returned tensor is the op `logits` (LOGITS_NODE_NAME) when built once
  in a fresh graph.

  Args:
    images: float32 [batch, 24, 24, 3] (any batch size, static or not).
  """
  conv1 = _conv_layer('conv1', images, in_channels=3, bias_init=0.0)
  pool1 = tf.nn.max_pool2d(conv1, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                           padding='SAME', name='pool1')
  norm1 = tf.nn.lrn(pool1, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75,
                    name='norm1')
  conv2 = _conv_layer('conv2', norm1, in_channels=64, bias_init=0.1)
  norm2 = tf.nn.lrn(conv2, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75,
                    name='norm2')
  pool2 = tf.nn.max_pool2d(norm2, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1],
                           padding='SAME', name='pool2')
  # Static flattened size (6 * 6 * 64 = 2304 for 24x24 input) (docs/upstream.md Q19).
  dim = int(pool2.shape[1]) * int(pool2.shape[2]) * int(pool2.shape[3])
  reshape = tf.reshape(pool2, [-1, dim])
  local3 = _fc_layer('local3', reshape, 384, stddev=0.04, wd=0.004,
                     bias_init=0.1)
  local4 = _fc_layer('local4', local3, 192, stddev=0.04, wd=0.004,
                     bias_init=0.1)
  softmax_linear = _fc_layer('softmax_linear', local4, NUM_CLASSES,
                             stddev=1 / 192.0, wd=0.0, bias_init=0.0,
                             relu=False)
  return tf.identity(softmax_linear, name=LOGITS_NODE_NAME)


def loss(logits, labels):
  """Mean cross-entropy plus all weight-decay terms, named `total_loss`."""
  labels = tf.cast(labels, tf.int64)
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits, name='cross_entropy_per_example')
  cross_entropy_mean = tf.reduce_mean(cross_entropy, name='cross_entropy')
  tf.compat.v1.add_to_collection('losses', cross_entropy_mean)
  return tf.add_n(tf.compat.v1.get_collection('losses'), name='total_loss')


def _add_loss_summaries(total_loss):
  """EMA (0.9) of every loss; raw and averaged scalar summaries of each."""
  loss_averages = tf.compat.v1.train.ExponentialMovingAverage(0.9, name='avg')
  losses = tf.compat.v1.get_collection('losses')
  loss_averages_op = loss_averages.apply(losses + [total_loss])
  for each in losses + [total_loss]:
    tf.compat.v1.summary.scalar(each.op.name + ' (raw)', each)
    tf.compat.v1.summary.scalar(each.op.name, loss_averages.average(each))
  return loss_averages_op


def train(total_loss, global_step, batch_size=BATCH_SIZE):
  """SGD step with staircase-decayed learning rate and weight EMA.

  lr = 0.1 * 0.1 ** floor(step / decay_steps), decay_steps =
  int(50000 / batch_size * 350) (136718 for batch 128). Masks and thresholds
  are not trainable, so they are neither trained nor averaged.

  Returns:
    An op (`train`) that applies gradients and updates the moving averages.
  """
  decay_steps = int(NUM_EXAMPLES_PER_EPOCH_FOR_TRAIN / batch_size *
                    NUM_EPOCHS_PER_DECAY)
  lr = tf.compat.v1.train.exponential_decay(
      INITIAL_LEARNING_RATE, global_step, decay_steps,
      LEARNING_RATE_DECAY_FACTOR, staircase=True)
  tf.compat.v1.summary.scalar('learning_rate', lr)
  loss_averages_op = _add_loss_summaries(total_loss)
  with tf.control_dependencies([loss_averages_op]):
    opt = tf.compat.v1.train.GradientDescentOptimizer(lr)
    grads = opt.compute_gradients(total_loss)
  apply_gradient_op = opt.apply_gradients(grads, global_step=global_step)
  for var in tf.compat.v1.trainable_variables():
    tf.compat.v1.summary.histogram(var.op.name, var)
  for grad, var in grads:
    if grad is not None:
      tf.compat.v1.summary.histogram(var.op.name + '/gradients', grad)
  variable_averages = tf.compat.v1.train.ExponentialMovingAverage(
      MOVING_AVERAGE_DECAY, global_step)
  with tf.control_dependencies([apply_gradient_op]):
    variables_averages_op = variable_averages.apply(
        tf.compat.v1.trainable_variables())
  with tf.control_dependencies([variables_averages_op]):
    return tf.no_op(name='train')


def maybe_download_and_extract(data_dir=DATA_DIR):
  """Makes sure `<data_dir>/cifar-10-batches-bin` exists, without any network.

  If the directory is missing but `<data_dir>/cifar-10-binary.tar.gz` is there
  (downloaded by hand from DATA_URL), extracts it. Never downloads.

  Returns:
    The `cifar-10-batches-bin` directory.

  Raises:
    ValueError: neither the directory nor the tarball exists; the message says
      how to get the data.
  """
  dest = batches_dir(data_dir)
  if os.path.isdir(dest):
    return dest
  tarball = os.path.join(data_dir, os.path.basename(DATA_URL))
  if not os.path.exists(tarball):
    raise ValueError('No CIFAR-10 data: neither %s nor %s exists. %s'
                     % (dest, tarball, cifar10_input.HOW_TO_GET_DATA))
  print('Extracting %s' % tarball)
  with tarfile.open(tarball, 'r:gz') as archive:
    archive.extractall(data_dir, filter='data')
  return dest
