"""Gradient-based pruning (google-research): saliency from weight movement.

With `prune_option=first_order_gradient` (or second order) each weight keeps
a decayed accumulator `gradient` of its normalised movement, and masks rank
weights by |W| * gradient. Mixed into `pruning.Pruning`.
"""
import tensorflow as tf

from model_pruning.python import masked_weights
from model_pruning.python import saliency_masks


class GradientPruningMixin(object):
  """The gradient part of `Pruning` (SPEC 2.4.13, ordered per fix Q12)."""

  def use_gradient(self):
    return self._spec.prune_option in masked_weights.GRADIENT_PRUNE_OPTIONS

  def _paired(self, first, second, what):
    if len(first) != len(second):
      raise ValueError(
          'Number of weights %s and number of %s %s mismatch: with '
          'prune_option=%s every pruned weight needs its gradient variables; '
          'create them with apply_mask(..., prune_option=%r).' %
          (len(first), what, len(second), self._spec.prune_option,
           self._spec.prune_option))
    return list(zip(first, second))

  def _gradient_assigns(self):
    rate = self._spec.gradient_decay_rate
    second_order = self._spec.prune_option == 'second_order_gradient'
    weights = masked_weights.get_weights()
    olds = self._paired(weights, masked_weights.get_old_weights(), 'old_weights')
    grads = self._paired(weights, masked_weights.get_gradients(), 'gradients')
    old_olds = (self._paired(weights, masked_weights.get_old_old_weights(), 'old_old_weights')
                if second_order else [(w, None) for w in weights])
    assigns = []
    for (weight, old), (_, grad), (_, old_old) in zip(olds, grads, old_olds):
      for other, what in ((old, 'old_weight'), (grad, 'gradient')):
        if weight.get_shape() != other.get_shape():
          raise ValueError('weight tensor has different shape from %s: %s vs '
                           '%s' % (what, weight.get_shape(), other.get_shape()))
      assigns.append(masked_weights.assign_variable(
          grad, saliency_masks.decayed_gradient(
              masked_weights.read_in_order(weight), masked_weights.read_in_order(old),
              None if old_old is None else masked_weights.read_in_order(old_old),
              masked_weights.read_in_order(grad), rate)))
    step_assign = tf.compat.v1.assign(
        self._last_gradient_update_step, self._global_step,
        name='last_gradient_update_step_assign')
    return assigns + [step_assign]

  def gradient_update_op(self):
    """Decays the weight-movement saliency into the `gradient` variables."""
    if not self.use_gradient():
      return tf.no_op('gradient_update_no_op')
    with tf.compat.v1.name_scope(self._name_scope):
      return tf.group(*self._gradient_assigns(), name='gradient_update')

  def _snapshot_assigns(self, sources, targets, what):
    return [masked_weights.assign_variable(target, masked_weights.read_in_order(source))
            for source, target in self._paired(sources, targets, what)]

  def old_weight_update_op(self):
    """old_weight <- weight for every pruned weight."""
    if not self.use_gradient():
      return tf.no_op('gradient_update_no_op')
    with tf.compat.v1.name_scope(self._name_scope):
      return tf.group(*self._snapshot_assigns(
          masked_weights.get_weights(), masked_weights.get_old_weights(), 'old_weights'),
                      name='old_weight_update')

  def old_old_weight_update_op(self):
    """old_old_weight <- old_weight (second order only)."""
    if self._spec.prune_option != 'second_order_gradient':
      return tf.no_op('gradient_update_no_op')
    with tf.compat.v1.name_scope(self._name_scope):
      return tf.group(*self._snapshot_assigns(
          masked_weights.get_old_weights(), masked_weights.get_old_old_weights(), 'old_old_weights'),
                      name='old_old_weight_update')

  def _gradient_chain(self):
    """gradients -> old_old <- old -> old <- W, in that order (fix Q12)."""
    if not self.use_gradient():
      return []
    gradient_op = self.gradient_update_op()
    with tf.control_dependencies([gradient_op]):
      old_old_op = self.old_old_weight_update_op()
    with tf.control_dependencies([old_old_op]):
      old_op = self.old_weight_update_op()
    return [old_op]

  def conditional_gradient_update_op(self):
    """Runs `gradient_update_op` at every step inside the pruning window."""
    spec = self._spec
    with tf.compat.v1.name_scope(self._name_scope):
      step = self._global_step
      in_window = tf.logical_and(
          tf.greater_equal(step, spec.begin_pruning_step),
          tf.logical_or(tf.less_equal(step, spec.end_pruning_step),
                        tf.less(spec.end_pruning_step, 0)))
      return tf.compat.v1.cond(in_window, self.gradient_update_op, tf.no_op,
                               name='conditional_gradient_update')
