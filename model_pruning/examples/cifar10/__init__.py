"""google-research's import path of the CIFAR-10 example.

google-research scripts import `from model_pruning.examples.cifar10 import
cifar10_pruning`; the example lives in the repository's `examples/cifar10`
(not in the wheel: it reads and writes CIFAR-10 data, which a library
install has no business doing). This package hands out those modules under
the google-research name: from a checkout, or an editable install
(`pip install -e .`), the repository root is found next to the package and
the modules are the very ones `examples.cifar10` imports (no second copy,
so their flags are defined once).

From a wheel install there is no `examples/` to hand out: change the import
to `from examples.cifar10 import cifar10_pruning` and run from a checkout.
"""
import importlib
import os
import sys

# The modules google-research scripts import, plus this example's own.
MODULES = ('cifar10_input', 'cifar10_pruning', 'cifar10_train',
           'cifar10_eval', 'evaluation', 'training', 'synthetic_data',
           'run_main_job', 'sweep', 'cifar10_sweep', 'make_synthetic_cifar10')

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


def _import_example(name):
  """examples.cifar10.<name>, with the repository root made importable."""
  if not os.path.isdir(os.path.join(_REPO_ROOT, 'examples', 'cifar10')):
    raise ImportError(
        'model_pruning.examples.cifar10.%s: the CIFAR-10 example is not '
        'installed with the wheel. Run from a checkout of model_pruning '
        "(pip install -e .) or change the import to 'from examples.cifar10 "
        "import %s'." % (name, name))
  if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)
  module = importlib.import_module('examples.cifar10.' + name)
  sys.modules[__name__ + '.' + name] = module
  return module


def __getattr__(name):
  if name in MODULES:
    return _import_example(name)
  raise AttributeError('module %r has no attribute %r' % (__name__, name))
