"""Achieved vs asked sparsity in the training log.

`Pruning` puts, for every pruned weight, a scheduled-sparsity and an
achieved-sparsity tensor into two aligned collections (`graph_keys`);
`SparsityLogger` fetches them every N steps and logs one line, so a run that
falls behind its schedule says so while it trains:

  step 1200: sparsity asked 0.900, achieved min 0.871 mean 0.889 max 0.900
    over 12 weights; behind by more than 0.02: conv1/weights 0.871
"""
from absl import logging
import numpy as np
import tensorflow as tf

from model_pruning.python import graph_keys

# Weights listed one by one up to this many; beyond, min/mean/max.
MAX_LISTED = 4
# Achieved this far below asked is called out by name.
BEHIND_TOLERANCE = 0.02


def report_fetches(graph=None):
  """(names, scheduled tensors, achieved tensors) registered in `graph`."""
  graph = graph or tf.compat.v1.get_default_graph()
  scheduled = graph.get_collection(graph_keys.SCHEDULED_SPARSITY_COLLECTION)
  achieved = graph.get_collection(graph_keys.ACHIEVED_SPARSITY_COLLECTION)
  names = [t.op.name.rsplit('/', 1)[0] for t in scheduled]
  return names, scheduled, achieved


def format_report(step, names, scheduled, achieved):
  """One log line of asked vs achieved sparsity (pure; floats in)."""
  scheduled = np.asarray(scheduled, np.float64)
  achieved = np.asarray(achieved, np.float64)
  if len(names) <= MAX_LISTED:
    body = ', '.join('%s asked %.3f achieved %.3f' % item
                     for item in zip(names, scheduled, achieved))
    line = 'step %d: sparsity %s' % (step, body)
  else:
    def spread(values):
      if np.ptp(values) < 5e-4:
        return '%.3f' % values.mean()
      return 'min %.3f mean %.3f max %.3f' % (values.min(), values.mean(),
                                             values.max())
    line = ('step %d: sparsity asked %s, achieved %s over %d weights' %
            (step, spread(scheduled), spread(achieved), len(names)))
  behind = [(name, a) for name, s, a in zip(names, scheduled, achieved)
            if a < s - BEHIND_TOLERANCE]
  if behind:
    line += '; behind by more than %.2f: %s' % (
        BEHIND_TOLERANCE, ', '.join('%s %.3f' % item for item in behind))
  return line


class SparsityLogger:
  """Logs asked vs achieved sparsity at most once every `every_n_steps`."""

  def __init__(self, every_n_steps=100, graph=None):
    """Args: every_n_steps: int >= 1, or None/0 to never log."""
    if every_n_steps is not None and every_n_steps < 0:
      raise ValueError('every_n_steps must be >= 0 (0 or None: never log), '
                       'got %r' % every_n_steps)
    self._every_n_steps = every_n_steps or 0
    self._fetches = report_fetches(graph) if self._every_n_steps else None
    self._last_logged = None

  def is_due(self, step):
    if not self._every_n_steps or not self._fetches[0]:
      return False
    return (self._last_logged is None or
            step >= self._last_logged + self._every_n_steps)

  def maybe_log(self, session, step):
    """Fetches and logs the report when due; returns the line or None."""
    if not self.is_due(step):
      return None
    names, scheduled, achieved = self._fetches
    scheduled_values, achieved_values = session.run([scheduled, achieved])
    self._last_logged = step
    line = format_report(step, names, scheduled_values, achieved_values)
    logging.info('%s', line)
    return line
