"""Evaluates the pruned CIFAR-10 model (absl binary).

Usage (from the repository root):
  python3 -m examples.cifar10.cifar10_eval --data_dir=/tmp/cifar10_data \\
    --checkpoint_dir=/tmp/cifar10_train --run_once --result_json=/tmp/r.json

Like upstream, the weights restored are the moving averages kept during
training (masks and thresholds are restored as they are), and the result is
printed as `<time>: precision @ 1 = <p>`. Unlike upstream, exactly
`--num_examples` examples are scored (cycling through the files if there are
fewer), `--result_json` writes the result machine-readably, and
`--export_dir` writes an inference-only checkpoint (input placeholder
`images`, output `logits`) that strip_pruning_vars can
turn into a small frozen GraphDef. `--eval_dir` only receives event files; it
is never deleted.
"""
import datetime
import json
import os
import time

from absl import app
from absl import flags
import tensorflow as tf

from examples.cifar10 import cifar10_pruning as cifar10
from model_pruning.python import pruning
from model_pruning.python import strip_pruning_vars_lib

_EVAL_DIR = flags.DEFINE_string('eval_dir', '/tmp/cifar10_eval',
                                'Directory for event logs (never deleted).')
_EVAL_DATA = flags.DEFINE_enum('eval_data', 'test', ['test', 'train_eval'],
                               'Evaluate on the test file or the train files.')
_CHECKPOINT_DIR = flags.DEFINE_string('checkpoint_dir', '/tmp/cifar10_train',
                                      'Directory with the training checkpoints.')
_EVAL_INTERVAL_SECS = flags.DEFINE_integer(
    'eval_interval_secs', 300, 'Seconds between evaluations.', lower_bound=0)
_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', 10000,
                                     'Examples to score.', lower_bound=1)
_RUN_ONCE = flags.DEFINE_bool('run_once', False, 'Evaluate only once.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', cifar10.DATA_DIR,
    'Directory holding cifar-10-batches-bin/ (real or synthetic data).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', cifar10.BATCH_SIZE,
                                   'Examples per eval batch.', lower_bound=1)
_RESULT_JSON = flags.DEFINE_string(
    'result_json', None, 'If set, write the latest result as JSON here.')
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None,
    'If set, write an inference checkpoint (moving-average weights, input '
    'placeholder "images") here after each evaluation.')

INPUT_NODE_NAME = 'images'


def _restore_saver():
  """A Saver mapping the moving averages onto the model's trainable variables."""
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  try:
    evaluate(_CHECKPOINT_DIR.value, _DATA_DIR.value, _EVAL_DIR.value,
             eval_data=_EVAL_DATA.value, num_examples=_NUM_EXAMPLES.value,
             batch_size=_BATCH_SIZE.value, run_once=_RUN_ONCE.value,
             eval_interval_secs=_EVAL_INTERVAL_SECS.value,
             result_json=_RESULT_JSON.value, export_dir=_EXPORT_DIR.value)
  except ValueError as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
