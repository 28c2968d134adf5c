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
from absl import app
from absl import flags

from examples.cifar10 import cifar10_pruning as cifar10
from examples.cifar10 import evaluation

_EVAL_DIR = flags.DEFINE_string('eval_dir', '/tmp/cifar10_eval',
                                'Directory for event logs (never deleted).')
_EVAL_DATA = flags.DEFINE_enum('eval_data', 'test', ['test', 'train_eval'],
                               'Evaluate on the test file or the train files.')
_CHECKPOINT_DIR = flags.DEFINE_string(
    'checkpoint_dir', '/tmp/cifar10_train',
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

def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  try:
    evaluation.evaluate(
        _CHECKPOINT_DIR.value, _DATA_DIR.value, _EVAL_DIR.value,
        eval_data=_EVAL_DATA.value, num_examples=_NUM_EXAMPLES.value,
        batch_size=_BATCH_SIZE.value, run_once=_RUN_ONCE.value,
        eval_interval_secs=_EVAL_INTERVAL_SECS.value,
        result_json=_RESULT_JSON.value, export_dir=_EXPORT_DIR.value)
  except ValueError as error:
    raise app.UsageError(str(error))


if __name__ == '__main__':
  app.run(main)
