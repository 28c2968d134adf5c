"""Graph collection names and op/variable names: the contract with upstream.

Every module that registers or reads pruning state goes through this file, so
the names live in one place. The values are upstream's exactly (docs/upstream.md):
scripts, the strip tool and quantization rewriters match on them.
"""
import re

import tensorflow as tf

MASK_COLLECTION = 'masks'
THRESHOLD_COLLECTION = 'thresholds'
MASKED_WEIGHT_COLLECTION = 'masked_weights'
WEIGHT_COLLECTION = 'kernel'
# The 'weights' path component lets quantization rewriters see a kernel.
MASKED_WEIGHT_NAME = 'weights/masked_weight'

# google-research gradient-based pruning.
WEIGHT_GRADIENT_COLLECTION = 'gradient_weights'
OLD_WEIGHT_COLLECTION = 'old_weights'
OLD_OLD_WEIGHT_COLLECTION = 'old_old_weights'

# google-research group pruning.
UNGROUPED_GROUP_NAME = 'ungrouped'

# Variable names created next to each pruned weight.
MASK_VARIABLE_NAME = 'mask'
THRESHOLD_VARIABLE_NAME = 'threshold'
GRADIENT_VARIABLE_NAME = 'gradient'
OLD_WEIGHT_VARIABLE_NAME = 'old_weight'
OLD_OLD_WEIGHT_VARIABLE_NAME = 'old_old_weight'
LAST_MASK_UPDATE_STEP_NAME = 'last_mask_update_step'
LAST_GRADIENT_UPDATE_STEP_NAME = 'last_gradient_update_step'


# Node names of a masked weight (TF uniquifies repeats as `masked_weight_1`)
# and of a mask variable, as the strip tool and check_sparsity find them.
MASKED_WEIGHT_NODE_RE = re.compile(r'(?:^|/)masked_weight(?:_\d+)?$')
MASK_NODE_RE = re.compile(r'(?:^|/)mask(?:_\d+)?$')

# The variables that sit next to a pruned weight (never weights themselves).
PRUNING_VARIABLE_NAMES = frozenset([
    MASK_VARIABLE_NAME, THRESHOLD_VARIABLE_NAME, GRADIENT_VARIABLE_NAME,
    OLD_WEIGHT_VARIABLE_NAME, OLD_OLD_WEIGHT_VARIABLE_NAME,
    LAST_MASK_UPDATE_STEP_NAME, LAST_GRADIENT_UPDATE_STEP_NAME])


def attach_group_suffix(name, group_name=None, separator='_'):
  """Returns `name` or `name<separator><group_name>` ('masks' -> 'masks_g1')."""
  if group_name is None:
    return name
  return name + separator + group_name


def add_to_pruning_collections(mask, threshold, weight, masked_weight,
                               gradient=None, old_weight=None,
                               old_old_weight=None, group_name=None):
  """Appends each non-None argument to its (optionally group-suffixed) collection.

  No duplicate check (upstream G2 behaviour); use `register_pruned_weight` for
  the checked version.
  """
  pairs = ((mask, MASK_COLLECTION), (threshold, THRESHOLD_COLLECTION),
           (masked_weight, MASKED_WEIGHT_COLLECTION),
           (weight, WEIGHT_COLLECTION),
           (gradient, WEIGHT_GRADIENT_COLLECTION),
           (old_weight, OLD_WEIGHT_COLLECTION),
           (old_old_weight, OLD_OLD_WEIGHT_COLLECTION))
  for value, collection in pairs:
    if value is not None:
      tf.compat.v1.add_to_collection(
          attach_group_suffix(collection, group_name), value)


def is_registered(mask, group_name=None):
  """True when `mask` is already in the masks collection (identity check)."""
  collection = tf.compat.v1.get_collection(
      attach_group_suffix(MASK_COLLECTION, group_name))
  return any(mask is member for member in collection)


def register_pruned_weight(mask, threshold, weight, masked_weight,
                           gradient=None, old_weight=None, old_old_weight=None,
                           group_name=None):
  """Registers one pruned weight in the index-aligned collections, once.

  A weight wrapped again under variable reuse (an RNN cell called at every
  time step, a layer built twice with reuse=True) gets the same mask back; it
  must not be registered twice, or two assigns would race on one variable.

  Returns:
    True if the weight was registered now, False if it already was.
  """
  if is_registered(mask):
    return False
  add_to_pruning_collections(mask, threshold, weight, masked_weight, gradient,
                             old_weight, old_old_weight)
  if group_name is not None:
    add_to_pruning_collections(mask, threshold, weight, masked_weight,
                               gradient, old_weight, old_old_weight,
                               group_name=group_name)
  return True


def get_collection_copy(name, group_name=None):
  """Returns a copy of the (optionally group-suffixed) collection as a list."""
  return list(tf.compat.v1.get_collection(attach_group_suffix(name, group_name)))

# Each Pruning object stores its hparams as a JSON string constant named
# `<name scope>/hparams_json` in this collection, so tools that only see a
# checkpoint's meta graph can recover the schedule.
HPARAMS_COLLECTION = 'pruning_hparams'
HPARAMS_JSON_NAME = 'hparams_json'

# Index-aligned scalar tensors per pruned weight, made by `Pruning`: the
# sparsity its schedule asks for now and the zero fraction of its mask. The
# hooks and training loops fetch them to log achieved vs asked.
SCHEDULED_SPARSITY_COLLECTION = 'pruning_scheduled_sparsity'
ACHIEVED_SPARSITY_COLLECTION = 'pruning_achieved_sparsity'
