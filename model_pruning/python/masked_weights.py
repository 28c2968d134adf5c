"""apply_mask and the getters: wrapping weights in masks (SPEC 2.2).

`apply_mask` adds a `mask` and a `threshold` variable next to a weight and
registers them in the index-aligned graph collections of graph_keys; the
getters read those collections back. `Pruning` (pruning.py) reads them to
build its update ops. Everything here is re-exported by pruning.py, the
upstream import path.
"""
from model_pruning.python import graph_keys
from model_pruning.python import pruning_utils
from model_pruning.python.graph_keys import MASK_COLLECTION
from model_pruning.python.graph_keys import MASKED_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import MASKED_WEIGHT_NAME
from model_pruning.python.graph_keys import OLD_OLD_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import OLD_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import THRESHOLD_COLLECTION
from model_pruning.python.graph_keys import UNGROUPED_GROUP_NAME
from model_pruning.python.graph_keys import WEIGHT_COLLECTION
from model_pruning.python.graph_keys import WEIGHT_GRADIENT_COLLECTION
import tensorflow as tf

GRADIENT_PRUNE_OPTIONS = ('first_order_gradient', 'second_order_gradient')
_MAX_PRUNABLE_SIZE = 2**31 - 1


def is_partitioned(x):
  """True for a PartitionedVariable (not exported by tf.compat.v1 in 2.21)."""
  return hasattr(x, 'as_tensor') and hasattr(x, '_get_variable_list')


def as_tensor(x):
  return x.as_tensor() if is_partitioned(x) else x


def read_in_order(x):
  """Reads `x` inside the current control-dependency context.

  `PartitionedVariable.as_tensor()` drops control dependencies, which would let
  the reads race with the gradient and old-weight assigns that must precede
  them (fix Q12); this concatenates freshly read partitions instead. A plain
  variable is read afresh too: under a caching device (`static_rnn` sets one
  on its scope) its tensor value is a read cached before the assigns.
  """
  if not is_partitioned(x):
    return x.read_value() if isinstance(x, tf.Variable) else x
  parts = list(x)
  axis = (0 if len(parts) == 1 else
          pruning_utils.determine_partitioned_axis(x))
  return tf.concat([part.read_value() for part in parts], axis=axis)


def weight_name(x):
  """The name map regexes are matched against: the weight's own op name."""
  if is_partitioned(x):
    return x.name
  return x.op.name


def _check_prunable(x):
  shape = x.get_shape()
  name = getattr(x, 'name', repr(x))
  if not shape.is_fully_defined():
    raise ValueError(
        'apply_mask needs a weight with a fully defined static shape, got %s '
        'for %s; set the shape when creating the variable.' % (shape, name))
  if shape.ndims == 0:
    raise ValueError('apply_mask cannot prune the scalar weight %s: pruning '
                     'keeps the largest of several weights.' % name)
  size = shape.num_elements()
  if size == 0:
    raise ValueError('apply_mask cannot prune %s: it has no elements (shape '
                     '%s).' % (name, shape))
  if size > _MAX_PRUNABLE_SIZE:
    raise ValueError('apply_mask cannot prune %s: %d elements exceed the 2**31 '
                     '- 1 that int32 indexing allows; split it with a '
                     'partitioner.' % (name, size))


def _apply_mask(x, scope, prune_option, group_name):
  """Creates (or reuses) the pruning variables of `x`; returns (masked, mask)."""
  _check_prunable(x)
  mask = pruning_utils.weight_mask_variable(x, scope)
  threshold = pruning_utils.weight_threshold_variable(x, scope)
  gradient = old_weight = old_old_weight = None
  if prune_option in GRADIENT_PRUNE_OPTIONS:
    gradient = pruning_utils.weight_gradient_variable(x, scope)
    old_weight = pruning_utils.old_weight_variable(x, scope)
    old_old_weight = pruning_utils.old_old_weight_variable(x, scope)
  masked = tf.multiply(as_tensor(mask), as_tensor(x), name=MASKED_WEIGHT_NAME)
  graph_keys.register_pruned_weight(mask, threshold, x, masked, gradient,
                                    old_weight, old_old_weight, group_name)
  return masked, mask


def apply_mask_with_group(x, scope='', prune_option='weight',
                          group_name=UNGROUPED_GROUP_NAME):
  """Wraps `x` in a mask and registers it, also under a pruning group.

  Args:
    x: the weight variable or tensor (a PartitionedVariable is fine); its
      static shape must be fully defined.
    scope: variable scope (name or VariableScope) for the new variables.
    prune_option: 'weight', or a gradient option, which also creates the
      `gradient`, `old_weight` and `old_old_weight` variables.
    group_name: the pruning group (google-research group pruning), or None to
      register only in the plain collections.

  Returns:
    The masked weight `mask * x`, an op named `.../weights/masked_weight`.
  """
  return _apply_mask(x, scope, prune_option, group_name)[0]


def apply_mask(x, scope='', prune_option='weight'):
  """Wraps `x` in a `mask` variable and registers it for pruning.

  Creates `<scope>/mask` (ones, x's shape and dtype, not trainable) and
  `<scope>/threshold` (scalar zero), and returns `mask * x`. Calling it again
  for the same mask (variable reuse, e.g. an RNN step) registers nothing new.
  """
  return _apply_mask(x, scope, prune_option, None)[0]


def apply_mask_and_return(x, scope='', prune_option='weight'):
  """Like `apply_mask`, but returns `[masked_weight, mask]`."""
  return list(_apply_mask(x, scope, prune_option, None))


def get_masked_weights(group_name=None):
  return graph_keys.get_collection_copy(MASKED_WEIGHT_COLLECTION, group_name)


def get_masks(group_name=None):
  return graph_keys.get_collection_copy(MASK_COLLECTION, group_name)


def get_thresholds(group_name=None):
  return graph_keys.get_collection_copy(THRESHOLD_COLLECTION, group_name)


def get_weights(group_name=None):
  return graph_keys.get_collection_copy(WEIGHT_COLLECTION, group_name)


def get_gradients(group_name=None):
  return graph_keys.get_collection_copy(WEIGHT_GRADIENT_COLLECTION, group_name)


def get_old_weights(group_name=None):
  return graph_keys.get_collection_copy(OLD_WEIGHT_COLLECTION, group_name)


def get_old_old_weights(group_name=None):
  return graph_keys.get_collection_copy(OLD_OLD_WEIGHT_COLLECTION, group_name)


def get_weight_sparsity():
  """Fraction of zeros of every mask, as scalar tensors (collection order)."""
  return [tf.nn.zero_fraction(as_tensor(mask)) for mask in get_masks()]


def assign_variable(var, value):
  """Assigns `value` to a plain or a partitioned variable (piece by piece)."""
  if is_partitioned(var):
    return pruning_utils.partitioned_variable_assign(var, value)
  return pruning_utils.variable_assign(var, value)


def mask_op_name(mask):
  """The op name of a mask (a PartitionedVariable's full name)."""
  if is_partitioned(mask):
    return mask.name
  return mask.op.name
