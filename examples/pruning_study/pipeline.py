"""One study task through the whole pipeline, in graph mode.

    pretrain (dense, from random init)  -> weights W0
    for each attempt: fine-tune W0 (with or without `Pruning`) -> checkpoint
      -> inference graph restored from it -> export checkpoint
      -> strip_pruning_vars (masks folded) -> stripped.pb
      -> sparse TFLite (tflite_export) -> sparse.tflite
      -> metric on the held-out split, computed by running stripped.pb
      -> weight counts read from stripped.pb

The inference graph has no optimizer (a `dynamic_rnn` training graph carries
gradient accumulators that TFLite cannot convert) and, for tasks with
`export_batch` set, a static batch (TFLite lowers the LSTM's tensor lists
only with static shapes). Everything is seeded: the graph seed, the batch
order and the data split.
"""
import collections
import gzip
import os

import numpy as np
import tensorflow as tf

import model_pruning
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import tflite_export

INPUT_NODE, OUTPUT_NODE = 'inputs', 'outputs'
STRIPPED_NAME, TFLITE_NAME = 'stripped.pb', 'sparse.tflite'

# A model plus its data and training recipe.
#   kind: 'classification' (softmax cross-entropy, accuracy) or 'regression'
#     (mean squared error on standardized targets, RMSE/MAE in data units).
#   build: inputs tensor -> outputs tensor (see models.py).
#   export_batch: None (unknown batch) or a static batch for the export graph.
Task = collections.namedtuple('Task', [
    'name', 'kind', 'data', 'build', 'learning_rate', 'batch_size',
    'pretrain_steps', 'finetune_steps', 'export_batch', 'seed'])


def _placeholder(task, batch):
  return tf.compat.v1.placeholder(
      tf.float32, [batch] + list(task.data.train_x.shape[1:]), name=INPUT_NODE)


def _loss(task, outputs, labels):
  if task.kind == 'classification':
    return tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, outputs)
  return tf.reduce_mean(tf.square(outputs - labels))


def train(task, steps, init_values=None, hparams=None, train_dir=None):
  """Trains `task` for `steps` Adam steps; returns {variable name: value}.

  Args:
    init_values: None (random init) or the model's trainable values to start
      from (what a previous `train` returned).
    hparams: None (dense: masks stay ones) or a pruning hparams string; the
      mask update runs after every train op.
    train_dir: if set, the final checkpoint is saved there.
  """
  data = task.data
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(task.seed)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    inputs = _placeholder(task, None)
    labels = tf.compat.v1.placeholder(
        tf.int64 if task.kind == 'classification' else tf.float32, [None])
    outputs = tf.identity(task.build(inputs), name=OUTPUT_NODE)
    train_op = tf.compat.v1.train.AdamOptimizer(task.learning_rate).minimize(
        _loss(task, outputs, labels), global_step=global_step)
    if hparams:
      spec = model_pruning.get_pruning_hparams().parse(hparams)
      pruning = model_pruning.Pruning(spec, global_step=global_step)
      with tf.control_dependencies([train_op]):
        train_op = pruning.conditional_mask_update_op()
    trainable = tf.compat.v1.trainable_variables()
    rng = np.random.RandomState(task.seed)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for variable in trainable if init_values else ():
        variable.load(init_values[variable.op.name], sess)
      for _ in range(steps):
        batch = rng.randint(0, len(data.train_x), task.batch_size)
        sess.run(train_op, {inputs: data.train_x[batch],
                            labels: data.train_y[batch]})
      if train_dir:
        os.makedirs(train_dir, exist_ok=True)
        tf.compat.v1.train.Saver().save(
            sess, os.path.join(train_dir, 'model.ckpt'), global_step=steps)
      return {v.op.name: sess.run(v) for v in trainable}


def export(task, train_dir, export_dir):
  """Rebuilds the inference graph, restores `train_dir`, saves `export_dir`."""
  with tf.Graph().as_default():
    inputs = _placeholder(task, task.export_batch)
    tf.identity(task.build(inputs), name=OUTPUT_NODE)
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      saver.restore(sess, tf.train.latest_checkpoint(train_dir))
      os.makedirs(export_dir, exist_ok=True)
      saver.save(sess, os.path.join(export_dir, 'model.ckpt'))


def strip(export_dir, path):
  """Folds the masks of `export_dir` into its weights; writes `path`.

  Returns:
    (stripped GraphDef, its FoldedWeights).
  """
  frozen = strip_pruning_vars_lib.graph_def_from_checkpoint(export_dir,
                                                            [OUTPUT_NODE])
  stripped, folded = strip_pruning_vars_lib.fold_masked_weights(
      frozen, [OUTPUT_NODE])
  with open(path, 'wb') as f:
    f.write(stripped.SerializeToString())
  return stripped, folded


def run_graph(graph_def, inputs, batch=None):
  """Runs OUTPUT_NODE of a frozen graph on `inputs` (in chunks of `batch`)."""
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='')
    feed = graph.get_tensor_by_name(INPUT_NODE + ':0')
    fetch = graph.get_tensor_by_name(OUTPUT_NODE + ':0')
    with tf.compat.v1.Session(graph=graph) as sess:
      if batch is None:
        return sess.run(fetch, {feed: inputs})
      return np.concatenate([sess.run(fetch, {feed: inputs[i:i + batch]})
                             for i in range(0, len(inputs), batch)])


def metrics(task, outputs):
  """accuracy (classification) or rmse and mae in the data's units."""
  data = task.data
  if task.kind == 'classification':
    return dict(accuracy=float(np.mean(np.argmax(outputs, axis=1)
                                       == data.test_y)))
  error = (np.asarray(outputs, np.float64) - data.test_y) * data.target_std
  return dict(rmse=float(np.sqrt(np.mean(error ** 2))),
              mae=float(np.mean(np.abs(error))))


def parameter_counts(graph_def, folded):
  """Total and zero parameters of a stripped graph: folded kernels + biases.

  The parameters are the folded (masked) kernels and the constants that
  were trainable variables (names ending in bias / biases); other constants
  (e.g. the LSTM's zero state) are not parameters.
  """
  arrays = [np.asarray(w.value) for w in folded]
  for node in graph_def.node:
    if node.op == 'Const' and node.name.rsplit('/', 1)[-1] in ('bias',
                                                              'biases'):
      arrays.append(tf.make_ndarray(node.attr['value'].tensor))
  total = sum(a.size for a in arrays)
  zeros = sum(a.size - np.count_nonzero(a) for a in arrays)
  return total, zeros


def run_attempt(task, attempt, dense_values, run_dir):
  """Fine-tunes, exports, strips, converts and scores one attempt.

  Returns:
    The report row (dict): model, attempt, schedule, target, weight counts,
    sizes and metrics (see report.COLUMNS).
  """
  train_dir = os.path.join(run_dir, 'train')
  if tf.train.latest_checkpoint(train_dir):
    raise ValueError('%s already holds a checkpoint; pass a fresh --work_dir '
                     '(nothing is deleted for you)' % train_dir)
  train(task, task.finetune_steps, dense_values, attempt.hparams, train_dir)
  export_dir = os.path.join(run_dir, 'export')
  export(task, train_dir, export_dir)
  stripped, folded = strip(export_dir, os.path.join(run_dir, STRIPPED_NAME))
  data = stripped.SerializeToString()
  sizes = tflite_export.export_stripped_graph(
      stripped, [OUTPUT_NODE], os.path.join(run_dir, TFLITE_NAME),
      input_node_names=[INPUT_NODE])
  total, zeros = parameter_counts(stripped, folded)
  row = dict(model=task.name, attempt=attempt.name, schedule=attempt.schedule,
             target=attempt.target, total_weights=total, zero_weights=zeros,
             nonzero_weights=total - zeros, sparsity=zeros / total,
             stripped_raw=len(data), stripped_gzip=len(gzip.compress(data)),
             tflite_dense=sizes.dense_raw, tflite_sparse=sizes.sparse_raw,
             tflite_sparse_gzip=sizes.sparse_gzip)
  row.update(metrics(task, run_graph(stripped, task.data.test_x,
                                     task.export_batch)))
  return row


def run_task(task, grid, work_dir, log=print):
  """Pre-trains `task` dense, then runs every attempt; returns the rows."""
  log('=== %s: dense pre-training, %d steps' % (task.name, task.pretrain_steps))
  dense_values = train(task, task.pretrain_steps)
  rows = []
  for attempt in grid:
    log('=== %s/%s: %d fine-tuning steps, hparams %s'
        % (task.name, attempt.name, task.finetune_steps, attempt.hparams))
    rows.append(run_attempt(task, attempt, dense_values,
                            os.path.join(work_dir, task.name, attempt.name)))
  return rows
