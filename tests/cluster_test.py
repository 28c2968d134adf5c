"""Pruning on TensorFlow's distributed runtime, on real local clusters.

Every task is a process (tests/scripts/cluster_task.py) started by
examples/cifar10/task_processes.py: loopback addresses on ports picked at
run time, a private network namespace where the machine allows one, a
lifetime per process, and every process killed at fixture teardown. One
module-scoped cluster per scenario:

* async: 1 ps + 2 workers, PruningHook on the chief; worker 1 is killed
  mid-run and restarted and must rejoin;
* sync: 1 ps + 2 workers with SyncReplicasOptimizer (mask update inside the
  aggregated apply, no start-up tokens), against a single-process run fed
  the same batches, bit for bit;
* partitioned: 2 ps + 2 workers, the hidden weight split over both ps,
  ModelPruningHook on the chief; the chief is killed after a checkpoint and
  restarted from it;
* MultiWorkerMirroredStrategy: 2 workers from TF_CONFIG, graph mode;
* a worker whose ps never comes up fails with a clear error.
"""
import json
import os
import sys

import numpy as np
import pytest

from examples.cifar10 import task_processes
from tests import reference as ref

pytestmark = pytest.mark.slow

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_REPO_ROOT, 'tests', 'scripts', 'cluster_task.py')
# Mirrors cluster_task.HPARAMS: f=2 from 0, s: 0 -> 0.75 over steps 0..10.
_FREQUENCY, _SCHEDULE_END, _TARGET = 2, 10, 0.75
_MASK_SIZES = {'hidden/mask': 16 * 32, 'out/mask': 32 * 4}
_MAX_STEPS = 30
_WAIT_S = 150


def _env(**extra):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
  env['PYTHONPATH'] = os.pathsep.join(
      [_REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
  env.update(extra)
  return env


def _argv(role, **flags):
  argv = [sys.executable, _SCRIPT, '--role=' + role]
  for name, value in flags.items():
    if value is True:
      argv.append('--' + name)
    elif value is not None:
      argv.append('--%s=%s' % (name, value))
  return argv


def _load(out_dir, name):
  with open(os.path.join(out_dir, name + '.json')) as f:
    return json.load(f)


def _start_ps_workers(cluster, num_ps, out_dir, **worker_flags):
  """Starts the ps tasks and both workers; returns (spec, workers)."""
  spec = {'ps': task_processes.loopback_addresses(num_ps),
          'worker': task_processes.loopback_addresses(2)}
  text = json.dumps(spec)
  for i in range(num_ps):
    cluster.start('ps%d' % i, _argv('ps', cluster=text, task_index=i))
  workers = [cluster.start('worker%d' % i, _argv(
      'worker', cluster=text, task_index=i, out_dir=out_dir,
      max_steps=_MAX_STEPS, **worker_flags)) for i in range(2)]
  return text, workers


def _expected_sparsity(name, update_step):
  size = _MASK_SIZES[name]
  scheduled = ref.scheduled_sparsity(
      update_step, begin_step=0, end_step=_SCHEDULE_END, initial=0.0,
      target=_TARGET, exponent=3.0, dtype=np.float32)
  return 1.0 - ref.keep_count(size, scheduled) / size


def _mask_sparsity(mask):
  mask = np.asarray(mask)
  return 1.0 - np.count_nonzero(mask) / mask.size


def _check_bookkeeping(trace, first_last_update=0, whole_masks=True):
  """One updater, no double and no skipped update, scheduled sparsity.

  trace rows are [global step, last_mask_update_step, sparsities] read by
  the chief after each of its steps.
  """
  last = first_last_update
  for index, (step, update, sparsities) in enumerate(trace):
    assert last <= update <= step, (index, trace[index])
    if update != last:
      assert update - last >= _FREQUENCY, ('double update', last, update)
      for name, value in zip(sorted(_MASK_SIZES) if whole_masks else [],
                             sparsities):
        assert value == pytest.approx(_expected_sparsity(name, update),
                                      abs=1e-7), (update, name)
    if index + 1 < len(trace) and step >= update + _FREQUENCY:
      assert trace[index + 1][1] > update, ('skipped update', trace[index])
    last = update


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp('reference'))
  with task_processes.Cluster(lifetime_s=_WAIT_S, env=_env(),
                              echo=False) as cluster:
    task = cluster.start('reference', _argv(
        'reference', out_dir=out_dir, max_steps=_MAX_STEPS))
    assert task.wait(_WAIT_S) == 0, task.output()[-3000:]
  return _load(out_dir, 'reference')


@pytest.fixture(scope='module')
def async_run(tmp_path_factory):
  """1 ps + 2 workers, async; worker 1 killed mid-run and restarted."""
  out_dir = str(tmp_path_factory.mktemp('async'))
  hold = os.path.join(out_dir, 'release')
  with task_processes.Cluster(lifetime_s=_WAIT_S, env=_env(),
                              echo=False) as cluster:
    text, workers = _start_ps_workers(cluster, 1, out_dir, hold_file=hold,
                                      step_sleep=0.05)
    workers[1].wait_for(r'^step \d+', _WAIT_S)
    workers[1].kill()
    restarted = cluster.start('worker1-restarted', _argv(
        'worker', cluster=text, task_index=1, out_dir=out_dir,
        max_steps=_MAX_STEPS, hold_file=hold))
    restarted.wait_for(r'^step \d+', _WAIT_S)
    with open(hold, 'w') as f:
      f.write('go')
    codes = [task.wait(_WAIT_S) for task in (workers[0], restarted)]
    assert codes == [0, 0], workers[0].output()[-3000:] + restarted.output(
    )[-3000:]
    return dict(chief=_load(out_dir, 'worker0'),
                other=_load(out_dir, 'worker1'))


def test_async_pruning_variables_live_on_the_ps(async_run):
  devices = async_run['chief']['devices']
  for name in ['hidden/weights', 'hidden/mask', 'hidden/threshold',
               'out/kernel', 'out/mask', 'out/threshold',
               'cluster_pruning/last_mask_update_step', 'global_step']:
    assert devices[name] == '/job:ps/task:0', (name, devices[name])


def test_async_every_weight_reaches_its_scheduled_sparsity(async_run):
  final = async_run['chief']['final']
  assert final['global_step'] >= _MAX_STEPS
  assert final['last_update'] >= _SCHEDULE_END
  for name, mask in final['masks'].items():
    assert _mask_sparsity(mask) == pytest.approx(
        _expected_sparsity(name, final['last_update']), abs=1e-7), name


def test_async_workers_read_identical_masks(async_run):
  assert async_run['other']['final']['masks'] == async_run['chief']['final'][
      'masks']
  assert async_run['other']['final']['thresholds'] == async_run['chief'][
      'final']['thresholds']


def test_async_update_bookkeeping_shows_no_double_update(async_run):
  _check_bookkeeping(async_run['chief']['trace'])


def test_killed_worker_rejoins_and_training_completes(async_run):
  assert async_run['other']['local_steps'] >= 1  # the restarted worker's
  assert async_run['other']['final']['global_step'] >= _MAX_STEPS


@pytest.fixture(scope='module')
def sync_run(tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp('sync'))
  with task_processes.Cluster(lifetime_s=_WAIT_S, env=_env(),
                              echo=False) as cluster:
    _, workers = _start_ps_workers(cluster, 1, out_dir, variant='sync')
    codes = [task.wait(_WAIT_S) for task in workers]
    assert codes == [0, 0], '\n'.join(t.output()[-3000:] for t in workers)
  return dict(chief=_load(out_dir, 'worker0'), other=_load(out_dir, 'worker1'))


def test_sync_trajectory_equals_single_process(sync_run, reference):
  """At every global step the chief saw, the same update and sparsities.

  Rows are keyed by step, not by the chief's run: a run whose gradient an
  accumulator dropped as stale would not move the step.
  """
  by_step = {row[0]: row for row in sync_run['chief']['trace']}
  expected = {row[0]: row for row in reference['trace']}
  assert _MAX_STEPS in by_step and len(by_step) >= _MAX_STEPS // 2
  for step, row in by_step.items():
    if step:  # step 0: before the first apply, no reference row
      assert row == expected[step], step
  _check_bookkeeping(sync_run['chief']['trace'])


def test_sync_masks_equal_single_process(sync_run, reference):
  assert sync_run['chief']['final']['masks'] == reference['final']['masks']
  assert sync_run['other']['final']['masks'] == reference['final']['masks']
  for got, want in zip(sync_run['chief']['final']['weights'],
                       reference['final']['weights']):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope='module')
def partitioned_run(tmp_path_factory):
  """2 ps, partitioned hidden weight; chief killed after a checkpoint."""
  out_dir = str(tmp_path_factory.mktemp('partitioned'))
  ckpt_dir = os.path.join(out_dir, 'ckpt')
  hold = os.path.join(out_dir, 'release')
  flags = dict(partitioned=True, hook='model_pruning', ckpt_dir=ckpt_dir,
               save_steps=4, hold_file=hold, step_sleep=0.05)
  with task_processes.Cluster(lifetime_s=_WAIT_S, env=_env(),
                              echo=False) as cluster:
    text, workers = _start_ps_workers(cluster, 2, out_dir, **flags)
    chief = workers[0]
    chief.wait_for(r'^checkpoint saved at step (1[2-9]|[2-9]\d)', _WAIT_S)
    chief.kill()
    restarted = cluster.start('worker0-restarted', _argv(
        'worker', cluster=text, task_index=0, out_dir=out_dir,
        max_steps=_MAX_STEPS, **flags))
    restarted.wait_for(r'^step \d+', _WAIT_S)
    with open(hold, 'w') as f:
      f.write('go')
    codes = [task.wait(_WAIT_S) for task in (restarted, workers[1])]
    assert codes == [0, 0], restarted.output()[-3000:] + workers[1].output(
    )[-3000:]
  return dict(chief=_load(out_dir, 'worker0'), other=_load(out_dir, 'worker1'))


def test_partitioned_weight_and_mask_span_both_ps(partitioned_run):
  devices = partitioned_run['chief']['devices']
  for name in ['hidden/weights', 'hidden/mask']:
    shards = {devices['%s/part_%d' % (name, i)] for i in range(2)}
    assert shards == {'/job:ps/task:0', '/job:ps/task:1'}, (name, devices)


def test_partitioned_weights_reach_scheduled_sparsity(partitioned_run):
  final = partitioned_run['chief']['final']
  assert final['masks'] == partitioned_run['other']['final']['masks']
  for name, mask in _full_masks(final['masks']).items():
    assert _mask_sparsity(mask) == pytest.approx(
        _expected_sparsity(name, final['last_update']), abs=1e-7), name


def _full_masks(masks):
  """Joins '<name>/part_<i>' shards (axis 0) into '<name>'."""
  full = {}
  for name in sorted(masks):
    base = name.split('/part_')[0]
    full.setdefault(base, []).append(np.asarray(masks[name]))
  return {name: np.concatenate(parts) for name, parts in full.items()}


def test_restarted_chief_continues_from_its_checkpoint(partitioned_run):
  chief = partitioned_run['chief']
  checkpoint, first = chief['resumed_from'], chief['first_state']
  assert checkpoint is not None
  assert first['last_update'] == checkpoint['last_update'] >= 12
  assert first['global_step'] >= checkpoint['global_step']
  restored = _full_masks(first['masks'])
  for name, mask in checkpoint['masks'].items():
    np.testing.assert_array_equal(restored[name], mask)
    assert _mask_sparsity(mask) == pytest.approx(
        _expected_sparsity(name, checkpoint['last_update']), abs=1e-7)
  assert sorted(first['thresholds']) == sorted(
      checkpoint['thresholds'].values())
  _check_bookkeeping(chief['trace'], first_last_update=first['last_update'],
                     whole_masks=False)


@pytest.fixture(scope='module')
def mwms_run(tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp('mwms'))
  hosts = task_processes.loopback_addresses(2)
  with task_processes.Cluster(lifetime_s=_WAIT_S, echo=False) as cluster:
    workers = [cluster.start('worker%d' % i, _argv(
        'mwms', out_dir=out_dir, max_steps=_MAX_STEPS), env=_env(
            TF_CONFIG=json.dumps({'cluster': {'worker': hosts},
                                  'task': {'type': 'worker', 'index': i}})))
               for i in range(2)]
    codes = [task.wait(_WAIT_S) for task in workers]
    assert codes == [0, 0], '\n'.join(t.output()[-3000:] for t in workers)
  return [_load(out_dir, 'mwms%d' % i) for i in range(2)]


def test_multi_worker_mirrored_strategy_in_graph_mode(mwms_run, reference):
  for run in mwms_run:
    assert run['ok'] and run['num_replicas'] == 2
    assert run['trace'] == [row[2] for row in reference['trace']]
    assert run['masks'] == reference['final']['masks']


def test_worker_without_ps_fails_with_a_clear_error(tmp_path):
  port = task_processes.free_ports(1)[0]  # nothing listens there
  spec = json.dumps({'ps': ['127.0.0.1:%d' % port],
                     'worker': task_processes.loopback_addresses(1)})
  with task_processes.Cluster(lifetime_s=_WAIT_S, env=_env(),
                              echo=False) as cluster:
    worker = cluster.start('worker0', _argv(
        'worker', cluster=spec, task_index=0, out_dir=str(tmp_path),
        connect_timeout=3))
    assert worker.wait(_WAIT_S) != 0
  assert ('TimeoutError: could not reach the task at 127.0.0.1:%d within 3 s'
          % port) in worker.output()
