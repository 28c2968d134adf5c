r"""Would XNNPACK's sparse inference path run this .tflite model? A static check.

TensorFlow Lite's XNNPACK delegate can run part of a float model in NCHW
layout with sparse 1x1-convolution kernels, which is where pruning buys CPU
latency. It does so silently, only when all of these hold (XNNPACK
`src/subgraph.c`, `xnn_check_nchw_compatibility` and
`xnn_subgraph_rewrite_for_nchw`; TFLite `delegates/xnnpack/README.md`,
"Sparse Inference"; see docs/xnnpack_latency.md):

1. The model holds `DENSIFY` ops (the converter's sparse encoding): only then
   does the delegate ask XNNPACK for sparse inference.
2. A *cluster* of NCHW-capable nodes exists: it starts at a 3x3 stride-2
   `CONV_2D` with 3 input channels and padding 1 on every side (a `PAD` +
   VALID convolution is fused into that), holds 1x1 `CONV_2D`s (no padding,
   stride 1), `DEPTHWISE_CONV_2D` 3x3 (padding 1) or 5x5 (padding 2) with
   stride 1 or 2, `ADD`/`MUL` of 4-D tensors (constants scalar or 1-D),
   unary activations, `RESIZE_BILINEAR`, and ends at a `MEAN`/`SUM` over
   the spatial axes or a `DEPTH_TO_SPACE`. (Recent XNNPACK sources also
   take `FULLY_CONNECTED` into the cluster and count its weights in rule 5;
   the LiteRT 1.4.0 runtime we verified against does not: see
   `count_fully_connected`.)
3. Every tensor a cluster node reads comes from inside the cluster, and no
   node outside it (nor the model's outputs) reads it too.
4. All its tensors are float32 or float16 (no quantized tensors).
5. More than 2/3 of the weights of its 1x1 convolutions are zero.
6. The CPU: ARM, ARM64, WebAssembly or x86 without AVX. On x86 with AVX
   XNNPACK keeps dense kernels by design.

`check(path)` returns an `XnnpackReport` with one `Cluster` verdict per
cluster (1-5, for ARM64); `format_report` prints it with a line on this
host's CPU (6); `cli_main(path)` is what `check_sparsity --xnnpack` calls.
"""
import dataclasses
import platform
import sys
from typing import Optional

from model_pruning.python import weight_readers
from model_pruning.python import xnnpack_graph

EXIT_ENGAGES, EXIT_DOES_NOT, EXIT_BAD_INPUT = 0, 1, 2

# Rule ids, in the order they are checked.
RULE_FIRST_CONV = 'first_conv'          # cluster start: 3x3/2, 3 ch, pad 1
RULE_UNSUPPORTED_OP = 'unsupported_op'  # an op the NCHW path cannot run
RULE_QUANTIZED = 'quantized'            # a non-float tensor
RULE_OUTSIDE_CONSUMER = 'outside_consumer'
RULE_END_OP = 'end_op'                  # no MEAN / SUM / DEPTH_TO_SPACE end
RULE_SPARSITY = 'sparsity'              # 1x1 weights <= 2/3 zeros
RULE_NO_DENSIFY = 'no_densify'

# Kinds of NCHW-capable nodes (XNNPACK's layout flags).
_START, _INNER, _END, _INNER_END = 'start', 'inner', 'end', 'inner_end'
_READS_NCHW = (_INNER, _END, _INNER_END)
_WRITES_NCHW = (_START, _INNER, _INNER_END)
_UNARY = frozenset([
    'ABS', 'CEIL', 'ELU', 'FLOOR', 'HARD_SWISH', 'LEAKY_RELU', 'LOGISTIC',
    'NEG', 'RELU', 'RELU6', 'RELU_N1_TO_1', 'RELU_0_TO_1', 'ROUND', 'SQUARE',
    'TANH', 'GELU', 'SQRT', 'RSQRT', 'EXP', 'LOG'])
_PARAMETER_INPUTS = ('MEAN', 'SUM', 'RESIZE_BILINEAR')
_SPARSE_COUNTED = ('CONV_2D', 'FULLY_CONNECTED')
SPARSITY_NEEDED = 2.0 / 3.0


@dataclasses.dataclass
class Cluster:
  """One NCHW cluster and its verdict.

  Attributes:
    ops: TFLite op indices of its nodes, in order.
    engages: True when XNNPACK's sparse path would run it on ARM64.
    rule: None, or the id of the first rule broken (RULE_*).
    op: None, or 'op #i TYPE -> "tensor"' of the op that breaks it.
    tensor: None, or the name of the tensor involved.
    detail: one line saying what is wrong and what would fix it.
    zeros, params: zero and total weights of its 1x1 convolutions (and,
      with count_fully_connected, fully connected layers): what the 2/3
      rule counts.
  """
  ops: list
  engages: bool = False
  rule: Optional[str] = None
  op: Optional[str] = None
  tensor: Optional[str] = None
  detail: str = ''
  zeros: int = 0
  params: int = 0

  @property
  def sparsity(self):
    return self.zeros / self.params if self.params else 0.0


@dataclasses.dataclass
class XnnpackReport:
  """What `check` found: per-cluster verdicts and the model-level facts."""
  path: str
  clusters: list
  has_densify: bool
  engages: bool
  no_cluster_reason: str = ''
  no_cluster_rule: Optional[str] = None


class _Verdict(Exception):
  """Internal: the first broken rule of a node or cluster."""

  def __init__(self, rule, node_text, tensor, detail):
    super().__init__(detail)
    self.rule, self.node_text, self.tensor, self.detail = (
        rule, node_text, tensor, detail)


def _kind_of_conv(node):
  """Kind of a CONV_2D node, or raises _Verdict naming what is wrong."""
  c = node.conv
  pad = c['padding']
  if c['in_channels'] != c['filter_in_channels']:
    raise _Verdict(RULE_UNSUPPORTED_OP, None, None, 'grouped convolution')
  if c['dilations'] != (1, 1):
    raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
                   'dilation %s, needs 1' % (c['dilations'],))
  if c['kernel'] == (1, 1):
    if pad != (0, 0, 0, 0) or c['strides'] != (1, 1):
      raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
                     '1x1 convolution with padding %s, stride %s: needs no '
                     'padding and stride 1' % (pad, c['strides']))
    return _INNER
  if c['kernel'] != (3, 3):
    raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
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
    raise _Verdict(RULE_FIRST_CONV, None, None,
                   '3x3 first convolution: ' + '; '.join(problems))
  return _START


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
    raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
                   'depthwise convolution: ' + '; '.join(problems))
  return _INNER


def _kind_of_elementwise(node, graph):
  shapes = [graph.tensors[t].shape for t in node.inputs if t >= 0]
  if any(len(s) != 4 for s in shapes):
    raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
                   '%s of tensors shaped %s: needs 4-D inputs' % (
                       node.op_type, ' and '.join(map(str, shapes))))
  for t in node.inputs:
    tensor = graph.tensors[t]
    if tensor.constant and sum(d != 1 for d in tensor.shape) > 1:
      raise _Verdict(RULE_UNSUPPORTED_OP, None, tensor.name,
                     '%s with constant %s: constants must be scalars or '
                     '1-D' % (node.op_type, tensor.shape))
  return _INNER


def _kind_of_reduce(node, graph):
  source = graph.tensors[node.inputs[0]].shape
  axes = graph.tensors[node.inputs[1]].array
  axes = set() if axes is None else {int(a) % 4 for a in axes.ravel()}
  if len(source) != 4 or axes != {1, 2}:
    raise _Verdict(RULE_END_OP, None, None,
                   '%s over axes %s of a %d-D tensor: the cluster must end '
                   'with a reduction over the spatial axes (1, 2) of a 4-D '
                   'tensor' % (node.op_type, sorted(axes), len(source)))
  return _INNER_END


def _node_kind(node, graph, count_fully_connected):
  """XNNPACK layout kind of `node`, or raises _Verdict (why it is excluded)."""
  # Axes and sizes are int32 parameters, not values.
  values = (node.inputs[:1] if node.op_type in _PARAMETER_INPUTS
            else node.inputs)
  for t in values + node.outputs:
    if t >= 0 and not graph.tensors[t].is_float:
      raise _Verdict(RULE_QUANTIZED, None, graph.tensors[t].name,
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
      raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
                     '%s of a tensor that is not 4-D' % op)
    return _INNER
  if op in ('MEAN', 'SUM'):
    return _kind_of_reduce(node, graph)
  if op == 'DEPTH_TO_SPACE':
    return _END
  if op == 'FULLY_CONNECTED' and count_fully_connected:
    return _INNER
  if op == 'RESIZE_BILINEAR':
    shape = graph.tensors[node.inputs[0]].shape
    if len(shape) == 4 and shape[1] > 1 and shape[2] > 1:
      return _INNER
  raise _Verdict(RULE_UNSUPPORTED_OP, None, None,
                 '%s has no NCHW kernel in XNNPACK' % op)


def _classify(graph, count_fully_connected):
  """{node index: kind} and {node index: _Verdict} for the excluded ones."""
  kinds, excluded = {}, {}
  for node in graph.nodes:
    try:
      kinds[node.index] = _node_kind(node, graph, count_fully_connected)
    except _Verdict as verdict:
      verdict.node_text = graph.describe(node)
      excluded[node.index] = verdict
  return kinds, excluded


class _UnionFind:

  def __init__(self):
    self.parent = {}

  def find(self, x):
    self.parent.setdefault(x, x)
    while self.parent[x] != x:
      self.parent[x] = self.parent[self.parent[x]]
      x = self.parent[x]
    return x

  def union(self, a, b):
    self.parent[self.find(a)] = self.find(b)


def _link(graph, kinds, excluded):
  """Joins each NCHW reader to its producers; returns (union-find, broken).

  broken[node] is the _Verdict of a reader whose input cannot be NCHW: a
  model input, or the output of an excluded node (its verdict, restated).
  """
  groups, broken = _UnionFind(), {}
  by_index = {n.index: n for n in graph.nodes}
  for node in graph.nodes:
    kind = kinds.get(node.index)
    if kind is None:
      continue
    groups.find(node.index)
    if kind not in _READS_NCHW:
      continue
    for t in graph.dynamic_inputs(node):
      name = graph.tensors[t].name
      producer = graph.producer(t)
      if producer is None:
        broken.setdefault(node.index, _Verdict(
            RULE_FIRST_CONV, graph.describe(node), name,
            'reads the model input "%s" directly: a cluster must start with '
            'a 3x3 stride-2 convolution on 3 channels' % name))
      elif kinds.get(producer.index) in _WRITES_NCHW:
        groups.union(node.index, producer.index)
      else:
        cause = excluded.get(producer.index)
        if cause is None:  # an END-only producer (DEPTH_TO_SPACE)
          cause = _Verdict(RULE_UNSUPPORTED_OP, graph.describe(producer),
                           None, 'its output is NHWC')
        broken.setdefault(node.index, _Verdict(
            cause.rule, graph.describe(producer), name,
            '%s (its output "%s" feeds %s)' % (
                cause.detail, name, graph.describe(by_index[node.index]))))
  return groups, broken


def _outside_reader(graph, members, kinds, node):
  """_Verdict if an input of `node` is also read outside the cluster."""
  for t in graph.dynamic_inputs(node):
    name = graph.tensors[t].name
    if t in graph.model_outputs:
      return _Verdict(RULE_OUTSIDE_CONSUMER, graph.describe(node), name,
                      'tensor "%s" inside the cluster is also a model output'
                      % name)
    for reader in graph.consumers(t):
      if reader.index not in members or kinds[reader.index] not in _READS_NCHW:
        return _Verdict(RULE_OUTSIDE_CONSUMER, graph.describe(reader), name,
                        'tensor "%s" is also read by %s, which runs outside '
                        'the NCHW cluster' % (name, graph.describe(reader)))
  return None


def _count_sparse_weights(graph, members):
  """(zeros, params, least sparse counted node) over 1x1 convs and FCs."""
  zeros = params = 0
  worst, worst_ratio = None, 2.0
  for node in graph.nodes:
    if node.index not in members or node.op_type not in _SPARSE_COUNTED:
      continue
    if node.op_type == 'CONV_2D' and node.conv['kernel'] != (1, 1):
      continue
    z, n = graph.tensors[node.inputs[1]].zeros_and_size()
    zeros, params = zeros + z, params + n
    if n and z / n < worst_ratio:
      worst, worst_ratio = node, z / n
  return zeros, params, worst


def _judge(graph, members, kinds, broken, has_densify):
  """The Cluster verdict for one set of member node indices."""
  cluster = Cluster(ops=sorted(members))
  nodes = [n for n in graph.nodes if n.index in members]
  cluster.zeros, cluster.params, worst = _count_sparse_weights(graph, members)
  try:
    for node in nodes:
      if node.index in broken:
        raise broken[node.index]
    for node in nodes:
      if kinds[node.index] in _READS_NCHW:
        verdict = _outside_reader(graph, members, kinds, node)
        if verdict is not None:
          raise verdict
    if cluster.params == 0:
      raise _Verdict(RULE_SPARSITY, None, None, 'no 1x1 convolution in the '
                     'cluster: nothing for the sparse kernels to do')
    if cluster.zeros * 3 <= cluster.params * 2:
      weight = graph.tensors[worst.inputs[1]]
      raise _Verdict(
          RULE_SPARSITY, graph.describe(worst), weight.name,
          'weights of the 1x1 convolutions are %d of %d zeros (%.1f%%), need more than 2/3; '
          'least sparse: "%s" (%.1f%%)' % (
              cluster.zeros, cluster.params, 100.0 * cluster.sparsity,
              weight.name, 100.0 * weight.zeros_and_size()[0] /
              max(weight.zeros_and_size()[1], 1)))
    if not has_densify:
      raise _Verdict(RULE_NO_DENSIFY, None, None,
                     'the model has no DENSIFY op (weights stored dense), so '
                     'the delegate never asks for sparse inference; convert '
                     'with tf.lite.Optimize.EXPERIMENTAL_SPARSITY')
    cluster.engages = True
  except _Verdict as verdict:
    cluster.rule, cluster.op = verdict.rule, verdict.node_text
    cluster.tensor, cluster.detail = verdict.tensor, verdict.detail
  return cluster


def check(path, count_fully_connected=False):
  """Checks `path` (.tflite); returns an XnnpackReport.

  Args:
    path: a .tflite model.
    count_fully_connected: model newer XNNPACK, which runs FULLY_CONNECTED
      inside a cluster and counts its weights with the 1x1 convolutions'.
      False (the default) matches the aarch64 LiteRT 1.4.0 runtime the
      verdicts were checked against (docs/xnnpack_latency.md).

  Raises:
    weight_readers.WeightReadError: not a readable TFLite model.
  """
  graph = xnnpack_graph.read_graph(path)
  kinds, excluded = _classify(graph, count_fully_connected)
  groups, broken = _link(graph, kinds, excluded)
  components = {}
  for index in kinds:
    components.setdefault(groups.find(index), set()).add(index)
  has_densify = 'DENSIFY' in graph.op_types
  clusters = [_judge(graph, members, kinds, broken, has_densify)
              for members in components.values()
              if any(kinds[i] in (_END, _INNER_END) for i in members)]
  clusters.sort(key=lambda c: c.ops[0])
  report = XnnpackReport(path, clusters, has_densify,
                         any(c.engages for c in clusters))
  if not clusters:
    report.no_cluster_rule = RULE_END_OP
    ends = [v for v in excluded.values() if v.rule == RULE_END_OP]
    report.no_cluster_reason = (
        '%s: %s' % (ends[0].node_text, ends[0].detail) if ends else
        'no MEAN/SUM over the spatial axes or DEPTH_TO_SPACE of a 4-D float '
        'tensor ends a cluster')
  return report


def _cpu_flags():
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('flags'):
          return set(line.split(':', 1)[1].split())
  except OSError:
    pass
  return set()


def host_cpu_line(machine=None, cpu_flags=None):
  """One line on whether this CPU would use sparse kernels at all.

  Args:
    machine: platform.machine() value; None reads this host's.
    cpu_flags: set of /proc/cpuinfo flags; None reads this host's.
  """
  machine = (machine or platform.machine()).lower()
  if machine in ('x86_64', 'amd64', 'i386', 'i686', 'x86'):
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    if 'avx' in flags:
      return ('host CPU: %s with AVX: XNNPACK keeps dense kernels here by '
              'design, so the verdicts above are for ARM64 / WebAssembly and '
              'this machine will not show a sparse speed-up' % machine)
    return ('host CPU: %s without AVX: XNNPACK would use its SSE sparse '
            'kernels here' % machine)
  if machine in ('aarch64', 'arm64') or machine.startswith('arm'):
    return 'host CPU: %s: XNNPACK has sparse kernels here' % machine
  return ('host CPU: %s: not an architecture XNNPACK ships sparse kernels '
          'for' % machine)


def format_report(report, host_line=None):
  """The human-readable verdict: one block per cluster, then the host line."""
  lines = ['%s: XNNPACK sparse inference (ARM64): %s' % (
      report.path, 'WOULD ENGAGE' if report.engages else 'would NOT engage')]
  if not report.clusters:
    lines.append('  no NCHW cluster: %s' % report.no_cluster_reason)
  for number, c in enumerate(report.clusters, 1):
    lines.append('  cluster %d: %d ops (#%d..#%d), 1x1 weights %d/%d zeros '
                 '(%.1f%%): %s' % (number, len(c.ops), c.ops[0], c.ops[-1],
                                   c.zeros, c.params, 100.0 * c.sparsity,
                                   'sparse' if c.engages else 'dense'))
    if not c.engages:
      lines.append('    rule broken: %s' % c.rule)
      if c.op:
        lines.append('    at: %s' % c.op)
      if c.tensor:
        lines.append('    tensor: "%s"' % c.tensor)
      lines.append('    why: %s' % c.detail)
  lines.append(host_line if host_line is not None else host_cpu_line())
  return '\n'.join(lines)


def cli_main(path, out=None, err=None, prog='check_sparsity'):
  """Prints the report of `path`; returns the exit status.

  0: the sparse path would engage (on ARM64); 1: it would not;
  2: bad input (the error is one line on `err`).
  """
  out, err = out or sys.stdout, err or sys.stderr
  try:
    if weight_readers.detect_format(path) != 'tflite':
      raise weight_readers.WeightReadError(
          '--xnnpack needs a .tflite model, got %s' % path)
    report = check(path)
  except weight_readers.WeightReadError as e:
    err.write('%s: error: %s\n' % (prog, e))
    return EXIT_BAD_INPUT
  out.write(format_report(report) + '\n')
  return EXIT_ENGAGES if report.engages else EXIT_DOES_NOT
