"""The pruning variables of a weight: creating, reading and assigning them.

The one path that creates `mask`, `threshold` and google-research's gradient
variables next to a weight (used by `apply_mask` and the masked layers alike,
with the same checks), and the helpers that read and assign plain and
partitioned variables inside the current control dependencies.
"""
import collections
import contextlib

import tensorflow as tf

from model_pruning.python import graph_keys

_MAX_PRUNABLE_SIZE = 2**31 - 1
GRADIENT_PRUNE_OPTIONS = ('first_order_gradient', 'second_order_gradient')


def _scoped_variable(var, scope, name, initializer, shape=None):
  """get_variable in `scope` (None: the current variable scope)."""
  context = (contextlib.nullcontext() if scope is None
             else tf.compat.v1.variable_scope(scope))
  with context:
    return tf.compat.v1.get_variable(
        name,
        shape=var.get_shape() if shape is None else shape,
        initializer=initializer,
        trainable=False,
        dtype=var.dtype.base_dtype)


def weight_mask_variable(var, scope):
  """Creates (or reuses) the all-ones, non-trainable `mask` of `var`'s shape."""
  return _scoped_variable(var, scope, graph_keys.MASK_VARIABLE_NAME,
                          tf.compat.v1.ones_initializer())


def mask_variable(shape, dtype):
  """The all-ones, non-trainable `mask` in the current scope, before its weight.

  The masked layers create the mask ahead of the kernel (upstream's variable
  order) and hand it to `create`.
  """
  return tf.compat.v1.get_variable(
      graph_keys.MASK_VARIABLE_NAME, shape=shape, dtype=dtype,
      initializer=tf.compat.v1.ones_initializer(), trainable=False)


def weight_threshold_variable(var, scope):
  """Creates (or reuses) the scalar, zero, non-trainable `threshold`."""
  return _scoped_variable(var, scope, graph_keys.THRESHOLD_VARIABLE_NAME,
                          tf.compat.v1.zeros_initializer(), shape=[])


def weight_gradient_variable(var, scope):
  """The `gradient` saliency accumulator (google-research), zeros."""
  return _scoped_variable(var, scope, graph_keys.GRADIENT_VARIABLE_NAME,
                          tf.compat.v1.zeros_initializer())


def old_weight_variable(var, scope):
  """Snapshot of the weight at the previous gradient update, zeros."""
  return _scoped_variable(var, scope, graph_keys.OLD_WEIGHT_VARIABLE_NAME,
                          tf.compat.v1.zeros_initializer())


def old_old_weight_variable(var, scope):
  """Snapshot of the weight two gradient updates back, zeros."""
  return _scoped_variable(var, scope, graph_keys.OLD_OLD_WEIGHT_VARIABLE_NAME,
                          tf.compat.v1.zeros_initializer())


def determine_partitioned_axis(partitioned_variable):
  """The axis along which a PartitionedVariable is split."""
  partitioned_axis = 0
  full_shape = partitioned_variable.get_shape()
  for partition in partitioned_variable:
    partition_shape = partition.get_shape()
    differing = [axis for axis in range(len(full_shape))
                 if partition_shape[axis] != full_shape[axis]]
    if len(differing) > 1 or (not differing and len(partitioned_variable) > 1):
      raise ValueError('Number of partitioned axes %s not equal to 1' %
                       len(differing))
    if differing:
      partitioned_axis = differing[0]
  return partitioned_axis


def variable_assign(var, new_value):
  """Assign op named `<var op name>_assign`."""
  return tf.compat.v1.assign(var, new_value, name=var.op.name + '_assign')


def partitioned_variable_assign(partitioned_var, new_value):
  """Splits `new_value` like the partitions and assigns each piece."""
  partitions = list(partitioned_var)
  axis = 0 if len(partitions) == 1 else determine_partitioned_axis(
      partitioned_var)
  sizes = [p.get_shape().as_list()[axis] for p in partitions]
  pieces = tf.split(new_value, sizes, axis=axis)
  assigns = [variable_assign(p, piece) for p, piece in zip(partitions, pieces)]
  return tf.group(*assigns, name=partitioned_var.name + '_group_assign')


def is_partitioned(x):
  """True for a PartitionedVariable (not exported by tf.compat.v1 in 2.21)."""
  return hasattr(x, 'as_tensor') and hasattr(x, '_get_variable_list')


def as_tensor(x):
  return x.as_tensor() if is_partitioned(x) else x


def read_in_order(x):
  """Reads `x` inside the current control-dependency context.

  `PartitionedVariable.as_tensor()` drops control dependencies, which would let
  the reads race with the gradient and old-weight assigns that must precede
  them (docs/upstream.md Q12); this concatenates freshly read partitions
  instead. A plain variable is read afresh too: under a caching device
  (`static_rnn` sets one on its scope) its tensor value is a read cached
  before the assigns.
  """
  if not is_partitioned(x):
    return x.read_value() if isinstance(x, tf.Variable) else x
  parts = list(x)
  axis = (0 if len(parts) == 1 else
          determine_partitioned_axis(x))
  return tf.concat([part.read_value() for part in parts], axis=axis)


def weight_name(x):
  """The name map regexes are matched against: the weight's own op name."""
  if is_partitioned(x):
    return x.name
  return x.op.name


def check_prunable(x):
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


def assign_variable(var, value):
  """Assigns `value` to a plain or a partitioned variable (piece by piece)."""
  if is_partitioned(var):
    return partitioned_variable_assign(var, value)
  return variable_assign(var, value)


def mask_op_name(mask):
  """The op name of a mask (a PartitionedVariable's full name)."""
  if is_partitioned(mask):
    return mask.name
  return mask.op.name


# A weight's pruning variables; the gradient ones are None unless a gradient
# prune_option asked for them.
PruningVariables = collections.namedtuple(
    'PruningVariables', ['mask', 'threshold', 'gradient', 'old_weight',
                         'old_old_weight'])


def create(x, scope=None, prune_option='weight', mask=None,
           gradient_variables=None):
  """Checks that `x` can be pruned and creates (or reuses) its variables.

  Args:
    x: the weight (variable, partitioned variable or tensor).
    scope: variable scope (name or VariableScope) for the new variables;
      None for the current one (the masked layers).
    prune_option: a gradient option also creates `gradient`, `old_weight`
      and `old_old_weight` (zeros, x's shape, not trainable).
    mask: an existing mask variable to use instead of creating one.
    gradient_variables: True or False creates (or not) the gradient
      variables whatever `prune_option` says; None follows it. The LSTM cells
      create them by default, as google-research's do.

  Returns:
    PruningVariables.
  """
  check_prunable(x)
  if mask is None:
    mask = weight_mask_variable(x, scope)
  threshold = weight_threshold_variable(x, scope)
  if gradient_variables is None:
    gradient_variables = prune_option in GRADIENT_PRUNE_OPTIONS
  if not gradient_variables:
    return PruningVariables(mask, threshold, None, None, None)
  old_weight = old_weight_variable(x, scope)
  old_old_weight = old_old_weight_variable(x, scope)
  return PruningVariables(mask, threshold, weight_gradient_variable(x, scope),
                          old_weight, old_old_weight)


def mask_and_register(x, variables, group_name=None):
  """Returns `mask * x` (op `.../weights/masked_weight`); registers it once.

  A weight wrapped again under variable reuse (an RNN step, a layer built
  twice) gets its mask back and is not registered twice.
  """
  masked = tf.multiply(as_tensor(variables.mask), as_tensor(x),
                       name=graph_keys.MASKED_WEIGHT_NAME)
  graph_keys.register_pruned_weight(
      variables.mask, variables.threshold, x, masked, variables.gradient,
      variables.old_weight, variables.old_old_weight, group_name)
  return masked
