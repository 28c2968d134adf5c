"""Test helper: collect the warnings a block logs through absl.logging."""
import contextlib
import logging

from absl import logging as absl_logging


class _Collect(logging.Handler):

  def __init__(self):
    super().__init__(level=logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@contextlib.contextmanager
def absl_warnings():
  """Yields the list of warning messages logged inside the block."""
  handler = _Collect()
  logger = absl_logging.get_absl_logger()
  logger.addHandler(handler)
  try:
    yield handler.messages
  finally:
    logger.removeHandler(handler)
