"""Gradient-based pruning (google-research): saliency from weight movement.

With `prune_option=first_order_gradient` (or second order) each weight keeps
a decayed accumulator `gradient` of its normalised movement, and masks rank
weights by |W| * gradient. These functions build the ops over weight records;
`Pruning` exposes them under google-research's method names.

Order inside one update (each step reads what the previous one wrote):
gradient <- decayed movement; old_old <- old; old <- W; then the masks.
"""
import tensorflow as tf

from model_pruning.python import pruning_variables
from model_pruning.python import saliency_masks
from model_pruning.python import weight_records

GRADIENT_PRUNE_OPTIONS = pruning_variables.GRADIENT_PRUNE_OPTIONS


def uses_gradient(spec):
  return spec.prune_option in GRADIENT_PRUNE_OPTIONS


def _is_second_order(spec):
  return spec.prune_option == 'second_order_gradient'


def _check_shapes(record):
  for other, what in ((record.old_weight, 'old_weight'),
                      (record.gradient, 'gradient')):
    if record.weight.get_shape() != other.get_shape():
      raise ValueError('weight tensor has different shape from %s: %s vs %s' %
                       (what, record.weight.get_shape(), other.get_shape()))


def gradient_assigns(records, spec, step, last_gradient_update_step):
  """gradient <- r g + (1 - r) |movement| for every record; records the step."""
  weight_records.check_gradients(records, spec.prune_option,
                                 _is_second_order(spec))
  read = pruning_variables.read_in_order
  assigns = []
  for record in records:
    _check_shapes(record)
    old_old = (read(record.old_old_weight) if _is_second_order(spec)
               else None)
    assigns.append(pruning_variables.assign_variable(
        record.gradient, saliency_masks.decayed_gradient(
            read(record.weight), read(record.old_weight), old_old,
            read(record.gradient), spec.gradient_decay_rate)))
  assigns.append(tf.compat.v1.assign(
      last_gradient_update_step, step,
      name='last_gradient_update_step_assign'))
  return assigns


def snapshot_assigns(records, spec, source, target):
  """target <- source for every record (e.g. 'weight' -> 'old_weight')."""
  weight_records.check_gradients(records, spec.prune_option,
                                 _is_second_order(spec))
  return [pruning_variables.assign_variable(
      getattr(record, target),
      pruning_variables.read_in_order(getattr(record, source)))
          for record in records]


def update_chain(records, spec, step, last_gradient_update_step):
  """The ops that must precede a gradient-based mask update, in order.

  Returns:
    [] without a gradient option, else [op] whose control inputs run
    gradient, then old_old <- old, then old <- W.
  """
  if not uses_gradient(spec):
    return []
  gradient_op = tf.group(*gradient_assigns(records, spec, step,
                                           last_gradient_update_step),
                         name='gradient_update')
  ops = [gradient_op]
  if _is_second_order(spec):
    with tf.control_dependencies(ops):
      ops = [tf.group(*snapshot_assigns(records, spec, 'old_weight',
                                        'old_old_weight'),
                      name='old_old_weight_update')]
  with tf.control_dependencies(ops):
    return [tf.group(*snapshot_assigns(records, spec, 'weight', 'old_weight'),
                     name='old_weight_update')]
