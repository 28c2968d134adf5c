"""Train, prune for XNNPACK, strip, export sparse, check and time (no flags).

`run(config, output_dir)` does the whole example and returns a results
dict; `format_results` prints it. The steps:

1. Train the model (model.py) dense on the digits (data.py).
2. Ask latency_policy which masked weights XNNPACK's sparse path speeds up
   (the 1x1 convolutions) and prune only those, with a polynomial schedule
   to `target_sparsity`, then fine-tune.
3. Freeze, fold the masks (strip_pruning_vars_lib), convert to TFLite dense
   and sparse-encoded (tflite_export), and run the XNNPACK check
   (xnnpack_check) on the sparse file.
4. Time one single-threaded invoke of each TFLite model on this machine and
   measure the sparse model's accuracy on the held-out digits.

On x86 with AVX, XNNPACK runs both files with the same dense kernels, so
the two latencies should match; the speed-up needs ARM64 (see
docs/xnnpack_latency.md). The numbers are measured, never assumed.
"""
import dataclasses
import json
import os
import time
import warnings

import numpy as np
import tensorflow as tf

from examples.mobilenet_xnnpack import data
from examples.mobilenet_xnnpack import model
from model_pruning.python.xnnpack import latency_policy
from model_pruning.python import pruning
from model_pruning.python import strip_pruning_vars_lib
from model_pruning.python import tflite_export
from model_pruning.python.xnnpack import check as xnnpack_check

INPUT, OUTPUT = 'images', 'logits'


@dataclasses.dataclass
class Config:
  """Steps and sizes of one run. QUICK is the smoke-test size."""
  dense_steps: int = 800
  prune_steps: int = 800
  finetune_steps: int = 400
  batch_size: int = 64
  learning_rate: float = 2e-3
  target_sparsity: float = 0.8
  latency_runs: int = 300
  seed: int = 0


QUICK = Config(dense_steps=60, prune_steps=60, finetune_steps=20,
               latency_runs=20)


def _hparams(config):
  begin = config.dense_steps
  return pruning.get_pruning_hparams().override_from_dict(dict(
      name='xnnpack_latency', begin_pruning_step=begin,
      sparsity_function_begin_step=begin,
      sparsity_function_end_step=begin + config.prune_steps,
      pruning_frequency=max(1, config.prune_steps // 20),
      target_sparsity=config.target_sparsity, threshold_decay=0.0))


def _accuracy(sess, logits, images, test_images, test_labels):
  predictions = sess.run(logits, {images: test_images}).argmax(axis=1)
  return float(np.mean(predictions == test_labels))


def _train(config, splits):
  """Trains and prunes; returns (stripped GraphDef, plan, accuracies, masks)."""
  train_images, train_labels, test_images, test_labels = splits
  rng = np.random.RandomState(config.seed)
  with tf.Graph().as_default() as graph:
    tf.compat.v1.set_random_seed(config.seed)
    images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3], INPUT)
    labels = tf.compat.v1.placeholder(tf.int64, [None])
    logits = tf.identity(model.inference(images), name=OUTPUT)
    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, logits)
    step = tf.compat.v1.train.get_or_create_global_step()
    train_op = tf.compat.v1.train.AdamOptimizer(
        config.learning_rate).minimize(loss, global_step=step)
    plan = latency_policy.plan_for_xnnpack()
    hparams = latency_policy.apply_to_hparams(_hparams(config), plan)
    mask_update = pruning.Pruning(
        hparams, global_step=step).conditional_mask_update_op()
    accuracy = {}
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      total = config.dense_steps + config.prune_steps + config.finetune_steps
      for i in range(total):
        batch = rng.randint(0, len(train_labels), config.batch_size)
        sess.run(train_op, {images: train_images[batch],
                            labels: train_labels[batch]})
        sess.run(mask_update)
        if i + 1 == config.dense_steps:
          accuracy['dense_tf'] = _accuracy(sess, logits, images, test_images,
                                           test_labels)
      accuracy['pruned_tf'] = _accuracy(sess, logits, images, test_images,
                                        test_labels)
      masks = {w.op.name: float(np.mean(sess.run(m) == 0))
               for m, w in zip(pruning.get_masks(), pruning.get_weights())}
      frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
          sess, graph.as_graph_def(), [OUTPUT])
  stripped, _ = strip_pruning_vars_lib.fold_masked_weights(frozen, [OUTPUT])
  return stripped, plan, accuracy, masks


def _interpreter(path):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # tf.lite.Interpreter's deprecation.
    interpreter = tf.lite.Interpreter(model_path=path, num_threads=1)
  interpreter.allocate_tensors()
  return interpreter


def single_thread_latency_ms(path, runs, warmup=10):
  """Median wall time of one invoke (batch 1, one thread), in ms."""
  interpreter = _interpreter(path)
  detail = interpreter.get_input_details()[0]
  interpreter.set_tensor(detail['index'],
                         np.zeros(detail['shape'], np.float32))
  for _ in range(warmup):
    interpreter.invoke()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    interpreter.invoke()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def tflite_accuracy(path, images, labels):
  """Accuracy of the TFLite model at `path`, one image per invoke."""
  interpreter = _interpreter(path)
  source = interpreter.get_input_details()[0]['index']
  target = interpreter.get_output_details()[0]['index']
  correct = 0
  for image, label in zip(images, labels):
    interpreter.set_tensor(source, image[np.newaxis])
    interpreter.invoke()
    correct += int(interpreter.get_tensor(target).argmax() == label)
  return correct / len(labels)


def run(config, output_dir):
  """Runs the example; writes the two .tflite files and results.json."""
  os.makedirs(output_dir, exist_ok=True)
  splits = data.load_digits(seed=config.seed)
  stripped, plan, accuracy, masks = _train(config, splits)
  sparse_path = os.path.join(output_dir, 'mobilenet_sparse.tflite')
  dense_path = os.path.join(output_dir, 'mobilenet_dense.tflite')
  shape = [[1, data.IMAGE_SIZE, data.IMAGE_SIZE, 3]]
  sizes = tflite_export.export_stripped_graph(
      stripped, [OUTPUT], sparse_path, input_node_names=[INPUT],
      input_shapes=shape)
  with open(dense_path, 'wb') as f:
    f.write(tflite_export.convert(stripped, [OUTPUT], [INPUT], shape,
                                  sparse=False))
  check = xnnpack_check.check(sparse_path)
  accuracy['sparse_tflite'] = tflite_accuracy(sparse_path, *splits[2:])
  results = dict(
      config=dataclasses.asdict(config), accuracy=accuracy,
      pruned=plan.pruned, excluded=[list(e) for e in plan.excluded],
      mask_sparsity=masks, sizes=sizes._asdict(),
      latency_ms=dict(
          dense=single_thread_latency_ms(dense_path, config.latency_runs),
          sparse=single_thread_latency_ms(sparse_path, config.latency_runs)),
      xnnpack_engages=check.engages,
      xnnpack_report=xnnpack_check.format_report(check),
      test_images=len(splits[3]))
  with open(os.path.join(output_dir, 'results.json'), 'w',
            encoding='utf-8') as f:
    json.dump(results, f, indent=2)
  return results


def format_results(results):
  """The report: policy, sparsity, checker verdict, sizes, latency, accuracy."""
  pruned = [results['mask_sparsity'][w] for w in results['pruned']]
  excluded_zeros = max([results['mask_sparsity'][w] for w, _ in
                        results['excluded']] or [0.0])
  lat, acc = results['latency_ms'], results['accuracy']
  lines = [
      'policy: pruned %d 1x1 convolutions (mask sparsity %.1f%%..%.1f%%), '
      'left %d weights dense (max mask sparsity %.1f%%)' % (
          len(pruned), 100 * min(pruned), 100 * max(pruned),
          len(results['excluded']), 100 * excluded_zeros),
      results['xnnpack_report'],
      tflite_export.format_sizes(
          tflite_export.TfliteSizes(**results['sizes'])),
      'single-thread latency on this machine (median of %d invokes, '
      'batch 1): dense %.3f ms, sparse %.3f ms (sparse/dense %.2f)' % (
          results['config']['latency_runs'], lat['dense'], lat['sparse'],
          lat['sparse'] / lat['dense']),
      'accuracy on %d held-out digits: dense TF %.3f, pruned TF %.3f, '
      'sparse TFLite %.3f' % (results['test_images'], acc['dense_tf'],
                              acc['pruned_tf'], acc['sparse_tflite'])]
  return '\n'.join(lines)
