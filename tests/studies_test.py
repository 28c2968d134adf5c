"""Fast tests of the real-data studies' building blocks (no training).

The studies themselves run end to end in tests/studies_end_to_end_test.py;
here: the sunspot windows, the attempt grid and its hparams (checked against
the schedule formula s(t) = s_f + (s_i - s_f)(1 - t/T)^3), the data splits,
the dense deltas and the CSV round trip.
"""
import numpy as np
import pytest

import model_pruning
from examples.pruning_study import attempts
from examples.pruning_study import datasets
from examples.pruning_study import report
from model_pruning.python import pruning_spec


def test_windows_pair_each_window_with_the_next_value():
  inputs, targets = datasets.windows(np.array([1., 2., 3., 4.]), 2)
  np.testing.assert_array_equal(inputs[..., 0], [[1., 2.], [2., 3.]])
  np.testing.assert_array_equal(targets, [3., 4.])


@pytest.mark.parametrize('window', [0, 4], ids=['zero', 'whole_series'])
def test_windows_reject_bad_window(window):
  with pytest.raises(ValueError, match='window must be in'):
    datasets.windows(np.arange(4.0), window)


def test_grid_names_and_order():
  grid = attempts.make_grid(100, [0.5, 0.9], m_by_n='2:4')
  assert [a.name for a in grid] == [
      'dense', 'constant_0.5', 'constant_0.9', 'polynomial_0.5',
      'polynomial_0.9', 'constant_2of4', 'polynomial_2of4']
  assert grid[0].hparams is None
  assert [a.target for a in grid[-2:]] == [0.5, 0.5]


@pytest.mark.parametrize('schedule', attempts.SCHEDULES)
@pytest.mark.parametrize('step', [0, 10, 25, 50, 99])
def test_hparams_follow_the_schedule_formula(schedule, step):
  steps, target = 100, 0.8
  text = attempts.pruning_hparams(schedule, target, steps)
  spec = model_pruning.get_pruning_hparams().parse(text)
  assert spec.threshold_decay == 0.0 and spec.threshold_method == 'sort'
  assert spec.pruning_frequency == steps // 20
  initial = target if schedule == 'constant' else 0.0
  progress = min(step / (steps // 2), 1.0)
  expected = target + (initial - target) * (1.0 - progress) ** 3
  assert pruning_spec.scheduled_sparsity(step, spec) == pytest.approx(
      expected)


def test_hparams_carry_m_by_n_and_do_not_prune():
  spec = model_pruning.get_pruning_hparams().parse(attempts.pruning_hparams(
      'constant', 0.5, 100, m_by_n='2:4', do_not_prune=['conv1/']))
  assert spec.sparsity_m_by_n == '2:4'
  assert list(spec.do_not_prune) == ['conv1/']


@pytest.mark.parametrize('kwargs, message', [
    (dict(schedule='cubic', target=0.5, steps=100), 'schedule must be'),
    (dict(schedule='constant', target=1.0, steps=100), 'target sparsity'),
    (dict(schedule='constant', target=0.5, steps=1), 'steps must be'),
], ids=['schedule', 'target', 'steps'])
def test_hparams_reject_bad_values(kwargs, message):
  with pytest.raises(ValueError, match=message):
    attempts.pruning_hparams(**kwargs)


def test_digits_split_is_seeded_and_covers_every_scan():
  first, again = datasets.load_digits(seed=0), datasets.load_digits(seed=0)
  np.testing.assert_array_equal(first.test_y, again.test_y)
  assert len(first.train_x) + len(first.test_x) == 1797
  assert first.train_x.shape[1:] == (8, 8, 1)
  assert 0.0 <= first.train_x.min() and first.train_x.max() <= 1.0


def test_sunspots_split_is_chronological():
  series = datasets.sunspot_series()
  data = datasets.load_sunspots(window=12)
  assert len(series) == 309
  test_targets = data.test_y * data.target_std + data.target_mean
  # float32 targets: equal to the series within float32 rounding.
  np.testing.assert_allclose(test_targets, series[-len(test_targets):],
                             atol=1e-5 * series.max())
  assert len(data.train_y) + len(data.test_y) == 309 - 12


def test_dense_deltas_in_points_and_percent():
  rows = [dict(model='c', attempt='dense', accuracy=0.98),
          dict(model='c', attempt='constant_0.8', accuracy=0.972),
          dict(model='r', attempt='dense', rmse=50.0, mae=40.0),
          dict(model='r', attempt='constant_0.8', rmse=55.0, mae=41.0)]
  report.add_dense_deltas(rows)
  assert [r['vs_dense'] for r in rows] == [0.0, pytest.approx(-0.8), 0.0,
                                           pytest.approx(10.0)]


def test_csv_round_trip_leaves_missing_metrics_empty(tmp_path):
  row = {key: 1 for key in report.COLUMNS if key not in ('accuracy',)}
  path = str(tmp_path / 'r.csv')
  report.write_csv([row], path)
  [read] = report.read_csv(path)
  assert tuple(read) == report.COLUMNS
  assert read['accuracy'] == '' and read['rmse'] == '1'


def test_parse_targets_accepts_fractions_and_names_bad_values():
  assert attempts.parse_targets(['0.5', '0.9']) == [0.5, 0.9]
  with pytest.raises(ValueError, match=r'in \(0, 1\), got 1'):
    attempts.parse_targets(['0.5', '1'])
  with pytest.raises(ValueError, match='numbers such as'):
    attempts.parse_targets(['half'])
