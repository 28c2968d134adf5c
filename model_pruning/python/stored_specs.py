"""What the pruning hparams stored in a checkpoint say about each weight.

A graph stores one hparams JSON per `Pruning` object; these helpers read a
weight's scheduled sparsity, its threshold method and its pruning group from
them, answering only where every stored spec agrees (else None: the report
cannot tell which one pruned the weight).
"""
import collections

from model_pruning.python import pruning_schedule
from model_pruning.python import pruning_spec
from model_pruning.python import shortfall


def _judged_step(spec, step, last_update_steps):
  """(schedule, masks step, pending) of a full spec in a checkpoint saved at
  `step`: the step whose sparsity its masks should hold (the last update's
  while none was missed since, else `step`: `Schedule.masks_step`), and
  whether its first update is still pending (`Schedule.first_update_pending`:
  all ones, so the targets are 0)."""
  schedule = pruning_schedule.Schedule.from_hparams(spec)
  last = (last_update_steps or {}).get(spec.name)
  return (schedule, schedule.masks_step(step, last),
          schedule.first_update_pending(step, last))


def _target_for_spec(step, hparams_dict, weight_name, last_update_steps):
  """One stored spec's target for `weight_name` at the step its masks should
  hold (0 before its first update); None if unknown."""
  try:
    spec = pruning_spec.as_full_spec(hparams_dict)
    _, at, pending = _judged_step(spec, step, last_update_steps)
    if pending:
      return 0.0
    return pruning_spec.scheduled_sparsity(at, spec, weight_name)
  except ValueError:
    return None


def target_sparsity(step, hparams_dicts, weight_name=None,
                    last_update_steps=None):
  """The sparsity the stored schedule asks of the masks, or None if unknown.

  That is the schedule at the last mask update's step while no update was
  missed since (`Schedule.masks_step`), else at the checkpoint's step; 0
  while the first update has not run and was not due before the
  checkpoint's step (`Schedule.first_update_pending`: the masks are still
  all ones).

  Args:
    step: the checkpoint's global step, or None if it has none.
    hparams_dicts: the hparams of each `Pruning` object in the graph, as
      decoded from their JSON.
    weight_name: the weight's op name (e.g. 'conv1/weights'), for
      `weight_sparsity_map` and `do_not_prune`.
    last_update_steps: {spec name: last_mask_update_step}, or None (the
      schedule is then read at `step`).

  Returns:
    A float, or None when the step or hparams are missing, or when several
    `Pruning` objects disagree about this weight (we cannot tell which one
    prunes it).
  """
  if step is None or not hparams_dicts:
    return None
  targets = {_target_for_spec(step, d, weight_name, last_update_steps)
             for d in hparams_dicts}
  if len(targets) != 1:
    return None
  return targets.pop()


def target_step(step, hparams_dicts, last_update_steps=None):
  """The step every stored spec reads its schedule at (`Schedule.masks_step`),
  or None when unknown or when they differ."""
  if step is None or not hparams_dicts:
    return None
  try:
    steps = {_judged_step(pruning_spec.as_full_spec(d), step,
                          last_update_steps)[1] for d in hparams_dicts}
  except ValueError:
    return None
  return steps.pop() if len(steps) == 1 else None


def _weight_settings(spec, plan, weight_name):
  """pruning_spec.WeightSettings of `weight_name` under `spec` and its
  PruningPlan `plan` (weight_name None: the spec's own)."""
  if weight_name is None:
    return pruning_spec.WeightSettings(
        target=None, block_dims=[spec.block_height, spec.block_width],
        m_by_n=spec.sparsity_m_by_n or None, excluded=False)
  return plan.for_weight(weight_name)


def _method(spec, block_dims, m_by_n=None):
  """The PruningMethod of `spec` with these blocks and N:M pattern."""
  magnitude_only = spec.prune_option == 'weight' and m_by_n is None
  return shortfall.PruningMethod(
      method=spec.threshold_method if magnitude_only else None,
      nbins=int(spec.nbins), block_dims=tuple(block_dims),
      pooling=spec.block_pooling_function)


def _agreed(hparams_dicts, judge):
  """`judge(full spec)` if every stored spec gives the same, else None.

  None too when no spec is stored or one cannot be parsed (ValueError).
  """
  answers = set()
  for hparams_dict in hparams_dicts:
    try:
      answers.add(judge(pruning_spec.as_full_spec(hparams_dict)))
    except ValueError:
      return None
  return answers.pop() if len(answers) == 1 else None


def pruning_method(hparams_dicts, weight_name=None):
  """The PruningMethod every stored spec gives `weight_name`, or None.

  None when no spec is stored, when the specs disagree, or when a map entry
  cannot be parsed.
  """
  def judge(spec):
    plan = None if weight_name is None else pruning_spec.PruningPlan(spec)
    settings = _weight_settings(spec, plan, weight_name)
    return _method(spec, settings.block_dims, settings.m_by_n)
  return _agreed(hparams_dicts, judge)


# How a stored spec prunes a group of `apply_mask_with_group`: its scheduled
# `target` sparsity, its PruningMethod and the `members` (weight names)
# thresholded jointly: the listed group's, less do_not_prune and N:M ones,
# which are pruned on their own.
JointGroup = collections.namedtuple('JointGroup',
                                    ['target', 'method', 'members'])


def joint_group(step, hparams_dicts, group, weight_names,
                last_update_steps=None):
  """The JointGroup every stored spec makes of `group`, or None.

  Its target is read at the step the masks should hold
  (`Schedule.masks_step`; 0 before the first update). None when the specs
  disagree, when one does not prune the group jointly
  (group_pruning off, or the group in neither group_sparsity_map nor
  group_block_dims_map), or when the step is unknown.
  """
  if step is None:
    return None

  def judge(spec):
    plan = pruning_spec.PruningPlan(spec)
    if not spec.group_pruning or group not in plan.listed_groups():
      return None
    members = []
    for name in weight_names:
      settings = _weight_settings(spec, plan, name)
      if settings.m_by_n is None and not settings.excluded:
        members.append(name)
    schedule, at, pending = _judged_step(spec, step, last_update_steps)
    target = 0.0 if pending else schedule.sparsity(
        at, plan.group_targets.get(group))
    block_dims = plan.group_block_dims.get(
        group, [spec.block_height, spec.block_width])
    return JointGroup(target=target, method=_method(spec, block_dims),
                      members=tuple(members))
  return _agreed(hparams_dicts, judge)
