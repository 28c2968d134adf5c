"""Evaluation and inference export for the CIFAR-10 pruning example (no flags).

`eval_once` scores the latest checkpoint with the moving-average weights
(upstream's choice); `export_inference_checkpoint` writes an inference-only
checkpoint (`images` placeholder -> `logits`) for strip_pruning_vars.
cifar10_eval.py is the command-line front end.
"""
import datetime
import json
import os
import time

import tensorflow as tf

from examples.cifar10 import cifar10_pruning as cifar10
from model_pruning.python import pruning
from model_pruning.python import strip_pruning_vars_lib

INPUT_NODE_NAME = 'images'


def _restore_saver():
  """A Saver loading the moving averages into the trainable variables."""
  variable_averages = tf.compat.v1.train.ExponentialMovingAverage(
      cifar10.MOVING_AVERAGE_DECAY)
  return tf.compat.v1.train.Saver(variable_averages.variables_to_restore())


def eval_once(checkpoint_dir, data_dir, eval_data='test', num_examples=10000,
              batch_size=cifar10.BATCH_SIZE, summary_writer=None):
  """Scores the latest checkpoint once.

  Returns:
    None if there is no checkpoint, else a dict with `precision_at_1`,
    `true_count`, `num_examples`, `global_step` and `checkpoint`.
  """
  ckpt = tf.train.get_checkpoint_state(checkpoint_dir)
  if not (ckpt and ckpt.model_checkpoint_path):
    print('No checkpoint file found in %s' % checkpoint_dir)
    return None
  path = ckpt.model_checkpoint_path
  with tf.Graph().as_default():
    with tf.device('/cpu:0'):
      images, labels = cifar10.inputs(eval_data == 'test', data_dir,
                                      batch_size, num_examples=num_examples)
    logits = cifar10.inference(images)
    top_1 = tf.compat.v1.nn.in_top_k(logits, labels, 1)
    correct = tf.reduce_sum(tf.cast(top_1, tf.int64))
    saver = _restore_saver()
    true_count = 0
    with tf.compat.v1.Session() as sess:
      saver.restore(sess, path)
      try:
        while True:
          true_count += int(sess.run(correct))
      except tf.errors.OutOfRangeError:
        pass
  precision = true_count / float(num_examples)
  global_step = path.split('/')[-1].split('-')[-1]
  print('%s: precision @ 1 = %.3f' % (datetime.datetime.now(), precision))
  if summary_writer is not None:
    summary = tf.compat.v1.Summary()
    summary.value.add(tag='Precision @ 1', simple_value=precision)
    summary_writer.add_summary(summary, int(global_step))
    summary_writer.flush()
  return dict(precision_at_1=precision, true_count=true_count,
              num_examples=num_examples, global_step=int(global_step),
              checkpoint=path, eval_data=eval_data)


def export_inference_checkpoint(checkpoint_dir, export_dir):
  """Writes an inference-only checkpoint with the moving-average weights.

  The graph is `images` (float32 placeholder [None, 24, 24, 3]) -> inference
  -> `logits`, with masks, so
  `strip_pruning_vars --checkpoint_dir=<export_dir>
  --output_node_names=logits` folds it to constants.

  Returns:
    The checkpoint prefix written.

  Raises:
    ValueError: `checkpoint_dir` holds no checkpoint.
  """
  path = tf.train.latest_checkpoint(checkpoint_dir)
  if not path:
    raise ValueError('No checkpoint found in %s; train first.' % checkpoint_dir)
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(
        tf.float32, [None, cifar10.IMAGE_SIZE, cifar10.IMAGE_SIZE, 3],
        name=INPUT_NODE_NAME)
    logits = cifar10.inference(images)
    # The global step and the pruning spec travel along, so the strip tool
    # can report each weight's scheduled sparsity next to the achieved one.
    global_step = tf.compat.v1.train.get_or_create_global_step()
    for spec in strip_pruning_vars_lib.read_pruning_state(path).hparams:
      pruning.Pruning(spec, global_step=global_step)
    if logits.op.name != cifar10.LOGITS_NODE_NAME:
      raise RuntimeError('logits op is %s, expected %s'
                         % (logits.op.name, cifar10.LOGITS_NODE_NAME))
    restorer = _restore_saver()
    with tf.compat.v1.Session() as sess:
      restorer.restore(sess, path)
      os.makedirs(export_dir, exist_ok=True)
      return tf.compat.v1.train.Saver().save(
          sess, os.path.join(export_dir, 'model.ckpt'))


def evaluate(checkpoint_dir, data_dir, eval_dir, eval_data='test',
             num_examples=10000, batch_size=cifar10.BATCH_SIZE, run_once=True,
             eval_interval_secs=300, result_json=None, export_dir=None):
  """Evaluates once, or forever every `eval_interval_secs` seconds.

  Returns:
    The last result dict of `eval_once` (None if no checkpoint was found).
  """
  os.makedirs(eval_dir, exist_ok=True)
  with tf.Graph().as_default():  # FileWriter refuses eager mode.
    writer = tf.compat.v1.summary.FileWriter(eval_dir)
  while True:
    result = eval_once(checkpoint_dir, data_dir, eval_data=eval_data,
                       num_examples=num_examples, batch_size=batch_size,
                       summary_writer=writer)
    if result is not None and result_json:
      with open(result_json, 'w') as f:
        json.dump(result, f, indent=2)
    if result is not None and export_dir:
      print('Exported %s' % export_inference_checkpoint(checkpoint_dir,
                                                        export_dir))
    if run_once:
      writer.close()
      return result
    time.sleep(eval_interval_secs)
