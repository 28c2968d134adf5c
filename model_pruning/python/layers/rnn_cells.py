"""Masked LSTM cells (and the small RNN-cell kit they need), without Keras.

TF 2.21's `tf.compat.v1.nn.rnn_cell` classes need Keras 2, so the cells here
implement the RNN-cell protocol themselves (`state_size`, `output_size`,
`zero_state`, `get_initial_state`, `__call__(inputs, state, scope=None)`)
and work with `tf.compat.v1.nn.static_rnn` and `dynamic_rnn`:

    cell = MultiRNNCell([MaskedBasicLSTMCell(64), MaskedBasicLSTMCell(64)])
    outputs, state = tf.compat.v1.nn.static_rnn(cell, inputs, dtype=tf.float32)
    # variables rnn/multi_rnn_cell/cell_0/masked_basic_lstm_cell/{kernel,
    #   bias, mask, threshold}, ...

Only the main kernel `[input_depth + h_depth, 4 * num_units]` is masked (never
the projection); the gates are `i, j, f, o` in that order. Variable reuse
across time steps registers one mask per cell.

Like google-research's cells, a cell built without `prune_option` also creates
`gradient`, `old_weight` and `old_old_weight` (kernel shape, zeros,
non-trainable, saved in checkpoints) and registers them, so
`Pruning(prune_option=first_order_gradient)` works on LSTM models.
`prune_option='weight'` creates only what contrib's cells created (kernel,
bias, mask, threshold): use it to save the memory, or to restore a checkpoint
written by contrib. docs/layers.md gives the measured cost.
"""
import collections

import tensorflow as tf

from model_pruning.python.layers import base

_PRUNE_OPTIONS = (None, 'weight', 'first_order_gradient',
                  'second_order_gradient', 'compression')


class LSTMStateTuple(collections.namedtuple('LSTMStateTuple', ('c', 'h'))):
  """LSTM state `(c, h)`: cell state and output (`m` with a projection)."""
  __slots__ = ()

  @property
  def dtype(self):
    c, h = self
    if c.dtype != h.dtype:
      raise TypeError(f'Inconsistent dtypes in LSTMStateTuple: c is {c.dtype}, '
                      f'h is {h.dtype}')
    return c.dtype


def _zeros(batch_size, size, dtype):
  """`[batch_size, size]` zeros; the static batch dim kept when known."""
  static_batch = tf.get_static_value(batch_size)
  if isinstance(batch_size, int):
    return tf.zeros([batch_size, size], dtype=dtype)
  shape = tf.stack([tf.cast(batch_size, tf.int32), size])
  zeros = tf.zeros(shape, dtype=dtype)
  zeros.set_shape([None if static_batch is None else int(static_batch), size])
  return zeros


class _RNNCell(base.ScopedModule):
  """RNN-cell protocol on top of a captured variable scope."""

  @property
  def state_size(self):
    raise NotImplementedError

  @property
  def output_size(self):
    raise NotImplementedError

  def zero_state(self, batch_size, dtype):
    """Zero state with the structure of `state_size` (int or scalar tensor)."""
    with tf.compat.v1.name_scope(type(self).__name__ + 'ZeroState'):
      return tf.nest.map_structure(lambda s: _zeros(batch_size, s, dtype),
                                   self.state_size)

  def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
    """Zero state; batch size and dtype come from `inputs` when given."""
    if inputs is not None:
      inputs = tf.convert_to_tensor(inputs)
      static = inputs.shape.dims[0].value if inputs.shape.rank else None
      batch_size = static if static is not None else tf.shape(inputs)[0]
      dtype = inputs.dtype
    if batch_size is None or dtype is None:
      raise ValueError('get_initial_state needs inputs, or both batch_size and '
                       f'dtype; got batch_size={batch_size!r}, dtype={dtype!r}')
    return self.zero_state(batch_size, dtype)

  def __call__(self, inputs, state, scope=None):
    """Runs one step: returns `(output, new_state)`; builds on first use."""
    inputs = tf.convert_to_tensor(inputs)
    self._infer_dtype(inputs)
    with self._in_scope(scope):
      if not self.built:
        self.build(inputs.shape)
      return self.call(inputs, state)


def _get_activation(activation):
  if activation is None:
    return tf.math.tanh
  if isinstance(activation, str):
    found = getattr(tf.math, activation, None) or getattr(tf.nn, activation,
                                                          None)
    if found is None:
      raise ValueError(f'Unknown activation {activation!r}; pass a callable')
    return found
  if not callable(activation):
    raise TypeError(f'activation must be callable, got {activation!r}')
  return activation


class _MaskedLSTMBase(_RNNCell):
  """Shared state handling, masked kernel and step of both masked cells."""

  def __init__(self, num_units, forget_bias, state_is_tuple, activation,
               reuse, name, dtype, prune_option, num_proj=None):
    if prune_option not in _PRUNE_OPTIONS:
      raise ValueError(f'prune_option must be one of {_PRUNE_OPTIONS}, got '
                       f'{prune_option!r}')
    if not state_is_tuple:
      tf.compat.v1.logging.warning(
          '%s: state_is_tuple=False is deprecated (upstream too); pass '
          'state_is_tuple=True', type(self).__name__)
    super().__init__(name=name, dtype=dtype, _reuse=reuse)
    self._num_units = num_units
    self._num_proj = num_proj
    self._forget_bias = forget_bias
    self._state_is_tuple = state_is_tuple
    self._activation = _get_activation(activation)
    self._prune_option = prune_option
    self.kernel = self.bias = self.mask = self.threshold = None
    self.masked_kernel = None
    self.gradient = self.old_weight = self.old_old_weight = None

  @property
  def state_size(self):
    proj = self._num_proj or self._num_units
    if self._state_is_tuple:
      return LSTMStateTuple(self._num_units, proj)
    return self._num_units + proj

  @property
  def output_size(self):
    return self._num_proj or self._num_units

  def _create_kernel_and_bias(self, input_shape, initializer):
    if input_shape.rank is None or input_shape.dims[-1].value is None:
      raise ValueError('Expected inputs.shape[-1] to be known, saw shape: '
                       f'{input_shape}')
    depth = input_shape.dims[-1].value + (self._num_proj or self._num_units)
    self.kernel = self._get_variable(
        'kernel', shape=[depth, 4 * self._num_units], initializer=initializer)
    self.bias = self._get_variable(
        'bias', shape=[4 * self._num_units],
        initializer=tf.compat.v1.zeros_initializer())

  def _create_mask(self):
    """Mask with the kernel's own shape (docs/upstream.md Q11), threshold, registration."""
    self.mask = base.mask_variable(self.kernel.shape, self._dtype)
    extra = base.finish_masked_weight(
        self.kernel, self.mask, prune_option=self._prune_option,
        gradient_state=self._prune_option != 'weight')
    self.threshold = extra['threshold']
    self.masked_kernel = extra['masked_weight']
    self.gradient = extra.get('gradient')
    self.old_weight = extra.get('old_weight')
    self.old_old_weight = extra.get('old_old_weight')

  def _split_state(self, state):
    if self._state_is_tuple:
      return state
    proj = self._num_proj or self._num_units
    return (tf.slice(state, [0, 0], [-1, self._num_units]),
            tf.slice(state, [0, self._num_units], [-1, proj]))

  def _gates(self, inputs, m_prev):
    if inputs.shape.rank is None or inputs.shape.dims[-1].value is None:
      raise ValueError('Could not infer input size from inputs.get_shape()[-1]')
    z = tf.matmul(tf.concat([inputs, m_prev], 1), self.masked_kernel)
    return tf.split(tf.nn.bias_add(z, self.bias), num_or_size_splits=4, axis=1)

  def _new_state(self, c, m):
    if self._state_is_tuple:
      return LSTMStateTuple(c, m)
    return tf.concat([c, m], 1)


class MaskedBasicLSTMCell(_MaskedLSTMBase):
  """Basic LSTM cell (no peepholes, no projection) with a masked kernel.

  With `z = [x, h] . (mask * kernel) + bias` split into `i, j, f, o`:
  `c' = c * sigmoid(f + forget_bias) + sigmoid(i) * act(j)`,
  `h' = act(c') * sigmoid(o)`; returns `(h', (c', h'))`.

  `prune_option`: None (default, google-research) or a gradient option also
  creates the `gradient`, `old_weight` and `old_old_weight` variables;
  'weight' creates only contrib's kernel, bias, mask and threshold.
  """

  _DEFAULT_NAME = 'masked_basic_lstm_cell'

  def __init__(self, num_units, forget_bias=1.0, state_is_tuple=True,
               activation=None, reuse=None, name=None, dtype=None,
               prune_option=None):
    super().__init__(num_units, forget_bias, state_is_tuple, activation,
                     reuse, name, dtype, prune_option)

  def _create_variables(self, input_shape):
    self._create_kernel_and_bias(input_shape, initializer=None)
    self._create_mask()

  def call(self, inputs, state):
    c, h = self._split_state(state)
    i, j, f, o = self._gates(inputs, h)
    forget_bias = tf.constant(self._forget_bias, dtype=f.dtype)
    new_c = (c * tf.sigmoid(f + forget_bias) +
             tf.sigmoid(i) * self._activation(j))
    new_h = self._activation(new_c) * tf.sigmoid(o)
    return new_h, self._new_state(new_c, new_h)


class MaskedLSTMCell(_MaskedLSTMBase):
  """LSTM cell with optional peepholes, cell clipping and projection; the
  main kernel is masked.

  `c = sigmoid(f + forget_bias [+ w_f * c_prev]) * c_prev +
       sigmoid(i [+ w_i * c_prev]) * act(j)`, clipped to +-cell_clip;
  `m = sigmoid(o [+ w_o * c]) * act(c)`, then `m . projection/kernel`
  clipped to +-proj_clip when num_proj is set; returns `(m, (c, m))`.
  `num_unit_shards` / `num_proj_shards` are accepted and ignored.
  `prune_option`: as for `MaskedBasicLSTMCell`.
  """

  _DEFAULT_NAME = 'masked_lstm_cell'

  def __init__(self, num_units, use_peepholes=False, cell_clip=None,
               initializer=None, num_proj=None, proj_clip=None,
               num_unit_shards=None, num_proj_shards=None, forget_bias=1.0,
               state_is_tuple=True, activation=None, reuse=None, name=None,
               dtype=None, prune_option=None):
    if num_unit_shards is not None or num_proj_shards is not None:
      tf.compat.v1.logging.warning(
          'num_unit_shards and num_proj_shards are deprecated and ignored '
          '(got %r, %r); use a variable_scope partitioner instead',
          num_unit_shards, num_proj_shards)
    super().__init__(num_units, forget_bias, state_is_tuple, activation,
                     reuse, name, dtype, prune_option, num_proj=num_proj)
    self._use_peepholes = use_peepholes
    self._cell_clip = cell_clip
    self._initializer = initializer
    self._proj_clip = proj_clip
    self.w_f_diag = self.w_i_diag = self.w_o_diag = None
    self.proj_kernel = None

  def _create_variables(self, input_shape):
    self._create_kernel_and_bias(input_shape, initializer=self._initializer)
    if self._use_peepholes:
      self.w_f_diag, self.w_i_diag, self.w_o_diag = (
          self._get_variable(name, shape=[self._num_units],
                             initializer=self._initializer)
          for name in ('w_f_diag', 'w_i_diag', 'w_o_diag'))
    if self._num_proj is not None:
      self.proj_kernel = self._get_variable(
          'projection/kernel', shape=[self._num_units, self._num_proj],
          initializer=self._initializer)
    self._create_mask()

  def call(self, inputs, state):
    c_prev, m_prev = self._split_state(state)
    i, j, f, o = self._gates(inputs, m_prev)
    if self._use_peepholes:
      c = (tf.sigmoid(f + self._forget_bias + self.w_f_diag * c_prev) * c_prev +
           tf.sigmoid(i + self.w_i_diag * c_prev) * self._activation(j))
    else:
      c = (tf.sigmoid(f + self._forget_bias) * c_prev +
           tf.sigmoid(i) * self._activation(j))
    if self._cell_clip is not None:
      c = tf.clip_by_value(c, -self._cell_clip, self._cell_clip)
    if self._use_peepholes:
      m = tf.sigmoid(o + self.w_o_diag * c) * self._activation(c)
    else:
      m = tf.sigmoid(o) * self._activation(c)
    if self._num_proj is not None:
      m = tf.matmul(m, self.proj_kernel)
      if self._proj_clip is not None:
        m = tf.clip_by_value(m, -self._proj_clip, self._proj_clip)
    return m, self._new_state(c, m)


class MultiRNNCell(_RNNCell):
  """Stacks cells: cell k runs in variable scope `cell_<k>` of this cell.

  With `state_is_tuple=True` (the default) the state is a tuple of the
  cells' states; with False, a concatenation (cells need integer state sizes).
  """

  _DEFAULT_NAME = 'multi_rnn_cell'

  def __init__(self, cells, state_is_tuple=True, name=None):
    cells = list(cells)
    if not cells:
      raise ValueError('MultiRNNCell needs at least one cell, got []')
    if not state_is_tuple and not all(
        isinstance(cell.state_size, int) for cell in cells):
      raise ValueError('state_is_tuple=False needs cells with integer '
                       'state_size; build the cells with state_is_tuple=False')
    super().__init__(name=name)
    self._cells = cells
    self._state_is_tuple = state_is_tuple

  @property
  def cells(self):
    return list(self._cells)

  @property
  def state_size(self):
    if self._state_is_tuple:
      return tuple(cell.state_size for cell in self._cells)
    return sum(cell.state_size for cell in self._cells)

  @property
  def output_size(self):
    return self._cells[-1].output_size

  def zero_state(self, batch_size, dtype):
    if not self._state_is_tuple:
      return super().zero_state(batch_size, dtype)
    with tf.compat.v1.name_scope('MultiRNNCellZeroState'):
      return tuple(cell.zero_state(batch_size, dtype) for cell in self._cells)

  def _create_variables(self, input_shape):
    del input_shape  # The stacked cells create their own variables.

  def call(self, inputs, state):
    """Feeds each cell's output to the next; returns the last output."""
    offset, new_states, current = 0, [], inputs
    for k, cell in enumerate(self._cells):
      with tf.compat.v1.variable_scope(f'cell_{k}'):
        if self._state_is_tuple:
          cell_state = state[k]
        else:
          cell_state = tf.slice(state, [0, offset], [-1, cell.state_size])
          offset += cell.state_size
        current, new_state = cell(current, cell_state)
        new_states.append(new_state)
    if self._state_is_tuple:
      return current, tuple(new_states)
    return current, tf.concat(new_states, 1)
