"""Benchmark: one `Pruning.mask_update_op()` run beside numpy floors.

For each weight size (float32 side x side) and `threshold_method`, times one
mask update of a single weight element-wise, with 4x4 block pooling, and with
2:4 (N:M, which has no threshold method), plus a model of several weights.
In the same run it times the memory floor (numpy copy of the weight into a
preallocated array) and the selection floor (`np.partition` of |w|, abs
included, finding the k-th largest), and a TensorFlow floor: one session run
that only writes the masks for a known threshold (abs, compare, cast, assign:
the work every update must do whatever selects the threshold). It prints the
ratios against the targets:

  every threshold_method: <= 3x the TF mask floor (issue 17; issue 10's
  histogram <= 12x copy and sort, exact <= 3x np.partition are printed too);
  4x4 blocks and 2:4 <= 2x their element-wise counterpart;
  peak extra memory of the update <= 2x the weight's bytes (at the sizes in
  --memory_sizes).

Between two timed updates every weight moves a little (+ N(0, move^2), as a
training step moves it; untimed), so no update sees the weights the last one
saw. `update_ms` is such a warm update (the threshold variable holds the last
threshold); `cold_ms` is the same update with the threshold reset to 0 first
(the first update, or one after the schedule moved the k-th value away).
Peak extra memory is measured by `bench_util.peak_step_bytes` (TensorFlow's
allocation records of one traced warm update).

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
_MOVE = flags.DEFINE_float('move', 1e-3,
                           'Stddev of the move of every weight between two '
                           'timed updates (weights are N(0, 1)).')
_COLD = flags.DEFINE_bool('cold', True, 'Also time cold updates.')
_MEMORY_SIZES = flags.DEFINE_list(
    'memory_sizes', ['4096'], 'Sides at which to measure peak extra memory.')
_OUTPUT = flags.DEFINE_string('output',
                              'benchmarks/results/mask_update.json',
                              'JSON file to write ('' for none).')

TARGETS = dict(tf_mask=3.0, structured=2.0, memory=2.0)


def _hparams(method, structure):
  text = ('threshold_method=%s,initial_sparsity=%g,target_sparsity=%g,'
          'threshold_decay=0.0,begin_pruning_step=0' %
          (method, _SPARSITY.value, _SPARSITY.value))
  if structure == 'block4x4':
    text += ',block_height=4,block_width=4'
  elif structure == '2:4':
    text += ',sparsity_m_by_n=2:4'
  return pruning.get_pruning_hparams().parse(text)


def _timed_update(update, move, reset, measure_memory):
  """(warm ms, cold ms or None, peak extra bytes or None) of `update`."""
  with tf.compat.v1.Session(
      config=bench_util.session_config(_THREADS.value)) as session:
    session.run(tf.compat.v1.global_variables_initializer())
    warm = bench_util.median_ms(lambda: session.run(update), _REPEATS.value,
                                max(_WARMUP.value, 1),
                                setup=lambda: session.run(move))
    cold = None
    if _COLD.value:
      cold = bench_util.median_ms(
          lambda: session.run(update), _REPEATS.value, _WARMUP.value,
          setup=lambda: session.run([move, reset]))
    memory = None
    if measure_memory:
      session.run(update)
      session.run(move)
      memory = bench_util.peak_step_bytes(session, update)
    return warm, cold, memory


def _median_run_ms(op):
  """Median ms of `session.run(op)` in a fresh session of the default graph."""
  with tf.compat.v1.Session(
      config=bench_util.session_config(_THREADS.value)) as session:
    session.run(tf.compat.v1.global_variables_initializer())
    return bench_util.median_ms(lambda: session.run(op), _REPEATS.value,
                                _WARMUP.value)


def time_mask_update(weights, method, structure, measure_memory=False):
  """(warm ms, cold ms, peak extra bytes) of one mask_update_op run.

  The weights move by N(0, move^2) before every run (untimed).
  """
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    moves = []
    for i, value in enumerate(weights):
      with tf.compat.v1.variable_scope('layer%d' % i) as scope:
        weight = tf.compat.v1.get_variable('weights', initializer=value,
                                           use_resource=True)
        pruning.apply_mask(weight, scope)
      moves.append(weight.assign_add(
          tf.random.normal(value.shape, stddev=_MOVE.value, seed=i)).op)
    update = pruning.Pruning(_hparams(method, structure),
                             global_step=step).mask_update_op()
    reset = tf.group(*[t.assign(tf.zeros_like(t))
                       for t in pruning.get_thresholds()])
    return _timed_update(update, tf.group(*moves), reset, measure_memory)


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


def _row(base, structure, method, timing, weight_bytes):
  ms, cold_ms, memory = timing
  row = dict(base, structure=structure, method=method, update_ms=ms,
             cold_ms=cold_ms, x_copy=ms / base['copy_ms'],
             x_partition=ms / base['partition_ms'],
             x_tf_mask=ms / base['tf_mask_ms'],
             cold_x_tf_mask=None if cold_ms is None else
             cold_ms / base['tf_mask_ms'])
  if memory is not None:
    row['peak_extra_mb'] = memory / 2.0 ** 20
    row['x_weight_bytes'] = memory / weight_bytes
    row['memory_met'] = memory <= TARGETS['memory'] * weight_bytes
  return row


def _rows_for(label, weights, measure_memory):
  copy_ms, partition_ms = numpy_floors(weights)
  tf_mask_ms = time_tf_mask_floor(weights)
  base = dict(weight=label, copy_ms=copy_ms, partition_ms=partition_ms,
              tf_mask_ms=tf_mask_ms)
  weight_bytes = sum(w.nbytes for w in weights)
  rows, elementwise = [], {}
  structures = ['elementwise'] + (['block4x4'] if _STRUCTURED.value else [])
  for structure in structures:
    for method in _METHODS.value:
      row = _row(base, structure, method,
                 time_mask_update(weights, method, structure, measure_memory),
                 weight_bytes)
      if structure == 'elementwise':
        elementwise[method] = row['update_ms']
      else:
        row['x_elementwise'] = row['update_ms'] / elementwise[method]
      rows.append(_judge(row))
      print('%s %s %s: %.2f ms' % (label, structure, method,
                                   row['update_ms']), flush=True)
  if _STRUCTURED.value:
    row = _row(base, '2:4', '-',
               time_mask_update(weights, 'histogram', '2:4', measure_memory),
               weight_bytes)
    reference = elementwise.get('histogram') or min(elementwise.values())
    row['x_elementwise'] = row['update_ms'] / reference
    rows.append(_judge(row))
  return rows


def _judge(row):
  """Adds the row's speed target and whether it is met."""
  if row['structure'] != 'elementwise':
    row['target'] = '<= %gx elementwise' % TARGETS['structured']
    row['met'] = row['x_elementwise'] <= TARGETS['structured']
  else:
    row['target'] = '<= %gx TF mask' % TARGETS['tf_mask']
    row['met'] = row['x_tf_mask'] <= TARGETS['tf_mask']
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
    rows.extend(_rows_for('%dx%d' % (side, side), [weight],
                          str(side) in _MEMORY_SIZES.value))
  if _MODEL_WEIGHTS.value:
    side = _MODEL_SIDE.value
    model = [rng.standard_normal((side, side)).astype(np.float32)
             for _ in range(_MODEL_WEIGHTS.value)]
    rows.extend(_rows_for('%d x %dx%d' % (len(model), side, side), model,
                          False))
  columns = ['weight', 'structure', 'method', 'update_ms', 'cold_ms',
             'tf_mask_ms', 'copy_ms', 'partition_ms', 'x_tf_mask',
             'cold_x_tf_mask', 'x_copy', 'x_partition', 'x_elementwise',
             'target', 'met', 'peak_extra_mb', 'x_weight_bytes',
             'memory_met']
  bench_util.report('mask_update', columns, rows, before, _OUTPUT.value,
                    sparsity=_SPARSITY.value, move=_MOVE.value,
                    repeats=_REPEATS.value,
                    warmup=_WARMUP.value, threads=_THREADS.value)


if __name__ == '__main__':
  app.run(main)
