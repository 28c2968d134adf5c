"""The benchmark scripts run end to end at toy sizes and write their JSON.

No timing is asserted (the machine is shared); this only keeps the scripts
working: flags, table, machine facts and the JSON rows a reader relies on.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_benchmark(module, output, *flags):
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.' + module, '--output=%s' % output]
      + list(flags), cwd=_REPO_ROOT, capture_output=True, text=True,
      timeout=600, env=dict(os.environ, PYTHONPATH=_REPO_ROOT,
                            TF_CPP_MIN_LOG_LEVEL='2'))
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'machine: ' in result.stdout
  with open(output) as f:
    return json.load(f)


@pytest.mark.slow  # three fresh interpreters import TensorFlow
def test_mask_update_benchmark_writes_rows_with_floors(tmp_path):
  report = _run_benchmark('mask_update_benchmark', tmp_path / 'mask.json',
                          '--sizes=64', '--repeats=1', '--warmup=0',
                          '--model_weights=2', '--model_side=32',
                          '--memory_sizes=64')
  assert report['benchmark'] == 'mask_update'
  assert report['machine']['tensorflow'] and report['load_average_after']
  rows = report['rows']
  # 2 weights x (3 methods x {element-wise, 4x4 blocks} + 2:4).
  assert len(rows) == 14
  assert {r['weight'] for r in rows} == {'64x64', '2 x 32x32'}
  for row in rows:
    for key in ('update_ms', 'copy_ms', 'partition_ms', 'tf_mask_ms'):
      assert row[key] > 0
    assert row['x_copy'] == pytest.approx(row['update_ms'] / row['copy_ms'])
    assert isinstance(row['met'], bool) and row['target'].startswith('<=')
    assert row['x_tf_mask'] == pytest.approx(row['update_ms'] /
                                             row['tf_mask_ms'])
    assert row['cold_ms'] > 0
    if row['weight'] == '64x64':  # --memory_sizes: the update allocates.
      assert row['peak_extra_mb'] > 0
      assert row['x_weight_bytes'] == pytest.approx(
          row['peak_extra_mb'] * 2 ** 20 / (64 * 64 * 4))


@pytest.mark.slow
@pytest.mark.parametrize('driver', ['op', 'hook'])
def test_training_overhead_benchmark_has_masks_only_row(tmp_path, driver):
  report = _run_benchmark('training_overhead_benchmark',
                          tmp_path / 'train.json', '--models=mlp',
                          '--frequencies=0,1,10', '--window=2', '--repeats=1',
                          '--in_session_rounds=4', '--warmup=0',
                          '--batch_size=4', '--driver=%s' % driver)
  assert report['driver'] == driver
  rows = report['rows']
  assert [r['pruning_frequency'] for r in rows] == [0, 1, 10]
  masks_only, every_step, tenth = rows
  assert masks_only['target'] is None and masks_only['met'] is None
  assert every_step['target'] == '<= +20%'
  assert every_step['met'] == (every_step['overhead_pct'] <= 20.0)
  assert tenth['points_over_masks_only_row'] == pytest.approx(
      tenth['overhead_pct'] - masks_only['overhead_pct'])
  assert masks_only['points_interleaved'] is None
  assert tenth['points_interleaved'] is not None
  assert tenth['met'] == (tenth['points_over_masks_only'] <= 1.0)
  assert (tenth['points_q25'] <= tenth['points_over_masks_only'] <=
          tenth['points_q75'])
  assert len(tenth['points_rounds']) == 4
  assert tenth['points_over_masks_only'] == pytest.approx(
      np.median(tenth['points_rounds']))
  assert (tenth['points_ci95_low'] <= tenth['points_over_masks_only'] <=
          tenth['points_ci95_high'])
  assert masks_only['points_ci95_low'] is None
  # The default schedule is near sparsity 0 over a run: all-ones masks.
  assert report['initial_sparsity'] == 0.0
  for row in rows:
    assert row['ratio'] == pytest.approx(row['pruned_ms'] / row['unpruned_ms'])
    assert row['mask_sparsity'] == 0.0


def test_training_overhead_pairs_each_round_with_its_own_windows():
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  # Load drifting over the run (a slower machine in later rounds).
  drift = np.linspace(1.0, 1.5, 9)
  base = 8.0 * drift * (1 + 0.01 * rng.standard_normal(9))
  masks_only = base * 1.10
  pruned = base * (1.105 + 0.002 * rng.standard_normal(9))
  overhead, points = training_overhead_benchmark.paired_overheads(
      base, pruned, masks_only)
  assert overhead == pytest.approx(np.median(100 * (pruned / base - 1)))
  assert points == pytest.approx(
      np.median(100 * (pruned / base - masks_only / base)))
  assert abs(points - 0.5) < 0.3
  assert training_overhead_benchmark.paired_overheads(base, pruned)[1] is None


def test_median_interval_covers_the_true_median_about_as_often_as_asked():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  covered = []
  widths = {}
  for n in (40, 160):
    for _ in range(150):
      sample = rng.standard_normal(n)  # True median 0.
      low, high = bench_util.median_interval(sample, block=2,
                                             resamples=1000)
      assert low <= np.median(sample) <= high
      covered.append(low <= 0.0 <= high)
      widths.setdefault(n, []).append(high - low)
  assert 0.88 <= np.mean(covered) <= 0.99
  # Four times the rounds, about half the width (1 / sqrt(n)).
  assert 0.4 <= np.mean(widths[160]) / np.mean(widths[40]) <= 0.6


def test_median_interval_resamples_whole_abba_cycles():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  # Rounds alternate a +3 and a -1 order effect around 1: every resampled
  # cycle keeps one of each, so the median cannot move; resampled round by
  # round, the two sides' counts drift apart and it does.
  alternating = np.tile([4.0, 0.0], 30)
  assert bench_util.median_interval(alternating, block=2) == (2.0, 2.0)
  low, high = bench_util.median_interval(alternating, block=1)
  assert low == 0.0 and high == 4.0
  assert bench_util.median_interval([7.0] * 10) == (7.0, 7.0)
  # Seeded: the same rounds print the same interval.
  sample = np.random.default_rng(2).standard_normal(30)
  assert (bench_util.median_interval(sample) ==
          bench_util.median_interval(sample))
  # A tail shorter than a block is left out.
  assert bench_util.median_interval([1.0, 1.0, 1.0, 1.0, 50.0],
                                    block=2) == (1.0, 1.0)


@pytest.mark.parametrize('values, block, confidence, message', [
    ([1.0, 2.0, 3.0], 2, 0.95, 'at least two blocks of 2 values, got 3'),
    ([1.0, 2.0], 0, 0.95, 'block must be >= 1, got 0'),
    ([1.0, 2.0], 1, 95.0, r'confidence must be in \(0, 1\), got 95.0'),
])
def test_median_interval_rejects_bad_arguments(values, block, confidence,
                                               message):
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=message):
    bench_util.median_interval(values, block=block, confidence=confidence)


@pytest.mark.slow
def test_strip_benchmark_reports_sizes(tmp_path):
  report = _run_benchmark('strip_benchmark', tmp_path / 'strip.json',
                          '--repeats=1', '--warmup=0')
  [row] = report['rows']
  assert row['model'] == 'cifar10'
  assert 0 < row['stripped_bytes'] < row['checkpoint_bytes']


@pytest.mark.slow
def test_conditional_op_benchmark_times_every_variant(tmp_path):
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.conditional_op_benchmark',
       '--cond_output=%s' % (tmp_path / 'cond.json'), '--window=2',
       '--cond_repeats=1', '--batch_size=4'],
      cwd=_REPO_ROOT, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, PYTHONPATH=_REPO_ROOT, TF_CPP_MIN_LOG_LEVEL='2'))
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / 'cond.json') as f:
    rows = json.load(f)['rows']
  assert [r['variant'] for r in rows[:7]] == [
      'masks_only', 'host', 'if_v2', 'cond_v1', 'cond_call', 'gated_call',
      'gated_assign']
  assert {r['update'] for r in rows} == {'never due', 'every step'}
  for row in rows:
    assert row['overhead_pct'] == pytest.approx(
        100 * (row['ms_per_step'] / row['masks_only_ms'] - 1))


class _CallLog(tf.compat.v1.train.SessionRunHook):
  """Records which hook calls reached it."""

  def __init__(self):
    self.calls = []

  def begin(self):
    self.calls.append('begin')

  def after_create_session(self, session, coord):
    self.calls.append('after_create_session')

  def before_run(self, run_context):
    self.calls.append('before_run')

  def after_run(self, run_context, run_values):
    self.calls.append('after_run')


def test_pausable_hook_skips_only_per_run_calls_while_paused():
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  inner = _CallLog()
  pausable = training_overhead_benchmark.PausableHook(inner)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    increment = tf.compat.v1.assign_add(step, 1)
    with tf.compat.v1.train.MonitoredSession(hooks=[pausable]) as session:
      session.run(increment)
      pausable.paused = True
      session.run(increment)
      pausable.paused = False
      session.run(increment)
  assert inner.calls == ['begin', 'after_create_session',
                         'before_run', 'after_run',
                         'before_run', 'after_run']


def test_time_in_session_alternates_the_pair_and_compares_within_rounds(
    monkeypatch):
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  order = []
  window = lambda: order.append('window')
  floor = lambda: order.append('floor')
  # Round r's floor takes 1 + r ms (a machine slowing down), its window 10%
  # more: every round's points are 10 whatever the drift.
  def fake_median_ms(fn, *unused_args):
    fn()
    slow = 1.0 + (len(order) - 1) // 2  # The round the call belongs to.
    return slow * (1.1 if order[-1] == 'window' else 1.0)
  monkeypatch.setattr(bench_util, 'median_ms', fake_median_ms)
  points = training_overhead_benchmark.time_in_session(window, floor, 4)
  assert order == ['window', 'floor', 'floor', 'window'] * 2
  assert points == pytest.approx([10.0] * 4)


@pytest.mark.parametrize('driver', ['op', 'hook'])
def test_floor_trains_without_moving_the_schedule(driver):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    flags.FLAGS(['training_overhead_benchmark', '--window=3',
                 '--batch_size=4', '--driver=%s' % driver])
    config = training_overhead_benchmark.build_window('mlp', 2)
    config.window()
    assert config.global_step() == 3
    # The floor's own steps are taken back: the pruned windows alone move
    # the schedule.
    config.floor()
    assert config.global_step() == 3
    config.window()
    assert config.global_step() == 6
    assert training_overhead_benchmark.build_window('mlp', 0).floor is None


@pytest.mark.parametrize('driver', ['op', 'hook'])
def test_initial_sparsity_reaches_the_masks_the_report_reads(driver):
  """The default schedule leaves the masks all ones over a run; with
  --initial_sparsity=0.5 the first updates prune half, and the report's
  mask_sparsity reads it without moving the schedule."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  for initial, expected in ((0.0, 0.0), (0.5, 0.5)):
    with flagsaver.flagsaver():
      flags.FLAGS(['training_overhead_benchmark', '--window=3',
                   '--batch_size=4', '--driver=%s' % driver,
                   '--initial_sparsity=%g' % initial])
      config = training_overhead_benchmark.build_window('mlp', 1)
      assert config.mask_sparsity() == 0.0  # Before the first update.
      config.window()
      assert config.mask_sparsity() == pytest.approx(expected, abs=0.01)
      assert config.global_step() == 3
  with flagsaver.flagsaver():
    flags.FLAGS(['training_overhead_benchmark', '--batch_size=4'])
    assert training_overhead_benchmark.build_window(
        'mlp', None).mask_sparsity is None
