"""Tests of the CIFAR-10 size/accuracy sweep (examples/cifar10/cifar10_sweep).

Fast tests cover the grid, the hparams it builds (checked against the
schedule formula), the table, the CSV and the plot fallback; one slow test
runs `--quick` end to end as a subprocess, as a user would.
"""
import csv
import os
import subprocess
import sys

import pytest

from examples.cifar10 import sweep
from examples.cifar10 import training
from model_pruning.python import pruning_spec
from model_pruning.python import sparsity_plots

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _row(name, sparsity, accuracy):
  return dict(name=name, achieved_sparsity=sparsity, accuracy=accuracy,
              stripped_raw=4000, stripped_gzip=900, tflite_dense=4100,
              tflite_sparse=700, tflite_dense_gzip=950, tflite_sparse_gzip=650)


def test_grid_is_schedules_by_targets_then_m_by_n():
  grid = sweep.make_grid(['constant', 'cubic'], [0.5, 0.9], 100,
                                 m_by_n='2:4')
  assert [config.name for config in grid] == [
      'constant_0.5', 'constant_0.9', 'cubic_0.5', 'cubic_0.9', 'cubic_2of4']
  assert 'sparsity_m_by_n=2:4' in grid[-1].hparams
  assert training.parse_hparams(grid[-1].hparams).target_sparsity == 0.5


def test_grid_without_m_by_n():
  grid = sweep.make_grid(['cubic'], [0.75], 100, m_by_n='')
  assert [config.name for config in grid] == ['cubic_0.75']


@pytest.mark.parametrize('schedule, target, expected', [
    # s(t) = target + (s_i - target) (1 - p)^3, p = (t - 10) / (70 - 10).
    ('cubic', 0.9, lambda p: 0.9 * (1.0 - (1.0 - p) ** 3)),
    ('cubic', 0.5, lambda p: 0.5 * (1.0 - (1.0 - p) ** 3)),
    ('constant', 0.75, lambda p: 0.75),
], ids=['cubic_0.9', 'cubic_0.5', 'constant_0.75'])
def test_schedule_hparams_follow_the_formula(schedule, target, expected):
  hparams = training.parse_hparams(
      sweep.schedule_hparams(schedule, target, max_steps=100))
  assert (hparams.begin_pruning_step, hparams.sparsity_function_begin_step,
          hparams.sparsity_function_end_step, hparams.pruning_frequency) == (
              10, 10, 70, 5)
  for step in (10, 25, 40, 70, 100):
    progress = min(max((step - 10) / 60.0, 0.0), 1.0)
    assert pruning_spec.scheduled_sparsity(step, hparams) == (
        pytest.approx(expected(progress), abs=1e-12))


def test_schedule_hparams_rejects_unknown_schedule():
  with pytest.raises(ValueError, match="'constant' or 'cubic', got 'linear'"):
    sweep.schedule_hparams('linear', 0.5, max_steps=100)


def test_bad_m_by_n_names_the_value():
  with pytest.raises(ValueError, match="got '4:2'"):
    sweep.make_grid(['cubic'], [0.5], 100, m_by_n='4:2')


def test_table_has_one_line_per_run_with_the_numbers():
  rows = [_row('cubic_0.9', 0.9, 0.5), _row('constant_0.5', 0.5, 0.75)]
  lines = sweep.format_table(rows).splitlines()
  assert lines[0].split()[:3] == ['name', 'sparsity', 'accuracy']
  assert lines[1].split() == ['cubic_0.9', '0.900', '0.500', '4000', '900',
                              '4100', '700']
  assert lines[2].split()[:3] == ['constant_0.5', '0.500', '0.750']


def test_csv_round_trips_the_rows(tmp_path):
  rows = [_row('cubic_0.9', 0.9, 0.5)]
  path = str(tmp_path / 'sweep.csv')
  sweep.write_csv(rows, path)
  with open(path, newline='') as f:
    [read] = list(csv.DictReader(f))
  assert list(read) == list(sweep.COLUMNS)
  assert {key: str(value) for key, value in rows[0].items()} == read


def test_plot_is_skipped_with_a_message_without_matplotlib(
    tmp_path, monkeypatch, capsys):
  def missing():
    raise sparsity_plots.MissingMatplotlibError('no matplotlib')
  monkeypatch.setattr(sparsity_plots, 'require_pyplot', missing)
  path = tmp_path / 'sweep.png'
  assert not sweep.plot([_row('a', 0.5, 0.5)], str(path))
  assert 'matplotlib is not installed: skipping the plot' in (
      capsys.readouterr().out)
  assert not path.exists()


def test_plot_writes_a_png(tmp_path):
  path = tmp_path / 'sweep.png'
  assert sweep.plot([_row('a', 0.5, 0.5), _row('b', 0.9, 0.25)],
                            str(path))
  assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_quick_sweep_writes_csv_and_png(tmp_path):
  work_dir = tmp_path / 'sweep'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  process = subprocess.run(
      [sys.executable, '-m', 'examples.cifar10.cifar10_sweep', '--quick',
       '--work_dir=%s' % work_dir], cwd=_REPO_ROOT, env=env,
      capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode == 0, process.stdout[-3000:] + process.stderr[
      -3000:]
  with open(work_dir / 'sweep.csv', newline='') as f:
    rows = list(csv.DictReader(f))
  assert [row['name'] for row in rows] == ['constant_0.9', 'cubic_2of4']
  by_name = {row['name']: row for row in rows}
  # Histogram thresholds (256 bins) land near the target; 2:4 is exact.
  assert float(by_name['constant_0.9']['achieved_sparsity']) == pytest.approx(
      0.9, abs=0.03)
  assert float(by_name['cubic_2of4']['achieved_sparsity']) == pytest.approx(
      0.5, abs=0.01)
  for row in rows:
    assert 0.0 <= float(row['accuracy']) <= 1.0
    assert int(row['tflite_sparse']) < int(row['tflite_dense'])
    assert int(row['stripped_gzip']) < int(row['stripped_raw'])
  assert (work_dir / 'sweep.png').read_bytes()[:4] == b'\x89PNG'
  table = process.stdout[process.stdout.index('CIFAR-10 sweep: 2 runs'):]
  assert 'constant_0.9' in table and 'cubic_2of4' in table
