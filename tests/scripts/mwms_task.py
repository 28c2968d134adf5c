"""MultiWorkerMirroredStrategy worker in graph mode, for cluster_task.py.

Reads TF_CONFIG ({"cluster": {"worker": [...]}, "task": {...}}), builds the
cluster_task model under `tf.compat.v1.distribute.experimental.
MultiWorkerMirroredStrategy` with the mask update in cross-replica context,
and trains with a session on its own server. Each worker feeds batch(step)
(the global batch is all workers' batches together). Writes the per-step
sparsities and the final masks to <out_dir>/mwms<index>.json; on a failure
writes the exception type and message instead and exits 1.
"""
import json
import os
import traceback

import tensorflow as tf

import cluster_task
from model_pruning.python import pruning


def _build(strategy):
  x = tf.compat.v1.placeholder(tf.float32, [cluster_task.BATCH,
                                            cluster_task.IN])
  y = tf.compat.v1.placeholder(tf.float32, [cluster_task.BATCH,
                                            cluster_task.OUT])
  with strategy.scope():
    step = tf.compat.v1.train.get_or_create_global_step()
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.05)

    def replica_fn():
      loss = cluster_task.model_loss(x, y, partitioned=False)
      return optimizer.minimize(
          loss / strategy.num_replicas_in_sync, global_step=step)

    train_op = tf.group(*strategy.experimental_local_results(
        strategy.run(replica_fn)))
    update = pruning.Pruning(
        pruning.get_pruning_hparams().parse(cluster_task.HPARAMS),
        global_step=step).conditional_mask_update_op()
  return x, y, train_op, update, pruning.get_masks(), step


def _train(args, task_index):
  strategy = tf.compat.v1.distribute.experimental.MultiWorkerMirroredStrategy()
  config = strategy.update_config_proto(tf.compat.v1.ConfigProto())
  spec = json.loads(os.environ['TF_CONFIG'])
  server = tf.distribute.Server(tf.train.ClusterSpec(spec['cluster']),
                                job_name='worker', task_index=task_index,
                                config=config, start=True)
  with tf.Graph().as_default():
    x, y, train_op, update, masks, step = _build(strategy)
    sparsities = [tf.nn.zero_fraction(m) for m in masks]
    trace = []
    with tf.compat.v1.Session(server.target, config=config) as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for i in range(args.max_steps):
        xv, yv = cluster_task.batch(i)
        session.run(train_op, {x: xv, y: yv})
        session.run(update)
        trace.append([float(s) for s in session.run(sparsities)])
        print('step %d' % i, flush=True)
      final = {m.op.name: v.tolist() for m, v in
               zip(masks, session.run(masks))}
  return dict(num_replicas=strategy.num_replicas_in_sync, trace=trace,
              masks=final)


def run(args):
  task_index = json.loads(os.environ['TF_CONFIG'])['task']['index']
  try:
    result = dict(ok=True, **_train(args, task_index))
  except Exception as error:  # pylint: disable=broad-except
    traceback.print_exc()
    result = dict(ok=False, error_type=type(error).__name__,
                  error=str(error).splitlines()[0] if str(error) else '')
  cluster_task.write_result(args, 'mwms%d' % task_index, result)
  if not result['ok']:
    raise SystemExit(1)
