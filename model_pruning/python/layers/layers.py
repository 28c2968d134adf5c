"""Slim-style functional masked layers: `masked_convolution`, `masked_conv2d`,
`masked_fully_connected`.

They behave like `tf_slim`'s `convolution` / `fully_connected`, with a masked
kernel: variables `<scope>/weights`, `biases`, `mask`, `threshold` (all also in
MODEL_VARIABLES, like slim's model variables), scopes `Conv`, `Conv_1`, ...
or `fully_connected`, ..., `reuse=True` shares the variables (the mask is then
registered only once), and `normalizer_fn` replaces the bias.

    net = masked_conv2d(images, 64, [5, 5], scope='conv1')
    net = masked_fully_connected(tf.reshape(net, [batch, -1]), 10,
                                 activation_fn=None, scope='logits')

Where `tf_slim` is installed, `tf_slim.arg_scope` applies to these functions.
"""
import tensorflow as tf

from model_pruning.python.layers import core_layers

try:  # Only for arg_scope support; tf_slim is optional.
  from tf_slim.ops.arg_scope import add_arg_scope as _add_arg_scope
except ImportError:
  def _add_arg_scope(func):
    return func

_CHANNELS_LAST = {3: 'NWC', 4: 'NHWC', 5: 'NDHWC'}
_CHANNELS_FIRST = {3: 'NCW', 4: 'NCHW', 5: 'NCDHW'}
_CONV_CLASSES = {3: core_layers.MaskedConv1D, 4: core_layers.MaskedConv2D,
                 5: core_layers.MaskedConv3D}
_RENAMES = {'kernel': 'weights', 'bias': 'biases'}
# slim's xavier_initializer() default: Glorot (fan-avg) uniform.
_GLOROT_UNIFORM = tf.compat.v1.glorot_uniform_initializer()


def _model_variable_getter(getter, name, *args, **kwargs):
  """Renames kernel->weights, bias->biases; adds every variable to
  MODEL_VARIABLES next to GLOBAL_VARIABLES (slim's `model_variable`)."""
  parts = name.split('/')
  parts[-1] = _RENAMES.get(parts[-1], parts[-1])
  collections = list(kwargs.get('collections') or
                     [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES])
  kwargs['collections'] = collections + [
      tf.compat.v1.GraphKeys.MODEL_VARIABLES]
  return getter('/'.join(parts), *args, **kwargs)


def _add_variable_to_collections(variable, collections_set, key):
  """Adds `variable` to `collections_set` (a list, or a dict keyed by `key`)."""
  if isinstance(collections_set, dict):
    collections = collections_set.get(key) or []
  else:
    collections = collections_set or []
  if isinstance(collections, str):
    collections = [collections]
  for collection in collections:
    members = tf.compat.v1.get_collection(collection)
    if all(variable is not member for member in members):
      tf.compat.v1.add_to_collection(collection, variable)


def _collect_named_outputs(outputs_collections, alias, outputs):
  """Appends `outputs` to `outputs_collections` and records its alias."""
  if outputs_collections:
    alias = alias[:-1] if alias.endswith('/') else alias
    aliases = getattr(outputs, 'aliases', None)
    outputs.aliases = (aliases or []) + [alias]
    tf.compat.v1.add_to_collections(outputs_collections, outputs)
  return outputs


def _finish(layer, outputs, sc, normalizer_fn, normalizer_params,
            activation_fn, variables_collections, outputs_collections):
  """Collections, normalizer and activation shared by both wrappers."""
  _add_variable_to_collections(layer.kernel, variables_collections, 'weights')
  if layer.bias is not None:
    _add_variable_to_collections(layer.bias, variables_collections, 'biases')
  if normalizer_fn is not None:
    outputs = normalizer_fn(outputs, **(normalizer_params or {}))
  if activation_fn is not None:
    outputs = activation_fn(outputs)
  return _collect_named_outputs(outputs_collections, sc.original_name_scope,
                                outputs)


def _conv_format(data_format, rank):
  """Maps a slim data_format and an input rank to channels_last/first."""
  if data_format is None or data_format == _CHANNELS_LAST[rank]:
    return 'channels_last'
  if data_format == _CHANNELS_FIRST[rank]:
    return 'channels_first'
  raise ValueError(f'Unsupported data format {data_format!r} for a rank-{rank} '
                   f'input; use {_CHANNELS_LAST[rank]!r} or '
                   f'{_CHANNELS_FIRST[rank]!r}')


@_add_arg_scope
def masked_convolution(inputs, num_outputs, kernel_size, stride=1,
                       padding='SAME', data_format=None, rate=1,
                       activation_fn=tf.nn.relu, normalizer_fn=None,
                       normalizer_params=None,
                       weights_initializer=_GLOROT_UNIFORM,
                       weights_regularizer=None,
                       biases_initializer=tf.compat.v1.zeros_initializer(),
                       biases_regularizer=None, reuse=None,
                       variables_collections=None, outputs_collections=None,
                       trainable=True, scope=None):
  """Masked N-D convolution (inputs of rank 3, 4 or 5), slim-style.

  Args:
    inputs: `[batch, *spatial, channels]` (or channels-first per data_format).
    num_outputs: number of filters.
    kernel_size, stride, rate: an int or one int per spatial dimension.
    padding: 'SAME' or 'VALID'.
    data_format: None, 'NWC'/'NCW', 'NHWC'/'NCHW' or 'NDHWC'/'NCDHW'; must
      match the input rank.
    activation_fn, normalizer_fn, normalizer_params: applied in the order
      normalizer, activation; a normalizer replaces the bias.
    weights_initializer, weights_regularizer, biases_initializer,
      biases_regularizer: for `weights` / `biases` (None: no bias).
    reuse, scope: variable sharing; the default scope is `Conv` (uniquified).
    variables_collections: list, or dict with keys 'weights'/'biases'.
    outputs_collections: collections to add the output to.
    trainable: False keeps every variable out of TRAINABLE_VARIABLES.

  Returns:
    The output tensor.

  Raises:
    ValueError: bad data_format, or an input rank other than 3, 4 or 5.
  """
  if data_format not in (None, 'NWC', 'NCW', 'NHWC', 'NCHW', 'NDHWC', 'NCDHW'):
    raise ValueError(f'Invalid data_format: {data_format!r}')
  with tf.compat.v1.variable_scope(
      scope, 'Conv', [inputs], reuse=reuse,
      custom_getter=_model_variable_getter) as sc:
    inputs = tf.convert_to_tensor(inputs)
    rank = inputs.shape.rank
    if rank not in _CONV_CLASSES:
      raise ValueError('Sparse convolution not supported for input with rank '
                       f'{rank}; masked_convolution takes rank 3, 4 or 5')
    layer = _CONV_CLASSES[rank](
        filters=num_outputs, kernel_size=kernel_size, strides=stride,
        padding=padding, data_format=_conv_format(data_format, rank),
        dilation_rate=rate, activation=None,
        use_bias=normalizer_fn is None and biases_initializer is not None,
        kernel_initializer=weights_initializer,
        bias_initializer=biases_initializer,
        kernel_regularizer=weights_regularizer,
        bias_regularizer=biases_regularizer, trainable=trainable,
        name=sc.name, dtype=inputs.dtype.base_dtype, _scope=sc, _reuse=reuse)
    outputs = layer.apply(inputs)
    return _finish(layer, outputs, sc, normalizer_fn, normalizer_params,
                   activation_fn, variables_collections, outputs_collections)


@_add_arg_scope
def masked_conv2d(inputs, num_outputs, kernel_size, **kwargs):
  """`masked_convolution` restricted to rank-4 inputs (upstream's contract).

  Takes the same keyword arguments as `masked_convolution`.

  Raises:
    ValueError: if `inputs` is not rank 4 (the message names the rank).
  """
  rank = tf.convert_to_tensor(inputs).shape.rank
  if rank != 4:
    raise ValueError(f'masked_conv2d needs a rank-4 input, got rank {rank}; '
                     'use masked_convolution for rank 3 or 5')
  return masked_convolution(inputs, num_outputs, kernel_size, **kwargs)


@_add_arg_scope
def masked_fully_connected(inputs, num_outputs, activation_fn=tf.nn.relu,
                           normalizer_fn=None, normalizer_params=None,
                           weights_initializer=_GLOROT_UNIFORM,
                           weights_regularizer=None,
                           biases_initializer=tf.compat.v1.zeros_initializer(),
                           biases_regularizer=None, reuse=None,
                           variables_collections=None, outputs_collections=None,
                           trainable=True, scope=None):
  """Masked fully connected layer, slim-style (default scope `fully_connected`).

  `outputs = activation_fn(normalizer_fn(inputs . (mask * weights) + biases))`;
  inputs of rank > 2 are contracted over their last axis. Arguments as in
  `masked_convolution`.

  Raises:
    ValueError: if `num_outputs` is not an int.
  """
  if isinstance(num_outputs, bool) or not isinstance(num_outputs, int):
    raise ValueError(f'num_outputs should be int or long, got {num_outputs!r}')
  with tf.compat.v1.variable_scope(
      scope, 'fully_connected', [inputs], reuse=reuse,
      custom_getter=_model_variable_getter) as sc:
    inputs = tf.convert_to_tensor(inputs)
    layer = core_layers.MaskedFullyConnected(
        units=num_outputs, activation=None,
        use_bias=normalizer_fn is None and biases_initializer is not None,
        kernel_initializer=weights_initializer,
        bias_initializer=biases_initializer,
        kernel_regularizer=weights_regularizer,
        bias_regularizer=biases_regularizer, trainable=trainable,
        name=sc.name, dtype=inputs.dtype.base_dtype, _scope=sc, _reuse=reuse)
    outputs = layer.apply(inputs)
    return _finish(layer, outputs, sc, normalizer_fn, normalizer_params,
                   activation_fn, variables_collections, outputs_collections)
