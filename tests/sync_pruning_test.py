"""MaskUpdateAfterApply: the conditional mask update inside apply_gradients."""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python import sync_pruning
from tests import reference as ref

_FREQUENCY, _END, _TARGET, _STEPS = 2, 6, 0.5, 9
_HPARAMS = ('name=p,threshold_method=sort,threshold_decay=0.0,'
            'pruning_frequency=%d,begin_pruning_step=0,'
            'sparsity_function_begin_step=0,sparsity_function_end_step=%d,'
            'target_sparsity=%g' % (_FREQUENCY, _END, _TARGET))


def _run(momentum):
  """Trains 9 steps; returns per-step (last update, mask zero count)."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('dense') as scope:
      w = tf.compat.v1.get_variable(
          'weights', [8, 4],
          initializer=tf.compat.v1.initializers.random_normal(seed=3))
      loss = tf.reduce_sum(tf.square(pruning.apply_mask(w, scope) - 1.0))
    p = pruning.Pruning(pruning.get_pruning_hparams().parse(_HPARAMS),
                        global_step=step)
    inner = (tf.compat.v1.train.MomentumOptimizer(0.01, 0.9) if momentum
             else tf.compat.v1.train.GradientDescentOptimizer(0.01))
    opt = sync_pruning.MaskUpdateAfterApply(inner, p)
    train_op = opt.minimize(loss, global_step=step)
    last = [v for v in tf.compat.v1.global_variables()
            if v.op.name == 'p/last_mask_update_step'][0]
    mask = pruning.get_masks()[0]
    slots = opt.get_slot_names()
    rows = []
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      for _ in range(_STEPS):
        session.run(train_op)
        last_value, mask_value = session.run([last, mask])
        rows.append((int(last_value), int(mask_value.size -
                                          np.count_nonzero(mask_value))))
  return rows, slots


@pytest.mark.parametrize('momentum', [False, True], ids=['sgd', 'momentum'])
def test_masks_update_at_the_scheduled_steps_inside_the_apply(momentum):
  rows, slots = _run(momentum)
  assert slots == (['momentum'] if momentum else [])
  last = 0
  for index, (update, zeros) in enumerate(rows):
    step = index + 1  # the global step after this apply
    if ref.is_update_step(step, last, begin=0, end=-1, frequency=_FREQUENCY):
      last = step
    assert update == last, step
    expected = 32 - ref.keep_count(32, ref.scheduled_sparsity(
        last, begin_step=0, end_step=_END, initial=0.0, target=_TARGET,
        exponent=3.0, dtype=np.float32)) if last else 0
    assert zeros == expected, step
