"""How sparse are the weights of a model file, and do they keep N:M?

The library behind the `check_sparsity` binary (no flags): reads a checkpoint,
a frozen GraphDef or a TFLite file through `weight_readers`, counts the zeros
of the pruned weights (or, on request, of every weight-like tensor), checks an
N:M pattern group by group, and draws mask pictures.
"""
import os
import re

import numpy as np

from model_pruning.python import hparam_maps
from model_pruning.python import nm_sparsity
from model_pruning.python import weight_readers

BAR_CHART_NAME = 'sparsity_per_layer.png'


class BadInputError(ValueError):
  """Bad input or flag value; the message is one line for the user."""


def _weight_entry(record, pattern):
  """The report entry of one WeightRecord (JSON-ready)."""
  entry = {'name': record.name, 'kind': record.kind,
           'shape': list(record.shape), 'dtype': record.dtype,
           'input_axis': record.input_axis, 'note': record.note,
           'size': None, 'zeros': None, 'sparsity': None, 'm_by_n': None}
  if record.array is None:
    if record.stored is not None:  # Sparse-encoded: stores its non-zeros.
      size = int(np.prod(record.shape))
      entry.update(size=size, zeros=size - record.stored,
                   sparsity=(size - record.stored) / size if size else 0.0)
    return entry
  size = int(record.array.size)
  zeros = size - int((record.array != 0).sum())
  entry.update(size=size, zeros=zeros,
               sparsity=zeros / size if size else 0.0)
  if pattern is not None and len(record.shape) >= 2:
    groups, failing = nm_sparsity.count_m_by_n_violations(
        record.array, pattern[0], pattern[1], axis=record.input_axis)
    entry['m_by_n'] = {'groups': groups, 'failing_groups': failing,
                       'ok': failing == 0}
  return entry


def check(path, m_by_n=None, min_rank=2, name_regex=None,
          all_constants=False):
  """Reads `path` and returns the report dict (what --json writes).

  Same as `check_with_arrays(...)[0]`.
  """
  return check_with_arrays(path, m_by_n, min_rank, name_regex,
                           all_constants)[0]


def check_with_arrays(path, m_by_n=None, min_rank=2, name_regex=None,
                      all_constants=False):
  """Reads `path`; returns (report dict, the reported arrays by entry index).

  Args:
    path: checkpoint dir/prefix, GraphDef (.pb, .pbtxt) or .tflite.
    m_by_n: None or a pattern string such as '2:4'.
    min_rank: weights of lower rank are skipped.
    name_regex: None or a regex; only names it `re.search`es are kept.
    all_constants: report every weight-like tensor of the file, not only
      the pruned weights (`weight_readers.pruned_weights`).

  Returns:
    `(report, arrays)`: report is {'input', 'format', 'm_by_n', 'selection',
    'weights': [entry...], 'ok'}, where `selection` says which tensors were
    counted and `ok` is False only when a requested
    pattern fails in some weight; arrays[i] is weights[i]'s array (or None).

  Raises:
    BadInputError: unreadable input or a bad argument.
  """
  try:
    pattern = None if m_by_n is None else hparam_maps.parse_m_by_n(m_by_n, 'm_by_n')
    regex = None if name_regex is None else re.compile(name_regex)
  except (ValueError, re.error) as e:
    raise BadInputError(str(e)) from None
  try:
    fmt = weight_readers.detect_format(path)
    records = weight_readers.read_weights(path)
  except weight_readers.WeightReadError as e:
    raise BadInputError(str(e)) from None
  if all_constants:
    selection = 'every weight-like tensor (--all_constants)'
  else:
    records, selection = weight_readers.pruned_weights(records, fmt)
  records = [r for r in records if len(r.shape) >= min_rank
             and (regex is None or regex.search(r.name))]
  weights = [_weight_entry(r, pattern) for r in records]
  ok = all(w['m_by_n'] is None or w['m_by_n']['ok'] for w in weights)
  report = {'input': path, 'format': fmt,
            'm_by_n': None if pattern is None else '%d:%d' % pattern,
            'selection': selection, 'weights': weights, 'ok': ok}
  return report, [r.array for r in records]


def _pattern_cell(entry, pattern):
  result = entry['m_by_n']
  if pattern is None:
    return ''
  if result is None:
    return '%s n/a' % pattern
  if result['ok']:
    return '%s ok (%d groups)' % (pattern, result['groups'])
  return '%s FAIL: %d of %d groups' % (pattern, result['failing_groups'],
                                       result['groups'])


def format_report(report):
  """Human-readable table plus a summary line."""
  lines = ['%s (%s): %s' % (report['input'], report['format'],
                            report['selection'])]
  for w in report['weights']:
    zeros = ('n/a' if w['sparsity'] is None
             else '%6.2f%% zeros' % (100.0 * w['sparsity']))
    cells = [w['name'], w['kind'], 'x'.join(map(str, w['shape'])) or 'scalar',
             w['dtype'], zeros, _pattern_cell(w, report['m_by_n']), w['note']]
    lines.append('  '.join(c for c in cells if c))
  known = [w for w in report['weights'] if w['size']]
  total = sum(w['size'] for w in known)
  zeros = sum(w['zeros'] for w in known)
  summary = '%d weights, %d values, %.2f%% zeros' % (
      len(report['weights']), total, 100.0 * zeros / total if total else 0.0)
  if report['m_by_n'] is not None:
    failing = [w for w in report['weights']
               if w['m_by_n'] is not None and not w['m_by_n']['ok']]
    summary += '; %s: %s' % (report['m_by_n'], 'every group passes' if
                             not failing else '%d weights fail (%d groups)' % (
                                 len(failing), sum(w['m_by_n']['failing_groups']
                                                   for w in failing)))
  lines.append(summary)
  return '\n'.join(lines)


def write_plots(report, arrays, plot_dir, block=None, corner=64):
  """Writes one mask picture per weight and the bar chart; returns paths.

  Args:
    report, arrays: what `check_with_arrays` returns.
    plot_dir: output directory (created).
    block: None or 'HxW': draw a block grid instead of N:M group lines.
    corner: side of the corner drawn.

  Raises:
    sparsity_plots.MissingMatplotlibError: matplotlib is not installed.
    BadInputError: bad `block`.
  """
  from model_pruning.python import sparsity_plots  # pylint: disable=g-import-not-at-top
  sparsity_plots.require_pyplot()
  try:
    block = None if block is None else sparsity_plots.parse_block(block)
  except ValueError as e:
    raise BadInputError(str(e)) from None
  os.makedirs(plot_dir, exist_ok=True)
  group_rows = None
  if report['m_by_n'] is not None:
    group_rows = hparam_maps.parse_m_by_n(report['m_by_n'])[1]
  written = []
  for index, w in enumerate(report['weights']):
    if w['sparsity'] is None or len(w['shape']) < 2:
      continue
    out = os.path.join(plot_dir,
                       sparsity_plots.file_stem(index, w['name']) + '.png')
    sparsity_plots.plot_mask_corner(
        arrays[index], w['input_axis'], out,
        '%s  %s  %.1f%% zeros' % (w['name'], w['kind'], 100 * w['sparsity']),
        group_rows=group_rows, block=block, corner=corner)
    written.append(out)
  measured = [w for w in report['weights'] if w['sparsity'] is not None]
  bars = os.path.join(plot_dir, BAR_CHART_NAME)
  sparsity_plots.plot_sparsity_bars([w['name'] for w in measured],
                                    [w['sparsity'] for w in measured], bars)
  return written + [bars]
