"""What a checkpoint says about its pruning run: step, hparams, files.

Reads a checkpoint without building its graph: the prefix a directory or path
names, the meta graph, the global step, the hparams JSON that each
`Pruning` object stored in the graph (graph_keys.HPARAMS_COLLECTION) and the
weights' pruning groups, so the strip report can compare each weight's zeros
(or its group's) with its schedule.
"""
import collections
import json
import os

from absl import logging
import tensorflow as tf

from google.protobuf import message as protobuf_message
from model_pruning.python import graph_keys
from model_pruning.python import pruning_spec

GLOBAL_STEP_NAME = 'global_step'

# What a checkpoint says about its pruning run: the global step (None when the
# checkpoint has no `global_step` variable), the hparams dicts stored by
# each `Pruning` object of the graph (empty when none), the pruning groups
# of `apply_mask_with_group`, {group: [masked weight node names]}, and the
# step of each spec's last mask update, {spec name: `last_mask_update_step`}
# (specs whose variable the checkpoint lacks are left out).
PruningState = collections.namedtuple(
    'PruningState', ['global_step', 'hparams', 'groups', 'last_update_steps'],
    defaults=(None, None))


def resolve_checkpoint(checkpoint):
  """Returns the checkpoint prefix for a directory or a checkpoint path.

  A directory gives its latest checkpoint (the `checkpoint` state file);
  a path like '/train/model.ckpt-2000' is taken as it is if its index file
  exists.

  Raises:
    ValueError: nothing usable at `checkpoint`.
  """
  if not checkpoint:
    raise ValueError('No checkpoint given: pass a checkpoint directory or a '
                     'path such as /train/model.ckpt-2000')
  if os.path.isdir(checkpoint):
    prefix = tf.train.latest_checkpoint(checkpoint)
    if prefix is None:
      raise ValueError('Could not find a checkpoint at: %s. (no "checkpoint" '
                       'state file listing one)' % checkpoint)
    return prefix
  if os.path.exists(checkpoint + '.index'):
    return checkpoint
  if checkpoint.endswith(('.index', '.meta')) and os.path.exists(checkpoint):
    return checkpoint.rsplit('.', 1)[0]
  raise ValueError('Could not find a checkpoint at: %s. (neither a directory '
                   'nor a prefix with a .index file)' % checkpoint)


def read_meta_graph(prefix):
  """Parses `<prefix>.meta`; raises ValueError if missing or corrupt."""
  path = prefix + '.meta'
  if not os.path.exists(path):
    raise ValueError('Checkpoint %s has no meta graph (%s); save it with '
                     'write_meta_graph=True' % (prefix, path))
  meta_graph = tf.compat.v1.MetaGraphDef()
  try:
    with open(path, 'rb') as f:
      meta_graph.ParseFromString(f.read())
  except protobuf_message.DecodeError as error:
    raise ValueError('Corrupt meta graph %s: %s' % (path, error)) from None
  return meta_graph


def error_summary(error):
  """One informative line from an error whose message may run to many.

  Session errors start with 'Graph execution error:' and node traces; the
  line that says what went wrong ('Read less bytes than requested') is kept,
  after the error's class name.
  """
  text = getattr(error, 'message', None) or str(error)
  noise = ('Graph execution error', 'Detected at node', 'Node:', 'File "')
  lines = [line.strip() for line in text.splitlines()]
  lines = [line for line in lines
           if line and '[[' not in line and not line.startswith(noise)]
  return '%s: %s' % (type(error).__name__, lines[0] if lines else text)


def _string_const(node):
  """The str held by a scalar string `Const` node, else None."""
  if node.op != 'Const' or node.attr['dtype'].type != tf.string.as_datatype_enum:
    return None
  values = node.attr['value'].tensor.string_val
  return values[0].decode('utf-8') if len(values) == 1 else None


def _hparams_from_meta_graph(meta_graph):
  """Decodes the hparams JSON each `Pruning` object stored in the graph."""
  nodes_by_name = {node.name: node for node in meta_graph.graph_def.node}
  names = []
  if graph_keys.HPARAMS_COLLECTION in meta_graph.collection_def:
    collection = meta_graph.collection_def[graph_keys.HPARAMS_COLLECTION]
    names = [name.split(':', 1)[0] for name in collection.node_list.value]
  if not names:
    names = [name for name in nodes_by_name
             if name.split('/')[-1] == graph_keys.HPARAMS_JSON_NAME]
  result = []
  for name in names:
    text = _string_const(nodes_by_name[name]) if name in nodes_by_name else None
    if text is None:
      continue
    try:
      result.append(json.loads(text))
    except ValueError:
      logging.warning('Ignoring %s: not valid JSON', name)
  return result


def _groups_from_meta_graph(meta_graph):
  """{group: [masked weight node names]} from the `masked_weights_<group>`
  collections (graph_keys.attach_group_suffix), the ungrouped one left out."""
  prefix = graph_keys.MASKED_WEIGHT_COLLECTION + '_'
  groups = {}
  for key, collection in meta_graph.collection_def.items():
    group = key[len(prefix):]
    if (key.startswith(prefix) and group and
        group != graph_keys.UNGROUPED_GROUP_NAME):
      groups[group] = [name.split(':', 1)[0]
                       for name in collection.node_list.value]
  return groups


def _last_update_steps(reader, hparams):
  """{spec name: its `<name>/last_mask_update_step`} for each stored spec.

  The variable sits in the spec's variable scope, under any scope the
  `Pruning` object was built in: a unique key ending in
  '<name>/last_mask_update_step' is taken; with none, or several (same-named
  specs in several scopes), the spec is left out.
  """
  keys = list(reader.get_variable_to_shape_map())
  default_name = pruning_spec.default_hparams().name
  steps = {}
  names = [d.get('name', default_name) for d in hparams
           if isinstance(d, dict)]
  for name in sorted({name for name in names if isinstance(name, str)}):
    suffix = '%s/%s' % (name, graph_keys.LAST_MASK_UPDATE_STEP_NAME)
    matches = [key for key in keys
               if key == suffix or key.endswith('/' + suffix)]
    if len(matches) == 1:
      steps[name] = int(reader.get_tensor(matches[0]))
  return steps


def read_pruning_state(checkpoint):
  """Reads the global step and the stored pruning hparams of a checkpoint.

  Args:
    checkpoint: a checkpoint directory or prefix (see `resolve_checkpoint`).

  Returns:
    A PruningState(global_step=int or None, hparams=[dict, ...],
    groups={group: [masked weight node name, ...]},
    last_update_steps={spec name: int}).
  """
  prefix = resolve_checkpoint(checkpoint)
  meta_graph = read_meta_graph(prefix)
  hparams = _hparams_from_meta_graph(meta_graph)
  step = None
  try:
    reader = tf.train.load_checkpoint(prefix)
    if reader.has_tensor(GLOBAL_STEP_NAME):
      step = int(reader.get_tensor(GLOBAL_STEP_NAME))
    last_update_steps = _last_update_steps(reader, hparams)
  except (ValueError, IndexError, tf.errors.OpError) as error:
    raise ValueError('Could not read checkpoint %s: %s' %
                     (prefix, error_summary(error))) from None
  return PruningState(global_step=step, hparams=hparams,
                      groups=_groups_from_meta_graph(meta_graph),
                      last_update_steps=last_update_steps)
