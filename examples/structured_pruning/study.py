"""The structured (2:4) pruning tutorial as plain functions (binary: __main__).

TF-MOT's 2:4 tutorial, in graph mode on scikit-learn's real 8x8 digits: the
conv + dense classifier of the size study (models.digits_cnn) is trained
dense, then fine-tuned under the grid (dense; constant and polynomial at each
target; 2:4 constant and polynomial). The first conv (one input channel, so
no group of 4 inputs to keep 2 of) is left dense in every attempt. Then:

* every kernel of every 2:4 attempt's stripped GraphDef is checked with
  check_sparsity --m_by_n=2,4 (the count of failing groups must be 0);
* every attempt's sparse TFLite model is run on the test split beside the
  stripped graph (largest |logit difference| and argmax agreement);
* the 2:4 pattern of a dense and of a conv kernel is drawn (kept weights
  dark, a red line every 4 input channels).

Writes structured_pruning.csv / .png, checks.json and pattern_*.png into
work_dir and prints the table and the checks.
"""
import json
import os
import time
import warnings

import numpy as np
import tensorflow as tf

from examples.pruning_study import attempts
from examples.pruning_study import datasets
from examples.pruning_study import models
from examples.pruning_study import pipeline
from examples.pruning_study import report
from model_pruning.python import sparsity_check

CSV_NAME, PLOT_NAME = 'structured_pruning.csv', 'structured_pruning.png'
CHECKS_NAME = 'checks.json'
DEFAULT_TARGETS = (0.5, 0.8, 0.9)
M_BY_N = '2:4'
UNPRUNED = ('conv1/',)
# The kernels drawn: {picture name: scope of the weight}.
PATTERN_KERNELS = {'pattern_dense.png': 'dense1/', 'pattern_conv.png': 'conv2/'}


def make_task(quick=False, seed=0):
  """The digits CNN task (1500 + 1000 steps; 20 + 20 with quick)."""
  pretrain, finetune = (20, 20) if quick else (1500, 1000)
  return pipeline.Task('cnn_digits', 'classification',
                       datasets.load_digits(seed), models.digits_cnn,
                       learning_rate=2e-3, batch_size=32,
                       pretrain_steps=pretrain, finetune_steps=finetune,
                       export_batch=None, seed=seed)


def tflite_outputs(path, inputs):
  """Runs a .tflite model (one input, one output) on the whole batch."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # tf.lite.Interpreter's deprecation.
    interpreter = tf.lite.Interpreter(model_path=path)
  feed = interpreter.get_input_details()[0]['index']
  interpreter.resize_tensor_input(feed, list(inputs.shape))
  interpreter.allocate_tensors()
  interpreter.set_tensor(feed, inputs)
  interpreter.invoke()
  return interpreter.get_tensor(interpreter.get_output_details()[0]['index'])


def tflite_agreement(run_dir, test_x):
  """Stripped graph vs sparse TFLite on `test_x`: max |diff|, argmax share."""
  graph_def = tf.compat.v1.GraphDef()
  with open(os.path.join(run_dir, pipeline.STRIPPED_NAME), 'rb') as f:
    graph_def.ParseFromString(f.read())
  reference = pipeline.run_graph(graph_def, test_x)
  lite = tflite_outputs(os.path.join(run_dir, pipeline.TFLITE_NAME), test_x)
  return dict(tflite_max_abs_diff=float(np.max(np.abs(lite - reference))),
              max_abs_logit=float(np.max(np.abs(reference))),
              tflite_argmax_agreement=float(np.mean(
                  np.argmax(lite, axis=1) == np.argmax(reference, axis=1))))


def m_by_n_check(run_dir):
  """check_sparsity --m_by_n=2,4 over the stripped graph's pruned kernels."""
  checked, arrays = sparsity_check.check_with_arrays(
      os.path.join(run_dir, pipeline.STRIPPED_NAME), m_by_n='2,4',
      name_regex='masked_weight')
  kernels = {w['name']: dict(groups=w['m_by_n']['groups'],
                             failing_groups=w['m_by_n']['failing_groups'],
                             sparsity=w['sparsity'])
             for w in checked['weights']}
  return checked, arrays, kernels


def write_patterns(checked, arrays, work_dir):
  """Draws PATTERN_KERNELS' 2:4 patterns; returns the picture paths."""
  written = []
  for picture, scope in PATTERN_KERNELS.items():
    index = next(i for i, w in enumerate(checked['weights'])
                 if w['name'].startswith(scope))
    one = dict(checked, weights=[checked['weights'][index]])
    plot_dir = os.path.join(work_dir, 'check_sparsity_plots', scope.strip('/'))
    first = sparsity_check.write_plots(one, [arrays[index]], plot_dir)[0]
    os.replace(first, os.path.join(work_dir, picture))
    written.append(os.path.join(work_dir, picture))
  return written


def run_study(work_dir, targets=DEFAULT_TARGETS,
              schedules=attempts.SCHEDULES, quick=False, seed=0):
  """Runs the tutorial in `work_dir`; returns (rows, checks)."""
  start = time.time()
  task = make_task(quick, seed)
  grid = attempts.make_grid(task.finetune_steps, targets, schedules, M_BY_N,
                            do_not_prune=UNPRUNED)
  rows = report.add_dense_deltas(pipeline.run_task(task, grid, work_dir))
  checks = {}
  for attempt in grid:
    run_dir = os.path.join(work_dir, task.name, attempt.name)
    checks[attempt.name] = tflite_agreement(run_dir, task.data.test_x)
    if attempt.m_by_n:
      checked, arrays, kernels = m_by_n_check(run_dir)
      checks[attempt.name]['m_by_n_kernels'] = kernels
      if attempt.schedule == 'constant':
        checks['pattern_pictures'] = write_patterns(checked, arrays, work_dir)
  report.write_csv(rows, os.path.join(work_dir, CSV_NAME))
  report.plot(rows, os.path.join(work_dir, PLOT_NAME),
              'Digits CNN: accuracy vs size')
  with open(os.path.join(work_dir, CHECKS_NAME), 'w') as f:
    json.dump(checks, f, indent=1, sort_keys=True)
  print('\nStructured pruning on digits: %d attempts in %.0f s (sizes in '
        'bytes; vs dense in accuracy points)' % (len(rows), time.time() - start))
  print(report.format_table(rows))
  print(format_checks(checks))
  print('Wrote %s, %s, %s and the pattern pictures into %s'
        % (CSV_NAME, PLOT_NAME, CHECKS_NAME, work_dir))
  return rows, checks


def format_checks(checks):
  """The check lines: 2:4 groups per kernel, then TFLite agreement."""
  lines = []
  for name, check in checks.items():
    if name == 'pattern_pictures':
      continue
    for kernel, result in sorted(check.get('m_by_n_kernels', {}).items()):
      lines.append('check_sparsity --m_by_n=2,4  %s  %-32s %5d groups, %d '
                   'failing, %.1f%% zeros' % (name, kernel, result['groups'],
                                              result['failing_groups'],
                                              100 * result['sparsity']))
  for name, check in checks.items():
    if name != 'pattern_pictures':
      lines.append('TFLite vs stripped graph  %-16s max |logit diff| %.2e '
                   '(max |logit| %.1f), argmax agreement %.4f'
                   % (name, check['tflite_max_abs_diff'],
                      check['max_abs_logit'], check['tflite_argmax_agreement']))
  return '\n'.join(lines)
