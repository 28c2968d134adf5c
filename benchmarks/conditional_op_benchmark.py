"""Benchmark: what a step costs when the conditional mask update is not due.

Times one MLP training step (784-1024-1024-10, batch 256) followed, in the
same `session.run`, by one way of updating the masks "when due", with a
schedule that is never due (`begin_pruning_step` far away) and, with
`--due`, one that is due every step:

* masks_only: the train op alone (the floor: masked products, no update op);
* host: the train op and the global step fetched together, the update
  decided in Python from the `Schedule` (what `PruningHook` does; a due step
  then runs the conditional op in a second `session.run`);
* if_v2: `tf.compat.v1.cond` under control flow v2 (an `If` op whose
  branches are functions, lowered to Switch/Merge by the session);
* cond_v1: the same cond built with TF1 control flow (Switch/Merge, branch
  ops in the graph itself);
* cond_call: the TF1 cond whose branch is one (never inlined) call of a
  function holding the update (a Switch per resource the call captures);
* gated_call: that call gated by one Switch on the predicate, through a
  pivot's control edge, and a Merge: what `conditional_mask_update_op`
  builds for local resource variables;
* gated_assign: no control flow: the new masks are always computed and
  `assign(where(due, new, old))` keeps the old ones when not due.

Configurations are interleaved window by window; each figure is the median
over windows of the mean step time. Prints ms per step and the overhead over
masks_only measured in the same run.

Usage:
  python3 -m benchmarks.conditional_op_benchmark [--repeats=7] [--due]
"""
from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from benchmarks import bench_util
from benchmarks import training_overhead_benchmark as overhead
from model_pruning.python import mask_updates
from model_pruning.python import pruning
from model_pruning.python import saliency_masks

_VARIANTS = ['masks_only', 'host', 'if_v2', 'cond_v1', 'cond_call',
             'gated_call', 'gated_assign']
_REPEATS = flags.DEFINE_integer('cond_repeats', 7, 'Timed windows.',
                                lower_bound=1)
_METHOD = flags.DEFINE_enum('cond_threshold_method', 'histogram', ['histogram', 'sort', 'exact'], 'threshold_method of the update.')
_DUE = flags.DEFINE_bool('due', True, 'Also time an update due every step.')
_COND_OUTPUT = flags.DEFINE_string(
    'cond_output', 'benchmarks/results/conditional_op.json',
    "JSON file to write ('' for none).")


def _gated_assign(prune, step, is_due):
  """assign(where(is_due, new, old)) for every mask: no control flow."""
  spec = prune.get_spec()
  context = mask_updates.UpdateContext(
      step=step,
      sparsity_for=lambda target: prune.schedule.sparsity_tensor(step, target),
      method=saliency_masks.ThresholdMethod(
          name=spec.threshold_method, nbins=spec.nbins,
          decay=spec.threshold_decay, seed=None, step=step),
      use_gradient=False, spec=spec)
  assigns = []
  for record in prune.records():
    threshold, mask = mask_updates.new_threshold_and_mask(record, context)
    assigns += mask_updates.assign_ops(
        record, tf.where(is_due, threshold, record.threshold.read_value()),
        tf.where(is_due, mask, record.mask.read_value()))
  assigns.append(prune.last_update_step.assign(
      tf.where(is_due, step, prune.last_update_step.read_value())))
  return tf.group(*assigns)


def build_window(variant, due):
  """window(): runs `window` steps of `variant`; due: an update every step."""
  graph = tf.Graph()
  with graph.as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    images, labels = overhead.batch('mlp')
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=overhead.mlp(images, masked=True)))
    train = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
        loss, global_step=global_step)
    prune = pruning.Pruning(pruning.get_pruning_hparams().parse(
        'threshold_method=%s,pruning_frequency=1,target_sparsity=0.9,'
        'threshold_decay=0.0,sparsity_function_end_step=1000000,'
        'begin_pruning_step=%d' % (_METHOD.value, 0 if due else 10 ** 9)),
                            global_step=global_step)
    fetch = train
    if variant in ('if_v2', 'cond_v1', 'cond_call', 'gated_call',
                   'gated_assign'):
      with tf.control_dependencies([train]):
        step = tf.cast(global_step.read_value(), tf.int32)
        is_due = prune.schedule.is_update_step_tensor(
            step, prune.last_update_step.read_value())
        if variant == 'gated_assign':
          fetch = _gated_assign(prune, step, is_due)
        elif variant in ('cond_v1', 'gated_call'):
          fetch = mask_updates.conditional(
              is_due, prune.mask_update_op, name='conditional',
              one_call=variant == 'gated_call')
        elif variant == 'cond_call':
          with mask_updates.tf1_control_flow():
            fetch = tf.compat.v1.cond(
                is_due,
                lambda: mask_updates.one_call(prune.mask_update_op,
                                              'conditional').op,
                tf.no_op)
        else:  # if_v2: TF2 behaviour builds control flow v2.
          fetch = tf.compat.v1.cond(is_due, prune.mask_update_op, tf.no_op)
    elif variant == 'host':
      fetch = [train, global_step]
      conditional = prune.conditional_mask_update_op()
    session = tf.compat.v1.Session(
        graph=graph, config=bench_util.session_config(overhead.threads()))
    session.run(tf.compat.v1.global_variables_initializer())
  last = [0]

  def window():
    for _ in range(overhead.window_steps()):
      result = session.run(fetch)
      if variant == 'host':
        fetched = int(result[1])
        if prune.schedule.is_update_step(fetched, last[0]):
          session.run(conditional)
          last[0] = fetched

  return window


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % argv[1:])
  logging.set_verbosity(logging.WARNING)
  before = bench_util.machine()
  rows = []
  for due in [False, True] if _DUE.value else [False]:
    windows = [build_window(v, due) for v in _VARIANTS]
    for window in windows:
      window()  # Warm-up.
    times = [[] for _ in _VARIANTS]
    for _ in range(_REPEATS.value):
      for window, samples in zip(windows, times):
        samples.append(bench_util.median_ms(window, 1, 0) /
                       overhead.window_steps())
    medians = [float(np.median(t)) for t in times]
    for variant, ms in zip(_VARIANTS, medians):
      rows.append(dict(update='every step' if due else 'never due',
                       variant=variant, ms_per_step=ms,
                       masks_only_ms=medians[0],
                       overhead_pct=100 * (ms / medians[0] - 1)))
      print('%s %s: %.2f ms' % (rows[-1]['update'], variant, ms), flush=True)
  bench_util.report('conditional_op', ['update', 'variant', 'ms_per_step',
                                       'masks_only_ms', 'overhead_pct'],
                    rows, before, _COND_OUTPUT.value,
                    repeats=_REPEATS.value, window=overhead.window_steps())


if __name__ == '__main__':
  app.run(main)
