"""Graph plumbing for magnitude pruning: apply_mask, getters and `Pruning`.

Typical use (the contrib way)::

  with tf.compat.v1.variable_scope('conv1') as scope:
    kernel = tf.compat.v1.get_variable('weights', [5, 5, 3, 64])
    conv = tf.nn.conv2d(images, pruning.apply_mask(kernel, scope), ...)
  hparams = pruning.get_pruning_hparams().parse('target_sparsity=0.9')
  p = pruning.Pruning(hparams, global_step=global_step)
  mask_update_op = p.conditional_mask_update_op()   # run after every step

`apply_mask` adds a `mask` and a `threshold` variable next to the weight and
registers them in index-aligned graph collections. `Pruning` turns the
hparams into a `Schedule` and a `PruningPlan`, resolves each registered weight
once into a `WeightRecord`, and builds the ops that recompute every mask from
the current weight magnitudes at an explicit global step.
"""
from absl import logging
import tensorflow as tf

from model_pruning.python import gradient_pruning
from model_pruning.python import graph_keys
from model_pruning.python import group_pruning
from model_pruning.python import mask_updates
from model_pruning.python import pruning_schedule
from model_pruning.python import pruning_spec
from model_pruning.python import pruning_variables
from model_pruning.python import saliency_masks
from model_pruning.python import weight_records
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
from model_pruning.python.graph_keys import HPARAMS_COLLECTION
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
from model_pruning.python.pruning_variables import GRADIENT_PRUNE_OPTIONS
from model_pruning.python.pruning_variables import weight_name
# pylint: enable=unused-import



def get_pruning_hparams():
  """Returns a fresh HParams with every pruning hparam at its default."""
  return pruning_spec.default_hparams()


def _read_now(value):
  """A read of a variable made here (after the current control inputs)."""
  return value.read_value() if hasattr(value, 'read_value') else value


class Pruning:
  """Builds the ops that recompute masks along the sparsity schedule."""

  def __init__(self, spec=None, global_step=None, sparsity=None):
    """Validates the hparams, builds the schedule and the weight records.

    Args:
      spec: HParams from `get_pruning_hparams()` (maybe `.parse`d), a dict of
        overrides, or None for the defaults. Missing hparams take defaults.
      global_step: the step tensor or variable; default the graph's.
      sparsity: optional scalar tensor that replaces the schedule.

    Raises:
      ValueError: bad hparams (named, with the allowed values), or no global
        step.
    """
    self._spec = pruning_spec.as_full_spec(spec)
    pruning_spec.validate_spec(self._spec)
    self.matrix_compression_spec = self._spec
    self._plan = pruning_spec.PruningPlan(self._spec)
    self._schedule = pruning_schedule.Schedule.from_hparams(self._spec)
    for message in self._schedule.warnings(self._spec.threshold_decay,
                                           self._spec.threshold_method):
      logging.warning('%s', message)
    self._global_step = self._find_global_step(global_step)
    self._external_sparsity = sparsity
    with tf.compat.v1.name_scope(self._spec.name) as name_scope:
      self._name_scope = name_scope
      self._sparsity = self._sparsity_at(self._step_tensor(self._global_step),
                                         name='sparsity')
      hparams_json = tf.constant(self._spec.to_json(),
                                 name=graph_keys.HPARAMS_JSON_NAME)
    tf.compat.v1.add_to_collection(HPARAMS_COLLECTION, hparams_json)
    self._last_update_step = self._step_variable(
        graph_keys.LAST_MASK_UPDATE_STEP_NAME)
    self._last_gradient_update_step = (
        self._step_variable(graph_keys.LAST_GRADIENT_UPDATE_STEP_NAME)
        if self.use_gradient() else None)
    self._records = weight_records.resolve(self._plan,
                                           self._plan.listed_groups())
    self._run_update_op = None
    self._report_tensors = {}
    self.print_hparams()

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

  @staticmethod
  def _step_tensor(step):
    return tf.cast(step, tf.int32)

  def _step_variable(self, name):
    with tf.compat.v1.variable_scope(self._spec.name,
                                     reuse=tf.compat.v1.AUTO_REUSE):
      return tf.compat.v1.get_variable(
          name, shape=[], dtype=tf.int32,
          initializer=tf.compat.v1.zeros_initializer(), trainable=False,
          use_resource=True)

  # The schedule at an explicit step -----------------------------------------

  def _sparsity_at(self, step, target=None, name=None):
    """Scheduled sparsity tensor at `step` for a weight's own `target`.

    With an external sparsity tensor s, a weight or group with its own
    target tau follows s * tau / target_sparsity.
    """
    if self._external_sparsity is None:
      return self._schedule.sparsity_tensor(step, target, name=name)
    external = tf.convert_to_tensor(_read_now(self._external_sparsity))
    if target is None:
      return external
    if self._spec.target_sparsity == 0.0:
      raise ValueError(
          'A per-weight or group_sparsity_map target with an external '
          'sparsity tensor needs target_sparsity > 0: the target %g is '
          'scaled by sparsity / target_sparsity. Set target_sparsity to the '
          'value the sparsity tensor ends at.' % target)
    return external * (target / self._spec.target_sparsity)

  def _context(self, step, previous_step=None):
    """The UpdateContext of one update built at `step`.

    `previous_step`: the step of the last update (the thresholds' sparsity
    then guides the warm start); unused with an external sparsity tensor,
    whose past values are unknown.
    """
    now, before = {}, {}

    def cached(cache, at, target):
      if target not in cache:
        cache[target] = self._sparsity_at(at, target)
      return cache[target]

    def sparsity_for(target):
      return cached(now, step, target)

    def previous_sparsity_for(target):
      return cached(before, previous_step, target)

    spec = self._spec
    method = saliency_masks.ThresholdMethod(
        name=spec.threshold_method, nbins=spec.nbins,
        decay=spec.threshold_decay, seed=None if spec.seed < 0 else spec.seed,
        step=step)
    known_past = previous_step is not None and self._external_sparsity is None
    return mask_updates.UpdateContext(
        step=step, sparsity_for=sparsity_for, method=method,
        use_gradient=self.use_gradient(), spec=spec,
        previous_sparsity_for=previous_sparsity_for if known_past else None)

  def _update_inputs(self):
    """Every variable (partitions apart) or tensor an update reads or sets."""
    values = [self._global_step, self._last_update_step,
              self._last_gradient_update_step, self._external_sparsity]
    for record in self.records():
      values += [record.mask, record.threshold, record.weight,
                 record.gradient, record.old_weight, record.old_old_weight]
    parts = []
    for value in values:
      if pruning_variables.is_partitioned(value):
        parts.extend(value)
      elif value is not None:
        parts.append(value)
    return parts

  def records(self):
    """The WeightRecords, with weights registered since construction added."""
    self._records += weight_records.resolve(
        self._plan, self._plan.listed_groups(), known=self._records)
    return list(self._records)

  # Update ops -----------------------------------------------------------------

  def _mask_assign_ops(self, records, context):
    if self._spec.group_pruning:
      groups, alone = group_pruning.split_by_group(records, self._plan)
    else:
      groups, alone = {}, records
    assign_ops = []
    for group, members in groups.items():
      assign_ops.extend(group_pruning.group_assign_ops(group, members,
                                                       self._plan, context))
    for record in alone:
      if not record.settings.excluded:
        assign_ops.extend(mask_updates.record_assign_ops(record, context))
    return assign_ops

  def mask_update_op(self):
    """An op that recomputes every mask now, whatever the step.

    May be called any number of times, also inside `tf.cond` or under
    `tf.control_dependencies([train_op])`: each call reads the step, the
    weights and the external sparsity afresh inside its own context.
    """
    with tf.compat.v1.name_scope(self._name_scope):
      step = self._step_tensor(_read_now(self._global_step))
      records = self.records()
      chain = gradient_pruning.update_chain(
          records, self._spec, step, self._last_gradient_update_step)
      with tf.control_dependencies(chain):
        previous_step = self._last_update_step.read_value()
        assign_ops = self._mask_assign_ops(
            records, self._context(step, previous_step))
      # After the masks: their warm start read the previous update's step.
      with tf.control_dependencies(chain + assign_ops):
        step_assign = tf.compat.v1.assign(
            self._last_update_step, step,
            name='last_mask_update_step_assign')
      logging.info('Updating masks.')
      update = tf.group(*(assign_ops + [step_assign]), name='mask_update')
    self.sparsity_tensors()
    return update

  def conditional_mask_update_op(self):
    """Updates the masks when the step is due (`Schedule.is_update_step`)."""
    self.sparsity_tensors()
    with tf.compat.v1.name_scope(self._name_scope):
      step = self._step_tensor(_read_now(self._global_step))
      is_due = self._schedule.is_update_step_tensor(
          step, self._last_update_step.read_value())
      return mask_updates.conditional(
          is_due, self.mask_update_op, name='conditional_mask_update',
          one_call=mask_updates.runs_in_one_call(self._update_inputs()))

  # google-research's gradient ops ---------------------------------------------

  def use_gradient(self):
    return gradient_pruning.uses_gradient(self._spec)

  def _gradient_op(self, build, name):
    if not self.use_gradient():
      return tf.no_op('gradient_update_no_op')
    with tf.compat.v1.name_scope(self._name_scope):
      return tf.group(*build(self.records()), name=name)

  def gradient_update_op(self):
    """Decays the weight-movement saliency into the `gradient` variables."""
    return self._gradient_op(
        lambda records: gradient_pruning.gradient_assigns(
            records, self._spec,
            self._step_tensor(_read_now(self._global_step)),
            self._last_gradient_update_step), 'gradient_update')

  def old_weight_update_op(self):
    """old_weight <- weight for every pruned weight."""
    return self._gradient_op(
        lambda records: gradient_pruning.snapshot_assigns(
            records, self._spec, 'weight', 'old_weight'), 'old_weight_update')

  def old_old_weight_update_op(self):
    """old_old_weight <- old_weight (second order only)."""
    if self._spec.prune_option != 'second_order_gradient':
      return tf.no_op('gradient_update_no_op')
    return self._gradient_op(
        lambda records: gradient_pruning.snapshot_assigns(
            records, self._spec, 'old_weight', 'old_old_weight'),
        'old_old_weight_update')

  def conditional_gradient_update_op(self):
    """Runs `gradient_update_op` at every step inside the pruning window."""
    with tf.compat.v1.name_scope(self._name_scope):
      step = self._step_tensor(_read_now(self._global_step))
      return mask_updates.conditional(
          self._schedule.in_window_tensor(step), self.gradient_update_op,
          name='conditional_gradient_update',
          one_call=mask_updates.runs_in_one_call(self._update_inputs()))

  # Reporting ------------------------------------------------------------------

  def sparsity_tensors(self):
    """{weight name: (scheduled, achieved)} scalar tensors, one per weight.

    Scheduled: the sparsity the schedule asks of the weight now (0 for
    do_not_prune weights); achieved: the zero fraction of its mask. Built
    once per weight and put in graph_keys' report collections, which the
    hooks and `learning.train` log.
    """
    graph = tf.compat.v1.get_default_graph()
    if getattr(graph, 'outer_graph', None) is not None:
      return dict(self._report_tensors)  # Inside a cond branch: not here.
    new_records = [record for record in self.records()
                   if record.name not in self._report_tensors]
    if not new_records:
      return dict(self._report_tensors)
    # Outside any control dependencies: fetching the report never trains.
    with tf.control_dependencies(None), graph.name_scope(None):
      step = self._step_tensor(self._global_step)
      scheduled_by_target = {}
      for record in new_records:
        target = record.settings.target
        if not record.settings.excluded and target not in scheduled_by_target:
          scheduled_by_target[target] = self._sparsity_at(step, target)
        with graph.name_scope(record.name + '/'):
          scheduled = tf.identity(
              tf.constant(0.0) if record.settings.excluded else
              scheduled_by_target[target], name='scheduled_sparsity')
          achieved = tf.identity(tf.nn.zero_fraction(
              pruning_variables.as_tensor(record.mask)),
                                 name='achieved_sparsity')
        tf.compat.v1.add_to_collection(
            graph_keys.SCHEDULED_SPARSITY_COLLECTION, scheduled)
        tf.compat.v1.add_to_collection(
            graph_keys.ACHIEVED_SPARSITY_COLLECTION, achieved)
        self._report_tensors[record.name] = (scheduled, achieved)
    return dict(self._report_tensors)

  def add_pruning_summaries(self):
    """Scalar summaries: schedule, last update, and per weight.

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
      tensors = self.sparsity_tensors()
      for record in self.records():
        scheduled, achieved = tensors[record.name]
        tf.compat.v1.summary.scalar(record.mask_name + '/sparsity', achieved)
        tf.compat.v1.summary.scalar(record.mask_name + '/target_sparsity',
                                    scheduled)
        tf.compat.v1.summary.scalar(record.threshold.op.name + '/threshold',
                                    record.threshold)
        if record.gradient is not None and self.use_gradient():
          self._gradient_summaries(record.gradient)

  @staticmethod
  def _gradient_summaries(gradient):
    tensor = pruning_variables.as_tensor(gradient)
    name = pruning_variables.weight_name(gradient)
    tf.compat.v1.summary.scalar(name + '/gradient', tf.norm(tensor))
    tf.compat.v1.summary.scalar(name + '/gradient-sparsity',
                                tf.nn.zero_fraction(tensor))
    tf.compat.v1.summary.histogram(name + '/abs.gradient', tf.abs(tensor))

  def print_hparams(self):
    logging.info('Pruning hparams: %s', self._spec.to_json())

  def apply_mask(self, x, scope=''):
    """Module `apply_mask` with this spec's prune_option (google-research)."""
    return apply_mask(x, scope, self._spec.prune_option)

  def get_spec(self):
    return self._spec

  @property
  def last_update_step(self):
    """The `last_mask_update_step` variable (shared by objects of one name)."""
    return self._last_update_step

  @property
  def schedule(self):
    """The `pruning_schedule.Schedule` of this object's hparams."""
    return self._schedule

  def run_update_step(self, session, global_step=None):
    """Runs the conditional mask update in `session` (for ModelPruningHook).

    The op is built on first use; later calls reuse it.
    """
    del global_step  # The graph reads the step itself.
    if self._run_update_op is None:
      self._run_update_op = self.conditional_mask_update_op()
    session.run(self._run_update_op)
