"""Trains the pruned CIFAR-10 model (absl binary).

Usage (from the repository root):
  python3 -m examples.cifar10.cifar10_train --data_dir=/tmp/cifar10_data \\
    --train_dir=/tmp/cifar10_train --pruning_hparams=name=cifar10_pruning,\\
begin_pruning_step=10000,end_pruning_step=100000,target_sparsity=0.9,\\
sparsity_function_begin_step=10000,sparsity_function_end_step=100000

After every training step the pruning spec's conditional mask update runs, so
masks follow the sparsity schedule. Every `--log_frequency` steps a line
reports loss, examples/sec, the scheduled sparsity and the achieved sparsity
(mean zero fraction over all masks).

`--train_dir` is never deleted (upstream wiped it): a checkpoint already there
is restored and training continues up to `--max_steps`. Use a fresh directory
to start over.

Upstream's accuracy on real CIFAR-10 after 150K steps: 0% sparsity 86%,
50% sparsity 86%, 95% sparsity 77% (precision @ 1, cifar10_eval).
"""
from absl import app
from absl import flags

from examples.cifar10 import cifar10_input
from examples.cifar10 import cifar10_pruning as cifar10
from examples.cifar10 import training

_TRAIN_DIR = flags.DEFINE_string(
    'train_dir', '/tmp/cifar10_train',
    'Directory for event logs and checkpoints; an existing checkpoint there '
    'is resumed, never deleted.')
_PRUNING_HPARAMS = flags.DEFINE_string(
    'pruning_hparams', '',
    'Comma separated pruning hparams, e.g. "name=cifar10_pruning,'
    'target_sparsity=0.9,sparsity_function_end_step=100000".')
_MAX_STEPS = flags.DEFINE_integer('max_steps', 1000000,
                                  'Global step to stop at.', lower_bound=1)
_LOG_DEVICE_PLACEMENT = flags.DEFINE_bool('log_device_placement', False,
                                          'Whether to log device placement.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', cifar10.DATA_DIR,
    'Directory holding cifar-10-batches-bin/ (real or synthetic data).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', cifar10.BATCH_SIZE,
                                   'Examples per training step.',
                                   lower_bound=1)
_LOG_FREQUENCY = flags.DEFINE_integer('log_frequency', 10,
                                      'Log progress every this many steps.',
                                      lower_bound=1)
_NUM_INPUT_THREADS = flags.DEFINE_integer(
    'num_input_threads', cifar10_input.DEFAULT_NUM_THREADS,
    'Parallel input preprocessing calls.', lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  try:
    training.train(
        _TRAIN_DIR.value, _DATA_DIR.value,
        pruning_hparams=_PRUNING_HPARAMS.value, max_steps=_MAX_STEPS.value,
        batch_size=_BATCH_SIZE.value, log_frequency=_LOG_FREQUENCY.value,
        log_device_placement=_LOG_DEVICE_PLACEMENT.value,
        num_threads=_NUM_INPUT_THREADS.value)
  except ValueError as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
