"""A .tflite model as XNNPACK's subgraph sees it: nodes, tensors, constants.

xnnpack_check decides whether XNNPACK's sparse path would run a model; it
needs the graph the XNNPACK delegate hands to XNNPACK, which differs from the
flatbuffer's operator list in three ways, all reproduced here:

* Weight-unpacking ops disappear. `DENSIFY` (sparse-encoded constant ->
  dense) and `DEQUANTIZE` (float16 constant -> float32) with a constant
  input are run once when the model is prepared; their outputs are constants.
* A zero `PAD` of the two spatial axes whose only reader is a
  `CONV_2D` / `DEPTHWISE_CONV_2D` is folded into that convolution's padding
  (XNNPACK fuses it), unless the convolution keeps TensorFlow SAME padding.
* SAME padding becomes explicit padding when both strides are 1
  (total (k - 1) * dilation, the smaller half first); with a larger stride it
  stays SAME (input-size dependent), which the sparse path does not accept.

Plain functions and dataclasses, no flags; reading errors are
`weight_readers.WeightReadError`.
"""
import dataclasses
from typing import Optional

import numpy as np

from model_pruning.python import weight_readers

# TFLite schema enums (tensorflow/lite/schema/schema.fbs).
FLOAT_TYPES = {0: 'FLOAT32', 1: 'FLOAT16'}
_TYPE_NAMES = {0: 'FLOAT32', 1: 'FLOAT16', 2: 'INT32', 3: 'UINT8', 4: 'INT64',
               7: 'INT16', 9: 'INT8', 10: 'FLOAT64', 17: 'INT4'}
_SAME, _VALID = 0, 1
_UNPACK_OPS = ('DENSIFY', 'DEQUANTIZE')
_PAD_OPS = ('PAD', 'PADV2')
CONV_OPS = ('CONV_2D', 'DEPTHWISE_CONV_2D')


def _builtin_names():
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  return {value: name for name, value in vars(schema.BuiltinOperator).items()
          if not name.startswith('_')}


@dataclasses.dataclass
class Tensor:
  """One tensor: name, shape, TFLite type name; `array` for readable constants.

  For a sparse-encoded constant `array` is None and `stored` holds the
  stored values (zeros among them count as zeros).
  """
  index: int
  name: str
  shape: tuple
  type_name: str
  constant: bool = False
  array: Optional[np.ndarray] = None
  stored: Optional[np.ndarray] = None

  @property
  def is_float(self):
    return self.type_name in FLOAT_TYPES.values()

  def zeros_and_size(self):
    """(number of zero entries, number of entries) of a constant."""
    size = int(np.prod(self.shape)) if self.shape else 1
    values = self.array if self.array is not None else self.stored
    if values is None:
      return 0, size
    return size - int(np.count_nonzero(values)), size


@dataclasses.dataclass
class Node:
  """One XNNPACK node: a TFLite op after unpack removal and PAD fusion.

  `conv` holds, for CONV_2D / DEPTHWISE_CONV_2D, the effective parameters:
  kernel (h, w), strides (h, w), dilations (h, w), padding
  (top, right, bottom, left) or None for SAME kept as SAME, input and
  output channels, and `fused_pad` (the PAD op index folded in, or None).
  """
  index: int
  op_type: str
  inputs: list
  outputs: list
  options: object = None
  conv: Optional[dict] = None


@dataclasses.dataclass
class Graph:
  """Nodes in op order, tensors by index, model inputs and outputs."""
  nodes: list
  tensors: dict
  model_inputs: set
  model_outputs: set
  op_types: list  # every TFLite op type of the file, in order

  def producer(self, tensor_index):
    for node in self.nodes:
      if tensor_index in node.outputs:
        return node
    return None

  def consumers(self, tensor_index):
    return [n for n in self.nodes if tensor_index in n.inputs]

  def dynamic_inputs(self, node):
    return [t for t in node.inputs
            if t >= 0 and not self.tensors[t].constant]

  def describe(self, node):
    """'op #3 CONV_2D -> "name of its first output"'."""
    name = self.tensors[node.outputs[0]].name if node.outputs else ''
    return 'op #%d %s -> "%s"' % (node.index, node.op_type, name)


def _tensor(index, flat, model):
  data = model.buffers[flat.buffer].data if flat.buffer else None
  type_name = _TYPE_NAMES.get(flat.type, 'TYPE%d' % flat.type)
  tensor = Tensor(index, flat.name.decode('utf-8', 'replace'),
                  tuple(int(d) for d in flat.shape), type_name)
  if data is None or len(data) == 0:
    return tensor
  tensor.constant = True
  dtype = {'FLOAT32': np.float32, 'FLOAT16': np.float16, 'INT32': np.int32,
           'INT64': np.int64, 'INT8': np.int8, 'UINT8': np.uint8,
           'INT16': np.int16, 'FLOAT64': np.float64}.get(type_name)
  if dtype is None:
    return tensor
  values = np.frombuffer(bytes(data), dtype)
  if flat.sparsity is not None:
    tensor.stored = values
  elif values.size == int(np.prod(tensor.shape)):
    tensor.array = values.reshape(tensor.shape)
  return tensor


def _unpack(nodes, tensors):
  """Drops DENSIFY / DEQUANTIZE of constants; their outputs become constants
  that keep the source's values (for zero counting)."""
  kept = []
  for node in nodes:
    source = tensors[node.inputs[0]] if node.inputs else None
    if node.op_type in _UNPACK_OPS and source is not None and source.constant:
      out = tensors[node.outputs[0]]
      out.constant = True
      out.array = (None if source.array is None
                   else source.array.astype(np.float32).reshape(out.shape))
      out.stored = source.stored
      continue
    kept.append(node)
  return kept


def _explicit_same(kernel, dilation):
  total = (kernel - 1) * dilation
  return total // 2, total - total // 2


def _conv_params(node, tensors):
  """Effective kernel, strides, dilations and padding of a convolution."""
  filt = tensors[node.inputs[1]].shape
  source = tensors[node.inputs[0]].shape
  opts = node.options
  kernel = (filt[1], filt[2])
  strides = (opts.strideH, opts.strideW)
  dilations = (opts.dilationHFactor, opts.dilationWFactor)
  if opts.padding == _VALID:
    padding = (0, 0, 0, 0)
  elif strides == (1, 1):
    top, bottom = _explicit_same(kernel[0], dilations[0])
    left, right = _explicit_same(kernel[1], dilations[1])
    padding = (top, right, bottom, left)
  else:
    padding = None  # TensorFlow SAME, kept: depends on the input size
  in_channels = source[3] if len(source) == 4 else None
  out_channels = filt[0] if node.op_type == 'CONV_2D' else filt[3]
  return dict(kernel=kernel, strides=strides, dilations=dilations,
              padding=padding, in_channels=in_channels,
              filter_in_channels=filt[3] if node.op_type == 'CONV_2D' else 1,
              out_channels=out_channels, fused_pad=None)


def _spatial_zero_pads(pad, tensors):
  """((top, bottom), (left, right)) if `pad` zero-pads only H and W."""
  source = tensors[pad.inputs[0]]
  paddings = tensors[pad.inputs[1]].array
  if len(source.shape) != 4 or paddings is None or paddings.shape != (4, 2):
    return None
  if np.any(paddings[0]) or np.any(paddings[3]):
    return None
  if pad.op_type == 'PADV2' and len(pad.inputs) > 2:
    value = tensors[pad.inputs[2]].array
    if value is None or np.any(value):
      return None
  return tuple(int(v) for v in paddings[1]), tuple(int(v) for v in paddings[2])


def _fuse_pads(graph):
  """Folds each fusable PAD into the one convolution that reads it."""
  fused = set()
  for pad in graph.nodes:
    if pad.op_type not in _PAD_OPS:
      continue
    out = pad.outputs[0]
    readers = graph.consumers(out)
    pads = _spatial_zero_pads(pad, graph.tensors)
    if (pads is None or len(readers) != 1 or out in graph.model_outputs or
        readers[0].op_type not in CONV_OPS or readers[0].inputs[0] != out or
        readers[0].conv['padding'] is None):
      continue
    conv = readers[0].conv
    top, right, bottom, left = conv['padding']
    conv['padding'] = (top + pads[0][0], right + pads[1][1],
                       bottom + pads[0][1], left + pads[1][0])
    conv['fused_pad'] = pad.index
    readers[0].inputs = [pad.inputs[0]] + readers[0].inputs[1:]
    fused.add(pad.index)
  graph.nodes = [n for n in graph.nodes if n.index not in fused]


def read_graph(path):
  """Reads `path` (.tflite) into the Graph XNNPACK would be handed.

  Only the main subgraph (index 0) is read: control-flow subgraphs never
  reach XNNPACK's sparse path.

  Raises:
    weight_readers.WeightReadError: not a readable TFLite model.
  """
  model = weight_readers.read_tflite_model(path)
  if not model.subgraphs:
    raise weight_readers.WeightReadError('%s: TFLite model has no subgraph'
                                         % path)
  names = _builtin_names()
  codes = [max(c.builtinCode, c.deprecatedBuiltinCode)
           for c in model.operatorCodes]
  main = model.subgraphs[0]
  tensors = {i: _tensor(i, t, model) for i, t in enumerate(main.tensors)}
  nodes = [Node(i, names.get(codes[op.opcodeIndex], 'CUSTOM'),
                [int(t) for t in op.inputs], [int(t) for t in op.outputs],
                op.builtinOptions)
           for i, op in enumerate(main.operators)]
  op_types = [n.op_type for n in nodes]
  nodes = _unpack(nodes, tensors)
  for node in nodes:
    if node.op_type in CONV_OPS:
      node.conv = _conv_params(node, tensors)
  graph = Graph(nodes, tensors, {int(i) for i in main.inputs},
                {int(i) for i in main.outputs}, op_types)
  _fuse_pads(graph)
  return graph
