"""Per-weight records: everything `Pruning` needs to know about one weight.

`apply_mask` and the masked layers register each pruned weight in the
index-aligned graph collections of `graph_keys`; `resolve` reads them back once
and joins each weight with its settings from the hparams (`PruningPlan`), so
the update ops are built from records instead of from parallel lists and
repeated map lookups.
"""
import collections

from model_pruning.python import graph_keys
from model_pruning.python import masked_weights
from model_pruning.python import pruning_variables

# `mask`, `threshold`, `weight`: the variables (plain or partitioned);
# `gradient`, `old_weight`, `old_old_weight`: google-research's gradient
# variables, None when not created; `name`: the weight's op name (what the
# maps match); `mask_name`: the mask's; `settings`: a pruning_spec
# WeightSettings; `groups`: the pruning groups the weight was registered in.
WeightRecord = collections.namedtuple(
    'WeightRecord', ['mask', 'threshold', 'weight', 'gradient', 'old_weight',
                     'old_old_weight', 'name', 'mask_name', 'settings',
                     'groups'])


def _aligned(collection, count):
  """The collection when index-aligned with the masks, else Nones.

  Weights wrapped without gradient variables leave these collections empty
  or short; `check_gradients` says so when a gradient option needs them.
  """
  values = graph_keys.get_collection_copy(collection)
  return values if len(values) == count else [None] * count


def check_gradients(records, prune_option, second_order=False):
  """Raises ValueError unless every record has the gradient variables."""
  needed = [('gradients', graph_keys.WEIGHT_GRADIENT_COLLECTION, 'gradient'),
            ('old_weights', graph_keys.OLD_WEIGHT_COLLECTION, 'old_weight')]
  if second_order:
    needed.append(('old_old_weights', graph_keys.OLD_OLD_WEIGHT_COLLECTION,
                   'old_old_weight'))
  for what, collection, field in needed:
    if any(getattr(record, field) is None for record in records):
      raise ValueError(
          'Number of weights %d and number of %s %d mismatch: with '
          'prune_option=%s every pruned weight needs its gradient variables; '
          'create them with apply_mask(..., prune_option=%r).' %
          (len(masked_weights.get_masks()), what,
           len(graph_keys.get_collection_copy(collection)), prune_option,
           prune_option))


def _group_members(groups):
  """{id(mask): [group, ...]} for the masks registered under each group."""
  members = collections.defaultdict(list)
  for group in sorted(groups):
    for mask in graph_keys.get_collection_copy(graph_keys.MASK_COLLECTION,
                                               group):
      members[id(mask)].append(group)
  return members


def resolve(plan, groups=(), known=()):
  """A WeightRecord per registered weight not already in `known`.

  Args:
    plan: the spec's `pruning_spec.PruningPlan`.
    groups: group names whose membership to record.
    known: records resolved earlier (skipped, so each weight is resolved
      once even when more are registered after `Pruning` was built).

  Raises:
    ValueError: the collections are not index-aligned.
  """
  masks = masked_weights.get_masks()
  thresholds = masked_weights.get_thresholds()
  weights = masked_weights.get_weights()
  if len(masks) != len(thresholds):
    raise ValueError('Number of masks %s and number of thresholds %s '
                     'mismatch' % (len(masks), len(thresholds)))
  if len(weights) != len(masks):
    raise ValueError('Number of weights %s and number of masks %s mismatch'
                     % (len(weights), len(masks)))
  gradients = _aligned(graph_keys.WEIGHT_GRADIENT_COLLECTION, len(masks))
  olds = _aligned(graph_keys.OLD_WEIGHT_COLLECTION, len(masks))
  old_olds = _aligned(graph_keys.OLD_OLD_WEIGHT_COLLECTION, len(masks))
  members = _group_members(groups)
  seen = {id(record.mask) for record in known}
  records = []
  for mask, threshold, weight, gradient, old, old_old in zip(
      masks, thresholds, weights, gradients, olds, old_olds):
    if id(mask) in seen:
      continue
    name = pruning_variables.weight_name(weight)
    mask_name = pruning_variables.mask_op_name(mask)
    records.append(WeightRecord(
        mask=mask, threshold=threshold, weight=weight, gradient=gradient,
        old_weight=old, old_old_weight=old_old, name=name,
        mask_name=mask_name, settings=plan.for_weight(name, mask_name),
        groups=tuple(members.get(id(mask), ()))))
  return records
