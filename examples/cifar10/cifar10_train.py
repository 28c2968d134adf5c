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

On a cluster (between-graph replication, parameter servers), every task
runs this binary with the TF1 flags, or with TF_CONFIG set instead:
  --ps_hosts=127.0.0.1:2222 --worker_hosts=127.0.0.1:2223,127.0.0.1:2224
  --job_name=ps|worker --task_index=N
A ps task serves until it is killed; worker 0 is the chief (checkpoints in
--train_dir, mask updates). `python -m examples.cifar10.local_cluster`
starts such a cluster on this machine. See docs/multi_worker.md.

Upstream's accuracy on real CIFAR-10 after 150K steps: 0% sparsity 86%,
50% sparsity 86%, 95% sparsity 77% (precision @ 1, cifar10_eval).
"""
import os

from absl import app
from absl import flags

from examples.cifar10 import cifar10_input
from examples.cifar10 import cluster
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
_PS_HOSTS = flags.DEFINE_string('ps_hosts', '',
                                'Comma separated host:port of the ps tasks.')
_WORKER_HOSTS = flags.DEFINE_string(
    'worker_hosts', '', 'Comma separated host:port of the worker tasks.')
_JOB_NAME = flags.DEFINE_enum('job_name', None, ['ps', 'worker'],
                              'This task\'s job in the cluster.')
_TASK_INDEX = flags.DEFINE_integer('task_index', 0,
                                   'This task\'s index within its job.',
                                   lower_bound=0)
_CONNECT_TIMEOUT = flags.DEFINE_integer(
    'connect_timeout_secs', 120,
    'How long a worker waits for the parameter servers.', lower_bound=1)


def _task():
  """The cluster task from the flags, else from TF_CONFIG, else None."""
  task = cluster.from_flags(_PS_HOSTS.value, _WORKER_HOSTS.value,
                            _JOB_NAME.value, _TASK_INDEX.value)
  return task or cluster.from_tf_config(os.environ.get('TF_CONFIG', ''))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  try:
    task = _task()
    if task is not None and task.job_name == cluster.PS:
      print('ps %d serving at %s' % (task.task_index,
                                     task.cluster['ps'][task.task_index]),
            flush=True)
      cluster.start_server(task).join()
      return
    training.train(
        _TRAIN_DIR.value, _DATA_DIR.value,
        pruning_hparams=_PRUNING_HPARAMS.value, max_steps=_MAX_STEPS.value,
        batch_size=_BATCH_SIZE.value, log_frequency=_LOG_FREQUENCY.value,
        log_device_placement=_LOG_DEVICE_PLACEMENT.value,
        num_threads=_NUM_INPUT_THREADS.value, task=task,
        connect_timeout_s=_CONNECT_TIMEOUT.value)
  except ValueError as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
