"""Supervisor services that work under TF 2: summaries, step rate, checkpoints.

`tf.compat.v1.train.Supervisor.start_standard_services` starts threads that
run in TF 2's default eager mode, where reading the global step or saving a
checkpoint from a graph session fails. `start_standard_services` here does
the same work from `LooperThread`s that make the session's graph their
default graph. Used by `learning.train`.
"""
import time

from absl import logging
import tensorflow as tf


def start_standard_services(supervisor, sess, graph):
  """`Supervisor.start_standard_services`, each service run inside `graph`.

  Starts, as the Supervisor would: summaries and a `global_step/sec` summary
  every `save_summaries_secs`, a checkpoint every `save_model_secs`, each also
  once right away. The threads are registered with the supervisor's
  coordinator, so stopping the supervisor joins them (and re-raises their
  errors).

  Args:
    supervisor: a chief `tf.compat.v1.train.Supervisor` with a logdir.
    sess: the session the supervisor prepared.
    graph: the graph `sess` runs.

  Returns:
    The started threads.
  """
  writer = supervisor.summary_writer
  step = supervisor.global_step
  if step is not None and writer:
    writer.add_session_log(
        tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START),
        sess.run(step))
  services = []
  if supervisor.save_summaries_secs and writer:
    if supervisor.summary_op is not None:
      services.append((supervisor.save_summaries_secs, _write_summaries))
    if step is not None:
      services.append((supervisor.save_summaries_secs, _StepCounter()))
  if supervisor.saver and supervisor.save_model_secs:
    services.append((supervisor.save_model_secs, _save_checkpoint))
  threads = []
  for interval_secs, service in services:
    threads.append(tf.compat.v1.train.LooperThread(
        supervisor.coord, interval_secs, target=_in_graph(graph, service),
        args=(supervisor, sess)))
  for thread in threads:
    thread.start()
  return threads


def _in_graph(graph, fn):
  """Returns `fn` made to run with `graph` as the thread's default graph."""

  def run(*args):
    with graph.as_default():
      fn(*args)

  return run


def _write_summaries(supervisor, sess):
  """Runs the summary op and writes it at the current global step."""
  if supervisor.global_step is None:
    summary, step = sess.run(supervisor.summary_op), None
  else:
    summary, step = sess.run([supervisor.summary_op, supervisor.global_step])
  logging.info('Recording summary at step %s.', step)
  supervisor.summary_writer.add_summary(summary, step)


def _save_checkpoint(supervisor, sess):
  """Saves a checkpoint to `logdir` tagged with the global step."""
  logging.info('Saving checkpoint to path %s', supervisor.save_path)
  supervisor.saver.save(sess, supervisor.save_path,
                        global_step=supervisor.global_step)


class _StepCounter:
  """Writes the `global_step/sec` summary: steps done since the last call."""

  def __init__(self):
    self._last_step = None
    self._last_time = time.time()

  def __call__(self, supervisor, sess):
    current_step = int(sess.run(supervisor.global_step))
    current_time = time.time()
    if self._last_step is not None:
      elapsed = current_time - self._last_time
      steps_per_sec = ((current_step - self._last_step) / elapsed
                       if elapsed > 0 else float('inf'))
      supervisor.summary_writer.add_summary(
          tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(
              tag='global_step/sec', simple_value=steps_per_sec)]),
          current_step)
    self._last_step, self._last_time = current_step, current_time
