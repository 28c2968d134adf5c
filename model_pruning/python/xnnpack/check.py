r"""Would XNNPACK's sparse inference path run this .tflite? A static check.

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

`graph` reads the model as the delegate hands it to XNNPACK,
`rules` gives each op its role (or the rule it breaks), and this
module joins the ops into clusters and judges each.

`check(path)` returns an `XnnpackReport` with one `Cluster` verdict per
cluster (1-5, for ARM64); `format_report` prints it with a line on this
host's CPU (6); `cli_main(path)` is what `check_sparsity --xnnpack` calls.
"""
import dataclasses
import platform
import sys
from typing import Optional

from model_pruning.python import weight_readers
from model_pruning.python.xnnpack import graph as xnnpack_graph
from model_pruning.python.xnnpack import rules

EXIT_ENGAGES, EXIT_DOES_NOT, EXIT_BAD_INPUT = 0, 1, 2
# The rule ids, re-exported: a Cluster's `rule` is one of these.
RULE_FIRST_CONV = rules.RULE_FIRST_CONV
RULE_UNSUPPORTED_OP = rules.RULE_UNSUPPORTED_OP
RULE_QUANTIZED = rules.RULE_QUANTIZED
RULE_OUTSIDE_CONSUMER = rules.RULE_OUTSIDE_CONSUMER
RULE_END_OP = rules.RULE_END_OP
RULE_SPARSITY = rules.RULE_SPARSITY
RULE_NO_DENSIFY = rules.RULE_NO_DENSIFY
_SPARSE_COUNTED = ('CONV_2D', 'FULLY_CONNECTED')


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


class _UnionFind:
  """Disjoint sets of node indices (path halving)."""

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

  broken[node] is the RuleBroken of a reader whose input cannot be NCHW:
  a model input, or the output of an excluded node (its verdict, restated).
  """
  groups, broken = _UnionFind(), {}
  by_index = {n.index: n for n in graph.nodes}
  for node in graph.nodes:
    kind = kinds.get(node.index)
    if kind is None:
      continue
    groups.find(node.index)
    if kind not in rules.READS_NCHW:
      continue
    for t in graph.dynamic_inputs(node):
      name = graph.tensors[t].name
      producer = graph.producer(t)
      if producer is None:
        broken.setdefault(node.index, rules.RuleBroken(
            rules.RULE_FIRST_CONV, graph.describe(node), name,
            'reads the model input "%s" directly: a cluster must start with '
            'a 3x3 stride-2 convolution on 3 channels' % name))
      elif kinds.get(producer.index) in rules.WRITES_NCHW:
        groups.union(node.index, producer.index)
      else:
        cause = excluded.get(producer.index)
        if cause is None:  # an END-only producer (DEPTH_TO_SPACE)
          cause = rules.RuleBroken(rules.RULE_UNSUPPORTED_OP,
                                   graph.describe(producer), None,
                                   'its output is NHWC')
        broken.setdefault(node.index, rules.RuleBroken(
            cause.rule, graph.describe(producer), name,
            '%s (its output "%s" feeds %s)' % (
                cause.detail, name, graph.describe(by_index[node.index]))))
  return groups, broken


def _outside_reader(graph, members, kinds, node):
  """RuleBroken if an input of `node` is also read outside the cluster."""
  for t in graph.dynamic_inputs(node):
    name = graph.tensors[t].name
    if t in graph.model_outputs:
      return rules.RuleBroken(
          rules.RULE_OUTSIDE_CONSUMER, graph.describe(node), name,
          'tensor "%s" inside the cluster is also a model output' % name)
    for reader in graph.consumers(t):
      if (reader.index not in members or
          kinds[reader.index] not in rules.READS_NCHW):
        return rules.RuleBroken(
            rules.RULE_OUTSIDE_CONSUMER, graph.describe(reader), name,
            'tensor "%s" is also read by %s, which runs outside the NCHW '
            'cluster' % (name, graph.describe(reader)))
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
      if kinds[node.index] in rules.READS_NCHW:
        verdict = _outside_reader(graph, members, kinds, node)
        if verdict is not None:
          raise verdict
    if cluster.params == 0:
      raise rules.RuleBroken(
          rules.RULE_SPARSITY, None, None, 'no 1x1 convolution in the '
          'cluster: nothing for the sparse kernels to do')
    if cluster.zeros * 3 <= cluster.params * 2:
      weight = graph.tensors[worst.inputs[1]]
      raise rules.RuleBroken(
          rules.RULE_SPARSITY, graph.describe(worst), weight.name,
          'weights of the 1x1 convolutions are %d of %d zeros (%.1f%%), '
          'need more than 2/3; '
          'least sparse: "%s" (%.1f%%)' % (
              cluster.zeros, cluster.params, 100.0 * cluster.sparsity,
              weight.name, 100.0 * weight.zeros_and_size()[0] /
              max(weight.zeros_and_size()[1], 1)))
    if not has_densify:
      raise rules.RuleBroken(
          rules.RULE_NO_DENSIFY, None, None,
          'the model has no DENSIFY op (weights stored dense), so the '
          'delegate never asks for sparse inference; convert with '
          'tf.lite.Optimize.EXPERIMENTAL_SPARSITY')
    cluster.engages = True
  except rules.RuleBroken as verdict:
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
  kinds, excluded = rules.classify(graph, count_fully_connected)
  groups, broken = _link(graph, kinds, excluded)
  components = {}
  for index in kinds:
    components.setdefault(groups.find(index), set()).add(index)
  has_densify = 'DENSIFY' in graph.op_types
  clusters = [_judge(graph, members, kinds, broken, has_densify)
              for members in components.values()
              if any(kinds[i] in (rules.END, rules.INNER_END)
                     for i in members)]
  clusters.sort(key=lambda c: c.ops[0])
  report = XnnpackReport(path, clusters, has_densify,
                         any(c.engages for c in clusters))
  if not clusters:
    report.no_cluster_rule = rules.RULE_END_OP
    ends = [v for v in excluded.values() if v.rule == rules.RULE_END_OP]
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
