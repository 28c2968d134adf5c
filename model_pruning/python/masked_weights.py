"""apply_mask and the getters: wrapping weights in masks.

`apply_mask` adds a `mask` and a `threshold` variable next to a weight and
registers them in the index-aligned graph collections of graph_keys; the
getters read those collections back. `Pruning` (pruning.py) reads them to
build its update ops. Everything here is re-exported by pruning.py, the
upstream import path.
"""
from model_pruning.python import graph_keys
from model_pruning.python import pruning_variables
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

from model_pruning.python.pruning_variables import GRADIENT_PRUNE_OPTIONS  # pylint: disable=unused-import


def _apply_mask(x, scope, prune_option, group_name):
  """Creates (or reuses) the pruning variables of `x`; returns (masked, mask)."""
  variables = pruning_variables.create(x, scope, prune_option)
  return pruning_variables.mask_and_register(x, variables, group_name), (
      variables.mask)


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
  return [tf.nn.zero_fraction(pruning_variables.as_tensor(mask)) for mask in get_masks()]
