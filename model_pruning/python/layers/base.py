"""Scope handling shared by the masked layers and the masked LSTM cells.

TF 2.21 with Keras 3 has no `tf.compat.v1.layers.Layer` and no TF1 RNN cells,
so the masked layers and cells bring the small part of the TF1 `Layer` contract
they need: a variable scope captured on first use (uniquified like TF1:
`masked_conv2d`, `masked_conv2d_1`, ...), re-entered with reuse on every later
call, and variables created with `tf.compat.v1.get_variable`.

Variables and the masked kernel are created under `tf.init_scope()`: a cell
first called inside `dynamic_rnn`'s while-loop body (a function graph) still
puts its variables, its `weights/masked_weight` op and its collection entries
in the outer graph, where `Pruning` and the strip tool look for them.
"""
import contextlib

import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python import pruning_variables
# The mask factory the layers use, importable from here as before.
from model_pruning.python.pruning_variables import mask_variable  # pylint: disable=unused-import


class ScopedModule:
  """A callable owning one variable scope, captured the first time it is used.

  Subclasses implement `_create_variables(input_shape)` (called once, inside
  the scope) and call `self._in_scope()` around their computation.
  """

  _DEFAULT_NAME = 'module'

  def __init__(self, trainable=True, name=None, dtype=None, _scope=None,
               _reuse=None):
    self.trainable = trainable
    self._base_name = name or self._DEFAULT_NAME
    self._dtype = tf.as_dtype(dtype) if dtype is not None else None
    self._scope = _scope
    self._reuse = _reuse
    self.built = False

  @property
  def name(self):
    """The captured scope's name, or the requested base name before use."""
    return self._scope.name if self._scope is not None else self._base_name

  @property
  def dtype(self):
    """The layer dtype (None until given or inferred from the first input)."""
    return self._dtype

  def _set_scope(self, scope=None):
    """Captures the variable scope once (TF1 `Layer._set_scope` semantics)."""
    if self._scope is not None:
      return
    if self._reuse:
      with tf.compat.v1.variable_scope(
          scope if scope is not None else self._base_name) as captured:
        self._scope = captured
    else:
      with tf.compat.v1.variable_scope(
          scope, default_name=self._base_name) as captured:
        self._scope = captured

  @contextlib.contextmanager
  def _in_scope(self, scope=None):
    """Re-enters the captured variable scope and its original name scope."""
    self._set_scope(scope)
    reuse = True if self.built else self._reuse
    with tf.compat.v1.variable_scope(self._scope, reuse=reuse,
                                     auxiliary_name_scope=False) as current:
      with tf.compat.v1.name_scope(current.original_name_scope):
        yield current

  def _infer_dtype(self, inputs):
    if self._dtype is None:
      self._dtype = tf.as_dtype(inputs.dtype).base_dtype

  def build(self, input_shape):
    """Creates the variables for inputs of `input_shape` (once)."""
    if self.built:
      return
    if self._dtype is None:
      self._dtype = tf.float32
    with self._in_scope(), tf.init_scope():
      self._create_variables(tf.TensorShape(input_shape))
    self.built = True

  def _create_variables(self, input_shape):
    raise NotImplementedError

  def _get_variable(self, name, shape, initializer=None, regularizer=None,
                    trainable=True, dtype=None):
    """`tf.compat.v1.get_variable` in the current scope, layer dtype default.

    `trainable=False` on the layer makes every variable non-trainable, as in
    TF1 layers. A regularizer's loss lands in REGULARIZATION_LOSSES.
    """
    return tf.compat.v1.get_variable(
        name, shape=shape, dtype=dtype or self._dtype, initializer=initializer,
        regularizer=regularizer, trainable=trainable and self.trainable)


def finish_masked_weight(kernel, mask, prune_option=None,
                         gradient_state=None):
  """Creates `threshold` (and gradient state), the masked kernel; registers.

  Goes through `pruning_variables`, the path `apply_mask` takes too (same
  prunability checks, same registration): `masked_weight = mask * kernel` is
  the op named `.../weights/masked_weight` in the current name scope, and a
  mask is registered once however often the layer or cell is built under
  reuse (docs/upstream.md Q21).

  Args:
    kernel: the weight variable to prune.
    mask: its mask variable (`pruning_variables.mask_variable`).
    prune_option: 'first_order_gradient' or 'second_order_gradient' also
      create `old_weight`, `old_old_weight` and `gradient` (kernel shape,
      zeros, non-trainable), as google-research's cells do; any other value
      creates none.
    gradient_state: True or False creates (or not) the three gradient
      variables whatever `prune_option` says; None (default) follows
      `prune_option`. The LSTM cells use it to create them by default.

  Returns:
    dict with keys threshold, masked_weight and, when created, old_weight,
    old_old_weight, gradient.
  """
  variables = pruning_variables.create(
      kernel, None, prune_option, mask=mask, gradient_variables=gradient_state)
  created = {'threshold': variables.threshold,
             'masked_weight': pruning_variables.mask_and_register(kernel,
                                                                  variables)}
  for name in (graph_keys.OLD_WEIGHT_VARIABLE_NAME,
               graph_keys.OLD_OLD_WEIGHT_VARIABLE_NAME,
               graph_keys.GRADIENT_VARIABLE_NAME):
    if getattr(variables, name) is not None:
      created[name] = getattr(variables, name)
  return created
