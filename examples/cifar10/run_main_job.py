"""The README's main job: synthetic data -> pruned training -> eval -> strip.

Run from the repository root (after `pip install .`):

  python3 -m examples.cifar10.run_main_job

It writes everything under `--work_dir` (default: a new temporary directory):
  data/       synthetic CIFAR-10 in the real binary layout
  train/      checkpoints of a run pruned with a cubic schedule to 90%
  eval/       eval event files; result.json (precision @ 1)
  export/     inference checkpoint (moving-average weights, input `images`)
  stripped/   cifar10_pruned.pb: the frozen GraphDef with masks folded in
  summary.json
then prints one summary: accuracy, achieved sparsity per layer, and the
stripped model's size raw and gzipped. A work dir whose train/ already holds a
checkpoint is refused (nothing is ever deleted). About 2-4 minutes on 2 cores.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from examples.cifar10 import cifar10_pruning as cifar10
from examples.cifar10 import evaluation
from examples.cifar10 import synthetic_data
from examples.cifar10 import training
from model_pruning.python import pruning_spec

_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'Directory for all outputs (default: a new temp dir).')
_MAX_STEPS = flags.DEFINE_integer('max_steps', 200, 'Training steps.',
                                  lower_bound=10)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Examples per step.',
                                   lower_bound=1)
_TARGET_SPARSITY = flags.DEFINE_float('target_sparsity', 0.9,
                                      'Final sparsity of every layer.',
                                      lower_bound=0.0, upper_bound=0.99)
_TRAIN_RECORDS_PER_BATCH = flags.DEFINE_integer(
    'train_records_per_batch', 1000, 'Synthetic records per train file.',
    lower_bound=1)
_TEST_RECORDS = flags.DEFINE_integer('test_records', 1000,
                                     'Synthetic test records (all scored).',
                                     lower_bound=1)

STRIPPED_FILENAME = 'cifar10_pruned.pb'


def main_job_hparams(max_steps, target_sparsity):
  """The pruning spec: cubic ramp 0 -> target over [10%, 70%] of the steps.

  Masks are updated every 10 steps until the end; threshold_decay=0 makes
  each update hit the scheduled sparsity instead of lagging behind it.
  """
  begin, end = max_steps // 10, (max_steps * 7) // 10
  return ('name=cifar10_pruning,begin_pruning_step=%d,end_pruning_step=-1,'
          'target_sparsity=%g,sparsity_function_begin_step=%d,'
          'sparsity_function_end_step=%d,sparsity_function_exponent=3.0,'
          'pruning_frequency=10,threshold_decay=0.0'
          % (begin, target_sparsity, begin, end))


def strip(export_dir, output_dir):
  """Runs the strip_pruning_vars binary; returns the stripped file path."""
  command = [sys.executable, '-m', 'model_pruning.python.strip_pruning_vars',
             '--checkpoint_dir=' + export_dir,
             '--output_node_names=' + cifar10.LOGITS_NODE_NAME,
             '--output_dir=' + output_dir, '--filename=' + STRIPPED_FILENAME]
  print('$ ' + ' '.join(command), flush=True)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  subprocess.run(command, check=True, env=env)
  return os.path.join(output_dir, STRIPPED_FILENAME)


def _stripped_zero_fractions(path):
  """Zero fraction of each folded `<layer>/weights/masked_weight` constant."""
  graph_def = tf.compat.v1.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  result = {}
  for node in graph_def.node:
    if node.op == 'Const' and node.name.endswith('/weights/masked_weight'):
      value = tf.make_ndarray(node.attr['value'].tensor)
      result[node.name.split('/')[0]] = 1.0 - np.count_nonzero(value) / float(
          value.size)
  return result, [node.name for node in graph_def.node
                  if node.name.endswith('/mask')]


def summarize(train_dir, eval_result, stripped_path, hparams):
  """Collects accuracy, per-layer sparsity and model sizes into one dict."""
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(train_dir))
  step = int(reader.get_tensor('global_step'))
  stripped_zeros, leftover_masks = _stripped_zero_fractions(stripped_path)
  layers = []
  for name in cifar10.LAYER_NAMES:
    mask = reader.get_tensor(name + '/mask')
    layers.append(dict(
        layer=name, shape=list(mask.shape),
        mask_sparsity=1.0 - np.count_nonzero(mask) / float(mask.size),
        stripped_weight_sparsity=stripped_zeros.get(name)))
  with open(stripped_path, 'rb') as f:
    raw = f.read()
  return dict(
      global_step=step, precision_at_1=eval_result['precision_at_1'],
      num_examples=eval_result['num_examples'],
      scheduled_sparsity=pruning_spec.scheduled_sparsity(step, hparams),
      layers=layers, stripped_model=stripped_path,
      stripped_bytes=len(raw), stripped_gzip_bytes=len(gzip.compress(raw, 9)),
      masks_left_in_stripped_model=leftover_masks)


def format_summary(summary, seconds):
  """The human-readable summary block."""
  lines = ['', '=' * 64, 'CIFAR-10 main job summary (step %d, %.0f s)'
           % (summary['global_step'], seconds),
           'precision @ 1 of the pruned model: %.3f on %d test examples'
           % (summary['precision_at_1'], summary['num_examples']),
           'scheduled sparsity: %.3f' % summary['scheduled_sparsity'],
           '%-16s %-14s %14s %16s' % ('layer', 'shape', 'mask sparsity',
                                      'stripped zeros')]
  for layer in summary['layers']:
    stripped = layer['stripped_weight_sparsity']
    lines.append('%-16s %-14s %14.3f %16s' % (
        layer['layer'], 'x'.join(str(d) for d in layer['shape']),
        layer['mask_sparsity'],
        '-' if stripped is None else '%.3f' % stripped))
  raw, gz = summary['stripped_bytes'], summary['stripped_gzip_bytes']
  lines.append('stripped model %s: %d bytes raw, %d bytes gzipped (%.1f%%)'
               % (summary['stripped_model'], raw, gz, 100.0 * gz / raw))
  lines.append('=' * 64)
  return '\n'.join(lines)


def run_main_job(work_dir, max_steps=200, batch_size=64, target_sparsity=0.9,
                 train_records_per_batch=1000, test_records=1000):
  """Runs the whole job in `work_dir`; returns the summary dict.

  Raises:
    ValueError: `work_dir/train` already holds a checkpoint.
  """
  start = time.time()
  train_dir = os.path.join(work_dir, 'train')
  if tf.train.latest_checkpoint(train_dir):
    raise ValueError('%s already holds a checkpoint; pass a fresh --work_dir '
                     '(nothing is deleted for you)' % train_dir)
  data_dir = os.path.join(work_dir, 'data')
  batches_dir = synthetic_data.write_synthetic_cifar10(
      data_dir, train_records_per_batch, test_records)
  print('Wrote synthetic CIFAR-10 to %s' % batches_dir, flush=True)
  hparams_text = main_job_hparams(max_steps, target_sparsity)
  print('Training %d steps with --pruning_hparams=%s' % (max_steps,
                                                         hparams_text))
  training.train(train_dir, data_dir, pruning_hparams=hparams_text,
                 max_steps=max_steps, batch_size=batch_size,
                 log_frequency=max(1, max_steps // 10))
  export_dir = os.path.join(work_dir, 'export')
  result = evaluation.evaluate(
      train_dir, data_dir, os.path.join(work_dir, 'eval'),
      num_examples=test_records, batch_size=100,
      result_json=os.path.join(work_dir, 'result.json'), export_dir=export_dir)
  stripped = strip(export_dir, os.path.join(work_dir, 'stripped'))
  hparams = training.parse_hparams(hparams_text)
  summary = summarize(train_dir, result, stripped, hparams)
  with open(os.path.join(work_dir, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print(format_summary(summary, time.time() - start))
  return summary


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  tf.get_logger().setLevel('ERROR')
  work_dir = _WORK_DIR.value or tempfile.mkdtemp(prefix='cifar10_main_job_')
  print('Work dir: %s' % work_dir)
  try:
    run_main_job(work_dir, max_steps=_MAX_STEPS.value,
                 batch_size=_BATCH_SIZE.value,
                 target_sparsity=_TARGET_SPARSITY.value,
                 train_records_per_batch=_TRAIN_RECORDS_PER_BATCH.value,
                 test_records=_TEST_RECORDS.value)
  except ValueError as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
