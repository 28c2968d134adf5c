"""Graph plumbing for magnitude pruning: apply_mask, getters and `Pruning`.

Typical use (the contrib way)::

  with tf.compat.v1.variable_scope('conv1') as scope:
    kernel = tf.compat.v1.get_variable('weights', [5, 5, 3, 64])
    conv = tf.nn.conv2d(images, pruning.apply_mask(kernel, scope), ...)
  hparams = pruning.get_pruning_hparams().parse('target_sparsity=0.9')
  p = pruning.Pruning(hparams, global_step=global_step)
  mask_update_op = p.conditional_mask_update_op()   # run after every step

`apply_mask` adds a `mask` and a `threshold` variable next to the weight and
registers them in index-aligned graph collections; `Pruning` reads those
collections and builds the ops that recompute every mask from the current
weight magnitudes and the sparsity schedule (SPEC 2.2-2.4).
"""
import contextlib

from absl import logging
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python import pruning_spec
from model_pruning.python import pruning_utils
from model_pruning.python import saliency_masks
from model_pruning.python.graph_keys import MASK_COLLECTION  # pylint: disable=unused-import
from model_pruning.python.graph_keys import MASKED_WEIGHT_COLLECTION  # pylint: disable=unused-import
from model_pruning.python.graph_keys import MASKED_WEIGHT_NAME
from model_pruning.python.graph_keys import OLD_OLD_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import OLD_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import THRESHOLD_COLLECTION
from model_pruning.python.graph_keys import UNGROUPED_GROUP_NAME
from model_pruning.python.graph_keys import WEIGHT_COLLECTION
from model_pruning.python.graph_keys import WEIGHT_GRADIENT_COLLECTION
from model_pruning.python.graph_keys import attach_group_suffix  # pylint: disable=unused-import
from model_pruning.python.graph_keys import add_to_pruning_collections  # pylint: disable=unused-import

GRADIENT_PRUNE_OPTIONS = ('first_order_gradient', 'second_order_gradient')
# Graph collection holding each Pruning object's hparams as a JSON string
# constant, so tools that only see a checkpoint can recover the schedule.
HPARAMS_COLLECTION = 'pruning_hparams'
_MAX_PRUNABLE_SIZE = 2**31 - 1


def _is_partitioned(x):
  """True for a PartitionedVariable (not exported by tf.compat.v1 in 2.21)."""
  return hasattr(x, 'as_tensor') and hasattr(x, '_get_variable_list')


def _as_tensor(x):
  return x.as_tensor() if _is_partitioned(x) else x


def _read_in_order(x):
  """Reads `x` inside the current control-dependency context.

  `PartitionedVariable.as_tensor()` drops control dependencies, which would let
  the reads race with the gradient and old-weight assigns that must precede
  them (fix Q12); this concatenates freshly read partitions instead.
  """
  if not _is_partitioned(x):
    return x
  parts = list(x)
  axis = (0 if len(parts) == 1 else
          pruning_utils.determine_partitioned_axis(x))
  return tf.concat([part.read_value() for part in parts], axis=axis)


def weight_name(x):
  """The name map regexes are matched against: the weight's own op name."""
  if _is_partitioned(x):
    return x.name
  return x.op.name


def _check_prunable(x):
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


def _apply_mask(x, scope, prune_option, group_name):
  """Creates (or reuses) the pruning variables of `x`; returns (masked, mask)."""
  _check_prunable(x)
  mask = pruning_utils.weight_mask_variable(x, scope)
  threshold = pruning_utils.weight_threshold_variable(x, scope)
  gradient = old_weight = old_old_weight = None
  if prune_option in GRADIENT_PRUNE_OPTIONS:
    gradient = pruning_utils.weight_gradient_variable(x, scope)
    old_weight = pruning_utils.old_weight_variable(x, scope)
    old_old_weight = pruning_utils.old_old_weight_variable(x, scope)
  masked = tf.multiply(_as_tensor(mask), _as_tensor(x), name=MASKED_WEIGHT_NAME)
  graph_keys.register_pruned_weight(mask, threshold, x, masked, gradient,
                                    old_weight, old_old_weight, group_name)
  return masked, mask


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
  return [tf.nn.zero_fraction(_as_tensor(mask)) for mask in get_masks()]


def get_pruning_hparams():
  """Returns a fresh HParams with every pruning hparam at its default."""
  return pruning_spec.default_hparams()


def _assign_variable(var, value):
  """Assigns `value` to a plain or a partitioned variable (piece by piece)."""
  if _is_partitioned(var):
    return pruning_utils.partitioned_variable_assign(var, value)
  return pruning_utils.variable_assign(var, value)


def _last_update_step(spec):
  """Step of the last mask update when the conditional op runs every step.

  last_mask_update_step starts at 0, so updates come at max(b, f), then every
  f steps while t <= end_pruning_step. None without an end or an update.
  """
  end, frequency = spec.end_pruning_step, spec.pruning_frequency
  first = max(spec.begin_pruning_step, frequency)
  if end < 0 or first > end:
    return None
  return first + (end - first) // frequency * frequency


def _mask_op_name(mask):
  if _is_partitioned(mask):
    return mask.name
  return mask.op.name


class Pruning(object):
  """Builds the ops that recompute masks along the sparsity schedule."""

  def __init__(self, spec=None, global_step=None, sparsity=None):
    """Validates the hparams and builds the schedule.

    Args:
      spec: HParams from `get_pruning_hparams()` (maybe `.parse`d), a dict of
        overrides, or None for the defaults. Missing hparams take defaults.
      global_step: the step tensor or variable; default the graph's.
      sparsity: optional scalar tensor that replaces the schedule.

    Raises:
      ValueError: bad hparams (named, with the allowed values), or no global
        step.
    """
    self._spec = self._as_spec(spec)
    pruning_spec.validate_spec(self._spec)
    self.matrix_compression_spec = self._spec
    self._parse_maps()
    self._warn_about_schedule()
    self._global_step_source = self._find_global_step(global_step)
    self._global_step = tf.cast(self._global_step_source, tf.int32)
    with tf.compat.v1.name_scope(self._spec.name) as name_scope:
      self._name_scope = name_scope
      self._progress = self._schedule_progress()
      self._sparsity = self._setup_sparsity(sparsity)
      self._hparams_json = tf.constant(self._spec.to_json(),
                                       name='hparams_json')
    tf.compat.v1.add_to_collection(HPARAMS_COLLECTION, self._hparams_json)
    self._external_sparsity = sparsity is not None
    self._external_sparsity_source = sparsity
    self._assign_ops = []
    self._last_update_step = self._setup_step_variable(
        graph_keys.LAST_MASK_UPDATE_STEP_NAME)
    self._last_gradient_update_step = (
        self._setup_step_variable(graph_keys.LAST_GRADIENT_UPDATE_STEP_NAME)
        if self.use_gradient() else None)
    self._block_dims = [self._spec.block_height, self._spec.block_width]
    self._block_pooling_function = self._spec.block_pooling_function
    self.print_hparams()

  # Construction helpers -----------------------------------------------------

  @staticmethod
  def _as_spec(spec):
    if spec is None:
      return get_pruning_hparams()
    if isinstance(spec, dict):
      return get_pruning_hparams().override_from_dict(spec)
    defaults = get_pruning_hparams().values()
    if all(name in spec for name in defaults):
      return spec
    return pruning_spec.normalize_spec(spec)

  def _parse_maps(self):
    spec = self._spec
    self._weight_sparsity_map = pruning_spec.parse_sparsity_map(
        spec.weight_sparsity_map)
    self._block_dims_map = pruning_spec.parse_block_dims_map(
        spec.block_dims_map)
    self._m_by_n_map = pruning_spec.parse_m_by_n_map(spec.m_by_n_map)
    self._m_by_n = (pruning_spec.parse_m_by_n(spec.sparsity_m_by_n)
                    if spec.sparsity_m_by_n else None)
    self._do_not_prune = pruning_spec.do_not_prune_patterns(spec)
    self._group_sparsity_map = pruning_spec.parse_group_map(
        spec.group_sparsity_map, self._parse_group_sparsity,
        'group_sparsity_map')
    self._group_block_dims_map = pruning_spec.parse_group_map(
        spec.group_block_dims_map,
        lambda text, entry: pruning_spec.parse_block_dims(
            text, 'group_block_dims_map', entry), 'group_block_dims_map')
    if self._weight_sparsity_map and spec.target_sparsity == 0.0:
      raise ValueError(
          'weight_sparsity_map needs target_sparsity > 0: per-weight targets '
          'are scaled against it. Set target_sparsity to the default target.')

  @staticmethod
  def _parse_group_sparsity(text, entry):
    try:
      value = float(text)
    except ValueError:
      raise ValueError('Sparsity in group_sparsity_map entry %r must be a '
                       'number' % entry) from None
    if not 0.0 <= value < 1.0:
      raise ValueError('Weight sparsity can not exceed 1.0: group_sparsity_map '
                       'entry %r must be in [0, 1)' % entry)
    return value

  def _warn_about_schedule(self):
    """Logs the schedules that can never do what they seem to ask."""
    spec = self._spec
    end = spec.end_pruning_step
    if 0 <= end < spec.sparsity_function_end_step:
      logging.warning(
          'end_pruning_step=%d comes before sparsity_function_end_step=%d: '
          'masks stop updating before the schedule reaches target_sparsity=%g.',
          end, spec.sparsity_function_end_step, spec.target_sparsity)
    last = _last_update_step(spec)
    if (last is not None and end >= spec.sparsity_function_end_step and
        last < spec.sparsity_function_end_step):
      logging.warning(
          'The last mask update (step %d: every pruning_frequency=%d steps '
          'up to end_pruning_step=%d) comes before sparsity_function_end_step'
          '=%d: masks never reach target_sparsity=%g. Lower the frequency or '
          'move end_pruning_step.', last, spec.pruning_frequency, end,
          spec.sparsity_function_end_step, spec.target_sparsity)
    if end >= 0 and end - spec.begin_pruning_step < spec.pruning_frequency:
      logging.warning(
          'pruning_frequency=%d is longer than the pruning window [%d, %d]: '
          'the masks are updated at most once.', spec.pruning_frequency,
          spec.begin_pruning_step, end)
    window = spec.sparsity_function_end_step - spec.sparsity_function_begin_step
    if spec.pruning_frequency > window:
      logging.warning(
          'pruning_frequency=%d is longer than the sparsity schedule (%d '
          'steps): the schedule is sampled at most once before its end.',
          spec.pruning_frequency, window)

  @staticmethod
  def _find_global_step(global_step):
    if global_step is None:
      global_step = tf.compat.v1.train.get_global_step()
    if global_step is None:
      raise ValueError(
          'Could not get the global step: create one with '
          'tf.compat.v1.train.get_or_create_global_step() or pass '
          'Pruning(global_step=...).')
    return global_step

  @contextlib.contextmanager
  def _fresh_step(self):
    """Rebuilds step, progress and sparsity from reads made in this context.

    Update ops built under `tf.control_dependencies([train_op])` then see the
    step and weights as the train op left them, so the update can run in the
    same `session.run` as training.
    """
    saved = (self._global_step, self._progress, self._sparsity)
    try:
      step = self._global_step_source
      if hasattr(step, 'read_value'):
        step = step.read_value()
      self._global_step = tf.cast(step, tf.int32)
      self._progress = self._schedule_progress()
      if self._external_sparsity:
        external = self._external_sparsity_source
        self._sparsity = tf.convert_to_tensor(
            external.read_value() if hasattr(external, 'read_value')
            else external)
      else:
        self._sparsity = self._polynomial(self._spec.target_sparsity)
      yield
    finally:
      self._global_step, self._progress, self._sparsity = saved

  def _schedule_progress(self):
    spec = self._spec
    begin = spec.sparsity_function_begin_step
    end = spec.sparsity_function_end_step
    progress = tf.cast(self._global_step - begin, tf.float32) / float(
        end - begin)
    return tf.clip_by_value(progress, 0.0, 1.0, name='schedule_progress')

  def _polynomial(self, target, name=None):
    """s = target + (s_i - target) * (1 - p) ** e, a float32 scalar."""
    spec = self._spec
    return tf.add(
        float(target),
        (float(spec.initial_sparsity) - float(target)) *
        tf.pow(1.0 - self._progress, float(spec.sparsity_function_exponent)),
        name=name)

  def _setup_sparsity(self, sparsity):
    if sparsity is not None:
      return tf.convert_to_tensor(sparsity)
    return self._polynomial(self._spec.target_sparsity, name='sparsity')

  def _setup_step_variable(self, name):
    with tf.compat.v1.variable_scope(self._spec.name,
                                     reuse=tf.compat.v1.AUTO_REUSE):
      return tf.compat.v1.get_variable(
          name, shape=[], dtype=tf.int32,
          initializer=tf.compat.v1.zeros_initializer(), trainable=False,
          use_resource=True)

  # Lookups ------------------------------------------------------------------

  def _get_sparsity(self, weight_name_):
    """The sparsity tensor for one weight (map entry or global schedule)."""
    target = pruning_spec.lookup_map(self._weight_sparsity_map, weight_name_,
                                     'weight_sparsity_map')
    if target is None:
      return self._sparsity
    if self._external_sparsity:
      return self._sparsity * (target / self._spec.target_sparsity)
    with tf.compat.v1.name_scope(self._name_scope):
      return self._polynomial(target)

  def _get_block_dims(self, weight_name_):
    """Block dims for one weight, as a fresh list (fix Q9)."""
    dims = pruning_spec.lookup_map(self._block_dims_map, weight_name_,
                                   'block_dims_map')
    return list(dims if dims is not None else self._block_dims)

  def _get_m_by_n(self, weight_name_):
    pattern = pruning_spec.lookup_map(self._m_by_n_map, weight_name_,
                                      'm_by_n_map')
    return pattern if pattern is not None else self._m_by_n

  def _is_excluded(self, mask):
    name = _mask_op_name(mask)
    return any(regex.search(name) for regex in self._do_not_prune)

  def _method(self):
    return saliency_masks.ThresholdMethod(
        name=self._spec.threshold_method, nbins=self._spec.nbins,
        decay=self._spec.threshold_decay,
        seed=None if self._spec.seed < 0 else self._spec.seed,
        step=self._global_step)

  # Mask computation -----------------------------------------------------------

  def _update_mask(self, weights, threshold, gradients=None, weight_name_=None):
    """Element-wise (threshold, mask) for one tensor (SPEC 2.4.7)."""
    if self._sparsity is None:
      raise ValueError('Sparsity variable undefined')
    name = weight_name_ or weights.op.name
    with tf.compat.v1.name_scope(name + '_pruning_ops'):
      saliency = saliency_masks.saliency(weights, gradients,
                                         self.use_gradient())
      return saliency_masks.elementwise_mask(
          saliency, self._get_sparsity(name), threshold, self._method())

  def _maybe_update_block_mask(self, weights, threshold, gradients=None,
                               weight_name_=None):
    """(threshold, mask) for one weight, by blocks where configured (2.4.8)."""
    name = weight_name_ or weights.op.name
    m_by_n = self._get_m_by_n(name)
    if m_by_n is not None:
      return self._m_by_n_mask(weights, threshold, m_by_n, gradients, name)
    block_dims = self._get_block_dims(name)
    squeezed_shape = [d for d in weights.get_shape().as_list() if d != 1]
    if len(squeezed_shape) != 2 or block_dims == [1, 1]:
      return self._update_mask(weights, threshold, gradients, name)
    if self.use_gradient() and gradients is None:
      raise ValueError('Gradient based pruning needs the gradient tensor for '
                       'block sparsity of %s.' % name)
    with tf.compat.v1.name_scope(name + '_pruning_ops'):
      return saliency_masks.block_mask(
          weights, gradients if self.use_gradient() else None, block_dims,
          self._block_pooling_function, self._spec.use_tpu,
          self._get_sparsity(name), threshold, self._method())

  def _m_by_n_mask(self, weights, threshold, m_by_n, gradients, name):
    # The part of the schedule done is measured against the weight's own
    # target (its weight_sparsity_map entry), so it too ends exactly M:N.
    target = pruning_spec.lookup_map(self._weight_sparsity_map, name,
                                     'weight_sparsity_map')
    with tf.compat.v1.name_scope(name + '_pruning_ops'):
      saliency = saliency_masks.saliency(weights, gradients,
                                         self.use_gradient())
      return saliency_masks.m_by_n_mask(
          saliency, m_by_n, self._get_sparsity(name),
          self._spec.target_sparsity if target is None else target, name,
          fallback=lambda: saliency_masks.elementwise_mask(
              saliency, self._get_sparsity(name), threshold, self._method()))

  # Update ops ---------------------------------------------------------------

  def _pruned_weights(self, group_name=None):
    masks = get_masks(group_name)
    thresholds = get_thresholds(group_name)
    weights = get_weights(group_name)
    if len(masks) != len(thresholds):
      raise ValueError('Number of masks %s and number of thresholds %s '
                       'mismatch' % (len(masks), len(thresholds)))
    if len(weights) != len(masks):
      raise ValueError('Number of weights %s and number of masks %s mismatch'
                       % (len(weights), len(masks)))
    gradients = get_gradients(group_name) if self.use_gradient() else []
    if self.use_gradient() and len(gradients) != len(masks):
      raise ValueError(
          'prune_option=%s needs a gradient variable for every weight: %d '
          'gradients for %d masks. Create the masks with apply_mask(..., '
          'prune_option=%r).' % (self._spec.prune_option, len(gradients),
                                 len(masks), self._spec.prune_option))
    return [(mask, threshold, weight,
             gradients[i] if gradients else None)
            for i, (mask, threshold, weight) in enumerate(
                zip(masks, thresholds, weights))]

  def _assign_mask(self, mask, threshold, new_threshold, new_mask):
    ops = [pruning_utils.variable_assign(
        threshold, tf.cast(new_threshold, threshold.dtype))]
    new_mask = tf.cast(new_mask, mask.dtype)
    if _is_partitioned(mask):
      ops.append(pruning_utils.partitioned_variable_assign(mask, new_mask))
    else:
      ops.append(pruning_utils.variable_assign(mask, new_mask))
    return ops

  def _get_mask_assign_ops(self, skip=()):
    """Assign ops for every registered weight not in `skip` (by mask id)."""
    assign_ops = []
    for mask, threshold, weight, gradient in self._pruned_weights():
      if id(mask) in skip or self._is_excluded(mask):
        continue
      weight_tensor = _read_in_order(weight)
      gradient_tensor = (_read_in_order(gradient) if gradient is not None
                         else None)
      new_threshold, new_mask = self._maybe_update_block_mask(
          weight_tensor, threshold, gradient_tensor, weight_name(weight))
      assign_ops.extend(
          self._assign_mask(mask, threshold, new_threshold, new_mask))
    return assign_ops

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
    name = weight_name(weight)
    if self._get_m_by_n(name) is None:
      return False
    logging.warning('%s has an N:M pattern (sparsity_m_by_n or m_by_n_map): '
                    'it is pruned N:M on its own, outside group %s\'s joint '
                    'threshold.', name, group)
    return True

  def _pruned_weights_of_group(self, group):
    masks = get_masks(group)
    thresholds = get_thresholds(group)
    weights = get_weights(group)
    if not len(masks) == len(thresholds) == len(weights):
      raise ValueError('Group %s: number of masks %d, thresholds %d and '
                       'weights %d mismatch' % (group, len(masks),
                                                len(thresholds), len(weights)))
    gradients = get_gradients(group) if self.use_gradient() else []
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
          [_read_in_order(w) for _, _, w, _ in members],
          [None if g is None else _read_in_order(g) for _, _, _, g in members],
          block_dims, self._block_pooling_function, self._spec.use_tpu,
          sparsity, self._method(), previous_threshold=previous_threshold)
    assign_ops = []
    for (mask, threshold, _, _), new_mask in zip(members, new_masks):
      assign_ops.extend(
          self._assign_mask(mask, threshold, new_threshold, new_mask))
    return assign_ops

  def mask_update_op(self):
    """An op that recomputes every mask now, whatever the step (2.4.11).

    May be called any number of times, also inside `tf.cond`: each call
    builds its own ops from the collections as they are now.
    """
    with tf.compat.v1.name_scope(self._name_scope), self._fresh_step():
      prerequisites = self._gradient_chain()
      with tf.control_dependencies(prerequisites):
        if self._spec.group_pruning:
          self._assign_ops = self._get_group_mask_assign_ops()
        else:
          self._assign_ops = self._get_mask_assign_ops()
        step_assign = tf.compat.v1.assign(
            self._last_update_step, self._global_step,
            name='last_mask_update_step_assign')
      logging.info('Updating masks.')
      return tf.group(*(self._assign_ops + [step_assign]),
                      name='mask_update')

  def conditional_mask_update_op(self):
    """Updates the masks when the step is due (SPEC 2.4.12).

    pred = (t >= begin) and (t <= end or end < 0) and (last + freq <= t)
    """
    spec = self._spec
    with tf.compat.v1.name_scope(self._name_scope), self._fresh_step():
      step = self._global_step
      in_window = tf.logical_and(
          tf.greater_equal(step, spec.begin_pruning_step),
          tf.logical_or(tf.less_equal(step, spec.end_pruning_step),
                        tf.less(spec.end_pruning_step, 0)))
      is_due = tf.less_equal(
          tf.add(self._last_update_step.read_value(), spec.pruning_frequency),
          step)
      return tf.compat.v1.cond(
          tf.logical_and(in_window, is_due, name='is_mask_update_step'),
          self.mask_update_op, tf.no_op, name='conditional_mask_update')

  # Gradient-based pruning (google-research) ------------------------------------

  def use_gradient(self):
    return self._spec.prune_option in GRADIENT_PRUNE_OPTIONS

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
    weights = get_weights()
    olds = self._paired(weights, get_old_weights(), 'old_weights')
    grads = self._paired(weights, get_gradients(), 'gradients')
    old_olds = (self._paired(weights, get_old_old_weights(), 'old_old_weights')
                if second_order else [(w, None) for w in weights])
    assigns = []
    for (weight, old), (_, grad), (_, old_old) in zip(olds, grads, old_olds):
      for other, what in ((old, 'old_weight'), (grad, 'gradient')):
        if weight.get_shape() != other.get_shape():
          raise ValueError('weight tensor has different shape from %s: %s vs '
                           '%s' % (what, weight.get_shape(), other.get_shape()))
      assigns.append(_assign_variable(
          grad, saliency_masks.decayed_gradient(
              _read_in_order(weight), _read_in_order(old),
              None if old_old is None else _read_in_order(old_old),
              _read_in_order(grad), rate)))
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
    return [_assign_variable(target, _read_in_order(source))
            for source, target in self._paired(sources, targets, what)]

  def old_weight_update_op(self):
    """old_weight <- weight for every pruned weight."""
    if not self.use_gradient():
      return tf.no_op('gradient_update_no_op')
    with tf.compat.v1.name_scope(self._name_scope):
      return tf.group(*self._snapshot_assigns(
          get_weights(), get_old_weights(), 'old_weights'),
                      name='old_weight_update')

  def old_old_weight_update_op(self):
    """old_old_weight <- old_weight (second order only)."""
    if self._spec.prune_option != 'second_order_gradient':
      return tf.no_op('gradient_update_no_op')
    with tf.compat.v1.name_scope(self._name_scope):
      return tf.group(*self._snapshot_assigns(
          get_old_weights(), get_old_old_weights(), 'old_old_weights'),
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

  # Misc -----------------------------------------------------------------------

  def add_pruning_summaries(self):
    """Scalar summaries: schedule, last update, and per weight (fix Q15).

    Per weight: `<mask>/sparsity` (achieved), `<mask>/target_sparsity`
    (scheduled), `<threshold>/threshold`; with a gradient option also the
    gradient's norm, sparsity and histogram.
    """
    with tf.compat.v1.name_scope(self._spec.name + '_summaries'):
      tf.compat.v1.summary.scalar('sparsity', self._sparsity)
      tf.compat.v1.summary.scalar('last_mask_update_step',
                                  self._last_update_step)
      if self.use_gradient():
        tf.compat.v1.summary.scalar('last_gradient_update_step',
                                    self._last_gradient_update_step)
      for mask, threshold, weight, gradient in self._pruned_weights():
        mask_name = _mask_op_name(mask)
        tf.compat.v1.summary.scalar(mask_name + '/sparsity',
                                    tf.nn.zero_fraction(_as_tensor(mask)))
        tf.compat.v1.summary.scalar(mask_name + '/target_sparsity',
                                    self._get_sparsity(weight_name(weight)))
        tf.compat.v1.summary.scalar(threshold.op.name + '/threshold',
                                    threshold)
        if gradient is not None:
          gradient_tensor = _as_tensor(gradient)
          gradient_name = weight_name(gradient)
          tf.compat.v1.summary.scalar(gradient_name + '/gradient',
                                      tf.norm(gradient_tensor))
          tf.compat.v1.summary.scalar(gradient_name + '/gradient-sparsity',
                                      tf.nn.zero_fraction(gradient_tensor))
          tf.compat.v1.summary.histogram(gradient_name + '/abs.gradient',
                                         tf.abs(gradient_tensor))

  def print_hparams(self):
    logging.info('Pruning hparams: %s', self._spec.to_json())

  def apply_mask(self, x, scope=''):
    """Module `apply_mask` with this spec's prune_option (google-research)."""
    return apply_mask(x, scope, self._spec.prune_option)

  def get_spec(self):
    return self._spec

  def run_update_step(self, session, global_step=None):
    """Runs the conditional mask update in `session` (for ModelPruningHook).

    The op is built on first use; later calls reuse it.
    """
    del global_step  # The graph reads the step itself.
    if getattr(self, '_run_update_op', None) is None:
      self._run_update_op = self.conditional_mask_update_op()
    session.run(self._run_update_op)
