"""Tests of latency_policy: prune only what XNNPACK's sparse path speeds up.

Graphs from tests/xnnpack_models.py (masked layers, a depthwise kernel under
`apply_mask`) and a bare `apply_mask` graph; the policy's plan is checked
decision by decision, then run through `Pruning` to see that only the 1x1
masks change. About 5 s.
"""
import logging

import numpy as np
import pytest
import tensorflow as tf

from model_pruning.python.xnnpack import latency_policy
from model_pruning.python import pruning
from tests import xnnpack_models

_PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]


def _plan(**knobs):
  with tf.Graph().as_default():
    xnnpack_models.build(**knobs)
    return latency_policy.plan_for_xnnpack()


def _reasons(plan):
  return {d.weight.split('/')[0]: (d.prune, d.reason) for d in plan.decisions}


def test_mobilenet_block_prunes_exactly_the_one_by_ones():
  plan = _plan()
  assert plan.pruned == ['expand/weights', 'project/weights']
  reasons = _reasons(plan)
  assert 'first 3x3 stride-2' in reasons['first'][1]
  assert 'depthwise' in reasons['depthwise'][1]
  assert 'MatMul' in reasons['head'][1]
  assert plan.do_not_prune() == ['^first/mask$', '^depthwise/mask$',
                                 '^head/mask$']


@pytest.mark.parametrize('knobs,reason', [
    (dict(end='flatten'), 'no global average pool'),
    (dict(first_padding='SAME'), 'no 3x3 stride-2 first convolution'),
], ids=['no_pool', 'same_first_conv'])
def test_one_by_ones_outside_a_structure_stay_dense(knobs, reason):
  plan = _plan(**knobs)
  assert not plan.pruned
  assert reason in _reasons(plan)['expand'][1]


def test_every_exclusion_is_logged_with_its_reason(caplog):
  with caplog.at_level(logging.INFO):
    plan = _plan()
  text = caplog.text
  for weight, reason in plan.excluded:
    assert 'leave dense %s: %s' % (weight, reason) in text
  assert 'prune expand/weights' in text


def test_apply_mask_graph_and_stride_two_one_by_one():
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3])
    net = images
    for name, shape, stride in [('first', [3, 3, 3, 8], 2),
                                ('pointwise', [1, 1, 8, 8], 1),
                                ('strided', [1, 1, 8, 8], 2)]:
      with tf.compat.v1.variable_scope(name) as scope:
        kernel = tf.compat.v1.get_variable('weights', shape)
        masked = pruning.apply_mask(kernel, scope)
      if name == 'first':
        net = tf.pad(net, _PAD1)
      net = tf.nn.conv2d(net, masked, stride, 'VALID')
    tf.reduce_mean(net, [1, 2])
    plan = latency_policy.plan_for_xnnpack()
  assert plan.pruned == ['pointwise/weights']
  assert 'stride or dilation' in _reasons(plan)['strided'][1]


def test_graph_without_masks_is_an_error():
  with tf.Graph().as_default() as graph:
    tf.constant(1.0)
    with pytest.raises(ValueError, match='no masked weights'):
      latency_policy.plan_for_xnnpack(graph)


def test_apply_to_hparams_keeps_existing_patterns():
  plan = _plan()
  hparams = pruning.get_pruning_hparams().parse(
      'do_not_prune=[^mine$],threshold_decay=0.0')
  latency_policy.apply_to_hparams(hparams, plan)
  assert hparams.do_not_prune == ['^mine$'] + plan.do_not_prune()


def test_pruning_with_the_plan_changes_only_the_one_by_one_masks():
  target = 0.8
  with tf.Graph().as_default():
    xnnpack_models.build()
    plan = latency_policy.plan_for_xnnpack()
    hparams = pruning.get_pruning_hparams().parse(
        'target_sparsity=%g,threshold_decay=0.0,begin_pruning_step=0,'
        'sparsity_function_begin_step=0,sparsity_function_end_step=1'
        % target)
    latency_policy.apply_to_hparams(hparams, plan)
    step = tf.compat.v1.train.get_or_create_global_step()
    update = pruning.Pruning(hparams, global_step=step).mask_update_op()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(step.assign(10))
      sess.run(update)
      masks = {m.op.name.split('/')[0]: sess.run(m)
               for m in pruning.get_masks()}
  for scope, mask in masks.items():
    zeros = float(np.mean(mask == 0))
    if scope in xnnpack_models.ONE_BY_ONE:
      # The histogram threshold has 256 bins: within a few bins of target.
      assert abs(zeros - target) < 0.03, (scope, zeros)
    else:
      assert zeros == 0.0, scope
