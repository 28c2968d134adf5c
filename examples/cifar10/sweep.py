"""The size/accuracy sweep as plain functions (the binary is cifar10_sweep).

Builds the grid of pruning schedules, trains, scores, strips and converts
each run, and formats the recap table, CSV and plot. No flags here, so tests
and other binaries can import it.
"""
import collections
import csv
import os
import time

import numpy as np
import tensorflow as tf

from examples.cifar10 import cifar10_pruning as cifar10
from examples.cifar10 import evaluation
from examples.cifar10 import synthetic_data
from examples.cifar10 import training
from model_pruning.python import nm_sparsity
from model_pruning.python import sparsity_plots
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import strip_report
from model_pruning.python import tflite_export

# One schedule of the grid: a short unique name and its hparams string.
SweepConfig = collections.namedtuple('SweepConfig', ['name', 'hparams'])

COLUMNS = ('name', 'achieved_sparsity', 'accuracy', 'stripped_raw',
           'stripped_gzip', 'tflite_dense', 'tflite_sparse',
           'tflite_dense_gzip', 'tflite_sparse_gzip')
CSV_NAME, PLOT_NAME = 'sweep.csv', 'sweep.png'


def schedule_hparams(schedule, target, max_steps, m_by_n=None):
  """Pruning hparams for one run (contrib syntax).

  Both schedules prune from step max_steps // 10 with masks updated every
  max_steps // 20 steps (at least 1) and threshold_decay=0, so each update
  hits the scheduled sparsity. cubic: s(t) = target (1 - (1 - p)^3) with p
  going 0 -> 1 over [10%, 70%] of the steps; constant: initial_sparsity =
  target, so s(t) = target from the first update. `m_by_n` ('2:4') adds
  sparsity_m_by_n.
  """
  if schedule not in ('constant', 'cubic'):
    raise ValueError("schedule must be 'constant' or 'cubic', got %r" %
                     (schedule,))
  begin, end = max_steps // 10, (max_steps * 7) // 10
  text = ('name=cifar10_pruning,begin_pruning_step=%d,end_pruning_step=-1,'
          'target_sparsity=%g,sparsity_function_begin_step=%d,'
          'sparsity_function_end_step=%d,sparsity_function_exponent=3.0,'
          'pruning_frequency=%d,threshold_decay=0.0'
          % (begin, target, begin, end, max(1, max_steps // 20)))
  if schedule == 'constant':
    text += ',initial_sparsity=%g' % target
  if m_by_n:
    text += ',sparsity_m_by_n=%s' % m_by_n
  return text


def make_grid(schedules, targets, max_steps, m_by_n=None):
  """Every schedule x target, then the N:M run (cubic to 1 - M/N).

  Example: (['cubic'], [0.9], 100, '2:4') gives cubic_0.9 and cubic_2of4.
  """
  grid = [SweepConfig('%s_%g' % (s, t), schedule_hparams(s, t, max_steps))
          for s in schedules for t in targets]
  if m_by_n:
    m, n = nm_sparsity.parse_m_by_n(m_by_n)
    grid.append(SweepConfig(
        'cubic_%dof%d' % (m, n),
        schedule_hparams('cubic', 1.0 - m / n, max_steps, '%d:%d' % (m, n))))
  return grid


def _achieved_sparsity(folded):
  """Share of zeros over all folded weights together."""
  sizes = [np.size(w.value) for w in folded]
  zeros = [np.size(w.value) - np.count_nonzero(w.value) for w in folded]
  return sum(zeros) / float(sum(sizes))


def _strip_and_convert(export_dir, output_dir, quantization):
  """Stripped .pb and sparse .tflite of `export_dir`; returns row fields."""
  os.makedirs(output_dir, exist_ok=True)
  names = [cifar10.LOGITS_NODE_NAME]
  frozen = strip_pruning_vars_lib.graph_def_from_checkpoint(export_dir, names)
  stripped, folded = strip_pruning_vars_lib.fold_masked_weights(frozen, names)
  data = stripped.SerializeToString()
  with open(os.path.join(output_dir, 'stripped.pb'), 'wb') as f:
    f.write(data)
  sizes = strip_report.size_summary(data, [])
  tflite = tflite_export.export_stripped_graph(
      stripped, names, os.path.join(output_dir, 'sparse.tflite'),
      input_node_names=[evaluation.INPUT_NODE_NAME], quantization=quantization)
  return dict(achieved_sparsity=_achieved_sparsity(folded),
              stripped_raw=sizes.raw, stripped_gzip=sizes.gzip,
              tflite_dense=tflite.dense_raw, tflite_sparse=tflite.sparse_raw,
              tflite_dense_gzip=tflite.dense_gzip,
              tflite_sparse_gzip=tflite.sparse_gzip)


def run_config(config, data_dir, work_dir, max_steps, batch_size,
               test_records, quantization='none'):
  """Trains, evaluates, strips and converts one schedule; returns its row."""
  run_dir = os.path.join(work_dir, config.name)
  train_dir = os.path.join(run_dir, 'train')
  if tf.train.latest_checkpoint(train_dir):
    raise ValueError('%s already holds a checkpoint; pass a fresh --work_dir '
                     '(nothing is deleted for you)' % train_dir)
  print('=== %s: --pruning_hparams=%s' % (config.name, config.hparams),
        flush=True)
  training.train(train_dir, data_dir, pruning_hparams=config.hparams,
                 max_steps=max_steps, batch_size=batch_size,
                 log_frequency=max(1, max_steps // 5))
  export_dir = os.path.join(run_dir, 'export')
  result = evaluation.evaluate(
      train_dir, data_dir, os.path.join(run_dir, 'eval'),
      num_examples=test_records, batch_size=min(100, test_records),
      export_dir=export_dir)
  row = dict(name=config.name, accuracy=result['precision_at_1'])
  row.update(_strip_and_convert(export_dir, os.path.join(run_dir, 'stripped'),
                                quantization))
  return row


def format_table(rows):
  """The recap: one line per run, sizes in bytes."""
  header = ('name', 'sparsity', 'accuracy', 'stripped raw', 'stripped gzip',
            'tflite dense', 'tflite sparse')
  cells = [(r['name'], '%.3f' % r['achieved_sparsity'],
            '%.3f' % r['accuracy'], str(r['stripped_raw']),
            str(r['stripped_gzip']), str(r['tflite_dense']),
            str(r['tflite_sparse'])) for r in rows]
  widths = [max(len(row[i]) for row in [header] + cells)
            for i in range(len(header))]
  return '\n'.join('  '.join(cell.rjust(w) if i else cell.ljust(w)
                             for i, (cell, w) in enumerate(zip(row, widths)))
                   for row in [header] + cells)


def write_csv(rows, path):
  """Writes the rows with the COLUMNS header."""
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
      writer.writerow({key: row[key] for key in COLUMNS})


def plot(rows, path):
  """Accuracy against model size (sparse TFLite, stripped .pb gzipped).

  Returns:
    True if written; False (with a message) when matplotlib is missing.
  """
  try:
    pyplot = sparsity_plots.require_pyplot()
  except sparsity_plots.MissingMatplotlibError:
    print('matplotlib is not installed: skipping the plot %s (pip install '
          'matplotlib to get it); the CSV is complete.' % path)
    return False
  figure, axes = pyplot.subplots(figsize=(7, 4.5))
  accuracy = [r['accuracy'] for r in rows]
  for key, label in (('tflite_sparse', 'sparse TFLite'),
                     ('stripped_gzip', 'stripped GraphDef, gzipped')):
    sizes = [r[key] / 1024.0 for r in rows]
    axes.scatter(sizes, accuracy, label=label)
    for size, acc, row in zip(sizes, accuracy, rows):
      axes.annotate(row['name'], (size, acc), fontsize=7,
                    textcoords='offset points', xytext=(3, 3))
  axes.set_xlabel('model size (KiB)')
  axes.set_ylabel('precision @ 1')
  axes.set_title('CIFAR-10 (synthetic): accuracy vs size')
  axes.legend()
  figure.tight_layout()
  figure.savefig(path)
  pyplot.close(figure)
  return True


def run_sweep(work_dir, grid, max_steps=300, batch_size=64,
              train_records_per_batch=1000, test_records=1000,
              quantization='none'):
  """Runs every config of `grid` in `work_dir`; returns the rows.

  Writes sweep.csv (and sweep.png when matplotlib is there) and prints the
  table.
  """
  start = time.time()
  data_dir = os.path.join(work_dir, 'data')
  synthetic_data.write_synthetic_cifar10(data_dir, train_records_per_batch,
                                         test_records)
  rows = [run_config(config, data_dir, work_dir, max_steps, batch_size,
                     test_records, quantization) for config in grid]
  write_csv(rows, os.path.join(work_dir, CSV_NAME))
  plot(rows, os.path.join(work_dir, PLOT_NAME))
  print('\nCIFAR-10 sweep: %d runs of %d steps in %.0f s (TFLite '
        'quantization %s; sizes in bytes)' % (len(rows), max_steps,
                                              time.time() - start,
                                              quantization))
  print(format_table(rows))
  print('Wrote %s' % os.path.join(work_dir, CSV_NAME))
  return rows
