"""A small deterministic pruning run that checkpoints and resumes.

Run by tests/resume_test.py as a subprocess that is killed with SIGKILL and
restarted. At start it restores the latest checkpoint in --train_dir if there
is one (printing `restored step=R`), else initialises. After every training
step it runs the conditional mask update and prints, flushed:

  step=T sparsity=<repr per mask> threshold=<repr per mask> last_update=L
      digest=<sha1 of masks and weights>

and every --save_every steps it saves a checkpoint (printing `saved step=T`).
Data for step T comes from numpy RandomState(T), the graph is built with op
determinism and one thread, so a run restarted from step R repeats, bit for
bit, what an uninterrupted run printed after step R.
"""
import hashlib
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
# pylint: disable=g-import-not-at-top
from model_pruning.python import pruning
from model_pruning.python.layers import core_layers

_TRAIN_DIR = flags.DEFINE_string('train_dir', None, 'Checkpoint directory.')
_STEPS = flags.DEFINE_integer('steps', 30, 'Last global step.', lower_bound=1)
_SAVE_EVERY = flags.DEFINE_integer('save_every', 4, 'Steps between saves.',
                                   lower_bound=1)
_STEP_DELAY = flags.DEFINE_float('step_delay', 0.0,
                                 'Seconds to sleep after each step, so a '
                                 'test can kill the process mid-run.')
_HPARAMS = flags.DEFINE_string(
    'hparams', 'threshold_method=sort,threshold_decay=0.9,'
    'pruning_frequency=5,sparsity_function_end_step=24,target_sparsity=0.8',
    'Pruning hparams.')
flags.mark_flag_as_required('train_dir')

_BATCH, _IN, _HIDDEN, _OUT = 16, 12, 24, 3


def _model_loss(x, y):
  """Squared error of apply_mask dense -> tanh -> MaskedFullyConnected."""
  with tf.compat.v1.variable_scope('hidden') as scope:
    kernel = tf.compat.v1.get_variable(
        'weights', [_IN, _HIDDEN],
        initializer=tf.compat.v1.initializers.random_normal(stddev=0.3,
                                                            seed=1))
    h = tf.tanh(tf.matmul(x, pruning.apply_mask(kernel, scope)))
  out = core_layers.MaskedFullyConnected(
      _OUT, kernel_initializer=tf.compat.v1.initializers.random_normal(
          stddev=0.3, seed=2), name='out')(h)
  decay = 1e-2 * tf.add_n([tf.nn.l2_loss(w) for w in pruning.get_weights()])
  return tf.reduce_mean(tf.square(out - y)) + decay


def _build():
  x = tf.compat.v1.placeholder(tf.float32, [_BATCH, _IN], name='x')
  y = tf.compat.v1.placeholder(tf.float32, [_BATCH, _OUT], name='y')
  step = tf.compat.v1.train.get_or_create_global_step()
  train_op = tf.compat.v1.train.MomentumOptimizer(0.1, 0.9).minimize(
      _model_loss(x, y), global_step=step)
  hparams = pruning.get_pruning_hparams().parse(_HPARAMS.value)
  update = pruning.Pruning(hparams, global_step=step)
  last_update = [v for v in tf.compat.v1.global_variables()
                 if v.op.name.endswith('last_mask_update_step')][0]
  return x, y, step, train_op, update.conditional_mask_update_op(), last_update


def _batch(step):
  rng = np.random.RandomState(step)
  return (rng.normal(size=[_BATCH, _IN]).astype(np.float32),
          rng.normal(size=[_BATCH, _OUT]).astype(np.float32))


def _report(sess, step, last_update):
  masks, thresholds, weights, last = sess.run(
      [pruning.get_masks(), pruning.get_thresholds(), pruning.get_weights(),
       last_update])
  digest = hashlib.sha1()
  for array in masks + weights:
    digest.update(np.ascontiguousarray(array).tobytes())
  sparsity = ','.join(repr(float(1.0 - m.mean())) for m in masks)
  threshold = ','.join(repr(float(t)) for t in thresholds)
  print('step=%d sparsity=%s threshold=%s last_update=%d digest=%s' %
        (step, sparsity, threshold, last, digest.hexdigest()), flush=True)


def train(train_dir, steps, save_every, step_delay):
  """Runs (or resumes) the schedule up to `steps`, printing one line a step."""
  tf.config.experimental.enable_op_determinism()
  config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1,
                                    intra_op_parallelism_threads=1)
  with tf.Graph().as_default():
    x, y, step, train_op, mask_update, last_update = _build()
    saver = tf.compat.v1.train.Saver(max_to_keep=100)
    with tf.compat.v1.Session(config=config) as sess:
      latest = tf.compat.v1.train.latest_checkpoint(train_dir)
      if latest:
        saver.restore(sess, latest)
        print('restored step=%d' % sess.run(step), flush=True)
      else:
        sess.run(tf.compat.v1.global_variables_initializer())
      current = sess.run(step)
      while current < steps:
        xs, ys = _batch(current)
        sess.run(train_op, {x: xs, y: ys})
        sess.run(mask_update)
        current = sess.run(step)
        _report(sess, current, last_update)
        if current % save_every == 0:
          saver.save(sess, os.path.join(train_dir, 'model.ckpt'),
                     global_step=current)
          print('saved step=%d' % current, flush=True)
        time.sleep(step_delay)


def main(argv):
  del argv
  tf.compat.v1.disable_eager_execution()
  train(_TRAIN_DIR.value, _STEPS.value, _SAVE_EVERY.value, _STEP_DELAY.value)


if __name__ == '__main__':
  app.run(main)
