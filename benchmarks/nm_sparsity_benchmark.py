"""Times the N:M mask against an elementwise magnitude mask (one run, ratios).

  python3 -m benchmarks.nm_sparsity_benchmark [--size=2048] [--reps=20]

Prints ms per mask for `abs(w) >= threshold` (the baseline a magnitude
pruning step pays anyway), for `m_by_n_mask` at 2:4, 1:4 and 4:8, and for a
top-k-on-transposed-groups variant kept for comparison; each ratio is to the
baseline measured in the same run. Every op feeds a reduce_sum so no 16 MB
fetch is timed; the reduce alone is printed too. Times (wall and process
CPU, all threads) are the best of 5 rounds, so load from other processes
inflates them less; on a busy machine trust the CPU column.
"""
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from model_pruning.python import nm_sparsity

_SIZE = flags.DEFINE_integer('size', 2048, 'Weight side (size x size).',
                             lower_bound=4)
_REPS = flags.DEFINE_integer('reps', 10, 'Runs per timed round.',
                             lower_bound=1)


def _time_ms(build, size, reps):
  with tf.Graph().as_default():
    weights = tf.compat.v1.Variable(
        np.random.RandomState(0).randn(size, size).astype(np.float32))
    total = tf.reduce_sum(build(weights))
    with tf.compat.v1.Session() as sess:
      sess.run(weights.initializer)
      sess.run(total)
      best_wall = best_cpu = float('inf')
      for _ in range(5):  # min of 5 rounds: robust to a busy machine
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(reps):
          sess.run(total)
        best_wall = min(best_wall, (time.perf_counter() - wall) / reps * 1e3)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / reps * 1e3)
      return best_wall, best_cpu


def _top_k_mask(weights, m=2, n=4):
  rows, cols = weights.shape
  groups = tf.reshape(tf.transpose(tf.abs(weights)), [-1, n])
  _, index = tf.math.top_k(groups, k=m)
  mask = tf.reduce_sum(tf.one_hot(index, n, dtype=weights.dtype), axis=1)
  return tf.transpose(tf.reshape(mask, [cols, rows]))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % argv[1:])
  size, reps = _SIZE.value, _REPS.value
  cases = [
      ('reduce_sum only', lambda w: w),
      ('elementwise abs>=t', lambda w: tf.cast(tf.abs(w) >= 0.5, w.dtype)),
      ('m_by_n_mask 2:4', lambda w: nm_sparsity.m_by_n_mask(w, 2, 4)),
      ('m_by_n_mask 1:4', lambda w: nm_sparsity.m_by_n_mask(w, 1, 4)),
      ('m_by_n_mask 4:8', lambda w: nm_sparsity.m_by_n_mask(w, 4, 8)),
      ('top_k+transpose 2:4', _top_k_mask)]
  times = {name: _time_ms(build, size, reps) for name, build in cases}
  base_wall, base_cpu = times['elementwise abs>=t']
  print('%dx%d float32, best of 5 rounds of %d runs; wall and CPU (all '
        'threads) ms' % (size, size, reps))
  for name, (wall, cpu) in times.items():
    print('%-22s wall %8.2f ms %6.2fx   cpu %8.2f ms %6.2fx'
          % (name, wall, wall / base_wall, cpu, cpu / base_cpu))


if __name__ == '__main__':
  app.run(main)
