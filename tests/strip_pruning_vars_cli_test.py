"""End-to-end tests of the strip_pruning_vars binary (docs/upstream.md, Q18).

The binary runs as a subprocess, as a user would run it. Each run pays for
importing TensorFlow, so every case is launched once, concurrently, by the
module-scoped `cli_runs` fixture; the tests then check one result each.
"""
import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from google.protobuf import text_format
from model_pruning.python import pruning
from model_pruning.python import strip_checkpoint
from model_pruning.python.layers import layers
from tests import log_capture
from tests import reference as ref

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODULE = 'model_pruning.python.strip_pruning_vars'
# Schedule stored in the checkpoint: target 0.5 reached at step 10.
# sort: the masks hold exactly the asked zeros, which the tests assert
# (histogram's bin edge also keeps the values of the k-th's bin: on the
# randomly initialised 4x11 weight, now and then 2 of 44).
_HPARAMS = ('pruning_frequency=1,begin_pruning_step=0,end_pruning_step=20,'
            'sparsity_function_end_step=10,target_sparsity=0.5,'
            'threshold_decay=0.0,threshold_method=sort')
_STEPS = 20
_UNPRUNED_STEP = 200

def _session(graph=None):
  """A session without Grappler, whose rewrites can differ between graphs."""
  config = tf.compat.v1.ConfigProto()
  config.graph_options.rewrite_options.disable_meta_optimizer = True
  return tf.compat.v1.Session(graph=graph, config=config)


Checkpoints = collections.namedtuple(
    'Checkpoints', ['root', 'pruned_dir', 'pruned_prefix', 'unpruned_dir',
                    'reference', 'masked_weights'])


def _build_fc_model():
  """Three masked_fully_connected layers on ones([8, 4]); 'output' node."""
  net = tf.ones([8, 4])
  with tf.compat.v1.variable_scope('fc_model'):
    for ix in range(3):
      net = layers.masked_fully_connected(net, 4 + 7 * (ix + 1))
  return tf.identity(net, name='output')


def _save_pruned(checkpoint_dir):
  """Trains and prunes for 20 steps; returns (prefix, output, weight names)."""
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    output = _build_fc_model()
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
        tf.reduce_mean(tf.square(output)), global_step=global_step)
    spec = pruning.get_pruning_hparams().parse(_HPARAMS)
    update_op = pruning.Pruning(
        spec, global_step=global_step).conditional_mask_update_op()
    with _session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for _ in range(_STEPS):
        sess.run(train_op)
        sess.run(update_op)
      reference = sess.run(output)
      prefix = tf.compat.v1.train.Saver().save(
          sess, os.path.join(checkpoint_dir, 'model.ckpt'),
          global_step=global_step)
    names = [t.op.name for t in pruning.get_masked_weights()]
  return prefix, reference, names


def _save_unpruned(checkpoint_dir):
  """Pruning set up, global step at 200, but the update op never ran."""
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    _build_fc_model()
    pruning.Pruning(pruning.get_pruning_hparams(), global_step=global_step)
    with _session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(global_step.assign(_UNPRUNED_STEP))
      tf.compat.v1.train.Saver().save(
          sess, os.path.join(checkpoint_dir, 'model.ckpt'),
          global_step=global_step)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
  root = tmp_path_factory.mktemp('strip_cli')
  pruned_dir, unpruned_dir = str(root / 'pruned'), str(root / 'unpruned')
  prefix, reference, names = _save_pruned(pruned_dir)
  _save_unpruned(unpruned_dir)
  return Checkpoints(root, pruned_dir, prefix, unpruned_dir, reference, names)


def _corrupt_copy(checkpoints):
  """A copy of the pruned checkpoint with its data file cut in half."""
  directory = str(checkpoints.root / 'corrupt')
  os.makedirs(directory)
  prefix = os.path.join(directory, 'model.ckpt')
  for suffix in ('.index', '.meta', '.data-00000-of-00001'):
    shutil.copy(checkpoints.pruned_prefix + suffix, prefix + suffix)
  data_path = prefix + '.data-00000-of-00001'
  with open(data_path, 'rb') as f:
    data = f.read()
  with open(data_path, 'wb') as f:
    f.write(data[:len(data) // 2])
  return prefix


def _cases(checkpoints):
  """{case id: (argv after the module name, output dir)} for every run."""
  root = checkpoints.root
  os.makedirs(root / 'empty')
  (root / 'a_file').write_text('not a directory')
  pruned = '--checkpoint_dir=' + checkpoints.pruned_dir
  names = '--output_node_names=output'
  cases = {
      'ok_dir': [pruned, names],
      'ok_path_as_text': ['--checkpoint_path=' + checkpoints.pruned_prefix,
                          names, '--as_text', '--filename=stripped.pbtxt'],
      'unpruned': ['--checkpoint_dir=' + checkpoints.unpruned_dir, names],
      'no_checkpoint': ['--checkpoint_dir=%s' % (root / 'empty'), names],
      'missing_path': ['--checkpoint_path=%s' % (root / 'nope/model.ckpt-3'),
                       names],
      'corrupt': ['--checkpoint_path=' + _corrupt_copy(checkpoints), names],
      'bad_node': [pruned, '--output_node_names=outptu'],
      'no_names': [pruned],
      'both_checkpoint_flags': [
          pruned, '--checkpoint_path=' + checkpoints.pruned_prefix, names],
      'ok_fail_below_target': [pruned, names, '--fail_below_target',
                               '--json=%s' % (root / 'ok.json')],
      'unpruned_fail_below_target': [
          '--checkpoint_dir=' + checkpoints.unpruned_dir, names,
          '--fail_below_target', '--json=%s' % (root / 'below.json')],
  }
  result = {}
  for case, argv in cases.items():
    output_dir = str(root / 'out' / case)
    result[case] = (argv + ['--output_dir=' + output_dir], output_dir)
  unwritable = str(root / 'a_file' / 'sub')
  result['unwritable_dir'] = ([pruned, names, '--output_dir=' + unwritable],
                              unwritable)
  return result


def _run(argv):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='',
             PYTHONPATH=_REPO_ROOT)
  return subprocess.run([sys.executable, '-m', _MODULE] + argv, cwd=_REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=300,
                        check=False)


@pytest.fixture(scope='module')
def cli_runs(checkpoints):
  """Runs every case once, concurrently; {case: (process, output_dir)}."""
  cases = _cases(checkpoints)
  workers = min(3, os.cpu_count() or 1)
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    futures = {case: pool.submit(_run, argv)
               for case, (argv, _) in cases.items()}
    return {case: (futures[case].result(), cases[case][1]) for case in cases}


def _run_graph_def(graph_def):
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='final')
    with _session(graph) as sess:
      return sess.run('final/output:0')


@pytest.mark.slow
def test_strips_latest_checkpoint_and_reports(cli_runs, checkpoints):
  process, output_dir = cli_runs['ok_dir']
  assert process.returncode == 0, process.stderr
  graph_def = tf.compat.v1.GraphDef()
  with open(os.path.join(output_dir, 'pruning_stripped.pb'), 'rb') as f:
    graph_def.ParseFromString(f.read())

  assert not [n.name for n in graph_def.node if n.name.endswith('mask')]
  np.testing.assert_array_equal(_run_graph_def(graph_def),
                                checkpoints.reference)
  target = ref.scheduled_sparsity(_STEPS, end_step=10)
  for name in checkpoints.masked_weights:
    row = re.search(r'^%s\s+\S+\s+(\S+)\s+(\S+)$' % re.escape(name),
                    process.stdout, re.MULTILINE)
    assert row, process.stdout
    assert float(row.group(2)) == pytest.approx(target, abs=1e-4)
    assert float(row.group(1)) >= 0.4
  assert 'global step %d' % _STEPS in process.stdout
  assert re.search(r'output \d+ bytes raw, \d+ bytes gzip-compressed',
                   process.stdout)
  assert 'WARNING' not in process.stdout
  assert os.listdir(output_dir) == ['pruning_stripped.pb']


@pytest.mark.slow
def test_checkpoint_path_and_as_text(cli_runs, checkpoints):
  process, output_dir = cli_runs['ok_path_as_text']
  assert process.returncode == 0, process.stderr
  with open(os.path.join(output_dir, 'stripped.pbtxt')) as f:
    graph_def = text_format.Parse(f.read(), tf.compat.v1.GraphDef())
  np.testing.assert_array_equal(_run_graph_def(graph_def),
                                checkpoints.reference)


@pytest.mark.slow
def test_weights_below_target_warn_and_fail_on_request(cli_runs, checkpoints):
  process, _ = cli_runs['unpruned_fail_below_target']
  assert process.returncode == 1, process.stderr
  warned = [line for line in log_capture.own_stderr_lines(process.stderr)
            if 'points below the' in line]
  assert len(warned) == len(checkpoints.masked_weights), process.stderr
  target = ref.scheduled_sparsity(_UNPRUNED_STEP)
  assert all('0.0000 zeros' in line and '%.4f' % target in line
             for line in warned)
  with open(checkpoints.root / 'below.json', encoding='utf-8') as f:
    report = json.load(f)
  assert sorted(report['below_target']) == sorted(checkpoints.masked_weights)
  assert all(w['below_target'] and w['zero_fraction'] == 0.0
             for w in report['weights'])


@pytest.mark.slow
def test_weights_on_target_pass_fail_below_target(cli_runs, checkpoints):
  process, _ = cli_runs['ok_fail_below_target']
  assert process.returncode == 0, process.stderr
  assert 'points below the' not in process.stderr
  with open(checkpoints.root / 'ok.json', encoding='utf-8') as f:
    report = json.load(f)
  assert report['below_target'] == []
  assert sorted(w['name'] for w in report['weights']) == sorted(
      checkpoints.masked_weights)
  # Every weight holds an even count: sort leaves exactly half of it zero,
  # and it is allowed one weight's share.
  assert [w['zero_fraction'] for w in report['weights']] == [0.5] * 3
  assert [w['allowance'] for w in report['weights']] == [
      pytest.approx(1.0 / np.prod(w['shape'])) for w in report['weights']]


@pytest.mark.slow
def test_unpruned_checkpoint_warns(cli_runs):
  process, _ = cli_runs['unpruned']
  assert process.returncode == 0, process.stderr
  warnings = [line for line in log_capture.own_stderr_lines(process.stderr)
              if line.startswith('W') and 'every mask is all ones' in line]
  assert len(warnings) == 1, process.stderr
  assert 'global step %d' % _UNPRUNED_STEP in warnings[0]
  assert 'WARNING: every mask is all ones' in process.stdout


_ERRORS = [
    pytest.param('no_checkpoint', 'Could not find a checkpoint at',
                 id='no_checkpoint_in_dir'),
    pytest.param('missing_path', 'Could not find a checkpoint at',
                 id='checkpoint_path_missing'),
    pytest.param('corrupt', 'Could not restore checkpoint',
                 id='corrupt_checkpoint'),
    pytest.param('bad_node', "'outptu' is not in the graph; closest: output",
                 id='unknown_output_node'),
    pytest.param('unwritable_dir', 'Cannot create output directory',
                 id='unwritable_output_dir'),
]


@pytest.mark.slow
@pytest.mark.parametrize('case,message', _ERRORS)
def test_bad_input_is_one_error_line(cli_runs, case, message):
  process, output_dir = cli_runs[case]
  assert process.returncode == 2
  assert 'Traceback' not in process.stderr
  lines = log_capture.own_stderr_lines(process.stderr)
  assert len(lines) == 1, process.stderr
  assert lines[0].startswith('strip_pruning_vars: error: ')
  assert message in lines[0]
  assert not os.path.exists(os.path.join(output_dir, 'pruning_stripped.pb'))


@pytest.mark.slow
@pytest.mark.parametrize('case,message', [
    pytest.param('no_names', '--output_node_names is required',
                 id='no_output_node_names'),
    pytest.param('both_checkpoint_flags', 'not both', id='two_checkpoints'),
])
def test_usage_errors(cli_runs, case, message):
  process, output_dir = cli_runs[case]
  assert process.returncode == 2
  assert 'Traceback' not in process.stderr
  assert [line for line in process.stderr.splitlines() if message in line]
  assert not os.path.exists(output_dir)


# ---- in-process: output formats and atomic writes -----------------------


class _FakeTflite:
  """Stands in for tflite_export; records calls, can fail half-way."""

  def __init__(self, fail):
    self.fail = fail
    self.calls = []

  def export_stripped_graph(self, graph_def, output_node_names, output_path,
                            **options):
    self.calls.append((graph_def, output_node_names, output_path, options))
    with open(output_path, 'wb') as f:
      f.write(b'partial flatbuffer')
    if self.fail:
      raise OSError('disk full')


@pytest.fixture
def fake_tflite(monkeypatch):
  def install(fail):
    fake = _FakeTflite(fail)
    monkeypatch.setitem(sys.modules, 'model_pruning.python.tflite_export',
                        fake)
    import model_pruning.python  # pylint: disable=g-import-not-at-top
    monkeypatch.setattr(model_pruning.python, 'tflite_export', fake,
                        raising=False)
    return fake
  return install


def test_tflite_format_calls_exporter(checkpoints, fake_tflite, tmp_path):
  fake = fake_tflite(fail=False)
  path = str(tmp_path / 'model.tflite')
  result = strip_checkpoint.strip_checkpoint(
      checkpoints.pruned_dir, 'output', path, output_format='tflite',
      tflite_options={'quantize': True})

  (graph_def, names, temp_path, options), = fake.calls
  assert names == ['output'] and options == {'quantize': True}
  assert os.path.dirname(temp_path) == str(tmp_path)
  assert not [n for n in graph_def.node if n.name.endswith('mask')]
  with open(path, 'rb') as f:
    assert f.read() == b'partial flatbuffer'
  assert result.path == path and os.listdir(tmp_path) == ['model.tflite']


def test_failed_write_leaves_old_file_and_no_temp(checkpoints, fake_tflite,
                                                   tmp_path):
  fake_tflite(fail=True)
  path = tmp_path / 'model.tflite'
  path.write_bytes(b'previous model')
  with pytest.raises(OSError, match='disk full'):
    strip_checkpoint.strip_checkpoint(
        checkpoints.pruned_dir, ['output'], str(path), output_format='tflite')
  assert path.read_bytes() == b'previous model'
  assert os.listdir(tmp_path) == ['model.tflite']


def test_tflite_without_exporter_is_a_clear_error(checkpoints, monkeypatch,
                                                  tmp_path):
  monkeypatch.setitem(sys.modules, 'model_pruning.python.tflite_export', None)
  import model_pruning.python  # pylint: disable=g-import-not-at-top
  monkeypatch.delattr(model_pruning.python, 'tflite_export', raising=False)
  with pytest.raises(ValueError, match='needs model_pruning.python.tflite_'):
    strip_checkpoint.strip_checkpoint(
        checkpoints.pruned_dir, ['output'], str(tmp_path / 'm.tflite'),
        output_format='tflite')
  assert os.listdir(tmp_path) == []


def test_upstream_function_returns_written_path(checkpoints, tmp_path):
  path = strip_checkpoint.strip_pruning_vars(
      checkpoints.pruned_dir, 'output, ', str(tmp_path), 'out.pb')
  assert path == str(tmp_path / 'out.pb')
  graph_def = tf.compat.v1.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  np.testing.assert_array_equal(_run_graph_def(graph_def),
                                checkpoints.reference)
  with pytest.raises(ValueError, match='at least 1 output node'):
    strip_checkpoint.strip_pruning_vars(checkpoints.pruned_dir, ' ',
                                          str(tmp_path), 'x.pb')
