"""Tests for gradient-based pruning (google-research prune_option, docs/upstream.md).

Every test builds a fresh graph and compares with the numpy oracles in
tests/reference.py.
"""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from tests import reference as ref

_GRADIENT_OPTIONS = ('first_order_gradient', 'second_order_gradient')


def _hparams(text):
  return pruning.get_pruning_hparams().parse(text)


def _variable(name, values):
  return tf.compat.v1.get_variable(
      name, initializer=np.asarray(values, np.float32))


def _session():
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  return sess


def _masked_variable(name, values, prune_option):
  """A variable `name/weights` masked in its own scope with `prune_option`."""
  with tf.compat.v1.variable_scope(name) as scope:
    weight = _variable('weights', values)
    pruning.apply_mask(weight, scope, prune_option=prune_option)
  return weight


@pytest.mark.parametrize(
    'prune_option, has_gradient_variables',
    [('weight', False), ('first_order_gradient', True),
     ('second_order_gradient', True), ('compression', False)],
    ids=['weight', 'first_order', 'second_order', 'other_option'])
def test_apply_mask_creates_gradient_variables(prune_option,
                                               has_gradient_variables):
  with tf.Graph().as_default():
    weight = _masked_variable('layer', np.ones([3, 4]), prune_option)
    getters = (pruning.get_gradients, pruning.get_old_weights,
               pruning.get_old_old_weights)
    if not has_gradient_variables:
      assert [getter() for getter in getters] == [[], [], []]
      return
    names = [getter()[0].op.name for getter in getters]
    assert names == ['layer/gradient', 'layer/old_weight',
                     'layer/old_old_weight']
    trainable = tf.compat.v1.trainable_variables()
    assert trainable == [weight]
    with _session() as sess:
      for getter in getters:
        (variable,) = getter()
        assert variable.dtype.base_dtype == weight.dtype.base_dtype
        np.testing.assert_array_equal(sess.run(variable), np.zeros([3, 4]))


@pytest.mark.parametrize('prune_option', ['weight'] + list(_GRADIENT_OPTIONS))
def test_use_gradient_and_pruning_apply_mask(prune_option):
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    spec = _hparams('prune_option=%s' % prune_option)
    p = pruning.Pruning(spec)
    assert p.use_gradient() == (prune_option in _GRADIENT_OPTIONS)
    assert p.get_spec() is spec
    with tf.compat.v1.variable_scope('layer') as scope:
      p.apply_mask(_variable('weights', np.ones([2, 2])), scope)
    expected = 1 if prune_option in _GRADIENT_OPTIONS else 0
    assert len(pruning.get_gradients()) == expected


def test_gradient_ops_are_no_ops_for_weight_pruning():
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', np.ones([2, 2]), 'weight')
    p = pruning.Pruning(_hparams('prune_option=weight'))
    ops = [p.gradient_update_op(), p.old_weight_update_op(),
           p.old_old_weight_update_op()]
    assert [op.type for op in ops] == ['NoOp'] * 3


def test_old_old_weight_update_is_no_op_for_first_order():
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', np.ones([2, 2]), 'first_order_gradient')
    p = pruning.Pruning(_hparams('prune_option=first_order_gradient'))
    op = p.old_old_weight_update_op()
    assert op.type == 'NoOp' and not op.control_inputs


@pytest.mark.parametrize('rate', [0.5, 0.9], ids=['rate_0.5', 'rate_0.9'])
def test_first_order_gradient_calculation(rate):
  """Upstream testFirstOrderGradientCalculation: g = (1 - r) l2n(W)."""
  values = np.linspace(1, 10, 10)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    weight = _masked_variable('layer', values, 'first_order_gradient')
    p = pruning.Pruning(_hparams(
        'prune_option=first_order_gradient,gradient_decay_rate=%g' % rate))
    gradient_op = p.gradient_update_op()
    old_weight_op = p.old_weight_update_op()
    with _session() as sess:
      sess.run(gradient_op)
      sess.run(old_weight_op)
      gradient, old_weight, current = sess.run(
          [pruning.get_gradients()[0], pruning.get_old_weights()[0], weight])
  expected = ref.decayed_gradient(values, np.zeros(10), np.zeros(10), rate)
  np.testing.assert_allclose(gradient, expected, rtol=1e-6)
  np.testing.assert_array_equal(old_weight, current)


def test_second_order_gradient_calculation():
  """Upstream test: |2x + x - 2x| = x, so g = 0.5 l2n(x); old_old == old."""
  values = np.linspace(1, 10, 10)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    weight = _masked_variable('layer', values, 'second_order_gradient')
    p = pruning.Pruning(_hparams(
        'prune_option=second_order_gradient,gradient_decay_rate=0.5'))
    old_weight_op = p.old_weight_update_op()
    old_old_weight_op = p.old_old_weight_update_op()
    double = tf.compat.v1.assign(weight, 2 * weight)
    gradient_op = p.gradient_update_op()
    with _session() as sess:
      for op in (old_weight_op, old_old_weight_op, double, gradient_op):
        sess.run(op)
      gradient, old_weight, old_old_weight = sess.run(
          [pruning.get_gradients()[0], pruning.get_old_weights()[0],
           pruning.get_old_old_weights()[0]])
  np.testing.assert_allclose(gradient, 0.5 * ref.l2_normalize(values),
                             rtol=1e-6)
  np.testing.assert_array_equal(old_weight, old_old_weight)
  np.testing.assert_array_equal(old_weight, values)


def _ordering_case(prune_option, seed=1, size=12):
  """Random W, old, old_old and g with distinct saliencies for every order."""
  rng = np.random.RandomState(seed)
  return dict(weight=rng.uniform(1, 2, size),
              old_weight=rng.uniform(0, 3, size),
              old_old_weight=rng.uniform(0, 3, size),
              gradient=rng.uniform(0, 1, size),
              second=prune_option == 'second_order_gradient')


def _ordering_oracle(case, rate):
  """The Q12 order: g from the OLD snapshots, then old_old <- old <- W."""
  old_old = case['old_old_weight'] if case['second'] else None
  gradient = ref.decayed_gradient(case['weight'], case['old_weight'],
                                  case['gradient'], rate, old_old)
  _, mask = ref.threshold_mask(np.abs(case['weight']) * gradient, 0.5, 'exact')
  return gradient, mask


@pytest.mark.parametrize('prune_option', _GRADIENT_OPTIONS)
def test_mask_update_op_orders_gradient_snapshot_and_mask(prune_option):
  """Fix Q12, checked over many runs of one op so a race would show."""
  rate = 0.5
  case = _ordering_case(prune_option)
  gradient, mask = _ordering_oracle(case, rate)
  # The test data must tell the orders apart: a mask from the old gradient,
  # or a gradient from the new old_weight (= W, no movement), differ.
  _, stale_mask = ref.threshold_mask(
      np.abs(case['weight']) * case['gradient'], 0.5, 'exact')
  assert not np.array_equal(mask, stale_mask)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    weight = _masked_variable('layer', case['weight'], prune_option)
    p = pruning.Pruning(
        _hparams('prune_option=%s,gradient_decay_rate=%g,'
                 'threshold_method=exact' % (prune_option, rate)),
        sparsity=tf.constant(0.5))
    update = p.mask_update_op()
    state = {'old_weight': pruning.get_old_weights()[0],
             'old_old_weight': pruning.get_old_old_weights()[0],
             'gradient': pruning.get_gradients()[0]}
    mask_variable = pruning.get_masks()[0]
    with _session() as sess:
      for _ in range(40):
        for key, variable in state.items():
          variable.load(case[key], sess)
        sess.run(update)
        got = sess.run({'gradient': state['gradient'],
                        'old_weight': state['old_weight'],
                        'old_old_weight': state['old_old_weight'],
                        'mask': mask_variable, 'weight': weight})
        np.testing.assert_allclose(got['gradient'], gradient, rtol=1e-5)
        np.testing.assert_array_equal(got['old_weight'], got['weight'])
        if case['second']:
          np.testing.assert_allclose(got['old_old_weight'],
                                     case['old_weight'], rtol=1e-6)
        np.testing.assert_array_equal(got['mask'], mask)


@pytest.mark.parametrize('method', ref.METHODS)
def test_element_wise_mask_uses_weight_times_gradient(method):
  """With gradient_decay_rate=1 the accumulator stays g0: mask of |W| g0."""
  rng = np.random.RandomState(3)
  values = rng.uniform(-1, 1, [6, 5])
  gradient0 = rng.uniform(0, 1, [6, 5])
  sparsity = 0.6
  _, expected = ref.threshold_mask(np.abs(values) * gradient0, sparsity, method)
  _, magnitude_only = ref.threshold_mask(np.abs(values), sparsity, method)
  assert not np.array_equal(expected, magnitude_only)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', values, 'first_order_gradient')
    p = pruning.Pruning(
        _hparams('prune_option=first_order_gradient,gradient_decay_rate=1.0,'
                 'threshold_decay=0,threshold_method=%s' % method),
        sparsity=tf.constant(sparsity))
    update = p.mask_update_op()
    with _session() as sess:
      pruning.get_gradients()[0].load(gradient0, sess)
      sess.run(update)
      mask = sess.run(pruning.get_masks()[0])
  np.testing.assert_array_equal(mask, expected)


_W_AVG = [[0.1, 0.1, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2],
          [0.3, 0.3, 0.4, 0.4], [0.3, 0.3, 0.4, 0.4]]


@pytest.mark.parametrize('method', ['sort', 'exact'])
def test_first_order_gradient_block_masking(method):
  """Upstream testFirstOrderGradientBlockMasking through mask_update_op.

  mask_update_op runs the gradient update, then the old-weight update, then
  the block mask, which is the upstream test's sequence.
  """
  expected = np.array([[0.0] * 4] * 2 + [[1.0] * 4] * 2)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', _W_AVG, 'first_order_gradient')
    p = pruning.Pruning(
        _hparams('prune_option=first_order_gradient,gradient_decay_rate=0.5,'
                 'block_height=2,block_width=2,threshold_decay=0,'
                 'block_pooling_function=AVG,threshold_method=%s' % method),
        sparsity=tf.constant(0.5))
    update = p.mask_update_op()
    with _session() as sess:
      sess.run(update)
      mask = sess.run(pruning.get_masks()[0])
  np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize('pooling', ['AVG', 'MAX'])
def test_block_mask_uses_pooled_weight_times_pooled_gradient(pooling):
  rng = np.random.RandomState(5)
  values = rng.uniform(-1, 1, [6, 5])
  gradient0 = rng.uniform(0, 1, [6, 5])
  dims = [2, 2]
  scores = ref.block_scores(values, dims, pooling, gradient0)
  _, block_mask = ref.threshold_mask(scores, 0.5, 'sort')
  expected = ref.expand_blocks(block_mask, dims, values.shape)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', values, 'first_order_gradient')
    p = pruning.Pruning(
        _hparams('prune_option=first_order_gradient,gradient_decay_rate=1.0,'
                 'block_height=2,block_width=2,threshold_decay=0,'
                 'threshold_method=sort,block_pooling_function=%s' % pooling),
        sparsity=tf.constant(0.5))
    update = p.mask_update_op()
    with _session() as sess:
      pruning.get_gradients()[0].load(gradient0, sess)
      sess.run(update)
      mask = sess.run(pruning.get_masks()[0])
  np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize('method, expected_sparsity',
                         [('exact', 0.5), ('sort', 0.0), ('histogram', 0.0)],
                         ids=['exact', 'sort', 'histogram'])
def test_weight_sparsity_tiebreaker(method, expected_sparsity):
  """Upstream testWeightSparsityTiebreaker: 100 equal weights at s = 0.5.

  Only the exact method breaks the tie (50 survive); sort keeps every value
  equal to the threshold and histogram puts them all in the last bin.
  """
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer1', np.ones(100), 'weight')
    p = pruning.Pruning(_hparams(
        'begin_pruning_step=1,pruning_frequency=1,end_pruning_step=100,'
        'target_sparsity=0.5,threshold_decay=0.0,threshold_method=%s' %
        method))
    update = p.conditional_mask_update_op()
    increment = tf.compat.v1.assign_add(global_step, 1)
    sparsity = pruning.get_weight_sparsity()
    with _session() as sess:
      for _ in range(110):
        sess.run(update)
        sess.run(increment)
      np.testing.assert_allclose(sess.run(sparsity), [expected_sparsity])


def test_conditional_gradient_update_runs_inside_pruning_window():
  """cond((t >= b) and (t <= e or e < 0)); no frequency check."""
  begin, end = 2, 5
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', np.linspace(1, 4, 4), 'first_order_gradient')
    p = pruning.Pruning(_hparams(
        'prune_option=first_order_gradient,begin_pruning_step=%d,'
        'end_pruning_step=%d,pruning_frequency=3' % (begin, end)))
    update = p.conditional_gradient_update_op()
    increment = tf.compat.v1.assign_add(global_step, 1)
    (last_step,) = [v for v in tf.compat.v1.global_variables()
                    if v.op.name == 'model_pruning/last_gradient_update_step']
    seen = []
    with _session() as sess:
      for _ in range(8):
        sess.run(update)
        seen.append(int(sess.run(last_step)))
        sess.run(increment)
  expected, last = [], 0
  for step in range(8):
    last = step if begin <= step <= end else last
    expected.append(last)
  assert seen == expected


def test_gradient_option_without_gradient_variables_raises():
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', np.ones([2, 2]), 'weight')
    p = pruning.Pruning(_hparams('prune_option=first_order_gradient'))
    for build in (p.gradient_update_op, p.old_weight_update_op,
                  p.mask_update_op):
      with pytest.raises(ValueError, match=r'0 mismatch.*apply_mask\(\.\.\., '
                         r"prune_option='first_order_gradient'\)"):
        build()


def test_partitioned_weight_first_order_gradient():
  """Partitioned weight, mask and accumulators: assigned piece by piece."""
  values = np.random.RandomState(9).uniform(1, 2, 100)
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    partitioner = tf.compat.v1.variable_axis_size_partitioner(40)
    with tf.compat.v1.variable_scope('', partitioner=partitioner) as scope:
      weight = tf.compat.v1.get_variable(
          'weights', shape=[100],
          initializer=tf.compat.v1.constant_initializer(0.0))
      pruning.apply_mask(weight, scope, prune_option='first_order_gradient')
    assert len(list(pruning.get_gradients()[0])) > 1
    p = pruning.Pruning(
        _hparams('prune_option=first_order_gradient,gradient_decay_rate=0.5,'
                 'threshold_decay=0,threshold_method=exact'),
        sparsity=tf.constant(0.5))
    update = p.mask_update_op()
    with _session() as sess:
      offset = 0
      for part in weight:
        size = part.get_shape().as_list()[0]
        part.load(values[offset:offset + size], sess)
        offset += size
      sess.run(update)
      gradient, old_weight, mask = sess.run(
          [pruning.get_gradients()[0].as_tensor(),
           pruning.get_old_weights()[0].as_tensor(),
           pruning.get_masks()[0].as_tensor()])
  expected_gradient = ref.decayed_gradient(values, np.zeros(100),
                                           np.zeros(100), 0.5)
  np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-5)
  np.testing.assert_allclose(old_weight, values, rtol=1e-6)
  _, expected_mask = ref.threshold_mask(values * expected_gradient, 0.5,
                                      'exact')
  np.testing.assert_array_equal(mask, expected_mask)


def test_gradient_summaries():
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    _masked_variable('layer', np.ones([2, 2]), 'first_order_gradient')
    pruning.Pruning(_hparams(
        'prune_option=first_order_gradient')).add_pruning_summaries()
    names = [op.name for op in tf.compat.v1.get_default_graph().get_operations()
             if op.type in ('ScalarSummary', 'HistogramSummary')]
  for suffix in ('last_gradient_update_step', 'layer/gradient/gradient',
                 'layer/gradient/gradient-sparsity',
                 'layer/gradient/abs.gradient', 'layer/mask/sparsity'):
    assert any(name.endswith(suffix) for name in names), (suffix, names)


def test_first_order_training_reaches_target_sparsity():
  """A linear model trained with first-order pruning ends at the target.

  y = x W* with 25% of W* non-zero; pruning to 75% with the exact method
  leaves exactly 25% of the weights, and the loss drops well below its start.
  """
  rng = np.random.RandomState(0)
  true_weight = rng.normal(size=[20, 5]) * (rng.uniform(size=[20, 5]) < 0.25)
  inputs = rng.normal(size=[256, 20]).astype(np.float32)
  targets = (inputs @ true_weight).astype(np.float32)
  target_sparsity = 0.75
  with tf.Graph().as_default():
    global_step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope('dense') as scope:
      weight = tf.compat.v1.get_variable(
          'weights', shape=[20, 5],
          initializer=tf.compat.v1.random_normal_initializer(stddev=0.1,
                                                             seed=1))
      masked = pruning.apply_mask(weight, scope,
                                  prune_option='first_order_gradient')
    loss = tf.reduce_mean(tf.square(tf.constant(inputs) @ masked - targets))
    train = tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(
        loss, global_step=global_step)
    p = pruning.Pruning(_hparams(
        'prune_option=first_order_gradient,gradient_decay_rate=0.5,'
        'threshold_method=exact,threshold_decay=0,pruning_frequency=10,'
        'sparsity_function_end_step=150,target_sparsity=%g' % target_sparsity))
    with tf.control_dependencies([train]):
      step = p.conditional_mask_update_op()
    with _session() as sess:
      initial_loss = sess.run(loss)
      for _ in range(250):
        sess.run(step)
      final_loss, sparsity, masked_value = sess.run(
          [loss, pruning.get_weight_sparsity()[0], masked])
  assert sparsity == pytest.approx(target_sparsity)
  assert np.count_nonzero(masked_value) == 25
  assert final_loss < 0.05 * initial_loss
