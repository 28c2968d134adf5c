"""The size study as plain functions (the binary is __main__.py).

Three networks on real data, each pre-trained dense and then fine-tuned
under every attempt of the grid (attempts.make_grid: dense, constant and
polynomial decay at each target):

  mlp   regression MLP (10 -> 64 -> 64 -> 1) on scikit-learn's diabetes
  lstm  MaskedLSTMCell(32) under dynamic_rnn forecasting yearly sunspots
        (statsmodels) from the previous 12 years
  cnn   conv-conv-dense classifier on scikit-learn's 8x8 digits

Writes <work_dir>/size_study.csv and size_study.png and prints the table;
per attempt, <work_dir>/<model>/<attempt>/ holds train/, export/,
stripped.pb and sparse.tflite.
"""
import os
import time

from examples.pruning_study import attempts
from examples.pruning_study import datasets
from examples.pruning_study import models
from examples.pruning_study import pipeline
from examples.pruning_study import report

MODELS = ('mlp', 'lstm', 'cnn')
CSV_NAME, PLOT_NAME = 'size_study.csv', 'size_study.png'
DEFAULT_TARGETS = (0.5, 0.8, 0.9)

# (pretrain, finetune) steps of the full study and of --quick.
_STEPS = {'mlp': (300, 300), 'lstm': (2000, 1000), 'cnn': (1500, 1000)}
_QUICK_STEPS = (20, 20)


def make_task(model, quick=False, seed=0):
  """The pipeline.Task of `model` ('mlp', 'lstm' or 'cnn')."""
  if model not in MODELS:
    raise ValueError('model must be one of %s, got %r'
                     % (', '.join(MODELS), model))
  pretrain, finetune = _QUICK_STEPS if quick else _STEPS[model]
  common = dict(batch_size=32, pretrain_steps=pretrain,
                finetune_steps=finetune, seed=seed)
  if model == 'mlp':
    return pipeline.Task('mlp_diabetes', 'regression',
                         datasets.load_diabetes(seed), models.regression_mlp,
                         learning_rate=1e-3, export_batch=None, **common)
  if model == 'lstm':
    return pipeline.Task('lstm_sunspots', 'regression',
                         datasets.load_sunspots(), models.lstm_forecaster,
                         learning_rate=3e-3, export_batch=1, **common)
  return pipeline.Task('cnn_digits', 'classification',
                       datasets.load_digits(seed), models.digits_cnn,
                       learning_rate=2e-3, export_batch=None, **common)


def run_study(work_dir, model_names=MODELS, targets=DEFAULT_TARGETS,
              schedules=attempts.SCHEDULES, quick=False, seed=0):
  """Runs the study in `work_dir`; returns the rows (also CSV, PNG, table)."""
  start = time.time()
  rows = []
  for model in model_names:
    task = make_task(model, quick, seed)
    grid = attempts.make_grid(task.finetune_steps, targets, schedules)
    rows.extend(pipeline.run_task(task, grid, work_dir))
  report.add_dense_deltas(rows)
  csv_path = os.path.join(work_dir, CSV_NAME)
  report.write_csv(rows, csv_path)
  report.plot(rows, os.path.join(work_dir, PLOT_NAME),
              'Held-out metric against model size, per pruning attempt')
  print('\nSize study: %d attempts in %.0f s (sizes in bytes; vs dense: '
        'accuracy points, or RMSE change in %%)' % (len(rows),
                                                    time.time() - start))
  print(report.format_table(rows))
  print('Wrote %s and %s' % (csv_path, os.path.join(work_dir, PLOT_NAME)))
  return rows
