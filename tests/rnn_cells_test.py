"""Tests for model_pruning.python.layers.rnn_cells (numpy LSTM oracle)."""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python import pruning
from model_pruning.python.layers import rnn_cells
from tests import reference_layers as ref

_BATCH, _DIM = 8, 10

_CELL_CASES = [
    (rnn_cells.MaskedBasicLSTMCell, dict(forget_bias=0.5)),
    (rnn_cells.MaskedLSTMCell, dict()),
    (rnn_cells.MaskedLSTMCell, dict(use_peepholes=True, cell_clip=0.3)),
    (rnn_cells.MaskedLSTMCell, dict(num_proj=4, proj_clip=0.2)),
    (rnn_cells.MaskedLSTMCell, dict(use_peepholes=True, num_proj=3,
                                    forget_bias=0.0)),
]
_CELL_IDS = ['basic', 'lstm', 'peepholes_clip', 'proj_clip', 'peepholes_proj']


def _randomize(sess, cell, rng):
  """Random 0/1 mask and random bias/peepholes; returns oracle kwargs."""
  mask = (rng.random(cell.mask.shape.as_list()) < 0.6).astype(np.float32)
  cell.mask.load(mask, sess)
  bias = rng.standard_normal(cell.bias.shape.as_list()).astype(np.float32)
  cell.bias.load(bias, sess)
  kwargs = dict(kernel=sess.run(cell.kernel) * mask, bias=bias)
  if isinstance(cell, rnn_cells.MaskedLSTMCell):
    if cell.w_f_diag is not None:
      kwargs['peepholes'] = sess.run([cell.w_f_diag, cell.w_i_diag,
                                      cell.w_o_diag])
    if cell.proj_kernel is not None:
      kwargs['proj_kernel'] = sess.run(cell.proj_kernel)
  return kwargs


def _oracle_kwargs(cell_kwargs, weights):
  weights = dict(weights)
  weights['cell_clip'] = cell_kwargs.get('cell_clip')
  weights['proj_clip'] = cell_kwargs.get('proj_clip')
  weights['forget_bias'] = cell_kwargs.get('forget_bias', 1.0)
  return weights


@pytest.mark.parametrize('cls,kwargs', _CELL_CASES, ids=_CELL_IDS)
def test_one_step_matches_numpy(cls, kwargs):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((_BATCH, _DIM)).astype(np.float32)
  out_dim = kwargs.get('num_proj', 6)
  c = rng.standard_normal((_BATCH, 6)).astype(np.float32)
  h = rng.standard_normal((_BATCH, out_dim)).astype(np.float32)
  with tf.Graph().as_default():
    cell = cls(6, **kwargs)
    output, state = cell(tf.constant(x), rnn_cells.LSTMStateTuple(
        tf.constant(c), tf.constant(h)))
    assert cell.output_size == out_dim
    assert tuple(cell.state_size) == (6, out_dim)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      weights = _randomize(sess, cell, rng)
      got_out, got_state = sess.run([output, state])
  want_c, want_m = ref.lstm_step(x, c, h, **_oracle_kwargs(kwargs, weights))
  assert isinstance(got_state, rnn_cells.LSTMStateTuple)
  np.testing.assert_allclose(got_out, want_m, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_state.c, want_c, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_state.h, want_m, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cls,kwargs', [_CELL_CASES[0], _CELL_CASES[4]],
                         ids=['basic', 'peepholes_proj'])
def test_dynamic_rnn_five_steps_matches_numpy(cls, kwargs):
  rng = np.random.default_rng(1)
  xs = rng.standard_normal((3, 5, 4)).astype(np.float32)
  with tf.Graph().as_default():
    cell = cls(6, **kwargs)
    inputs = tf.compat.v1.placeholder(tf.float32, [None, 5, 4])
    outputs, state = tf.compat.v1.nn.dynamic_rnn(cell, inputs,
                                                 dtype=tf.float32)
    assert len(tf.compat.v1.get_collection(graph_keys.MASK_COLLECTION)) == 1
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      weights = _randomize(sess, cell, rng)
      got_out, got_state = sess.run([outputs, state], {inputs: xs})
  out_dim = cell.output_size
  want_out, want_c, want_h = ref.lstm_sequence(
      xs, np.zeros((3, 6)), np.zeros((3, out_dim)),
      _oracle_kwargs(kwargs, weights))
  np.testing.assert_allclose(got_out, want_out, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_state.c, want_c, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_state.h, want_h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cls', [rnn_cells.MaskedBasicLSTMCell,
                                 rnn_cells.MaskedLSTMCell],
                         ids=['basic', 'lstm'])
@pytest.mark.parametrize('prune_option', [None, 'weight',
                                          'first_order_gradient',
                                          'second_order_gradient'])
def test_one_call_registers_one_weight_of_kernel_shape(cls, prune_option):
  """docs/upstream.md: batch 8, dim 10 -> one (20, 40) entry per collection."""
  rng = np.random.default_rng(2)
  with tf.Graph().as_default():
    inputs, c, h = (tf.Variable(rng.standard_normal((_BATCH, _DIM)),
                                dtype=tf.float32) for _ in range(3))
    cls(_DIM, prune_option=prune_option)(inputs, (c, h))
    names = [graph_keys.MASK_COLLECTION, graph_keys.MASKED_WEIGHT_COLLECTION,
             graph_keys.THRESHOLD_COLLECTION, graph_keys.WEIGHT_COLLECTION]
    gradient_names = [graph_keys.WEIGHT_GRADIENT_COLLECTION,
                      graph_keys.OLD_WEIGHT_COLLECTION,
                      graph_keys.OLD_OLD_WEIGHT_COLLECTION]
    collections = {n: tf.compat.v1.get_collection(n)
                   for n in names + gradient_names}
  expected_gradient_entries = 0 if prune_option == 'weight' else 1
  for name in names:
    assert len(collections[name]) == 1, name
  for name in gradient_names:
    assert len(collections[name]) == expected_gradient_entries, name
  for name in names[:2] + names[3:] + gradient_names:
    for entry in collections[name]:
      assert entry.shape.as_list() == [20, 40], name
  assert collections[graph_keys.THRESHOLD_COLLECTION][0].shape.rank == 0


def test_projection_mask_has_kernel_shape():
  """Fix Q11: with num_proj != num_units the mask follows the kernel."""
  with tf.Graph().as_default():
    cell = rnn_cells.MaskedLSTMCell(10, num_proj=4)
    output, _ = cell(tf.zeros([2, 7]), cell.zero_state(2, tf.float32))
    assert cell.kernel.shape.as_list() == [11, 40]
    assert cell.mask.shape.as_list() == [11, 40]
    assert cell.proj_kernel.shape.as_list() == [10, 4]
    assert output.shape.as_list() == [2, 4]
    masked = tf.compat.v1.get_collection(graph_keys.MASKED_WEIGHT_COLLECTION)
    assert [t.op.name for t in masked] == [
        'masked_lstm_cell/weights/masked_weight']


def test_static_rnn_multi_cell_names_and_one_mask_per_cell():
  with tf.Graph().as_default():
    cell = rnn_cells.MultiRNNCell([rnn_cells.MaskedBasicLSTMCell(6),
                                   rnn_cells.MaskedBasicLSTMCell(6)])
    inputs = [tf.zeros([3, 4]) for _ in range(5)]
    tf.compat.v1.nn.static_rnn(cell, inputs, dtype=tf.float32)
    names = [v.op.name for v in tf.compat.v1.global_variables()]
    masks = tf.compat.v1.get_collection(graph_keys.MASK_COLLECTION)
  prefix = 'rnn/multi_rnn_cell/cell_{}/masked_basic_lstm_cell/'
  assert names == [prefix.format(k) + n for k in (0, 1)
                   for n in ('kernel', 'bias', 'mask', 'threshold',
                             'old_weight', 'old_old_weight', 'gradient')]
  assert [m.op.name for m in masks] == [prefix.format(0) + 'mask',
                                        prefix.format(1) + 'mask']


def test_multi_cell_dynamic_rnn_matches_numpy():
  rng = np.random.default_rng(3)
  xs = rng.standard_normal((2, 5, 3)).astype(np.float32)
  with tf.Graph().as_default():
    cells = [rnn_cells.MaskedLSTMCell(4, use_peepholes=True),
             rnn_cells.MaskedBasicLSTMCell(5)]
    outputs, _ = tf.compat.v1.nn.dynamic_rnn(
        rnn_cells.MultiRNNCell(cells), tf.constant(xs), dtype=tf.float32)
    assert len(tf.compat.v1.get_collection(graph_keys.MASK_COLLECTION)) == 2
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      weights = [_randomize(sess, cell, rng) for cell in cells]
      got = sess.run(outputs)
  first, _, _ = ref.lstm_sequence(xs, np.zeros((2, 4)), np.zeros((2, 4)),
                                  weights[0])
  want, _, _ = ref.lstm_sequence(first, np.zeros((2, 5)), np.zeros((2, 5)),
                                 weights[1])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_concatenated_state_matches_tuple_state():
  rng = np.random.default_rng(4)
  x = rng.standard_normal((2, 3)).astype(np.float32)
  state = rng.standard_normal((2, 9)).astype(np.float32)
  with tf.Graph().as_default():
    cell = rnn_cells.MaskedLSTMCell(5, num_proj=4, state_is_tuple=False)
    assert cell.state_size == 9
    output, new_state = cell(tf.constant(x), tf.constant(state))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      weights = _randomize(sess, cell, rng)
      got_out, got_state = sess.run([output, new_state])
  want_c, want_m = ref.lstm_step(x, state[:, :5], state[:, 5:], **weights)
  np.testing.assert_allclose(got_out, want_m, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_state, np.concatenate([want_c, want_m], 1),
                             rtol=1e-5, atol=1e-5)


def test_zero_and_initial_state_shapes():
  with tf.Graph().as_default():
    cell = rnn_cells.MultiRNNCell([rnn_cells.MaskedLSTMCell(4, num_proj=2),
                                   rnn_cells.MaskedBasicLSTMCell(3)])
    zero = cell.zero_state(5, tf.float64)
    initial = cell.get_initial_state(
        inputs=tf.compat.v1.placeholder(tf.float32, [None, 7]))
    assert [[s.shape.as_list() for s in pair] for pair in zero] == [
        [[5, 4], [5, 2]], [[5, 3], [5, 3]]]
    assert zero[0].dtype == tf.float64
    assert [[s.shape.as_list() for s in pair] for pair in initial] == [
        [[None, 4], [None, 2]], [[None, 3], [None, 3]]]
    assert cell.output_size == 3
    with pytest.raises(ValueError, match='batch_size'):
      cell.get_initial_state()


def test_state_tuple_dtype():
  with tf.Graph().as_default():
    state = rnn_cells.LSTMStateTuple(tf.zeros([1, 2]), tf.zeros([1, 2]))
    assert state.dtype == tf.float32 and state.c is state[0]
    with pytest.raises(TypeError, match='Inconsistent'):
      _ = rnn_cells.LSTMStateTuple(tf.zeros([1]),
                                   tf.zeros([1], tf.float64)).dtype


def test_float64_cell_and_shards_accepted():
  rng = np.random.default_rng(5)
  x = rng.standard_normal((2, 3))
  with tf.Graph().as_default():
    cell = rnn_cells.MaskedLSTMCell(4, num_unit_shards=2, num_proj_shards=2)
    output, _ = cell(tf.constant(x), cell.zero_state(2, tf.float64))
    assert {v.dtype.base_dtype for v in tf.compat.v1.global_variables()} == {
        tf.float64}
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      kernel, bias = sess.run([cell.kernel, cell.bias])
      got = sess.run(output)
  _, want = ref.lstm_step(x, np.zeros((2, 4)), np.zeros((2, 4)), kernel, bias)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='prune_option'):
    rnn_cells.MaskedBasicLSTMCell(4, prune_option='magnitude')
  with pytest.raises(ValueError, match='at least one cell'):
    rnn_cells.MultiRNNCell([])
  with tf.Graph().as_default():
    cell = rnn_cells.MaskedBasicLSTMCell(4)
    with pytest.raises(ValueError, match='inputs.shape'):
      cell(tf.compat.v1.placeholder(tf.float32, [2, None]),
           cell.zero_state(2, tf.float32))


def test_pruning_update_changes_cell_output_as_the_mask_says():
  rng = np.random.default_rng(6)
  xs = rng.standard_normal((3, 5, 6)).astype(np.float32)
  with tf.Graph().as_default():
    cell = rnn_cells.MaskedLSTMCell(8, use_peepholes=True)
    outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(xs),
                                             dtype=tf.float32)
    tf.compat.v1.train.get_or_create_global_step()
    spec = pruning.get_pruning_hparams().parse('threshold_decay=0.0')
    update = pruning.Pruning(spec, sparsity=tf.constant(0.9)).mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      before = sess.run(outputs)
      sess.run(update)
      after = sess.run(outputs)
      kernel, mask, bias, peepholes = sess.run(
          [cell.kernel, cell.mask, cell.bias,
           [cell.w_f_diag, cell.w_i_diag, cell.w_o_diag]])
  assert 0.85 <= 1.0 - mask.mean() <= 0.95
  assert np.abs(kernel[mask == 1]).min() >= np.abs(kernel[mask == 0]).max()
  assert not np.allclose(before, after)
  want, _, _ = ref.lstm_sequence(
      xs, np.zeros((3, 8)), np.zeros((3, 8)),
      dict(kernel=kernel * mask, bias=bias, peepholes=peepholes))
  np.testing.assert_allclose(after, want, rtol=1e-5, atol=1e-5)
