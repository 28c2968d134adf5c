"""Strip a checkpoint: freeze, fold the masks, write, and report.

The library behind the `strip_pruning_vars` binary (importable without its
flags): restores a checkpoint, freezes the graph for the given outputs,
replaces each `mask * weight` product by a constant, writes a GraphDef or a
TFLite file atomically, and returns a `StripResult` with, per folded weight,
its share of zeros beside the sparsity the stored schedule asks of its masks
(at the last mask update, unless one was missed since), and the output's
sizes.
"""
import collections
import os
import tempfile

from absl import logging

from google.protobuf import text_format
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import strip_report

# What one strip run produced: the written path, a WeightReport per folded
# weight, the SizeSummary, the checkpoint's global step (None if unknown) and
# the unpruned-checkpoint warning (None if none); with --output_format=tflite
# the exporter's dense vs sparse sizes (tflite_export.TfliteSizes), else None.
# `below_target`: the WeightReports more than strip_report.BELOW_TARGET_TOLERANCE
# plus their allowance below the sparsity their schedule asks of the masks
# (at the last mask update unless one was missed since; strip_report).
StripResult = collections.namedtuple(
    'StripResult', ['path', 'reports', 'sizes', 'global_step', 'warning',
                    'tflite_sizes', 'below_target'], defaults=(None, ()))


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
  for line in strip_report.below_target_warnings(result.below_target):
    logging.warning('%s', line)


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
                                        state.hparams, state.groups,
                                        state.last_update_steps)
  result = StripResult(
      path=output_path, reports=reports,
      sizes=strip_report.size_summary(data, reports),
      global_step=state.global_step,
      warning=strip_report.unpruned_warning(reports, state.global_step),
      tflite_sizes=exported[0] if exported else None,
      below_target=strip_report.below_target(reports))
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
