"""Fold pruning masks into weights and drop the pruning variables.

A pruned model computes `masked_weight = mask * weight` at every step. Once
training is over the product is a constant, so an inference graph can carry
it directly: `strip_pruning_vars_fn` replaces every `.../masked_weight` `Mul`
node of a frozen GraphDef by a `Const` of the same name holding the product,
then keeps only what the outputs need, which removes the `mask`, `threshold`
and raw weight nodes. Consumers (conv, matmul) are untouched because the
folded node keeps its name, so outputs are bit-for-bit the same.

Fixes over upstream (docs/upstream.md Q25, Q26): only `Mul` nodes named
`masked_weight` (or TF's uniquified `masked_weight_<N>`) are folded, the
GraphDef's function `library` and `versions` are kept (cond_v2 and while_v2
graphs stay valid), and `graph_def_from_checkpoint` works in a fresh graph,
never in the caller's default graph.
"""
import collections
import difflib

from absl import logging
import numpy as np
import tensorflow as tf

from model_pruning.python import checkpoint_state
from model_pruning.python import graph_keys
# Registers the fused kernels' ops, which training graphs hold: importing
# such a meta graph needs them.
from model_pruning.python import native_kernels  # pylint: disable=unused-import
# Importable from here as before.
# pylint: disable=unused-import
from model_pruning.python.checkpoint_state import error_summary
from model_pruning.python.checkpoint_state import PruningState
from model_pruning.python.checkpoint_state import read_pruning_state
from model_pruning.python.checkpoint_state import resolve_checkpoint
# pylint: enable=unused-import


_PASS_THROUGH_OPS = ('Identity', 'ReadVariableOp', 'Snapshot')

# One folded weight: node name, weight variable name (None if not found),
# the folded value, and the mask's value (None if not found).
FoldedWeight = collections.namedtuple(
    'FoldedWeight', ['name', 'weight_name', 'value', 'mask'])


def _node_name(tensor_name):
  """'conv/weights/masked_weight:0' -> 'conv/weights/masked_weight'."""
  return tensor_name.split(':', 1)[0]


def _tensor_name(node_name):
  """'logits' -> 'logits:0'; a name that already has ':<i>' is kept."""
  if ':' in node_name:
    return node_name
  return node_name + ':0'


def is_masked_weight_node(node):
  """True for the `Mul` nodes `apply_mask` creates ('.../masked_weight[_N]')."""
  return node.op == 'Mul' and bool(
      graph_keys.MASKED_WEIGHT_NODE_RE.search(node.name))


def _source_node(name, nodes_by_name):
  """Follows Identity/ReadVariableOp chains from input `name` to its source."""
  name = _node_name(name.lstrip('^'))
  while name in nodes_by_name and nodes_by_name[name].op in _PASS_THROUGH_OPS:
    name = _node_name(nodes_by_name[name].input[0].lstrip('^'))
  return name


def _mask_and_weight_inputs(node, nodes_by_name):
  """Returns (mask tensor name, weight source name) of a masked_weight Mul.

  Either may be None when the inputs do not look like `apply_mask`'s (a mask
  node named 'mask'); the report then shows less, the folding is unaffected.
  """
  mask_input, weight_name = None, None
  for tensor in node.input[:2]:
    source = _source_node(tensor, nodes_by_name)
    if graph_keys.MASK_NODE_RE.search(source) and mask_input is None:
      mask_input = tensor
    else:
      weight_name = source
  return mask_input, weight_name


def _evaluate(graph_def, tensor_names):
  """Evaluates tensors of `graph_def` in a fresh graph; returns ndarrays."""
  if not tensor_names:
    return []
  # Without Grappler the products are computed exactly as written.
  config = tf.compat.v1.ConfigProto()
  config.graph_options.rewrite_options.disable_meta_optimizer = True
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='')
    with tf.compat.v1.Session(graph=graph, config=config) as sess:
      return sess.run(list(tensor_names))


def _fold_candidates(graph_def):
  """Evaluates every masked weight of `graph_def` and its mask."""
  nodes_by_name = {node.name: node for node in graph_def.node}
  masked = [node for node in graph_def.node if is_masked_weight_node(node)]
  inputs = [_mask_and_weight_inputs(node, nodes_by_name) for node in masked]
  fetches = [_tensor_name(node.name) for node in masked]
  fetches += [_tensor_name(mask) for mask, _ in inputs if mask is not None]
  values = iter(_evaluate(graph_def, fetches))
  weights = [next(values) for _ in masked]
  folded = []
  for node, value, (mask, weight_name) in zip(masked, weights, inputs):
    mask_value = next(values) if mask is not None else None
    folded.append(FoldedWeight(node.name, weight_name, value, mask_value))
  return folded


def _get_masked_weights(input_graph_def):
  """Evaluates the masked weights of a frozen GraphDef.

  Logs each one's size and share of zeros.

  Returns:
    {node name: ndarray} for every `.../masked_weight` Mul node.
  """
  result = {}
  for folded in _fold_candidates(input_graph_def):
    zeros = folded.value.size - np.count_nonzero(folded.value)
    logging.info('%s: %d elements, %.2f%% zeros', folded.name,
                 folded.value.size,
                 100.0 * zeros / max(folded.value.size, 1))
    result[folded.name] = folded.value
  return result


def _check_output_nodes(graph_def, output_node_names):
  """Raises ValueError naming the closest nodes when an output is missing."""
  if not output_node_names:
    raise ValueError('Need to specify at least 1 output node, got none '
                     '(e.g. output_node_names=["logits"])')
  names = [node.name for node in graph_def.node]
  known = set(names)
  for wanted in output_node_names:
    if wanted not in known:
      close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
      hint = ('; closest: ' + ', '.join(close)) if close else ''
      raise ValueError('Output node %r is not in the graph%s' % (wanted, hint))


def parse_output_node_names(output_node_names):
  """Accepts 'a, b', ['a', 'b:0'] ...; returns node names without ':<i>'."""
  if isinstance(output_node_names, str):
    output_node_names = output_node_names.split(',')
  names = [_node_name(name.strip()) for name in output_node_names]
  return [name for name in names if name]


def _constant_node(name, value, dtype_enum):
  """A `Const` NodeDef named `name` holding `value`."""
  node = tf.compat.v1.NodeDef(name=name, op='Const')
  node.attr['dtype'].type = dtype_enum
  node.attr['value'].tensor.CopyFrom(
      tf.compat.v1.make_tensor_proto(value, dtype=tf.as_dtype(dtype_enum)))
  return node


def _function_references(node_defs, function_names):
  """Names of the functions that `node_defs` call (by op or func attr)."""
  found = set()
  for node in node_defs:
    if node.op in function_names:
      found.add(node.op)
    for attr in node.attr.values():
      if attr.HasField('func'):
        found.add(attr.func.name)
      if attr.HasField('list'):
        found.update(func.name for func in attr.list.func)
  return found


def _prune_library(graph_def):
  """Drops library functions no kept node reaches (e.g. the mask update's
  cond branches), transitively through function bodies and gradients."""
  library = graph_def.library
  bodies = {func.signature.name: func for func in library.function}
  gradients = {g.function_name: g.gradient_func for g in library.gradient}
  pending = _function_references(graph_def.node, bodies)
  reached = set()
  while pending:
    name = pending.pop()
    if name in reached or name not in bodies:
      continue
    reached.add(name)
    pending |= _function_references(bodies[name].node_def, bodies)
    if name in gradients:
      pending.add(gradients[name])
  kept = [func for func in library.function if func.signature.name in reached]
  kept_gradients = [g for g in library.gradient if g.function_name in reached]
  del library.function[:]
  library.function.extend(kept)
  del library.gradient[:]
  library.gradient.extend(kept_gradients)
  return graph_def


def fold_masked_weights(input_graph_def, output_node_names):
  """Folds the masks of a frozen GraphDef into constants, with the values.

  Like `strip_pruning_vars_fn`, but also returns what was folded so callers
  (the strip binary's report) need not evaluate the graph again.

  Args:
    input_graph_def: a frozen GraphDef (variables already constants).
    output_node_names: list of output node names (or a comma-separated str).

  Returns:
    (stripped GraphDef, list of FoldedWeight in graph order).

  Raises:
    ValueError: no output names, or one that is not in the graph.
  """
  output_node_names = parse_output_node_names(output_node_names)
  _check_output_nodes(input_graph_def, output_node_names)
  # Only masked weights the outputs need are evaluated (and must be
  # evaluable without feeds); unrelated sub-graphs are dropped first.
  needed = tf.compat.v1.graph_util.extract_sub_graph(input_graph_def,
                                                     output_node_names)
  folded = _fold_candidates(needed)
  values = {weight.name: weight.value for weight in folded}
  new_graph_def = tf.compat.v1.GraphDef()
  new_graph_def.versions.CopyFrom(needed.versions)
  new_graph_def.library.CopyFrom(needed.library)
  for node in needed.node:
    if node.name in values:
      new_graph_def.node.append(
          _constant_node(node.name, values[node.name], node.attr['T'].type))
    else:
      new_graph_def.node.append(node)
  stripped = tf.compat.v1.graph_util.extract_sub_graph(new_graph_def,
                                                       output_node_names)
  return _prune_library(stripped), folded


def strip_pruning_vars_fn(input_graph_def, output_node_names):
  """Removes mask variables from a frozen GraphDef (upstream's entry point).

  Every `Mul` node named `.../masked_weight` (or `masked_weight_<N>`) becomes
  a `Const` of the same name and value; everything the outputs no longer need
  (masks, thresholds, raw weights) is dropped. `versions` and the `library`
  functions the remaining nodes call are kept.

  Args:
    input_graph_def: a frozen GraphDef, e.g. from `graph_def_from_checkpoint`.
    output_node_names: list of output node names.

  Returns:
    The stripped GraphDef; its outputs equal the input's exactly.
  """
  stripped, folded = fold_masked_weights(input_graph_def, output_node_names)
  for weight in folded:
    zeros = weight.value.size - np.count_nonzero(weight.value)
    logging.info('Folded %s: %d elements, %.2f%% zeros', weight.name,
                 weight.value.size, 100.0 * zeros / max(weight.value.size, 1))
  return stripped


def _restore_and_freeze(meta_graph, prefix, output_node_names):
  """Restores `prefix` into a fresh graph and freezes the outputs."""
  with tf.Graph().as_default() as graph:
    try:
      saver = tf.compat.v1.train.import_meta_graph(meta_graph,
                                                   clear_devices=True)
    except (ValueError, KeyError, tf.errors.OpError) as error:
      raise ValueError('Could not import the meta graph of %s: %s' %
                       (prefix, error_summary(error))) from None
    graph_def = graph.as_graph_def()
    _check_output_nodes(graph_def, output_node_names)
    with tf.compat.v1.Session(graph=graph) as sess:
      try:
        saver.restore(sess, prefix)
      except (ValueError, tf.errors.OpError) as error:
        raise ValueError('Could not restore checkpoint %s: %s' %
                         (prefix, error_summary(error))) from None
      return tf.compat.v1.graph_util.convert_variables_to_constants(
          sess, graph_def, output_node_names)


def graph_def_from_checkpoint(checkpoint_dir, output_node_names):
  """Restores a checkpoint and returns its frozen GraphDef.

  Works in a fresh `tf.Graph`, so the caller's default graph is untouched and
  the function can be called repeatedly in one process.

  Args:
    checkpoint_dir: a directory (its latest checkpoint is used) or a
      checkpoint path/prefix such as '/train/model.ckpt-2000'.
    output_node_names: list of output node names (or a comma-separated str).

  Returns:
    A GraphDef whose variables are constants, reduced to what the outputs
    need.

  Raises:
    ValueError: no checkpoint, a missing or corrupt meta graph or data file,
      or an output node that is not in the graph (the message names the
      closest ones).
  """
  output_node_names = parse_output_node_names(output_node_names)
  prefix = checkpoint_state.resolve_checkpoint(checkpoint_dir)
  meta_graph = checkpoint_state.read_meta_graph(prefix)
  return _restore_and_freeze(meta_graph, prefix, output_node_names)
