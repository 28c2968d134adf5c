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

from model_pruning.python import gradient_pruning
from model_pruning.python import graph_keys
from model_pruning.python import group_pruning
from model_pruning.python import masked_weights
from model_pruning.python import pruning_spec
from model_pruning.python import pruning_utils
from model_pruning.python import saliency_masks
# Upstream's names, re-exported from this module (the upstream import path).
# pylint: disable=unused-import
from model_pruning.python.graph_keys import MASK_COLLECTION
from model_pruning.python.graph_keys import MASKED_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import MASKED_WEIGHT_NAME
from model_pruning.python.graph_keys import OLD_OLD_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import OLD_WEIGHT_COLLECTION
from model_pruning.python.graph_keys import THRESHOLD_COLLECTION
from model_pruning.python.graph_keys import UNGROUPED_GROUP_NAME
from model_pruning.python.graph_keys import WEIGHT_COLLECTION
from model_pruning.python.graph_keys import WEIGHT_GRADIENT_COLLECTION
from model_pruning.python.graph_keys import attach_group_suffix
from model_pruning.python.graph_keys import add_to_pruning_collections
from model_pruning.python.masked_weights import apply_mask
from model_pruning.python.masked_weights import apply_mask_and_return
from model_pruning.python.masked_weights import apply_mask_with_group
from model_pruning.python.masked_weights import get_gradients
from model_pruning.python.masked_weights import get_masked_weights
from model_pruning.python.masked_weights import get_masks
from model_pruning.python.masked_weights import get_old_old_weights
from model_pruning.python.masked_weights import get_old_weights
from model_pruning.python.masked_weights import get_thresholds
from model_pruning.python.masked_weights import get_weight_sparsity
from model_pruning.python.masked_weights import get_weights
from model_pruning.python.masked_weights import GRADIENT_PRUNE_OPTIONS
from model_pruning.python.masked_weights import weight_name
# pylint: enable=unused-import

# Graph collection holding each Pruning object's hparams as a JSON string
# constant, so tools that only see a checkpoint can recover the schedule.
HPARAMS_COLLECTION = 'pruning_hparams'


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


def get_pruning_hparams():
  """Returns a fresh HParams with every pruning hparam at its default."""
  return pruning_spec.default_hparams()


class Pruning(gradient_pruning.GradientPruningMixin,
              group_pruning.GroupPruningMixin):
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
    name = masked_weights.mask_op_name(mask)
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
    masks = masked_weights.get_masks(group_name)
    thresholds = masked_weights.get_thresholds(group_name)
    weights = masked_weights.get_weights(group_name)
    if len(masks) != len(thresholds):
      raise ValueError('Number of masks %s and number of thresholds %s '
                       'mismatch' % (len(masks), len(thresholds)))
    if len(weights) != len(masks):
      raise ValueError('Number of weights %s and number of masks %s mismatch'
                       % (len(weights), len(masks)))
    gradients = masked_weights.get_gradients(group_name) if self.use_gradient() else []
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
    if masked_weights.is_partitioned(mask):
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
      weight_tensor = masked_weights.read_in_order(weight)
      gradient_tensor = (masked_weights.read_in_order(gradient) if gradient is not None
                         else None)
      new_threshold, new_mask = self._maybe_update_block_mask(
          weight_tensor, threshold, gradient_tensor, masked_weights.weight_name(weight))
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
        mask_name = masked_weights.mask_op_name(mask)
        tf.compat.v1.summary.scalar(mask_name + '/sparsity',
                                    tf.nn.zero_fraction(masked_weights.as_tensor(mask)))
        tf.compat.v1.summary.scalar(mask_name + '/target_sparsity',
                                    self._get_sparsity(masked_weights.weight_name(weight)))
        tf.compat.v1.summary.scalar(threshold.op.name + '/threshold',
                                    threshold)
        if gradient is not None:
          gradient_tensor = masked_weights.as_tensor(gradient)
          gradient_name = masked_weights.weight_name(gradient)
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
