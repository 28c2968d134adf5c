"""What the strip tool folded: per-weight sparsity, the schedule, file sizes.

Pure helpers (numpy and the pure schedule, no TensorFlow), so the numbers are
easy to test: the strip binary hands them the folded values, the checkpoint's
global step and hparams, and the bytes it wrote, and prints the result.
"""
import collections
import gzip

import numpy as np

from model_pruning.python import pruning_spec

# One row of the report. `target_sparsity` is None when unknown (no global
# step or no stored hparams); `mask_all_ones` is None when no mask was found.
WeightReport = collections.namedtuple(
    'WeightReport', ['name', 'weight_name', 'shape', 'zero_fraction',
                     'target_sparsity', 'mask_all_ones', 'dense_bytes'])

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


def _target_for_spec(step, hparams_dict, weight_name):
  """One stored spec's target for `weight_name` at `step`; None if unknown."""
  try:
    return pruning_spec.scheduled_sparsity(step, hparams_dict, weight_name)
  except ValueError:
    return None


def target_sparsity(step, hparams_dicts, weight_name=None):
  """The sparsity the stored schedule asks for at `step`, or None if unknown.

  Args:
    step: the checkpoint's global step, or None if it has none.
    hparams_dicts: the hparams of each `Pruning` object in the graph, as
      decoded from their JSON.
    weight_name: the weight's op name (e.g. 'conv1/weights'), for
      `weight_sparsity_map` and `do_not_prune`.

  Returns:
    A float, or None when the step or hparams are missing, or when several
    `Pruning` objects disagree about this weight (we cannot tell which one
    prunes it).
  """
  if step is None or not hparams_dicts:
    return None
  targets = {_target_for_spec(step, d, weight_name)
             for d in hparams_dicts}
  if len(targets) != 1:
    return None
  return targets.pop()


def weight_reports(folded_weights, step, hparams_dicts):
  """One WeightReport per folded weight.

  Args:
    folded_weights: objects with `name`, `weight_name`, `value` (ndarray)
      and `mask` (ndarray or None), e.g. the lib's FoldedWeight.
    step: the checkpoint's global step, or None.
    hparams_dicts: stored hparams dicts (may be empty).
  """
  reports = []
  for folded in folded_weights:
    value = np.asarray(folded.value)
    all_ones = None
    if folded.mask is not None:
      all_ones = bool(np.all(np.asarray(folded.mask) == 1))
    reports.append(WeightReport(
        name=folded.name, weight_name=folded.weight_name,
        shape=tuple(value.shape), zero_fraction=zero_fraction(value),
        target_sparsity=target_sparsity(step, hparams_dicts,
                                        folded.weight_name),
        mask_all_ones=all_ones, dense_bytes=int(value.nbytes)))
  return reports


def _format_target(target):
  return '-' if target is None else '%.4f' % target


def format_table(reports, step=None):
  """A fixed-width text table of the reports, one weight per line.

  Example:
    masked weight            shape       zeros   target
    fc/weights/masked_weight (4, 3)      0.5000  0.5000
  """
  header = ('masked weight', 'shape', 'zeros', 'target')
  rows = [(r.name, 'x'.join(str(d) for d in r.shape) or 'scalar',
           '%.4f' % r.zero_fraction, _format_target(r.target_sparsity))
          for r in reports]
  widths = [max(len(row[i]) for row in [header] + rows) for i in range(4)]
  lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths))
           .rstrip() for row in [header] + rows]
  step_text = 'unknown' if step is None else str(step)
  lines.append('%d masked weight(s) folded; global step %s' %
               (len(reports), step_text))
  return '\n'.join(lines)


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
  return ('every mask is all ones, but the pruning schedule asks for '
          'sparsity up to %.4f at global step %s (%s): the global step '
          'probably never advanced or the mask update op never ran' %
          (worst.target_sparsity, step, worst.weight_name or worst.name))


def below_target(reports, tolerance=BELOW_TARGET_TOLERANCE):
  """The reports whose zeros fall more than `tolerance` below their target.

  One weight's share (1 / size) is added to the tolerance: a 4x11 weight
  asked for 0.5 can only hold 22 or 21 zeros (0.5 or 0.477).
  """
  return tuple(
      r for r in reports if r.target_sparsity is not None and
      r.zero_fraction < r.target_sparsity - tolerance - 1.0 / max(
          1, int(np.prod(r.shape))))


def below_target_warnings(reports):
  """One warning line per report from `below_target`."""
  return ['%s (weight %s) has %.4f zeros, more than %g points below the %.4f '
          'its schedule asks for: the masks missed the target (too few mask '
          'updates after sparsity_function_end_step, a threshold_decay that '
          'lags, or a do_not_prune / map entry?)' %
          (r.name, r.weight_name, r.zero_fraction,
           100 * BELOW_TARGET_TOLERANCE, r.target_sparsity) for r in reports]


def as_json(result):
  """A JSON-ready dict of a strip_checkpoint.StripResult."""
  below = {r.name for r in result.below_target}
  weights = [dict(name=r.name, weight_name=r.weight_name, shape=list(r.shape),
                  zero_fraction=r.zero_fraction,
                  target_sparsity=r.target_sparsity,
                  below_target=r.name in below) for r in result.reports]
  return dict(path=result.path, global_step=result.global_step,
              weights=weights, below_target=sorted(below),
              sizes=result.sizes._asdict(), warning=result.warning)
