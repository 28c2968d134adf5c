"""One task of a local pruning cluster, for tests/cluster_test.py.

  --role=ps         starts a tf.distribute.Server and serves until killed
  --role=worker     between-graph replication: variables on the ps
                    (replica_device_setter), MonitoredTrainingSession with
                    the mask update only on the chief (worker 0)
  --role=reference  the same model in one process, for the sync comparison
  --role=mwms       MultiWorkerMirroredStrategy worker from TF_CONFIG

Model: x[8,16] -> apply_mask dense (`hidden`, optionally partitioned in two)
-> relu -> MaskedFullyConnected (`out`, 4 units), squared error, SGD.
Schedule: sort thresholds, f=2 from step 0, s: 0 -> 0.75 over steps 0..10.

Prints `step <global step before the run>` per step and `checkpoint saved at
step N` after each checkpoint, and writes one JSON file (--out) at the end:
trace (chief: per step global step, last_mask_update_step, sparsities),
final masks/thresholds/weights read from the ps, variable devices, and
(restarted chief) the checkpoint it resumed from.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
# pylint: disable=g-import-not-at-top
from examples.cifar10 import cluster
from model_pruning.python import pruning
from model_pruning.python import pruning_hook
from model_pruning.python import sync_pruning
from model_pruning.python.layers import core_layers

BATCH, IN, HIDDEN, OUT = 8, 16, 32, 4
HPARAMS = ('name=cluster_pruning,threshold_method=sort,threshold_decay=0.0,'
           'pruning_frequency=2,begin_pruning_step=0,end_pruning_step=-1,'
           'sparsity_function_begin_step=0,sparsity_function_end_step=10,'
           'target_sparsity=0.75')
LAST_UPDATE_NAME = 'cluster_pruning/last_mask_update_step'


def batch(seed):
  rng = np.random.RandomState(seed)
  return (rng.normal(size=[BATCH, IN]).astype(np.float32),
          rng.normal(size=[BATCH, OUT]).astype(np.float32))


def model_loss(x, y, partitioned):
  """Mean squared error of apply_mask dense -> relu -> MaskedFullyConnected."""
  init = tf.compat.v1.initializers.random_normal(stddev=0.3, seed=1)
  partitioner = (tf.compat.v1.fixed_size_partitioner(2) if partitioned
                 else None)
  with tf.compat.v1.variable_scope('hidden', partitioner=partitioner) as scope:
    kernel = tf.compat.v1.get_variable('weights', [IN, HIDDEN],
                                       initializer=init)
    h = tf.nn.relu(tf.matmul(x, pruning.apply_mask(kernel, scope)))
  out = core_layers.MaskedFullyConnected(
      OUT, kernel_initializer=tf.compat.v1.initializers.random_normal(
          stddev=0.3, seed=2), name='out')(h)
  return tf.reduce_mean(tf.square(out - y))


def _shards(variables):
  """The variables, each PartitionedVariable replaced by its shards."""
  result = []
  for variable in variables:
    if type(variable).__name__ == 'PartitionedVariable':  # not in tf.compat.v1
      result.extend(list(variable))
    else:
      result.append(variable)
  return result


def _last_update_variable():
  return [v for v in tf.compat.v1.global_variables()
          if v.op.name == LAST_UPDATE_NAME][0]


class Graph:
  """The training graph and the tensors the recorder reads."""

  def __init__(self, args, num_workers):
    self.step = tf.compat.v1.train.get_or_create_global_step()
    self.x = tf.compat.v1.placeholder(tf.float32, [BATCH, IN])
    self.y = tf.compat.v1.placeholder(tf.float32, [BATCH, OUT])
    loss = model_loss(self.x, self.y, args.partitioned)
    self.pruning = pruning.Pruning(
        pruning.get_pruning_hparams().parse(HPARAMS), global_step=self.step)
    self.optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.05)
    self.in_apply = args.variant == 'sync'
    if self.in_apply:
      # The chief's aggregated apply updates the masks before the next step.
      self.optimizer = tf.compat.v1.train.SyncReplicasOptimizer(
          sync_pruning.MaskUpdateAfterApply(self.optimizer, self.pruning),
          replicas_to_aggregate=num_workers, total_num_replicas=num_workers)
    self.train_op = self.optimizer.minimize(loss, global_step=self.step)
    self.masks = _shards(pruning.get_masks())
    self.thresholds = _shards(pruning.get_thresholds())
    self.weights = _shards(pruning.get_weights())
    self.last_update = _last_update_variable()
    self.sparsities = [tf.nn.zero_fraction(m) for m in self.masks]
    self.mask_update_op = self.pruning.conditional_mask_update_op()
    self.devices = {v.op.name: v.device
                    for v in tf.compat.v1.global_variables()}

  def pruning_hooks(self, kind):
    if self.in_apply:
      return []
    if kind == 'model_pruning':
      return [pruning_hook.ModelPruningHook(
          every_steps=1,
          listeners=[pruning_hook.ModelPruningListener(self.pruning)])]
    return [pruning_hook.PruningHook(mask_update_op=self.mask_update_op)]

  def state(self, session):
    """Masks, thresholds, weights (as lists), last update and global step."""
    masks, thresholds, weights, last, step = session.run(
        [self.masks, self.thresholds, self.weights, self.last_update,
         self.step])
    names = [m.op.name for m in self.masks]
    return dict(masks=dict(zip(names, [m.tolist() for m in masks])),
                thresholds=[float(t) for t in thresholds],
                weights=[w.tolist() for w in weights],
                last_update=int(last), global_step=int(step))


class FirstState(tf.compat.v1.train.SessionRunHook):
  """Chief only, first hook: the state as created or restored."""

  def __init__(self, graph):
    self._graph = graph
    self.state = None

  def after_create_session(self, session, coord):
    del coord  # Unused.
    self.state = self._graph.state(session)


class Recorder(tf.compat.v1.train.SessionRunHook):
  """Chief only: after each step, the step, last update and sparsities."""

  def __init__(self, graph):
    self._graph = graph
    self.trace = []

  def after_run(self, run_context, run_values):
    del run_values  # Unused.
    g = self._graph
    step, last, sparsities = run_context.session.run(
        [g.step, g.last_update, g.sparsities])
    self.trace.append([int(step), int(last), [float(s) for s in sparsities]])


class SaveAnnouncer(tf.compat.v1.train.CheckpointSaverListener):

  def after_save(self, session, global_step_value):
    del session  # Unused.
    print('checkpoint saved at step %d' % global_step_value, flush=True)


def checkpoint_state(ckpt_dir):
  """What the latest checkpoint in `ckpt_dir` holds, or None."""
  path = tf.train.latest_checkpoint(ckpt_dir) if ckpt_dir else None
  if not path:
    return None
  reader = tf.train.load_checkpoint(path)
  names = sorted(reader.get_variable_to_shape_map())
  masks = {n: reader.get_tensor(n).tolist() for n in names
           if n.endswith('/mask')}
  thresholds = {n: float(reader.get_tensor(n)) for n in names
                if n.endswith('/threshold')}
  return dict(path=path, masks=masks, thresholds=thresholds,
              last_update=int(reader.get_tensor(LAST_UPDATE_NAME)),
              global_step=int(reader.get_tensor('global_step')))


def run_ps(args):
  task = cluster.TaskConfig(json.loads(args.cluster), 'ps', args.task_index)
  server = cluster.start_server(task)
  print('ps %d serving' % args.task_index, flush=True)
  server.join()


def _hold(args):
  return bool(args.hold_file) and not os.path.exists(args.hold_file)


def _wait_for_file(path, timeout_s):
  deadline = time.monotonic() + timeout_s
  while not os.path.exists(path):
    if time.monotonic() > deadline:
      raise TimeoutError('%s did not appear within %g s' % (path, timeout_s))
    time.sleep(0.1)


def run_worker(args):
  task = cluster.TaskConfig(json.loads(args.cluster), 'worker',
                            args.task_index)
  cluster.wait_for_tasks(task.peer_addresses(), args.connect_timeout)
  server = cluster.start_server(task)
  resumed_from = checkpoint_state(args.ckpt_dir) if task.is_chief else None
  with tf.Graph().as_default():
    with tf.compat.v1.device(cluster.device_setter(task)):
      graph = Graph(args, task.num_workers)
    hooks, chief_hooks = [], []
    if args.variant == 'sync':
      # No start-up tokens: with them a worker may hand in a second gradient
      # for step 0, computed after the apply has updated some variables but
      # not others, and the run is no longer one process's.
      hooks.append(graph.optimizer.make_session_run_hook(task.is_chief,
                                                         num_tokens=0))
    recorder, first_state = Recorder(graph), FirstState(graph)
    if task.is_chief:
      # The chief alone updates the masks: they live once, on the ps.
      chief_hooks = [first_state] + graph.pruning_hooks(args.hook) + [recorder]
      if args.save_steps:
        chief_hooks.append(tf.compat.v1.train.CheckpointSaverHook(
            args.ckpt_dir, save_steps=args.save_steps,
            listeners=[SaveAnnouncer()]))
    config = cluster.session_config(task)
    if not task.is_chief:
      cluster.wait_for_chief_init(server.target, config, args.connect_timeout)
    with tf.compat.v1.train.MonitoredTrainingSession(
        master=server.target, is_chief=task.is_chief,
        checkpoint_dir=args.ckpt_dir if task.is_chief else None,
        save_checkpoint_secs=None, save_checkpoint_steps=None,
        save_summaries_steps=None, save_summaries_secs=None,
        log_step_count_steps=None, config=config, hooks=hooks,
        chief_only_hooks=chief_hooks, stop_grace_period_secs=5) as session:
      local = 0
      while not session.should_stop():
        step = session.run_step_fn(
            lambda step_context: step_context.session.run(graph.step))
        if step >= args.max_steps and not _hold(args):
          break
        seed = step if args.variant == 'sync' else (
            100000 * (args.task_index + 1) + local)
        x, y = batch(seed)
        session.run(graph.train_op, {graph.x: x, graph.y: y})
        local += 1
        print('step %d' % step, flush=True)
        time.sleep(args.step_sleep)
    done = os.path.join(args.out_dir, 'chief_done')
    if not task.is_chief:
      _wait_for_file(done, args.connect_timeout)  # the chief's last update
    with tf.compat.v1.Session(server.target, config=config) as session:
      final = graph.state(session)
  result = dict(role='worker', task_index=args.task_index, local_steps=local,
                trace=recorder.trace, first_state=first_state.state,
                final=final, devices=graph.devices,
                resumed_from=resumed_from)
  write_result(args, 'worker%d' % args.task_index, result)
  if task.is_chief:
    with open(done, 'w') as f:
      f.write('done')


def run_reference(args):
  """Single process, same batches as the sync workers: batch(step)."""
  with tf.Graph().as_default():
    graph = Graph(args, 1)
    recorder = Recorder(graph)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for step in range(args.max_steps):
        x, y = batch(step)
        session.run(graph.train_op, {graph.x: x, graph.y: y})
        session.run(graph.mask_update_op)
        s, last, sparsities = session.run(
            [graph.step, graph.last_update, graph.sparsities])
        recorder.trace.append([int(s), int(last),
                               [float(v) for v in sparsities]])
      final = graph.state(session)
  write_result(args, 'reference', dict(role='reference', trace=recorder.trace,
                                       final=final))


def write_result(args, name, result):
  path = os.path.join(args.out_dir, name + '.json')
  with open(path + '.tmp', 'w') as f:
    json.dump(result, f)
  os.replace(path + '.tmp', path)
  print('wrote %s' % path, flush=True)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--role', required=True,
                      choices=['ps', 'worker', 'reference', 'mwms'])
  parser.add_argument('--cluster', default='{}')
  parser.add_argument('--task_index', type=int, default=0)
  parser.add_argument('--variant', default='async', choices=['async', 'sync'])
  parser.add_argument('--hook', default='pruning',
                      choices=['pruning', 'model_pruning'])
  parser.add_argument('--partitioned', action='store_true')
  parser.add_argument('--max_steps', type=int, default=30)
  parser.add_argument('--ckpt_dir', default=None)
  parser.add_argument('--save_steps', type=int, default=0)
  parser.add_argument('--out_dir', default='.')
  parser.add_argument('--hold_file', default=None)
  parser.add_argument('--step_sleep', type=float, default=0.0)
  parser.add_argument('--connect_timeout', type=float, default=60.0)
  return parser.parse_args(argv)


def main(argv):
  args = parse_args(argv)
  tf.compat.v1.disable_eager_execution()
  if args.role == 'ps':
    run_ps(args)
  elif args.role == 'worker':
    run_worker(args)
  elif args.role == 'reference':
    run_reference(args)
  else:
    import mwms_task  # pylint: disable=g-import-not-at-top
    mwms_task.run(args)


if __name__ == '__main__':
  main(sys.argv[1:])
