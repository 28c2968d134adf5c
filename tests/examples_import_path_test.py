"""google-research's `model_pruning.examples.cifar10` import path."""
import os
import subprocess
import sys

import pytest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What google-research's cifar10 scripts call on the modules they import.
_USED_BY_GOOGLE_RESEARCH = {
    'cifar10_pruning': ('inference', 'loss', 'train', 'distorted_inputs',
                        'inputs', 'maybe_download_and_extract', 'NUM_CLASSES',
                        'MOVING_AVERAGE_DECAY', 'BATCH_SIZE'),
    'cifar10_input': ('IMAGE_SIZE', 'NUM_CLASSES', 'distorted_inputs',
                      'inputs'),
}


@pytest.mark.parametrize('module', sorted(_USED_BY_GOOGLE_RESEARCH))
def test_google_research_path_is_the_repository_module(module):
  from model_pruning.examples import cifar10  # pylint: disable=g-import-not-at-top
  aliased = getattr(cifar10, module)
  import importlib  # pylint: disable=g-import-not-at-top
  assert aliased is importlib.import_module('examples.cifar10.' + module)
  assert sys.modules['model_pruning.examples.cifar10.' + module] is aliased
  for name in _USED_BY_GOOGLE_RESEARCH[module]:
    assert hasattr(aliased, name), (module, name)


def test_unknown_module_is_an_attribute_error():
  from model_pruning.examples import cifar10  # pylint: disable=g-import-not-at-top
  with pytest.raises(AttributeError, match='no attribute'):
    cifar10.not_a_module  # pylint: disable=pointless-statement


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
def test_import_works_from_any_folder(tmp_path):
  """As a google-research script does it, outside the repository."""
  code = ('from model_pruning.examples.cifar10 import cifar10_pruning, '
          'cifar10_input\n'
          'print(cifar10_pruning.__name__, cifar10_input.IMAGE_SIZE)\n')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=_REPO_ROOT)
  result = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True,
                          timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ['examples.cifar10.cifar10_pruning', '24']
