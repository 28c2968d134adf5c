"""Tests for model_pruning.python.layers.core_layers (numpy oracles)."""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python import pruning
from model_pruning.python.layers import core_layers
from tests import reference_layers as ref

_CONV_CASES = [
    # (layer class, input spatial shape, kwargs)
    (core_layers.MaskedConv1D, (9,), dict(kernel_size=3)),
    (core_layers.MaskedConv1D, (9,), dict(kernel_size=3, strides=2,
                                          padding='same')),
    (core_layers.MaskedConv1D, (9,), dict(kernel_size=2, dilation_rate=2,
                                          data_format='channels_first')),
    (core_layers.MaskedConv2D, (7, 9), dict(kernel_size=3, padding='same')),
    (core_layers.MaskedConv2D, (7, 9), dict(kernel_size=(3, 2), strides=(2, 1),
                                            padding='VALID')),
    (core_layers.MaskedConv2D, (7, 9), dict(kernel_size=3, dilation_rate=(2, 1),
                                            padding='same')),
    (core_layers.MaskedConv2D, (7, 9), dict(kernel_size=3, strides=2,
                                            data_format='channels_first',
                                            padding='same')),
    (core_layers.MaskedConv3D, (4, 5, 6), dict(kernel_size=2)),
    (core_layers.MaskedConv3D, (4, 5, 6), dict(kernel_size=3, padding='same',
                                               data_format='channels_first')),
]
_CONV_IDS = ['1d', '1d_stride_same', '1d_dilated_nc', '2d_same',
             '2d_rect_stride_valid', '2d_dilated', '2d_stride_nchw', '3d',
             '3d_same_ncdhw']


def _conv_input(rng, spatial, channels_first, in_channels=3, batch=2):
  x = rng.standard_normal((batch,) + spatial + (in_channels,))
  return np.moveaxis(x, -1, 1) if channels_first else x


def _randomize(sess, layer, rng, mask_density=0.6):
  """Sets a random 0/1 mask and a random bias; returns (kernel, mask, bias)."""
  shape = layer.mask.shape.as_list()
  mask = (rng.random(shape) < mask_density).astype(layer.dtype.as_numpy_dtype)
  layer.mask.load(mask, sess)
  bias = None
  if layer.bias is not None:
    bias = rng.standard_normal(layer.bias.shape.as_list())
    layer.bias.load(bias.astype(layer.dtype.as_numpy_dtype), sess)
  return sess.run(layer.kernel), mask, bias


def _conv_oracle(layer, x, kernel, mask, bias):
  first = layer.data_format == 'channels_first'
  if first:
    x = np.moveaxis(x, 1, -1)
  y = ref.conv_nd(x.astype(np.float64), kernel * mask, layer.strides,
                  layer.padding.upper(), layer.dilation_rate)
  if bias is not None:
    y = y + bias
  return np.moveaxis(y, -1, 1) if first else y


@pytest.mark.parametrize('cls,spatial,kwargs', _CONV_CASES, ids=_CONV_IDS)
def test_conv_output_matches_numpy(cls, spatial, kwargs):
  rng = np.random.default_rng(0)
  first = kwargs.get('data_format') == 'channels_first'
  x = _conv_input(rng, spatial, first).astype(np.float32)
  with tf.Graph().as_default():
    layer = cls(filters=4, **kwargs)
    outputs = layer(tf.constant(x))
    assert outputs.shape == layer.compute_output_shape(x.shape)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      kernel, mask, bias = _randomize(sess, layer, rng)
      got = sess.run(outputs)
  np.testing.assert_allclose(got, _conv_oracle(layer, x, kernel, mask, bias),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('shape', [(5, 8), (2, 3, 8)], ids=['rank2', 'rank3'])
def test_fully_connected_output_matches_numpy(shape):
  rng = np.random.default_rng(1)
  x = rng.standard_normal(shape).astype(np.float32)
  with tf.Graph().as_default():
    layer = core_layers.MaskedFullyConnected(units=6, activation=tf.nn.relu)
    outputs = layer(tf.constant(x))
    assert outputs.shape == layer.compute_output_shape(shape)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      kernel, mask, bias = _randomize(sess, layer, rng)
      got = sess.run(outputs)
  want = np.maximum(ref.dense(x, kernel * mask, bias), 0.0)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dtype,tol', [(tf.float16, 2e-2), (tf.float64, 1e-12)],
                         ids=['float16', 'float64'])
def test_layers_in_other_dtypes(dtype, tol):
  rng = np.random.default_rng(2)
  np_dtype = dtype.as_numpy_dtype
  x_conv = rng.standard_normal((2, 5, 5, 3)).astype(np_dtype)
  x_fc = rng.standard_normal((4, 3)).astype(np_dtype)
  with tf.Graph().as_default():
    conv = core_layers.MaskedConv2D(filters=2, kernel_size=3, padding='same')
    fc = core_layers.MaskedFullyConnected(units=2)
    conv_out, fc_out = conv(tf.constant(x_conv)), fc(tf.constant(x_fc))
    for layer in (conv, fc):
      assert {v.dtype.base_dtype for v in layer.variables} == {dtype}
    assert conv_out.dtype == dtype and fc_out.dtype == dtype
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      conv_w = _randomize(sess, conv, rng)
      fc_w = _randomize(sess, fc, rng)
      got_conv, got_fc = sess.run([conv_out, fc_out])
  scale = tol * 10
  np.testing.assert_allclose(got_conv, _conv_oracle(conv, x_conv, *conv_w),
                             rtol=scale, atol=scale)
  np.testing.assert_allclose(
      got_fc, ref.dense(x_fc, fc_w[0] * fc_w[1], fc_w[2]), rtol=scale,
      atol=scale)


def test_variable_order_names_and_masked_op_name():
  with tf.Graph().as_default():
    core_layers.MaskedConv2D(filters=4, kernel_size=3)(tf.zeros([1, 5, 5, 2]))
    core_layers.MaskedFullyConnected(units=3)(tf.zeros([1, 4]))
    core_layers.MaskedConv2D(filters=4, kernel_size=3)(tf.zeros([1, 5, 5, 2]))
    names = [v.op.name for v in tf.compat.v1.global_variables()]
    masked = [t.op.name for t in tf.compat.v1.get_collection(
        graph_keys.MASKED_WEIGHT_COLLECTION)]
  assert names == [
      'masked_conv2d/mask', 'masked_conv2d/kernel', 'masked_conv2d/threshold',
      'masked_conv2d/bias',
      'masked_fully_connected/kernel', 'masked_fully_connected/mask',
      'masked_fully_connected/threshold', 'masked_fully_connected/bias',
      'masked_conv2d_1/mask', 'masked_conv2d_1/kernel',
      'masked_conv2d_1/threshold', 'masked_conv2d_1/bias']
  assert masked == ['masked_conv2d/weights/masked_weight',
                    'masked_fully_connected/weights/masked_weight',
                    'masked_conv2d_1/weights/masked_weight']


def test_collections_registered_once_and_aligned():
  with tf.Graph().as_default():
    layer = core_layers.MaskedConv2D(filters=4, kernel_size=3, name='conv')
    layer(tf.zeros([1, 5, 5, 2]))
    layer.apply(tf.ones([3, 5, 5, 2]))
    with tf.compat.v1.variable_scope('shared'):
      first = core_layers.MaskedFullyConnected(units=3, name='fc')
      first(tf.zeros([1, 4]))
    with tf.compat.v1.variable_scope('shared', reuse=True):
      second = core_layers.MaskedFullyConnected(units=3, name='fc',
                                                _reuse=True)
      second(tf.zeros([1, 4]))
    assert second.kernel is first.kernel and second.mask is first.mask
    masks = tf.compat.v1.get_collection(graph_keys.MASK_COLLECTION)
    kernels = tf.compat.v1.get_collection(graph_keys.WEIGHT_COLLECTION)
    thresholds = tf.compat.v1.get_collection(graph_keys.THRESHOLD_COLLECTION)
    masked = tf.compat.v1.get_collection(graph_keys.MASKED_WEIGHT_COLLECTION)
  assert [m.op.name for m in masks] == ['conv/mask', 'shared/fc/mask']
  assert [k.op.name for k in kernels] == ['conv/kernel', 'shared/fc/kernel']
  assert [t.op.name for t in thresholds] == ['conv/threshold',
                                             'shared/fc/threshold']
  assert masked[0] is layer.masked_kernel and masked[1] is first.masked_kernel


def test_constants_reexported():
  assert core_layers.MASK_COLLECTION == 'masks'
  assert core_layers.THRESHOLD_COLLECTION == 'thresholds'
  assert core_layers.MASKED_WEIGHT_COLLECTION == 'masked_weights'
  assert core_layers.WEIGHT_COLLECTION == 'kernel'
  assert core_layers.MASKED_WEIGHT_NAME == 'weights/masked_weight'


def test_regularizers_go_to_regularization_losses():
  x = np.arange(12, dtype=np.float32).reshape(3, 4) / 10.0
  with tf.Graph().as_default():
    layer = core_layers.MaskedFullyConnected(
        units=2, kernel_regularizer=lambda w: 2.0 * tf.reduce_sum(w),
        bias_regularizer=lambda b: 3.0 * tf.reduce_sum(b),
        activity_regularizer=tf.reduce_sum,
        bias_initializer=tf.compat.v1.ones_initializer())
    outputs = layer(tf.constant(x))
    losses = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
    assert len(losses) == 3
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      values, kernel, out = sess.run([losses, layer.kernel, outputs])
  # Activity loss is divided by the batch size, as TF1 layers do.
  np.testing.assert_allclose(
      sorted(values), sorted([2.0 * kernel.sum(), 3.0 * 2, out.sum() / 3]),
      rtol=1e-5)


def test_trainable_false_keeps_variables_out_of_trainables():
  with tf.Graph().as_default():
    conv = core_layers.MaskedConv2D(filters=2, kernel_size=1, trainable=False)
    conv(tf.zeros([1, 3, 3, 2]))
    fc = core_layers.MaskedFullyConnected(units=2, trainable=False)
    fc(tf.zeros([1, 2]))
    assert not tf.compat.v1.trainable_variables()
    assert conv.trainable_weights == [] and len(conv.variables) == 4
  with tf.Graph().as_default():
    fc = core_layers.MaskedFullyConnected(units=2)
    fc(tf.zeros([1, 2]))
    trainable = tf.compat.v1.trainable_variables()
    assert [v.op.name for v in trainable] == ['masked_fully_connected/kernel',
                                              'masked_fully_connected/bias']


@pytest.mark.parametrize('make,shape,match', [
    (lambda: core_layers.MaskedConv2D(2, 3), [2, 5, 5], 'rank 4'),
    (lambda: core_layers.MaskedConv1D(2, 3), [2, 5, 5, 3], 'rank 3'),
    (lambda: core_layers.MaskedConv3D(2, 3), [2, 5, 5, 3], 'rank 5'),
    (lambda: core_layers.MaskedConv2D(2, 3), [2, 5, 5, None], 'channel'),
    (lambda: core_layers.MaskedFullyConnected(2), [4], 'rank >= 2'),
    (lambda: core_layers.MaskedFullyConnected(2), [4, None], 'last dimension'),
], ids=['conv2d_rank3', 'conv1d_rank4', 'conv3d_rank4', 'conv_channel_none',
        'fc_rank1', 'fc_last_none'])
def test_bad_input_shapes_raise(make, shape, match):
  with tf.Graph().as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, shape)
    with pytest.raises(ValueError, match=match):
      make()(inputs)


@pytest.mark.parametrize('kwargs,match', [
    (dict(padding='causal'), 'padding'),
    (dict(data_format='NHWC'), 'data_format'),
    (dict(strides=2, dilation_rate=2), 'dilation_rate'),
    (dict(kernel_size=(3, 3, 3)), 'kernel_size'),
], ids=['padding', 'data_format', 'stride_and_dilation', 'kernel_size_len'])
def test_bad_constructor_arguments_raise(kwargs, match):
  args = dict(filters=2, kernel_size=3)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    core_layers.MaskedConv2D(**args)


def test_compute_output_shape_formula():
  layer = core_layers.MaskedConv2D(filters=5, kernel_size=3, strides=2)
  # valid: ceil((n - 3 + 1) / 2) -> 7 -> 3, 10 -> 4; unknown stays unknown.
  assert layer.compute_output_shape([None, 7, 10, 3]).as_list() == [
      None, 3, 4, 5]
  fc = core_layers.MaskedFullyConnected(units=4)
  assert fc.compute_output_shape([2, 3, 6]).as_list() == [2, 3, 4]
  with pytest.raises(ValueError, match='innermost'):
    fc.compute_output_shape([2, None])


def test_pruning_update_changes_outputs_as_the_mask_says():
  rng = np.random.default_rng(3)
  x_conv = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
  x_fc = rng.standard_normal((3, 20)).astype(np.float32)
  with tf.Graph().as_default():
    conv = core_layers.MaskedConv2D(filters=8, kernel_size=3, padding='same')
    fc = core_layers.MaskedFullyConnected(units=10)
    outputs = [conv(tf.constant(x_conv)), fc(tf.constant(x_fc))]
    tf.compat.v1.train.get_or_create_global_step()
    spec = pruning.get_pruning_hparams().parse('threshold_decay=0.0')
    update = pruning.Pruning(spec, sparsity=tf.constant(0.9)).mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      before = sess.run(outputs)
      sess.run(update)
      after = sess.run(outputs)
      weights = sess.run([(l.kernel, l.mask, l.bias) for l in (conv, fc)])
  (c_kernel, c_mask, c_bias), (f_kernel, f_mask, f_bias) = weights
  for kernel, mask in ((c_kernel, c_mask), (f_kernel, f_mask)):
    assert 0.85 <= 1.0 - mask.mean() <= 0.95
    # Magnitude pruning: every kept weight is at least as large as any pruned.
    assert np.abs(kernel[mask == 1]).min() >= np.abs(kernel[mask == 0]).max()
  assert not np.allclose(before[0], after[0])
  np.testing.assert_allclose(
      after[0], ref.conv_nd(x_conv, c_kernel * c_mask, (1, 1), 'SAME', (1, 1))
      + c_bias, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(after[1], ref.dense(x_fc, f_kernel * f_mask,
                                                 f_bias), rtol=1e-5, atol=1e-5)
