"""Which task am I in which cluster: TF1 flags or TF_CONFIG (no flags here).

Between-graph replication needs, in every process, the whole cluster (the
`ps` and `worker` addresses), this process's job and index, and a running
`tf.distribute.Server`. Users of TF1 give them as

  --ps_hosts=h:p,h:p --worker_hosts=h:p,h:p --job_name=worker --task_index=0

or as the `TF_CONFIG` environment variable

  {"cluster": {"ps": ["h:p"], "worker": ["h:p", "h:p"]},
   "task": {"type": "worker", "index": 0}}

Both become one `TaskConfig`. Worker 0 is the chief: it initialises (or
restores) the variables on the parameter servers, saves checkpoints and is
the only task that runs the pruning mask update.

`wait_for_tasks` probes the other tasks' ports before a session is created:
TensorFlow itself waits for an unreachable parameter server forever (it logs
"CreateSession still waiting for response from worker" and retries), so a
mistyped --ps_hosts would hang; here it fails with an error that names the
address within the given timeout.
"""
import dataclasses
import json
import socket
import time

import tensorflow as tf

PS, WORKER = 'ps', 'worker'


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """One task of a ps/worker cluster."""
  cluster: dict  # job name -> list of 'host:port'
  job_name: str
  task_index: int

  @property
  def is_chief(self):
    return self.job_name == WORKER and self.task_index == 0

  @property
  def num_workers(self):
    return len(self.cluster.get(WORKER, []))

  @property
  def worker_device(self):
    return '/job:%s/task:%d' % (self.job_name, self.task_index)

  def cluster_spec(self):
    return tf.train.ClusterSpec(self.cluster)

  def peer_addresses(self):
    """Addresses of the parameter servers a worker has to reach."""
    return list(self.cluster.get(PS, []))


def _split_hosts(text, flag_name):
  hosts = [h.strip() for h in text.split(',') if h.strip()]
  for host in hosts:
    if host.count(':') != 1 or not host.split(':')[1].isdigit():
      raise ValueError('%s must be comma separated host:port pairs, got %r'
                       % (flag_name, host))
  return hosts


def _checked(cluster, job_name, task_index, source):
  """Builds a TaskConfig after checking job and index against the cluster."""
  if not cluster.get(WORKER):
    raise ValueError('%s names no worker task; give at least one worker '
                     'address' % source)
  if job_name not in (PS, WORKER):
    raise ValueError('%s: job must be "ps" or "worker", got %r (a '
                     'MultiWorkerMirroredStrategy TF_CONFIG with "chief" is '
                     'not this example\'s layout)' % (source, job_name))
  if not 0 <= task_index < len(cluster.get(job_name, [])):
    raise ValueError('%s: task index %d is out of range for job %r with %d '
                     'tasks' % (source, task_index, job_name,
                                len(cluster.get(job_name, []))))
  return TaskConfig(cluster=cluster, job_name=job_name, task_index=task_index)


def from_flags(ps_hosts, worker_hosts, job_name, task_index):
  """TaskConfig from the TF1 flags; None when all are empty (one process).

  Raises:
    ValueError: some but not all flags given, or they disagree.
  """
  if not (ps_hosts or worker_hosts or job_name):
    return None
  if not (worker_hosts and job_name):
    raise ValueError('a cluster needs --worker_hosts and --job_name (and '
                     '--ps_hosts for parameter servers), got worker_hosts=%r '
                     'job_name=%r' % (worker_hosts, job_name))
  cluster = {WORKER: _split_hosts(worker_hosts, '--worker_hosts')}
  if ps_hosts:
    cluster[PS] = _split_hosts(ps_hosts, '--ps_hosts')
  return _checked(cluster, job_name, task_index, 'the cluster flags')


def from_tf_config(text):
  """TaskConfig from a TF_CONFIG JSON string; None when it is empty.

  Raises:
    ValueError: not JSON, or no cluster/task, or an unknown job.
  """
  if not text:
    return None
  try:
    config = json.loads(text)
    cluster = {job: list(hosts) for job, hosts in config['cluster'].items()}
    task = config['task']
    job_name, task_index = task['type'], int(task.get('index', 0))
  except (ValueError, KeyError, TypeError, AttributeError) as error:
    raise ValueError('TF_CONFIG must be JSON with "cluster" and "task": '
                     '{"type": ..., "index": ...}; got %r (%s)'
                     % (text, error))
  return _checked(cluster, job_name, task_index, 'TF_CONFIG')


def wait_for_tasks(addresses, timeout_s, poll_s=0.2):
  """Returns once every 'host:port' accepts a TCP connection.

  Raises:
    TimeoutError: an address still refuses after `timeout_s` seconds; the
      message names it and says what to check.
  """
  deadline = time.monotonic() + timeout_s
  for address in addresses:
    host, port = address.rsplit(':', 1)
    while True:
      try:
        with socket.create_connection((host, int(port)), timeout=poll_s):
          break
      except OSError:
        if time.monotonic() >= deadline:
          raise TimeoutError(
              'could not reach the task at %s within %g s; start the '
              'parameter servers first, or fix --ps_hosts / TF_CONFIG'
              % (address, timeout_s))
        time.sleep(poll_s)


def start_server(task, config=None):
  """Starts this task's `tf.distribute.Server` (grpc) and returns it."""
  return tf.distribute.Server(task.cluster_spec(), job_name=task.job_name,
                              task_index=task.task_index, config=config,
                              start=True)


def device_setter(task, ps_strategy=None):
  """`replica_device_setter` putting variables on the ps, ops on this worker.

  Without parameter servers (workers only) variables stay on the worker.
  """
  return tf.compat.v1.train.replica_device_setter(
      worker_device=task.worker_device, cluster=task.cluster_spec(),
      ps_strategy=ps_strategy)


def session_config(task):
  """Session config that lets a worker see only the ps and itself.

  Without the filter a worker's session waits for every other worker too, so
  one dead or restarting worker would block the others.
  """
  return tf.compat.v1.ConfigProto(
      device_filters=['/job:ps', task.worker_device])


def wait_for_chief_init(master, config, timeout_s, poll_s=0.2):
  """Blocks until the chief has initialised every global variable.

  A non-chief `MonitoredTrainingSession` polls for that itself, but only
  every 30 seconds (SessionManager's default `recovery_wait_secs`), which is
  most of a short run. Call this after building the graph and before the
  monitored session; it polls every `poll_s` instead.

  Raises:
    TimeoutError: variables still uninitialised after `timeout_s`; the
      message names some of them.
  """
  report = tf.compat.v1.report_uninitialized_variables(
      tf.compat.v1.global_variables())
  deadline = time.monotonic() + timeout_s
  with tf.compat.v1.Session(master, config=config) as session:
    while True:
      missing = session.run(report)
      if not len(missing):  # pylint: disable=g-explicit-length-test
        return
      if time.monotonic() >= deadline:
        raise TimeoutError(
            'the chief has not initialised %s (and %d more) within %g s; '
            'is worker 0 running?' % (missing[0].decode(), len(missing) - 1,
                                      timeout_s))
      time.sleep(poll_s)
