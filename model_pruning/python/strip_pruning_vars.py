"""Writes an inference graph with the pruning masks folded into the weights.

Restores a checkpoint, freezes the graph for the given outputs, replaces each
`mask * weight` product by a constant and drops the mask, threshold and raw
weight nodes. Prints, per folded weight, its shape, its share of zeros and
the sparsity the stored pruning schedule asks for at the checkpoint's step,
then the output's size raw and gzip-compressed.

Usage:
  strip_pruning_vars --checkpoint_dir=/tmp/train \\
      --output_node_names=softmax_linear/add --output_dir=/tmp \\
      --filename=pruning_stripped.pb
  python -m model_pruning.python.strip_pruning_vars \\
      --checkpoint_path=/tmp/train/model.ckpt-2000 --output_node_names=logits
"""
import collections
import os
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from google.protobuf import text_format
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import strip_report

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

_PROGRAM = 'strip_pruning_vars'

# What one strip run produced: the written path, a WeightReport per folded
# weight, the SizeSummary, the checkpoint's global step (None if unknown) and
# the unpruned-checkpoint warning (None if none); with --output_format=tflite
# the exporter's dense vs sparse sizes (tflite_export.TfliteSizes), else None.
StripResult = collections.namedtuple(
    'StripResult', ['path', 'reports', 'sizes', 'global_step', 'warning',
                    'tflite_sizes'], defaults=(None,))


def _current_umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _write_atomically(path, write_fn):
  """Calls write_fn(temp_path) then moves the temp file onto `path`.

  The temp file sits in the same directory, so `os.replace` is atomic: a
  failure leaves the previous file (or none), never a partial one.
  """
  directory = os.path.dirname(path) or '.'
  fd, temp_path = tempfile.mkstemp(
      dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
  os.close(fd)
  try:
    write_fn(temp_path)
    os.chmod(temp_path, 0o666 & ~_current_umask())
    os.replace(temp_path, path)
  finally:
    if os.path.exists(temp_path):
      os.remove(temp_path)


def _write_bytes(data):
  def write(temp_path):
    with open(temp_path, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
  return write


def _tflite_writer(graph_def, output_node_names, options, exported):
  """A write_fn that exports `graph_def` with tflite_export (lazy import).

  The exporter's return value (its size report) is appended to `exported`.
  """
  try:
    from model_pruning.python import tflite_export  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ValueError('--output_format=tflite needs '
                     'model_pruning.python.tflite_export, which could not be '
                     'imported (%s); use --output_format=graphdef' % error
                    ) from None

  def write(temp_path):
    exported.append(tflite_export.export_stripped_graph(
        graph_def, output_node_names, temp_path, **options))
  return write


def _prepare_output_dir(output_dir):
  """Creates `output_dir`; raises OSError with a clear message if it can't."""
  try:
    os.makedirs(output_dir, exist_ok=True)
  except OSError as error:
    raise OSError('Cannot create output directory %s: %s' %
                  (output_dir, error.strerror or error)) from None
  if not os.access(output_dir, os.W_OK):
    raise OSError('Output directory %s is not writable' % output_dir)


def _log_reports(result):
  for report in result.reports:
    logging.info('%s (weight %s): shape %s, %.4f zeros, target %s',
                 report.name, report.weight_name, report.shape,
                 report.zero_fraction, report.target_sparsity)
  logging.info('Wrote %s: %s', result.path,
               strip_report.format_sizes(result.sizes))
  if result.warning:
    logging.warning('%s', result.warning)


def strip_checkpoint(checkpoint, output_node_names, output_path,
                     as_text=False, output_format='graphdef',
                     tflite_options=None):
  """Freezes, strips and writes a checkpoint; returns a StripResult.

  Args:
    checkpoint: a checkpoint directory or prefix.
    output_node_names: list of output node names (or a comma-separated str).
    output_path: the file to write (atomically).
    as_text: write a text GraphDef (graphdef format only).
    output_format: 'graphdef' or 'tflite'.
    tflite_options: keyword arguments for tflite_export.export_stripped_graph.

  Raises:
    ValueError: bad checkpoint, bad output names, or tflite unavailable.
    OSError: the output cannot be written.
  """
  names = strip_pruning_vars_lib.parse_output_node_names(output_node_names)
  if not names:
    raise ValueError('Need to specify at least 1 output node, got %r' %
                     (output_node_names,))
  _prepare_output_dir(os.path.dirname(output_path) or '.')
  frozen = strip_pruning_vars_lib.graph_def_from_checkpoint(checkpoint, names)
  state = strip_pruning_vars_lib.read_pruning_state(checkpoint)
  stripped, folded = strip_pruning_vars_lib.fold_masked_weights(frozen, names)
  exported = []
  if output_format == 'tflite':
    write_fn = _tflite_writer(stripped, names, dict(tflite_options or {}),
                              exported)
  elif as_text:
    write_fn = _write_bytes(text_format.MessageToString(stripped).encode())
  else:
    write_fn = _write_bytes(stripped.SerializeToString())
  try:
    _write_atomically(output_path, write_fn)
    with open(output_path, 'rb') as f:
      data = f.read()
  except OSError as error:
    raise OSError('Cannot write %s: %s' %
                  (output_path, error.strerror or error)) from None
  reports = strip_report.weight_reports(folded, state.global_step,
                                        state.hparams)
  result = StripResult(
      path=output_path, reports=reports,
      sizes=strip_report.size_summary(data, reports),
      global_step=state.global_step,
      warning=strip_report.unpruned_warning(reports, state.global_step),
      tflite_sizes=exported[0] if exported else None)
  _log_reports(result)
  return result


def strip_pruning_vars(checkpoint_dir, output_node_names, output_dir,
                       filename):
  """Upstream's entry point: strips the latest checkpoint, returns the path.

  Args:
    checkpoint_dir: checkpoint directory (or a checkpoint prefix).
    output_node_names: comma-separated output node names (or a list).
    output_dir: directory to write to.
    filename: name of the binary GraphDef written in `output_dir`.
  """
  path = os.path.join(output_dir, filename)
  return strip_checkpoint(checkpoint_dir, output_node_names, path).path


def _checkpoint_from_flags():
  """The --checkpoint_dir or --checkpoint_path value (exactly one)."""
  directory, path = _CHECKPOINT_DIR.value, _CHECKPOINT_PATH.value
  if directory and path:
    raise app.UsageError('Give --checkpoint_dir or --checkpoint_path, not '
                         'both (got %s and %s)' % (directory, path))
  if not (directory or path):
    raise app.UsageError('Give --checkpoint_dir=DIR (latest checkpoint) or '
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


def _fail(message):
  """Prints one error line to stderr and exits with status 1."""
  text = ' '.join(str(message).split())
  print('%s: error: %s' % (_PROGRAM, text), file=sys.stderr)
  sys.exit(1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  checkpoint = _checkpoint_from_flags()
  if not _OUTPUT_NODE_NAMES.value.replace(',', '').strip():
    raise app.UsageError('--output_node_names is required, e.g. '
                         '--output_node_names=logits or =out1,out2')
  if _AS_TEXT.value and _OUTPUT_FORMAT.value == 'tflite':
    raise app.UsageError('--as_text applies to --output_format=graphdef only')
  tflite_flags = [name for name in ('tflite_quantization', 'input_node_names',
                                    'input_shapes') if flags.FLAGS[name].present]
  if tflite_flags and _OUTPUT_FORMAT.value != 'tflite':
    raise app.UsageError('--%s applies to --output_format=tflite only' %
                         tflite_flags[0])
  # TF's own deprecation chatter would bury the report and error lines.
  tf.get_logger().setLevel('ERROR')
  try:
    result = strip_checkpoint(
        checkpoint, _OUTPUT_NODE_NAMES.value, _output_path_from_flags(),
        as_text=_AS_TEXT.value, output_format=_OUTPUT_FORMAT.value,
        tflite_options=_tflite_options_from_flags())
  except (ValueError, OSError) as error:
    _fail(error)
  except tf.errors.OpError as error:
    _fail(strip_pruning_vars_lib.error_summary(error))
  print(strip_report.format_table(result.reports, step=result.global_step))
  print(strip_report.format_sizes(result.sizes))
  _print_tflite_sizes(result.tflite_sizes)
  if result.warning:
    print('WARNING: %s' % result.warning)
  print('Wrote %s' % result.path)


def run_main():
  """Console-script entry point (setup.py: strip_pruning_vars)."""
  app.run(main)


if __name__ == '__main__':
  run_main()
