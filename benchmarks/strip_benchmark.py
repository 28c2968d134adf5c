"""Benchmark: time to strip the cifar10 example's checkpoint.

Builds the cifar10 inference graph (masks included), saves a checkpoint to a
temporary directory and times `strip_checkpoint.strip_checkpoint` (freeze,
fold masks into the weights, write the GraphDef, build the report): the
median of `repeats` runs after `warmup`.

Usage:
  python3 -m benchmarks.strip_benchmark [--repeats=5]
"""
import os
import tempfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from benchmarks import bench_util
from examples.cifar10 import cifar10_pruning
from model_pruning.python import strip_checkpoint

_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed runs.', lower_bound=1)
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed runs first.',
                               lower_bound=0)
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/strip.json',
                              "JSON file to write ('' for none).")


def save_cifar10_checkpoint(directory):
  """Writes an initialised cifar10 pruning checkpoint; returns its prefix."""
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    images = tf.compat.v1.placeholder(
        tf.float32, [None, cifar10_pruning.IMAGE_SIZE,
                     cifar10_pruning.IMAGE_SIZE, 3], name='images')
    cifar10_pruning.inference(images)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return tf.compat.v1.train.Saver().save(
          session, os.path.join(directory, 'model.ckpt'))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % argv[1:])
  logging.set_verbosity(logging.WARNING)
  before = bench_util.machine()
  with tempfile.TemporaryDirectory() as directory:
    checkpoint = save_cifar10_checkpoint(directory)
    output = os.path.join(directory, 'out', 'stripped.pb')

    def strip():
      strip_checkpoint.strip_checkpoint(
          checkpoint, cifar10_pruning.LOGITS_NODE_NAME, output)

    ms = bench_util.median_ms(strip, _REPEATS.value, _WARMUP.value)
    checkpoint_bytes = sum(
        os.path.getsize(os.path.join(directory, f))
        for f in os.listdir(directory) if f.startswith('model.ckpt'))
    row = dict(model='cifar10', strip_ms=ms,
               checkpoint_bytes=checkpoint_bytes,
               stripped_bytes=os.path.getsize(output))
  bench_util.report('strip', ['model', 'strip_ms', 'checkpoint_bytes',
                              'stripped_bytes'], [row], before, _OUTPUT.value,
                    repeats=_REPEATS.value, warmup=_WARMUP.value)


if __name__ == '__main__':
  app.run(main)
