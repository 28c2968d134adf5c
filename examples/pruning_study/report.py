"""The studies' report: one row per attempt, as a table, a CSV and a plot.

Columns (sizes in bytes): model, attempt, schedule, target; total / zero /
non-zero parameters and their sparsity (read from the stripped GraphDef);
stripped GraphDef raw and gzipped; TFLite dense and sparse, sparse gzipped;
the held-out metric (accuracy for classification, rmse and mae in the data's
units for regression; the other metric columns are left empty) and its
change against the model's dense attempt (points of accuracy, or % of RMSE).
"""
import csv

from model_pruning.python import sparsity_plots

COLUMNS = ('model', 'attempt', 'schedule', 'target', 'total_weights',
           'zero_weights', 'nonzero_weights', 'sparsity', 'stripped_raw',
           'stripped_gzip', 'tflite_dense', 'tflite_sparse',
           'tflite_sparse_gzip', 'accuracy', 'rmse', 'mae', 'vs_dense')


def add_dense_deltas(rows):
  """Sets each row's vs_dense: accuracy points, or RMSE change in percent.

  Example: dense accuracy 0.980 and attempt 0.972 give vs_dense = -0.8
  (points); dense RMSE 50 and attempt 55 give +10.0 (%).
  """
  dense = {r['model']: r for r in rows if r['attempt'] == 'dense'}
  for row in rows:
    base = dense.get(row['model'])
    if base is None:
      row['vs_dense'] = ''
    elif 'accuracy' in row:
      row['vs_dense'] = round(100.0 * (row['accuracy'] - base['accuracy']), 2)
    else:
      row['vs_dense'] = round(100.0 * (row['rmse'] / base['rmse'] - 1.0), 2)
  return rows


def _metric_cell(row):
  if 'accuracy' in row:
    return 'acc %.4f (%+.1f pt)' % (row['accuracy'], row['vs_dense'] or 0.0)
  return 'rmse %.2f mae %.2f (%+.1f%%)' % (row['rmse'], row['mae'],
                                          row['vs_dense'] or 0.0)


def format_table(rows):
  """The stdout table: one line per attempt."""
  header = ('model', 'attempt', 'weights', 'zeros', 'non-zero', 'pb raw',
            'pb gzip', 'tflite', 'tflite sparse', 'metric (vs dense)')
  cells = [(r['model'], r['attempt'], str(r['total_weights']),
            str(r['zero_weights']), str(r['nonzero_weights']),
            str(r['stripped_raw']), str(r['stripped_gzip']),
            str(r['tflite_dense']), str(r['tflite_sparse']), _metric_cell(r))
           for r in rows]
  widths = [max(len(row[i]) for row in [header] + cells)
            for i in range(len(header))]
  return '\n'.join(
      '  '.join(cell.ljust(w) if i in (0, 1, 9) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
      for row in [header] + cells)


def write_csv(rows, path):
  """Writes the rows under the COLUMNS header (missing metrics empty)."""
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
      writer.writerow({key: row.get(key, '') for key in COLUMNS})


def read_csv(path):
  """The rows of a CSV written by write_csv, as dicts of strings."""
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def plot(rows, path, title):
  """Metric against sparse TFLite size, one panel per model.

  Returns:
    True if written; False (with a message) when matplotlib is missing.
  """
  try:
    pyplot = sparsity_plots.require_pyplot()
  except sparsity_plots.MissingMatplotlibError:
    print('matplotlib is not installed: skipping the plot %s (pip install '
          'matplotlib to get it); the CSV is complete.' % path)
    return False
  models = list(dict.fromkeys(r['model'] for r in rows))
  figure, axes = pyplot.subplots(1, len(models), squeeze=False,
                                 figsize=(5.5 * len(models), 4.5))
  for axis, model in zip(axes[0], models):
    mine = [r for r in rows if r['model'] == model]
    key = 'accuracy' if 'accuracy' in mine[0] else 'rmse'
    for schedule in dict.fromkeys(r['schedule'] for r in mine):
      points = [r for r in mine if r['schedule'] == schedule]
      axis.plot([r['tflite_sparse'] / 1024.0 for r in points],
                [r[key] for r in points], 'o', label=schedule)
      for r in points:
        axis.annotate(r['attempt'], (r['tflite_sparse'] / 1024.0, r[key]),
                      fontsize=7, textcoords='offset points', xytext=(3, 3))
    axis.set_xlabel('sparse TFLite size (KiB)')
    axis.set_ylabel('held-out accuracy' if key == 'accuracy'
                    else 'held-out RMSE (lower is better)')
    axis.set_title(model)
    axis.legend(fontsize=8)
  figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  pyplot.close(figure)
  return True
