"""What the strip tool folded: per-weight sparsity, the schedule, file sizes.

Pure helpers (numpy and the pure schedule, no TensorFlow), so the numbers are
easy to test: the strip binary hands them the folded values, the checkpoint's
global step, hparams and pruning groups, and the bytes it wrote, and prints
the result. What the stored hparams say about a weight is `stored_specs`'s;
how far below target its method alone may leave it is `shortfall`'s.
"""
import collections
import gzip

import numpy as np

from model_pruning.python import shortfall
from model_pruning.python import stored_specs

# One row of the report. `target_sparsity` is None when unknown (no global
# step or no stored hparams); `target_step` is the step whose schedule it is
# read at (the last mask update's while none was missed since, else the
# checkpoint's; 0 before the first update, with target 0; None when unknown
# or the specs differ); `mask_all_ones` is
# None when no mask was found; `allowance` is the share of cells the threshold
# method may leave unpruned (`shortfall.shortfall_allowance`; None: one cell's
# share). A weight thresholded jointly with its pruning group (group_pruning)
# names the `group` and holds the group's target, allowance and
# `group_zero_fraction`: it is judged as part of the group, whose members may
# each be sparser or denser.
WeightReport = collections.namedtuple(
    'WeightReport', ['name', 'weight_name', 'shape', 'zero_fraction',
                     'target_sparsity', 'mask_all_ones', 'dense_bytes',
                     'allowance', 'group', 'group_zero_fraction',
                     'target_step'],
    defaults=(None, None, None, None))

# A weight this far (a fraction; 0.02 = 2 points) below the sparsity its
# schedule asks for is reported as below target.
BELOW_TARGET_TOLERANCE = 0.02

# Sizes in bytes: the written file, the same bytes gzip-compressed, and the
# folded weights stored densely (elements x itemsize).
SizeSummary = collections.namedtuple('SizeSummary',
                                     ['raw', 'gzip', 'dense_weights'])


def zero_fraction(values):
  """Share of exact zeros in `values` (0.0 for an empty array)."""
  values = np.asarray(values)
  if values.size == 0:
    return 0.0
  return 1.0 - float(np.count_nonzero(values)) / values.size


def _judged_with_groups(reports, values, step, hparams_dicts, groups,
                        last_update_steps):
  """`reports` with each jointly thresholded group member's group fields."""
  reports = list(reports)
  index = {report.name: i for i, report in enumerate(reports)}
  for group, names in sorted(groups.items()):
    present = [index[name] for name in names if name in index]
    joint = stored_specs.joint_group(
        step, hparams_dicts, group, [reports[i].weight_name for i in present],
        last_update_steps)
    if joint is None:
      continue
    members = [i for i in present if reports[i].weight_name in joint.members]
    if not members:
      continue
    cells = sum(values[i].size for i in members)
    zeros = sum(values[i].size - np.count_nonzero(values[i]) for i in members)
    allowance = shortfall.shortfall_allowance(
        [values[i] for i in members], joint.method)
    for i in members:
      reports[i] = reports[i]._replace(
          group=group, group_zero_fraction=float(zeros) / cells,
          target_sparsity=joint.target, allowance=allowance)
  return reports


def weight_reports(folded_weights, step, hparams_dicts, groups=None,
                   last_update_steps=None):
  """One WeightReport per folded weight.

  Targets are the schedule's at the step the masks should hold
  (`Schedule.masks_step`): a checkpoint saved between two updates is
  judged by the last update's sparsity, one whose updates stopped by the
  checkpoint's, and one saved before the first update has target 0.

  Args:
    folded_weights: objects with `name`, `weight_name`, `value` (ndarray)
      and `mask` (ndarray or None), e.g. the lib's FoldedWeight.
    step: the checkpoint's global step, or None.
    hparams_dicts: stored hparams dicts (may be empty).
    groups: {group: [masked weight node names]} of `apply_mask_with_group`
      (checkpoint_state.PruningState.groups), or None.
    last_update_steps: {spec name: last_mask_update_step}
      (PruningState.last_update_steps), or None: targets at `step`.
  """
  reports, values = [], []
  judged_step = stored_specs.target_step(step, hparams_dicts,
                                         last_update_steps)
  for folded in folded_weights:
    value = np.asarray(folded.value)
    values.append(value)
    all_ones = None
    if folded.mask is not None:
      all_ones = bool(np.all(np.asarray(folded.mask) == 1))
    method = stored_specs.pruning_method(hparams_dicts, folded.weight_name)
    reports.append(WeightReport(
        name=folded.name, weight_name=folded.weight_name,
        shape=tuple(value.shape), zero_fraction=zero_fraction(value),
        target_sparsity=stored_specs.target_sparsity(
            step, hparams_dicts, folded.weight_name, last_update_steps),
        mask_all_ones=all_ones, dense_bytes=int(value.nbytes),
        allowance=shortfall.shortfall_allowance([value], method),
        target_step=judged_step))
  return _judged_with_groups(reports, values, step, hparams_dicts,
                             groups or {}, last_update_steps)


def _format_target(target):
  return '-' if target is None else '%.4f' % target


def format_table(reports, step=None):
  """A fixed-width text table of the reports, one weight per line.

  Example:
    masked weight            shape       zeros   target
    fc/weights/masked_weight (4, 3)      0.5000  0.5000

  With pruning groups a last column gives each member's group and the
  group's zeros, which its target is for ('g1 0.5000').
  """
  header = ('masked weight', 'shape', 'zeros', 'target')
  rows = [(r.name, 'x'.join(str(d) for d in r.shape) or 'scalar',
           '%.4f' % r.zero_fraction, _format_target(r.target_sparsity))
          for r in reports]
  if any(r.group is not None for r in reports):
    header += ('group zeros',)
    rows = [row + ('' if r.group is None else
                   '%s %.4f' % (r.group, r.group_zero_fraction),)
            for row, r in zip(rows, reports)]
  widths = [max(len(row[i]) for row in [header] + rows)
            for i in range(len(header))]
  lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths))
           .rstrip() for row in [header] + rows]
  step_text = 'unknown' if step is None else str(step)
  lines.append('%d masked weight(s) folded; global step %s%s' %
               (len(reports), step_text, _target_step_text(reports, step)))
  return '\n'.join(lines)


def _target_step_text(reports, step):
  """'; targets as of the last mask update, step N' where the targets are
  not read at the checkpoint's `step`, else ''."""
  steps = {r.target_step for r in reports if r.target_sparsity is not None}
  if not steps or steps == {step}:
    return ''
  if steps == {0}:  # Only Schedule.first_update_pending reads step 0 here.
    return '; no mask update yet, so the targets are 0'
  if len(steps) == 1 and None not in steps:
    return '; targets as of the last mask update, step %d' % steps.pop()
  return '; targets read at each spec\'s own step (target_step in --json)'


def size_summary(data, reports):
  """Sizes of the written bytes `data`, raw and gzipped, and dense weights."""
  return SizeSummary(raw=len(data), gzip=len(gzip.compress(data)),
                     dense_weights=sum(r.dense_bytes for r in reports))


def format_sizes(sizes):
  """'output 1234 bytes raw, 567 gzip (46.0%); dense weights 1000 bytes'."""
  ratio = 100.0 * sizes.gzip / sizes.raw if sizes.raw else 0.0
  return ('output %d bytes raw, %d bytes gzip-compressed (%.1f%% of raw); '
          'the folded weights stored dense take %d bytes' %
          (sizes.raw, sizes.gzip, ratio, sizes.dense_weights))


def unpruned_warning(reports, step):
  """A warning when every mask is all ones although the schedule wants > 0.

  That checkpoint was trained with pruning set up but never pruned:
  typically the global step never advanced (not passed to the optimizer) or
  the mask update op was never run.

  Returns:
    The warning text, or None when there is nothing to flag.
  """
  masks = [r for r in reports if r.mask_all_ones is not None]
  if not masks or not all(r.mask_all_ones for r in masks):
    return None
  wanting = [r for r in masks if r.target_sparsity and r.target_sparsity > 0]
  if not wanting:
    return None
  worst = max(wanting, key=lambda r: r.target_sparsity)
  at_step = step if worst.target_step is None else worst.target_step
  return ('every mask is all ones, but the pruning schedule asks for '
          'sparsity up to %.4f at global step %s (%s): the global step '
          'probably never advanced or the mask update op never ran' %
          (worst.target_sparsity, at_step, worst.weight_name or worst.name))


def _allowance(report):
  if report.allowance is not None:
    return report.allowance
  return 1.0 / max(1, int(np.prod(report.shape)))


def _judged_zero_fraction(report):
  """The zeros a report is judged by: its group's, or its own."""
  if report.group is not None:
    return report.group_zero_fraction
  return report.zero_fraction


def below_target(reports, tolerance=BELOW_TARGET_TOLERANCE):
  """The reports whose zeros fall more than `tolerance` below their target.

  Each report's `allowance` (at least one cell's share) is added to the
  tolerance: a 4x11 weight asked for 0.5 can only hold 22 or 21 zeros (0.5
  or 0.477), and a histogram threshold keeps its k-th's whole bin. A group
  member is judged by its group's zeros.
  """
  return tuple(
      r for r in reports if r.target_sparsity is not None and
      _judged_zero_fraction(r) <
      r.target_sparsity - tolerance - _allowance(r))


def below_target_warnings(reports):
  """One warning line per report from `below_target`."""
  return ['%s (weight %s%s) has %.4f zeros, more than %g points below the '
          '%.4f its schedule asks for, after %.2f more for the threshold '
          'method\'s resolution: the masks missed the target (too few mask '
          'updates after sparsity_function_end_step, a threshold_decay that '
          'lags, or a do_not_prune / map entry?)' %
          (r.name, r.weight_name,
           '' if r.group is None else ', in group %s' % r.group,
           _judged_zero_fraction(r), 100 * BELOW_TARGET_TOLERANCE,
           r.target_sparsity, 100 * _allowance(r)) for r in reports]


def as_json(result):
  """A JSON-ready dict of a strip_checkpoint.StripResult."""
  below = {r.name for r in result.below_target}
  weights = [dict(name=r.name, weight_name=r.weight_name, shape=list(r.shape),
                  zero_fraction=r.zero_fraction,
                  target_sparsity=r.target_sparsity,
                  target_step=r.target_step,
                  allowance=_allowance(r), group=r.group,
                  group_zero_fraction=r.group_zero_fraction,
                  below_target=r.name in below) for r in result.reports]
  return dict(path=result.path, global_step=result.global_step,
              weights=weights, below_target=sorted(below),
              sizes=result.sizes._asdict(), warning=result.warning)
