"""The grid of pruning attempts: dense, constant, polynomial decay, N:M.

Every attempt fine-tunes the same dense, pre-trained weights for `steps`
steps; what differs is the pruning hparams (contrib syntax, always
`threshold_method=sort,threshold_decay=0.0`, so each mask update hits the
scheduled sparsity exactly):

* dense: no `Pruning` object; masks stay all ones.
* constant (TF-MOT's ConstantSparsity): `initial_sparsity = target`, so the
  first mask update (step `frequency`) already removes `target` of each
  weight, and later updates re-rank with the same target.
* polynomial (TF-MOT's PolynomialDecay, power 3): from 0 at step 0 to the
  target at step `steps // 2`, s(t) = target (1 - (1 - t / (steps/2))^3),
  then held for the second half (recovery).
* N:M (e.g. 2:4), constant or polynomial: `sparsity_m_by_n`, target 1 - M/N.

Masks are updated every `max(1, steps // 20)` steps. `do_not_prune` is a list
of regexes of masks left alone (e.g. a first conv with one input channel).
"""
import collections

from model_pruning.python import nm_sparsity

Attempt = collections.namedtuple(
    'Attempt', ['name', 'schedule', 'target', 'm_by_n', 'hparams'])

SCHEDULES = ('constant', 'polynomial')


def pruning_hparams(schedule, target, steps, m_by_n=None, do_not_prune=()):
  """The hparams string of one attempt (see the module docstring)."""
  if schedule not in SCHEDULES:
    raise ValueError('schedule must be one of %s, got %r'
                     % (', '.join(SCHEDULES), schedule))
  if not 0.0 < target < 1.0:
    raise ValueError('target sparsity must be in (0, 1), got %g' % target)
  if steps < 2:
    raise ValueError('steps must be >= 2, got %d' % steps)
  text = ('begin_pruning_step=0,end_pruning_step=-1,pruning_frequency=%d,'
          'target_sparsity=%g,initial_sparsity=%g,'
          'sparsity_function_begin_step=0,sparsity_function_end_step=%d,'
          'sparsity_function_exponent=3.0,threshold_method=sort,'
          'threshold_decay=0.0'
          % (max(1, steps // 20), target,
             target if schedule == 'constant' else 0.0, max(1, steps // 2)))
  if m_by_n:
    text += ',sparsity_m_by_n=%s' % m_by_n
  if do_not_prune:
    text += ',do_not_prune=[%s]' % ','.join(do_not_prune)
  return text


def make_grid(steps, targets, schedules=SCHEDULES, m_by_n=None,
              do_not_prune=()):
  """The dense attempt, every schedule x target, then N:M per schedule.

  Example: make_grid(100, [0.5], ['constant'], '2:4') gives attempts named
  dense, constant_0.5 and constant_2of4.
  """
  grid = [Attempt('dense', 'dense', 0.0, None, None)]
  for schedule in schedules:
    for target in targets:
      grid.append(Attempt('%s_%g' % (schedule, target), schedule, target,
                          None, pruning_hparams(schedule, target, steps,
                                                do_not_prune=do_not_prune)))
  if m_by_n:
    m, n = nm_sparsity.parse_m_by_n(m_by_n)
    for schedule in schedules:
      grid.append(Attempt(
          '%s_%dof%d' % (schedule, m, n), schedule, 1.0 - m / n,
          '%d:%d' % (m, n),
          pruning_hparams(schedule, 1.0 - m / n, steps, '%d:%d' % (m, n),
                          do_not_prune)))
  return grid


def parse_targets(texts):
  """Target sparsities from strings such as ['0.5', '0.9'], each in (0, 1).

  Raises:
    ValueError: a value that is not a number or not in (0, 1), named.
  """
  try:
    targets = [float(t) for t in texts]
  except ValueError:
    raise ValueError('targets must be numbers such as 0.5,0.9, got %s'
                     % ','.join(texts)) from None
  bad = [t for t in targets if not 0.0 < t < 1.0]
  if bad:
    raise ValueError('targets must be in (0, 1), got %g' % bad[0])
  return targets
