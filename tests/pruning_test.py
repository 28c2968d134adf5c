"""pruning.py: the oracles of docs/upstream.md for each threshold method."""
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python import pruning_spec
from tests import reference

_METHODS = ['histogram', 'sort', 'exact']
_HPARAMS_STRING = (
    'name=test,threshold_decay=0.9,pruning_frequency=10,'
    'sparsity_function_end_step=100,target_sparsity=0.9,'
    'weight_sparsity_map=[conv1:0.8,conv2/kernel:0.8],'
    'block_dims_map=[dense1:4x4,dense2:1x4]')
_W_MAX = [[0.1, 0, 0.2, 0], [0, -0.1, 0, -0.2], [0.3, 0, 0.4, 0],
          [0, -0.3, 0, -0.4]]
_W_AVG = [[0.1, 0.1, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.4, 0.4],
          [0.3, 0.3, 0.4, 0.4]]
_ROWS_2_3_KEPT = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]


def _hparams(text=''):
  return pruning.get_pruning_hparams().parse(text)


def _session():
  sess = tf.compat.v1.Session()
  sess.run(tf.compat.v1.global_variables_initializer())
  return sess


def _linspace_weight(name='weights', size=100, dtype=np.float32):
  return tf.compat.v1.get_variable(
      name, initializer=np.linspace(1.0, 100.0, size).astype(dtype))


def _sparsity_variable(value):
  return tf.compat.v1.get_variable(
      'sparsity', shape=[], initializer=tf.compat.v1.constant_initializer(
          value), trainable=False)


@pytest.fixture(autouse=True)
def _fresh_graph():
  with tf.Graph().as_default() as graph:
    tf.compat.v1.train.get_or_create_global_step()
    yield graph


class TestHParams:

  def test_init(self):
    p = pruning.Pruning(_hparams(_HPARAMS_STRING))
    assert p._spec.name == 'test'
    assert p._spec.threshold_decay == pytest.approx(0.9)
    assert p._spec.pruning_frequency == 10
    assert p._spec.sparsity_function_end_step == 100
    assert p._spec.target_sparsity == pytest.approx(0.9)
    plan = pruning_spec.PruningPlan(p.get_spec())
    assert plan.sparsity_map_patterns == ['conv1', 'conv2/kernel']
    assert plan.block_dims_map_values == [[4, 4], [1, 4]]
    assert plan.for_weight('conv1/weights').target == pytest.approx(0.8)
    assert plan.for_weight('dense2/weights').block_dims == [1, 4]
    assert plan.for_weight('dense3/weights').block_dims == [1, 1]

  def test_init_with_external_sparsity(self):
    sparsity = _sparsity_variable(0.5)
    p = pruning.Pruning(_hparams(_HPARAMS_STRING), sparsity=sparsity)
    with _session() as sess:
      assert sess.run(p._sparsity) == pytest.approx(0.5)

  def test_two_objects_share_last_mask_update_step(self):
    sparsity = _sparsity_variable(0.5)
    p1 = pruning.Pruning(_hparams(_HPARAMS_STRING), sparsity=sparsity)
    p2 = pruning.Pruning(_hparams(_HPARAMS_STRING), sparsity=sparsity)
    assert p1._last_update_step is p2._last_update_step
    assert p1._last_update_step.op.name == 'test/last_mask_update_step'
    with _session() as sess:
      assert sess.run(p1._sparsity) == sess.run(p2._sparsity) == 0.5

  def test_hparams_are_stored_in_the_graph(self):
    pruning.Pruning(_hparams('name=stored,target_sparsity=0.7'))
    stored = tf.compat.v1.get_collection(pruning.HPARAMS_COLLECTION)
    assert [t.op.name for t in stored] == ['stored/hparams_json']
    with _session() as sess:
      parsed = pruning.get_pruning_hparams().parse_json(
          sess.run(stored[0]).decode())
    assert parsed.target_sparsity == pytest.approx(0.7)

  def test_dict_spec_and_partial_spec(self):
    from model_pruning.python import hparam  # pylint: disable=g-import-not-at-top
    p = pruning.Pruning({'target_sparsity': 0.8})
    assert p._spec.target_sparsity == 0.8
    partial = hparam.HParams(name='partial', target_sparsity=0.6)
    p = pruning.Pruning(partial)
    assert p._spec.pruning_frequency == 10 and p._spec.name == 'partial'
    assert 'pruning_frequency' not in partial  # The caller's object is intact.


def test_create_mask_2d():
  weights = tf.compat.v1.get_variable(
      'weights', initializer=np.random.RandomState(0).randn(10, 20).astype(
          np.float32))
  masked = pruning.apply_mask(weights,
                              tf.compat.v1.get_variable_scope())
  assert masked.op.name == 'weights/masked_weight'
  assert pruning.get_masks()[0].op.name == 'mask'
  with _session() as sess:
    np.testing.assert_array_equal(*sess.run([masked, weights]))


@pytest.mark.parametrize('method,nbins,sparsity,survivors', [
    ('histogram', 255, 0.5, 51), ('histogram', 256, 0.5, 50),
    ('sort', 256, 0.5, 50), ('exact', 256, 0.5, 50),
    ('sort', 256, 0.95, 5), ('exact', 256, 0.95, 5),
])
def test_update_single_mask(method, nbins, sparsity, survivors):
  weights = _linspace_weight()
  masked = pruning.apply_mask(weights)
  p = pruning.Pruning(_hparams('threshold_method=%s,nbins=%d' %
                               (method, nbins)),
                      sparsity=_sparsity_variable(sparsity))
  p._spec.threshold_decay = 0.0
  update = p.mask_update_op()
  with _session() as sess:
    assert np.count_nonzero(sess.run(masked)) == 100
    sess.run(update)
    assert np.count_nonzero(sess.run(masked)) == survivors
    if method == 'sort':
      assert sess.run(pruning.get_thresholds()[0]) == pytest.approx(
          reference.sort_threshold(np.linspace(1, 100, 100), sparsity))


def _block_mask(hparams_text, weights, sparsity):
  """The mask one update gives a weight holding `weights`."""
  weight = tf.compat.v1.get_variable(
      'weights', initializer=np.asarray(weights, np.float32))
  pruning.apply_mask(weight)
  p = pruning.Pruning(_hparams(hparams_text),
                      sparsity=_sparsity_variable(sparsity))
  update = p.mask_update_op()
  mask = pruning.get_masks()[0]
  assert mask.get_shape().as_list() == list(np.shape(weights))
  with _session() as sess:
    sess.run(update)
    return sess.run(mask)


# Histogram needs s slightly above 0.5 to cut two of four blocks: the C0/C1
# oracles use s = 0.51 with nbins = 255 (with 256 bins the third block's
# value lands exactly on the threshold and is cut too).
_BLOCK_SPARSITY = {'histogram': 0.51, 'sort': 0.5, 'exact': 0.5}


def _method_hparams(method):
  return 'threshold_method=%s%s' % (method, ',nbins=255'
                                     if method == 'histogram' else '')


@pytest.mark.parametrize('method', _METHODS)
@pytest.mark.parametrize('pooling,weights', [('MAX', _W_MAX),
                                             ('AVG', _W_AVG)])
def test_block_masking(method, pooling, weights):
  text = ('block_height=2,block_width=2,threshold_decay=0,'
          'block_pooling_function=%s,%s' % (pooling, _method_hparams(method)))
  mask = _block_mask(text, weights, _BLOCK_SPARSITY[method])
  np.testing.assert_array_equal(mask, _ROWS_2_3_KEPT)


@pytest.mark.parametrize('method', _METHODS)
@pytest.mark.parametrize('pooling,weights', [
    ('MAX', [[0.1, 0, 0.1, 0], [0, 0.1, 0, 0.2], [0.3, 0, 0.3, 0],
             [0, -0.3, 0, 0.4]]),
    ('AVG', [[0.1] * 4, [0.2] * 4, [0.3] * 4, [0.3, 0.3, 0.4, 0.4]]),
])
def test_block_masking_with_negative_block_dimensions(method, pooling,
                                                      weights):
  text = ('block_height=1,block_width=-1,threshold_decay=0,'
          'block_pooling_function=%s,%s' % (pooling, _method_hparams(method)))
  mask = _block_mask(text, weights, _BLOCK_SPARSITY[method])
  np.testing.assert_array_equal(mask, _ROWS_2_3_KEPT)


@pytest.mark.parametrize('method', _METHODS)
def test_block_masking_with_higher_dimensions(method):
  text = ('block_height=2,block_width=2,threshold_decay=0,'
          'block_pooling_function=AVG,' + _method_hparams(method))
  mask = _block_mask(text, [_W_AVG], _BLOCK_SPARSITY[method])
  np.testing.assert_array_equal(mask, [_ROWS_2_3_KEPT])


def _slice_of(values):
  """Initializer giving each partition its slice of `values` (axis 0)."""
  def initializer(shape, dtype=tf.float32, partition_info=None):
    offset = partition_info.var_offset[0] if partition_info else 0
    return tf.constant(values[offset:offset + shape[0]], dtype=dtype)
  return initializer


@pytest.mark.parametrize('method,survivors', [('histogram', 50),
                                              ('sort', 50), ('exact', 50)])
def test_partitioned_variable_masking(method, survivors):
  partitioner = tf.compat.v1.variable_axis_size_partitioner(40)
  with tf.compat.v1.variable_scope('', partitioner=partitioner) as scope:
    sparsity = _sparsity_variable(0.5)
    weights = tf.compat.v1.get_variable(
        'weights', shape=[100], initializer=_slice_of(np.linspace(1, 100, 100)))
    assert len(list(weights)) > 1
    masked = pruning.apply_mask(weights, scope=scope)
  p = pruning.Pruning(_hparams('threshold_method=%s,threshold_decay=0' %
                               method), sparsity=sparsity)
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    assert np.count_nonzero(sess.run(masked)) == survivors


@pytest.mark.parametrize('method', _METHODS)
def test_conditional_mask_update(method):
  weights = _linspace_weight()
  masked = pruning.apply_mask(weights)
  sparsity = _sparsity_variable(0.0)
  p = pruning.Pruning(
      _hparams('pruning_frequency=2,begin_pruning_step=1,end_pruning_step=6,'
               'nbins=100,threshold_decay=0,threshold_method=%s' % method),
      sparsity=sparsity)
  update = p.conditional_mask_update_op()
  increment = tf.compat.v1.assign_add(tf.compat.v1.train.get_global_step(), 1)
  schedule = np.linspace(0.0, 0.9, 10)
  counts = []
  with _session() as sess:
    for value in schedule:
      sess.run(tf.compat.v1.assign(sparsity, value))
      sess.run(update)
      sess.run(increment)
      counts.append(np.count_nonzero(sess.run(masked)))
  fired = reference.update_steps(range(10), begin=1, end=6, frequency=2)
  assert fired == [2, 4, 6]
  if method == 'histogram':
    expected, current = [], np.ones(100)
    for step, value in enumerate(schedule):
      if step in fired:
        _, current = reference.magnitude_mask(np.linspace(1, 100, 100),
                                              value, 'histogram', 100)
      expected.append(int(current.sum()))
  else:
    expected = [100, 100, 80, 80, 60, 60, 40, 40, 40, 40]
  assert counts == expected


def test_default_schedule_updates_every_ten_steps():
  weights = _linspace_weight()
  pruning.apply_mask(weights)
  p = pruning.Pruning()
  update = p.conditional_mask_update_op()
  increment = tf.compat.v1.assign_add(tf.compat.v1.train.get_global_step(), 1)
  fired = []
  with _session() as sess:
    for step in range(35):
      sess.run(update)
      if sess.run(p._last_update_step) == step and step > 0:
        fired.append(step)
      sess.run(increment)
  assert fired == [10, 20, 30]
  assert fired == reference.update_steps(range(35), begin=0, end=-1,
                                           frequency=10)


@pytest.mark.parametrize('step', [0, 10, 50, 100, 1000])
def test_schedule_defaults(step):
  global_step = tf.compat.v1.train.get_global_step()
  p = pruning.Pruning()
  with _session() as sess:
    sess.run(tf.compat.v1.assign(global_step, step))
    assert sess.run(p._sparsity) == pytest.approx(
        reference.scheduled_sparsity(step, begin_step=0, end_step=100,
                                     initial=0.0, target=0.5, exponent=3.0),
        abs=1e-6)
  assert p._sparsity.op.name == 'model_pruning/sparsity'


@pytest.mark.parametrize('step,expected', [(0, 0.0), (10000, 0.0),
                                           (55000, 0.7875), (100000, 0.9),
                                           (200000, 0.9)])
def test_readme_cifar_schedule(step, expected):
  global_step = tf.compat.v1.train.get_global_step()
  p = pruning.Pruning(_hparams(
      'name=cifar10_pruning,begin_pruning_step=10000,'
      'end_pruning_step=100000,target_sparsity=0.9,'
      'sparsity_function_begin_step=10000,'
      'sparsity_function_end_step=100000'))
  with _session() as sess:
    sess.run(tf.compat.v1.assign(global_step, step))
    assert sess.run(p._sparsity) == pytest.approx(expected, abs=1e-6)


def _train_with_map(method, weight_specs, hparams_text, steps=110):
  masked = []
  for scope_name, var_name in weight_specs:
    with tf.compat.v1.variable_scope(scope_name):
      weights = tf.compat.v1.get_variable(
          var_name, initializer=np.linspace(1, 100, 100).astype(np.float32))
      masked.append(pruning.apply_mask(weights))
  p = pruning.Pruning(_hparams(hparams_text + ',threshold_method=' + method))
  update = p.conditional_mask_update_op()
  increment = tf.compat.v1.assign_add(tf.compat.v1.train.get_global_step(), 1)
  with _session() as sess:
    for _ in range(steps):
      sess.run(update)
      sess.run(increment)
    return sess.run(pruning.get_weight_sparsity())


@pytest.mark.parametrize('method', _METHODS)
def test_weight_specific_sparsity(method):
  sparsities = _train_with_map(
      method, [('layer1', 'weights'), ('layer2', 'weights'),
               ('layer3', 'kernel')],
      'begin_pruning_step=1,pruning_frequency=1,end_pruning_step=100,'
      'target_sparsity=0.5,threshold_decay=0.0,'
      'weight_sparsity_map=[layer1:0.6,layer2/weights:0.75,.*kernel:0.6]')
  if method == 'histogram':
    expected = [1 - reference.magnitude_mask(np.linspace(1, 100, 100), s,
                                             'histogram', 256)[1].mean()
                for s in (0.6, 0.75, 0.6)]
    np.testing.assert_allclose(sparsities, expected, atol=1e-6)
  else:
    np.testing.assert_allclose(sparsities, [0.6, 0.75, 0.6])


def test_per_weight_schedule_interpolates_from_initial_sparsity():
  global_step = tf.compat.v1.train.get_global_step()
  for scope in ('layer1', 'layer2'):
    with tf.compat.v1.variable_scope(scope):
      pruning.apply_mask(_linspace_weight(), scope)
  p = pruning.Pruning(_hparams(
      'initial_sparsity=0.2,target_sparsity=0.5,'
      'weight_sparsity_map=[^layer1/:0.8]'))
  scheduled = p.sparsity_tensors()
  layer1, other = scheduled['layer1/weights'][0], scheduled['layer2/weights'][0]
  with _session() as sess:
    for step in (0, 30, 100):
      sess.run(tf.compat.v1.assign(global_step, step))
      assert sess.run(layer1) == pytest.approx(
          reference.scheduled_sparsity(
              step, begin_step=0, end_step=100, initial=0.2, target=0.8,
              exponent=3.0), abs=1e-6)
      assert sess.run(other) == pytest.approx(
          reference.scheduled_sparsity(
              step, begin_step=0, end_step=100, initial=0.2, target=0.5,
              exponent=3.0), abs=1e-6)


@pytest.mark.parametrize('method', _METHODS)
def test_per_layer_block_sparsity(method):
  w1 = tf.constant([[-0.1, 0.1], [-0.2, 0.2]], name='layer1/weights')
  w2 = tf.constant([[0.1, 0.1, 0.3, 0.3], [0.2, 0.2, 0.4, 0.4]],
                   name='layer2/weights')
  with tf.compat.v1.variable_scope('layer1'):
    pruning.apply_mask(w1)
  with tf.compat.v1.variable_scope('layer2'):
    pruning.apply_mask(w2)
  p = pruning.Pruning(
      _hparams('block_dims_map=[^layer1/weights$:1x1,^layer2/weights$:1x2],'
               'block_pooling_function=AVG,threshold_decay=0.0,' +
               _method_hparams(method)),
      sparsity=_sparsity_variable(_BLOCK_SPARSITY[method]))
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    mask1, mask2 = sess.run(pruning.get_masks())
    np.testing.assert_array_equal(mask1, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(mask2, [[0, 0, 1, 1], [0, 0, 1, 1]])
    np.testing.assert_allclose(sess.run(pruning.get_weight_sparsity()),
                               [0.5, 0.5])


def test_negative_block_dims_resolved_per_weight():
  """Fix Q9: -1 resolves against each weight, not the first one seen."""
  values_a = np.tile(np.array([[1.0], [2.0], [3.0], [4.0]]), [1, 4])
  values_b = np.tile(np.array([[1.0], [2.0]]), [1, 6])
  for name, values in (('a', values_a), ('b', values_b)):
    with tf.compat.v1.variable_scope(name):
      pruning.apply_mask(tf.compat.v1.get_variable(
          'weights', initializer=values.astype(np.float32)))
  p = pruning.Pruning(_hparams('block_height=1,block_width=-1,'
                               'threshold_decay=0,threshold_method=sort'),
                      sparsity=_sparsity_variable(0.5))
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    mask_a, mask_b = sess.run(pruning.get_masks())
  np.testing.assert_array_equal(mask_a, reference.block_mask(
      values_a, 0.5, 'sort', [1, 4], 'AVG'))
  np.testing.assert_array_equal(mask_b, reference.block_mask(
      values_b, 0.5, 'sort', [1, 6], 'AVG'))


@pytest.mark.parametrize('shape', [[64, 64], [300, 200], [3, 3, 40, 50]],
                         ids=['small', 'sampled', 'conv'])
@pytest.mark.parametrize('method', _METHODS)
def test_random_weights_match_numpy_oracle(method, shape):
  rng = np.random.RandomState(sum(shape))
  values = rng.randn(*shape).astype(np.float32)
  weights = tf.compat.v1.get_variable('weights', initializer=values)
  pruning.apply_mask(weights)
  sparsity = _sparsity_variable(0.0)
  p = pruning.Pruning(_hparams('threshold_decay=0,threshold_method=' + method),
                      sparsity=sparsity)
  update = p.mask_update_op()
  with _session() as sess:
    for value in (0.1, 0.5, 0.9, 0.97):
      sess.run(tf.compat.v1.assign(sparsity, value))
      sess.run(update)
      mask = sess.run(pruning.get_masks()[0])
      if method == 'histogram':
        np.testing.assert_array_equal(
            mask, reference.magnitude_mask(values, value, 'histogram', 256)[1])
      elif method == 'sort':
        np.testing.assert_array_equal(mask, reference.magnitude_mask(
            values, value, 'sort')[1])
      else:
        assert mask.sum() == reference.keep_count(values.size, value)
        np.testing.assert_array_equal(mask, reference.magnitude_mask(
            values, value, 'sort')[1])


@pytest.mark.parametrize('dtype', [np.float16, np.float32, np.float64],
                         ids=['float16', 'float32', 'float64'])
@pytest.mark.parametrize('use_resource', [True, False],
                         ids=['resource', 'ref'])
@pytest.mark.parametrize('method', _METHODS)
def test_dtypes_and_variable_kinds(method, dtype, use_resource):
  weights = tf.compat.v1.get_variable(
      'weights', initializer=np.linspace(1, 100, 100).astype(dtype),
      use_resource=use_resource)
  masked = pruning.apply_mask(weights)
  assert pruning.get_masks()[0].dtype.base_dtype == weights.dtype.base_dtype
  p = pruning.Pruning(_hparams('threshold_decay=0,threshold_method=' + method),
                      sparsity=_sparsity_variable(0.5))
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    assert np.count_nonzero(sess.run(masked)) == 50


def test_update_ops_can_be_built_repeatedly_in_any_order():
  """Fix Q13: conditional and plain update ops coexist."""
  weights = _linspace_weight()
  masked = pruning.apply_mask(weights)
  sparsity = _sparsity_variable(0.5)
  p = pruning.Pruning(_hparams('threshold_decay=0,threshold_method=sort,'
                               'pruning_frequency=1'), sparsity=sparsity)
  conditional_a = p.conditional_mask_update_op()
  plain = p.mask_update_op()
  conditional_b = p.conditional_mask_update_op()
  plain_again = p.mask_update_op()
  increment = tf.compat.v1.assign_add(tf.compat.v1.train.get_global_step(), 1)
  with _session() as sess:
    sess.run(plain)
    assert np.count_nonzero(sess.run(masked)) == 50
    sess.run(tf.compat.v1.assign(sparsity, 0.8))
    sess.run(increment)
    sess.run(conditional_a)
    assert np.count_nonzero(sess.run(masked)) == 20
    sess.run(tf.compat.v1.assign(sparsity, 0.9))
    sess.run(increment)
    sess.run(conditional_b)
    assert np.count_nonzero(sess.run(masked)) == 10
    sess.run(tf.compat.v1.assign(sparsity, 0.7))
    sess.run(plain_again)
    assert np.count_nonzero(sess.run(masked)) == 30


def test_do_not_prune_keeps_matching_masks_dense():
  for name in ('conv1', 'conv2'):
    with tf.compat.v1.variable_scope(name):
      pruning.apply_mask(_linspace_weight())
  p = pruning.Pruning(_hparams('do_not_prune=[conv1],threshold_decay=0,'
                               'threshold_method=sort'),
                      sparsity=_sparsity_variable(0.5))
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    np.testing.assert_allclose(sess.run(pruning.get_weight_sparsity()),
                               [0.0, 0.5])


@pytest.mark.parametrize('method', _METHODS)
def test_all_zero_weights_and_full_sparsity_are_defined(method):
  zeros = tf.compat.v1.get_variable('zeros', initializer=np.zeros(
      [10, 10], np.float32))
  with tf.compat.v1.variable_scope('tiny'):
    tiny = tf.compat.v1.get_variable('weights',
                                     initializer=[1.0, 2.0, 3.0, 4.0, 5.0])
  pruning.apply_mask(zeros)
  pruning.apply_mask(tiny, 'tiny')
  p = pruning.Pruning(_hparams('threshold_decay=0,threshold_method=' + method),
                      sparsity=_sparsity_variable(0.95))
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    thresholds = sess.run(pruning.get_thresholds())
    masks = sess.run(pruning.get_masks())
  assert np.all(np.isfinite(thresholds))
  assert set(np.unique(masks[0])) <= {0.0, 1.0}
  # k = round(5 * 0.05) = 0: exact keeps none; sort keeps the largest one.
  expected_tiny = {'exact': 0, 'sort': 1,
                   'histogram': int(reference.magnitude_mask(
                       [1, 2, 3, 4, 5], 0.95, 'histogram', 256)[1].sum()),
                   }[method]
  assert masks[1].sum() == expected_tiny


def test_summaries_cover_every_weight_in_weight_mode():
  for name in ('layer1', 'layer2'):
    with tf.compat.v1.variable_scope(name):
      pruning.apply_mask(_linspace_weight(), name)
  p = pruning.Pruning()
  p.add_pruning_summaries()
  tags = sorted(op.name for op in tf.compat.v1.get_default_graph()
                .get_operations() if op.type == 'ScalarSummary')
  for layer in ('layer1', 'layer2'):
    assert any(layer + '/mask/sparsity' in tag for tag in tags)
    assert any(layer + '/mask/target_sparsity' in tag for tag in tags)
    assert any(layer + '/threshold/threshold' in tag for tag in tags)
  assert any(tag.endswith('_summaries/sparsity') for tag in tags)
  with _session() as sess:
    sess.run(tf.compat.v1.summary.merge_all())


def test_apply_mask_registers_once_under_reuse():
  for reuse in (False, True):
    with tf.compat.v1.variable_scope('cell', reuse=reuse):
      weights = tf.compat.v1.get_variable('kernel', shape=[4, 4])
      pruning.apply_mask(weights, tf.compat.v1.get_variable_scope())
  assert len(pruning.get_masks()) == 1
  assert len(pruning.get_weights()) == 1
  masked, mask = pruning.apply_mask_and_return(
      tf.compat.v1.get_variable('other', shape=[3, 2]), 'other')
  assert mask is pruning.get_masks()[1]
  assert masked is pruning.get_masked_weights()[1]


def test_mask_update_op_updates_every_mask_in_one_run():
  masked = []
  for index in range(4):
    with tf.compat.v1.variable_scope('layer%d' % index):
      masked.append(pruning.apply_mask(_linspace_weight()))
  p = pruning.Pruning(_hparams('threshold_decay=0,threshold_method=sort'),
                      sparsity=_sparsity_variable(0.7))
  update = p.mask_update_op()
  with _session() as sess:
    sess.run(update)
    assert [np.count_nonzero(v) for v in sess.run(masked)] == [30] * 4


def _fused_or_separate_run(fused):
  """Mask sparsity per step with the update fused into the train step or not."""
  weights = _linspace_weight()
  masked = pruning.apply_mask(weights)
  global_step = tf.compat.v1.train.get_global_step()
  # A 'train op' that moves the weights and advances the step.
  train_op = tf.group(tf.compat.v1.assign_add(weights, tf.ones([100]) * 0.5),
                      tf.compat.v1.assign_add(global_step, 1))
  p = pruning.Pruning(_hparams(
      'pruning_frequency=3,sparsity_function_end_step=12,target_sparsity=0.8,'
      'threshold_decay=0,threshold_method=sort'))
  if fused:
    with tf.control_dependencies([train_op]):
      step_op = p.conditional_mask_update_op()
  else:
    step_op = p.conditional_mask_update_op()
  counts = []
  with _session() as sess:
    for _ in range(15):
      if fused:
        sess.run(step_op)
      else:
        sess.run(train_op)
        sess.run(step_op)
      counts.append((sess.run(global_step), np.count_nonzero(sess.run(masked)),
                     sess.run(p._last_update_step)))
  return counts


def test_update_fused_with_train_op_sees_the_new_step():
  fused = _fused_or_separate_run(fused=True)
  assert [c[2] for c in fused if c[2] == c[0]] == [3, 6, 9, 12, 15]
  with tf.Graph().as_default():
    tf.compat.v1.train.get_or_create_global_step()
    separate = _fused_or_separate_run(fused=False)
  assert fused == separate
