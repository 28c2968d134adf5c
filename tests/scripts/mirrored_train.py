"""Trains a small pruned model under MirroredStrategy and on one device.

Run as a subprocess by tests/distributed_test.py: it splits the CPU into two
logical devices before TensorFlow initialises, which would disturb every other
test in a shared process. Prints one JSON object on its last stdout line:

  {"mirrored": RUN, "single": RUN}, RUN = {"sparsity": [per step, per mask],
   "masks": {name: mask}, "replica_masks_equal": bool, "weights": {...}}

Both runs see the same data and initial values; the mirrored run splits each
global batch of 8 examples into two replicas of 4.
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from model_pruning.python import pruning  # pylint: disable=g-import-not-at-top
from model_pruning.python.layers import core_layers

_BATCH, _IN, _HIDDEN, _OUT = 8, 16, 32, 4
_STEPS = 12
_HPARAMS = ('threshold_method=sort,threshold_decay=0.0,pruning_frequency=2,'
            'begin_pruning_step=0,sparsity_function_begin_step=0,'
            'sparsity_function_end_step=8,target_sparsity=0.75')


def split_cpu():
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def batch(step):
  rng = np.random.RandomState(step)
  x = rng.normal(size=[_BATCH, _IN]).astype(np.float32)
  y = rng.normal(size=[_BATCH, _OUT]).astype(np.float32)
  return x, y


def model_loss(x, y):
  """Mean squared error of apply_mask dense -> relu -> MaskedFullyConnected."""
  init = tf.compat.v1.initializers.random_normal(stddev=0.3, seed=1)
  with tf.compat.v1.variable_scope('hidden') as scope:
    kernel = tf.compat.v1.get_variable('weights', [_IN, _HIDDEN],
                                       initializer=init)
    h = tf.nn.relu(tf.matmul(x, pruning.apply_mask(kernel, scope)))
  out = core_layers.MaskedFullyConnected(
      _OUT, kernel_initializer=tf.compat.v1.initializers.random_normal(
          stddev=0.3, seed=2), name='out')(h)
  return tf.reduce_mean(tf.square(out - y))


def build(strategy, replicas):
  """Returns (x, y, train_op, mask_update_op, masks) in the current graph."""
  x = tf.compat.v1.placeholder(tf.float32, [_BATCH, _IN])
  y = tf.compat.v1.placeholder(tf.float32, [_BATCH, _OUT])
  with strategy.scope():
    step = tf.compat.v1.train.get_or_create_global_step()
    optimizer = tf.compat.v1.train.GradientDescentOptimizer(0.05)

    def replica_fn():
      rid = tf.distribute.get_replica_context().replica_id_in_sync_group
      per = _BATCH // replicas
      xs = tf.reshape(x, [replicas, per, _IN])[rid]
      ys = tf.reshape(y, [replicas, per, _OUT])[rid]
      loss = model_loss(xs, ys) / replicas   # mean over the global batch
      return optimizer.minimize(loss, global_step=step)

    train_op = strategy.experimental_local_results(strategy.run(replica_fn))
    # Cross-replica context: the update reads the weights once and assigns
    # the same new mask to every replica's copy.
    cross_replica = tf.distribute.in_cross_replica_context()
    hparams = pruning.get_pruning_hparams().parse(_HPARAMS)
    update = pruning.Pruning(hparams, global_step=step)
    mask_update_op = update.conditional_mask_update_op()
  return (x, y, tf.group(*train_op), mask_update_op, pruning.get_masks(),
          cross_replica)


def replica_values(var, strategy):
  return list(strategy.experimental_local_results(var))


def run(strategy, replicas):
  with tf.Graph().as_default():
    x, y, train_op, mask_update_op, masks, cross_replica = build(strategy,
                                                                 replicas)
    sparsities = [tf.nn.zero_fraction(m) for m in masks]
    per_replica = [replica_values(m, strategy) for m in masks]
    devices = [[c.device for c in copies] for copies in per_replica]
    config = tf.compat.v1.ConfigProto(device_count={'CPU': 2},
                                      inter_op_parallelism_threads=1,
                                      intra_op_parallelism_threads=1)
    with tf.compat.v1.Session(config=config) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      trace = []
      for i in range(_STEPS):
        xv, yv = batch(i)
        sess.run(train_op, {x: xv, y: yv})
        sess.run(mask_update_op)
        trace.append([float(v) for v in sess.run(sparsities)])
      copies = sess.run(per_replica)
      names = [m.name for m in masks]
      kernels = sess.run(pruning.get_weights())
  equal = all(all(np.array_equal(c[0], other) for other in c[1:])
              for c in copies)
  return {'sparsity': trace, 'replica_masks_equal': equal,
          'update_in_cross_replica_context': cross_replica,
          'strategy': type(strategy).__name__,
          'devices': devices,
          'num_replicas': [len(c) for c in copies],
          'masks': {n: c[0].tolist() for n, c in zip(names, copies)},
          'weights': [k.tolist() for k in kernels]}


def main():
  split_cpu()
  tf.config.experimental.enable_op_determinism()
  devices = ['/cpu:0', '/cpu:1']
  mirrored = run(tf.distribute.MirroredStrategy(devices), 2)
  single = run(tf.distribute.get_strategy(), 1)
  sys.stdout.write(json.dumps({'mirrored': mirrored, 'single': single}) + '\n')


if __name__ == '__main__':
  tf.compat.v1.disable_eager_execution()
  main()
