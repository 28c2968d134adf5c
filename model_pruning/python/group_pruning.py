"""Group pruning (google-research): one threshold shared by a group.

Weights registered with `apply_mask_with_group(x, group_name=g)` and listed in
`group_sparsity_map` (or `group_block_dims_map`) are thresholded jointly, so
the group as a whole reaches its target while members may be sparser or
denser. Weights outside the listed groups are pruned one by one, and a member
with an N:M pattern is pruned N:M on its own.
"""
from absl import logging
import tensorflow as tf

from model_pruning.python import mask_updates
from model_pruning.python import pruning_variables
from model_pruning.python import saliency_masks
from model_pruning.python.graph_keys import UNGROUPED_GROUP_NAME


def _leaves_group_for_m_by_n(group, record):
  """True, with a warning, for a group member that has an N:M pattern.

  The pattern fixes the member's own mask (at most M of every N), which a
  joint threshold would break, so the member is pruned N:M on its own.
  """
  if record.settings.m_by_n is None:
    return False
  logging.warning('%s has an N:M pattern (sparsity_m_by_n or m_by_n_map): it '
                  'is pruned N:M on its own, outside group %s\'s joint '
                  'threshold.', record.name, group)
  return True


def split_by_group(records, plan):
  """({group: [member records]}, [records pruned one by one]).

  A group is listed when it appears in group_sparsity_map or
  group_block_dims_map; `do_not_prune` members leave their group and keep
  their masks.
  """
  groups, grouped = {}, set()
  for group in sorted(plan.listed_groups() - {UNGROUPED_GROUP_NAME}):
    members = [r for r in records if group in r.groups and
               not _leaves_group_for_m_by_n(group, r)]
    grouped.update(id(r.mask) for r in members)
    members = [r for r in members if not r.settings.excluded]
    if members:
      groups[group] = members
  alone = [r for r in records if id(r.mask) not in grouped]
  return groups, alone


def group_sparsity(group, plan, context):
  """The group's scheduled sparsity, interpolated like a per-weight target.

  A listed 0.0 is a real target ("not pruned"), unlike upstream; a group
  without a group_sparsity_map entry follows the global schedule.
  """
  return context.sparsity_for(plan.group_targets.get(group))


def group_assign_ops(group, members, plan, context):
  """One joint threshold for the group's members; assigns every member."""
  spec = context.spec
  sparsity = group_sparsity(group, plan, context)
  block_dims = list(plan.group_block_dims.get(
      group, [spec.block_height, spec.block_width]))
  read = pruning_variables.read_in_order
  with tf.compat.v1.name_scope('%s_group_pruning_ops' % group):
    # Members share one threshold value, so the first one's previous value
    # is the group's previous threshold for threshold_decay smoothing.
    new_threshold, new_masks = saliency_masks.joint_masks(
        [read(r.weight) for r in members],
        [read(r.gradient) if context.use_gradient else None for r in members],
        block_dims, spec.block_pooling_function, spec.use_tpu, sparsity,
        context.method, previous_threshold=members[0].threshold,
        previous_sparsity=mask_updates.previous_sparsity(
            context, plan.group_targets.get(group)))
  assign_ops = []
  for record, new_mask in zip(members, new_masks):
    assign_ops.extend(mask_updates.assign_ops(record, new_threshold,
                                              new_mask))
  return assign_ops
