"""Pruning under tf.distribute.MirroredStrategy in graph mode (issue 7, pt 3).

tests/scripts/mirrored_train.py splits the CPU into two logical devices
before TensorFlow initialises, so it runs in its own process: the split would
otherwise change the devices every other test in this process sees. It trains
the same model (apply_mask dense + MaskedFullyConnected) with a
MirroredStrategy over the two devices and on one device, building the mask
update in cross-replica context, and reports both runs as JSON.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import reference as ref

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scripts',
                       'mirrored_train.py')
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Mirrors the script: f=2 from step 0, s: 0 -> 0.75 over steps 0..8, sort.
_FREQUENCY, _SCHEDULE_END, _TARGET = 2, 8, 0.75
_MASK_SIZES = {'hidden/mask:0': 16 * 32, 'out/mask:0': 32 * 4}


@pytest.fixture(scope='module')
def runs():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env['PYTHONPATH'] = os.pathsep.join(
      [_REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
  result = subprocess.run([sys.executable, _SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


pytestmark = pytest.mark.slow


def test_mirrored_run_has_two_replicas_on_two_devices(runs):
  mirrored = runs['mirrored']
  assert mirrored['strategy'] == 'MirroredStrategy'
  assert mirrored['num_replicas'] == [2, 2]
  for devices in mirrored['devices']:
    assert len(set(devices)) == 2, devices
  assert runs['single']['num_replicas'] == [1, 1]


def test_mask_update_is_built_in_cross_replica_context(runs):
  assert runs['mirrored']['update_in_cross_replica_context'] is True


def test_every_replica_sees_the_same_masks(runs):
  assert runs['mirrored']['replica_masks_equal'] is True


def test_achieved_sparsity_equals_single_device_run(runs):
  assert runs['mirrored']['sparsity'] == runs['single']['sparsity']
  for name in _MASK_SIZES:
    np.testing.assert_array_equal(runs['mirrored']['masks'][name],
                                  runs['single']['masks'][name])
  for mirrored, single in zip(runs['mirrored']['weights'],
                              runs['single']['weights']):
    np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)


def test_sparsity_follows_the_schedule(runs):
  """After step t the masks hold s(L) of the last update L <= t (sort)."""
  names = list(runs['mirrored']['masks'])
  assert sorted(names) == sorted(_MASK_SIZES)
  for index, achieved in enumerate(runs['mirrored']['sparsity']):
    step = index + 1
    updates = ref.update_steps(range(1, step + 1), begin=0, end=-1,
                               frequency=_FREQUENCY)
    for name, value in zip(names, achieved):
      size = _MASK_SIZES[name]
      if not updates:
        expected = 0.0
      else:
        scheduled = ref.scheduled_sparsity(
            updates[-1], begin_step=0, end_step=_SCHEDULE_END, initial=0.0,
            target=_TARGET, exponent=3.0, dtype=np.float32)
        expected = 1.0 - ref.keep_count(size, scheduled) / size
      assert value == pytest.approx(expected, abs=1e-7), (step, name)
