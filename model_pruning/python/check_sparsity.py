r"""check_sparsity: how sparse are the weights in a model file, and are they N:M?

Reads a checkpoint (directory or prefix), a frozen GraphDef (.pb / .pbtxt) or a
TFLite model (.tflite) and prints, per weight: name, kind, shape, dtype and
fraction of zeros; with --m_by_n=2:4 also whether every group of 4 along the
input axis holds at most 2 non-zeros, and how many groups fail.

  check_sparsity /tmp/train_dir --m_by_n=2:4
  python -m model_pruning.python.check_sparsity model.tflite --json=out.json
  check_sparsity frozen.pb --plot=/tmp/pics --block=4x4
  check_sparsity --xnnpack model.tflite   # XNNPACK sparse path? (0 yes, 1 no)

Only the pruned weights are counted when the file holds them (the masked
weights of a checkpoint, the folded `masked_weight` constants of a stripped
GraphDef, the sparse-encoded tensors of a TFLite file); --all_constants
counts every weight-like tensor.

Exit status (exit_codes): 0 all good, 1 a requested --m_by_n pattern fails
somewhere, 2 bad input (missing or unreadable file, unknown format, bad flag value, or
--plot without matplotlib); errors are one line on stderr.
"""
import json

from absl import app
from absl import flags

from model_pruning.python import exit_codes
from model_pruning.python import sparsity_check
from model_pruning.python.xnnpack import check as xnnpack_check

_PROGRAM = 'check_sparsity'
EXIT_OK = exit_codes.EXIT_OK
EXIT_PATTERN_FAILS = exit_codes.EXIT_CHECK_FAILED
EXIT_BAD_INPUT = exit_codes.EXIT_USAGE

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
_ALL_CONSTANTS = flags.DEFINE_bool(
    'all_constants', False, 'Count every weight-like tensor of the file, not '
    'only the pruned weights (masked weights of a checkpoint, folded '
    'masked_weight constants of a stripped GraphDef, sparse-encoded tensors '
    'of a TFLite file).')
_CORNER = flags.DEFINE_integer('plot_corner', 64, 'Side of the mask corner '
                               'drawn per weight.', lower_bound=1)

def _inputs(argv):
  paths = list(argv[1:]) + ([_INPUT.value] if _INPUT.value else [])
  if len(paths) != 1:
    raise sparsity_check.BadInputError('give exactly one input (positional or --input), got '
                        '%d: %s' % (len(paths), ' '.join(paths) or 'none'))
  return paths[0]


def _fail(message):
  exit_codes.error_line(_PROGRAM, message)
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
    report, arrays = sparsity_check.check_with_arrays(path, _M_BY_N.value, _MIN_RANK.value,
                                       _NAME_REGEX.value, _ALL_CONSTANTS.value)
    print(sparsity_check.format_report(report))
    if _JSON.value:
      with open(_JSON.value, 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
    if _PLOT.value:
      written = sparsity_check.write_plots(report, arrays, _PLOT.value, _BLOCK.value,
                            _CORNER.value)
      print('wrote %d pictures to %s' % (len(written), _PLOT.value))
  except (sparsity_check.BadInputError, sparsity_plots.MissingMatplotlibError, OSError) as e:
    return _fail(e)
  return EXIT_OK if report['ok'] else EXIT_PATTERN_FAILS


def run_main():
  """Console-script entry point (`check_sparsity`)."""
  app.run(main, flags_parser=exit_codes.flags_parser(_PROGRAM))


if __name__ == '__main__':
  run_main()
