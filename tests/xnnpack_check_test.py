"""Tests of xnnpack_check and `check_sparsity --xnnpack`.

Small MobileNet-style graphs built with the masked layers
(tests/xnnpack_models.py), pruned, stripped and converted with the sparse
TFLite export: one that passes every rule of XNNPACK's sparse path and one
per rule that breaks it. The models are converted once per module (about
0.3 s each); the whole file runs in about 15 s on 2 cores. Zero counts are
checked against the masks the models were built with (numpy).
"""
import os
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from model_pruning.python import check_sparsity
from model_pruning.python.xnnpack import check as xnnpack_check
from tests import xnnpack_models

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ONE_BY_ONE_PARAMS = 16 * 64 + 64 * 16  # expand + project
_VARIANTS = {
    'passes': {},
    'first_conv_same': dict(first_padding='SAME'),
    'max_pool_inside': dict(max_pool_inside=True),
    'expand_is_output': dict(expand_is_output=True),
    'no_end': dict(end='flatten'),
    'low_sparsity': dict(sparsity=0.5),
    'int8': dict(quantization='int8'),
    'no_densify': dict(sparse=False),
    'float16': dict(quantization='float16'),
    'depthwise_same_stride2': dict(dw_stride=2, dw_padding='SAME'),
    'depthwise_same_stride1': dict(dw_padding='SAME'),
    'sparsity_0.70': dict(sparsity=0.70),
    'sparsity_0.666': dict(sparsity=0.666),
    'sparsity_0.667': dict(sparsity=0.667),
}


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  """{variant: (path, oracle zeros of the 1x1 weights)}, converted once."""
  directory = tmp_path_factory.mktemp('xnnpack')
  built = {}
  for name, knobs in _VARIANTS.items():
    model, values = xnnpack_models.export(**knobs)
    path = str(directory / (name + '.tflite'))
    with open(path, 'wb') as f:
      f.write(model)
    zeros = sum(int(np.sum(values[s] == 0)) for s in xnnpack_models.ONE_BY_ONE)
    built[name] = (path, zeros)
  return built


def test_passing_model_engages_with_oracle_counts(models):
  path, zeros = models['passes']
  report = xnnpack_check.check(path)
  assert report.engages and report.has_densify
  [cluster] = report.clusters
  assert cluster.engages and cluster.rule is None
  assert (cluster.zeros, cluster.params) == (zeros, _ONE_BY_ONE_PARAMS)
  assert zeros == 2 * round(0.9 * 1024)


@pytest.mark.parametrize('variant,rule,op_type,text', [
    ('first_conv_same', xnnpack_check.RULE_FIRST_CONV, 'CONV_2D', 'SAME'),
    ('max_pool_inside', xnnpack_check.RULE_UNSUPPORTED_OP, 'MAX_POOL_2D',
     'no NCHW kernel'),
    ('expand_is_output', xnnpack_check.RULE_OUTSIDE_CONSUMER, '',
     'expand_out'),
    ('low_sparsity', xnnpack_check.RULE_SPARSITY, 'CONV_2D', '2/3'),
    ('int8', xnnpack_check.RULE_QUANTIZED, 'CONV_2D', 'INT8'),
    ('no_densify', xnnpack_check.RULE_NO_DENSIFY, None, 'DENSIFY'),
    ('depthwise_same_stride2', xnnpack_check.RULE_UNSUPPORTED_OP,
     'DEPTHWISE_CONV_2D', 'SAME padding with stride (2, 2)'),
], ids=['first_conv', 'unsupported_op', 'outside_consumer', 'sparsity',
        'quantized', 'no_densify', 'depthwise_same_stride2'])
def test_each_broken_rule_is_named_with_op_and_why(models, variant, rule,
                                                   op_type, text):
  report = xnnpack_check.check(models[variant][0])
  assert not report.engages
  broken = [c for c in report.clusters if not c.engages]
  assert broken and broken[0].rule == rule, broken
  if op_type is None:
    assert broken[0].op is None
  else:
    assert op_type in broken[0].op
  assert text in broken[0].detail + (broken[0].tensor or '')


def test_low_sparsity_counts_match_the_masks(models):
  path, zeros = models['low_sparsity']
  [cluster] = xnnpack_check.check(path).clusters
  assert (cluster.zeros, cluster.params) == (zeros, _ONE_BY_ONE_PARAMS)
  assert 'least sparse' in cluster.detail


def test_model_without_end_op_has_no_cluster(models):
  report = xnnpack_check.check(models['no_end'][0])
  assert not report.clusters and not report.engages
  assert report.no_cluster_rule == xnnpack_check.RULE_END_OP
  assert 'ends a cluster' in report.no_cluster_reason


@pytest.mark.parametrize('variant', ['float16', 'depthwise_same_stride1'])
def test_float16_and_stride1_same_depthwise_still_engage(models, variant):
  # float16 weights reach XNNPACK as float32 (DEQUANTIZE is unpacked);
  # SAME with stride 1 is explicit padding 1 for a 3x3 kernel.
  assert xnnpack_check.check(models[variant][0]).engages


@pytest.mark.parametrize('variant', ['sparsity_0.666', 'sparsity_0.667'])
def test_two_thirds_rule_is_strict(models, variant):
  path, zeros = models[variant]
  [cluster] = xnnpack_check.check(path).clusters
  assert cluster.zeros == zeros
  assert cluster.engages == (3 * zeros > 2 * _ONE_BY_ONE_PARAMS)


def test_count_fully_connected_adds_the_head_to_the_ratio(models):
  path, zeros = models['sparsity_0.70']
  assert xnnpack_check.check(path).engages  # 1434 / 2048 zeros
  newer = xnnpack_check.check(path, count_fully_connected=True)
  [cluster] = newer.clusters
  head = 16 * 10  # dense head weights join the count
  assert (cluster.zeros, cluster.params) == (zeros, _ONE_BY_ONE_PARAMS + head)
  assert cluster.rule == xnnpack_check.RULE_SPARSITY
  assert not newer.engages


@pytest.mark.parametrize('machine,cpu_flags,text', [
    ('x86_64', {'sse2', 'avx', 'avx2'}, 'keeps dense kernels'),
    ('x86_64', {'sse2'}, 'SSE sparse kernels'),
    ('aarch64', None, 'has sparse kernels'),
    ('riscv64', None, 'not an architecture'),
], ids=['x86_avx', 'x86_sse', 'arm64', 'riscv'])
def test_host_cpu_line(machine, cpu_flags, text):
  assert text in xnnpack_check.host_cpu_line(machine, cpu_flags)


def _run_main(*args):
  with flagsaver.flagsaver():
    return check_sparsity.main(flags.FLAGS(['check_sparsity'] + list(args)))


@pytest.mark.parametrize('variant,code,text', [
    ('passes', 0, 'WOULD ENGAGE'),
    ('no_densify', 1, 'rule broken: no_densify'),
    ('first_conv_same', 1, 'at: op #'),
])
def test_main_exit_codes(models, capsys, variant, code, text):
  assert _run_main('--xnnpack', models[variant][0]) == code
  out = capsys.readouterr().out
  assert text in out and 'host CPU:' in out


@pytest.mark.parametrize('make_input,message', [
    (lambda d: str(d / 'missing.tflite'), 'no such file'),
    (lambda d: str(d), 'needs a .tflite model'),
    (lambda d: (d / 'cut.tflite').write_bytes(b'\x1c\0\0\0TFL3\0\0') and
     str(d / 'cut.tflite'), 'corrupt TFLite model'),
], ids=['missing', 'checkpoint_dir', 'truncated'])
def test_main_bad_input_exits_2(tmp_path, capsys, make_input, message):
  assert _run_main('--xnnpack', make_input(tmp_path)) == 2
  err = capsys.readouterr().err
  assert message in err and len(err.strip().splitlines()) == 1


def test_binary_exit_status(models):
  result = subprocess.run(
      [sys.executable, '-m', 'model_pruning.python.check_sparsity',
       '--xnnpack', models['passes'][0]], capture_output=True, text=True,
      cwd=_REPO_ROOT, env=dict(os.environ, PYTHONPATH=_REPO_ROOT),
      check=False)
  assert result.returncode == 0, result.stderr
  assert 'cluster 1:' in result.stdout
