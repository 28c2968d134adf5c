"""End to end: the main job (generate, train, eval, strip) on tiny data.

Runs `python3 -m examples.cifar10.run_main_job` as a subprocess, exactly as
the README does, with a handful of steps and records.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LAYERS = ('conv1', 'conv2', 'local3', 'local4', 'softmax_linear')


def _run_main_job(work_dir, max_steps):
  command = [sys.executable, '-m', 'examples.cifar10.run_main_job',
             '--work_dir=%s' % work_dir, '--max_steps=%d' % max_steps,
             '--batch_size=16', '--train_records_per_batch=16',
             '--test_records=40']
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run(command, cwd=_REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def _load_graph_def(path):
  graph_def = tf.compat.v1.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  return graph_def


@pytest.mark.slow
def test_main_job_trains_prunes_evaluates_and_strips(tmp_path):
  work_dir = tmp_path / 'job'
  # Schedule over steps [2, 14]; masks update at steps 10 and 20 (every 10
  # steps), so at step 20 every layer is at the 0.9 target.
  proc = _run_main_job(work_dir, max_steps=20)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert 'CIFAR-10 main job summary (step 20' in proc.stdout
  assert 'precision @ 1 of the pruned model' in proc.stdout

  summary = json.loads((work_dir / 'summary.json').read_text())
  result = json.loads((work_dir / 'result.json').read_text())
  assert summary['global_step'] == 20 and result['global_step'] == 20
  assert result['num_examples'] == 40
  assert result['precision_at_1'] == result['true_count'] / 40.0
  assert summary['scheduled_sparsity'] == pytest.approx(0.9)
  assert [layer['layer'] for layer in summary['layers']] == list(_LAYERS)
  for layer in summary['layers']:
    # Histogram thresholds (256 bins) land close to, not exactly on, 0.9.
    assert layer['mask_sparsity'] == pytest.approx(0.9, abs=0.03), layer
    assert layer['stripped_weight_sparsity'] == pytest.approx(
        layer['mask_sparsity'], abs=1e-3), layer
  assert summary['masks_left_in_stripped_model'] == []
  stripped = summary['stripped_model']
  assert os.path.getsize(stripped) == summary['stripped_bytes']
  assert summary['stripped_gzip_bytes'] < summary['stripped_bytes'] / 2

  # The stripped graph runs on its own: images in, logits out, no variables.
  graph_def = _load_graph_def(stripped)
  assert not [n.name for n in graph_def.node
              if n.op in ('VariableV2', 'VarHandleOp')]
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='')
    with tf.compat.v1.Session(graph=graph) as sess:
      logits = sess.run('logits:0', {'images:0': np.zeros([3, 24, 24, 3],
                                                          np.float32)})
  assert logits.shape == (3, 10) and np.all(np.isfinite(logits))

