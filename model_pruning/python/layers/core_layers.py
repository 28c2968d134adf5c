"""Masked convolution and fully connected layers, without Keras.

Each layer owns a weight (`kernel`), a same-shaped all-ones `mask`, a scalar
`threshold` and an optional `bias`, and computes with
`masked_kernel = mask * kernel` (op `.../weights/masked_weight`). The mask,
threshold, masked kernel and kernel are registered once in the pruning
collections, so `pruning.Pruning` updates the mask and the layer's output
changes accordingly.

    layer = MaskedConv2D(filters=32, kernel_size=3, padding='same')
    outputs = layer(images)          # NHWC; layer.mask, layer.kernel, ...

Upstream (contrib) only had the 2-D layer; `MaskedConv1D` and `MaskedConv3D`
are the same layer at ranks 1 and 3.
"""
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python.layers import base

# Upstream defines the collection names in this module; re-exported here.
MASK_COLLECTION = graph_keys.MASK_COLLECTION
THRESHOLD_COLLECTION = graph_keys.THRESHOLD_COLLECTION
MASKED_WEIGHT_COLLECTION = graph_keys.MASKED_WEIGHT_COLLECTION
WEIGHT_COLLECTION = graph_keys.WEIGHT_COLLECTION
MASKED_WEIGHT_NAME = graph_keys.MASKED_WEIGHT_NAME

_CHANNELS_FIRST_FORMATS = {1: 'NCW', 2: 'NCHW', 3: 'NCDHW'}


def _normalize_tuple(value, rank, arg_name):
  """Turns an int or a sequence of `rank` ints into a `rank`-tuple."""
  if isinstance(value, int):
    return (value,) * rank
  value = tuple(value)
  if len(value) != rank or not all(isinstance(v, int) for v in value):
    raise ValueError(f'{arg_name} must be an int or {rank} ints, got {value!r}')
  return value


def _normalize_padding(padding):
  padding = str(padding).lower()
  if padding not in ('valid', 'same'):
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
  return padding


def _normalize_data_format(data_format):
  data_format = 'channels_last' if data_format is None else str(data_format)
  data_format = data_format.lower()
  if data_format not in ('channels_last', 'channels_first'):
    raise ValueError("data_format must be 'channels_last' or "
                     f"'channels_first', got {data_format!r}")
  return data_format


def conv_output_length(input_length, filter_size, padding, stride, dilation=1):
  """Output length of a convolution along one axis (None stays None).

  With the dilated filter size `d = f + (f - 1)(dilation - 1)`:
  'same' -> ceil(n / stride), 'valid' -> ceil((n - d + 1) / stride).
  """
  if input_length is None:
    return None
  dilated = filter_size + (filter_size - 1) * (dilation - 1)
  length = input_length if padding == 'same' else input_length - dilated + 1
  return (length + stride - 1) // stride


class _MaskedLayer(base.ScopedModule):
  """A masked layer: `activation(op(inputs, mask * kernel) + bias)`."""

  def __init__(self, activation, use_bias, kernel_initializer,
               bias_initializer, kernel_regularizer, bias_regularizer,
               activity_regularizer, trainable, name, **kwargs):
    dtype = kwargs.pop('dtype', None)
    scope = kwargs.pop('_scope', None)
    reuse = kwargs.pop('_reuse', None)
    if kwargs:
      raise TypeError(f'unexpected keyword arguments {sorted(kwargs)}; the '
                      'extra ones accepted are dtype, _scope and _reuse')
    super().__init__(trainable=trainable, name=name, dtype=dtype,
                     _scope=scope, _reuse=reuse)
    self.activation = activation
    self.use_bias = use_bias
    self.kernel_initializer = kernel_initializer
    self.bias_initializer = bias_initializer
    self.kernel_regularizer = kernel_regularizer
    self.bias_regularizer = bias_regularizer
    self.activity_regularizer = activity_regularizer
    self.kernel = self.mask = self.threshold = self.bias = None
    self.masked_kernel = None

  @property
  def variables(self):
    """The layer's variables in creation order."""
    return [v for v in self._creation_order() if v is not None]

  @property
  def weights(self):
    return self.variables

  @property
  def trainable_variables(self):
    return [self.kernel, self.bias] if self.trainable and self.built else []

  @property
  def trainable_weights(self):
    return [v for v in self.trainable_variables if v is not None]

  @property
  def non_trainable_variables(self):
    trainable = self.trainable_weights
    return [v for v in self.variables if all(v is not t for t in trainable)]

  def _creation_order(self):
    return [self.kernel, self.mask, self.threshold, self.bias]

  def _create_bias(self, units):
    if self.use_bias:
      self.bias = self._get_variable(
          'bias', shape=(units,), initializer=self.bias_initializer,
          regularizer=self.bias_regularizer)

  def __call__(self, inputs, *args, **kwargs):
    """Builds on first use, then applies the layer (TF1 `Layer.__call__`)."""
    scope = kwargs.pop('scope', None)
    if args or kwargs:
      raise TypeError(f'{type(self).__name__} takes only inputs (and scope), '
                      f'got extra arguments {args!r} {sorted(kwargs)!r}')
    inputs = tf.convert_to_tensor(inputs)
    self._infer_dtype(inputs)
    with self._in_scope(scope):
      if not self.built:
        self.build(inputs.shape)
      outputs = self.call(tf.cast(inputs, self._dtype))
      if self.activity_regularizer is not None:
        with tf.compat.v1.name_scope('ActivityRegularizer'):
          loss = self.activity_regularizer(outputs)
          batch = tf.cast(tf.shape(outputs)[0], loss.dtype)
          tf.compat.v1.add_to_collection(
              tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES, loss / batch)
    return outputs

  def apply(self, inputs, *args, **kwargs):
    """Alias of `__call__` (TF1 layers API)."""
    return self.__call__(inputs, *args, **kwargs)

  def _finish(self, outputs):
    if self.activation is not None:
      outputs = self.activation(outputs)
    return outputs


class _MaskedConv(_MaskedLayer):
  """N-D masked convolution (`rank` 1, 2 or 3), upstream's `_MaskedConv`."""

  def __init__(self, rank, filters, kernel_size, strides=1, padding='valid',
               data_format='channels_last', dilation_rate=1, activation=None,
               use_bias=True, kernel_initializer=None,
               bias_initializer=tf.compat.v1.zeros_initializer(),
               kernel_regularizer=None, bias_regularizer=None,
               activity_regularizer=None, trainable=True, name=None,
               **kwargs):
    super().__init__(activation, use_bias, kernel_initializer,
                     bias_initializer, kernel_regularizer, bias_regularizer,
                     activity_regularizer, trainable, name, **kwargs)
    if rank not in (1, 2, 3):
      raise ValueError(f'rank must be 1, 2 or 3, got {rank!r}')
    self.rank = rank
    self.filters = filters
    self.kernel_size = _normalize_tuple(kernel_size, rank, 'kernel_size')
    self.strides = _normalize_tuple(strides, rank, 'strides')
    self.padding = _normalize_padding(padding)
    self.data_format = _normalize_data_format(data_format)
    self.dilation_rate = _normalize_tuple(dilation_rate, rank, 'dilation_rate')
    if max(self.strides) > 1 and max(self.dilation_rate) > 1:
      raise ValueError(
          f'strides {self.strides} and dilation_rate {self.dilation_rate} '
          'cannot both exceed 1; set one of them to 1')

  def _channel_axis(self):
    return 1 if self.data_format == 'channels_first' else -1

  def _create_variables(self, input_shape):
    if input_shape.rank != self.rank + 2:
      raise ValueError(f'{type(self).__name__} expects inputs of rank '
                       f'{self.rank + 2}, got shape {input_shape}')
    in_channels = input_shape.dims[self._channel_axis()].value
    if in_channels is None:
      raise ValueError('The channel dimension of the inputs should be defined, '
                       f'got shape {input_shape}')
    kernel_shape = self.kernel_size + (in_channels, self.filters)
    self.mask = base.mask_variable(kernel_shape, self._dtype)
    self.kernel = self._get_variable(
        'kernel', shape=kernel_shape, initializer=self.kernel_initializer,
        regularizer=self.kernel_regularizer)
    extra = base.finish_masked_weight(self.kernel, self.mask)
    self.threshold = extra['threshold']
    self.masked_kernel = extra['masked_weight']
    self._create_bias(self.filters)

  def _creation_order(self):
    return [self.mask, self.kernel, self.threshold, self.bias]

  def call(self, inputs):
    """Convolves with the masked kernel, adds the bias, applies activation.

    channels_first is computed as transpose -> NHWC convolution -> transpose,
    because TF's CPU kernels only implement channels_last.
    """
    first = self.data_format == 'channels_first'
    if inputs.shape.rank != self.rank + 2:
      raise ValueError(f'{type(self).__name__} expects inputs of rank '
                       f'{self.rank + 2}, got shape {inputs.shape}')
    if first:
      inputs = tf.transpose(inputs, [0] + list(range(2, self.rank + 2)) + [1])
    outputs = tf.nn.convolution(
        inputs, self.masked_kernel, strides=self.strides,
        padding=self.padding.upper(), dilations=self.dilation_rate)
    if self.use_bias:
      outputs = tf.nn.bias_add(outputs, self.bias)
    if first:
      outputs = tf.transpose(outputs, [0, self.rank + 1] +
                             list(range(1, self.rank + 1)))
    return self._finish(outputs)

  def compute_output_shape(self, input_shape):
    """Static output shape for `input_shape` (batch, spatial, filters)."""
    shape = tf.TensorShape(input_shape).as_list()
    if len(shape) != self.rank + 2:
      raise ValueError(f'expected an input shape of rank {self.rank + 2}, '
                       f'got {shape}')
    first = self.data_format == 'channels_first'
    spatial = shape[2:] if first else shape[1:-1]
    lengths = [conv_output_length(n, k, self.padding, s, d)
               for n, k, s, d in zip(spatial, self.kernel_size, self.strides,
                                     self.dilation_rate)]
    if first:
      return tf.TensorShape([shape[0], self.filters] + lengths)
    return tf.TensorShape([shape[0]] + lengths + [self.filters])


class MaskedConv1D(_MaskedConv):
  """1-D masked convolution: inputs `[batch, width, channels]` (or NCW)."""

  _DEFAULT_NAME = 'masked_conv1d'

  def __init__(self, filters, kernel_size, strides=1, padding='valid',
               data_format='channels_last', dilation_rate=1, activation=None,
               use_bias=True, kernel_initializer=None,
               bias_initializer=tf.compat.v1.zeros_initializer(),
               kernel_regularizer=None, bias_regularizer=None,
               activity_regularizer=None, trainable=True, name=None,
               **kwargs):
    super().__init__(1, filters, kernel_size, strides, padding, data_format,
                     dilation_rate, activation, use_bias, kernel_initializer,
                     bias_initializer, kernel_regularizer, bias_regularizer,
                     activity_regularizer, trainable, name, **kwargs)


class MaskedConv2D(_MaskedConv):
  """2-D masked convolution: inputs `[batch, height, width, channels]`."""

  _DEFAULT_NAME = 'masked_conv2d'

  def __init__(self, filters, kernel_size, strides=(1, 1), padding='valid',
               data_format='channels_last', dilation_rate=(1, 1),
               activation=None, use_bias=True, kernel_initializer=None,
               bias_initializer=tf.compat.v1.zeros_initializer(),
               kernel_regularizer=None, bias_regularizer=None,
               activity_regularizer=None, trainable=True, name=None,
               **kwargs):
    super().__init__(2, filters, kernel_size, strides, padding, data_format,
                     dilation_rate, activation, use_bias, kernel_initializer,
                     bias_initializer, kernel_regularizer, bias_regularizer,
                     activity_regularizer, trainable, name, **kwargs)


class MaskedConv3D(_MaskedConv):
  """3-D masked convolution: inputs `[batch, depth, height, width, chans]`."""

  _DEFAULT_NAME = 'masked_conv3d'

  def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding='valid',
               data_format='channels_last', dilation_rate=(1, 1, 1),
               activation=None, use_bias=True, kernel_initializer=None,
               bias_initializer=tf.compat.v1.zeros_initializer(),
               kernel_regularizer=None, bias_regularizer=None,
               activity_regularizer=None, trainable=True, name=None,
               **kwargs):
    super().__init__(3, filters, kernel_size, strides, padding, data_format,
                     dilation_rate, activation, use_bias, kernel_initializer,
                     bias_initializer, kernel_regularizer, bias_regularizer,
                     activity_regularizer, trainable, name, **kwargs)


class MaskedFullyConnected(_MaskedLayer):
  """Masked dense layer: `outputs = activation(inputs . (mask * kernel) + b)`.

  Inputs of rank > 2 are contracted over their last axis (no flattening).
  """

  _DEFAULT_NAME = 'masked_fully_connected'

  def __init__(self, units, activation=None, use_bias=True,
               kernel_initializer=None,
               bias_initializer=tf.compat.v1.zeros_initializer(),
               kernel_regularizer=None, bias_regularizer=None,
               activity_regularizer=None, trainable=True, name=None,
               **kwargs):
    super().__init__(activation, use_bias, kernel_initializer,
                     bias_initializer, kernel_regularizer, bias_regularizer,
                     activity_regularizer, trainable, name, **kwargs)
    self.units = units

  def _create_variables(self, input_shape):
    if input_shape.rank is None or input_shape.rank < 2:
      raise ValueError('MaskedFullyConnected expects inputs of rank >= 2, '
                       f'got shape {input_shape}')
    in_units = input_shape.dims[-1].value
    if in_units is None:
      raise ValueError('The last dimension of the inputs should be defined, '
                       f'got shape {input_shape}')
    self.kernel = self._get_variable(
        'kernel', shape=[in_units, self.units],
        initializer=self.kernel_initializer,
        regularizer=self.kernel_regularizer)
    self.mask = base.mask_variable([in_units, self.units], self._dtype)
    extra = base.finish_masked_weight(self.kernel, self.mask)
    self.threshold = extra['threshold']
    self.masked_kernel = extra['masked_weight']
    self._create_bias(self.units)

  def call(self, inputs):
    """Contracts the last input axis with the masked kernel, then bias/act."""
    if inputs.shape.rank is not None and inputs.shape.rank > 2:
      outputs = tf.tensordot(inputs, self.masked_kernel, [[-1], [0]])
      outputs.set_shape(inputs.shape[:-1].concatenate([self.units]))
    else:
      outputs = tf.matmul(inputs, self.masked_kernel)
    if self.use_bias:
      outputs = tf.nn.bias_add(outputs, self.bias)
    return self._finish(outputs)

  def compute_output_shape(self, input_shape):
    """`input_shape[:-1] + [units]`; rank >= 2 with a defined last dim."""
    input_shape = tf.TensorShape(input_shape)
    if input_shape.rank is None or input_shape.rank < 2:
      raise ValueError(f'input shape must have rank >= 2, got {input_shape}')
    if input_shape.dims[-1].value is None:
      raise ValueError('The innermost dimension of input_shape must be '
                       f'defined, but saw: {input_shape}')
    return input_shape[:-1].concatenate([self.units])
