"""Prune for XNNPACK latency: prune the 1x1 convolutions, leave the rest dense.

XNNPACK's sparse inference path (see xnnpack_check and
docs/xnnpack_latency.md) speeds up only the 1x1 convolutions of a cluster
that starts at a 3x3 stride-2 convolution on 3 channels and ends at a global
average pool; every other layer runs with dense kernels whatever its zeros.
Pruning those other layers costs accuracy and buys no speed, so this policy
looks at each masked weight of a tf.compat.v1 graph (the `masks` / `kernel`
/ `masked_weights` collections that `apply_mask` and the masked layers fill)
and keeps it for pruning only when

* the op that reads its masked weight is a `Conv2D` with a 1x1 kernel,
  stride 1 and dilation 1, and
* that op lies on a path from a *start* (a `Conv2D` 3x3, stride 2, 3 input
  channels, after a `Pad` of 1 on each spatial side with VALID padding, or
  EXPLICIT padding 1) to an *end* (a `Mean` or `Sum` over axes 1 and 2 of a
  4-D tensor).

Every other weight is excluded, with the reason logged, through the
`do_not_prune` hparam (one anchored regex per excluded mask), so `Pruning`
leaves it dense:

  plan = latency_policy.plan_for_xnnpack()        # after building the model
  hparams = latency_policy.apply_to_hparams(hparams, plan)
  p = pruning.Pruning(hparams, global_step=step)  # prunes the 1x1s only

The policy reads structure only; whether the exported .tflite really takes
the sparse path (2/3 zeros, no stray consumers, DENSIFY ops) is what
`check_sparsity --xnnpack` says.
"""
import dataclasses
import re

from absl import logging
import tensorflow as tf

from model_pruning.python import masked_weights
from model_pruning.python import pruning_variables

_FORWARD_OPS = frozenset(['Conv2D', 'DepthwiseConv2dNative', 'MatMul',
                          'BatchMatMulV2', 'Conv3D', 'Conv1D', 'Einsum'])
_PASS_THROUGH = frozenset(['Identity', 'Cast', 'ReadVariableOp'])
_END_OPS = frozenset(['Mean', 'Sum'])


@dataclasses.dataclass
class WeightDecision:
  """What the policy does with one masked weight, and why.

  Attributes:
    weight: the weight's op name (what weight_sparsity_map regexes match).
    mask: the mask's op name (what do_not_prune regexes match).
    prune: True to prune it, False to leave it dense.
    reason: one line for the log.
  """
  weight: str
  mask: str
  prune: bool
  reason: str


@dataclasses.dataclass
class LatencyPlan:
  """The policy's decision for every masked weight, in collection order."""
  decisions: list

  @property
  def pruned(self):
    return [d.weight for d in self.decisions if d.prune]

  @property
  def excluded(self):
    return [(d.weight, d.reason) for d in self.decisions if not d.prune]

  def do_not_prune(self):
    """Anchored regexes, one per excluded mask, for the do_not_prune hparam."""
    return ['^%s$' % re.escape(d.mask) for d in self.decisions
            if not d.prune]


def _attr_list(op, name):
  try:
    return list(op.get_attr(name))
  except ValueError:
    return []


def _constant_value(tensor):
  try:
    return tf.get_static_value(tensor)
  except (TypeError, ValueError):
    return None


def _has_padding_one(conv):
  """True if `conv` pads 1 on each spatial side, explicitly (not SAME)."""
  padding = conv.get_attr('padding').decode()
  if padding == 'EXPLICIT':
    return _attr_list(conv, 'explicit_paddings') == [0, 0, 1, 1, 1, 1, 0, 0]
  source = conv.inputs[0].op
  if padding != 'VALID' or source.type not in ('Pad', 'PadV2'):
    return False
  paddings = _constant_value(source.inputs[1])
  return paddings is not None and paddings.tolist() == [[0, 0], [1, 1],
                                                        [1, 1], [0, 0]]


def _is_start(op):
  """A 3x3 stride-2 Conv2D on 3 channels with explicit padding 1."""
  if op.type != 'Conv2D':
    return False
  shape = op.inputs[1].shape
  return (shape.rank == 4 and shape.as_list()[:3] == [3, 3, 3] and
          _attr_list(op, 'strides') == [1, 2, 2, 1] and _has_padding_one(op))


def _is_end(op):
  """A Mean / Sum over the spatial axes (1, 2) of a 4-D tensor."""
  if op.type not in _END_OPS or op.inputs[0].shape.rank != 4:
    return False
  axes = _constant_value(op.inputs[1])
  return axes is not None and {int(a) % 4 for a in
                               axes.reshape(-1)} == {1, 2}


def _reachable(starts, step):
  seen, pending = set(), list(starts)
  while pending:
    op = pending.pop()
    if op in seen:
      continue
    seen.add(op)
    pending.extend(step(op))
  return seen


def _structure(graph):
  """(ops downstream of a start, ops upstream of an end)."""
  ops = graph.get_operations()
  after_start = _reachable(
      [op for op in ops if _is_start(op)],
      lambda op: [c for out in op.outputs for c in out.consumers()])
  before_end = _reachable([op for op in ops if _is_end(op)],
                          lambda op: [t.op for t in op.inputs])
  return after_start, before_end


def _reading_op(masked_weight):
  """The forward op that reads `masked_weight` (through Identity/Cast)."""
  pending = [masked_weight]
  while pending:
    tensor = pending.pop(0)
    for op in tensor.consumers():
      if op.name.startswith('gradients') or 'Backprop' in op.type:
        continue
      if op.type in _FORWARD_OPS:
        return op
      if op.type in _PASS_THROUGH:
        pending.extend(op.outputs)
  return None


def _decide(op, structure):
  """(prune?, reason) for the weight read by `op`."""
  after_start, before_end = structure
  if op is None:
    return False, 'no convolution or matmul reads it: left dense'
  if op.type == 'DepthwiseConv2dNative':
    return False, ('depthwise convolution: XNNPACK runs it dense even on '
                   'the sparse path, pruning it costs accuracy for no speed')
  if op.type != 'Conv2D':
    return False, ('%s (%s): XNNPACK has no sparse kernel for it (a fully '
                   'connected head after the pool runs dense; recent XNNPACK '
                   'counts its weights in the 2/3 rule, see check_sparsity '
                   '--xnnpack)' % (op.type, op.name))
  kernel = op.inputs[1].shape.as_list()[:2]
  if _is_start(op):
    return False, ('the first 3x3 stride-2 convolution: XNNPACK runs it with '
                   'a dense kernel (it converts NHWC to NCHW)')
  if kernel != [1, 1]:
    return False, ('%dx%d convolution: only 1x1 convolutions run sparse '
                   '(this one also ends any sparse cluster)' % tuple(kernel))
  if (_attr_list(op, 'strides') != [1, 1, 1, 1] or
      _attr_list(op, 'dilations') not in ([], [1, 1, 1, 1])):
    return False, ('1x1 convolution with stride or dilation above 1: not '
                   'on the sparse path')
  if op not in after_start:
    return False, ('1x1 convolution with no 3x3 stride-2 first convolution '
                   '(3 channels, padding 1) upstream: no sparse cluster '
                   'can hold it')
  if op not in before_end:
    return False, ('1x1 convolution with no global average pool (Mean over '
                   'axes 1, 2) downstream: no sparse cluster can hold it')
  return True, '1x1 convolution inside a start-to-pool structure: sparse'


def plan_for_xnnpack(graph=None):
  """Decides, for every masked weight of `graph`, prune or leave dense.

  Args:
    graph: a tf.Graph holding masked weights; None: the default graph.

  Returns:
    A LatencyPlan; each excluded weight is also logged (absl INFO) with
    its reason.

  Raises:
    ValueError: the graph holds no masked weights.
  """
  graph = graph or tf.compat.v1.get_default_graph()
  with graph.as_default():
    masks = masked_weights.get_masks()
    weights = masked_weights.get_weights()
    masked = masked_weights.get_masked_weights()
  if not masks:
    raise ValueError('plan_for_xnnpack found no masked weights in the graph; '
                     'build the model with apply_mask or the masked layers '
                     'first')
  structure = _structure(graph)
  decisions = []
  for mask, weight, masked_weight in zip(masks, weights, masked):
    tensor = pruning_variables.as_tensor(masked_weight)
    prune, reason = _decide(_reading_op(tensor), structure)
    decision = WeightDecision(pruning_variables.weight_name(weight),
                              pruning_variables.mask_op_name(mask), prune, reason)
    decisions.append(decision)
    logging.info('XNNPACK latency policy: %s %s: %s',
                 'prune' if prune else 'leave dense', decision.weight, reason)
  return LatencyPlan(decisions)


def apply_to_hparams(hparams, plan):
  """Adds the plan's exclusions to `hparams.do_not_prune`; returns hparams.

  Existing non-empty do_not_prune patterns are kept (first).
  """
  patterns = [p for p in hparams.do_not_prune if p] + plan.do_not_prune()
  return hparams.override_from_dict({'do_not_prune': patterns or ['']})
