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
# step or no stored hparams); `mask_all_ones` is None when no mask was found;
# `allowance` is the share of cells the threshold method may leave unpruned
# (`shortfall_allowance`; None: one cell's share).
WeightReport = collections.namedtuple(
    'WeightReport', ['name', 'weight_name', 'shape', 'zero_fraction',
                     'target_sparsity', 'mask_all_ones', 'dense_bytes',
                     'allowance'], defaults=(None,))

# How the stored spec picks one weight's zeros: `method` the threshold_method
# ('histogram', 'sort', 'exact'), or None when the scores are not |W| alone
# (gradient pruning) or an N:M pattern fixes the mask; `block_dims` [h, w]
# (-1: the whole dimension) and `pooling` its block_pooling_function.
PruningMethod = collections.namedtuple(
    'PruningMethod', ['method', 'nbins', 'block_dims', 'pooling'])

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


def pruning_method(hparams_dicts, weight_name=None):
  """The PruningMethod every stored spec gives `weight_name`, or None.

  None when no spec is stored, when the specs disagree, or when a map entry
  cannot be parsed.
  """
  methods = set()
  for hparams_dict in hparams_dicts:
    try:
      spec = pruning_spec.as_full_spec(hparams_dict)
      if weight_name is None:
        block_dims = [spec.block_height, spec.block_width]
        m_by_n = spec.sparsity_m_by_n or None
      else:
        settings = pruning_spec.PruningPlan(spec).for_weight(weight_name)
        block_dims, m_by_n = settings.block_dims, settings.m_by_n
    except ValueError:
      return None
    magnitude_only = spec.prune_option == 'weight' and m_by_n is None
    methods.add(PruningMethod(
        method=spec.threshold_method if magnitude_only else None,
        nbins=int(spec.nbins), block_dims=tuple(block_dims),
        pooling=spec.block_pooling_function))
  return methods.pop() if len(methods) == 1 else None


def _unit_scores(value, block_dims, pooling):
  """(score, cells) of each pruning unit of a folded weight, as float64.

  A unit is one cell, or one block of a weight that squeezes to 2-D with
  block_dims other than [1, 1]; its score is |w|, or the block's 'AVG' or
  'MAX' of |w| over its real cells (edge blocks are cut short, as
  pruning_utils.pool_blocks pools them).
  """
  magnitudes = np.abs(np.asarray(value, np.float64))
  squeezed = [d for d in magnitudes.shape if d != 1]
  if len(squeezed) != 2 or list(block_dims) == [1, 1]:
    flat = magnitudes.ravel()
    return flat, np.ones_like(flat)
  block = [squeezed[i] if block_dims[i] == -1 else block_dims[i]
           for i in range(2)]
  rows, cols = (-(-squeezed[i] // block[i]) for i in range(2))
  padded = np.full((rows * block[0], cols * block[1]), np.nan)
  padded[:squeezed[0], :squeezed[1]] = magnitudes.reshape(squeezed)
  blocks = padded.reshape(rows, block[0], cols, block[1])
  pool = np.nanmax if pooling == 'MAX' else np.nanmean
  cells = np.sum(~np.isnan(blocks), axis=(1, 3)).ravel()
  return pool(blocks, axis=(1, 3)).ravel(), cells.astype(np.float64)


def shortfall_allowance(value, method=None):
  """Share of a folded weight's cells its threshold method may leave unpruned.

  One pruning unit (the keep count rounds to whole cells or blocks), plus for
  'histogram' the cells of kept units scoring below s_min + max / nbins,
  s_min the smallest kept score: variant H's threshold theta is its k-th's
  bin edge, theta <= s_min, and it keeps that whole bin [theta, theta +
  max / nbins). Pruned units are the all-zero ones.

  Args:
    value: the folded (masked) weight.
    method: its PruningMethod, or None (one cell's share).
  """
  if method is None:
    return 1.0 / max(1, np.size(value))
  scores, cells = _unit_scores(value, method.block_dims, method.pooling)
  if not scores.size:
    return 0.0
  allowance = cells.max()
  kept = scores > 0
  if method.method == 'histogram' and kept.any():
    width = scores.max() / method.nbins
    allowance += cells[kept & (scores < scores[kept].min() + width)].sum()
  return float(allowance / cells.sum())


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
        mask_all_ones=all_ones, dense_bytes=int(value.nbytes),
        allowance=shortfall_allowance(
            value, pruning_method(hparams_dicts, folded.weight_name))))
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


def _allowance(report):
  if report.allowance is not None:
    return report.allowance
  return 1.0 / max(1, int(np.prod(report.shape)))


def below_target(reports, tolerance=BELOW_TARGET_TOLERANCE):
  """The reports whose zeros fall more than `tolerance` below their target.

  Each report's `allowance` (at least one cell's share) is added to the
  tolerance: a 4x11 weight asked for 0.5 can only hold 22 or 21 zeros (0.5
  or 0.477), and a histogram threshold keeps its k-th's whole bin.
  """
  return tuple(
      r for r in reports if r.target_sparsity is not None and
      r.zero_fraction < r.target_sparsity - tolerance - _allowance(r))


def below_target_warnings(reports):
  """One warning line per report from `below_target`."""
  return ['%s (weight %s) has %.4f zeros, more than %g points below the %.4f '
          'its schedule asks for, after %.2f more for the threshold method\'s '
          'resolution: the masks missed the target (too few mask updates '
          'after sparsity_function_end_step, a threshold_decay that lags, or '
          'a do_not_prune / map entry?)' %
          (r.name, r.weight_name, r.zero_fraction,
           100 * BELOW_TARGET_TOLERANCE, r.target_sparsity,
           100 * _allowance(r)) for r in reports]


def as_json(result):
  """A JSON-ready dict of a strip_checkpoint.StripResult."""
  below = {r.name for r in result.below_target}
  weights = [dict(name=r.name, weight_name=r.weight_name, shape=list(r.shape),
                  zero_fraction=r.zero_fraction,
                  target_sparsity=r.target_sparsity,
                  allowance=_allowance(r), below_target=r.name in below) for r in result.reports]
  return dict(path=result.path, global_step=result.global_step,
              weights=weights, below_target=sorted(below),
              sizes=result.sizes._asdict(), warning=result.warning)
