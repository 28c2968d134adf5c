"""Tests for strip_pruning_vars_lib and strip_report (docs/upstream.md, 4.5, Q25, Q26).

The model tests follow upstream's strip test: build a masked model, train and
prune it for 20 steps, save, freeze with `graph_def_from_checkpoint`, strip,
and check that no mask/threshold node is left and the outputs are exactly
equal.
"""
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import graph_keys
from model_pruning.python import pruning
from model_pruning.python import shortfall
from model_pruning.python import stored_specs
from model_pruning.python import strip_checkpoint
from model_pruning.python import strip_pruning_vars_lib as lib
from model_pruning.python import strip_report
from model_pruning.python.layers import layers
from model_pruning.python.layers import rnn_cells
from tests import reference as ref

# docs/upstream.md's hparams: one update per step from step 1 to 10.
_HPARAMS = ('pruning_frequency=1,begin_pruning_step=1,end_pruning_step=10,'
            'nbins=2048,threshold_decay=0.0')
_STEPS = 20
_SPARSITY = 0.5


def _session(graph=None):
  """A session without Grappler: it may rewrite `a*3 + a*4` to `a*7` in one
  graph and not the other (it has deadlines), which changes the last bit."""
  config = tf.compat.v1.ConfigProto()
  config.graph_options.rewrite_options.disable_meta_optimizer = True
  return tf.compat.v1.Session(graph=graph, config=config)


def _conv_apply_mask():
  """Five 3x3 convs on masked kernels (apply_mask + tf.nn), 4 -> 39 chans."""
  net, depth = tf.ones([8, 7, 9, 4]), 4
  for ix in range(5):
    with tf.compat.v1.variable_scope('conv_model/layer%d' % ix):
      out = 4 + 7 * (ix + 1)
      kernel = tf.compat.v1.get_variable('weights', [3, 3, depth, out])
      net = tf.nn.conv2d(net, pruning.apply_mask(kernel, scope=''),
                         strides=1, padding='SAME')
      depth = out
  return net, 5


def _fc_apply_mask():
  """Three relu layers on masked kernels (apply_mask + tf.nn)."""
  net, width = tf.ones([8, 4]), 4
  for ix in range(3):
    with tf.compat.v1.variable_scope('fc_model/layer%d' % ix):
      out = 4 + 7 * (ix + 1)
      kernel = tf.compat.v1.get_variable('weights', [width, out])
      bias = tf.compat.v1.get_variable(
          'biases', [out], initializer=tf.compat.v1.constant_initializer(0.1))
      net = tf.compat.v1.nn.relu_layer(
          net, pruning.apply_mask(kernel, scope=''), bias)
      width = out
  return net, 3


def _conv_layers():
  """Upstream's contrib model: five masked_conv2d layers."""
  net = tf.ones([8, 7, 9, 4])
  with tf.compat.v1.variable_scope('conv_model'):
    for ix in range(5):
      net = layers.masked_conv2d(net, 4 + 7 * (ix + 1), 3)
  return net, 5


def _fc_layers():
  """Upstream's contrib model: three masked_fully_connected layers."""
  net = tf.ones([8, 4])
  with tf.compat.v1.variable_scope('fc_model'):
    for ix in range(3):
      net = layers.masked_fully_connected(net, 4 + 7 * (ix + 1))
  return net, 3


def _lstm():
  """Two MaskedBasicLSTMCells in a MultiRNNCell, one static_rnn step."""
  cells = [rnn_cells.MaskedBasicLSTMCell(10, forget_bias=0.0,
                                         state_is_tuple=True, reuse=False)
           for _ in range(2)]
  stacked = rnn_cells.MultiRNNCell(cells)
  inputs = tf.compat.v1.get_variable('inputs', [8, 10])
  outputs, _ = tf.compat.v1.nn.static_rnn(
      stacked, [inputs], initial_state=stacked.zero_state(8, tf.float32))
  return outputs[0], 2


def _count_nodes(graph_def, suffix):
  return sum(1 for node in graph_def.node if node.name.endswith(suffix))


def _run_graph_def(graph_def, tensor_name):
  with tf.Graph().as_default() as graph:
    tf.compat.v1.import_graph_def(graph_def, name='final')
    with _session(graph) as sess:
      return sess.run('final/' + tensor_name)


def _const_values(graph_def):
  return {node.name: tf.make_ndarray(node.attr['value'].tensor)
          for node in graph_def.node if node.op == 'Const'}


def _train_prune_and_save(model_fn, checkpoint_dir):
  """Builds, trains and prunes for 20 steps, saves; returns run results."""
  global_step = tf.compat.v1.train.get_or_create_global_step()
  net, num_masked = model_fn()
  output = tf.identity(net, name='output')
  train_op = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(
      tf.reduce_mean(tf.square(output)), global_step=global_step)
  sparsity = tf.compat.v1.Variable(_SPARSITY, name='sparsity')
  spec = pruning.get_pruning_hparams().parse(_HPARAMS)
  mask_update_op = pruning.Pruning(
      spec, global_step=global_step,
      sparsity=sparsity).conditional_mask_update_op()
  with _session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(_STEPS):
      sess.run(train_op)
      sess.run(mask_update_op)
    masks = sess.run(tf.compat.v1.get_collection(graph_keys.MASK_COLLECTION))
    kernels = sess.run(
        tf.compat.v1.get_collection(graph_keys.WEIGHT_COLLECTION))
    reference = sess.run(output)
    tf.compat.v1.train.Saver().save(sess, str(checkpoint_dir / 'model.ckpt'),
                                    global_step=global_step)
  names = [t.op.name for t in
           tf.compat.v1.get_collection(graph_keys.MASKED_WEIGHT_COLLECTION)]
  return num_masked, reference, dict(zip(names, zip(masks, kernels)))


_MODELS = [
    pytest.param(_conv_apply_mask, id='conv_apply_mask'),
    pytest.param(_fc_apply_mask, id='fc_apply_mask'),
    pytest.param(_conv_layers, id='conv_masked_conv2d'),
    pytest.param(_fc_layers, id='fc_masked_fully_connected'),
    pytest.param(_lstm, id='lstm_masked_basic_lstm_cells'),
]


@pytest.mark.parametrize('model_fn', _MODELS)
def test_pruned_model_strips_to_identical_outputs(model_fn, tmp_path):
  with tf.Graph().as_default() as graph:
    num_masked, reference, pruned = _train_prune_and_save(model_fn, tmp_path)
    ops_before = len(graph.get_operations())
    frozen = lib.graph_def_from_checkpoint(str(tmp_path), ['output'])
    # Q26: the caller's default graph is left alone.
    assert len(graph.get_operations()) == ops_before
  stripped = lib.strip_pruning_vars_fn(frozen, ['output'])

  assert _count_nodes(frozen, 'mask') == num_masked
  assert _count_nodes(stripped, 'mask') == 0
  assert _count_nodes(stripped, 'threshold') == 0
  # The mask update's cond_v2 branches are library functions nothing calls.
  assert frozen.library.function and not stripped.library.function
  np.testing.assert_array_equal(_run_graph_def(stripped, 'output:0'),
                                reference)
  folded = _const_values(stripped)
  assert len(pruned) == num_masked
  for name, (mask, kernel) in pruned.items():
    assert ref.zero_fraction(mask) >= 0.4, name
    np.testing.assert_array_equal(folded[name] == 0, mask * kernel == 0)
    np.testing.assert_array_equal(folded[name], mask * kernel)


def _masked_variable(name, shape, mask_value):
  """A weight, its mask set to `mask_value`, and their product (manual)."""
  with tf.compat.v1.variable_scope(name):
    weight = tf.compat.v1.get_variable(
        'weights', shape,
        initializer=tf.compat.v1.random_uniform_initializer(1.0, 2.0))
    mask = tf.compat.v1.get_variable(
        'mask', initializer=tf.constant(mask_value, tf.float32),
        trainable=False)
    return tf.multiply(mask, weight, name=graph_keys.MASKED_WEIGHT_NAME)


def _save(checkpoint_dir, global_step_value=0):
  with _session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    step = tf.compat.v1.train.get_global_step()
    if step is not None:
      sess.run(step.assign(global_step_value))
    reference = sess.run('output:0')
    prefix = tf.compat.v1.train.Saver().save(
        sess, str(checkpoint_dir / 'model.ckpt'), global_step=step)
  return reference, prefix


def test_cond_graph_keeps_function_library(tmp_path):
  """cond_v2 puts its branches in the GraphDef's library (Q25).

  The branches the output needs are kept; those of a cond off the output
  path are dropped with it.
  """
  with tf.Graph().as_default():
    x = tf.ones([2, 4])
    masked = _masked_variable('fc', [4, 3], [[1.0, 0.0, 1.0]] * 4)
    tf.identity(tf.compat.v1.cond(tf.reduce_sum(x) > 0.0,
                                  lambda: tf.matmul(x, masked),
                                  lambda: tf.zeros([2, 3])), name='output')
    tf.compat.v1.cond(tf.reduce_sum(x) > 1.0, lambda: x * 2.0,
                      lambda: x * 3.0, name='unused')
    reference, _ = _save(tmp_path)
  frozen = lib.graph_def_from_checkpoint(str(tmp_path), ['output'])
  stripped = lib.strip_pruning_vars_fn(frozen, ['output'])

  assert len(frozen.library.function) == 4
  assert len(stripped.library.function) == 2
  assert stripped.versions == frozen.versions
  assert _count_nodes(stripped, 'mask') == 0
  np.testing.assert_array_equal(_run_graph_def(stripped, 'output:0'),
                                reference)
  np.testing.assert_array_equal(reference[:, 1], 0.0)


def test_only_mul_nodes_named_masked_weight_are_folded(tmp_path):
  with tf.Graph().as_default():
    first = _masked_variable('a', [3], [1.0, 0.0, 1.0])
    with tf.compat.v1.name_scope('a/'):
      second = tf.multiply(first, 2.0, name=graph_keys.MASKED_WEIGHT_NAME)
    assert second.op.name == 'a/weights/masked_weight_1'
    decoy_identity = tf.identity(first * 3.0, name='b/masked_weight')
    decoy_mul = tf.multiply(first, 4.0, name='c/masked_weight_norm')
    tf.identity(second + decoy_identity + decoy_mul, name='output')
    reference, _ = _save(tmp_path)
  frozen = lib.graph_def_from_checkpoint(str(tmp_path), 'output')
  stripped = lib.strip_pruning_vars_fn(frozen, ['output'])

  ops = {node.name: node.op for node in stripped.node}
  assert ops['a/weights/masked_weight_1'] == 'Const'
  assert ops['b/masked_weight'] == 'Identity'
  assert ops['c/masked_weight_norm'] == 'Mul'
  np.testing.assert_array_equal(_run_graph_def(stripped, 'output:0'),
                                reference)


def _single_layer_checkpoint(checkpoint_dir, hparams_json=None, step=0):
  """A one-weight model; optionally stores hparams JSON like `Pruning`."""
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    masked = _masked_variable('fc', [4, 3], [[1.0, 0.0, 1.0]] * 4)
    tf.identity(tf.matmul(tf.ones([2, 4]), masked), name='output')
    if hparams_json is not None:
      node = tf.constant(hparams_json, name='model_pruning/hparams_json')
      tf.compat.v1.add_to_collection(graph_keys.HPARAMS_COLLECTION, node)
    return _save(checkpoint_dir, global_step_value=step)


def test_directory_and_checkpoint_path_give_the_same_graph(tmp_path):
  _, prefix = _single_layer_checkpoint(tmp_path)
  from_dir = lib.graph_def_from_checkpoint(str(tmp_path), ['output'])
  from_path = lib.graph_def_from_checkpoint(prefix, ['output:0'])
  assert from_dir == from_path


@pytest.mark.parametrize('step,expected_target', [
    pytest.param(0, ref.scheduled_sparsity(0, target=0.8),
                 id='start'),
    pytest.param(30, ref.scheduled_sparsity(30, target=0.8),
                 id='mid'),
    pytest.param(500, 0.8, id='done'),
])
def test_read_pruning_state_recovers_step_and_schedule(
    tmp_path, step, expected_target):
  _single_layer_checkpoint(tmp_path, json.dumps({'target_sparsity': 0.8}),
                           step=step)
  state = lib.read_pruning_state(str(tmp_path))

  assert state.global_step == step
  assert state.hparams == [{'target_sparsity': 0.8}]
  target = stored_specs.target_sparsity(state.global_step, state.hparams,
                                        'fc/weights')
  assert target == pytest.approx(expected_target, abs=1e-12)


def test_read_pruning_state_without_hparams(tmp_path):
  _single_layer_checkpoint(tmp_path, step=7)
  assert lib.read_pruning_state(str(tmp_path)) == lib.PruningState(
      7, [], {}, {})


@pytest.mark.parametrize('output_node_names,message', [
    pytest.param(['outptu'], r"'outptu' is not in the graph; closest: output",
                 id='typo'),
    pytest.param([], 'at least 1 output node', id='empty'),
])
def test_bad_output_nodes_raise(tmp_path, output_node_names, message):
  _single_layer_checkpoint(tmp_path)
  with pytest.raises(ValueError, match=message):
    lib.graph_def_from_checkpoint(str(tmp_path), output_node_names)


@pytest.mark.parametrize('relative,message', [
    pytest.param('', 'Could not find a checkpoint at', id='empty_dir'),
    pytest.param('model.ckpt-9', 'Could not find a checkpoint at',
                 id='missing_prefix'),
])
def test_missing_checkpoint_raises(tmp_path, relative, message):
  with pytest.raises(ValueError, match=message):
    lib.graph_def_from_checkpoint(str(tmp_path / relative), ['output'])


def test_corrupt_meta_graph_raises(tmp_path):
  _, prefix = _single_layer_checkpoint(tmp_path)
  with open(prefix + '.meta', 'wb') as f:
    f.write(b'\x00not a meta graph\xff' * 4)
  with pytest.raises(ValueError, match='meta graph'):
    lib.graph_def_from_checkpoint(prefix, ['output'])


# ---- strip_report: pure helpers -------------------------------------------

_Folded = lib.FoldedWeight


@pytest.mark.parametrize('step', [0, 10, 50, 99, 100, 1000], ids=str)
def test_target_sparsity_defaults_match_oracle(step):
  target = stored_specs.target_sparsity(step, [{}], 'fc/weights')
  assert target == pytest.approx(ref.scheduled_sparsity(step),
                                 abs=1e-12)


def test_target_sparsity_uses_weight_map_and_do_not_prune():
  hparams = [{'weight_sparsity_map': ['conv1/weights:0.9'],
              'do_not_prune': ['fc_final'],
              'sparsity_function_begin_step': 10,
              'sparsity_function_end_step': 110}]
  step = 60
  mapped = ref.scheduled_sparsity(step, begin_step=10, end_step=110,
                                  target=0.9)
  default = ref.scheduled_sparsity(step, begin_step=10, end_step=110)
  assert stored_specs.target_sparsity(step, hparams, 'conv1/weights') == (
      pytest.approx(mapped))
  assert stored_specs.target_sparsity(step, hparams, 'conv2/weights') == (
      pytest.approx(default))
  assert stored_specs.target_sparsity(step, hparams, 'fc_final/weights') == 0


@pytest.mark.parametrize('step,hparams', [
    pytest.param(None, [{}], id='no_step'),
    pytest.param(50, [], id='no_hparams'),
    pytest.param(50, [{'target_sparsity': 0.5}, {'target_sparsity': 0.7}],
                 id='specs_disagree'),
])
def test_target_sparsity_unknown(step, hparams):
  assert stored_specs.target_sparsity(step, hparams, 'w') is None


def _report(mask, step=200, hparams=({},)):
  weight = np.arange(1, 1 + mask.size, dtype=mask.dtype).reshape(mask.shape)
  folded = _Folded('l/weights/masked_weight', 'l/weights', weight * mask, mask)
  return strip_report.weight_reports([folded], step, list(hparams))


def test_weight_report_row():
  mask = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
  (report,) = _report(mask)
  assert report.shape == (2, 2)
  assert report.zero_fraction == ref.zero_fraction(mask)
  assert report.target_sparsity == pytest.approx(0.5)
  assert report.mask_all_ones is False
  assert report.dense_bytes == mask.nbytes
  table = strip_report.format_table([report], step=200)
  assert 'l/weights/masked_weight  2x2    0.7500  0.5000' in table
  assert 'global step 200' in table


@pytest.mark.parametrize('mask,step,hparams,warns', [
    pytest.param(np.ones([3, 3]), 200, [{}], True, id='never_pruned'),
    pytest.param(np.ones([3, 3]), 0, [{}], False, id='target_zero_yet'),
    pytest.param(np.ones([3, 3]), 200, [], False, id='no_schedule'),
    pytest.param(np.eye(3), 200, [{}], False, id='pruned'),
])
def test_unpruned_warning(mask, step, hparams, warns):
  warning = strip_report.unpruned_warning(_report(mask, step, hparams), step)
  assert (warning is not None) == warns
  if warns:
    assert 'global step 200' in warning and 'update op' in warning


def test_size_summary_gzip_shrinks_zeros():
  data = np.zeros(4096, np.float32).tobytes() + b'header'
  mask = np.zeros([8, 8], np.float32)
  sizes = strip_report.size_summary(data, _report(mask))
  assert sizes.raw == len(data)
  assert 0 < sizes.gzip < len(data) // 10
  assert sizes.dense_weights == mask.nbytes
  assert '%d bytes raw' % len(data) in strip_report.format_sizes(sizes)


# --- below target: the threshold method's resolution -------------------------

# At step 200 these schedules ask for their target_sparsity exactly.
_AT_TARGET = dict(target_sparsity=0.5, sparsity_function_end_step=100)


def _folded(weight, mask, name='l/weights'):
  return _Folded(name + '/masked_weight', name, weight * mask, mask)


def _cells_short(mask, sparsity):
  """How many cells a mask keeps beyond the keep count `sparsity` asks."""
  return int(np.count_nonzero(mask)) - ref.keep_count(mask.size, sparsity)


def test_histogram_masks_of_tiny_weights_are_on_target():
  """Variant H keeps its k-th's whole bin; that is not a missed target."""
  hparams = [dict(_AT_TARGET, threshold_method='histogram')]
  rng = np.random.default_rng(7)
  shortfalls = []
  for _ in range(300):
    weight = rng.normal(size=[4, 11]).astype(np.float32)
    _, mask = ref.magnitude_mask(weight, 0.5, 'histogram')
    shortfalls.append(_cells_short(mask, 0.5))
    reports = strip_report.weight_reports([_folded(weight, mask)], 200,
                                          hparams)
    assert strip_report.below_target(reports) == (), shortfalls[-1]
  # Some draws keep 2 of 44 too many: past 2 points plus one cell's share,
  # the whole tolerance before the method's bin was allowed for.
  assert max(shortfalls) >= 2


@pytest.mark.parametrize('pooling', ['AVG', 'MAX'])
def test_histogram_block_masks_are_on_target(pooling):
  hparams = [dict(_AT_TARGET, threshold_method='histogram', block_height=2,
                  block_width=3, block_pooling_function=pooling)]
  rng = np.random.default_rng(11)
  for _ in range(100):
    weight = rng.normal(size=[5, 7]).astype(np.float32)
    mask = ref.block_mask(weight, 0.5, 'histogram', [2, 3], pooling)
    reports = strip_report.weight_reports([_folded(weight, mask)], 200,
                                          hparams)
    assert strip_report.below_target(reports) == ()


@pytest.mark.parametrize('method,sparsity,flagged', [
    pytest.param('sort', 0.5, False, id='sort_on_target'),
    pytest.param('sort', 0.45, True, id='sort_5_points_short'),
    pytest.param('histogram', 0.5, False, id='histogram_on_target'),
    pytest.param('histogram', 0.45, True, id='histogram_5_points_short'),
])
def test_large_weights_short_of_target_are_flagged(method, sparsity, flagged):
  """A histogram bin holds about a point of 65,536 normal weights near their
  median: a real miss still shows."""
  weight = np.random.default_rng(3).normal(size=[256, 256]).astype(np.float32)
  _, mask = ref.magnitude_mask(weight, sparsity, method)
  (report,) = strip_report.weight_reports(
      [_folded(weight, mask)], 200, [dict(_AT_TARGET, threshold_method=method)])
  assert report.allowance < 0.015
  assert (strip_report.below_target([report]) != ()) == flagged


def test_shortfall_allowance_counts_the_kept_bin_by_hand():
  # max 1.0, 10 bins: width 0.1; smallest kept 0.42, so kept scores below
  # 0.52 (0.42, 0.45, 0.5) may sit in the threshold's bin; plus one cell.
  value = np.array([0.0, 0.0, 0.42, -0.45, 0.5, 0.55, -0.9, 1.0])
  method = shortfall.PruningMethod('histogram', 10, (1, 1), 'AVG')
  assert shortfall.shortfall_allowance([value], method) == 4 / 8
  sort = method._replace(method='sort')
  assert shortfall.shortfall_allowance([value], sort) == 1 / 8
  assert shortfall.shortfall_allowance([value], None) == 1 / 8


def test_shortfall_allowance_of_blocks_counts_whole_blocks():
  # 3x4 in 2x2 blocks: rows [0:2] and [2:3] (an edge block of 2 cells).
  # AVG scores: [[0, 2], [0.5, 1]] (max 2, 2 bins: width 1); kept scores
  # below 0.5 + 1: the edge block (2 cells) and the 1.0 block (2 cells).
  value = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0.5, 0.5, 1, 1]])
  method = shortfall.PruningMethod('histogram', 2, (2, 2), 'AVG')
  assert shortfall.shortfall_allowance([value], method) == (4 + 2 + 2) / 12


@pytest.mark.parametrize('hparams,expected', [
    pytest.param([{}], ('histogram', 256, (1, 1), 'AVG'), id='defaults'),
    pytest.param([{'block_dims_map': ['l/weights:4x4'], 'nbins': 64}],
                 ('histogram', 64, (4, 4), 'AVG'), id='block_dims_map'),
    pytest.param([{'prune_option': 'first_order_gradient'}],
                 (None, 256, (1, 1), 'AVG'), id='gradient_scores'),
    pytest.param([{'sparsity_m_by_n': '2:4'}], (None, 256, (1, 1), 'AVG'),
                 id='m_by_n'),
    pytest.param([{'threshold_method': 'sort'}, {}], None, id='disagree'),
    pytest.param([], None, id='none_stored'),
])
def test_pruning_method_from_stored_hparams(hparams, expected):
  method = stored_specs.pruning_method(hparams, 'l/weights')
  assert method == (None if expected is None else
                    shortfall.PruningMethod(*expected))


# --- below target: pruning groups --------------------------------------------

_GROUP_HPARAMS = dict(_AT_TARGET, group_pruning=True, threshold_method='sort',
                      group_sparsity_map=['g1:0.5'])


def _group_of_two(scale_b=4.0, sparsity=0.5):
  """Weights a (scale 1) and b (scale `scale_b`) masked by one threshold."""
  rng = np.random.default_rng(5)
  a = rng.uniform(-1, 1, [8, 16]).astype(np.float32)
  b = (rng.uniform(-1, 1, [40]) * scale_b).astype(np.float32)
  masks = ref.joint_masks([np.abs(a), np.abs(b)], sparsity, 'sort')
  return [_folded(a, masks[0], 'a/weights'), _folded(b, masks[1], 'b/weights')]


def test_group_members_are_judged_by_their_group():
  """The joint threshold leaves a sparser, b denser: the group is on target."""
  folded = _group_of_two()
  groups = {'g1': [f.name for f in folded]}
  alone = strip_report.weight_reports(folded, 200, [_GROUP_HPARAMS])
  assert [r.name for r in strip_report.below_target(alone)] == [
      'b/weights/masked_weight']  # what a member-by-member check said

  reports = strip_report.weight_reports(folded, 200, [_GROUP_HPARAMS], groups)
  assert strip_report.below_target(reports) == ()
  zeros = sum(f.value.size - np.count_nonzero(f.value) for f in folded)
  assert [r.group for r in reports] == ['g1', 'g1']
  assert [r.group_zero_fraction for r in reports] == [zeros / (128 + 40)] * 2
  assert [r.target_sparsity for r in reports] == [pytest.approx(0.5)] * 2
  assert reports[0].zero_fraction > 0.5 > reports[1].zero_fraction
  table = strip_report.format_table(reports, step=200)
  assert 'group zeros' in table and 'g1 %.4f' % (zeros / 168) in table


def test_group_short_of_its_target_flags_every_member():
  folded = _group_of_two(sparsity=0.4)
  groups = {'g1': [f.name for f in folded]}
  reports = strip_report.weight_reports(folded, 200, [_GROUP_HPARAMS], groups)
  assert [r.name for r in strip_report.below_target(reports)] == [
      f.name for f in folded]
  (warning, _) = strip_report.below_target_warnings(
      strip_report.below_target(reports))
  assert 'in group g1' in warning and 'points below the 0.5000' in warning


@pytest.mark.parametrize('hparams,members', [
    pytest.param(_GROUP_HPARAMS, ('a/weights', 'b/weights'), id='listed'),
    pytest.param(dict(_GROUP_HPARAMS, group_pruning=False), None,
                 id='group_pruning_off'),
    pytest.param(dict(_GROUP_HPARAMS, group_sparsity_map=['g2:0.5']), None,
                 id='group_not_listed'),
    pytest.param(dict(_GROUP_HPARAMS, do_not_prune=['b/weights']),
                 ('a/weights',), id='do_not_prune_leaves'),
    pytest.param(dict(_GROUP_HPARAMS, m_by_n_map=['b/weights:2:4']),
                 ('a/weights',), id='m_by_n_leaves'),
])
def test_joint_group_members(hparams, members):
  joint = stored_specs.joint_group(200, [hparams], 'g1',
                                   ['a/weights', 'b/weights'])
  assert (joint.members if joint else None) == members
  if joint:
    assert joint.target == pytest.approx(0.5)


def test_group_pruned_checkpoint_strips_without_below_target(tmp_path):
  """A real group-pruned checkpoint: the stored groups reach the report."""
  hparams = ('group_pruning=true,group_sparsity_map=[g1:0.75],'
             'threshold_method=sort,threshold_decay=0.0,'
             'sparsity_function_end_step=100')
  rng = np.random.default_rng(9)
  with tf.Graph().as_default():
    net = tf.ones([2, 16])
    for name, scale in [('a', 1.0), ('b', 5.0)]:
      with tf.compat.v1.variable_scope(name) as scope:
        weight = tf.compat.v1.get_variable('weights', initializer=(
            rng.uniform(-1, 1, [16, 16]) * scale).astype(np.float32))
        net = tf.matmul(net, pruning.apply_mask_with_group(weight, scope,
                                                           group_name='g1'))
    tf.identity(net, name='output')
    step = tf.compat.v1.train.get_or_create_global_step()
    p = pruning.Pruning(pruning.get_pruning_hparams().parse(hparams),
                        global_step=step)
    update = p.mask_update_op()
    with _session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(step.assign(200))
      sess.run(update)
      tf.compat.v1.train.Saver().save(sess, str(tmp_path / 'model.ckpt'),
                                      global_step=step)
  assert lib.read_pruning_state(str(tmp_path)).groups == {
      'g1': ['a/weights/masked_weight', 'b/weights/masked_weight']}
  result = strip_checkpoint.strip_checkpoint(
      str(tmp_path), ['output'], str(tmp_path / 'out.pb'))
  assert result.below_target == ()
  (a, b) = sorted(result.reports)
  assert a.group == b.group == 'g1'
  assert a.zero_fraction > 0.75 > b.zero_fraction
  assert a.group_zero_fraction == pytest.approx(0.75)


def test_shortfall_allowance_of_a_nan_block_is_quiet():
  value = np.array([[np.nan, np.nan, 1.0, 2.0], [np.nan, np.nan, 3.0, 4.0]])
  method = shortfall.PruningMethod('histogram', 4, (2, 2), 'AVG')
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    # The NaN block pools to NaN (not kept); the kept block (2.5) alone is
    # within a bin (0.625) of the smallest kept: one block, plus its cells.
    assert shortfall.shortfall_allowance([value], method) == (4 + 4) / 8


# --- below target: judged at the step the masks should hold ------------------

# Cubic ramp to 0.9 over 100 steps, an update every 10: s(20) = 0.4392 and
# s(29) = 0.5779, 14 points apart.
_RAMP = dict(target_sparsity=0.9, sparsity_function_end_step=100,
             pruning_frequency=10)


def _pruned_to(sparsity, shape=(40, 40)):
  """A weight of distinct magnitudes whose mask zeroes its smallest
  `sparsity` share (rounded to whole cells)."""
  weight = np.arange(1, 1 + np.prod(shape), dtype=np.float32).reshape(shape)
  mask = (weight > np.round(sparsity * weight.size)).astype(np.float32)
  return _folded(weight, mask)


@pytest.mark.parametrize('step,last,target_step,flagged', [
    pytest.param(29, {'model_pruning': 20}, 20, False, id='between_updates'),
    pytest.param(30, {'model_pruning': 20}, 20, False, id='update_due_now'),
    pytest.param(31, {'model_pruning': 20}, 31, True, id='update_skipped'),
    pytest.param(29, None, 29, True, id='last_update_unknown'),
    pytest.param(29, {'other_spec': 20}, 29, True, id='other_spec_name'),
])
def test_targets_are_read_at_the_last_update_unless_one_was_missed(
    step, last, target_step, flagged):
  expected = ref.scheduled_sparsity(target_step, target=0.9)
  (report,) = strip_report.weight_reports(
      [_pruned_to(ref.scheduled_sparsity(20, target=0.9))], step, [_RAMP],
      last_update_steps=last)
  assert report.target_step == target_step
  assert report.target_sparsity == pytest.approx(expected, abs=1e-12)
  assert bool(strip_report.below_target([report])) == flagged
  table = strip_report.format_table([report], step=step)
  assert ('targets as of the last mask update, step 20' in table) == (
      target_step == 20)


# Starts at half sparsity: before this change a dense checkpoint saved before
# the first update was held to s(0) = 0.5.
_FROM_HALF = dict(_RAMP, initial_sparsity=0.5)


@pytest.mark.parametrize('step,last,target_step,target', [
    pytest.param(0, {'model_pruning': 0}, 0, 0.0, id='after_init'),
    pytest.param(5, {'model_pruning': 0}, 0, 0.0, id='first_not_due'),
    pytest.param(10, {'model_pruning': 0}, 0, 0.0, id='first_due_now'),
    pytest.param(15, {'model_pruning': 0}, 15,
                 ref.scheduled_sparsity(15, initial=0.5, target=0.9),
                 id='first_skipped'),
    pytest.param(5, None, 5, ref.scheduled_sparsity(5, initial=0.5,
                                                      target=0.9),
                 id='last_update_unknown'),
])
def test_masks_before_the_first_update_have_target_zero(step, last,
                                                        target_step, target):
  dense = _folded(np.arange(1, 17, dtype=np.float32).reshape(4, 4),
                  np.ones([4, 4], np.float32))
  reports = strip_report.weight_reports([dense], step, [_FROM_HALF],
                                        last_update_steps=last)
  (report,) = reports
  assert report.target_step == target_step
  assert report.target_sparsity == pytest.approx(target, abs=1e-12)
  pending = target == 0.0
  assert bool(strip_report.below_target(reports)) == (not pending)
  assert (strip_report.unpruned_warning(reports, step) is None) == pending
  table = strip_report.format_table(reports, step=step)
  assert ('no mask update yet, so the targets are 0' in table) == (
      pending and step != 0)


def test_a_group_before_its_first_update_has_target_zero():
  spec = dict(_GROUP_HPARAMS, initial_sparsity=0.25, pruning_frequency=10)
  names = ['a/weights', 'b/weights']
  pending = stored_specs.joint_group(5, [spec], 'g1', names,
                                     {'model_pruning': 0})
  assert pending.target == 0.0 and pending.members == tuple(names)
  skipped = stored_specs.joint_group(15, [spec], 'g1', names,
                                     {'model_pruning': 0})
  assert skipped.target == pytest.approx(
      ref.scheduled_sparsity(15, initial=0.25, target=0.5), abs=1e-12)


def test_specs_read_at_different_steps_have_no_single_target_step():
  specs = [dict(_RAMP, name='a'), dict(_RAMP, name='b', target_sparsity=0.5)]
  last = {'a': 20, 'b': 10}
  assert stored_specs.target_step(29, specs, last) is None
  assert stored_specs.target_step(29, specs[:1], last) == 20
  (report,) = strip_report.weight_reports([_pruned_to(0.5)], 29, specs,
                                          last_update_steps=last)
  assert report.target_sparsity is None  # the specs disagree
  assert report.target_step is None
  # Past the ramp's end both ask 0.9, each at its own last update.
  specs[1]['target_sparsity'] = 0.9
  (report,) = strip_report.weight_reports(
      [_pruned_to(0.9)], 150, specs, last_update_steps={'a': 150, 'b': 140})
  assert report.target_sparsity == pytest.approx(0.9)
  assert report.target_step is None
  assert "targets read at each spec's own step" in strip_report.format_table(
      [report], step=150)


def _ramp_checkpoint(checkpoint_dir, updates, save_at, extra_hparams=''):
  """A 32x32 weight pruned inside variable scope 'tower' by the conditional
  update, run at each step of `updates`; saved at global step `save_at`.
  Returns the checkpoint's PruningState and the strip result."""
  hparams = ('target_sparsity=0.9,sparsity_function_end_step=100,'
             'pruning_frequency=10,threshold_method=sort,threshold_decay=0.0'
             + extra_hparams)
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('tower'):
      weight = tf.compat.v1.get_variable('weights', initializer=np.random.
                                         default_rng(3).normal(size=(32, 32))
                                         .astype(np.float32))
      tf.identity(tf.matmul(tf.ones([1, 32]), pruning.apply_mask(weight)),
                  name='output')
      p = pruning.Pruning(pruning.get_pruning_hparams().parse(hparams),
                          global_step=step)
      update = p.conditional_mask_update_op()
    with _session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for t in updates:
        sess.run(step.assign(t))
        sess.run(update)
      sess.run(step.assign(save_at))
      tf.compat.v1.train.Saver().save(sess, str(checkpoint_dir / 'model.ckpt'),
                                      global_step=step)
  return (lib.read_pruning_state(str(checkpoint_dir)),
          strip_checkpoint.strip_checkpoint(
              str(checkpoint_dir), ['tower/output'],
              str(checkpoint_dir / 'out.pb')))


@pytest.mark.parametrize('save_at,flagged', [
    pytest.param(29, False, id='mid_cycle'),
    pytest.param(45, True, id='updates_stopped'),
])
def test_checkpoint_between_updates_is_on_target(tmp_path, save_at, flagged):
  """Updates at 10 and 20, saved at 29 (next due at 30) or 45 (the one due
  at 30 and 40 never ran): only the second is below its schedule."""
  state, result = _ramp_checkpoint(tmp_path, updates=range(25),
                                   save_at=save_at)
  # Found under the outer variable scope: tower/model_pruning/...
  assert state.last_update_steps == {'model_pruning': 20}
  (report,) = result.reports
  assert report.zero_fraction == pytest.approx(
      ref.scheduled_sparsity(20, target=0.9), abs=1.0 / 1024)
  assert report.target_step == (save_at if flagged else 20)
  assert bool(result.below_target) == flagged


@pytest.mark.parametrize('save_at,flagged', [
    pytest.param(10, False, id='first_update_due_now'),
    pytest.param(15, True, id='first_update_skipped'),
])
def test_checkpoint_before_the_first_update_is_dense_on_target(
    tmp_path, save_at, flagged):
  """initial_sparsity 0.5, the update op run at steps 0-9 (none due before
  10): dense masks, on target at 10, below it at 15."""
  state, result = _ramp_checkpoint(tmp_path, updates=range(10),
                                   save_at=save_at,
                                   extra_hparams=',initial_sparsity=0.5')
  assert state.last_update_steps == {'model_pruning': 0}
  (report,) = result.reports
  assert report.zero_fraction == 0.0
  assert report.target_sparsity == (pytest.approx(
      ref.scheduled_sparsity(15, initial=0.5, target=0.9)) if flagged
                                    else 0.0)
  assert bool(result.below_target) == flagged


@pytest.mark.parametrize('hparams_json', ['[1, 2]', '{"name": ["a"]}',
                                          '{"name": 5}'])
def test_odd_stored_hparams_give_no_last_update_step(tmp_path, hparams_json):
  _single_layer_checkpoint(tmp_path, hparams_json, step=7)
  state = lib.read_pruning_state(str(tmp_path))
  assert state.global_step == 7 and state.last_update_steps == {}
