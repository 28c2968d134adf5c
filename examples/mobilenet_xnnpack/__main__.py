r"""Prunes a MobileNet-style model for XNNPACK's sparse path and reports.

  python -m examples.mobilenet_xnnpack --output_dir=/tmp/mobilenet_xnnpack
  python -m examples.mobilenet_xnnpack --quick   # smoke-test size, ~20 s

Prints which weights the latency policy pruned and left dense, the
`check_sparsity --xnnpack` verdict on the exported sparse model, the dense
and sparse TFLite sizes, their single-thread latency on this machine and
the accuracy on the held-out digits; writes both .tflite files and
results.json to --output_dir. Needs scikit-learn
(pip install 'model_pruning[examples]').
"""
import dataclasses

from absl import app
from absl import flags

from examples.mobilenet_xnnpack import pipeline

_OUTPUT_DIR = flags.DEFINE_string('output_dir', '/tmp/mobilenet_xnnpack',
                                  'Where the models and results.json go.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smoke-test size (few steps).')
_TARGET = flags.DEFINE_float('target_sparsity', 0.8,
                             'Sparsity of the 1x1 convolutions.',
                             lower_bound=0.0, upper_bound=0.99)
_SEED = flags.DEFINE_integer('seed', 0, 'Data split and training seed.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  config = pipeline.QUICK if _QUICK.value else pipeline.Config()
  config = dataclasses.replace(config, target_sparsity=_TARGET.value,
                               seed=_SEED.value)
  results = pipeline.run(config, _OUTPUT_DIR.value)
  print(pipeline.format_results(results))


if __name__ == '__main__':
  app.run(main)
