"""Tests for check_sparsity, weight_readers and sparsity_plots.

Library calls run in-process; the command line (exit codes, one-line errors,
`python -m`, matplotlib missing) runs as a subprocess.
"""
import json
import os
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import check_sparsity
from model_pruning.python import sparsity_check
from model_pruning.python import sparsity_plots
from model_pruning.python import weight_readers
from tests import log_capture
from tests import reference

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_CONV_SHAPE = (3, 3, 8, 4)
_DENSE_SHAPE = (10, 6)  # depth 10: two full 4-groups and a partial one


def _nm_pruned(shape, seed):
  """A weight with a 2:4 pattern along axis -2 and its mask (numpy oracle)."""
  weights = np.random.RandomState(seed).randn(*shape).astype(np.float32)
  mask = reference.m_by_n_mask(weights, 2, 4)
  return weights, mask


def _save_checkpoint(directory, broken=False):
  """conv1/{weights,mask,threshold}, fc/{weights,mask}, global_step."""
  conv_w, conv_mask = _nm_pruned(_CONV_SHAPE, seed=0)
  fc_w, fc_mask = _nm_pruned(_DENSE_SHAPE, seed=1)
  if broken:
    fc_mask[0:4, 0] = 1.0  # one group with 4 survivors
    fc_mask[8:10, 5] = 1.0  # partial group: 2 survivors is still fine
  with tf.Graph().as_default():
    for name, value in (('conv1/weights', conv_w), ('conv1/mask', conv_mask),
                        ('conv1/threshold', np.float32(0.0)),
                        ('fc/weights', fc_w), ('fc/mask', fc_mask)):
      tf.compat.v1.get_variable(name, initializer=tf.constant(value))
    tf.compat.v1.train.get_or_create_global_step()
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return saver.save(sess, os.path.join(str(directory), 'model.ckpt'))


def _frozen_graph():
  """A frozen GraphDef: a 2:4-pruned conv and dense kernel as Consts."""
  conv_w, conv_mask = _nm_pruned(_CONV_SHAPE, seed=2)
  fc_w, fc_mask = _nm_pruned((36, 3), seed=3)
  graph = tf.Graph()
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, [1, 5, 5, 8],
                                      name='images')
    conv = tf.nn.conv2d(images, tf.constant(conv_w * conv_mask, name='conv/k'),
                        strides=1, padding='VALID')
    flat = tf.reshape(conv, [1, 36])  # 3x3 positions x 4 channels
    logits = tf.matmul(flat, tf.constant(fc_w * fc_mask, name='fc/k'),
                       name='logits')
  return graph, images, logits


@pytest.fixture(scope='module')
def tflite_path(tmp_path_factory):
  """A tiny .tflite from a session (converted once per module, ~1s)."""
  graph, images, logits = _frozen_graph()
  with graph.as_default(), tf.compat.v1.Session() as sess:
    converter = tf.compat.v1.lite.TFLiteConverter.from_session(
        sess, [images], [logits])
    model = converter.convert()
  path = tmp_path_factory.mktemp('tflite') / 'model.tflite'
  path.write_bytes(model)
  return str(path)


def _write_graph_def(tmp_path, as_text):
  graph = _frozen_graph()[0]
  name = 'frozen.pbtxt' if as_text else 'frozen.pb'
  tf.io.write_graph(graph.as_graph_def(), str(tmp_path), name,
                    as_text=as_text)
  return str(tmp_path / name)


def _by_name(report):
  return {w['name']: w for w in report['weights']}


def _run_cli(*args, blocked_matplotlib=False):
  """Runs the binary with `python -m`; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONPATH=_REPO_ROOT, TF_CPP_MIN_LOG_LEVEL='3')
  if blocked_matplotlib:
    code = ("import sys; sys.modules['matplotlib'] = None; "
            "sys.argv = ['check_sparsity'] + sys.argv[1:]; "
            "from model_pruning.python import check_sparsity as c; "
            "c.run_main()")
    command = [sys.executable, '-c', code]
  else:
    command = [sys.executable, '-m', 'model_pruning.python.check_sparsity']
  return subprocess.run(command + list(args), capture_output=True, text=True,
                        env=env, cwd=_REPO_ROOT, timeout=120, check=False)


def test_checkpoint_reports_masked_weights_and_masks(tmp_path):
  prefix = _save_checkpoint(tmp_path)
  report = sparsity_check.check(str(tmp_path), m_by_n='2:4',
                                all_constants=True)
  weights = _by_name(report)
  assert report['format'] == 'checkpoint' and report['ok']
  assert sorted(weights) == ['conv1/mask', 'conv1/weights', 'fc/mask',
                             'fc/weights']
  assert weights['conv1/weights']['kind'] == 'masked_weight'
  assert weights['conv1/mask']['kind'] == 'mask'
  # 2 of every 4 input channels survive: half of the conv kernel is zero.
  assert weights['conv1/weights']['sparsity'] == 0.5
  assert weights['conv1/weights']['m_by_n'] == {
      'groups': 3 * 3 * 2 * 4, 'failing_groups': 0, 'ok': True}
  # Depth 10 = 4 + 4 + 2: the partial group keeps both, so 6 zeros of 10.
  assert weights['fc/weights']['zeros'] == 4 * _DENSE_SHAPE[1]
  assert weights['fc/weights']['m_by_n']['groups'] == 3 * _DENSE_SHAPE[1]
  assert sparsity_check.check(prefix)['weights'] == sparsity_check.check(
      str(tmp_path))['weights']
  # By default only the pruned weights count, not their masks.
  assert sorted(_by_name(sparsity_check.check(str(tmp_path)))) == [
      'conv1/weights', 'fc/weights']


def test_checkpoint_rejects_hand_broken_mask(tmp_path):
  _save_checkpoint(tmp_path, broken=True)
  report = sparsity_check.check(str(tmp_path), m_by_n='2,4',
                                all_constants=True)
  weights = _by_name(report)
  assert not report['ok']
  for name in ('fc/weights', 'fc/mask'):
    assert weights[name]['m_by_n']['failing_groups'] == 1
  assert weights['conv1/weights']['m_by_n']['ok']
  assert 'FAIL: 1 of 18 groups' in sparsity_check.format_report(report)


@pytest.mark.parametrize('as_text', [False, True], ids=['pb', 'pbtxt'])
def test_frozen_graph_def_float_consts(tmp_path, as_text):
  path = _write_graph_def(tmp_path, as_text)
  report = sparsity_check.check(path, m_by_n='2:4')
  weights = _by_name(report)
  assert report['format'] == ('graphdef_text' if as_text else 'graphdef')
  assert sorted(weights) == ['conv/k', 'fc/k']
  assert weights['conv/k']['shape'] == list(_CONV_SHAPE)
  assert weights['conv/k']['sparsity'] == 0.5 and report['ok']
  assert weights['fc/k']['m_by_n']['groups'] == 9 * 3


def test_tflite_constant_weights_in_tflite_layout(tflite_path):
  report = sparsity_check.check(tflite_path, m_by_n='2:4')
  shapes = sorted(tuple(w['shape']) for w in report['weights'])
  # TFLite stores kernels [out, ..., in]: conv [4, 3, 3, 8], dense [3, 36].
  assert shapes == [(3, 36), (4, 3, 3, 8)]
  assert all(w['input_axis'] == -1 and w['sparsity'] == 0.5
             for w in report['weights'])
  assert report['ok']


def test_tflite_fails_pattern_along_wrong_density(tflite_path):
  # 2:4 pruned means 1:4 must fail in every group of both kernels.
  report = sparsity_check.check(tflite_path, m_by_n='1:4')
  for w in report['weights']:
    assert w['m_by_n']['failing_groups'] == w['m_by_n']['groups']
  assert not report['ok']


def test_tflite_sparse_encoded_tensor_reported_with_what_is_known(tmp_path):
  weights = np.random.RandomState(9).randn(64, 64).astype(np.float32)
  weights[np.abs(weights) < 1.5] = 0.0  # sparse enough for the encoder
  with tf.Graph().as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, [1, 64])
    outputs = tf.matmul(inputs, tf.constant(weights))
    with tf.compat.v1.Session() as sess:
      converter = tf.compat.v1.lite.TFLiteConverter.from_session(
          sess, [inputs], [outputs])
      converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
      (tmp_path / 'sparse.tflite').write_bytes(converter.convert())
  report = sparsity_check.check(str(tmp_path / 'sparse.tflite'), m_by_n='2:4')
  [entry] = report['weights']
  assert entry['shape'] == [64, 64]
  assert entry['note'] == 'sparse-encoded, %d stored values' % np.count_nonzero(
      weights)
  # The encoding stores exactly the non-zeros, so the zeros are known.
  assert entry['zeros'] == weights.size - np.count_nonzero(weights)
  assert entry['sparsity'] == pytest.approx(
      1.0 - np.count_nonzero(weights) / weights.size)
  assert report['selection'] == 'pruned weights (sparse-encoded tensors)'
  assert report['ok']  # cannot be checked densely: reported, not failed
  assert '2:4 n/a' in sparsity_check.format_report(report)


def test_tflite_int8_weights_zero_point_counts_as_zero(tmp_path):
  weights, mask = _nm_pruned((64, 32), seed=8)  # > 1024 values: quantized
  with tf.Graph().as_default():
    inputs = tf.compat.v1.placeholder(tf.float32, [1, 64])
    outputs = tf.matmul(inputs, tf.constant(weights * mask))
    with tf.compat.v1.Session() as sess:
      converter = tf.compat.v1.lite.TFLiteConverter.from_session(
          sess, [inputs], [outputs])
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
      (tmp_path / 'int8.tflite').write_bytes(converter.convert())
  report = sparsity_check.check(str(tmp_path / 'int8.tflite'), m_by_n='2:4')
  [entry] = report['weights']
  assert (entry['shape'], entry['dtype'], entry['note']) == (
      [32, 64], 'int8', 'quantized')
  assert entry['sparsity'] == 0.5 and report['ok']


def test_filters_min_rank_and_name_regex(tmp_path):
  _save_checkpoint(tmp_path)
  names = lambda **kw: sorted(_by_name(sparsity_check.check(
      str(tmp_path), all_constants=True, **kw)))
  assert names(name_regex=r'^fc/') == ['fc/mask', 'fc/weights']
  assert names(min_rank=3) == ['conv1/mask', 'conv1/weights']
  assert names(min_rank=5) == []


def test_checkpoint_without_masks_lists_float_variables(tmp_path):
  with tf.Graph().as_default():
    tf.compat.v1.get_variable('dense/kernel', shape=[4, 4])
    tf.compat.v1.train.get_or_create_global_step()
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saver.save(sess, str(tmp_path / 'plain.ckpt'))
  report = sparsity_check.check(str(tmp_path))
  assert [(w['name'], w['kind']) for w in report['weights']] == [
      ('dense/kernel', 'variable')]


def _corrupt_checkpoint(tmp_path):
  (tmp_path / 'bad.ckpt.index').write_bytes(b'not an index' * 10)
  return str(tmp_path / 'bad.ckpt')


@pytest.mark.parametrize('make_path,message', [
    (lambda p: str(p / 'missing.pb'), 'no such file'),
    (lambda p: str(p), 'holds no checkpoint'),
    (_corrupt_checkpoint, 'cannot read checkpoint'),
    (lambda p: (p / 'w.npy').write_bytes(b'xx') and str(p / 'w.npy'),
     'unknown format'),
    (lambda p: (p / 'g.pb').write_bytes(b'\x07' * 64) and str(p / 'g.pb'),
     'not a valid GraphDef'),
    (lambda p: (p / 'g.pbtxt').write_text('node {') and str(p / 'g.pbtxt'),
     'not a valid GraphDef'),
    (lambda p: (p / 'm.tflite').write_bytes(b'1234TFL3' + b'\x07' * 64)
     and str(p / 'm.tflite'), 'corrupt TFLite model'),
    (lambda p: (p / 'm.tflite').write_bytes(b'\x00' * 64)
     and str(p / 'm.tflite'), 'not a TFLite flatbuffer'),
], ids=['missing', 'empty_dir', 'corrupt_checkpoint', 'unknown_format',
        'corrupt_pb', 'corrupt_pbtxt', 'corrupt_tflite', 'tflite_no_magic'])
def test_bad_input_raises_one_line_error(tmp_path, make_path, message):
  with pytest.raises(sparsity_check.BadInputError, match=message) as info:
    sparsity_check.check(make_path(tmp_path))
  assert '\n' not in str(info.value)


@pytest.mark.parametrize('kwargs,message', [
    ({'m_by_n': '4:2'}, "got '4:2'"), ({'m_by_n': 'two:four'}, 'M:N'),
    ({'name_regex': '('}, 'missing')],
    ids=['reversed_pattern', 'words_pattern', 'bad_regex'])
def test_bad_arguments_raise(tmp_path, kwargs, message):
  with pytest.raises(sparsity_check.BadInputError, match=message):
    sparsity_check.check(str(tmp_path), **kwargs)


def test_truncated_tflite_is_reported_not_crashed(tmp_path, tflite_path):
  data = open(tflite_path, 'rb').read()
  path = tmp_path / 'truncated.tflite'
  path.write_bytes(data[:len(data) // 3])
  with pytest.raises(sparsity_check.BadInputError, match='corrupt TFLite'):
    sparsity_check.check(str(path))


@pytest.mark.parametrize('block,m_by_n', [(None, '2:4'), ('4x4', None)],
                         ids=['nm_lines', 'block_grid'])
def test_plots_are_png_files(tmp_path, block, m_by_n):
  _save_checkpoint(tmp_path / 'ckpt')
  report, arrays = sparsity_check.check_with_arrays(
      str(tmp_path / 'ckpt'), m_by_n=m_by_n)
  written = sparsity_check.write_plots(report, arrays, str(tmp_path / 'pics'),
                                       block=block, corner=16)
  assert len(written) == len(report['weights']) + 1
  assert os.path.basename(written[-1]) == sparsity_check.BAR_CHART_NAME
  for path in written:
    with open(path, 'rb') as f:
      assert f.read(8) == _PNG_SIGNATURE
    assert os.path.getsize(path) > 1000


@pytest.mark.parametrize('shape,axis,expected_shape', [
    ((3, 3, 8, 4), -2, (8, 36)), ((10, 6), -2, (10, 6)),
    ((4, 3, 3, 8), -1, (8, 36))],
    ids=['tf_conv', 'tf_dense', 'tflite_conv'])
def test_two_d_view_puts_input_axis_on_rows(shape, axis, expected_shape):
  array = np.arange(np.prod(shape)).reshape(shape)
  view = sparsity_plots.two_d_view(array, axis)
  assert view.shape == expected_shape
  np.testing.assert_array_equal(view[1], np.moveaxis(array, axis, 0)[1].ravel())


@pytest.mark.parametrize('text', ['4', '0x4', 'axb', ''],
                         ids=['one_number', 'zero', 'letters', 'empty'])
def test_parse_block_rejects(text):
  with pytest.raises(ValueError, match="block must look like 'HxW'"):
    sparsity_plots.parse_block(text)


def test_readers_return_records_with_input_axis(tmp_path, tflite_path):
  records = weight_readers.read_weights(_write_graph_def(tmp_path, False))
  assert {r.input_axis for r in records} == {-2}
  assert {r.input_axis for r in weight_readers.read_weights(tflite_path)} == {
      -1}


# --- command line: main() in-process, the entry point as a subprocess --------


def _run_main(*args):
  """Parses flags like the binary and calls main(); returns its exit code."""
  argv = ['check_sparsity'] + list(args)
  with flagsaver.flagsaver():
    remaining = flags.FLAGS(argv)
    return check_sparsity.main(remaining)


def test_main_passing_pattern_exits_0_and_writes_json(tmp_path, capsys):
  _save_checkpoint(tmp_path)
  code = _run_main(str(tmp_path), '--m_by_n=2:4',
                   '--json=%s' % (tmp_path / 'r.json'))
  assert code == 0, capsys.readouterr().err
  assert 'every group passes' in capsys.readouterr().out
  report = json.loads((tmp_path / 'r.json').read_text())
  assert report['ok'] and len(report['weights']) == 2
  assert report['selection'] == 'pruned weights (weight * mask)'
  assert _run_main(str(tmp_path), '--all_constants',
                   '--json=%s' % (tmp_path / 'all.json')) == 0
  assert len(json.loads((tmp_path / 'all.json').read_text())['weights']) == 4


def test_main_failing_pattern_exits_1_with_group_count(tmp_path, capsys):
  _save_checkpoint(tmp_path, broken=True)
  code = _run_main('--input=%s' % tmp_path, '--m_by_n=2,4',
                   '--name_regex=^fc/weights$')
  out = capsys.readouterr().out
  assert code == 1
  assert '2:4 FAIL: 1 of 18 groups' in out
  assert '1 weights fail (1 groups)' in out


@pytest.mark.parametrize('args,message', [
    (('{tmp}/missing.tflite',), 'no such file'),
    (('{tmp}', '--m_by_n=3:2'), "got '3:2'"),
    (('{tmp}', '--block=4'), "block must look like 'HxW'"),
    (('{tmp}', '--json={tmp}/no/such/dir/r.json'), 'No such file'),
    ((), 'exactly one input'),
    (('a', 'b'), 'exactly one input')],
    ids=['missing_file', 'bad_m_by_n', 'bad_block', 'bad_json_path',
         'no_input', 'two_inputs'])
def test_main_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
  _save_checkpoint(tmp_path)
  args = [a.format(tmp=tmp_path) for a in args]
  if any(a.startswith('--block') for a in args):
    args.append('--plot=%s' % (tmp_path / 'pics'))
  assert _run_main(*args) == 2
  err = capsys.readouterr().err
  assert err.startswith('check_sparsity: error:') and message in err
  assert err.count('\n') == 1


def test_main_plot_writes_pngs(tmp_path, capsys):
  _save_checkpoint(tmp_path / 'ckpt')
  assert _run_main(str(tmp_path / 'ckpt'), '--plot=%s' % (tmp_path / 'pics'),
                   '--m_by_n=2:4', '--min_rank=3', '--all_constants') == 0
  assert 'wrote 3 pictures' in capsys.readouterr().out
  pictures = sorted(os.listdir(tmp_path / 'pics'))
  assert pictures == ['000_conv1_weights.png', '001_conv1_mask.png',
                      sparsity_check.BAR_CHART_NAME]


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
def test_cli_python_m_failing_pattern_exits_1(tmp_path):
  _save_checkpoint(tmp_path, broken=True)
  result = _run_cli(str(tmp_path), '--m_by_n=2:4')
  assert result.returncode == 1, result.stderr
  assert 'fc/weights' in result.stdout and 'FAIL: 1 of 18' in result.stdout


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
def test_cli_bad_flag_exits_2_with_one_line(tmp_path):
  result = _run_cli(str(tmp_path), '--min_rank=-1')
  assert result.returncode == 2
  # TensorFlow's C++ start-up notice ('... round-off errors ...') is not ours.
  errors = [l for l in log_capture.own_stderr_lines(result.stderr)
            if 'error' in l.lower()]
  assert len(errors) == 1 and errors[0].startswith('check_sparsity: error:')
  assert 'min_rank' in errors[0] and 'Traceback' not in result.stderr


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
def test_cli_plot_without_matplotlib_says_how_to_install(tmp_path):
  _save_checkpoint(tmp_path)
  result = _run_cli(str(tmp_path), '--plot=%s' % (tmp_path / 'pics'),
                    blocked_matplotlib=True)
  assert result.returncode == 2
  assert "pip install 'model_pruning[plot]'" in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'pics').exists()


def _stripped_lstm(tmp_path, sparsity=0.8):
  """A masked LSTM whose kernel is `sparsity` zeros, stripped to a .pb.

  Kernel [7 + 8, 4 * 8]: 480 values, 384 zeros at 0.8. The graph also holds
  the cell's zero state as a rank-2 constant of zeros,
  which is not a weight.
  """
  from model_pruning.python import strip_checkpoint  # pylint: disable=g-import-not-at-top
  from model_pruning.python.layers import rnn_cells  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    inputs = tf.compat.v1.placeholder(tf.float32, [4, 5, 7], name='inputs')
    cell = rnn_cells.MaskedBasicLSTMCell(8, prune_option='weight')
    outputs, _ = tf.compat.v1.nn.dynamic_rnn(
        cell, inputs, initial_state=cell.zero_state(4, tf.float32))
    tf.identity(outputs[:, -1], name='output')
    [mask] = tf.compat.v1.get_collection('masks')
    values = np.ones(mask.shape.as_list(), np.float32)
    values.flat[:int(round(sparsity * values.size))] = 0.0
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(mask.assign(values))
      tf.compat.v1.train.Saver().save(sess, str(tmp_path / 'ckpt' / 'model'))
  path = str(tmp_path / 'lstm.pb')
  strip_checkpoint.strip_checkpoint(str(tmp_path / 'ckpt'), 'output', path)
  return path, values.size


def test_stripped_lstm_counts_only_the_pruned_kernel(tmp_path):
  path, kernel_size = _stripped_lstm(tmp_path)
  report = sparsity_check.check(path)
  [kernel] = report['weights']
  assert kernel['name'].endswith('masked_weight')
  assert kernel['zeros'] == int(round(0.8 * kernel_size))
  assert report['selection'] == 'pruned weights (masked_weight constants)'
  assert '80.00% zeros' in sparsity_check.format_report(report).splitlines()[-1]
  # Counting every constant takes in the all-zero state and misreads it.
  everything = sparsity_check.check(path, all_constants=True)
  zero_state = [w for w in everything['weights'] if w['sparsity'] == 1.0]
  assert zero_state and len(everything['weights']) > 1
  assert '80.00% zeros' not in sparsity_check.format_report(
      everything).splitlines()[-1]
