"""Structured 2:4 pruning tutorial on real digits, in graph mode.

  python3 -m examples.structured_pruning --work_dir=/tmp/structured  # minutes
  python3 -m examples.structured_pruning --quick                     # seconds

Needs scikit-learn (pip install '.[examples]') for its bundled digits; nothing
is downloaded. See examples/structured_pruning/study.py and
docs/structured_pruning.md.
"""
import tempfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from examples.pruning_study import attempts
from examples.structured_pruning import study

_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Directory for all outputs (default: a new temp dir).')
_SCHEDULES = flags.DEFINE_multi_enum(
    'schedules', list(attempts.SCHEDULES), list(attempts.SCHEDULES),
    'constant (the target from the first mask update) and polynomial '
    '(cubic decay from 0 to the target over the first half).')
_TARGETS = flags.DEFINE_list(
    'targets', [str(t) for t in study.DEFAULT_TARGETS],
    'Unstructured target sparsities to compare with 2:4, each in (0, 1).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the split, init and batches.')
_QUICK = flags.DEFINE_bool(
    'quick', False, 'A tiny run for tests: 20 + 20 steps, constant schedule, '
    'targets 0.5 and 0.9, and 2:4.')


def _targets():
  try:
    return attempts.parse_targets(_TARGETS.value)
  except ValueError as error:
    raise app.UsageError('--%s' % error) from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  tf.get_logger().setLevel('ERROR')
  logging.set_verbosity(logging.WARNING)
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='structured_pruning_')
  print('Work dir: %s' % work_dir)
  targets, schedules = _targets(), _SCHEDULES.value
  if _QUICK.value:
    targets, schedules = [0.5, 0.9], ['constant']
  try:
    study.run_study(work_dir, targets, schedules, quick=_QUICK.value,
                    seed=_SEED.value)
  except (ValueError, ImportError) as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
