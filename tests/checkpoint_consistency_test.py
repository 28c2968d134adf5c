"""Checkpoints hold masks consistent with the weights (issue 7, point 2).

A checkpoint saved right after a mask update holds the mask that the
threshold method computes from the checkpoint's own weights at the scheduled
sparsity, and the masked weight is exactly weights * mask. Between updates
the checkpoint holds the mask of the last update; the raw weight variable
keeps moving (weight decay, momentum: docs/upstream.md Q8), so masked entries drift in
the raw variable but stay exactly zero in the masked weight.
"""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref

_FREQUENCY, _SCHEDULE_END, _TARGET, _STEPS = 3, 12, 0.7, 14


def _train_and_save(tmp_path):
  """Trains _STEPS steps, saving after each; returns per-step records."""
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    rng = np.random.RandomState(0)
    x = tf.constant(rng.normal(size=[32, 10]).astype(np.float32))
    y = tf.constant(rng.normal(size=[32, 6]).astype(np.float32))
    with tf.compat.v1.variable_scope('layer') as scope:
      weight = tf.compat.v1.get_variable(
          'weights', [10, 6],
          initializer=tf.compat.v1.initializers.random_normal(seed=3))
      masked = pruning.apply_mask(weight, scope)
    loss = (tf.reduce_mean(tf.square(tf.matmul(x, masked) - y)) +
            0.05 * tf.nn.l2_loss(weight))   # decay moves masked raw entries
    train_op = tf.compat.v1.train.MomentumOptimizer(0.05, 0.9).minimize(
        loss, global_step=step)
    hparams = pruning.get_pruning_hparams().override_from_dict(dict(
        threshold_method='sort', threshold_decay=0.0,
        pruning_frequency=_FREQUENCY,
        sparsity_function_end_step=_SCHEDULE_END, target_sparsity=_TARGET))
    conditional = pruning.Pruning(
        hparams, global_step=step).conditional_mask_update_op()
    saver = tf.compat.v1.train.Saver(max_to_keep=None)
    records = []
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for _ in range(_STEPS):
        sess.run(train_op)
        sess.run(conditional)
        path = saver.save(sess, str(tmp_path / 'model.ckpt'),
                          global_step=step)
        records.append(dict(step=sess.run(step), path=path,
                            masked=sess.run(masked)))
  return records


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
  records = _train_and_save(tmp_path_factory.mktemp('ckpt'))
  for record in records:
    reader = tf.train.load_checkpoint(record['path'])
    for key, name in (('weights', 'layer/weights'), ('mask', 'layer/mask'),
                      ('threshold', 'layer/threshold'),
                      ('last', 'model_pruning/last_mask_update_step')):
      record[key] = reader.get_tensor(name)
  return records


_UPDATES = ref.update_steps(range(1, _STEPS + 1), begin=0, end=-1,
                             frequency=_FREQUENCY)


def test_updates_happen_on_schedule(saved):
  assert [r['step'] for r in saved if r['last'] == r['step']] == _UPDATES


@pytest.mark.parametrize('update_step', _UPDATES)
def test_checkpoint_after_update_holds_mask_of_its_weights(saved,
                                                           update_step):
  record = [r for r in saved if r['step'] == update_step][0]
  sparsity = ref.scheduled_sparsity(
      update_step, begin_step=0, end_step=_SCHEDULE_END, initial=0.0,
      target=_TARGET, exponent=3.0, dtype=np.float32)
  threshold, mask = ref.magnitude_mask(record['weights'], sparsity, 'sort')
  np.testing.assert_array_equal(record['mask'], mask)
  assert record['threshold'] == threshold
  np.testing.assert_array_equal(record['masked'],
                                record['weights'] * record['mask'])
  kept = ref.keep_count(mask.size, sparsity)
  assert np.count_nonzero(record['masked']) == kept


def test_between_updates_mask_is_the_last_updates(saved):
  by_step = {r['step']: r for r in saved}
  drifted = 0
  for record in saved:
    last = record['last']
    if last == record['step'] or last == 0:
      continue
    at_update = by_step[last]
    np.testing.assert_array_equal(record['mask'], at_update['mask'])
    pruned = record['mask'] == 0
    # Masked entries: zero in the masked weight, but the raw variable moves.
    assert np.all(record['masked'][pruned] == 0)
    np.testing.assert_array_equal(record['masked'],
                                  record['weights'] * record['mask'])
    drifted += np.count_nonzero(record['weights'][pruned] !=
                                at_update['weights'][pruned])
  assert drifted > 0
