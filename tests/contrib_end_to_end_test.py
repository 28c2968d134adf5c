"""A script written the contrib way prunes to its target (issue 3, point 9).

apply_mask on three weights, Pruning from an hparam string with the cubic
schedule, and a Session loop that trains and runs the conditional update
after every step.
"""
import numpy as np
import pytest
import tensorflow as tf

import model_pruning
from tests import reference

_TARGET = 0.8
_STEPS = 300
_HPARAMS = ('name=e2e,begin_pruning_step=20,end_pruning_step=240,'
            'pruning_frequency=10,target_sparsity=%g,'
            'sparsity_function_begin_step=20,sparsity_function_end_step=220,'
            'sparsity_function_exponent=3,threshold_decay=0.0,'
            'threshold_method=%s')


def _train(method):
  rng = np.random.RandomState(0)
  features = rng.randn(256, 20).astype(np.float32)
  labels = (features[:, :3].sum(axis=1) > 0).astype(np.int64)
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    hidden = tf.constant(features)
    for name, shape in (('layer1', [20, 64]), ('layer2', [64, 64]),
                        ('logits', [64, 2])):
      with tf.compat.v1.variable_scope(name) as scope:
        weights = tf.compat.v1.get_variable(
            'weights', shape,
            initializer=tf.compat.v1.glorot_uniform_initializer(seed=1))
        hidden = tf.matmul(hidden, model_pruning.apply_mask(weights, scope))
        if name != 'logits':
          hidden = tf.nn.relu(hidden)
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                       logits=hidden))
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(
        loss, global_step=global_step)
    hparams = model_pruning.get_pruning_hparams().parse(
        _HPARAMS % (_TARGET, method))
    pruning_obj = model_pruning.Pruning(hparams, global_step=global_step)
    mask_update_op = pruning_obj.conditional_mask_update_op()
    pruning_obj.add_pruning_summaries()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      first_loss = sess.run(loss)
      for _ in range(_STEPS):
        sess.run(train_op)
        sess.run(mask_update_op)
      masks = sess.run(model_pruning.get_masks())
      weights = sess.run(model_pruning.get_weights())
      return first_loss, sess.run(loss), masks, weights


@pytest.mark.slow
@pytest.mark.parametrize('method', ['histogram', 'sort', 'exact'])
def test_contrib_script_reaches_target_sparsity(method):
  first_loss, last_loss, masks, weights = _train(method)
  assert last_loss < first_loss
  for mask, weight in zip(masks, weights):
    kept = int(mask.sum())
    expected_kept = reference.keep_count(mask.size, _TARGET)
    if method == 'histogram':
      # Within one histogram bin of the target: the mask equals the numpy
      # histogram mask of the weights as they were at the last update, and
      # the count is at most one bin's population away from k.
      bin_width = np.abs(weight).max() / 256.0
      magnitudes = np.abs(weight)
      # Entries of a one-bin-wide band around the exact k-th magnitude.
      kth = np.sort(magnitudes.ravel())[::-1][expected_kept - 1]
      band = np.count_nonzero(np.abs(magnitudes - kth) <= bin_width)
      assert abs(kept - expected_kept) <= band
    elif method == 'sort':
      assert abs(kept - expected_kept) <= 1
    else:
      assert kept == expected_kept
