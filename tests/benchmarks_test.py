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
  if os.path.exists('/proc/stat'):
    assert report['steal_percent'] >= 0.0
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
                          '--in_session_rounds=12', '--warmup=0',
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
  # 12 rounds: two cycles of the six orders of a pruned row's three runs,
  # six of the masks-only row's two (its run and its twin).
  assert report['block_steps'] == 11 and report['in_session_rounds'] == 12
  assert sorted(tenth['block_ms']) == ['floor', 'same_run', 'window']
  assert all(len(ms) == 12 for ms in tenth['block_ms'].values())
  checked = [(tenth, 'points_over_masks_only', None),
             (tenth, 'points_over_same_run', 'same_run_ci95'),
             (tenth, 'points_over_train_op', 'train_op_ci95'),
             (masks_only, 'executor_offset_points', 'executor_offset_ci95')]
  if driver == 'op':
    # The gate probe runs on the masks-only graph; the judged points are
    # the same run's plus one gate.
    assert sorted(masks_only['block_ms']) == ['gate_chain', 'one_gate',
                                              'twin', 'window']
    checked.append((masks_only, 'gate_points', 'gate_ci95'))
    gate = masks_only['gate_points']
    assert tenth['points_over_masks_only'] == pytest.approx(
        tenth['points_over_same_run'] + gate)
    assert tenth['points_ci95_low'] == pytest.approx(
        tenth['same_run_ci95'][0] + masks_only['gate_ci95'][0])
  else:
    # The hook's own work is in the pruned run alone: no gate to add.
    assert sorted(masks_only['block_ms']) == ['twin', 'window']
    assert masks_only['gate_points'] is None
    assert (tenth['points_over_masks_only'] ==
            tenth['points_over_same_run'])
  # The same-run points split by whether a step ran an update: every step
  # at frequency 1; at 10, the steps 10, 20, ..., 130 of the 132 that the
  # pruned blocks ran after the two steps of the interleaved phase.
  assert every_step['due_steps'] == 12 * 11
  assert every_step['points_not_due'] == 0.0
  assert tenth['due_steps'] == 13
  for row in (every_step, tenth):
    assert row['points_due'] + row['points_not_due'] == pytest.approx(
        row['points_over_same_run'])
    checked += [(row, 'points_due', 'points_due_ci95'),
                (row, 'points_not_due', 'points_not_due_ci95')]
  assert 'due_steps' not in masks_only
  for row, points, interval in checked:
    low, high = ((row['points_ci95_low'], row['points_ci95_high'])
                 if interval is None else row[interval])
    assert low <= row[points] <= high
  assert masks_only['points_ci95_low'] is None
  assert masks_only['points_over_same_run'] is None
  assert tenth['executor_offset_points'] is None
  assert tenth['gate_points'] is None
  # The default schedule is near sparsity 0 over a run: masks near all
  # ones (0 for the masks-only row, which never updates).
  assert report['initial_sparsity'] == 0.0
  assert masks_only['mask_sparsity'] == 0.0
  for row in rows:
    assert row['ratio'] == pytest.approx(row['pruned_ms'] / row['unpruned_ms'])
    assert 0.0 <= row['mask_sparsity'] < 0.01


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


def test_points_over_winsorizes_each_run_at_its_99th_percentile():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  floor = 9.0 * (1 + 0.02 * rng.standard_normal((200, 10)))
  pruned = floor[::-1] * 1.01  # Other rounds' steps, each 1% slower.
  assert bench_util.points_over(pruned, floor) == pytest.approx(1.0, abs=0.2)
  # One preemption (a step 3x as slow) in the floor would read as -1 point
  # in a plain mean; at the cap it is one more slow step.
  preempted = floor.copy()
  preempted[5, 5] = 9.0 * 200
  raw = 100 * (pruned.sum() / preempted.sum() - 1)
  assert raw < -5.0
  assert bench_util.points_over(pruned, preempted) == pytest.approx(
      bench_util.points_over(pruned, floor), abs=0.05)
  # A cost one step in ten pays (a due update, +7% of a step) is kept.
  due = floor.copy()
  due[:, 3] *= 1.07
  assert bench_util.points_over(due, floor) == pytest.approx(0.7, abs=0.05)


def test_points_interval_covers_the_true_points_about_as_often_as_asked():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  covered = []
  widths = {}
  for rounds in (60, 240):
    for _ in range(100):
      # Each round's speed drifts; the pruned steps cost 1% more.
      speed = 1 + 0.03 * rng.standard_normal((rounds, 1))
      floor = 9.0 * speed * (1 + 0.05 * rng.standard_normal((rounds, 10)))
      pruned = 9.09 * speed * (1 + 0.05 * rng.standard_normal((rounds, 10)))
      low, high = bench_util.points_interval(pruned, floor, group=2,
                                             resamples=500)
      assert low <= bench_util.points_over(pruned, floor) <= high
      covered.append(low <= 1.0 <= high)
      widths.setdefault(rounds, []).append(high - low)
  assert 0.88 <= np.mean(covered) <= 0.99
  # Four times the rounds, about half the width (1 / sqrt(n)).
  assert 0.4 <= np.mean(widths[240]) / np.mean(widths[60]) <= 0.6


def test_points_interval_resamples_whole_cycles_of_orders():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  # Whichever block runs first pays 10% (a position effect); the orders
  # alternate, so every whole cycle holds one of each and the interval
  # collapses on the true 0 points; resampled round by round it does not.
  floor = np.tile([[10.0], [11.0]], (30, 5))
  pruned = np.tile([[11.0], [10.0]], (30, 5))
  assert bench_util.points_over(pruned, floor) == pytest.approx(0.0)
  low, high = bench_util.points_interval(pruned, floor, group=2)
  assert low == pytest.approx(0.0) and high == pytest.approx(0.0)
  low, high = bench_util.points_interval(pruned, floor, group=1)
  assert low < -1.0 and high > 1.0
  # Seeded: the same steps print the same interval.
  noisy = floor * (1 + 0.1 * np.random.default_rng(2).random(floor.shape))
  assert (bench_util.points_interval(noisy, floor, 2) ==
          bench_util.points_interval(noisy, floor, 2))


def test_points_split_adds_up_to_the_points_over_the_floor():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  floor = 10.0 + rng.random((24, 11))
  # Four preemptions, in both runs alike, hold their 99th percentiles
  # above every other step: winsorizing clips nothing below.
  floor[5, :4] = 1000.0
  due = np.zeros((24, 11), dtype=bool)
  due[::3, 4] = True
  # A due step costs 8 more; the others 0.1 more.
  pruned = floor + np.where(due, 8.0, 0.1)
  due_points, other_points = bench_util.points_split(pruned, floor, due)
  assert due_points == pytest.approx(100.0 * 8 * 8 / floor.sum())
  assert other_points == pytest.approx(100.0 * 0.1 * (264 - 8) / floor.sum())
  assert due_points + other_points == pytest.approx(
      bench_util.points_over(pruned, floor))
  # Every step in the part: the whole points, and the whole interval.
  everything = np.ones_like(due)
  assert bench_util.points_split(pruned, floor, everything)[1] == 0.0
  assert bench_util.points_interval(
      pruned, floor, 2, part=everything) == pytest.approx(
          bench_util.points_interval(pruned, floor, 2))
  low, high = bench_util.points_interval(pruned, floor, 2, part=due)
  assert low <= due_points <= high


@pytest.mark.parametrize('rounds, group, confidence, message', [
    (3, 2, 0.95, 'at least two groups of 2 rounds, got 3 rounds'),
    (4, 0, 0.95, 'group must be >= 1, got 0'),
    (4, 1, 95.0, r'confidence must be in \(0, 1\), got 95.0'),
])
def test_points_interval_rejects_bad_arguments(rounds, group, confidence,
                                               message):
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  steps = np.ones((rounds, 2))
  with pytest.raises(ValueError, match=message):
    bench_util.points_interval(steps, steps, group, confidence=confidence)


@pytest.mark.parametrize('block_steps,frequency', [
    (10, 10), (10, 100), (11, 10), (11, 100), (12, 10), (11, 1), (4, 6)])
def test_due_step_positions_counts_the_positions_updates_fall_on(
    block_steps, frequency):
  from benchmarks import training_overhead_benchmark as benchmark  # pylint: disable=g-import-not-at-top
  # The rule the schedule follows in the pruned blocks: an update at the
  # first step with last_update + frequency <= step; each round runs one
  # block of the pruned run, which alone moves the step.
  positions, last, step = set(), -frequency, 7
  for _ in range(50 * frequency):
    for position in range(block_steps):
      step += 1
      if last + frequency <= step:
        last = step
        positions.add(position)
  assert benchmark.due_step_positions(block_steps, frequency) == len(
      positions)
  # The default spreads the default frequencies' updates over every position.
  assert benchmark.due_step_positions(11, frequency) == 11


def test_due_steps_follows_the_schedule_over_the_pruned_blocks():
  from benchmarks import training_overhead_benchmark as benchmark  # pylint: disable=g-import-not-at-top
  from model_pruning.python import pruning  # pylint: disable=g-import-not-at-top
  from model_pruning.python import pruning_schedule  # pylint: disable=g-import-not-at-top
  spec = pruning.get_pruning_hparams().parse(
      'pruning_frequency=10,begin_pruning_step=30,end_pruning_step=95')
  schedule = pruning_schedule.Schedule.from_hparams(spec)
  due, last = benchmark.due_steps(
      first_step=2, last_update_step=0, rounds=9, block_steps=11,
      is_due=schedule.is_update_step)
  assert due.shape == (9, 11)
  # The blocks run steps 3..101; updates at 30, 40, ..., 90 (none after
  # the window closes at 95), each at its place in its block.
  steps = 3 + np.arange(99).reshape(9, 11)
  assert steps[due].tolist() == [30, 40, 50, 60, 70, 80, 90]
  assert last == 90
  # Nothing due: the last update stays.
  due, last = benchmark.due_steps(0, 2**30, 3, 11, schedule.is_update_step)
  assert not due.any() and last == 2**30


@pytest.mark.parametrize('session_last, split', [(130, True), (120, False)])
def test_due_split_needs_the_session_to_agree_with_the_replay(
    capsys, session_last, split):
  import types  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark as benchmark  # pylint: disable=g-import-not-at-top
  config = types.SimpleNamespace(
      is_due=lambda step, last: last + 10 <= step,
      last_update=lambda: session_last)
  # Steps 3..134: due at 10, 20, ..., 130; a due step costs 1 ms more.
  due = (3 + np.arange(132).reshape(12, 11)) % 10 == 0
  same_run = np.full((12, 11), 0.01)
  window = same_run + 0.001 * due
  fields = benchmark.due_split(window, same_run, 6, first_step=2,
                               last_update=0, config=config)
  if not split:
    assert fields == {}
    assert 'simulated last update 130, the session\'s 120' in (
        capsys.readouterr().out)
    return
  assert fields['due_steps'] == 13
  assert fields['due_step_us'] == pytest.approx(1000.0)
  assert fields['points_due'] == pytest.approx(100 * 13 * 0.001 / 1.32)
  assert fields['points_not_due'] == pytest.approx(0.0)
  assert fields['points_not_due_ci95'] == pytest.approx((0.0, 0.0))
  low, high = fields['points_due_ci95']
  assert low <= fields['points_due'] <= high


def test_describe_split_prints_both_parts():
  from benchmarks import training_overhead_benchmark as benchmark  # pylint: disable=g-import-not-at-top
  split = dict(due_steps=40, due_step_us=812.4, points_due=0.652,
               points_not_due=-0.1, points_due_ci95=(0.4, 0.9),
               points_not_due_ci95=(-0.5, 0.31))
  assert benchmark.describe_split(split) == (
      '40 due steps, +812 us each over the same step with none due: '
      '+0.65 points [+0.40, +0.90]; the other steps -0.10 points '
      '[-0.50, +0.31]')
  split.update(due_steps=0, due_step_us=None, points_due=0.0,
               points_due_ci95=None, points_not_due_ci95=None)
  assert benchmark.describe_split(split) == (
      '0 due steps: +0.00 points; the other steps -0.10 points')


# /proc/stat's aggregate CPU time states, in their order on the line.
_CPU_STATES = ('user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq',
               'steal')


def _stat_file(tmp_path, name, line):
  path = tmp_path / name
  path.write_text(line + '\ncpu0 1 2 3 4 5 6 7 8 0 0\n')
  return str(path)


def test_cpu_times_reads_the_aggregate_line_of_proc_stat(tmp_path):
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  times = bench_util.cpu_times(_stat_file(
      tmp_path, 'stat', 'cpu  91024 0 11527 83439 394 0 121 16761 0 0'))
  assert times == dict(user=91024, nice=0, system=11527, idle=83439,
                       iowait=394, irq=0, softirq=121, steal=16761)
  # Not Linux, or a kernel without the steal column: unknown, not 0.
  assert bench_util.cpu_times(str(tmp_path / 'missing')) is None
  assert bench_util.cpu_times(_stat_file(
      tmp_path, 'old', 'cpu  1 2 3 4 5 6 7')) is None
  assert bench_util.cpu_times(_stat_file(
      tmp_path, 'core', 'cpu0 1 2 3 4 5 6 7 8')) is None
  if os.path.exists('/proc/stat'):
    assert set(bench_util.cpu_times()) == set(times)


def test_steal_percent_is_the_share_of_cpu_time_between_readings():
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  before = dict.fromkeys(_CPU_STATES, 100)
  after = dict(before, user=400, idle=200, steal=200)  # 100 of 500 ticks.
  assert bench_util.steal_percent(before, after) == pytest.approx(20.0)
  assert bench_util.steal_percent(before, before) is None
  assert bench_util.steal_percent(None, after) is None
  assert bench_util.steal_percent(before, None) is None


def test_report_prints_the_steal_and_warns_on_a_busy_host(
    tmp_path, capsys, monkeypatch):
  from benchmarks import bench_util  # pylint: disable=g-import-not-at-top
  readings = iter([dict.fromkeys(_CPU_STATES, 0),
                   dict(dict.fromkeys(_CPU_STATES, 0), user=75, steal=25)])
  monkeypatch.setattr(bench_util, 'cpu_times', lambda: next(readings))
  before = bench_util.machine()
  bench_util.report('toy', ['a'], [dict(a=1)], before,
                    str(tmp_path / 'toy.json'))
  printed = capsys.readouterr().out
  assert 'steal 25.0%' in printed
  assert 'warning: the host gave 25.0% of CPU time' in printed
  with open(tmp_path / 'toy.json') as f:
    assert json.load(f)['steal_percent'] == pytest.approx(25.0)
  # A quiet host: the figure, no warning.
  readings = iter([dict.fromkeys(_CPU_STATES, 0),
                   dict(dict.fromkeys(_CPU_STATES, 0), user=999, steal=1)])
  bench_util.report('toy', ['a'], [dict(a=1)], bench_util.machine(), None)
  printed = capsys.readouterr().out
  assert 'steal 0.1%' in printed and 'warning' not in printed


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


def test_time_blocks_cycles_through_every_order_of_the_runs():
  import gc  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  order = []
  gc_during = []

  def run_of(name, seconds):
    def run(steps):
      order.append(name)
      gc_during.append(gc.isenabled())
      return np.full(steps, seconds)
    return run

  runs = [run_of('window', 1.1), run_of('floor', 1.0),
          run_of('same_run', 1.05)]
  (window, floor, same_run), group = training_overhead_benchmark.time_blocks(
      runs, rounds=7, block=3)
  assert group == 6
  # 7 rounds round up to two whole cycles of the six orders.
  assert window.shape == floor.shape == same_run.shape == (12, 3)
  rounds = [tuple(order[i:i + 3]) for i in range(0, len(order), 3)]
  assert len(set(rounds[:6])) == 6 and rounds[6:] == rounds[:6]
  assert (window == 1.1).all() and (floor == 1.0).all()
  assert (same_run == 1.05).all()
  assert not any(gc_during)
  assert gc.isenabled()
  (_, _), group = training_overhead_benchmark.time_blocks(runs[:2], 3, 1)
  assert group == 2


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
    masks_only = training_overhead_benchmark.build_window('mlp', 0)
    assert masks_only.floor is None and masks_only.same_run is None
    assert config.twin is None


@pytest.mark.parametrize('driver', ['op', 'hook'])
def test_same_run_floor_runs_no_update_and_leaves_the_schedule(driver):
  """The same-run floor trains through the window's own run with no update
  due, then puts the step and the last update step back."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    flags.FLAGS(['training_overhead_benchmark', '--window=3',
                 '--batch_size=4', '--driver=%s' % driver,
                 '--initial_sparsity=0.5'])
    config = training_overhead_benchmark.build_window('mlp', 1)
    times = config.same_run(4)
    assert times.shape == (4,) and (times > 0).all()
    # Every step was due at pruning_frequency=1, and none updated.
    assert config.mask_sparsity() == 0.0
    assert config.global_step() == 0
    config.window()
    assert config.global_step() == 3
    assert config.mask_sparsity() == pytest.approx(0.5, abs=0.01)
    config.same_run()
    assert config.global_step() == 3


def test_held_off_updates_puts_the_last_update_step_back():
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  from model_pruning.python import pruning  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    weight = tf.compat.v1.get_variable('w', [4, 4])
    pruning.apply_mask(weight)
    prune = pruning.Pruning(pruning.get_pruning_hparams().parse(
        'pruning_frequency=1'), global_step=step)
    update = prune.conditional_mask_update_op()
    hold_off, release = training_overhead_benchmark._held_off_updates(prune)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(tf.compat.v1.assign(step, 7))
      session.run(update)
      assert session.run(prune.last_update_step) == 7
      session.run(tf.compat.v1.assign(step, 8))
      held = hold_off(session)
      assert held == 7
      session.run(update)  # Due at step 8, but held off.
      assert session.run(prune.last_update_step) == 2**30
      release(session, held)
      assert session.run(prune.last_update_step) == 7
      session.run(update)
      assert session.run(prune.last_update_step) == 8


def test_gate_probe_chains_never_due_gates_after_the_train_op():
  from benchmarks import training_overhead_benchmark as overhead  # pylint: disable=g-import-not-at-top
  from model_pruning.python import pruning  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default() as graph:
    step = tf.compat.v1.train.get_or_create_global_step()
    weight = tf.compat.v1.get_variable('w', [4, 4])
    masked = pruning.apply_mask(weight)
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
        tf.reduce_sum(masked), global_step=step)
    one, chained = overhead.gate_probe(train_op, step)
    gates = [op for op in graph.get_operations()
             if op.name.startswith('gate_probe/conditional_mask_update')
             and op.type == 'NoOp']
    assert len(gates) == 1 + overhead.GATE_CHAIN
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for op in (one, chained, chained):
        session.run(op)
      # Three train steps, and no gate was due.
      assert session.run(step) == 3
      last = tf.compat.v1.get_collection(
          tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, 'gate_probe/last_mask')
      assert session.run(last) == [0]
      assert (session.run(pruning.get_masks()[0]) == 1.0).all()
  points, interval = overhead.gate_share(4.0, (2.0, 6.0))
  assert points == pytest.approx(4.0 / (overhead.GATE_CHAIN - 1))
  assert interval == pytest.approx((2.0 / 20, 6.0 / 20))
  assert overhead.gate_share(4.0, None)[1] is None


def test_twin_runs_the_train_op_through_a_second_executor():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from benchmarks import training_overhead_benchmark  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    flags.FLAGS(['training_overhead_benchmark', '--batch_size=4'])
    config = training_overhead_benchmark.build_window('mlp', 0)
    assert config.twin(2).shape == (2,)
    assert config.window(3).shape == (3,)
    assert config.global_step() == 5  # Both train.


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
