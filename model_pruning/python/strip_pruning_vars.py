"""Writes an inference graph with the pruning masks folded into the weights.

Restores a checkpoint, freezes the graph for the given outputs, replaces each
`mask * weight` product by a constant and drops the mask, threshold and raw
weight nodes. Prints, per folded weight, its shape, its share of zeros and
the sparsity the stored pruning schedule asks of its masks (at the last mask
update, unless one was missed since), then the output's size raw and
gzip-compressed.

Usage:
  strip_pruning_vars --checkpoint_dir=/tmp/train \\
      --output_node_names=softmax_linear/add --output_dir=/tmp \\
      --filename=pruning_stripped.pb
  python -m model_pruning.python.strip_pruning_vars \\
      --checkpoint_path=/tmp/train/model.ckpt-2000 --output_node_names=logits
"""
import json
import os

from absl import app
from absl import flags
import tensorflow as tf

from model_pruning.python import exit_codes
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import strip_report
# Upstream's entry point and the library's, importable from here as before.
# pylint: disable=unused-import
from model_pruning.python.strip_checkpoint import StripResult
from model_pruning.python.strip_checkpoint import strip_checkpoint
from model_pruning.python.strip_checkpoint import strip_pruning_vars
# pylint: enable=unused-import

_CHECKPOINT_DIR = flags.DEFINE_string(
    'checkpoint_dir', '', 'Directory of the checkpoints; the latest is used.')
_CHECKPOINT_PATH = flags.DEFINE_string(
    'checkpoint_path', '',
    'One checkpoint, e.g. /tmp/train/model.ckpt-2000 (instead of '
    '--checkpoint_dir).')
_OUTPUT_NODE_NAMES = flags.DEFINE_string(
    'output_node_names', '', 'Comma-separated names of the output nodes.')
_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', '/tmp', 'Directory to write to (created if missing).')
_FILENAME = flags.DEFINE_string(
    'filename', 'pruning_stripped.pb',
    'Output file name (.tflite by default with --output_format=tflite).')
_AS_TEXT = flags.DEFINE_bool(
    'as_text', False, 'Write the GraphDef as text (pbtxt) instead of binary.')
_OUTPUT_FORMAT = flags.DEFINE_enum(
    'output_format', 'graphdef', ['graphdef', 'tflite'],
    'graphdef: a frozen GraphDef; tflite: a TFLite flatbuffer.')
_TFLITE_QUANTIZATION = flags.DEFINE_enum(
    'tflite_quantization', 'none', ['none', 'float16', 'int8'],
    'With --output_format=tflite: none (float32), float16 weights, or int8 '
    'dynamic-range quantization.')
_INPUT_NODE_NAMES = flags.DEFINE_string(
    'input_node_names', '',
    'With --output_format=tflite: comma-separated input Placeholder names '
    '(default: the Placeholders the outputs depend on).')
_INPUT_SHAPES = flags.DEFINE_string(
    'input_shapes', '',
    'With --output_format=tflite: one shape per input, e.g. 1,24,24,3:1,10 '
    '(-1 keeps a dimension unknown; default: the graph\'s shapes).')
_JSON = flags.DEFINE_string(
    'json', None, 'Also write the report (per weight: zeros, target, '
    'allowance, below_target; sizes) here as JSON.')
_FAIL_BELOW_TARGET = flags.DEFINE_bool(
    'fail_below_target', False,
    'Exit with status 1 when a weight is more than %g points (plus its '
    'threshold method\'s resolution, see --json\'s allowance) below the '
    'sparsity its schedule asks of its masks (at the last mask update, unless '
    'one was missed since: --json\'s target_step).' %
    (100 * strip_report.BELOW_TARGET_TOLERANCE))

_PROGRAM = 'strip_pruning_vars'

def _checkpoint_from_flags():
  """The --checkpoint_dir or --checkpoint_path value (exactly one)."""
  directory, path = _CHECKPOINT_DIR.value, _CHECKPOINT_PATH.value
  if directory and path:
    raise exit_codes.usage_error('Give --checkpoint_dir or --checkpoint_path, not '
                         'both (got %s and %s)' % (directory, path))
  if not (directory or path):
    raise exit_codes.usage_error('Give --checkpoint_dir=DIR (latest checkpoint) or '
                         '--checkpoint_path=PREFIX (e.g. model.ckpt-2000)')
  return directory or path


def _output_path_from_flags():
  filename = _FILENAME.value
  if _OUTPUT_FORMAT.value == 'tflite' and not flags.FLAGS['filename'].present:
    filename = os.path.splitext(filename)[0] + '.tflite'
  return os.path.join(_OUTPUT_DIR.value, filename)


def _tflite_options_from_flags():
  """tflite_export.export_stripped_graph keyword arguments (tflite only)."""
  if _OUTPUT_FORMAT.value != 'tflite':
    return None
  return dict(quantization=_TFLITE_QUANTIZATION.value,
              input_node_names=_INPUT_NODE_NAMES.value or None,
              input_shapes=_INPUT_SHAPES.value or None)


def _print_tflite_sizes(tflite_sizes):
  """Prints the exporter's dense vs sparse TFLite sizes, if it gave any."""
  if tflite_sizes is None:
    return
  from model_pruning.python import tflite_export  # pylint: disable=g-import-not-at-top
  print(tflite_export.format_sizes(tflite_sizes))


def _write_json(path, result):
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(strip_report.as_json(result), f, indent=2)


def main(argv):
  if len(argv) > 1:
    raise exit_codes.usage_error('Unexpected arguments: %s' %
                                 ' '.join(argv[1:]))
  checkpoint = _checkpoint_from_flags()
  if not _OUTPUT_NODE_NAMES.value.replace(',', '').strip():
    raise exit_codes.usage_error('--output_node_names is required, e.g. '
                                 '--output_node_names=logits or =out1,out2')
  if _AS_TEXT.value and _OUTPUT_FORMAT.value == 'tflite':
    raise exit_codes.usage_error(
        '--as_text applies to --output_format=graphdef only')
  tflite_flags = [name for name in ('tflite_quantization', 'input_node_names',
                                    'input_shapes') if flags.FLAGS[name].present]
  if tflite_flags and _OUTPUT_FORMAT.value != 'tflite':
    raise exit_codes.usage_error('--%s applies to --output_format=tflite only'
                                 % tflite_flags[0])
  # TF's own deprecation chatter would bury the report and error lines.
  tf.get_logger().setLevel('ERROR')
  try:
    result = strip_checkpoint(
        checkpoint, _OUTPUT_NODE_NAMES.value, _output_path_from_flags(),
        as_text=_AS_TEXT.value, output_format=_OUTPUT_FORMAT.value,
        tflite_options=_tflite_options_from_flags())
    if _JSON.value:
      _write_json(_JSON.value, result)
  except (ValueError, OSError) as error:
    exit_codes.fail(_PROGRAM, error)
  except tf.errors.OpError as error:
    exit_codes.fail(_PROGRAM, strip_pruning_vars_lib.error_summary(error))
  print(strip_report.format_table(result.reports, step=result.global_step))
  print(strip_report.format_sizes(result.sizes))
  _print_tflite_sizes(result.tflite_sizes)
  if result.warning:
    print('WARNING: %s' % result.warning)
  print('Wrote %s' % result.path)
  if _FAIL_BELOW_TARGET.value and result.below_target:
    return exit_codes.EXIT_CHECK_FAILED
  return exit_codes.EXIT_OK


def run_main():
  """Console-script entry point (setup.py: strip_pruning_vars)."""
  app.run(main, flags_parser=exit_codes.flags_parser(_PROGRAM))


if __name__ == '__main__':
  run_main()
