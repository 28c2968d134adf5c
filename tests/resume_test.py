"""Resuming pruning from a checkpoint (issue 7, point 1).

The pruning state (masks, thresholds, last_mask_update_step and, for the
gradient options, the gradient/old-weight variables) is made of ordinary
global variables, so tf.compat.v1.train.Saver saves and restores it. The slow
test kills a real training process with SIGKILL mid-schedule, restarts it from
its last checkpoint and checks that it prints exactly what an uninterrupted
run printed: same sparsities, thresholds, update steps and weight digests.
"""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scripts',
                       'resume_train.py')
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build(prune_option, frequency=4):
  """Two pruned weights, a settable step and a Pruning object."""
  step = tf.compat.v1.train.get_or_create_global_step()
  for i, shape in enumerate([[6, 5], [4, 3, 2]]):
    with tf.compat.v1.variable_scope('layer%d' % i) as scope:
      weight = tf.compat.v1.get_variable(
          'weights', shape,
          initializer=tf.compat.v1.initializers.random_normal(seed=i))
      pruning.apply_mask(weight, scope, prune_option=prune_option)
  hparams = pruning.get_pruning_hparams().override_from_dict(dict(
      threshold_method='sort', pruning_frequency=frequency,
      prune_option=prune_option, sparsity_function_end_step=20,
      target_sparsity=0.7))
  update = pruning.Pruning(hparams, global_step=step)
  return step, update


def _pruning_state():
  """Every pruning variable, by name (masks, thresholds, steps, gradients)."""
  names = ('mask', 'threshold', 'last_mask_update_step',
           'last_gradient_update_step', 'gradient', 'old_weight',
           'old_old_weight')
  return {v.op.name: v for v in tf.compat.v1.global_variables()
          if v.op.name.split('/')[-1] in names}


@pytest.mark.parametrize('prune_option', [
    'weight', 'first_order_gradient', 'second_order_gradient'],
                         ids=['weight', 'first_order', 'second_order'])
def test_saver_round_trips_every_pruning_variable(tmp_path, prune_option):
  prefix = str(tmp_path / 'model.ckpt')
  with tf.Graph().as_default():
    step, update = _build(prune_option)
    mask_update = update.mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for value in (7, 13):   # two updates, so gradients/olds are non-trivial
        step.load(value, sess)
        for weight in pruning.get_weights():
          weight.load(sess.run(weight) * 1.5 + 0.1, sess)
        sess.run(mask_update)
      saved = sess.run(_pruning_state())
      tf.compat.v1.train.Saver().save(sess, prefix)
  expected_names = {'model_pruning/last_mask_update_step'}
  expected_names.update('layer%d/%s' % (i, n) for i in range(2)
                        for n in ('mask', 'threshold'))
  assert expected_names <= set(saved)
  if prune_option != 'weight':
    assert 'layer0/gradient' in saved
    assert np.any(saved['layer0/gradient'] != 0)
  assert saved['model_pruning/last_mask_update_step'] == 13
  assert 0 < np.mean(saved['layer0/mask'] == 0) < 1

  with tf.Graph().as_default():
    _build(prune_option)
    with tf.compat.v1.Session() as sess:
      tf.compat.v1.train.Saver().restore(sess, prefix)
      restored = sess.run(_pruning_state())
  assert set(restored) == set(saved)
  for name, value in saved.items():
    np.testing.assert_array_equal(restored[name], value, err_msg=name)


def test_restored_run_neither_repeats_nor_skips_an_update(tmp_path):
  """Restart at step 13 after an update at 12 (f=4): next update at 16."""
  prefix = str(tmp_path / 'model.ckpt')
  frequency, stop, total = 4, 13, 25

  def run_steps(sess, step, conditional, steps):
    last = [v for v in tf.compat.v1.global_variables()
            if v.op.name.endswith('last_mask_update_step')][0]
    updated = []
    for value in steps:
      step.load(value, sess)
      sess.run(conditional)
      if sess.run(last) == value:
        updated.append(value)
    return updated

  with tf.Graph().as_default():
    step, update = _build('weight', frequency)
    conditional = update.conditional_mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      before = run_steps(sess, step, conditional, range(1, stop + 1))
      tf.compat.v1.train.Saver().save(sess, prefix)
  with tf.Graph().as_default():
    step, update = _build('weight', frequency)
    conditional = update.conditional_mask_update_op()
    with tf.compat.v1.Session() as sess:
      tf.compat.v1.train.Saver().restore(sess, prefix)
      # The restarted run re-runs the step it was saved at, then goes on.
      after = run_steps(sess, step, conditional, range(stop, total + 1))
  assert before + after == ref.update_steps(range(1, total + 1), begin=0,
                                            end=-1, frequency=frequency)


# --- The killed subprocess ---------------------------------------------------

_STEPS, _SAVE_EVERY, _KILL_AFTER = 30, 4, 14
_LINE = re.compile(r'^step=(\d+) .* last_update=(\d+) ')


def _command(train_dir, delay):
  return [sys.executable, _SCRIPT, '--train_dir=%s' % train_dir,
          '--steps=%d' % _STEPS, '--save_every=%d' % _SAVE_EVERY,
          '--step_delay=%g' % delay,
          '--hparams=threshold_method=sort,threshold_decay=0.5,'
          'pruning_frequency=5,sparsity_function_end_step=24,'
          'target_sparsity=0.8']


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env['PYTHONPATH'] = os.pathsep.join(
      [_REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
  return env


def _step_lines(lines):
  """{step: line} for the per-step report lines."""
  return {int(_LINE.match(l).group(1)): l for l in lines if _LINE.match(l)}


def _run_until_killed(train_dir):
  """Starts the script, SIGKILLs it after step _KILL_AFTER; returns lines."""
  proc = subprocess.Popen(_command(train_dir, delay=0.2), env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
  lines = []
  try:
    for line in proc.stdout:
      lines.append(line.rstrip('\n'))
      match = _LINE.match(line)
      if match and int(match.group(1)) >= _KILL_AFTER:
        proc.send_signal(signal.SIGKILL)
        break
  finally:
    proc.kill()
    proc.stdout.close()
    proc.wait()
  return proc.returncode, lines


@pytest.mark.slow
def test_sigkilled_run_resumes_where_it_stopped(tmp_path):
  reference_dir = tmp_path / 'uninterrupted'
  victim_dir = tmp_path / 'killed'
  reference_dir.mkdir()
  victim_dir.mkdir()
  reference = subprocess.Popen(_command(reference_dir, delay=0.0), env=_env(),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
  returncode, killed_lines = _run_until_killed(victim_dir)
  reference_out, _ = reference.communicate(timeout=600)
  assert reference.returncode == 0
  assert returncode == -signal.SIGKILL
  restarted = subprocess.run(_command(victim_dir, delay=0.0), env=_env(),
                             capture_output=True, text=True, timeout=600,
                             check=True).stdout.splitlines()

  expected = _step_lines(reference_out.splitlines())
  assert sorted(expected) == list(range(1, _STEPS + 1))
  killed = _step_lines(killed_lines)
  last_killed = max(killed)
  assert _KILL_AFTER <= last_killed < _STEPS, 'killed before the end'
  restored_step = int(re.match(r'restored step=(\d+)', restarted[0]).group(1))
  assert restored_step % _SAVE_EVERY == 0
  assert 'saved step=%d' % restored_step in killed_lines
  assert restored_step <= last_killed

  resumed = _step_lines(restarted)
  assert sorted(resumed) == list(range(restored_step + 1, _STEPS + 1))
  for step in killed:
    assert killed[step] == expected[step]
  for step in resumed:
    assert resumed[step] == expected[step]
  # Mask updates: every one of the uninterrupted run, each exactly once.
  def updates(lines_by_step):
    return [s for s, l in sorted(lines_by_step.items())
            if int(_LINE.match(l).group(2)) == s]
  before = [s for s in updates(killed) if s <= restored_step]
  assert before + updates(resumed) == updates(expected)
  assert updates(expected) == ref.update_steps(
      range(1, _STEPS + 1), begin=0, end=-1, frequency=5)
  # The schedule moved past the restart: sparsity grows after it.
  assert expected[_STEPS].split()[1] != expected[restored_step].split()[1]
