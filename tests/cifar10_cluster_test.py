"""The CIFAR-10 example on a local ps/worker cluster, and its cluster config.

The slow test runs `python -m examples.cifar10.local_cluster` (1 ps, 2
workers, a few steps): it trains on the cluster, evaluates and strips. The
fast tests check how cluster flags and TF_CONFIG become a task.
"""
import json
import os
import subprocess
import sys

import pytest

from examples.cifar10 import cluster
from examples.cifar10 import task_processes

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flags_make_a_task_with_worker_zero_as_chief():
  task = cluster.from_flags('127.0.0.1:1', '127.0.0.1:2,127.0.0.1:3',
                            'worker', 0)
  assert task.cluster == {'ps': ['127.0.0.1:1'],
                          'worker': ['127.0.0.1:2', '127.0.0.1:3']}
  assert task.is_chief and task.num_workers == 2
  assert cluster.from_flags('', '', None, 0) is None


def test_tf_config_makes_the_same_task():
  text = json.dumps({'cluster': {'ps': ['127.0.0.1:1'],
                                 'worker': ['127.0.0.1:2', '127.0.0.1:3']},
                     'task': {'type': 'worker', 'index': 1}})
  assert cluster.from_tf_config(text) == cluster.from_flags(
      '127.0.0.1:1', '127.0.0.1:2,127.0.0.1:3', 'worker', 1)
  assert cluster.from_tf_config('') is None


@pytest.mark.parametrize('args, message', [
    (('', '127.0.0.1:2', None, 0), 'needs --worker_hosts and --job_name'),
    (('127.0.0.1', '127.0.0.1:2', 'ps', 0), 'host:port pairs'),
    (('127.0.0.1:1', '127.0.0.1:2', 'worker', 1), 'index 1 is out of range'),
], ids=['no_job', 'no_port', 'bad_index'])
def test_bad_flags_are_named(args, message):
  with pytest.raises(ValueError, match=message):
    cluster.from_flags(*args)


def test_bad_tf_config_is_named():
  with pytest.raises(ValueError, match='TF_CONFIG must be JSON'):
    cluster.from_tf_config('{"task": {}}')
  with pytest.raises(ValueError, match='job must be "ps" or "worker"'):
    cluster.from_tf_config(json.dumps({'cluster': {'worker': ['a:1']},
                                       'task': {'type': 'chief'}}))


def test_unreachable_task_times_out_with_its_address():
  address = '127.0.0.1:%d' % task_processes.free_ports(1)[0]
  with pytest.raises(TimeoutError, match='could not reach the task at %s'
                     % address):
    cluster.wait_for_tasks([address], timeout_s=0.5, poll_s=0.1)


@pytest.mark.slow
def test_launcher_trains_evaluates_and_strips_on_a_cluster(tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
  env['PYTHONPATH'] = os.pathsep.join(
      [_REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
  work_dir = str(tmp_path / 'job')
  # 30 steps: the ramp ends at step 21 and updates fall every 10 steps from
  # step 10 on, at the chief's first run past each (the other worker moves
  # the step too). With 20 steps (ramp end 14) a first update at step 11
  # left the next one due at 21, past the end: the masks kept s(11) = 0.886.
  result = subprocess.run(
      [sys.executable, '-m', 'examples.cifar10.local_cluster', '--workers=2',
       '--ps=1', '--max_steps=30', '--batch_size=16', '--test_records=100',
       '--timeout_secs=240', '--work_dir=' + work_dir],
      cwd=_REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  for role in ('ps0', 'worker0', 'worker1'):
    assert '\n[%s] ' % role in result.stdout, role
  with open(os.path.join(work_dir, 'summary.json')) as f:
    summary = json.load(f)
  assert summary['global_step'] >= 30
  assert summary['workers'] == 2 and len(
      summary['sec_per_batch_per_worker']) == 2
  assert not summary['masks_left_in_stripped_model']
  for layer in summary['layers']:
    assert layer['mask_sparsity'] == pytest.approx(
        summary['scheduled_sparsity'], abs=0.01), layer
    assert layer['stripped_weight_sparsity'] == pytest.approx(
        layer['mask_sparsity'], abs=1e-6)
