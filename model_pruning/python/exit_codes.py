"""One exit-status convention for every console tool, and its helpers.

  0  ok
  1  a check failed (check_sparsity: an N:M pattern or XNNPACK rule;
     strip_pruning_vars --fail_below_target: a weight below its target)
  2  bad usage or input: an unknown or malformed flag, a missing or
     unreadable file, a bad value

Errors are one line on stderr, `<program>: error: <message>`.
"""
import sys

from absl import app
from absl import flags

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


def error_line(program, message):
  """Prints `<program>: error: <message>` (one line) to stderr."""
  text = ' '.join(str(message).split())
  print('%s: error: %s' % (program, text), file=sys.stderr)


def fail(program, message):
  """Prints the error line and exits with EXIT_USAGE."""
  error_line(program, message)
  sys.exit(EXIT_USAGE)


def usage_error(message):
  """An app.UsageError that exits with EXIT_USAGE (absl's default is 1)."""
  return app.UsageError(message, exitcode=EXIT_USAGE)


def flags_parser(program):
  """An absl `flags_parser` whose bad flag is one line and EXIT_USAGE."""

  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as error:
      fail(program, '%s (see --helpshort)' % error)

  return parse
