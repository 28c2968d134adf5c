"""Group pruning (google-research): one threshold shared by a group.

Weights registered with `apply_mask_with_group(x, group_name=g)` and listed in
`group_sparsity_map` (or `group_block_dims_map`) are thresholded jointly, so
the group as a whole reaches its target while members may be sparser or
denser. Weights outside the listed groups are pruned one by one (fix Q28).
Mixed into `pruning.Pruning`; relies on its lookups and `_assign_mask`.
"""
from absl import logging
import tensorflow as tf

from model_pruning.python import masked_weights
from model_pruning.python import saliency_masks
from model_pruning.python.graph_keys import UNGROUPED_GROUP_NAME


class GroupPruningMixin(object):
  """The group part of `Pruning` (SPEC 2.4.14, with fixes Q27 and Q28)."""

  def _get_group_mask_assign_ops(self):
    """Joint masks for every listed group; all other weights individually.

    A group is listed when it appears in group_sparsity_map or
    group_block_dims_map. Fix Q28: weights of unlisted groups, and weights
    added with plain `apply_mask`, are pruned on their own as without groups.
    Members with an N:M pattern are pruned N:M on their own, too.
    """
    if not self._spec.group_pruning:
      raise ValueError('Group pruning is not enabled: set group_pruning=true.')
    listed = set(self._group_sparsity_map) | set(self._group_block_dims_map)
    assign_ops, grouped = [], set()
    for group in sorted(listed - {UNGROUPED_GROUP_NAME}):
      members = [m for m in self._pruned_weights_of_group(group)
                 if not self._leaves_group_for_m_by_n(group, m[2])]
      grouped.update(id(member[0]) for member in members)
      members = [m for m in members if not self._is_excluded(m[0])]
      if members:
        assign_ops.extend(self._group_assign_ops(group, members))
    assign_ops.extend(self._get_mask_assign_ops(skip=grouped))
    return assign_ops

  def _leaves_group_for_m_by_n(self, group, weight):
    """True, with a warning, for a group member that has an N:M pattern.

    The pattern fixes the member's own mask (at most M of every N), which a
    joint threshold would break, so the member is pruned N:M on its own.
    """
    name = masked_weights.weight_name(weight)
    if self._get_m_by_n(name) is None:
      return False
    logging.warning('%s has an N:M pattern (sparsity_m_by_n or m_by_n_map): '
                    'it is pruned N:M on its own, outside group %s\'s joint '
                    'threshold.', name, group)
    return True

  def _pruned_weights_of_group(self, group):
    masks = masked_weights.get_masks(group)
    thresholds = masked_weights.get_thresholds(group)
    weights = masked_weights.get_weights(group)
    if not len(masks) == len(thresholds) == len(weights):
      raise ValueError('Group %s: number of masks %d, thresholds %d and '
                       'weights %d mismatch' % (group, len(masks),
                                                len(thresholds), len(weights)))
    gradients = masked_weights.get_gradients(group) if self.use_gradient() else []
    if self.use_gradient() and len(gradients) != len(masks):
      raise ValueError(
          'Group %s: prune_option=%s needs a gradient variable for every '
          'weight, got %d for %d masks. Create them with '
          'apply_mask_with_group(..., prune_option=%r).' %
          (group, self._spec.prune_option, len(gradients), len(masks),
           self._spec.prune_option))
    return [(m, t, w, gradients[i] if gradients else None)
            for i, (m, t, w) in enumerate(zip(masks, thresholds, weights))]

  def _get_group_sparsity(self, group):
    """The group's scheduled sparsity, interpolated like a per-weight target.

    Unlike upstream (Q27), a listed 0.0 is a real target, not "use the global
    sparsity"; a group without a group_sparsity_map entry follows the global
    schedule.
    """
    target = self._group_sparsity_map.get(group)
    if target is None:
      return self._sparsity
    if not self._external_sparsity:
      with tf.compat.v1.name_scope(self._name_scope):
        return self._polynomial(target)
    if self._spec.target_sparsity == 0.0:
      raise ValueError(
          'group_sparsity_map with an external sparsity tensor needs '
          'target_sparsity > 0: group %s\'s target %g is scaled by '
          'sparsity / target_sparsity. Set target_sparsity to the value the '
          'sparsity tensor ends at.' % (group, target))
    return self._sparsity * (target / self._spec.target_sparsity)

  def _group_assign_ops(self, group, members):
    """One joint threshold for the group's members; assigns every member."""
    sparsity = self._get_group_sparsity(group)
    block_dims = list(self._group_block_dims_map.get(group, self._block_dims))
    # All members share one threshold value, so the first one's previous value
    # is the group's previous threshold for threshold_decay smoothing.
    previous_threshold = members[0][1]
    with tf.compat.v1.name_scope('%s_group_pruning_ops' % group):
      new_threshold, new_masks = saliency_masks.joint_masks(
          [masked_weights.read_in_order(w) for _, _, w, _ in members],
          [None if g is None else masked_weights.read_in_order(g) for _, _, _, g in members],
          block_dims, self._block_pooling_function, self._spec.use_tpu,
          sparsity, self._method(), previous_threshold=previous_threshold)
    assign_ops = []
    for (mask, threshold, _, _), new_mask in zip(members, new_masks):
      assign_ops.extend(
          self._assign_mask(mask, threshold, new_threshold, new_mask))
    return assign_ops
