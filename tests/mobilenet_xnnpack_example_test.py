"""Smoke test of examples/mobilenet_xnnpack at --quick size (about 15 s).

Checks what the example promises, not how well it trains: the policy
pruned exactly the 1x1 convolutions to the target and left the rest dense,
the exported sparse file passes the XNNPACK check, the sparse file is
smaller, and the sparse TFLite model's accuracy is what the pruned TF graph
scored (storage changes, the arithmetic does not). The binary runs once as a
subprocess.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from examples.mobilenet_xnnpack import data
from examples.mobilenet_xnnpack import pipeline
from model_pruning.python.xnnpack import check as xnnpack_check

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
  output_dir = str(tmp_path_factory.mktemp('mobilenet'))
  return output_dir, pipeline.run(pipeline.QUICK, output_dir)


def test_upsample_repeats_pixels_over_space_and_channels():
  image = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
  big = data.upsample(image, factor=2)
  assert big.shape == (1, 4, 4, 3)
  np.testing.assert_array_equal(big[0, :, :, 2], [[0, 0, 1, 1], [0, 0, 1, 1],
                                                  [2, 2, 3, 3], [2, 2, 3, 3]])


def test_digits_split_is_real_data_and_disjoint():
  train_images, train_labels, test_images, test_labels = data.load_digits()
  assert len(train_labels) + len(test_labels) == 1797
  assert train_images.shape[1:] == (32, 32, 3) and test_images.max() == 1.0
  assert set(np.unique(test_labels)) == set(range(10))


def test_policy_prunes_only_one_by_ones_to_target(quick_run):
  _, results = quick_run
  assert len(results['pruned']) == 11  # 5 blocks x (expand, project) + last
  assert all(w.endswith(('expand/weights', 'project/weights')) or
             w == 'last/weights' for w in results['pruned'])
  for weight in results['pruned']:
    assert abs(results['mask_sparsity'][weight] - 0.8) < 0.03, weight
  for weight, _ in results['excluded']:
    assert results['mask_sparsity'][weight] == 0.0, weight


def test_exported_model_qualifies_and_is_smaller(quick_run):
  output_dir, results = quick_run
  assert results['xnnpack_engages']
  report = xnnpack_check.check(os.path.join(output_dir,
                                            'mobilenet_sparse.tflite'))
  [cluster] = report.clusters
  assert cluster.engages and abs(cluster.sparsity - 0.8) < 0.03
  assert results['sizes']['sparse_raw'] < results['sizes']['dense_raw']
  assert results['latency_ms']['dense'] > 0 < results['latency_ms']['sparse']


def test_sparse_tflite_scores_what_the_pruned_graph_scores(quick_run):
  _, results = quick_run
  accuracy = results['accuracy']
  # Float rounding may flip a near-tie: at most one of the test images.
  assert abs(accuracy['sparse_tflite'] - accuracy['pruned_tf']) <= (
      1.0 / results['test_images'])
  assert 'sparse TFLite' in pipeline.format_results(results)


def test_binary_quick_prints_the_report(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'examples.mobilenet_xnnpack', '--quick',
       '--output_dir=%s' % tmp_path], capture_output=True, text=True,
      cwd=_REPO_ROOT, env=dict(os.environ, PYTHONPATH=_REPO_ROOT),
      check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'WOULD ENGAGE' in result.stdout
  assert 'single-thread latency' in result.stdout
  assert os.path.exists(tmp_path / 'results.json')
