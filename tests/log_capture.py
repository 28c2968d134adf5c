"""Test helpers: absl warnings a block logs; a subprocess's own stderr lines."""
import contextlib
import logging
import re

from absl import logging as absl_logging


class _Collect(logging.Handler):

  def __init__(self, level):
    super().__init__(level=level)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@contextlib.contextmanager
def absl_warnings(level=logging.WARNING):
  """Yields the list of messages at `level` or above logged in the block."""
  handler = _Collect(level)
  logger = absl_logging.get_absl_logger()
  previous = logger.level
  logger.addHandler(handler)
  logger.setLevel(min(previous or level, level))
  try:
    yield handler.messages
  finally:
    logger.removeHandler(handler)
    logger.setLevel(previous)


# TensorFlow's native (C++) log lines, e.g. the oneDNN notice at import.
_NATIVE_LOG_LINE = re.compile(
    r'^([IWEF]\d{4} \S+ +\d+ \S+\.cc:\d+\]|WARNING: All log messages before '
    r'absl::InitializeLog)')


def own_stderr_lines(stderr):
  """The non-empty lines of `stderr` that are not TensorFlow's native logs."""
  return [line for line in stderr.splitlines()
          if line.strip() and not _NATIVE_LOG_LINE.match(line)]
