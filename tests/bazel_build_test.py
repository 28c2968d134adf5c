"""Checks the Bazel BUILD against the tree, without Bazel.

The BUILD file is Starlark, which for the subset used here is Python: it is
evaluated with stand-ins for the rules, so the checks run under plain pytest
(CI) as well as under `bazel test`. They catch the usual drift: a module added
without a target, an import without the matching dep, a test file without a
py_test.
"""
import ast
import glob
import os

import pytest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE_DIRS = ('model_pruning', 'examples', 'benchmarks')


class _Rules:
  """Records the targets a BUILD file declares."""

  def __init__(self):
    self.targets = {}

  def rule(self, kind):
    def declare(name, **attrs):
      if name in self.targets:
        raise ValueError('BUILD declares %r twice' % name)
      self.targets[name] = dict(attrs, kind=kind)
    return declare

  def glob(self, include, exclude=()):
    """Bazel's glob over the repo (no directories, recursive '**')."""
    excluded = set()
    for pattern in exclude:
      excluded.update(glob.glob(pattern, root_dir=_REPO_ROOT, recursive=True))
    matches = set()
    for pattern in include:
      matches.update(glob.glob(pattern, root_dir=_REPO_ROOT, recursive=True))
    return sorted(path for path in matches - excluded
                  if os.path.isfile(os.path.join(_REPO_ROOT, path)))


def _load_build():
  rules = _Rules()
  names = {kind: rules.rule(kind) for kind in (
      'py_library', 'py_binary', 'py_test', 'filegroup', 'genrule')}
  names.update(glob=rules.glob, package=lambda **kwargs: None)
  with open(os.path.join(_REPO_ROOT, 'BUILD'), encoding='utf-8') as build:
    exec(compile(build.read(), 'BUILD', 'exec'), names)  # pylint: disable=exec-used
  return rules.targets


def _module_name(path):
  module = path[:-len('.py')].replace('/', '.')
  return module[:-len('.__init__')] if module.endswith('.__init__') else module


def _repo_sources(subdir):
  return sorted(path for path in glob.glob(
      subdir + '/**/*.py', root_dir=_REPO_ROOT, recursive=True)
                if '__pycache__' not in path)


def _internal_imports(path):
  """Modules of this repo that `path` imports (module or `from x import y`)."""
  with open(os.path.join(_REPO_ROOT, path), encoding='utf-8') as source:
    tree = ast.parse(source.read())
  imported = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      imported.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      imported.add(node.module)
      imported.update(node.module + '.' + alias.name for alias in node.names)
  return {name for name in imported if name.split('.')[0] in _PACKAGE_DIRS}


def _transitive_sources(targets, name, seen=None):
  seen = set() if seen is None else seen
  if name in seen:
    return set()
  seen.add(name)
  target = targets[name]
  sources = set(target.get('srcs', []))
  for dep in target.get('deps', []):
    sources |= _transitive_sources(targets, dep.lstrip(':'), seen)
  return sources


_TARGETS = _load_build()
_LIBRARY_SOURCES = {
    src: name for name, target in _TARGETS.items()
    if target['kind'] == 'py_library' for src in target['srcs']}


@pytest.mark.parametrize('path', [
    path for subdir in _PACKAGE_DIRS for path in _repo_sources(subdir)])
def test_every_module_is_in_a_py_library(path):
  assert path in _LIBRARY_SOURCES, (
      '%s has no py_library in BUILD; add one (deps: the targets of the '
      'modules it imports).' % path)


@pytest.mark.parametrize('name', sorted(
    name for name, target in _TARGETS.items()
    if target['kind'] in ('py_library', 'py_binary')))
def test_deps_cover_internal_imports(name):
  """Each target's transitive sources hold every repo module it imports."""
  available = {_module_name(path)
               for path in _transitive_sources(_TARGETS, name)}
  imported = set()
  for src in _TARGETS[name]['srcs']:
    imported |= _internal_imports(src)
  # Names that are not modules (`from m import CONSTANT`) need nothing.
  missing = (imported & _all_modules()) - available
  assert not missing, '%s imports %s; add the targets holding them to deps' % (
      name, sorted(missing))


def _all_modules():
  return {_module_name(path) for subdir in _PACKAGE_DIRS
          for path in _repo_sources(subdir)}


@pytest.mark.parametrize('path', sorted(
    glob.glob('tests/*_test.py', root_dir=_REPO_ROOT)))
def test_every_test_file_has_a_py_test(path):
  name = os.path.basename(path)[:-len('.py')]
  assert _TARGETS.get(name, {}).get('kind') == 'py_test'
  assert path in _TARGETS[name]['srcs']


def _build_slow_tests():
  with open(os.path.join(_REPO_ROOT, 'BUILD'), encoding='utf-8') as source:
    for node in ast.parse(source.read()).body:
      if (isinstance(node, ast.Assign) and
          getattr(node.targets[0], 'id', None) == 'SLOW_TESTS'):
        return ast.literal_eval(node.value)
  raise AssertionError('BUILD has no SLOW_TESTS list')


def _marks_slow(expression):
  """True if `expression` is pytest.mark.slow or a list/tuple holding it."""
  if isinstance(expression, (ast.List, ast.Tuple)):
    return any(_marks_slow(item) for item in expression.elts)
  if isinstance(expression, ast.Call):  # @pytest.mark.slow(...) form.
    expression = expression.func
  return isinstance(expression, ast.Attribute) and expression.attr == 'slow'


def _is_all_slow(path, root=_REPO_ROOT):
  """True if the file defines tests and every one of them is marked slow."""
  with open(os.path.join(root, path), encoding='utf-8') as source:
    module = ast.parse(source.read())
  for node in module.body:
    if (isinstance(node, ast.Assign) and
        getattr(node.targets[0], 'id', None) == 'pytestmark' and
        _marks_slow(node.value)):
      return True
  verdicts = []
  for node in module.body:
    if isinstance(node, ast.FunctionDef) and node.name.startswith('test'):
      verdicts.append(any(_marks_slow(d) for d in node.decorator_list))
    elif isinstance(node, ast.ClassDef):
      class_slow = any(_marks_slow(d) for d in node.decorator_list)
      verdicts.extend(
          class_slow or any(_marks_slow(d) for d in method.decorator_list)
          for method in node.body
          if isinstance(method, ast.FunctionDef) and
          method.name.startswith('test'))
  return bool(verdicts) and all(verdicts)


def test_slow_tests_are_test_files():
  for path in _build_slow_tests():
    assert os.path.isfile(os.path.join(_REPO_ROOT, path)), (
        'SLOW_TESTS names %s, which does not exist' % path)


def test_slow_tests_lists_exactly_the_all_slow_files():
  # Bazel runs each file with -m "not slow"; a file whose every test is slow
  # would then collect nothing (pytest exit 5) unless its target is tagged
  # slow, which is what SLOW_TESTS does.
  all_slow = sorted(path for path in glob.glob('tests/*_test.py',
                                                root_dir=_REPO_ROOT)
                    if _is_all_slow(path))
  assert sorted(_build_slow_tests()) == all_slow, (
      'Set SLOW_TESTS in BUILD to %r' % all_slow)


@pytest.mark.parametrize('source, expected', [
    ('pytestmark = pytest.mark.slow\ndef test_a(): pass\n', True),
    ('pytestmark = [pytest.mark.slow]\ndef test_a(): pass\n', True),
    ('@pytest.mark.slow\ndef test_a(): pass\n', True),
    ('@pytest.mark.slow\ndef test_a(): pass\ndef test_b(): pass\n', False),
    ('@pytest.mark.slow\nclass TestX:\n  def test_a(self): pass\n', True),
    ('class T(tf.test.TestCase):\n  def testA(self): pass\n', False),
    ('def helper(): pass\n', False),
])
def test_all_slow_detection(tmp_path, source, expected):
  (tmp_path / 'x_test.py').write_text(source)
  assert _is_all_slow('x_test.py', root=str(tmp_path)) == expected
