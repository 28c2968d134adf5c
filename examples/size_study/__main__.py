"""Size study: MLP / LSTM / CNN on real data, pruned under a grid.

  python3 -m examples.size_study --work_dir=/tmp/size_study   # a few minutes
  python3 -m examples.size_study --quick                      # seconds

Needs the examples' extras (pip install '.[examples]': scikit-learn and
statsmodels, whose bundled data sets are used; nothing is downloaded).
See examples/size_study/study.py and docs/size_study.md.
"""
import tempfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from examples.pruning_study import attempts
from examples.size_study import study

_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Directory for all outputs (default: a new temp dir).')
_MODELS = flags.DEFINE_multi_enum('models', list(study.MODELS),
                                  list(study.MODELS), 'Networks to study.')
_SCHEDULES = flags.DEFINE_multi_enum(
    'schedules', list(attempts.SCHEDULES), list(attempts.SCHEDULES),
    'constant (the target from the first mask update) and polynomial '
    '(cubic decay from 0 to the target over the first half).')
_TARGETS = flags.DEFINE_list('targets', [str(t) for t in study.DEFAULT_TARGETS],
                             'Target sparsities, each in (0, 1).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the split, init and batches.')
_QUICK = flags.DEFINE_bool(
    'quick', False, 'A tiny run for tests: 20 + 20 steps, targets 0.5 and '
    '0.9 with the constant schedule.')


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
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='size_study_')
  print('Work dir: %s' % work_dir)
  targets, schedules = _targets(), _SCHEDULES.value
  if _QUICK.value:
    targets, schedules = [0.5, 0.9], ['constant']
  try:
    study.run_study(work_dir, _MODELS.value, targets, schedules,
                    quick=_QUICK.value, seed=_SEED.value)
  except (ValueError, ImportError) as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
