"""A training loop that updates the pruning masks after every step.

`train` is contrib's `model_pruning.python.learning.train`: the
`tf_slim.learning.train` loop with the caller's step function wrapped so that
`mask_update_op` runs in the same session right after each training step. The
loop is re-created here on `tf.compat.v1.train.Supervisor`, as slim does, so
tf_slim is not needed: initialization (or recovery from the latest checkpoint
in `logdir`), summaries every `save_summaries_secs`, checkpoints every
`save_interval_secs` plus one at the end, `number_of_steps`,
`log_every_n_steps` and tracing behave as in slim.

Typical use (contrib README):

  p = pruning.Pruning(pruning_hparams, global_step=global_step)
  mask_update_op = p.conditional_mask_update_op()
  p.add_pruning_summaries()
  final_loss = learning.train(train_op, logdir, mask_update_op)

Unlike upstream, which unpacked slim's single return value into two names and
crashed once training ended (docs/upstream.md Q17), `train` returns the final loss.
"""
import os
import sys
import time

from absl import logging
import numpy as np
import tensorflow as tf

from model_pruning.python import sparsity_log
from model_pruning.python import training_services

# slim's sentinel for "build the default": an int, so `is None` stays distinct.
_USE_DEFAULT = 0


def _is_default(value):
  """True for the `_USE_DEFAULT` sentinel; never compares a tensor with `==`."""
  return (isinstance(value, int) and not isinstance(value, bool) and
          value == _USE_DEFAULT)


def train_step(sess, train_op, global_step, train_step_kwargs):
  """Runs one training step; slim's `learning.train_step`.

  Args:
    sess: the session to run in.
    train_op: the op or tensor to run; its value is the step's total loss.
    global_step: the global step tensor, fetched with `train_op`.
    train_step_kwargs: dict with optional boolean tensors `should_stop`,
      `should_log` and `should_trace` (the last needs `logdir`), and an
      optional `summary_writer` for the trace's run metadata.

  Returns:
    (total_loss, should_stop): the value of `train_op` and a Python bool.

  Raises:
    ValueError: `should_trace` is given without `logdir`.
  """
  start_time = time.time()
  options, run_metadata = _trace_options(sess, train_step_kwargs)
  total_loss, np_global_step = sess.run([train_op, global_step],
                                        options=options,
                                        run_metadata=run_metadata)
  time_elapsed = time.time() - start_time
  if run_metadata is not None:
    _write_trace(run_metadata, np_global_step, train_step_kwargs)
  if 'should_log' in train_step_kwargs:
    if sess.run(train_step_kwargs['should_log']):
      logging.info('global step %d: loss = %.4f (%.3f sec/step)',
                   np_global_step, total_loss, time_elapsed)
  should_stop = False
  if 'should_stop' in train_step_kwargs:
    should_stop = bool(sess.run(train_step_kwargs['should_stop']))
  return total_loss, should_stop


def _trace_options(sess, train_step_kwargs):
  """Returns (RunOptions, RunMetadata) for a full trace, or (None, None)."""
  if 'should_trace' not in train_step_kwargs:
    return None, None
  if 'logdir' not in train_step_kwargs:
    raise ValueError('train_step_kwargs has should_trace but no logdir; add '
                     'the directory the trace files go to as "logdir".')
  if not sess.run(train_step_kwargs['should_trace']):
    return None, None
  return (tf.compat.v1.RunOptions(
      trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
          tf.compat.v1.RunMetadata())


def _write_trace(run_metadata, np_global_step, train_step_kwargs):
  """Writes a Chrome trace of one step to `logdir/tf_trace-<step>.json`."""
  # TF's own Chrome-trace formatter; it has no public alias.
  from tensorflow.python.client import timeline  # pylint: disable=g-import-not-at-top
  trace = timeline.Timeline(run_metadata.step_stats).generate_chrome_trace_format()
  trace_filename = os.path.join(train_step_kwargs['logdir'],
                                'tf_trace-%d.json' % np_global_step)
  logging.info('Writing trace to %s', trace_filename)
  with tf.io.gfile.GFile(trace_filename, 'w') as trace_file:
    trace_file.write(trace)
  if 'summary_writer' in train_step_kwargs:
    train_step_kwargs['summary_writer'].add_run_metadata(
        run_metadata, 'run_metadata-%d' % np_global_step)


def _with_mask_update(train_step_fn, mask_update_op, sparsity_logger):
  """Wraps `train_step_fn` so `mask_update_op` runs after every step.

  The global step comes with the update, for the asked vs achieved sparsity
  line that `sparsity_logger` writes every so many steps.
  """

  def train_step_with_pruning_fn(sess, train_op, global_step,
                                 train_step_kwargs):
    total_loss, should_stop = train_step_fn(sess, train_op, global_step,
                                            train_step_kwargs)
    _, step = sess.run([mask_update_op, global_step])
    sparsity_logger.maybe_log(sess, int(step))
    return total_loss, should_stop

  return train_step_with_pruning_fn


def train(train_op,
          logdir,
          mask_update_op,
          train_step_fn=train_step,
          train_step_kwargs=_USE_DEFAULT,
          log_every_n_steps=1,
          graph=None,
          master='',
          is_chief=True,
          global_step=None,
          number_of_steps=None,
          init_op=_USE_DEFAULT,
          init_feed_dict=None,
          local_init_op=_USE_DEFAULT,
          init_fn=None,
          ready_op=_USE_DEFAULT,
          summary_op=_USE_DEFAULT,
          save_summaries_secs=600,
          summary_writer=_USE_DEFAULT,
          startup_delay_steps=0,
          saver=None,
          save_interval_secs=600,
          sync_optimizer=None,
          session_config=None,
          trace_every_n_steps=None,
          sparsity_log_every_n_steps=100):
  """Runs a training loop that updates the pruning masks after every step.

  Each iteration calls `train_step_fn(sess, train_op, global_step,
  train_step_kwargs) -> (total_loss, should_stop)` and then runs
  `mask_update_op` in the same session. All other arguments mean what they
  mean in `tf_slim.learning.train`; `_USE_DEFAULT` (0) builds slim's default
  (`global_variables_initializer`, `report_uninitialized_variables`, local
  variables and tables initializer, `merge_all` summaries, a FileWriter on
  `logdir`). With the default `train_step_kwargs`, training stops once the
  global step reaches `number_of_steps` and logs every `log_every_n_steps`.

  Args:
    train_op: op or tensor whose value is the total loss (e.g. from
      `optimizer.minimize(..., global_step=...)` wrapped to return the loss).
    logdir: directory for checkpoints and summaries, or None for neither.
    mask_update_op: the op run after each step, usually
      `Pruning.conditional_mask_update_op()`.
    sparsity_log_every_n_steps: log the sparsity each pruned weight is asked
      for and has (model_pruning.python.sparsity_log) this often; 0 or None
      never. Not in slim.
    (others): see `tf_slim.learning.train`.

  Returns:
    The value of `train_op` at the last step (a Python float when it is a
    scalar), or None if no step ran.

  Raises:
    ValueError: for the arguments slim rejects (no train_op, a summary_op,
      saver or trace request without logdir, startup delay with a sync
      optimizer, a non-positive number_of_steps) and a None mask_update_op.
  """
  _check_train_args(train_op, logdir, mask_update_op, number_of_steps,
                    summary_op, saver, trace_every_n_steps, sync_optimizer,
                    startup_delay_steps)
  if isinstance(sync_optimizer, tf.compat.v1.train.SyncReplicasOptimizer):
    sync_optimizer = [sync_optimizer]
  graph = graph or tf.compat.v1.get_default_graph()
  with graph.as_default():
    if global_step is None:
      global_step = tf.compat.v1.train.get_or_create_global_step()
    saver = saver or tf.compat.v1.train.Saver()
    init_op, ready_op, local_init_op, ready_for_local_init_op = _init_ops(
        init_op, ready_op, local_init_op, sync_optimizer, is_chief)
    if _is_default(summary_op):
      summary_op = tf.compat.v1.summary.merge_all()
    if _is_default(summary_writer):
      summary_writer = tf.compat.v1.train.Supervisor.USE_DEFAULT
    sync_ops = _chief_sync_ops(sync_optimizer, is_chief)
    sparsity_logger = sparsity_log.SparsityLogger(sparsity_log_every_n_steps)
    if _is_default(train_step_kwargs):
      train_step_kwargs = _default_train_step_kwargs(
          global_step, number_of_steps, log_every_n_steps, is_chief,
          trace_every_n_steps, logdir)
  supervisor = tf.compat.v1.train.Supervisor(
      graph=graph, is_chief=is_chief, logdir=logdir, init_op=init_op,
      init_feed_dict=init_feed_dict, local_init_op=local_init_op,
      ready_for_local_init_op=ready_for_local_init_op, ready_op=ready_op,
      summary_op=summary_op, summary_writer=summary_writer,
      global_step=global_step, saver=saver,
      save_summaries_secs=save_summaries_secs,
      save_model_secs=save_interval_secs, init_fn=init_fn)
  if summary_writer is not None:
    train_step_kwargs['summary_writer'] = supervisor.summary_writer
  step_fn = _with_mask_update(train_step_fn, mask_update_op, sparsity_logger)
  total_loss = _run_until_done(
      supervisor, graph, step_fn, train_op, global_step, train_step_kwargs, master,
      session_config, logdir, is_chief, startup_delay_steps, number_of_steps,
      sync_ops)
  if total_loss is not None and np.ndim(total_loss) == 0:
    return float(total_loss)
  return total_loss


def _check_train_args(train_op, logdir, mask_update_op, number_of_steps,
                      summary_op, saver, trace_every_n_steps, sync_optimizer,
                      startup_delay_steps):
  """Raises ValueError for the argument combinations slim rejects."""
  if train_op is None:
    raise ValueError('train_op cannot be None; pass the op (or loss tensor) '
                     'that runs one training step.')
  if mask_update_op is None:
    raise ValueError('mask_update_op cannot be None; pass '
                     'Pruning(...).conditional_mask_update_op().')
  if logdir is None:
    given = [name for name, is_set in (
        ('summary_op', not _is_default(summary_op)),
        ('saver', saver is not None),
        ('trace_every_n_steps', trace_every_n_steps is not None)) if is_set]
    if given:
      raise ValueError('Cannot provide %s because logdir=None; give a logdir '
                       'or drop %s.' % (given[0], given[0]))
  if sync_optimizer is not None and startup_delay_steps > 0:
    raise ValueError('startup_delay_steps must be zero when sync_optimizer is '
                     'supplied, got %r.' % (startup_delay_steps,))
  if number_of_steps is not None and number_of_steps <= 0:
    raise ValueError('number_of_steps must be either None or a positive '
                     'number, got %r.' % (number_of_steps,))
  for opt in sync_optimizer if isinstance(sync_optimizer, list) else []:
    if not isinstance(opt, tf.compat.v1.train.SyncReplicasOptimizer):
      raise ValueError('sync_optimizer must be a tf.compat.v1.train.'
                       'SyncReplicasOptimizer (or a list of them), got %r.'
                       % (opt,))


def _init_ops(init_op, ready_op, local_init_op, sync_optimizer, is_chief):
  """Builds slim's default init/ready ops; folds in the sync optimizers'."""
  with tf.compat.v1.name_scope('init_ops'):
    if _is_default(init_op):
      init_op = tf.compat.v1.global_variables_initializer()
    if _is_default(ready_op):
      ready_op = tf.compat.v1.report_uninitialized_variables()
    if _is_default(local_init_op):
      local_init_op = tf.group(tf.compat.v1.local_variables_initializer(),
                               tf.compat.v1.tables_initializer())
    ready_for_local_init_op = None
    if sync_optimizer is not None:
      deps = [local_init_op] if local_init_op is not None else []
      with tf.control_dependencies(deps):
        local_init_op = tf.group(*[
            opt.chief_init_op if is_chief else opt.local_step_init_op
            for opt in sync_optimizer])
      ready_for_local_init_op = tf.group(
          *[opt.ready_for_local_init_op for opt in sync_optimizer])
  return init_op, ready_op, local_init_op, ready_for_local_init_op


def _chief_sync_ops(sync_optimizer, is_chief):
  """Returns (init token ops, chief queue runners), built before finalize."""
  if not is_chief or sync_optimizer is None:
    return None
  return ([opt.get_init_tokens_op() for opt in sync_optimizer],
          [opt.get_chief_queue_runner() for opt in sync_optimizer])


def _default_train_step_kwargs(global_step, number_of_steps,
                               log_every_n_steps, is_chief,
                               trace_every_n_steps, logdir):
  """Builds slim's `should_stop` / `should_log` / `should_trace` tensors."""
  kwargs = {}
  with tf.compat.v1.name_scope('train_step'):
    if number_of_steps:
      kwargs['should_stop'] = tf.greater_equal(global_step, number_of_steps)
    else:
      kwargs['should_stop'] = tf.constant(False)
    if log_every_n_steps > 0:
      kwargs['should_log'] = tf.equal(
          tf.math.floormod(global_step, log_every_n_steps), 0)
    if is_chief and trace_every_n_steps is not None:
      kwargs['should_trace'] = tf.equal(
          tf.math.floormod(global_step, trace_every_n_steps), 0)
      kwargs['logdir'] = logdir
  return kwargs


def _run_until_done(supervisor, graph, step_fn, train_op, global_step,
                    train_step_kwargs, master, session_config, logdir,
                    is_chief, startup_delay_steps, number_of_steps, sync_ops):
  """slim's session loop; retries on AbortedError. Returns the last loss."""
  total_loss = None
  while True:
    try:
      with graph.as_default(), supervisor.managed_session(
          master, start_standard_services=False,
          config=session_config) as sess:
        logging.info('Starting Session.')
        services = []
        if is_chief and logdir:
          services = training_services.start_standard_services(
              supervisor, sess, graph)
        elif not is_chief and startup_delay_steps > 0:
          _wait_for_step(sess, global_step,
                         min(startup_delay_steps, number_of_steps or sys.maxsize))
        supervisor.start_queue_runners(sess)
        logging.info('Starting Queues.')
        if sync_ops is not None:
          supervisor.start_queue_runners(sess, sync_ops[1])
          sess.run(sync_ops[0])
        total_loss = _loop(supervisor, sess, step_fn, train_op, global_step,
                           train_step_kwargs, total_loss)
        if logdir and supervisor.is_chief:
          # The checkpoint service saves on its own thread (once right away,
          # then every save_model_secs): stop it and let a save in flight
          # finish first, or that save could land after this one and become
          # the latest checkpoint.
          supervisor.request_stop()
          for thread in services:
            thread.join()
          logging.info('Finished training! Saving model to disk.')
          supervisor.saver.save(sess, supervisor.save_path,
                                global_step=supervisor.global_step)
      # Leaving managed_session stops the supervisor: it joins the service and
      # queue threads (all registered with its coordinator) and closes the
      # summary writer. (slim also stopped it here, then again on exit.)
      return total_loss
    except tf.errors.AbortedError:
      # A restarted distributed server aborts the session: start over.
      logging.info('Retrying training!')


def _loop(supervisor, sess, step_fn, train_op, global_step, train_step_kwargs,
          total_loss):
  """Runs steps until the step function or the supervisor says stop."""
  try:
    while not supervisor.should_stop():
      total_loss, should_stop = step_fn(sess, train_op, global_step,
                                        train_step_kwargs)
      if should_stop:
        logging.info('Stopping Training.')
        supervisor.request_stop()
        break
  except tf.errors.OutOfRangeError as e:
    # Raised when an input's epoch limit is reached.
    logging.info('Caught OutOfRangeError. Stopping Training. %s', e)
  return total_loss


def _wait_for_step(sess, global_step, step):
  """Blocks a non-chief worker until the global step reaches `step`."""
  while True:
    if sess.run(global_step) >= step:
      break
    logging.info('global step %d < %d; waiting.', sess.run(global_step), step)
    time.sleep(1.0)
