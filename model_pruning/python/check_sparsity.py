r"""check_sparsity: how sparse are the weights in a model file, and are they N:M?

Reads a checkpoint (directory or prefix), a frozen GraphDef (.pb / .pbtxt) or a
TFLite model (.tflite) and prints, per weight: name, kind, shape, dtype and
fraction of zeros; with --m_by_n=2:4 also whether every group of 4 along the
input axis holds at most 2 non-zeros, and how many groups fail.

  check_sparsity /tmp/train_dir --m_by_n=2:4
  python -m model_pruning.python.check_sparsity model.tflite --json=out.json
  check_sparsity frozen.pb --plot=/tmp/pics --block=4x4
  check_sparsity --xnnpack model.tflite   # XNNPACK sparse path? (0 yes, 1 no)

Exit status: 0 all good, 1 a requested --m_by_n pattern fails somewhere,
2 bad input (missing or unreadable file, unknown format, bad flag value, or
--plot without matplotlib); errors are one line on stderr.
"""
import json
import os
import re
import sys

from absl import app
from absl import flags

from model_pruning.python import nm_sparsity
from model_pruning.python import weight_readers
from model_pruning.python import xnnpack_check

_INPUT = flags.DEFINE_string(
    'input', None, 'Checkpoint dir or prefix, .pb/.pbtxt GraphDef or .tflite '
    '(or give it as the positional argument).')
_M_BY_N = flags.DEFINE_string(
    'm_by_n', None, "Check an N:M pattern, 'M:N' or 'M,N', e.g. 2:4.")
_MIN_RANK = flags.DEFINE_integer('min_rank', 2, 'Skip weights of lower rank.',
                                 lower_bound=0)
_NAME_REGEX = flags.DEFINE_string(
    'name_regex', None, 'Only weights whose name matches (re.search).')
_JSON = flags.DEFINE_string('json', None, 'Also write the report here (JSON).')
_PLOT = flags.DEFINE_string(
    'plot', None, 'Write mask pictures (PNG) into this directory; needs '
    "matplotlib (pip install 'model_pruning[plot]').")
_BLOCK = flags.DEFINE_string(
    'block', None, "Block grid for the pictures, 'HxW' e.g. 4x4.")
_XNNPACK = flags.DEFINE_bool(
    'xnnpack', False, 'Instead: say whether XNNPACK\'s sparse inference '
    'path would run this .tflite on ARM64 (exit 0 yes, 1 no, 2 bad input).')
_CORNER = flags.DEFINE_integer('plot_corner', 64, 'Side of the mask corner '
                               'drawn per weight.', lower_bound=1)

EXIT_OK, EXIT_PATTERN_FAILS, EXIT_BAD_INPUT = 0, 1, 2
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


def check(path, m_by_n=None, min_rank=2, name_regex=None):
  """Reads `path` and returns the report dict (what --json writes).

  Same as `check_with_arrays(...)[0]`.
  """
  return check_with_arrays(path, m_by_n, min_rank, name_regex)[0]


def check_with_arrays(path, m_by_n=None, min_rank=2, name_regex=None):
  """Reads `path`; returns (report dict, the reported arrays by entry index).

  Args:
    path: checkpoint dir/prefix, GraphDef (.pb, .pbtxt) or .tflite.
    m_by_n: None or a pattern string such as '2:4'.
    min_rank: weights of lower rank are skipped.
    name_regex: None or a regex; only names it `re.search`es are kept.

  Returns:
    `(report, arrays)`: report is {'input', 'format', 'm_by_n',
    'weights': [entry...], 'ok'}, where `ok` is False only when a requested
    pattern fails in some weight; arrays[i] is weights[i]'s array (or None).

  Raises:
    BadInputError: unreadable input or a bad argument.
  """
  try:
    pattern = None if m_by_n is None else nm_sparsity.parse_m_by_n(m_by_n)
    regex = None if name_regex is None else re.compile(name_regex)
  except (ValueError, re.error) as e:
    raise BadInputError(str(e)) from None
  try:
    fmt = weight_readers.detect_format(path)
    records = weight_readers.read_weights(path)
  except weight_readers.WeightReadError as e:
    raise BadInputError(str(e)) from None
  records = [r for r in records if len(r.shape) >= min_rank
             and (regex is None or regex.search(r.name))]
  weights = [_weight_entry(r, pattern) for r in records]
  ok = all(w['m_by_n'] is None or w['m_by_n']['ok'] for w in weights)
  report = {'input': path, 'format': fmt,
            'm_by_n': None if pattern is None else '%d:%d' % pattern,
            'weights': weights, 'ok': ok}
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
  lines = ['%s (%s)' % (report['input'], report['format'])]
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
    group_rows = nm_sparsity.parse_m_by_n(report['m_by_n'])[1]
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


def _inputs(argv):
  paths = list(argv[1:]) + ([_INPUT.value] if _INPUT.value else [])
  if len(paths) != 1:
    raise BadInputError('give exactly one input (positional or --input), got '
                        '%d: %s' % (len(paths), ' '.join(paths) or 'none'))
  return paths[0]


def _fail(message):
  sys.stderr.write('check_sparsity: error: %s\n' % message)
  return EXIT_BAD_INPUT


def main(argv):
  """Flags -> check() -> printed table, optional JSON and pictures."""
  from model_pruning.python import sparsity_plots  # pylint: disable=g-import-not-at-top
  try:
    path = _inputs(argv)
    if _XNNPACK.value:
      return xnnpack_check.cli_main(path)
    if _PLOT.value:
      sparsity_plots.require_pyplot()  # fail before the slow part
    report, arrays = check_with_arrays(path, _M_BY_N.value, _MIN_RANK.value,
                                       _NAME_REGEX.value)
    print(format_report(report))
    if _JSON.value:
      with open(_JSON.value, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    if _PLOT.value:
      written = write_plots(report, arrays, _PLOT.value, _BLOCK.value,
                            _CORNER.value)
      print('wrote %d pictures to %s' % (len(written), _PLOT.value))
  except (BadInputError, sparsity_plots.MissingMatplotlibError, OSError) as e:
    return _fail(e)
  return EXIT_OK if report['ok'] else EXIT_PATTERN_FAILS


def _parse_flags(argv):
  """absl flag parsing, but a bad flag is one line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(_fail('%s (see --helpshort)' % e))


def run_main():
  """Console-script entry point (`check_sparsity`)."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run_main()
