"""Per-op rules of XNNPACK's sparse (NCHW) path: which ops it can run, how.

`node_kind` gives an xnnpack_graph.Node's role in a sparse cluster: START
(the 3x3 stride-2 first convolution on 3 channels, padding 1), INNER (1x1
convolutions, 3x3/5x5 depthwise convolutions, ADD/MUL, unary activations,
RESIZE_BILINEAR), END (DEPTH_TO_SPACE) or INNER_END (MEAN/SUM over the
spatial axes), or raises `RuleBroken` saying which rule the op breaks and
what would fix it. xnnpack_check joins the nodes into clusters. The rules and
their sources are in docs/xnnpack_latency.md.
"""

# Rule ids, in the order xnnpack_check reports them.
RULE_FIRST_CONV = 'first_conv'          # cluster start: 3x3/2, 3 ch, pad 1
RULE_UNSUPPORTED_OP = 'unsupported_op'  # an op the NCHW path cannot run
RULE_QUANTIZED = 'quantized'            # a non-float tensor
RULE_OUTSIDE_CONSUMER = 'outside_consumer'
RULE_END_OP = 'end_op'                  # no MEAN / SUM / DEPTH_TO_SPACE end
RULE_SPARSITY = 'sparsity'              # 1x1 weights <= 2/3 zeros
RULE_NO_DENSIFY = 'no_densify'

# Roles of NCHW-capable nodes (XNNPACK's layout flags).
START, INNER, END, INNER_END = 'start', 'inner', 'end', 'inner_end'
READS_NCHW = (INNER, END, INNER_END)
WRITES_NCHW = (START, INNER, INNER_END)
_UNARY = frozenset([
    'ABS', 'CEIL', 'ELU', 'FLOOR', 'HARD_SWISH', 'LEAKY_RELU', 'LOGISTIC',
    'NEG', 'RELU', 'RELU6', 'RELU_N1_TO_1', 'RELU_0_TO_1', 'ROUND', 'SQUARE',
    'TANH', 'GELU', 'SQRT', 'RSQRT', 'EXP', 'LOG'])
_PARAMETER_INPUTS = ('MEAN', 'SUM', 'RESIZE_BILINEAR')


class RuleBroken(Exception):
  """The first broken rule of a node or cluster: rule id, where, why."""

  def __init__(self, rule, node_text, tensor, detail):
    super().__init__(detail)
    self.rule, self.node_text, self.tensor, self.detail = (
        rule, node_text, tensor, detail)


def _kind_of_conv(node):
  """Kind of a CONV_2D node, or raises RuleBroken naming what is wrong."""
  c = node.conv
  pad = c['padding']
  if c['in_channels'] != c['filter_in_channels']:
    raise RuleBroken(RULE_UNSUPPORTED_OP, None, None, 'grouped convolution')
  if c['dilations'] != (1, 1):
    raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                     'dilation %s, needs 1' % (c['dilations'],))
  if c['kernel'] == (1, 1):
    if pad != (0, 0, 0, 0) or c['strides'] != (1, 1):
      raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                       '1x1 convolution with padding %s, stride %s: needs no '
                       'padding and stride 1' % (pad, c['strides']))
    return INNER
  if c['kernel'] != (3, 3):
    raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                     '%dx%d convolution: the sparse path runs 1x1 convolutions '
                     'and one 3x3 stride-2 first convolution' % c['kernel'])
  problems = []
  if pad != (1, 1, 1, 1):
    problems.append('padding %s, needs 1 on every side (PAD 1 + VALID)' % (
        'SAME with stride 2 (input-size dependent)' if pad is None else
        '(top, right, bottom, left) = %s' % (pad,)))
  if c['strides'] != (2, 2):
    problems.append('stride %s, needs 2' % (c['strides'],))
  if c['in_channels'] != 3:
    problems.append('%s input channels, needs 3' % c['in_channels'])
  if problems:
    raise RuleBroken(RULE_FIRST_CONV, None, None,
                     '3x3 first convolution: ' + '; '.join(problems))
  return START


def _kind_of_depthwise(node):
  c = node.conv
  kernel, pad, strides = c['kernel'], c['padding'], c['strides']
  need = {(3, 3): (1, 1, 1, 1), (5, 5): (2, 2, 2, 2)}.get(kernel)
  problems = []
  if need is None:
    problems.append('kernel %dx%d, needs 3x3 or 5x5' % kernel)
  elif pad is None:
    problems.append('SAME padding with stride %s (input-size dependent), '
                    'needs explicit padding (PAD + VALID)' % (strides,))
  elif pad != need:
    problems.append('padding %s, needs %s' % (pad, need))
  if strides not in ((1, 1), (2, 2)):
    problems.append('stride %s, needs 1 or 2' % (strides,))
  if c['dilations'] != (1, 1):
    problems.append('dilation %s, needs 1' % (c['dilations'],))
  if c['out_channels'] != c['in_channels']:
    problems.append('depth multiplier %s, needs 1' % (
        c['out_channels'] / c['in_channels'] if c['in_channels'] else '?'))
  if problems:
    raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                     'depthwise convolution: ' + '; '.join(problems))
  return INNER


def _kind_of_elementwise(node, graph):
  shapes = [graph.tensors[t].shape for t in node.inputs if t >= 0]
  if any(len(s) != 4 for s in shapes):
    raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                     '%s of tensors shaped %s: needs 4-D inputs' % (
                         node.op_type, ' and '.join(map(str, shapes))))
  for t in node.inputs:
    tensor = graph.tensors[t]
    if tensor.constant and sum(d != 1 for d in tensor.shape) > 1:
      raise RuleBroken(RULE_UNSUPPORTED_OP, None, tensor.name,
                       '%s with constant %s: constants must be scalars or '
                       '1-D' % (node.op_type, tensor.shape))
  return INNER


def _kind_of_reduce(node, graph):
  source = graph.tensors[node.inputs[0]].shape
  axes = graph.tensors[node.inputs[1]].array
  axes = set() if axes is None else {int(a) % 4 for a in axes.ravel()}
  if len(source) != 4 or axes != {1, 2}:
    raise RuleBroken(RULE_END_OP, None, None,
                     '%s over axes %s of a %d-D tensor: the cluster must end '
                     'with a reduction over the spatial axes (1, 2) of a 4-D '
                     'tensor' % (node.op_type, sorted(axes), len(source)))
  return INNER_END


def node_kind(node, graph, count_fully_connected):
  """XNNPACK role of `node`, or raises RuleBroken (why it is excluded)."""
  # Axes and sizes are int32 parameters, not values.
  values = (node.inputs[:1] if node.op_type in _PARAMETER_INPUTS
            else node.inputs)
  for t in values + node.outputs:
    if t >= 0 and not graph.tensors[t].is_float:
      raise RuleBroken(RULE_QUANTIZED, None, graph.tensors[t].name,
                       'tensor "%s" is %s: the sparse path runs float32/'
                       'float16 models only (no int8 or dynamic-range '
                       'quantization)' % (graph.tensors[t].name,
                                          graph.tensors[t].type_name))
  op = node.op_type
  if op == 'CONV_2D':
    return _kind_of_conv(node)
  if op == 'DEPTHWISE_CONV_2D':
    return _kind_of_depthwise(node)
  if op in ('ADD', 'MUL'):
    return _kind_of_elementwise(node, graph)
  if op in _UNARY:
    if len(graph.tensors[node.inputs[0]].shape) != 4:
      raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                       '%s of a tensor that is not 4-D' % op)
    return INNER
  if op in ('MEAN', 'SUM'):
    return _kind_of_reduce(node, graph)
  if op == 'DEPTH_TO_SPACE':
    return END
  if op == 'FULLY_CONNECTED' and count_fully_connected:
    return INNER
  if op == 'RESIZE_BILINEAR':
    shape = graph.tensors[node.inputs[0]].shape
    if len(shape) == 4 and shape[1] > 1 and shape[2] > 1:
      return INNER
  raise RuleBroken(RULE_UNSUPPORTED_OP, None, None,
                   '%s has no NCHW kernel in XNNPACK' % op)


def classify(graph, count_fully_connected):
  """{node index: kind} and {node index: RuleBroken} for the excluded ones."""
  kinds, excluded = {}, {}
  for node in graph.nodes:
    try:
      kinds[node.index] = node_kind(node, graph, count_fully_connected)
    except RuleBroken as verdict:
      verdict.node_text = graph.describe(node)
      excluded[node.index] = verdict
  return kinds, excluded
