"""Tests for the slim-style masked layers in layers/layers.py."""
import ast
import importlib
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python.layers import layers
from tests import reference_layers as ref

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAYER_TEST_FILES = ['tests/core_layers_test.py', 'tests/layers_test.py',
                     'tests/rnn_cells_test.py']
_HEIGHT, _WIDTH = 7, 9


def _collection_shapes(name):
  return [t.shape.as_list() for t in tf.compat.v1.get_collection(name)]


@pytest.mark.parametrize('shape', [(_HEIGHT, _WIDTH, 3),
                                   (8, 8, _HEIGHT, _WIDTH, 3)],
                         ids=['rank3', 'rank5'])
def test_masked_conv2d_rejects_other_ranks(shape):
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match=f'rank {len(shape)}'):
      layers.masked_conv2d(tf.ones(shape), 32, 3)


def test_masked_convolution_rejects_rank_2():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='rank 2'):
      layers.masked_convolution(tf.ones([3, 4]), 2, 3)


def test_single_conv_mask_added():
  with tf.Graph().as_default():
    layers.masked_conv2d(tf.ones([8, _HEIGHT, _WIDTH, 8]), 32, 3)
    assert _collection_shapes(graph_keys.MASK_COLLECTION) == [[3, 3, 8, 32]]
    assert _collection_shapes(graph_keys.MASKED_WEIGHT_COLLECTION) == [
        [3, 3, 8, 32]]


def test_multiple_conv_masks_added():
  with tf.Graph().as_default():
    net = tf.ones([8, _HEIGHT, _WIDTH, 4])
    for ix in range(5):
      net = layers.masked_conv2d(net, 4 + 7 * (ix + 1), 3)
    want = [[3, 3, 4 + 7 * ix, 4 + 7 * (ix + 1)] for ix in range(5)]
    assert _collection_shapes(graph_keys.MASK_COLLECTION) == want
    assert _collection_shapes(graph_keys.MASKED_WEIGHT_COLLECTION) == want


def test_single_fc_mask_added():
  with tf.Graph().as_default():
    layers.masked_fully_connected(tf.ones([5, 8]), 32)
    assert _collection_shapes(graph_keys.MASK_COLLECTION) == [[8, 32]]
    assert _collection_shapes(graph_keys.MASKED_WEIGHT_COLLECTION) == [[8, 32]]


def test_multiple_fc_masks_added():
  with tf.Graph().as_default():
    net = tf.ones([8, 4])
    for ix in range(5):
      net = layers.masked_fully_connected(net, 4 + 7 * (ix + 1))
    want = [[4 + 7 * ix, 4 + 7 * (ix + 1)] for ix in range(5)]
    assert _collection_shapes(graph_keys.MASK_COLLECTION) == want


@pytest.mark.parametrize('shape,data_format,mask_shape', [
    ((2, 9, 3), None, [3, 3, 5]),
    ((2, 3, 9), 'NCW', [3, 3, 5]),
    ((2, 4, 5, 6, 3), 'NDHWC', [3, 3, 3, 3, 5]),
    ((2, 3, 4, 5, 6), 'NCDHW', [3, 3, 3, 3, 5]),
], ids=['nwc', 'ncw', 'ndhwc', 'ncdhw'])
def test_masked_convolution_rank3_and_rank5(shape, data_format, mask_shape):
  rng = np.random.default_rng(0)
  x = rng.standard_normal(shape).astype(np.float32)
  first = data_format is not None and data_format.startswith('NC')
  with tf.Graph().as_default():
    outputs = layers.masked_convolution(tf.constant(x), 5, 3,
                                        data_format=data_format,
                                        activation_fn=None)
    assert _collection_shapes(graph_keys.MASK_COLLECTION) == [mask_shape]
    weights = tf.compat.v1.get_collection(graph_keys.WEIGHT_COLLECTION)[0]
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      got, kernel = sess.run([outputs, weights])
  channels_last = np.moveaxis(x, 1, -1) if first else x
  want = ref.conv_nd(channels_last, kernel, (1,) * (len(shape) - 2), 'SAME',
                     (1,) * (len(shape) - 2))
  np.testing.assert_allclose(got, np.moveaxis(want, -1, 1) if first else want,
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('data_format,match', [
    ('NHCW', 'Invalid data_format'), ('NCHW', 'Unsupported data format')],
                         ids=['invalid', 'rank_mismatch'])
def test_bad_data_format_raises(data_format, match):
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match=match):
      layers.masked_convolution(tf.ones([2, 5, 3]), 2, 3,
                                data_format=data_format)


def test_variable_names_scopes_and_model_variables():
  with tf.Graph().as_default():
    layers.masked_conv2d(tf.ones([1, 5, 5, 2]), 3, 3)
    layers.masked_conv2d(tf.ones([1, 5, 5, 2]), 3, 3)
    layers.masked_fully_connected(tf.ones([1, 4]), 2)
    names = [v.op.name for v in tf.compat.v1.global_variables()]
    model = [v.op.name for v in tf.compat.v1.model_variables()]
    trainable = [v.op.name for v in tf.compat.v1.trainable_variables()]
    masked = [t.op.name for t in tf.compat.v1.get_collection(
        graph_keys.MASKED_WEIGHT_COLLECTION)]
  expected = [f'{scope}/{name}' for scope in ('Conv', 'Conv_1')
              for name in ('mask', 'weights', 'threshold', 'biases')]
  expected += [f'fully_connected/{name}'
               for name in ('weights', 'mask', 'threshold', 'biases')]
  assert names == expected and model == expected
  assert trainable == [n for n in expected
                       if n.endswith('weights') or n.endswith('biases')]
  assert masked == ['Conv/weights/masked_weight',
                    'Conv_1/weights/masked_weight',
                    'fully_connected/weights/masked_weight']


def test_reuse_shares_variables_and_registers_once():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
  with tf.Graph().as_default():
    first = layers.masked_conv2d(tf.constant(x), 4, 3, scope='conv1')
    second = layers.masked_conv2d(tf.constant(x), 4, 3, scope='conv1',
                                  reuse=True)
    fc1 = layers.masked_fully_connected(tf.ones([2, 3]), 2, scope='fc')
    fc2 = layers.masked_fully_connected(tf.ones([2, 3]), 2, scope='fc',
                                        reuse=True)
    assert len(tf.compat.v1.global_variables()) == 8
    for name in (graph_keys.MASK_COLLECTION, graph_keys.THRESHOLD_COLLECTION,
                 graph_keys.WEIGHT_COLLECTION,
                 graph_keys.MASKED_WEIGHT_COLLECTION):
      assert len(tf.compat.v1.get_collection(name)) == 2, name
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      a, b, c, d = sess.run([first, second, fc1, fc2])
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(c, d)


def test_collections_normalizer_and_outputs():
  rng = np.random.default_rng(2)
  x = rng.standard_normal((3, 4)).astype(np.float32)
  with tf.Graph().as_default():
    outputs = layers.masked_fully_connected(
        tf.constant(x), 5, normalizer_fn=lambda t, scale: scale * t,
        normalizer_params={'scale': 2.0}, activation_fn=tf.nn.relu,
        variables_collections={'weights': ['my_weights']},
        outputs_collections='my_outputs', scope='dense')
    conv = layers.masked_conv2d(tf.ones([1, 4, 4, 2]), 2, 1,
                                variables_collections=['all_vars'])
    assert not any(v.op.name.endswith('biases')
                   for v in tf.compat.v1.global_variables()
                   if v.op.name.startswith('dense'))
    assert [v.op.name for v in tf.compat.v1.get_collection('my_weights')] == [
        'dense/weights']
    assert [v.op.name for v in tf.compat.v1.get_collection('all_vars')] == [
        'Conv/weights', 'Conv/biases']
    assert tf.compat.v1.get_collection('my_outputs') == [outputs]
    assert outputs.aliases == ['dense'] and conv is not None
    weights = tf.compat.v1.get_collection('my_weights')[0]
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      got, kernel = sess.run([outputs, weights])
  np.testing.assert_allclose(got, np.maximum(2.0 * ref.dense(x, kernel), 0.0),
                             rtol=1e-5, atol=1e-6)


def test_num_outputs_must_be_int():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='num_outputs should be int'):
      layers.masked_fully_connected(tf.ones([2, 3]), 2.0)


@pytest.mark.parametrize('dtype', [tf.float16, tf.float64],
                         ids=['float16', 'float64'])
def test_wrappers_follow_input_dtype(dtype):
  with tf.Graph().as_default():
    conv = layers.masked_conv2d(tf.ones([1, 4, 4, 2], dtype), 2, 3)
    fc = layers.masked_fully_connected(tf.ones([1, 3], dtype), 2)
    assert conv.dtype == dtype and fc.dtype == dtype
    assert {v.dtype.base_dtype for v in tf.compat.v1.global_variables()} == {
        dtype}
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      assert np.all(np.isfinite(sess.run(conv)))


def test_regularizers_and_trainable_false():
  with tf.Graph().as_default():
    layers.masked_conv2d(tf.ones([1, 4, 4, 2]), 2, 3,
                         weights_regularizer=tf.nn.l2_loss,
                         biases_regularizer=tf.nn.l2_loss, trainable=False)
    layers.masked_fully_connected(tf.ones([1, 3]), 2,
                                  weights_regularizer=tf.nn.l2_loss)
    losses = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES)
    assert len(losses) == 3
    assert [v.op.name for v in tf.compat.v1.trainable_variables()] == [
        'fully_connected/weights', 'fully_connected/biases']


def _run_python(code, env=None):
  result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          cwd=_REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def test_arg_scope_decorator_used_when_tf_slim_importable(monkeypatch):
  """A stand-in `tf_slim.ops.arg_scope` shows its decorator is applied."""
  fake = types.ModuleType('tf_slim.ops.arg_scope')

  def add_arg_scope(func):
    func.decorated_by_fake_slim = True
    return func

  fake.add_arg_scope = add_arg_scope
  for name in ('tf_slim', 'tf_slim.ops'):
    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
  monkeypatch.setitem(sys.modules, 'tf_slim.ops.arg_scope', fake)
  try:
    reloaded = importlib.reload(layers)
    decorated = sorted(
        name for name in ('masked_convolution', 'masked_conv2d',
                          'masked_fully_connected')
        if getattr(getattr(reloaded, name), 'decorated_by_fake_slim', False))
  finally:
    monkeypatch.undo()
    importlib.reload(layers)
  assert decorated == ['masked_conv2d', 'masked_convolution',
                       'masked_fully_connected']
  assert not hasattr(layers.masked_convolution, 'decorated_by_fake_slim')


def test_library_imports_no_keras():
  """`import tensorflow` itself loads Keras 3; our modules add no Keras module.

  Imports the layer modules and builds every layer and cell (static_rnn and
  dynamic_rnn included); the set of loaded module names containing 'keras'
  must not grow, and tf_keras must never be loaded.
  """
  out = _run_python("""
      import sys
      import tensorflow as tf
      before = {m for m in sys.modules if 'keras' in m}
      from model_pruning.python.layers import core_layers, layers, rnn_cells
      with tf.Graph().as_default():
        layers.masked_convolution(tf.ones([1, 5, 5, 2]), 2, 3)
        layers.masked_fully_connected(tf.ones([1, 3]), 2)
        core_layers.MaskedConv3D(2, 1)(tf.ones([1, 2, 2, 2, 1]))
        cell = rnn_cells.MultiRNNCell([rnn_cells.MaskedBasicLSTMCell(2),
                                       rnn_cells.MaskedLSTMCell(2)])
        tf.compat.v1.nn.static_rnn(cell, [tf.ones([1, 2])], dtype=tf.float32)
        with tf.compat.v1.variable_scope('dyn'):
          tf.compat.v1.nn.dynamic_rnn(cell, tf.ones([1, 3, 2]),
                                      dtype=tf.float32)
      added = sorted({m for m in sys.modules if 'keras' in m} - before)
      print('ADDED', added)
      print('TF_KERAS', 'tf_keras' in sys.modules)
      """)
  lines = out.strip().splitlines()
  assert 'ADDED []' in lines, out
  assert 'TF_KERAS False' in lines, out


def _dotted_names(tree):
  """Imported module names and dotted attribute chains (a.b.c) in `tree`."""
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      yield node.module or ''
    elif isinstance(node, ast.Attribute):
      parts = []
      while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
      if isinstance(node, ast.Name):
        yield '.'.join([node.id] + parts[::-1])


def test_library_code_uses_no_keras_or_tf_layers():
  layer_dir = os.path.join(_REPO, 'model_pruning', 'python', 'layers')
  checked = 0
  for name in sorted(os.listdir(layer_dir)):
    if name.endswith('.py'):
      with open(os.path.join(layer_dir, name), encoding='utf-8') as f:
        tree = ast.parse(f.read())
      for dotted in _dotted_names(tree):
        checked += 1
        assert 'keras' not in dotted, (name, dotted)
        assert not dotted.startswith(('tf.compat.v1.layers',
                                      'tf.compat.v1.nn.rnn_cell')), (name,
                                                                     dotted)
  assert checked > 100


@pytest.mark.slow
def test_layer_tests_pass_with_legacy_keras():
  """The three layer test files pass again under TF_USE_LEGACY_KERAS=1."""
  pytest.importorskip('tf_keras', reason='tf_keras is needed to run the layer '
                      'tests under TF_USE_LEGACY_KERAS=1')
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
  result = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
       '-k', 'not legacy_keras and not no_keras']
      + _LAYER_TEST_FILES, cwd=_REPO, env=env, capture_output=True, text=True,
      timeout=600, check=False)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
  assert ' passed' in result.stdout and 'failed' not in result.stdout
