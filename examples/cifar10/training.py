"""The training loop of the CIFAR-10 pruning example (no flags).

`train` builds input -> masked model -> loss -> SGD with weight EMA, adds a
`Pruning` spec, and runs `MonitoredTrainingSession` with a `PruningHook` (the
conditional mask update after every step), checkpointing to `train_dir`.
cifar10_train.py is the command-line front end.
"""
import datetime
import time

import tensorflow as tf

from examples.cifar10 import cifar10_input
from examples.cifar10 import cluster
from examples.cifar10 import cifar10_pruning as cifar10
from model_pruning.python import pruning
from model_pruning.python import pruning_hook
from model_pruning.python import pruning_spec


class ProgressLogger(tf.compat.v1.train.SessionRunHook):
  """Prints loss, speed, scheduled and achieved sparsity every N steps."""

  def __init__(self, loss, achieved_sparsity, hparams, batch_size,
               log_frequency, history=None):
    self._loss = loss
    self._achieved = achieved_sparsity
    self._hparams = hparams
    self._batch_size = batch_size
    self._log_frequency = log_frequency
    self._history = history

  def after_create_session(self, session, coord):
    del coord  # Unused.
    self._step = int(session.run(tf.compat.v1.train.get_global_step()))
    self._start_time = time.time()
    self._start_step = self._step

  def before_run(self, run_context):
    del run_context  # Unused.
    return tf.compat.v1.train.SessionRunArgs(self._loss)

  def after_run(self, run_context, run_values):
    self._step += 1
    if self._step % self._log_frequency:
      return
    elapsed = time.time() - self._start_time
    steps = self._step - self._start_step
    achieved = float(run_context.session.run(self._achieved))
    scheduled = pruning_spec.scheduled_sparsity(self._step, self._hparams)
    print('%s: step %d, loss = %.2f (%.1f examples/sec; %.3f sec/batch), '
          'sparsity scheduled = %.3f achieved = %.3f'
          % (datetime.datetime.now(), self._step, run_values.results,
             steps * self._batch_size / elapsed, elapsed / steps, scheduled,
             achieved))
    if self._history is not None:
      self._history.append(dict(step=self._step, loss=float(run_values.results),
                                scheduled_sparsity=scheduled,
                                achieved_sparsity=achieved))
    self._start_time, self._start_step = time.time(), self._step


def parse_hparams(text):
  """Pruning hparams from a contrib-syntax string ('' gives the defaults)."""
  return pruning.get_pruning_hparams().parse(text)


def mean_mask_sparsity():
  """Mean over all masks of each mask's zero fraction (a scalar tensor)."""
  masks = pruning.get_masks()
  if not masks:
    return tf.constant(0.0)
  return tf.add_n([tf.nn.zero_fraction(mask) for mask in masks]) / len(masks)


def train(train_dir, data_dir, pruning_hparams='', max_steps=1000000,
          batch_size=cifar10.BATCH_SIZE, log_frequency=10,
          log_device_placement=False,
          num_threads=cifar10_input.DEFAULT_NUM_THREADS, task=None,
          connect_timeout_s=120):
  """Trains with pruning up to global step `max_steps`, checkpointing.

  Args:
    train_dir: checkpoint/event directory (resumed if it holds a checkpoint).
    data_dir: directory holding cifar-10-batches-bin/.
    pruning_hparams: hparams string in the contrib syntax.
    max_steps: global step to stop at.
    batch_size: examples per step.
    log_frequency: steps between progress lines.
    log_device_placement: passed to the session config.
    num_threads: parallel input preprocessing calls.
    task: a `cluster.TaskConfig` for a worker of a ps/worker cluster, or
      None for one process. Variables then live on the parameter servers,
      worker 0 (the chief) restores/saves `train_dir` and alone runs the
      mask update; `max_steps` counts global steps of all workers.
    connect_timeout_s: how long a worker waits for the parameter servers
      (and a non-chief for the chief's initialisation).

  Returns:
    A list of dicts, one per progress line (step, loss, scheduled_sparsity,
    achieved_sparsity).

  Raises:
    ValueError: bad hparams or missing data (message names the fix).
  """
  hparams = parse_hparams(pruning_hparams)
  checkpoint = tf.train.latest_checkpoint(train_dir)
  if checkpoint:
    print('Resuming from %s (train_dir is never deleted; use a fresh '
          'train_dir to start over).' % checkpoint)
  history = []
  is_chief = task is None or task.is_chief
  master, config = '', tf.compat.v1.ConfigProto()
  if task is not None:
    cluster.wait_for_tasks(task.peer_addresses(), connect_timeout_s)
    master = cluster.start_server(task).target
    config = cluster.session_config(task)
  config.log_device_placement = log_device_placement
  with tf.Graph().as_default():
    with tf.compat.v1.device(cluster.device_setter(task) if task else None):
      train_op, loss, pruning_obj = _build(data_dir, batch_size, num_threads,
                                           hparams)
    hooks = [
        tf.compat.v1.train.StopAtStepHook(last_step=max_steps),
        tf.compat.v1.train.NanTensorHook(loss),
        ProgressLogger(loss, mean_mask_sparsity(), hparams, batch_size,
                       log_frequency, history=history),
    ]
    # The chief alone runs the conditional mask update after its steps
    # (the masks live once, on the parameter servers); given the train op,
    # a due update joins the chief's training run.
    chief_hooks = [pruning_hook.PruningHook(pruning_obj=pruning_obj,
                                            train_op=train_op)]
    if not is_chief:
      cluster.wait_for_chief_init(master, config, connect_timeout_s)
    with tf.compat.v1.train.MonitoredTrainingSession(
        master=master, is_chief=is_chief,
        checkpoint_dir=train_dir if is_chief else None, hooks=hooks,
        chief_only_hooks=chief_hooks, config=config,
        log_step_count_steps=None) as mon_sess:
      while not mon_sess.should_stop():
        mon_sess.run(train_op)
  return history


def _build(data_dir, batch_size, num_threads, hparams):
  """Input -> model -> loss -> train op, and the Pruning object."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  with tf.device('/cpu:0'):
    images, labels = cifar10.distorted_inputs(data_dir, batch_size,
                                              num_threads=num_threads)
  logits = cifar10.inference(images)
  loss = cifar10.loss(logits, labels)
  train_op = cifar10.train(loss, global_step, batch_size=batch_size)
  pruning_obj = pruning.Pruning(hparams, global_step=global_step)
  pruning_obj.add_pruning_summaries()
  return train_op, loss, pruning_obj
