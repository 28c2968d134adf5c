"""Benchmark: one `Pruning.mask_update_op()` run beside numpy floors.

For each weight size (float32 side x side) and `threshold_method`, times one
mask update of a single weight element-wise, with 4x4 block pooling, and with
2:4 (N:M, which has no threshold method), plus a model of several weights.
In the same run it times the memory floor (numpy copy of the weight into a
preallocated array) and the selection floor (`np.partition` of |w|, abs
included, finding the k-th largest), and a TensorFlow floor: one session run
that only writes the masks for a known threshold (abs, compare, cast, assign:
the work every update must do whatever selects the threshold). It prints the
ratios against the issue-10 targets:

  histogram <= 12x copy; sort, exact <= 3x np.partition;
  4x4 blocks and 2:4 <= 2x their element-wise counterpart.

Usage:
  python3 -m benchmarks.mask_update_benchmark [--sizes=256,1024] [--repeats=9]
"""
from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from benchmarks import bench_util
from model_pruning.python import pruning

_SIZES = flags.DEFINE_list('sizes', ['256', '1024', '2048', '4096'],
                           'Weight sides: each weight is side x side float32.')
_METHODS = flags.DEFINE_list('methods', ['histogram', 'sort', 'exact'],
                             'threshold_method values to time.')
_SPARSITY = flags.DEFINE_float('sparsity', 0.9, 'Sparsity of the update.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed runs per figure.',
                                lower_bound=1)
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed runs first.',
                               lower_bound=0)
_THREADS = flags.DEFINE_integer('threads', 2, 'TF intra/inter-op threads.',
                                lower_bound=1)
_MODEL_WEIGHTS = flags.DEFINE_integer(
    'model_weights', 10, 'Weights in the model row (0: no model row).',
    lower_bound=0)
_MODEL_SIDE = flags.DEFINE_integer('model_side', 1024,
                                   'Side of each weight of the model row.')
_STRUCTURED = flags.DEFINE_bool('structured', True,
                                'Also time 4x4 blocks and 2:4.')
_OUTPUT = flags.DEFINE_string('output',
                              'benchmarks/results/mask_update.json',
                              'JSON file to write ('' for none).')

TARGETS = dict(histogram=('copy', 12.0), sort=('partition', 3.0),
               exact=('partition', 3.0), structured=2.0)


def _hparams(method, structure):
  text = ('threshold_method=%s,initial_sparsity=%g,target_sparsity=%g,'
          'threshold_decay=0.0,begin_pruning_step=0' %
          (method, _SPARSITY.value, _SPARSITY.value))
  if structure == 'block4x4':
    text += ',block_height=4,block_width=4'
  elif structure == '2:4':
    text += ',sparsity_m_by_n=2:4'
  return pruning.get_pruning_hparams().parse(text)


def _median_run_ms(op):
  """Median ms of `session.run(op)` in a fresh session of the default graph."""
  with tf.compat.v1.Session(
      config=bench_util.session_config(_THREADS.value)) as session:
    session.run(tf.compat.v1.global_variables_initializer())
    return bench_util.median_ms(lambda: session.run(op), _REPEATS.value,
                                _WARMUP.value)


def time_mask_update(weights, method, structure):
  """Median ms of one mask_update_op run for these numpy weights."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    for i, value in enumerate(weights):
      with tf.compat.v1.variable_scope('layer%d' % i) as scope:
        weight = tf.compat.v1.get_variable('weights', initializer=value,
                                           use_resource=True)
        pruning.apply_mask(weight, scope)
    update = pruning.Pruning(_hparams(method, structure),
                             global_step=step).mask_update_op()
    return _median_run_ms(update)


def time_tf_mask_floor(weights):
  """Median ms of writing |w| > constant into each weight's mask variable."""
  with tf.Graph().as_default():
    assigns = []
    for i, value in enumerate(weights):
      weight = tf.compat.v1.get_variable('weights%d' % i, initializer=value,
                                         use_resource=True)
      mask = tf.compat.v1.get_variable(
          'mask%d' % i, value.shape, initializer=tf.ones_initializer(),
          trainable=False, use_resource=True)
      assigns.append(mask.assign(
          tf.cast(tf.abs(weight) > 1.0, tf.float32)).op)
    return _median_run_ms(tf.group(*assigns))


def numpy_floors(weights):
  """(copy ms, np.partition ms) for all `weights` together."""
  copies = [np.empty_like(w) for w in weights]
  keep = [max(1, int(round(w.size * (1 - _SPARSITY.value)))) for w in weights]

  def copy():
    for source, target in zip(weights, copies):
      np.copyto(target, source)

  def partition():
    for w, k in zip(weights, keep):
      flat = np.abs(w).ravel()
      np.partition(flat, flat.size - k)[flat.size - k]  # pylint: disable=expression-not-assigned

  return (bench_util.median_ms(copy, _REPEATS.value, _WARMUP.value),
          bench_util.median_ms(partition, _REPEATS.value, _WARMUP.value))


def _rows_for(label, weights):
  copy_ms, partition_ms = numpy_floors(weights)
  tf_mask_ms = time_tf_mask_floor(weights)
  base = dict(weight=label, copy_ms=copy_ms, partition_ms=partition_ms,
              tf_mask_ms=tf_mask_ms)
  rows, elementwise = [], {}
  structures = ['elementwise'] + (['block4x4'] if _STRUCTURED.value else [])
  for structure in structures:
    for method in _METHODS.value:
      ms = time_mask_update(weights, method, structure)
      row = dict(base, structure=structure, method=method, update_ms=ms,
                 x_copy=ms / copy_ms, x_partition=ms / partition_ms,
                 x_tf_mask=ms / tf_mask_ms)
      if structure == 'elementwise':
        elementwise[method] = ms
      else:
        row['x_elementwise'] = ms / elementwise[method]
      rows.append(_judge(row))
      print('%s %s %s: %.2f ms' % (label, structure, method, ms), flush=True)
  if _STRUCTURED.value:
    ms = time_mask_update(weights, 'histogram', '2:4')
    row = dict(base, structure='2:4', method='-', update_ms=ms,
               x_copy=ms / copy_ms, x_partition=ms / partition_ms,
               x_tf_mask=ms / tf_mask_ms)
    reference = elementwise.get('histogram') or min(elementwise.values())
    row['x_elementwise'] = ms / reference
    rows.append(_judge(row))
  return rows


def _judge(row):
  """Adds the issue-10 target and whether this row meets it."""
  if row['structure'] != 'elementwise':
    row['target'] = '<= %gx elementwise' % TARGETS['structured']
    row['met'] = row['x_elementwise'] <= TARGETS['structured']
  else:
    floor, factor = TARGETS[row['method']]
    row['target'] = '<= %gx %s' % (factor, floor)
    row['met'] = row['x_' + floor] <= factor
  return row


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % argv[1:])
  logging.set_verbosity(logging.WARNING)
  rng = np.random.default_rng(0)
  before = bench_util.machine()
  rows = []
  for side in [int(s) for s in _SIZES.value]:
    weight = rng.standard_normal((side, side)).astype(np.float32)
    rows.extend(_rows_for('%dx%d' % (side, side), [weight]))
  if _MODEL_WEIGHTS.value:
    side = _MODEL_SIDE.value
    model = [rng.standard_normal((side, side)).astype(np.float32)
             for _ in range(_MODEL_WEIGHTS.value)]
    rows.extend(_rows_for('%d x %dx%d' % (len(model), side, side), model))
  columns = ['weight', 'structure', 'method', 'update_ms', 'copy_ms',
             'partition_ms', 'tf_mask_ms', 'x_copy', 'x_partition',
             'x_tf_mask', 'x_elementwise', 'target', 'met']
  bench_util.report('mask_update', columns, rows, before, _OUTPUT.value,
                    sparsity=_SPARSITY.value, repeats=_REPEATS.value,
                    warmup=_WARMUP.value, threads=_THREADS.value)


if __name__ == '__main__':
  app.run(main)
