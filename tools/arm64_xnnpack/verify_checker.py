r"""Checks xnnpack_check's verdicts against the aarch64 LiteRT runtime.

XNNPACK's own "switched to sparse inference mode" log line is compiled out
of the PyPI LiteRT wheels (its log strings are absent from the .so), so the
runtime's behaviour is the witness instead: each test model of
tests/xnnpack_models.py is exported twice from the same weights, once
sparse-encoded (DENSIFY) and once dense. If XNNPACK stays dense, both files
run the same kernels on the same weights; if it switches to sparse
inference, the sparse file runs NCHW sparse kernels, which are faster and
add in another order. Under qemu the time ratio is the clear signal
(about 0.5 against about 1.0); outputs that are no longer bit-identical
back it up.

  tools/arm64_xnnpack/setup_arm64_runtime.sh /tmp/arm64_litert
  PYTHONPATH=. python tools/arm64_xnnpack/verify_checker.py \
      --runtime_dir=/tmp/arm64_litert [--pair=dense.tflite,sparse.tflite]
"""
import json
import os
import subprocess
import sys

from absl import app
from absl import flags

from model_pruning.python.xnnpack import check as xnnpack_check
from tests import xnnpack_models

_RUNTIME_DIR = flags.DEFINE_string('runtime_dir', '/tmp/arm64_litert',
                                   'What setup_arm64_runtime.sh built.')
_WORK_DIR = flags.DEFINE_string('work_dir', '/tmp/arm64_verify',
                                'Where the test models are written.')
_RUNS = flags.DEFINE_integer('runs', 30, 'Invokes timed per model.',
                             lower_bound=1)
_PAIRS = flags.DEFINE_multi_string('pair', [], 'An extra pair to run, '
                                   'dense.tflite,sparse.tflite (repeatable).')
ENGAGED_RATIO = 0.8  # sparse/dense time below this: sparse kernels ran

VARIANTS = {
    'passes (1x1 at 90%)': {},
    'sparsity 0.70 (dense FC head)': dict(sparsity=0.70),
    'float16': dict(quantization='float16'),
    'depthwise SAME stride 1': dict(dw_padding='SAME'),
    'depthwise PAD+VALID stride 2': dict(dw_stride=2),
    'first conv SAME stride 2': dict(first_padding='SAME'),
    'MAX_POOL inside': dict(max_pool_inside=True),
    'expand tensor is a model output': dict(expand_is_output=True),
    'no MEAN (flatten)': dict(end='flatten'),
    'sparsity 0.5': dict(sparsity=0.5),
    'sparsity 0.666': dict(sparsity=0.666),
    'sparsity 0.667': dict(sparsity=0.667),
    'depthwise SAME stride 2': dict(dw_stride=2, dw_padding='SAME'),
    'int8 dynamic range': dict(quantization='int8'),
}


def write_pairs(work_dir):
  """Exports each variant dense and sparse; returns [(label, dense, sparse)]."""
  os.makedirs(work_dir, exist_ok=True)
  pairs = []
  for number, (label, knobs) in enumerate(VARIANTS.items()):
    paths = []
    for sparse in (False, True):
      model, _ = xnnpack_models.export(sparse=sparse, **knobs)
      paths.append(os.path.join(work_dir, 'v%02d_%s.tflite' % (
          number, 'sparse' if sparse else 'dense')))
      with open(paths[-1], 'wb') as f:
        f.write(model)
    pairs.append((label, paths[0], paths[1]))
  return pairs


def run_on_arm64(runtime_dir, pairs, runs):
  """Runs arm64_probe.py under qemu; returns its JSON lines, pair order."""
  probe = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'arm64_probe.py')
  command = ['qemu-aarch64-static', '-L', os.path.join(runtime_dir, 'root'),
             '-E', 'PYTHONPATH=' + os.path.join(runtime_dir, 'site'),
             os.path.join(runtime_dir, 'root/usr/bin/python3.11'), probe,
             str(runs)] + ['%s,%s' % (d, s) for _, d, s in pairs]
  result = subprocess.run(command, capture_output=True, text=True,
                          check=True)
  return [json.loads(line) for line in result.stdout.splitlines()
          if line.startswith('{')]


def table(pairs, lines):
  """Markdown rows: checker verdict against what ARM64 did."""
  rows = ['| model | checker (ARM64) | ARM64 sparse/dense time | outputs '
          'bit-identical | agree |', '|---|---|---|---|---|']
  agreed = ran = 0
  for (label, _, sparse), line in zip(pairs, lines):
    report = xnnpack_check.check(sparse)
    verdict = 'engages' if report.engages else 'dense: %s' % (
        report.no_cluster_rule or next(
            c.rule for c in report.clusters if not c.engages))
    if 'error' in line:
      rows.append('| %s | %s | does not load: %s | | |' % (
          label, verdict, line['error'][:60]))
      continue
    ratio = line['sparse_ms'] / line['dense_ms']
    agree = (ratio < ENGAGED_RATIO) == report.engages
    agreed, ran = agreed + agree, ran + 1
    rows.append('| %s | %s | %.2f (%.2f / %.2f ms) | %s | %s |' % (
        label, verdict, ratio, line['sparse_ms'], line['dense_ms'],
        'yes' if line['bit_identical'] else
        'no (max %.2g)' % line['max_abs_diff'], 'yes' if agree else 'NO'))
  rows.append('\n%d of %d verdicts agree with the runtime.' % (agreed, ran))
  return '\n'.join(rows)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('unexpected arguments: %s' % ' '.join(argv[1:]))
  pairs = write_pairs(_WORK_DIR.value)
  for pair in _PAIRS.value:
    dense, sparse = pair.split(',')
    pairs.append((os.path.basename(sparse), dense, sparse))
  lines = run_on_arm64(_RUNTIME_DIR.value, pairs, _RUNS.value)
  print(table(pairs, lines))


if __name__ == '__main__':
  sys.exit(app.run(main))
