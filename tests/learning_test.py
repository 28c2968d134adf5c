"""Tests for learning.train: slim's loop plus a mask update after every step."""
import inspect
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import learning
from model_pruning.python import pruning
from model_pruning.python import training_services
from tests import reference as ref

_LEARNING_RATE = 0.1
_W0 = np.array([1.0, 2.0], np.float32)


def _quadratic_train_op():
  """loss = sum(w^2) with SGD; the train op returns the pre-update loss."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  weight = tf.compat.v1.get_variable('w', initializer=_W0)
  loss = tf.reduce_sum(weight * weight)
  tf.compat.v1.summary.scalar('loss', loss)
  minimize = tf.compat.v1.train.GradientDescentOptimizer(
      _LEARNING_RATE).minimize(loss, global_step=global_step)
  with tf.control_dependencies([minimize]):
    return tf.identity(loss)


def _counter_op():
  """A stand-in mask update: counts how often it ran."""
  counter = tf.compat.v1.get_variable('update_count', initializer=0,
                                      trainable=False)
  return counter.assign_add(1)


def _expected_final_loss(num_steps):
  """Loss seen by the last step: w_k = (1 - 2 lr)^k w_0 (gradient 2w)."""
  weight = _W0 * (1.0 - 2.0 * _LEARNING_RATE) ** (num_steps - 1)
  return float(np.sum(weight * weight))


def test_train_returns_final_loss_and_respects_number_of_steps(tmp_path):
  with tf.Graph().as_default():
    train_op = _quadratic_train_op()
    final_loss = learning.train(train_op, str(tmp_path), _counter_op(),
                                number_of_steps=5)
  assert isinstance(final_loss, float)
  assert final_loss == pytest.approx(_expected_final_loss(5), rel=1e-6)
  reader = tf.train.load_checkpoint(str(tmp_path))
  assert reader.get_tensor('global_step') == 5
  assert reader.get_tensor('update_count') == 5  # Once after every step.
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith('model.ckpt-5')
  assert os.path.exists(os.path.join(str(tmp_path), 'graph.pbtxt'))


def test_train_resumes_from_the_checkpoint_in_logdir(tmp_path):
  for number_of_steps in (3, 7):
    with tf.Graph().as_default():
      train_op = _quadratic_train_op()
      final_loss = learning.train(train_op, str(tmp_path), _counter_op(),
                                  number_of_steps=number_of_steps)
  assert final_loss == pytest.approx(_expected_final_loss(7), rel=1e-6)
  assert tf.train.load_checkpoint(str(tmp_path)).get_tensor(
      'update_count') == 7


def test_train_reaches_target_sparsity_with_sort_method(tmp_path):
  size, target, end_step = 64, 0.75, 4
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    weight = tf.compat.v1.get_variable(
        'weight', initializer=np.linspace(1.0, 2.0, size, dtype=np.float32))
    loss = tf.reduce_sum(tf.square(pruning.apply_mask(weight)))
    train_op = tf.compat.v1.train.GradientDescentOptimizer(1e-3).minimize(
        loss, global_step=global_step)
    p = pruning.Pruning(
        dict(threshold_method='sort', threshold_decay=0.0, pruning_frequency=1,
             target_sparsity=target, sparsity_function_end_step=end_step),
        global_step=global_step)
    learning.train(train_op, str(tmp_path), p.conditional_mask_update_op(),
                   number_of_steps=end_step + 2)
    mask_name = pruning.get_masks()[0].op.name
  mask = tf.train.load_checkpoint(str(tmp_path)).get_tensor(mask_name)
  assert np.count_nonzero(mask) == ref.keep_count(size, target)


def test_train_step_fn_wrapper_passes_kwargs_through(tmp_path):
  calls = []
  kwargs = {'marker': object()}

  def step_fn(sess, train_op, global_step, train_step_kwargs):
    calls.append(train_step_kwargs)
    loss, _ = sess.run([train_op, global_step])
    return loss, len(calls) == 3

  with tf.Graph().as_default():
    train_op = _quadratic_train_op()
    final_loss = learning.train(train_op, str(tmp_path), _counter_op(),
                                train_step_fn=step_fn,
                                train_step_kwargs=kwargs,
                                number_of_steps=100)
  assert len(calls) == 3 and all(call is kwargs for call in calls)
  assert final_loss == pytest.approx(_expected_final_loss(3), rel=1e-6)
  assert tf.train.load_checkpoint(str(tmp_path)).get_tensor(
      'update_count') == 3


def test_train_without_logdir_writes_nothing(tmp_path):
  with tf.Graph().as_default():
    train_op = _quadratic_train_op()
    final_loss = learning.train(train_op, None, _counter_op(),
                                number_of_steps=2)
  assert final_loss == pytest.approx(_expected_final_loss(2), rel=1e-6)
  assert not os.listdir(str(tmp_path))


def test_train_writes_traces(tmp_path):
  with tf.Graph().as_default():
    train_op = _quadratic_train_op()
    learning.train(train_op, str(tmp_path), _counter_op(), number_of_steps=4,
                   trace_every_n_steps=2)
  traces = [name for name in os.listdir(str(tmp_path))
            if name.startswith('tf_trace-')]
  assert len(traces) == 2  # Before steps 0 and 2.


@pytest.mark.parametrize('overrides, message', [
    (dict(train_op=None), 'train_op cannot be None'),
    (dict(mask_update_op=None), 'mask_update_op cannot be None'),
    (dict(number_of_steps=0), 'number_of_steps must be'),
    (dict(logdir=None, saver='saver'), 'Cannot provide saver'),
    (dict(logdir=None, summary_op=None), 'Cannot provide summary_op'),
    (dict(logdir=None, trace_every_n_steps=3),
     'Cannot provide trace_every_n_steps'),
], ids=['no_train_op', 'no_mask_update', 'zero_steps', 'saver_no_logdir',
        'summary_no_logdir', 'trace_no_logdir'])
def test_train_rejects_bad_arguments(tmp_path, overrides, message):
  with tf.Graph().as_default():
    args = dict(train_op=_quadratic_train_op(), logdir=str(tmp_path),
                mask_update_op=_counter_op())
    args.update(overrides)
    with pytest.raises(ValueError, match=message):
      learning.train(**args)


def test_train_signature_matches_contrib():
  expected = [
      ('train_op', None), ('logdir', None), ('mask_update_op', None),
      ('train_step_fn', learning.train_step), ('train_step_kwargs', 0),
      ('log_every_n_steps', 1), ('graph', None), ('master', ''),
      ('is_chief', True), ('global_step', None), ('number_of_steps', None),
      ('init_op', 0), ('init_feed_dict', None), ('local_init_op', 0),
      ('init_fn', None), ('ready_op', 0), ('summary_op', 0),
      ('save_summaries_secs', 600), ('summary_writer', 0),
      ('startup_delay_steps', 0), ('saver', None), ('save_interval_secs', 600),
      ('sync_optimizer', None), ('session_config', None),
      ('trace_every_n_steps', None)]
  parameters = inspect.signature(learning.train).parameters
  actual = [(name, None if param.default is inspect.Parameter.empty
             else param.default) for name, param in parameters.items()]
  # contrib's parameters in contrib's order, then our one addition.
  assert actual == expected + [('sparsity_log_every_n_steps', 100)]


def test_final_checkpoint_is_the_latest_even_after_a_slow_periodic_save(
    tmp_path, monkeypatch):
  # The periodic checkpoint service starts with a save on its own thread.
  # Made slow here (it names the step it started at, then takes a while),
  # it would land after the final save and become the latest checkpoint;
  # train() lets it finish before the final save.
  def slow_periodic_save(supervisor, sess):
    started_at = sess.run(supervisor.global_step)
    time.sleep(1.0)
    supervisor.saver.save(sess, supervisor.save_path, global_step=started_at)
  monkeypatch.setattr(training_services, '_save_checkpoint',
                      slow_periodic_save)
  with tf.Graph().as_default():
    train_op = _quadratic_train_op()
    learning.train(train_op, str(tmp_path), _counter_op(), number_of_steps=3)
  latest = tf.train.latest_checkpoint(str(tmp_path))
  assert latest.endswith('-3'), latest
  assert tf.train.load_checkpoint(latest).get_tensor('update_count') == 3
