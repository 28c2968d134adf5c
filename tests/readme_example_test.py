"""The README's usage example runs as written, with eager execution disabled."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Stands in for the user's input pipeline the README leaves to the reader.
_BATCHES = textwrap.dedent('''
    import numpy as np

    def my_batches(steps=60):
      rng = np.random.RandomState(0)
      for _ in range(steps):
        images = rng.rand(32, 784).astype(np.float32)
        yield images, (images[:, 0] > 0.5).astype(np.int64)
    ''')

_CHECK = textwrap.dedent('''
    sparsities = sess.run(model_pruning.get_weight_sparsity())
    print('SPARSITIES', [round(float(s), 3) for s in sparsities])
    ''')


def _usage_snippet():
  with open(os.path.join(_REPO_ROOT, 'README.md'), encoding='utf-8') as f:
    readme = f.read()
  section = readme[readme.index('## Usage'):]
  return re.search(r'```python\n(.*?)```', section, re.S).group(1)


@pytest.mark.slow
def test_readme_usage_example_prunes():
  snippet = _usage_snippet()
  # Shorter schedule so that 60 steps reach the target; same code otherwise.
  snippet = snippet.replace('begin_pruning_step=1000,end_pruning_step=20000',
                            'begin_pruning_step=10,end_pruning_step=50')
  snippet = snippet.replace(
      'sparsity_function_begin_step=1000,sparsity_function_end_step=20000',
      'sparsity_function_begin_step=10,sparsity_function_end_step=50')
  assert 'end_pruning_step=50' in snippet and 'function_end_step=50' in snippet
  # Run the check inside the README's `with Session` block.
  program = (_BATCHES + snippet.rstrip('\n') + '\n' +
             textwrap.indent(_CHECK, '  '))
  result = subprocess.run([sys.executable, '-c', program], cwd=_REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith('SPARSITIES')]
  assert line == ['SPARSITIES [0.9, 0.9]'], result.stdout[-2000:]
