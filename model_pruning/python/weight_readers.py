"""Reads named weight arrays from a checkpoint, a frozen GraphDef or a .tflite.

Used by the check_sparsity tool; plain functions, no flags. Every reader
returns a list of `WeightRecord`s; bad input raises `WeightReadError` with one
line that names the path and what is wrong.

What each format yields:
  checkpoint (directory or prefix): each variable with a sibling `mask`
    (`a/b/weights` next to `a/b/mask`, same shape) as `weight * mask`
    (kind 'masked_weight'), and each mask itself (kind 'mask'). A checkpoint
    without masks yields its float variables instead (kind 'variable').
  GraphDef (.pb binary, .pbtxt text): every float `Const` (kind 'const').
  TFLite (.tflite): every constant (buffer-backed) float or quantized tensor
    (kind 'const'); TFLite stores kernels as `[out, ..., in]`, so the input
    axis is -1 there, against -2 for TF layouts. A sparse-encoded tensor is
    listed with `array=None`, `stored` set to how many values it stores.

`pruned_weights` then keeps the records that are pruned weights, so that a
zero-state constant or a bias does not count as a weight.
"""
import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from google.protobuf import message
from google.protobuf import text_format
from model_pruning.python import graph_keys

_FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
_TFLITE_MAGIC = b'TFL3'
# tflite schema TensorType -> numpy dtype (the ones weights come in).
_TFLITE_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8,
                  4: np.int64, 7: np.int16, 9: np.int8, 10: np.float64}
_TFLITE_FLOAT_TYPES = (0, 1, 10)


class WeightReadError(ValueError):
  """The input cannot be read; the message is one line for the user."""


@dataclasses.dataclass
class WeightRecord:
  """One weight as found in a file.

  Attributes:
    name: variable, node or tensor name.
    shape: tuple of ints.
    dtype: numpy dtype name (e.g. 'float32').
    kind: 'masked_weight', 'mask', 'variable' or 'const'.
    array: the dense values (zeros = pruned), or None when they cannot be
      read densely (see `note`).
    input_axis: the input-channel axis N:M groups run along.
    note: extra facts ('weight * mask', 'sparse-encoded, 12 stored values').
  """
  name: str
  shape: tuple
  dtype: str
  kind: str
  array: Optional[np.ndarray]
  input_axis: int = -2
  note: str = ''
  stored: Optional[int] = None


def detect_format(path):
  """Returns 'checkpoint', 'graphdef', 'graphdef_text' or 'tflite' for `path`."""
  if os.path.isdir(path):
    return 'checkpoint'
  if path.endswith('.index') or os.path.exists(path + '.index'):
    return 'checkpoint'
  if not os.path.exists(path):
    raise WeightReadError('%s: no such file, directory or checkpoint prefix'
                          % path)
  if path.endswith('.pbtxt'):
    return 'graphdef_text'
  with open(path, 'rb') as f:
    head = f.read(8)
  if path.endswith('.tflite') or head[4:8] == _TFLITE_MAGIC:
    return 'tflite'
  if path.endswith('.pb'):
    return 'graphdef'
  raise WeightReadError(
      '%s: unknown format; pass a checkpoint directory or prefix, a frozen '
      'GraphDef (.pb or .pbtxt) or a TFLite model (.tflite)' % path)


def read_weights(path):
  """Reads `path` in whichever format it is; returns a list of WeightRecords."""
  readers = {'checkpoint': read_checkpoint, 'graphdef': read_graph_def,
             'graphdef_text': read_graph_def, 'tflite': read_tflite}
  return readers[detect_format(path)](path)


def _checkpoint_prefix(path):
  if os.path.isdir(path):
    prefix = tf.train.latest_checkpoint(path)
    if prefix is None:
      raise WeightReadError('%s: directory holds no checkpoint (no '
                            '"checkpoint" state file)' % path)
    return prefix
  return path[:-len('.index')] if path.endswith('.index') else path


def _open_checkpoint(path):
  prefix = _checkpoint_prefix(path)
  try:
    return tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as e:
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else ''
    raise WeightReadError('%s: cannot read checkpoint: %s'
                          % (prefix, first_line)) from None


def _split(name):
  head, _, leaf = name.rpartition('/')
  return head, leaf


def _mask_pairs(shapes, dtypes):
  """Yields (weight_name, mask_name) for every same-shape sibling of a mask."""
  by_scope = {}
  for name in sorted(shapes):
    by_scope.setdefault(_split(name)[0], []).append(name)
  for mask_name in sorted(shapes):
    scope, leaf = _split(mask_name)
    if leaf != 'mask':
      continue
    for name in by_scope[scope]:
      if (_split(name)[1] not in graph_keys.PRUNING_VARIABLE_NAMES
          and shapes[name] == shapes[mask_name]
          and dtypes[name].is_floating):
        yield name, mask_name


def read_checkpoint(path):
  """Masked weights (weight * mask) and masks from a TF checkpoint."""
  reader = _open_checkpoint(path)
  shapes = reader.get_variable_to_shape_map()
  dtypes = reader.get_variable_to_dtype_map()
  records = []
  for weight_name, mask_name in _mask_pairs(shapes, dtypes):
    masked = reader.get_tensor(weight_name) * reader.get_tensor(mask_name)
    records.append(WeightRecord(
        weight_name, tuple(masked.shape), masked.dtype.name, 'masked_weight',
        masked, note='%s * %s' % (weight_name, mask_name)))
  mask_names = sorted(n for n in shapes if _split(n)[1] == 'mask')
  for mask_name in mask_names:
    mask = reader.get_tensor(mask_name)
    records.append(WeightRecord(mask_name, tuple(mask.shape), mask.dtype.name,
                                'mask', mask))
  if not mask_names:
    for name in sorted(shapes):
      if dtypes[name].is_floating and _split(name)[1] != 'threshold':
        value = reader.get_tensor(name)
        records.append(WeightRecord(name, tuple(value.shape),
                                    value.dtype.name, 'variable', value))
  return records


def _load_graph_def(path):
  graph_def = tf.compat.v1.GraphDef()
  try:
    if path.endswith('.pbtxt'):
      with open(path, 'r', encoding='utf-8') as f:
        text_format.Parse(f.read(), graph_def)
    else:
      with open(path, 'rb') as f:
        graph_def.ParseFromString(f.read())
  except (message.DecodeError, text_format.ParseError,
          UnicodeDecodeError) as e:
    detail = str(e).strip().splitlines()[0] if str(e).strip() else type(
        e).__name__
    raise WeightReadError('%s: not a valid GraphDef: %s' % (path, detail)
                         ) from None
  return graph_def


def read_graph_def(path):
  """Every float `Const` node of a frozen GraphDef (.pb or .pbtxt)."""
  graph_def = _load_graph_def(path)
  float_enums = {d.as_datatype_enum for d in _FLOAT_DTYPES}
  records = []
  for node in graph_def.node:
    if node.op != 'Const' or node.attr['dtype'].type not in float_enums:
      continue
    value = tf.make_ndarray(node.attr['value'].tensor)
    records.append(WeightRecord(node.name, tuple(value.shape),
                                value.dtype.name, 'const', value))
  return records


def _load_tflite(path):
  with open(path, 'rb') as f:
    head = f.read(8)
  if head[4:8] != _TFLITE_MAGIC:
    raise WeightReadError('%s: not a TFLite flatbuffer (no TFL3 identifier)'
                          % path)
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  try:
    return flatbuffer_utils.read_model(path)
  except Exception as e:  # pylint: disable=broad-except
    # A truncated flatbuffer fails anywhere inside the generated parser.
    detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ''
    raise WeightReadError('%s: corrupt TFLite model (%s: %s)'
                          % (path, type(e).__name__, detail)) from None


def read_tflite_model(path):
  """The parsed TFLite flatbuffer (`schema_py_generated.ModelT`) of `path`.

  Raises:
    WeightReadError: not a TFLite flatbuffer, or a corrupt one.
  """
  return _load_tflite(path)


def _dequantized_zero(values, quantization):
  """Subtracts the zero point(s), so pruned entries of int weights read 0."""
  zero_points = getattr(quantization, 'zeroPoint', None)
  if zero_points is None or not np.any(np.asarray(zero_points)):
    return values
  zero_points = np.asarray(zero_points, np.int64)
  if zero_points.size > 1:
    shape = [1] * values.ndim
    shape[quantization.quantizedDimension] = -1
    zero_points = zero_points.reshape(shape)
  return values.astype(np.int64) - zero_points


def _tflite_record(tensor, data):
  name = tensor.name.decode('utf-8', 'replace')
  shape = tuple(int(d) for d in tensor.shape)
  dtype = np.dtype(_TFLITE_DTYPES[tensor.type])
  if tensor.sparsity is not None:
    stored = len(data) // dtype.itemsize
    return WeightRecord(name, shape, dtype.name, 'const', None, -1,
                        'sparse-encoded, %d stored values' % stored,
                        stored=stored)
  values = np.frombuffer(bytes(data), dtype).reshape(shape)
  values = _dequantized_zero(values, tensor.quantization)
  note = '' if tensor.type in _TFLITE_FLOAT_TYPES else 'quantized'
  return WeightRecord(name, shape, dtype.name, 'const', values, -1, note)


def read_tflite(path):
  """Constant float and quantized tensors of a .tflite model."""
  model = _load_tflite(path)
  records = []
  for subgraph in model.subgraphs:
    for tensor in subgraph.tensors:
      data = model.buffers[tensor.buffer].data if tensor.buffer else None
      if data is None or len(data) == 0 or tensor.type not in _TFLITE_DTYPES:
        continue
      quantized = (tensor.quantization is not None and
                   tensor.quantization.scale is not None)
      if tensor.type in _TFLITE_FLOAT_TYPES or quantized:
        records.append(_tflite_record(tensor, data))
  return records


def pruned_weights(records, fmt):
  """The records that are pruned weights, and a line saying which they are.

  checkpoint: the masked weights (weight * mask); GraphDef: the constants the
  strip tool folded (named `.../masked_weight`); TFLite: the sparse-encoded
  tensors, else those named `.../masked_weight`. A file that holds none of
  these keeps every record (nothing marks its pruned weights).

  Args:
    records: what `read_weights` returned for the file.
    fmt: its format, as `detect_format` names it.

  Returns:
    (records, selection text).
  """
  if fmt == 'checkpoint':
    chosen = [r for r in records if r.kind == 'masked_weight']
    what = 'pruned weights (weight * mask)'
  elif fmt == 'tflite' and any(r.stored is not None for r in records):
    chosen = [r for r in records if r.stored is not None]
    what = 'pruned weights (sparse-encoded tensors)'
  else:
    chosen = [r for r in records
              if graph_keys.MASKED_WEIGHT_NODE_RE.search(r.name)]
    what = 'pruned weights (masked_weight constants)'
  if not chosen:
    return records, 'every weight-like tensor (no pruned weights marked)'
  return chosen, what
