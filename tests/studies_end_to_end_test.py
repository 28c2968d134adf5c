"""The real-data studies, run as a user would: `python -m ... --quick`.

Each binary runs as a subprocess from a folder outside the repository. The
checks read the files it wrote, independently of the study's code: the CSV's
columns; sizes and non-zero counts that shrink as the target grows; the
sizes, weight counts and metric recomputed from stripped.pb and sparse.tflite
on disk; for the 2:4 study every kernel's groups counted in numpy, the
untouched first conv, the TFLite agreement and the pattern pictures.
"""
import csv
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from examples.pruning_study import datasets

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COLUMNS = ['model', 'attempt', 'schedule', 'target', 'total_weights',
            'zero_weights', 'nonzero_weights', 'sparsity', 'stripped_raw',
            'stripped_gzip', 'tflite_dense', 'tflite_sparse',
            'tflite_sparse_gzip', 'accuracy', 'rmse', 'mae', 'vs_dense']
_PNG_MAGIC = b'\x89PNG'


def _run_quick(package, tmp_path):
  work_dir = tmp_path / 'out'
  env = dict(os.environ, PYTHONPATH=_REPO_ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  process = subprocess.run(
      [sys.executable, '-m', package, '--quick', '--work_dir=%s' % work_dir],
      cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600,
      check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  return work_dir, process.stdout


def _read_rows(path):
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    assert reader.fieldnames == _COLUMNS
    return list(reader)


def _graph_def(path):
  graph_def = tf.compat.v1.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  return graph_def


def _parameters(graph_def):
  """{name: array} of the float constants of rank >= 1 that are parameters.

  Every other float constant of rank >= 1 in these graphs is the LSTM's
  zero initial state (`.../...ZeroState/zeros`), which is not a parameter.
  """
  arrays = {}
  for node in graph_def.node:
    if node.op != 'Const' or 'ZeroState' in node.name:
      continue
    value = tf.make_ndarray(node.attr['value'].tensor)
    if value.dtype == np.float32 and value.ndim >= 1:
      arrays[node.name] = value
  return arrays


def _check_row_against_files(row, run_dir):
  stripped = os.path.join(run_dir, 'stripped.pb')
  with open(stripped, 'rb') as f:
    data = f.read()
  assert int(row['stripped_raw']) == len(data)
  assert int(row['stripped_gzip']) == len(gzip.compress(data))
  assert int(row['tflite_sparse']) == os.path.getsize(
      os.path.join(run_dir, 'sparse.tflite'))
  arrays = _parameters(_graph_def(stripped)).values()
  total = sum(a.size for a in arrays)
  zeros = sum(int(np.sum(a == 0)) for a in arrays)
  assert int(row['total_weights']) == total
  assert int(row['zero_weights']) == zeros
  assert int(row['nonzero_weights']) == total - zeros


def _run_stripped(path, inputs):
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(_graph_def(path), name='')
    with tf.compat.v1.Session(graph=graph) as sess:
      return sess.run('outputs:0', {'inputs:0': inputs})


def test_size_study_quick(tmp_path):
  work_dir, stdout = _run_quick('examples.size_study', tmp_path)
  assert 'mlp_diabetes' in stdout and 'cnn_digits' in stdout
  rows = _read_rows(work_dir / 'size_study.csv')
  assert (work_dir / 'size_study.png').read_bytes()[:4] == _PNG_MAGIC
  models = {'mlp_diabetes': 'rmse', 'lstm_sunspots': 'rmse',
            'cnn_digits': 'accuracy'}
  assert sorted({r['model'] for r in rows}) == sorted(models)
  for model, metric in models.items():
    mine = {r['attempt']: r for r in rows if r['model'] == model}
    assert list(mine) == ['dense', 'constant_0.5', 'constant_0.9']
    for name, row in mine.items():
      _check_row_against_files(row, work_dir / model / name)
      assert float(row[metric]) > 0
      assert (row['accuracy'] == '') == (metric == 'rmse')
    order = [mine[name] for name in ('dense', 'constant_0.5', 'constant_0.9')]
    for key in ('nonzero_weights', 'stripped_gzip', 'tflite_sparse'):
      values = [int(r[key]) for r in order]
      assert values[0] > values[1] > values[2], (model, key, values)
  # The CNN's accuracy, recomputed from its stripped graph on the test split.
  digits = datasets.load_digits(seed=0)
  for name in ('dense', 'constant_0.9'):
    logits = _run_stripped(str(work_dir / 'cnn_digits' / name / 'stripped.pb'),
                           digits.test_x)
    row = next(r for r in rows
               if r['model'] == 'cnn_digits' and r['attempt'] == name)
    assert float(row['accuracy']) == pytest.approx(
        np.mean(np.argmax(logits, axis=1) == digits.test_y))


def _groups_over_two(kernel, input_axis):
  """Groups of 4 consecutive input channels holding more than 2 non-zeros."""
  rows = np.moveaxis(kernel, input_axis, 0)
  rows = rows.reshape(rows.shape[0], -1)
  pad = (-rows.shape[0]) % 4
  rows = np.concatenate([rows, np.zeros((pad, rows.shape[1]))])
  nonzero = (rows.reshape(-1, 4, rows.shape[1]) != 0).sum(axis=1)
  return int(np.sum(nonzero > 2))


def test_structured_pruning_quick(tmp_path):
  work_dir, stdout = _run_quick('examples.structured_pruning', tmp_path)
  assert 'check_sparsity --m_by_n=2,4' in stdout
  rows = _read_rows(work_dir / 'structured_pruning.csv')
  assert [r['attempt'] for r in rows] == [
      'dense', 'constant_0.5', 'constant_0.9', 'constant_2of4']
  for row in rows:
    _check_row_against_files(row, work_dir / 'cnn_digits' / row['attempt'])
  sizes = [int(r['stripped_gzip']) for r in rows[:3]]
  assert sizes[0] > sizes[1] > sizes[2]

  kernels = _parameters(_graph_def(
      str(work_dir / 'cnn_digits' / 'constant_2of4' / 'stripped.pb')))
  masked = {name: a for name, a in kernels.items()
            if name.endswith('masked_weight')}
  assert sorted(name.split('/')[0] for name in masked) == [
      'conv1', 'conv2', 'dense1', 'logits']
  for name, kernel in masked.items():
    if name.startswith('conv1/'):
      assert np.count_nonzero(kernel) == kernel.size  # left dense
      continue
    assert _groups_over_two(kernel, input_axis=-2) == 0, name
    assert np.mean(kernel == 0) == pytest.approx(0.5, abs=0.02), name

  with open(work_dir / 'checks.json') as f:
    checks = json.load(f)
  reported = checks['constant_2of4']['m_by_n_kernels']
  assert len(reported) == 4
  assert all(k['failing_groups'] == 0 for k in reported.values())
  for name, check in checks.items():
    if name != 'pattern_pictures':
      assert check['tflite_argmax_agreement'] == 1.0, name
      assert check['tflite_max_abs_diff'] <= 1e-4 * max(
          1.0, check['max_abs_logit']), name
  for picture in ('pattern_dense.png', 'pattern_conv.png'):
    assert (work_dir / picture).read_bytes()[:4] == _PNG_MAGIC
