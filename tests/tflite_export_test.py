"""Tests of tflite_export: sparse TFLite from a stripped GraphDef.

The model is one 512x512 fully connected layer pruned to 90% with
`apply_mask`, frozen and stripped by strip_pruning_vars_lib: big enough for
TFLite's sparse encoding to pay off. Outputs are checked against a float64
numpy oracle within derived rounding bounds (tests/reference_tflite.py):
TFLite's kernels add in another order than TensorFlow's, so float32 results
are close, not bit-identical.
"""
import gzip
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import tflite_export
from model_pruning.python import weight_readers
from tests import reference
from tests import reference_tflite as ref

_SIZE = 512
_SPARSITY = 0.9
_BATCH = 4
_NO_DELEGATES = (
    tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _weights():
  rng = np.random.RandomState(0)
  weights = rng.randn(_SIZE, _SIZE).astype(np.float32)
  bias = rng.randn(_SIZE).astype(np.float32)
  return weights, reference.magnitude_mask(weights, _SPARSITY, 'exact')[1], bias


def _masked_fc(weights, bias, input_shape=(None, _SIZE)):
  """input (placeholder) -> x @ apply_mask(W) + b -> output; returns mask."""
  inputs = tf.compat.v1.placeholder(tf.float32, input_shape, name='input')
  with tf.compat.v1.variable_scope('fc'):
    kernel = tf.compat.v1.get_variable(
        'weights', initializer=tf.constant(weights))
    masked = pruning.apply_mask(kernel, scope='fc')
  tf.add(tf.matmul(inputs, masked), tf.constant(bias), name='output')
  return pruning.get_masks()[0]


def _stripped_graph_def(input_shape=(None, _SIZE)):
  weights, mask, bias = _weights()
  with tf.Graph().as_default() as graph:
    mask_variable = _masked_fc(weights, bias, input_shape)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(mask_variable.assign(mask))
      frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
          sess, graph.as_graph_def(), ['output'])
  stripped, _ = strip_pruning_vars_lib.fold_masked_weights(frozen, ['output'])
  return stripped


@pytest.fixture(scope='module')
def stripped():
  return _stripped_graph_def()


@pytest.fixture(scope='module')
def inputs():
  return np.random.RandomState(1).randn(_BATCH, _SIZE).astype(np.float32)


def _run_graph_def(graph_def, x):
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='')
    with tf.compat.v1.Session(graph=graph) as sess:
      return sess.run('output:0', {'input:0': x})


def _run_tflite(model_content, x, no_delegates=False):
  """Runs the model on batch `x` (resizing its batch dimension)."""
  kwargs = {'experimental_op_resolver_type': _NO_DELEGATES} if (
      no_delegates) else {}
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # tf.lite.Interpreter's deprecation.
    interpreter = tf.lite.Interpreter(model_content=model_content, **kwargs)
  [input_detail] = interpreter.get_input_details()
  interpreter.resize_tensor_input(input_detail['index'], list(x.shape))
  interpreter.allocate_tensors()
  interpreter.set_tensor(input_detail['index'], x)
  interpreter.invoke()
  return interpreter.get_tensor(interpreter.get_output_details()[0]['index'])


def _export(graph_def, tmp_path, **options):
  path = str(tmp_path / 'model.tflite')
  sizes = tflite_export.export_stripped_graph(graph_def, ['output'], path,
                                              **options)
  with open(path, 'rb') as f:
    return sizes, f.read()


@pytest.fixture(scope='module')
def exported(stripped, tmp_path_factory):
  """quantization -> (TfliteSizes, written bytes, path): one export each."""
  result = {}
  for quantization in tflite_export.QUANTIZATIONS:
    directory = tmp_path_factory.mktemp(quantization)
    sizes, model = _export(stripped, directory, quantization=quantization)
    result[quantization] = (sizes, model, str(directory / 'model.tflite'))
  return result


def _oracle(x):
  weights, mask, bias = _weights()
  return weights * mask, bias, ref.fc_exact(x, weights * mask, bias)


# ---- float32: outputs and sizes ------------------------------------------


def test_float32_matches_graph_def_within_rounding(stripped, inputs,
                                                   exported):
  sizes, model, _ = exported['none']
  weights, bias, exact = _oracle(inputs)
  bound = ref.float32_bound(inputs, weights, bias)
  from_tflite = _run_tflite(model, inputs)
  from_graph = _run_graph_def(stripped, inputs)
  assert sizes.warning is None
  assert np.all(np.abs(from_tflite - exact) <= bound)
  assert np.all(np.abs(from_graph - exact) <= bound)
  # Both are within the bound of the exact result, so of each other by 2x.
  assert np.all(np.abs(from_tflite - from_graph) <= 2 * bound)


def test_sparse_tflite_is_smaller_than_dense(exported):
  sizes, model, _ = exported['none']
  dense_weight_bytes = _SIZE * _SIZE * 4
  nonzero_bytes = round((1 - _SPARSITY) * _SIZE * _SIZE) * 4
  assert sizes.dense_raw > dense_weight_bytes
  # Sparse: the 10% non-zero values plus one index per value (at most 4
  # bytes each) and the row pointers, far below the dense kernel.
  assert nonzero_bytes < sizes.sparse_raw < 2 * nonzero_bytes + 4 * _SIZE * 4
  assert sizes.sparse_gzip < sizes.dense_gzip
  assert sizes.sparse_raw == len(model) and sizes.quantization == 'none'


def test_pruned_kernel_is_stored_sparse_encoded(exported):
  _, _, path = exported['none']
  [kernel] = [r for r in weight_readers.read_weights(path)
              if len(r.shape) == 2]
  nonzeros = np.count_nonzero(_weights()[1])
  assert kernel.note == 'sparse-encoded, %d stored values' % nonzeros


@pytest.mark.parametrize('quantization', tflite_export.QUANTIZATIONS,
                         ids=list(tflite_export.QUANTIZATIONS))
def test_sparse_model_computes_exactly_what_the_dense_one_does(
    stripped, inputs, exported, quantization):
  # The sparse encoding is storage only: TFLite densifies the kernel when
  # the model is prepared, so with the same kernels the outputs are equal
  # bit for bit (both differ from TensorFlow's by rounding, tested above).
  _, sparse, _ = exported[quantization]
  dense = tflite_export.convert(stripped, ['output'], sparse=False,
                                quantization=quantization)
  np.testing.assert_array_equal(
      _run_tflite(sparse, inputs, no_delegates=True),
      _run_tflite(dense, inputs, no_delegates=True))


def test_dense_conversion_is_not_sparse_encoded(stripped, tmp_path):
  path = tmp_path / 'dense.tflite'
  path.write_bytes(tflite_export.convert(stripped, ['output'], sparse=False))
  [kernel] = [r for r in weight_readers.read_weights(str(path))
              if len(r.shape) == 2]
  assert kernel.array is not None
  np.testing.assert_array_equal(kernel.array.T, np.prod(_weights()[:2],
                                                        axis=0))


# ---- float16 and int8 ------------------------------------------------------


@pytest.mark.parametrize('quantization, bound_fn', [
    ('float16', ref.float16_bound),
    ('int8', ref.int8_dynamic_range_bound),
], ids=['float16', 'int8_dynamic_range'])
def test_quantized_model_is_valid_and_close(inputs, exported, quantization,
                                            bound_fn):
  sizes, model, _ = exported[quantization]
  weights, bias, exact = _oracle(inputs)
  # TFLite's default XNNPACK delegate cannot prepare some sparse hybrid
  # kernels; the export says so and the model runs without delegates.
  outputs = _run_tflite(model, inputs, no_delegates=sizes.warning is not None)
  assert np.all(np.abs(outputs - exact) <= bound_fn(inputs, weights, bias))
  assert sizes.quantization == quantization
  assert sizes.sparse_raw < sizes.dense_raw


def test_quantized_models_are_smaller_than_float32(exported):
  raw = {q: sizes for q, (sizes, _, _) in exported.items()}
  assert raw['int8'].dense_raw < raw['float16'].dense_raw < (
      raw['none'].dense_raw)
  assert raw['float16'].sparse_raw < raw['none'].sparse_raw


def test_int8_warning_names_the_workaround(exported):
  sizes, _, _ = exported['int8']
  if sizes.warning is not None:
    assert 'BUILTIN_WITHOUT_DEFAULT_DELEGATES' in sizes.warning
    assert 'WARNING: ' + sizes.warning in tflite_export.format_sizes(sizes)
  else:
    assert 'WARNING' not in tflite_export.format_sizes(sizes)


# ---- inputs ---------------------------------------------------------------


def _two_input_graph_def():
  """a, unused, b placeholders; output = a + b (unused feeds nothing)."""
  with tf.Graph().as_default() as graph:
    a = tf.compat.v1.placeholder(tf.float32, [None, 3], name='a')
    tf.compat.v1.placeholder(tf.float32, [None, 3], name='unused')
    b = tf.compat.v1.placeholder(tf.float32, [None, 3], name='b')
    tf.add(a, b * 2.0, name='output')
    tf.identity(tf.constant([1.0]), name='constant_output')
  return graph.as_graph_def()


def test_finds_the_placeholders_feeding_the_outputs_in_graph_order():
  graph_def = _two_input_graph_def()
  assert tflite_export.find_input_placeholders(graph_def, ['output']) == [
      'a', 'b']
  assert tflite_export.find_input_placeholders(
      graph_def, ['constant_output']) == []


def test_named_inputs_set_the_model_inputs_in_that_order():
  model = tflite_export.convert(_two_input_graph_def(), ['output'],
                                input_node_names='b,a')
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    interpreter = tf.lite.Interpreter(model_content=model)
  names = [d['name'] for d in interpreter.get_input_details()]
  assert names == ['b', 'a']


def test_input_shapes_fix_unknown_dimensions(tmp_path, inputs):
  graph_def = _stripped_graph_def(input_shape=(None, None))
  sizes, model = _export(graph_def, tmp_path, input_shapes='-1,%d' % _SIZE)
  weights, bias, exact = _oracle(inputs)
  outputs = _run_tflite(model, inputs)
  assert np.all(np.abs(outputs - exact) <= ref.float32_bound(inputs, weights,
                                                             bias))
  assert sizes.sparse_raw < sizes.dense_raw


@pytest.mark.parametrize('text, expected', [
    ('', None),
    ('1,24,24,3', [[1, 24, 24, 3]]),
    ('-1,512:?,10', [[None, 512], [None, 10]]),
    (' 2 , 3 ', [[2, 3]]),
], ids=['empty', 'one', 'two_unknown_batch', 'spaces'])
def test_parse_input_shapes(text, expected):
  assert tflite_export.parse_input_shapes(text) == expected


@pytest.mark.parametrize('call, message', [
    (lambda g: tflite_export.convert(g, ['output'], quantization='int4'),
     "quantization must be one of none, float16, int8, got 'int4'"),
    (lambda g: tflite_export.convert(g, ['outptu']),
     "Output node 'outptu' is not in the graph; closest: output"),
    (lambda g: tflite_export.convert(g, ['output'], input_node_names='aa'),
     "Input node 'aa' is not in the graph; closest: a"),
    (lambda g: tflite_export.convert(g, ['constant_output']),
     'depend on no Placeholder'),
    (lambda g: tflite_export.convert(g, ['output'], input_shapes=[[1, 3]]),
     'Got 1 input shapes for 2 inputs'),
    (lambda g: tflite_export.convert(g, ['output'],
                                     input_shapes=[[1, 4], [1, 4]]),
     r'Input shape \[1, 4\] does not fit input a'),
    (lambda g: tflite_export.parse_input_shapes('1,x'),
     'input shapes must look like'),
], ids=['quantization', 'output_name', 'input_name', 'no_placeholder',
        'shape_count', 'shape_mismatch', 'shape_syntax'])
def test_bad_arguments_are_value_errors_naming_the_value(call, message):
  with pytest.raises(ValueError, match=message):
    call(_two_input_graph_def())


# ---- the strip binary, end to end ------------------------------------------


def _save_pruned_checkpoint(checkpoint_dir):
  """Trains nothing: the FC model with a 90% pruning step, saved."""
  weights, _, bias = _weights()
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    _masked_fc(weights, bias)
    spec = pruning.get_pruning_hparams().parse(
        'name=fc_pruning,target_sparsity=%g,begin_pruning_step=0,'
        'sparsity_function_begin_step=0,sparsity_function_end_step=1,'
        'threshold_decay=0.0,threshold_method=sort,pruning_frequency=1' %
        _SPARSITY)
    update = pruning.Pruning(spec, global_step=global_step).mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(global_step.assign(1))
      sess.run(update)
      tf.compat.v1.train.Saver().save(
          sess, os.path.join(checkpoint_dir, 'model.ckpt'),
          global_step=global_step)


def _strip_binary(checkpoint_dir, output_dir, *extra):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  command = [sys.executable, '-m', 'model_pruning.python.strip_pruning_vars',
             '--checkpoint_dir=' + checkpoint_dir,
             '--output_node_names=output', '--output_dir=' + output_dir]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run(command + list(extra), capture_output=True,
                        text=True, env=env, check=False, cwd=root)


@pytest.mark.slow
def test_strip_binary_writes_tflite_and_reports_sizes(tmp_path, inputs):
  checkpoint_dir = str(tmp_path / 'train')
  _save_pruned_checkpoint(checkpoint_dir)
  process = _strip_binary(checkpoint_dir, str(tmp_path),
                          '--output_format=tflite', '--input_node_names=input',
                          '--tflite_quantization=none')
  assert process.returncode == 0, process.stderr
  model = (tmp_path / 'pruning_stripped.tflite').read_bytes()
  [line] = [l for l in process.stdout.splitlines() if l.startswith('TFLite')]
  assert line.startswith('TFLite (quantization none): dense ')
  assert 'sparse %d bytes raw, %d bytes gzip' % (
      len(model), len(gzip.compress(model))) in line
  frozen = strip_pruning_vars_lib.graph_def_from_checkpoint(checkpoint_dir,
                                                            ['output'])
  graph_def, [folded] = strip_pruning_vars_lib.fold_masked_weights(
      frozen, ['output'])
  assert reference.zero_fraction(folded.value) == pytest.approx(_SPARSITY,
                                                                abs=1e-3)
  bound = ref.float32_bound(inputs, folded.value, _weights()[2])
  assert np.all(np.abs(_run_tflite(model, inputs) -
                       _run_graph_def(graph_def, inputs)) <= 2 * bound)


@pytest.mark.slow
def test_strip_binary_refuses_tflite_flags_for_graphdef(tmp_path):
  process = _strip_binary(str(tmp_path), str(tmp_path / 'out'),
                          '--tflite_quantization=int8')
  assert process.returncode != 0 and 'Traceback' not in process.stderr
  assert ('--tflite_quantization applies to --output_format=tflite only'
          in process.stderr)
