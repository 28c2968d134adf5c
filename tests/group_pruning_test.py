"""Tests for group pruning (google-research group_pruning, docs/upstream.md).

A group's members share one threshold: their scores are concatenated and
pruned together, so the group reaches its sparsity as a whole while each
member may be sparser or denser. Weights outside every listed group are
pruned on their own (fix Q28). Oracles: tests/reference.py.
"""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref

_GLOBAL_TARGET = 0.3
_GROUP_TARGETS = {'g1': 0.75, 'g2': 0.5}
# name -> (group or None for plain apply_mask, shape, magnitude scale).
_WEIGHTS = {
    'a': ('g1', [8, 16], 1.0),
    'b': ('g1', [40], 3.0),
    'c': ('g2', [3, 3, 4, 5], 1.0),
    'd': ('g2', [10, 6], 0.5),
    'e': (None, [7, 9], 1.0),
    'f': ('g3', [5, 11], 1.0),
}


def _values(shape, scale, seed):
  rng = np.random.RandomState(seed)
  return (rng.uniform(-1, 1, shape) * scale).astype(np.float32)


def _add_weight(name, group, values, prune_option='weight'):
  """Masks variable `name/weights` in group `group` (None: plain apply_mask)."""
  with tf.compat.v1.variable_scope(name) as scope:
    weight = tf.compat.v1.get_variable('weights', initializer=values)
    if group is None:
      pruning.apply_mask(weight, scope, prune_option=prune_option)
    else:
      pruning.apply_mask_with_group(weight, scope, prune_option=prune_option,
                                    group_name=group)
  return weight


def _past_schedule_end():
  """A global step beyond sparsity_function_end_step: s(t) is the target."""
  return tf.compat.v1.get_variable(
      'global_step', initializer=np.int64(1000), trainable=False)


def _run_update(p, loads=()):
  """Runs one mask_update_op; returns {mask op name: mask value}."""
  update = p.mask_update_op()
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    for variable, value in loads:
      variable.load(value, sess)
    sess.run(update)
    return {mask.op.name: sess.run(mask) for mask in pruning.get_masks()}


def _hparams(text):
  return pruning.get_pruning_hparams().parse(text)


def test_apply_mask_with_group_registers_in_group_collections():
  with tf.Graph().as_default():
    grouped = _add_weight('a', 'g1', np.ones([2, 3], np.float32),
                          prune_option='first_order_gradient')
    with tf.compat.v1.variable_scope('u') as scope:
      default = tf.compat.v1.get_variable('weights', initializer=[1.0, 2.0])
      pruning.apply_mask_with_group(default, scope)
    plain = _add_weight('p', None, np.ones([2], np.float32))
    with tf.compat.v1.variable_scope('r') as scope:
      masked, mask = pruning.apply_mask_and_return(
          tf.compat.v1.get_variable('weights', initializer=[3.0]), scope)
    assert pruning.get_weights() == [grouped, default, plain,
                                     pruning.get_weights()[3]]
    assert pruning.get_weights('g1') == [grouped]
    assert pruning.get_weights('ungrouped') == [default]
    assert [m.op.name for m in pruning.get_masks('g1')] == ['a/mask']
    assert [t.op.name for t in pruning.get_thresholds('g1')] == ['a/threshold']
    assert [g.op.name for g in pruning.get_gradients('g1')] == ['a/gradient']
    assert [o.op.name for o in pruning.get_old_weights('g1')] == [
        'a/old_weight']
    assert [o.op.name for o in pruning.get_old_old_weights('g1')] == [
        'a/old_old_weight']
    assert pruning.get_masked_weights('g1')[0].op.name == (
        'a/weights/masked_weight')
    assert mask is pruning.get_masks()[3]
    assert masked is pruning.get_masked_weights()[3]
    assert pruning.get_masks('g2') == []


def _grouped_model(method, group_pruning=True):
  """The _WEIGHTS model under group pruning; returns (Pruning, values)."""
  global_step = _past_schedule_end()
  values = {}
  for seed, (name, (group, shape, scale)) in enumerate(_WEIGHTS.items()):
    values[name] = _values(shape, scale, seed)
    _add_weight(name, group, values[name])
  group_map = ','.join('%s:%g' % item for item in _GROUP_TARGETS.items())
  spec = _hparams(
      'threshold_method=%s,threshold_decay=0,group_pruning=%s,'
      'target_sparsity=%g,group_sparsity_map=[%s]' %
      (method, str(group_pruning).lower(), _GLOBAL_TARGET, group_map))
  return pruning.Pruning(spec, global_step=global_step), values


def _joint_kept(masks, names):
  return int(sum(np.sum(masks[name + '/mask']) for name in names))


@pytest.mark.parametrize('method', ref.METHODS)
def test_groups_reach_their_sparsity_jointly(method):
  with tf.Graph().as_default():
    p, values = _grouped_model(method)
    masks = _run_update(p)
  for group, target in _GROUP_TARGETS.items():
    names = [n for n, (g, _, _) in _WEIGHTS.items() if g == group]
    expected = ref.joint_masks([np.abs(values[n]) for n in names], target,
                               method)
    for name, expected_mask in zip(names, expected):
      np.testing.assert_array_equal(masks[name + '/mask'], expected_mask)
      # Not per weight: every member is clearly off the group's target.
      assert abs(1 - np.mean(masks[name + '/mask']) - target) > 0.05
    total = sum(values[n].size for n in names)
    kept = _joint_kept(masks, names)
    if method == 'histogram':
      flat = np.concatenate([np.abs(values[n]).ravel() for n in names])
      tolerance = ref.histogram_bin_population(flat, target, 256)
      assert abs(kept - ref.keep_count(total, target)) <= tolerance
    else:
      assert kept == ref.keep_count(total, target)


@pytest.mark.parametrize('method', ref.METHODS)
def test_weights_outside_listed_groups_are_pruned_individually(method):
  """Fix Q28: plain apply_mask weights and unlisted groups still prune."""
  with tf.Graph().as_default():
    p, values = _grouped_model(method)
    masks = _run_update(p)
  for name in ('e', 'f'):
    _, expected = ref.threshold_mask(np.abs(values[name]), _GLOBAL_TARGET,
                                     method)
    np.testing.assert_array_equal(masks[name + '/mask'], expected)


@pytest.mark.parametrize('method', ref.METHODS)
def test_without_group_pruning_every_weight_is_pruned_alone(method):
  with tf.Graph().as_default():
    p, values = _grouped_model(method, group_pruning=False)
    masks = _run_update(p)
  for name, value in values.items():
    _, expected = ref.threshold_mask(np.abs(value), _GLOBAL_TARGET, method)
    np.testing.assert_array_equal(masks[name + '/mask'], expected)


_BLOCK_SHAPES = {'a': [4, 6], 'b': [6, 3], 'c': [1, 5, 4]}


@pytest.mark.parametrize('pooling', ['AVG', 'MAX'])
@pytest.mark.parametrize('method', ['sort', 'exact'])
def test_group_block_pruning_is_joint_over_pooled_blocks(method, pooling):
  """Blocks of 2x2 (edge blocks partial) from members of different shapes."""
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    values = {name: _values(shape, 1.0 + seed, seed)
              for seed, (name, shape) in enumerate(_BLOCK_SHAPES.items())}
    for name, value in values.items():
      _add_weight(name, 'g1', value)
    p = pruning.Pruning(_hparams(
        'threshold_method=%s,threshold_decay=0,group_pruning=true,'
        'group_sparsity_map=[g1:0.6],group_block_dims_map=[g1:2x2],'
        'block_pooling_function=%s' % (method, pooling)),
                        global_step=global_step)
    masks = _run_update(p)
  matrices = [np.squeeze(values[name]) for name in _BLOCK_SHAPES]
  expected = ref.joint_block_masks(matrices, 0.6, method, [2, 2], pooling)
  for name, expected_mask in zip(_BLOCK_SHAPES, expected):
    np.testing.assert_array_equal(
        masks[name + '/mask'],
        expected_mask.reshape(_BLOCK_SHAPES[name]))


def test_group_listed_only_in_block_dims_map_is_joint_at_global_target():
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    values = [_values([4, 4], 1.0, 0), _values([4, 8], 2.0, 1)]
    for name, value in zip('ab', values):
      _add_weight(name, 'g1', value)
    p = pruning.Pruning(_hparams(
        'threshold_method=sort,threshold_decay=0,group_pruning=true,'
        'target_sparsity=0.5,group_block_dims_map=[g1:2x2]'),
                        global_step=global_step)
    masks = _run_update(p)
  expected = ref.joint_block_masks(values, 0.5, 'sort', [2, 2], 'AVG')
  for name, expected_mask in zip('ab', expected):
    np.testing.assert_array_equal(masks[name + '/mask'], expected_mask)


def test_group_target_zero_means_no_pruning():
  """Fix Q27: a listed 0.0 is a target, not 'use the global sparsity'."""
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    values = [_values([6, 6], 1.0, 0), _values([12], 1.0, 1)]
    for name, value in zip('ab', values):
      _add_weight(name, 'g1', value)
    p = pruning.Pruning(_hparams(
        'threshold_method=exact,group_pruning=true,target_sparsity=0.5,'
        'group_sparsity_map=[g1:0.0]'), global_step=global_step)
    masks = _run_update(p)
  for name, value in zip('ab', values):
    np.testing.assert_array_equal(masks[name + '/mask'], np.ones(value.shape))


@pytest.mark.parametrize('blocked', [False, True], ids=['element', 'block'])
def test_group_first_order_gradient_uses_weight_times_gradient(blocked):
  """gradient_decay_rate=1 keeps the loaded g0: joint masks of |W| g0."""
  shapes = [[4, 6], [6, 4]]
  values = [_values(shape, 1.0, seed) for seed, shape in enumerate(shapes)]
  gradients = [np.abs(_values(shape, 1.0, seed + 10))
               for seed, shape in enumerate(shapes)]
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    for name, value in zip('ab', values):
      _add_weight(name, 'g1', value, prune_option='first_order_gradient')
    blocks = ',group_block_dims_map=[g1:2x2]' if blocked else ''
    p = pruning.Pruning(_hparams(
        'prune_option=first_order_gradient,gradient_decay_rate=1.0,'
        'threshold_method=exact,group_pruning=true,'
        'group_sparsity_map=[g1:0.5]' + blocks), global_step=global_step)
    masks = _run_update(p, zip(pruning.get_gradients('g1'), gradients))
  if blocked:
    expected = ref.joint_block_masks(values, 0.5, 'exact', [2, 2], 'AVG',
                                     gradients)
    magnitude_only = ref.joint_block_masks(values, 0.5, 'exact', [2, 2],
                                           'AVG')
  else:
    expected = ref.joint_masks(
        [np.abs(v) * g for v, g in zip(values, gradients)], 0.5, 'exact')
    magnitude_only = ref.joint_masks([np.abs(v) for v in values], 0.5,
                                     'exact')
  assert not all(np.array_equal(e, m)
                 for e, m in zip(expected, magnitude_only))
  for name, expected_mask in zip('ab', expected):
    np.testing.assert_array_equal(masks[name + '/mask'], expected_mask)


def test_group_threshold_decay_smooths_the_shared_threshold():
  """theta_n = (1 - d) theta* + d theta_(n-1), one value for all members."""
  decay = 0.5
  values = [_values([5, 8], 1.0, 0), _values([30], 2.0, 1)]
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    for name, value in zip('ab', values):
      _add_weight(name, 'g1', value)
    p = pruning.Pruning(_hparams(
        'threshold_method=sort,threshold_decay=%g,group_pruning=true,'
        'group_sparsity_map=[g1:0.75]' % decay), global_step=global_step)
    update = p.mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      observed = []
      for _ in range(4):
        sess.run(update)
        observed.append(sess.run(
            (pruning.get_thresholds('g1'), pruning.get_masks('g1'))))
  scores = [np.abs(v) for v in values]
  target_threshold = ref.sort_threshold(np.concatenate(
      [s.ravel() for s in scores]), 0.75)
  expected_threshold = 0.0
  for thresholds, masks in observed:
    expected_threshold = ((1 - decay) * target_threshold +
                          decay * expected_threshold)
    np.testing.assert_allclose(thresholds, [expected_threshold] * 2,
                               rtol=1e-6)
    for score, mask in zip(scores, masks):
      np.testing.assert_array_equal(mask, score >= expected_threshold)


@pytest.mark.parametrize('external', [False, True],
                         ids=['schedule', 'external_sparsity'])
def test_group_target_follows_the_schedule(external):
  """Mid-schedule, a group's sparsity is its own interpolated target."""
  step, group_target, global_target = 50, 0.8, 0.4
  values = [_values([10, 10], 1.0, 0), _values([50], 1.0, 1)]
  with tf.Graph().as_default():
    global_step = tf.compat.v1.get_variable(
        'global_step', initializer=np.int64(step), trainable=False)
    for name, value in zip('ab', values):
      _add_weight(name, 'g1', value)
    global_sparsity = ref.scheduled_sparsity(
        step, begin_step=0, end_step=100, initial=0.1, target=global_target,
        exponent=3.0)
    p = pruning.Pruning(
        _hparams('threshold_method=exact,group_pruning=true,'
                 'initial_sparsity=0.1,target_sparsity=%g,'
                 'group_sparsity_map=[g1:%g]' % (global_target, group_target)),
        global_step=global_step,
        sparsity=tf.constant(global_sparsity) if external else None)
    masks = _run_update(p)
  if external:
    sparsity = global_sparsity * group_target / global_target
  else:
    sparsity = ref.scheduled_sparsity(step, begin_step=0, end_step=100,
                                      initial=0.1, target=group_target,
                                      exponent=3.0)
  assert _joint_kept(masks, 'ab') == ref.keep_count(150, sparsity)


def test_group_block_pruning_rejects_weights_that_are_not_2d():
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    _add_weight('c', 'g1', _values([3, 3, 2], 1.0, 0))
    p = pruning.Pruning(_hparams(
        'group_pruning=true,group_block_dims_map=[g1:2x2]'),
                        global_step=global_step)
    with pytest.raises(ValueError, match=r'squeeze to 2-D.*\(3, 3, 2\)'):
      p.mask_update_op()


def test_group_map_with_external_sparsity_needs_positive_target():
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    _add_weight('a', 'g1', _values([4, 4], 1.0, 0))
    p = pruning.Pruning(_hparams(
        'group_pruning=true,target_sparsity=0.0,group_sparsity_map=[g1:0.5]'),
                        global_step=global_step, sparsity=tf.constant(0.2))
    with pytest.raises(ValueError, match='target_sparsity > 0'):
      p.mask_update_op()


def test_group_gradient_option_needs_group_gradients():
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    _add_weight('a', 'g1', _values([4, 4], 1.0, 0))
    p = pruning.Pruning(_hparams(
        'prune_option=first_order_gradient,group_pruning=true,'
        'group_sparsity_map=[g1:0.5]'), global_step=global_step)
    with pytest.raises(ValueError, match='gradient'):
      p.mask_update_op()


def test_do_not_prune_members_keep_their_masks_and_leave_the_group():
  values = [_values([6, 6], 1.0, 0), _values([20], 1.0, 1)]
  with tf.Graph().as_default():
    global_step = _past_schedule_end()
    for name, value in zip('ab', values):
      _add_weight(name, 'g1', value)
    p = pruning.Pruning(_hparams(
        'threshold_method=exact,group_pruning=true,do_not_prune=[^b/],'
        'group_sparsity_map=[g1:0.5]'), global_step=global_step)
    masks = _run_update(p)
  np.testing.assert_array_equal(masks['b/mask'], np.ones([20]))
  (expected,) = ref.joint_masks([np.abs(values[0])], 0.5, 'exact')
  np.testing.assert_array_equal(masks['a/mask'], expected)
