"""Size/accuracy sweep: the CIFAR-10 example under a grid of pruning schedules.

Run from the repository root:

  python3 -m examples.cifar10.cifar10_sweep --work_dir=/tmp/sweep
  python3 -m examples.cifar10.cifar10_sweep --quick        # ~1 minute

For every schedule of the grid (constant and cubic ramps to each target, plus
one N:M pattern) it trains the synthetic CIFAR-10 model (training.train),
scores it (evaluation.evaluate, which also exports the inference checkpoint),
strips it (strip_pruning_vars_lib) and converts it to TFLite dense and sparse
(tflite_export). Then it prints one table, name / achieved sparsity /
accuracy / stripped size raw and gzip / TFLite size dense and sparse, and
writes it under --work_dir as sweep.csv, with sweep.png (accuracy against
model size) when matplotlib is installed.

Layout of --work_dir: data/ (synthetic CIFAR-10, shared), <name>/{train,
eval,export,stripped} per schedule, sweep.csv, sweep.png. A schedule whose
train/ already holds a checkpoint is refused (nothing is ever deleted).
"""

import tempfile

from absl import app
from absl import flags
import tensorflow as tf

from examples.cifar10 import sweep
from model_pruning.python import tflite_export

_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Directory for all outputs (default: a new temp dir).')
_SCHEDULES = flags.DEFINE_multi_enum(
    'schedules', ['constant', 'cubic'], ['constant', 'cubic'],
    'Schedules to sweep: constant (the target from the first pruning step) '
    'and cubic (0 -> target over 10%..70% of the steps).')
_TARGETS = flags.DEFINE_list('targets', ['0.5', '0.75', '0.9'],
                             'Target sparsities, each in [0, 1).')
_M_BY_N = flags.DEFINE_string(
    'm_by_n', '2:4', 'One N:M pattern run with the cubic schedule '
    "('' for none).")
_MAX_STEPS = flags.DEFINE_integer('max_steps', 300, 'Training steps per run.',
                                  lower_bound=10)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Examples per step.',
                                   lower_bound=1)
_TRAIN_RECORDS_PER_BATCH = flags.DEFINE_integer(
    'train_records_per_batch', 1000, 'Synthetic records per train file.',
    lower_bound=1)
_TEST_RECORDS = flags.DEFINE_integer('test_records', 1000,
                                     'Synthetic test records (all scored).',
                                     lower_bound=1)
_TFLITE_QUANTIZATION = flags.DEFINE_enum(
    'tflite_quantization', 'none', list(tflite_export.QUANTIZATIONS),
    'Quantization of both TFLite models (dense and sparse).')
_QUICK = flags.DEFINE_bool(
    'quick', False, 'A tiny run for tests: two schedules (constant 0.9 and '
    'the N:M one), 20 steps of 16 examples, 16 records per file.')

def _targets_from_flags():
  try:
    targets = [float(t) for t in _TARGETS.value]
  except ValueError:
    raise app.UsageError('--targets must be numbers such as 0.5,0.9, got %s'
                         % ','.join(_TARGETS.value)) from None
  bad = [t for t in targets if not 0.0 <= t < 1.0]
  if bad:
    raise app.UsageError('--targets must be in [0, 1), got %g' % bad[0])
  return targets


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  tf.get_logger().setLevel('ERROR')
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='cifar10_sweep_')
  print('Work dir: %s' % work_dir)
  if _QUICK.value:
    steps, batch, records, tests = 20, 16, 16, 40
    grid = sweep.make_grid(['constant'], [0.9], steps, _M_BY_N.value or '2:4')
  else:
    steps, batch = _MAX_STEPS.value, _BATCH_SIZE.value
    records, tests = _TRAIN_RECORDS_PER_BATCH.value, _TEST_RECORDS.value
    grid = sweep.make_grid(_SCHEDULES.value, _targets_from_flags(), steps,
                     _M_BY_N.value)
  try:
    sweep.run_sweep(work_dir, grid, max_steps=steps, batch_size=batch,
              train_records_per_batch=records, test_records=tests,
              quantization=_TFLITE_QUANTIZATION.value)
  except ValueError as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
