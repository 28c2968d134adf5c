"""The LSTM cells' gradient variables, as google-research's cells create them.

google-research's `MaskedBasicLSTMCell` / `MaskedLSTMCell` always create
`gradient`, `old_weight` and `old_old_weight` next to the mask; its
`rnn_cells_test` counts them and its `strip_pruning_vars_test` prunes an LSTM
model with `prune_option=first_order_gradient`. These tests port those
expectations (our own code), check the contrib footprint of
`prune_option='weight'`, and pin the checkpoint cost docs/layers.md quotes.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python import pruning
from model_pruning.python.layers import rnn_cells

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BATCH, _DIM = 8, 10
_GRADIENT_COLLECTIONS = (graph_keys.WEIGHT_GRADIENT_COLLECTION,
                         graph_keys.OLD_WEIGHT_COLLECTION,
                         graph_keys.OLD_OLD_WEIGHT_COLLECTION)
_CORE_COLLECTIONS = (graph_keys.MASK_COLLECTION,
                     graph_keys.MASKED_WEIGHT_COLLECTION,
                     graph_keys.THRESHOLD_COLLECTION,
                     graph_keys.WEIGHT_COLLECTION)
_CELLS = pytest.mark.parametrize(
    'cls', [rnn_cells.MaskedBasicLSTMCell, rnn_cells.MaskedLSTMCell],
    ids=['basic', 'lstm'])


def _call_once(cls, **kwargs):
  """google-research's setup: variable inputs and state, one cell call."""
  rng = np.random.default_rng(0)
  inputs, c, h = (tf.Variable(rng.standard_normal((_BATCH, _DIM)),
                              dtype=tf.float32) for _ in range(3))
  cell = cls(_DIM, **kwargs)
  cell(inputs, rnn_cells.LSTMStateTuple(c, h))
  return cell


@_CELLS
def test_default_cell_creates_gradient_state_like_google_research(cls):
  with tf.Graph().as_default():
    cell = _call_once(cls)
    collections = {name: tf.compat.v1.get_collection(name)
                   for name in _CORE_COLLECTIONS + _GRADIENT_COLLECTIONS}
    assert len(pruning.get_old_weights()) == 1
    assert len(pruning.get_old_old_weights()) == 1
    assert len(pruning.get_gradients()) == 1
    trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
    global_names = {v.op.name for v in tf.compat.v1.global_variables()}
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      values = sess.run([cell.gradient, cell.old_weight, cell.old_old_weight])
  for name, entries in collections.items():
    assert len(entries) == 1, name
    if name != graph_keys.THRESHOLD_COLLECTION:
      assert entries[0].shape.as_list() == [20, 40], name
  scope = cls._DEFAULT_NAME + '/'
  for var in (cell.gradient, cell.old_weight, cell.old_old_weight):
    assert var.op.name in global_names
    assert var.op.name not in trainable
  assert {n for n in trainable if n.startswith(scope)} == {
      scope + 'kernel', scope + 'bias'}
  assert {cell.gradient.op.name, cell.old_weight.op.name,
          cell.old_old_weight.op.name} == {
              scope + 'gradient', scope + 'old_weight',
              scope + 'old_old_weight'}
  for value in values:
    np.testing.assert_array_equal(value, np.zeros((20, 40), np.float32))


@_CELLS
def test_weight_option_keeps_contrib_footprint(cls):
  with tf.Graph().as_default():
    cell = _call_once(cls, prune_option='weight')
    names = [v.op.name.split('/')[-1]
             for v in tf.compat.v1.global_variables()
             if v.op.name.startswith(cls._DEFAULT_NAME)]
    for name in _GRADIENT_COLLECTIONS:
      assert not tf.compat.v1.get_collection(name), name
  assert names == ['kernel', 'bias', 'mask', 'threshold']
  assert cell.gradient is None and cell.old_weight is None


def _checkpoint_bytes(prune_option, ckpt_dir, units=32, depth=16):
  """Writes one cell's checkpoint; returns {name: bytes} read back from it."""
  with tf.Graph().as_default():
    cell = rnn_cells.MaskedBasicLSTMCell(units, prune_option=prune_option)
    cell(tf.zeros([1, depth]), cell.zero_state(1, tf.float32))
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      path = saver.save(sess, os.path.join(ckpt_dir, 'model'),
                        write_meta_graph=False)
  return path, {name: 4 * int(np.prod(shape))
                for name, shape in tf.train.list_variables(path)}


def test_gradient_state_costs_three_kernels_in_the_checkpoint(tmp_path):
  """Default cell = contrib cell + 3 x kernel bytes (kernel [16+32, 128])."""
  _, contrib = _checkpoint_bytes('weight', str(tmp_path / 'contrib'))
  _, default = _checkpoint_bytes(None, str(tmp_path / 'default'))
  kernel_bytes = 4 * (16 + 32) * 4 * 32
  prefix = 'masked_basic_lstm_cell/'
  assert sorted(contrib) == [prefix + n for n in
                             ('bias', 'kernel', 'mask', 'threshold')]
  assert sorted(set(default) - set(contrib)) == [
      prefix + n for n in ('gradient', 'old_old_weight', 'old_weight')]
  assert sum(default.values()) - sum(contrib.values()) == 3 * kernel_bytes


def test_contrib_checkpoint_restores_only_into_weight_cells(tmp_path):
  """A checkpoint without gradient state needs prune_option='weight'."""
  path, _ = _checkpoint_bytes('weight', str(tmp_path))
  for prune_option, restores in (('weight', True), (None, False)):
    with tf.Graph().as_default():
      cell = rnn_cells.MaskedBasicLSTMCell(32, prune_option=prune_option)
      cell(tf.zeros([1, 16]), cell.zero_state(1, tf.float32))
      saver = tf.compat.v1.train.Saver()
      with tf.compat.v1.Session() as sess:
        if restores:
          saver.restore(sess, path)
        else:
          with pytest.raises(tf.errors.NotFoundError, match='gradient not found in checkpoint'):
            saver.restore(sess, path)


def test_first_order_gradient_pruning_updates_lstm_masks():
  """Two stacked default cells, trained 15 steps, pruned by |W| * gradient.

  Oracle: after the last update every kept weight's saliency |W| * g is at
  least every pruned one's, and half the weights are pruned. (`sort`: the
  histogram's 2048 bins collapse to threshold 0 once a few weights' g
  dominates.) Also covers the read of `gradient` after its update under
  static_rnn's caching device.
  """
  rng = np.random.default_rng(1)
  hparams = pruning.get_pruning_hparams().parse(
      'prune_option=first_order_gradient,gradient_decay_rate=0.5,'
      'threshold_decay=0.0,pruning_frequency=1,begin_pruning_step=1,'
      'end_pruning_step=100,threshold_method=sort')
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    cells = [rnn_cells.MaskedBasicLSTMCell(_DIM, forget_bias=0.0)
             for _ in range(2)]
    stacked = rnn_cells.MultiRNNCell(cells)
    inputs = tf.constant(rng.standard_normal((_BATCH, _DIM)), tf.float32)
    outputs, _ = tf.compat.v1.nn.static_rnn(
        stacked, [inputs], initial_state=stacked.zero_state(_BATCH,
                                                            tf.float32))
    target = tf.constant(rng.standard_normal((_BATCH, _DIM)), tf.float32)
    loss = tf.reduce_mean(tf.square(outputs[0] - target))
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.5).minimize(
        loss, global_step=global_step)
    p = pruning.Pruning(hparams, sparsity=tf.constant(0.5),
                        global_step=global_step)
    with tf.control_dependencies([train_op]):
      step_op = p.conditional_mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for _ in range(15):
        sess.run(step_op)
      state = sess.run([(c.kernel, c.gradient, c.mask) for c in cells])
  for kernel, gradient, mask in state:
    assert np.count_nonzero(gradient) > 0
    saliency = np.abs(kernel) * gradient
    assert saliency[mask == 1].min() >= saliency[mask == 0].max()
    assert abs(np.mean(mask == 0) - 0.5) < 0.02


def test_google_research_lstm_cases_under_legacy_keras():
  """google-research's LSTM test cases with TF's own rnn_cell classes.

  Under TF_USE_LEGACY_KERAS=1 `tf.compat.v1.nn.rnn_cell` works, so the cells
  are fed TF's `LSTMStateTuple` and stacked in TF's `MultiRNNCell`, as
  google-research's rnn_cells_test and strip_pruning_vars_test do.
  """
  code = textwrap.dedent("""
      import re
      import numpy as np
      import tensorflow.compat.v1 as tf
      from model_pruning.python import pruning, strip_pruning_vars_lib
      from model_pruning.python.layers import rnn_cells
      tf.disable_eager_execution()
      with tf.Graph().as_default():
        x, c, h = (tf.Variable(tf.random_normal([8, 10])) for _ in range(3))
        rnn_cells.MaskedLSTMCell(10)(x, tf.nn.rnn_cell.LSTMStateTuple(c, h))
        print('COUNTS', [len(f()) for f in (
            pruning.get_masks, pruning.get_old_weights,
            pruning.get_old_old_weights, pruning.get_gradients)])
      with tf.Graph().as_default():
        sparsity = tf.Variable(0.5, name='sparsity')
        step = tf.train.get_or_create_global_step()
        inc = tf.assign_add(step, 1)
        cell = tf.nn.rnn_cell.MultiRNNCell(
            [rnn_cells.MaskedBasicLSTMCell(10, forget_bias=0.0,
                                           state_is_tuple=True, reuse=False)
             for _ in range(2)], state_is_tuple=True)
        out = tf.nn.static_rnn(cell, [tf.Variable(tf.random_normal([8, 10]))],
                               initial_state=cell.zero_state(8, tf.float32))
        out = out[0][0]
        hp = pruning.get_pruning_hparams().parse(
            'pruning_frequency=1,begin_pruning_step=1,end_pruning_step=10,'
            'nbins=2048,threshold_decay=0.0,prune_option=first_order_gradient')
        update = pruning.Pruning(hp, sparsity=sparsity).conditional_mask_update_op()
        with tf.Session() as sess:
          sess.run(tf.global_variables_initializer())
          for _ in range(20):
            sess.run(update)
            sess.run(inc)
          before = sess.run(out)
          frozen = tf.graph_util.convert_variables_to_constants(
              sess, sess.graph.as_graph_def(), [out.op.name])
      stripped = strip_pruning_vars_lib.strip_pruning_vars_fn(
          frozen, [out.op.name])
      pattern = (r'^.*(mask$)|(threshold$)|(old_weight$)|(old_old_weight$)'
                 r'|(gradient$)')
      count = lambda g: sum(bool(re.match(pattern, n.name)) for n in g.node)
      with tf.Graph().as_default():
        tf.import_graph_def(stripped, name='final')
        with tf.Session() as sess:
          after = sess.run('final/' + out.name)
      print('NODES', count(frozen), count(stripped))
      print('EQUAL', bool(np.array_equal(before, after)))
      """)
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', PYTHONPATH=_REPO)
  result = subprocess.run([sys.executable, '-c', code], cwd=_REPO, env=env,
                          capture_output=True, text=True, timeout=600,
                          check=False)
  assert result.returncode == 0, result.stdout + result.stderr[-4000:]
  lines = result.stdout.splitlines()
  assert 'COUNTS [1, 1, 1, 1]' in lines, result.stdout
  assert 'NODES 2 0' in lines, result.stdout
  assert 'EQUAL True' in lines, result.stdout
