"""Runs one pytest file as a Bazel `py_test`.

Usage (as the `main` of a py_test): bazel_pytest_main.py <tests/x_test.py> [pytest args]

Bazel runs the test from the runfiles tree, whose root mirrors the repository,
so the repository's pytest.ini and tests/conftest.py apply as under a plain
`python3 -m pytest`. The runner keeps pytest's writes inside Bazel's test
sandbox (`TEST_TMPDIR`), reports JUnit XML where Bazel asks for it, and puts
the runfiles root on PYTHONPATH so tests that start subprocesses (binaries run
with `python3 -m ...`) import the same package.
"""
import os
import sys

import pytest

_NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED


def _pytest_args(test_file, extra_args):
  """Returns the pytest command line for `test_file` under Bazel's env."""
  args = [test_file, '-p', 'no:cacheprovider'] + list(extra_args)
  tmp_dir = os.environ.get('TEST_TMPDIR')
  if tmp_dir:
    args.append('--basetemp=' + os.path.join(tmp_dir, 'pytest'))
  xml_output = os.environ.get('XML_OUTPUT_FILE')
  if xml_output:
    args.append('--junitxml=' + xml_output)
  return args


def main(argv):
  if len(argv) < 2:
    sys.exit('usage: bazel_pytest_main.py <tests/x_test.py> [pytest args]; '
             'got no test file (set it in the py_test\'s args).')
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  os.chdir(repo_root)
  python_path = os.environ.get('PYTHONPATH')
  os.environ['PYTHONPATH'] = (repo_root + os.pathsep + python_path
                              if python_path else repo_root)
  exit_code = pytest.main(_pytest_args(argv[1], argv[2:]))
  if exit_code == _NO_TESTS_COLLECTED:
    print('%s ran no tests. If every test in it is @pytest.mark.slow and '
          'slow tests were deselected (-m "not slow"), add the file to '
          'SLOW_TESTS in BUILD so --test_tag_filters=-slow skips it.'
          % argv[1], file=sys.stderr)
  return exit_code


if __name__ == '__main__':
  sys.exit(main(sys.argv))
