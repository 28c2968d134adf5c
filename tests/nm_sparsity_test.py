"""Tests for nm_sparsity: N:M masks against a numpy oracle, parsing, checks."""
import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python import nm_sparsity
from tests import reference

# (shape, m, n): every supported rank, depths (axis -2) that are and are not
# multiples of n, depth below n, and a depth of one full group.
_MASK_CASES = [
    ((8, 3), 2, 4, 'dense_8x3_2of4'),
    ((10, 4), 2, 4, 'dense_depth10_partial'),
    ((9, 5), 1, 4, 'dense_depth9_1of4'),
    ((16, 2), 4, 8, 'dense_4of8'),
    ((3, 6), 2, 4, 'dense_depth_below_n'),
    ((7, 4), 1, 2, 'dense_1of2_odd'),
    ((12, 3), 3, 4, 'lstm_like_3of4'),
    ((3, 8, 2), 2, 4, 'conv1d'),
    ((2, 7, 3), 2, 4, 'conv1d_partial'),
    ((2, 2, 8, 3), 2, 4, 'conv2d'),
    ((3, 1, 6, 2), 2, 4, 'conv2d_partial'),
    ((1, 1, 13, 2), 4, 8, 'conv2d_1x1_4of8_partial'),
    ((2, 1, 2, 8, 2), 2, 4, 'conv3d'),
    ((1, 2, 2, 9, 3), 2, 4, 'conv3d_partial'),
]


def _run_mask(weights, m, n, saliency=None):
  with tf.Graph().as_default():
    mask = nm_sparsity.m_by_n_mask(
        tf.constant(weights), m=m, n=n,
        saliency=None if saliency is None else tf.constant(saliency))
    with tf.compat.v1.Session() as sess:
      return sess.run(mask)


def _expected_survivors(depth, m, n, outer):
  """min(m, group size) per group, summed over all groups of one layout."""
  sizes = [min(n, depth - start) for start in range(0, depth, n)]
  return outer * sum(min(m, size) for size in sizes)


@pytest.mark.parametrize('shape,m,n', [c[:3] for c in _MASK_CASES],
                         ids=[c[3] for c in _MASK_CASES])
def test_mask_matches_oracle(shape, m, n):
  weights = np.random.RandomState(7).randn(*shape).astype(np.float32)
  mask = _run_mask(weights, m, n)
  np.testing.assert_array_equal(mask,
                                reference.m_by_n_mask(weights, m, n))
  assert mask.dtype == np.float32 and mask.shape == shape
  outer = int(np.prod(shape)) // shape[-2]
  assert mask.sum() == _expected_survivors(shape[-2], m, n, outer)
  assert reference.nonzeros_per_group(mask * weights, n).max() <= m


@pytest.mark.parametrize('dtype', [np.float16, np.float64, tf.bfloat16.as_numpy_dtype],
                         ids=['float16', 'float64', 'bfloat16'])
def test_mask_dtype_follows_weights(dtype):
  weights = np.random.RandomState(1).randn(2, 2, 8, 3).astype(dtype)
  mask = _run_mask(weights, 2, 4)
  assert mask.dtype == dtype
  np.testing.assert_array_equal(
      mask.astype(np.float32),
      reference.m_by_n_mask(weights.astype(np.float32), 2, 4))


@pytest.mark.parametrize('shape,m,n', [
    ((8, 3), 2, 4), ((6, 2), 2, 4), ((2, 2, 10, 2), 3, 4)],
    ids=['dense_all_equal', 'dense_partial_all_equal', 'conv_all_equal'])
def test_ties_keep_lower_input_index(shape, m, n):
  weights = np.full(shape, -0.5, np.float32)
  mask = _run_mask(weights, m, n)
  depth = shape[-2]
  first_m = np.array([(i % n) < m for i in range(depth)], np.float32)
  expected = np.broadcast_to(first_m[:, None], shape)
  np.testing.assert_array_equal(mask, expected)


def test_ties_mixed_with_distinct_values_match_oracle():
  # Rounded normals: many ties (and zeros), both signs.
  weights = np.round(np.random.RandomState(3).randn(3, 3, 11, 4)).astype(
      np.float32)
  np.testing.assert_array_equal(_run_mask(weights, 2, 4),
                                reference.m_by_n_mask(weights, 2, 4))


def test_saliency_ranks_instead_of_magnitude():
  rng = np.random.RandomState(5)
  weights = rng.randn(12, 5).astype(np.float32)
  saliency = rng.rand(12, 5).astype(np.float32)
  mask = _run_mask(weights, 2, 4, saliency=saliency)
  np.testing.assert_array_equal(
      mask, reference.m_by_n_mask(weights, 2, 4, saliency=saliency))
  assert not np.array_equal(mask, reference.m_by_n_mask(weights, 2, 4))


def test_unknown_dims_at_graph_build_time():
  weights = np.random.RandomState(2).randn(3, 10, 4).astype(np.float32)
  with tf.Graph().as_default():
    ph = tf.compat.v1.placeholder(tf.float32, shape=[None, None, None])
    mask = nm_sparsity.m_by_n_mask(ph, m=2, n=4)
    with tf.compat.v1.Session() as sess:
      got = sess.run(mask, feed_dict={ph: weights})
  np.testing.assert_array_equal(got, reference.m_by_n_mask(weights, 2, 4))


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(
    rank=st.integers(2, 5), depth=st.integers(1, 13), out=st.integers(1, 3),
    pattern=st.sampled_from([(1, 2), (1, 4), (2, 4), (3, 4), (2, 8)]),
    seed=st.integers(0, 2**16), quantize=st.booleans())
def test_random_layouts_match_oracle(rank, depth, out, pattern, seed,
                                     quantize):
  rng = np.random.RandomState(seed)
  shape = tuple(rng.randint(1, 3, size=rank - 2)) + (depth, out)
  weights = rng.randn(*shape).astype(np.float32)
  if quantize:
    weights = np.round(weights * 2)
  m, n = pattern
  np.testing.assert_array_equal(_run_mask(weights, m, n),
                                reference.m_by_n_mask(weights, m, n))


@pytest.mark.parametrize('shape', [(8,), (1, 1, 1, 1, 8, 2)],
                         ids=['rank1_bias', 'rank6'])
def test_mask_rejects_unsupported_rank(shape):
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='rank %d' % len(shape)):
      nm_sparsity.m_by_n_mask(tf.zeros(shape), m=2, n=4)


@pytest.mark.parametrize('m,n', [(4, 4), (0, 4), (5, 4)],
                         ids=['m_eq_n', 'm_zero', 'm_gt_n'])
def test_mask_rejects_bad_pattern(m, n):
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='0 < M < N'):
      nm_sparsity.m_by_n_mask(tf.zeros([8, 2]), m=m, n=n)


@pytest.mark.parametrize('text,expected', [
    ('2:4', (2, 4)), ('2,4', (2, 4)), (' 1 : 8 ', (1, 8)), ((3, 4), (3, 4))],
    ids=['colon', 'comma', 'spaces', 'tuple'])
def test_parse_m_by_n_accepts(text, expected):
  assert nm_sparsity.parse_m_by_n(text) == expected


@pytest.mark.parametrize('text,message', [
    ('4:2', "got '4:2'"), ('0:4', "got '0:4'"), ('2:2', "got '2:2'"),
    ('a:b', "got 'a:b'"), ('2-4', "got '2-4'"), ('', "got ''"),
    ('2:4:8', "got '2:4:8'"), (None, 'got None'), ((2.0, 4), 'two integers')],
    ids=['reversed', 'zero_m', 'equal', 'letters', 'dash', 'empty',
         'three_parts', 'none', 'float_tuple'])
def test_parse_m_by_n_rejects_naming_the_value(text, message):
  with pytest.raises(ValueError, match=message):
    nm_sparsity.parse_m_by_n(text)


@pytest.mark.parametrize('shape,n,expected', [
    ([16, 8], 4, True), ([4, 8], 4, True), ([3, 8], 4, True),
    ([1, 8], 2, False), ([3, 3, 16, 8], 4, True), ([3, 3, 1, 16], 4, False),
    ([5, 8, 2], 4, True), ([2, 2, 2, 8, 4], 4, True), ([16], 4, False),
    ([1, 1, 1, 1, 8, 2], 4, False), ([None, 8], 4, False),
    (tf.TensorShape([3, 3, 8, None]), 4, True), (tf.TensorShape(None), 4, False)],
    ids=['dense', 'dense_one_group', 'dense_shallow', 'one_input_channel',
         'conv2d', 'conv2d_one_channel', 'conv1d', 'conv3d', 'bias', 'rank6',
         'unknown_depth', 'unknown_out', 'unknown_rank'])
def test_can_apply_m_by_n(shape, n, expected):
  assert nm_sparsity.can_apply_m_by_n(shape, n) is expected


@pytest.mark.parametrize('shape,axis', [
    ((10, 3), -2), ((2, 2, 9, 3), -2), ((3, 2, 2, 10), -1)],
    ids=['dense', 'conv_partial', 'tflite_layout_last_axis'])
def test_count_violations_matches_group_counts(shape, axis):
  rng = np.random.RandomState(11)
  array = rng.randn(*shape) * (rng.rand(*shape) < 0.6)
  counts = reference.nonzeros_per_group(array, 4, axis=axis)
  assert nm_sparsity.count_m_by_n_violations(array, 2, 4, axis=axis) == (
      counts.size, int((counts > 2).sum()))


def test_count_violations_accepts_oracle_mask_and_counts_broken_groups():
  weights = np.random.RandomState(4).randn(3, 3, 8, 5).astype(np.float32)
  pruned = weights * reference.m_by_n_mask(weights, 2, 4)
  num_groups = 3 * 3 * 2 * 5
  assert nm_sparsity.count_m_by_n_violations(pruned, 2, 4) == (num_groups, 0)
  broken = pruned.copy()
  broken[0, 0, 0:4, 0] = 1.0   # one group with 4 non-zeros
  broken[1, 2, 4:7, 3] = 1.0   # another with 3
  assert nm_sparsity.count_m_by_n_violations(broken, 2, 4) == (num_groups, 2)


def test_count_violations_rejects_rank1():
  with pytest.raises(ValueError, match=r'rank >= 2, got shape \(8,\)'):
    nm_sparsity.count_m_by_n_violations(np.ones(8), 2, 4)
