"""Runs the CIFAR-10 pruning example on a whole cluster on this machine.

  python3 -m examples.cifar10.local_cluster --workers=2 --ps=1

Writes synthetic CIFAR-10, starts `--ps` parameter servers and `--workers`
workers as separate processes (examples.cifar10.cifar10_train with the TF1
flags --ps_hosts/--worker_hosts/--job_name/--task_index) on 127.0.0.1 ports
picked now, prints every task's output prefixed by its role (`[ps0]`,
`[worker1]`), waits for the workers, stops the parameter servers, then
evaluates the chief's checkpoint and strips the masks, like run_main_job.
Every process has a lifetime (--timeout_secs) and is killed on the way out.
Outputs under --work_dir: data/, train/ (the chief's checkpoints), eval/,
export/, stripped/, summary.json (with each worker's seconds per batch).
"""
import json
import os
import re
import sys
import tempfile
import time

from absl import app
from absl import flags

from examples.cifar10 import evaluation
from examples.cifar10 import run_main_job
from examples.cifar10 import synthetic_data
from examples.cifar10 import task_processes
from examples.cifar10 import training

_WORKERS = flags.DEFINE_integer('workers', 2, 'Worker tasks.', lower_bound=1)
_PS = flags.DEFINE_integer('ps', 1, 'Parameter server tasks.', lower_bound=1)
_TIMEOUT = flags.DEFINE_integer('timeout_secs', 900,
                                'Lifetime of every task process.',
                                lower_bound=10)

# --work_dir, --max_steps, --batch_size, --target_sparsity and --test_records
# are run_main_job's flags (defined when it is imported), with its defaults.
FLAGS = flags.FLAGS

_SEC_PER_BATCH = re.compile(r'; ([0-9.]+) sec/batch\)')


def _train_argv(spec, job, index, train_dir, data_dir, max_steps,
                batch_size, hparams):
  return [sys.executable, '-m', 'examples.cifar10.cifar10_train',
          '--ps_hosts=' + ','.join(spec['ps']),
          '--worker_hosts=' + ','.join(spec['worker']),
          '--job_name=' + job, '--task_index=%d' % index,
          '--train_dir=' + train_dir, '--data_dir=' + data_dir,
          '--max_steps=%d' % max_steps, '--batch_size=%d' % batch_size,
          '--log_frequency=%d' % max(1, max_steps // 20),
          '--num_input_threads=1', '--pruning_hparams=' + hparams]


def _sec_per_batch(task):
  """Mean of the worker's reported sec/batch, first report left out."""
  values = [float(m.group(1)) for m in map(_SEC_PER_BATCH.search, task.lines)
            if m]
  values = values[1:] or values
  return sum(values) / len(values) if values else None


def train_on_cluster(work_dir, data_dir, workers, ps, max_steps, batch_size,
                     hparams, timeout_s):
  """Starts the cluster, waits for the workers; returns sec/batch each.

  Raises:
    RuntimeError: a worker failed (its exit code is named).
  """
  spec = {'ps': task_processes.loopback_addresses(ps),
          'worker': task_processes.loopback_addresses(workers)}
  train_dir = os.path.join(work_dir, 'train')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  env['PYTHONPATH'] = os.pathsep.join(
      [root] + [p for p in [env.get('PYTHONPATH')] if p])
  with task_processes.Cluster(lifetime_s=timeout_s, env=env,
                              cwd=root) as cluster:
    print('cluster %s (%s network)' % (json.dumps(spec), 'private loopback'
                                       if cluster.namespace.isolated
                                       else 'host loopback'), flush=True)
    for job, count in (('ps', ps), ('worker', workers)):
      for index in range(count):
        cluster.start('%s%d' % (job, index), _train_argv(
            spec, job, index, train_dir, data_dir, max_steps, batch_size,
            hparams))
    worker_tasks = [t for t in cluster.tasks if t.role.startswith('worker')]
    for task in worker_tasks:
      code = task.wait(timeout_s)
      if code != 0:
        raise RuntimeError('%s exited with code %d' % (task.role, code))
    return [_sec_per_batch(task) for task in worker_tasks]


def run(work_dir, workers=2, ps=1, max_steps=200, batch_size=64,
        target_sparsity=0.9, test_records=500, timeout_s=900):
  """Data -> cluster training -> eval -> strip; returns the summary dict."""
  start = time.time()
  data_dir = os.path.join(work_dir, 'data')
  synthetic_data.write_synthetic_cifar10(data_dir, 1000, test_records)
  hparams_text = run_main_job.main_job_hparams(max_steps, target_sparsity)
  seconds = train_on_cluster(work_dir, data_dir, workers, ps, max_steps,
                             batch_size, hparams_text, timeout_s)
  train_dir = os.path.join(work_dir, 'train')
  export_dir = os.path.join(work_dir, 'export')
  result = evaluation.evaluate(
      train_dir, data_dir, os.path.join(work_dir, 'eval'),
      num_examples=test_records, batch_size=100, export_dir=export_dir)
  stripped = run_main_job.strip(export_dir, os.path.join(work_dir,
                                                         'stripped'))
  summary = run_main_job.summarize(train_dir, result, stripped,
                                   training.parse_hparams(hparams_text))
  summary.update(workers=workers, ps=ps, sec_per_batch_per_worker=seconds)
  with open(os.path.join(work_dir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(run_main_job.format_summary(summary, time.time() - start))
  print('sec/batch per worker: %s' % ', '.join(
      '-' if s is None else '%.3f' % s for s in seconds))
  return summary


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix='cifar10_cluster_')
  if os.path.exists(os.path.join(work_dir, 'train')):
    raise app.UsageError('%s already holds train/; pass a fresh --work_dir'
                         % work_dir)
  print('Work dir: %s' % work_dir)
  run(work_dir, workers=_WORKERS.value, ps=_PS.value,
      max_steps=FLAGS.max_steps, batch_size=FLAGS.batch_size,
      target_sparsity=FLAGS.target_sparsity,
      test_records=FLAGS.test_records, timeout_s=_TIMEOUT.value)


if __name__ == '__main__':
  app.run(main)
