"""Bad hparams and bad weights fail at construction with a clear message."""
import pytest
import tensorflow as tf

from model_pruning.python import pruning
from model_pruning.python import pruning_schedule
from model_pruning.python import pruning_spec
from tests import reference


@pytest.fixture(autouse=True)
def _fresh_graph():
  with tf.Graph().as_default() as graph:
    tf.compat.v1.train.get_or_create_global_step()
    yield graph


def _build(text):
  return pruning.Pruning(pruning.get_pruning_hparams().parse(text))


@pytest.mark.parametrize('text,message', [
    ('target_sparsty=0.5', r"Unknown hyperparameter.*target_sparsity"),
    ('pruning_frequency=0.5', r"Could not parse.*pruning_frequency"),
    ('weight_sparsity_map=conv1:0.9', r'Must pass a list'),
    ('target_sparsity=1.5', r'target_sparsity must be in \[0, 1\), got 1.5'),
    ('target_sparsity=-0.1', r'target_sparsity must be in'),
    ('initial_sparsity=1.0', r'initial_sparsity must be in'),
    ('threshold_decay=1.0', r'threshold_decay must be in'),
    ('begin_pruning_step=-1', r'begin_pruning_step'),
    ('begin_pruning_step=10,end_pruning_step=5', r'end_pruning_step=-1'),
    ('sparsity_function_begin_step=100,sparsity_function_end_step=100',
     r'Sparsity function requires begin_step < end_step'),
    ('sparsity_function_begin_step=-3', r'sparsity_function_begin_step'),
    ('pruning_frequency=0', r'pruning_frequency must be >= 1'),
    ('nbins=0', r'nbins must be >= 1'),
    ('threshold_method=sorted', r"threshold_method.*did you mean 'sort'"),
    ('prune_option=gradient', r'prune_option must be one of'),
    ('block_pooling_function=MEAN', r'block_pooling_function'),
    ('block_height=0', r'positive or -1'),
    ('weight_sparsity_map=[conv1]', r'Malformed weight_sparsity_map entry'),
    ('weight_sparsity_map=[conv1:high]', r'must be a number'),
    ('weight_sparsity_map=[conv1:1.0]', r'Weight sparsity can not exceed 1.0'),
    ('weight_sparsity_map=[conv(1:0.5]', r'Invalid regular expression'),
    ('block_dims_map=[dense1:4]', r'Expected 2 values for block dim'),
    ('block_dims_map=[dense1:4xa]', r'must be integers'),
    ('sparsity_m_by_n=4:2', r'0 < M < N'),
    ('sparsity_m_by_n=two', r'M:N'),
    ('m_by_n_map=[conv2:2]', r'Malformed m_by_n_map entry'),
    ('group_sparsity_map=[g1:2.0]', r'Weight sparsity can not exceed'),
    ('target_sparsity=0.0,weight_sparsity_map=[conv1:0.5]',
     r'needs target_sparsity > 0'),
], ids=lambda value: value if value.count('=') else None)
def test_bad_hparams_fail_with_a_clear_message(text, message):
  with pytest.raises(ValueError, match=message):
    _build(text)


def test_unknown_hparam_lists_valid_names():
  with pytest.raises(ValueError) as error:
    _build('blok_height=2')
  assert 'block_height' in str(error.value)


def test_several_map_entries_matching_one_weight():
  weights = tf.compat.v1.get_variable('conv1/weights', shape=[4, 4])
  pruning.apply_mask(weights, 'conv1')
  with pytest.raises(ValueError, match=r"Multiple matches in "
                     r"weight_sparsity_map for weight conv1/weights"):
    _build('weight_sparsity_map=[conv:0.5,conv1:0.7]')


def test_weight_without_static_shape_is_refused():
  placeholder = tf.compat.v1.placeholder(tf.float32, shape=[None, 4],
                                         name='dynamic')
  with pytest.raises(ValueError, match=r'fully defined static shape.*dynamic'):
    pruning.apply_mask(placeholder)


@pytest.mark.parametrize('shape,message', [([], 'scalar'),
                                           ([0, 4], 'no elements')],
                         ids=['scalar', 'empty'])
def test_scalar_and_empty_weights_are_refused(shape, message):
  weights = tf.compat.v1.get_variable('w', shape=shape)
  with pytest.raises(ValueError, match=message):
    pruning.apply_mask(weights)


def test_missing_global_step():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='Could not get the global step'):
      pruning.Pruning()


@pytest.mark.parametrize('step', [0, 10, 37, 50, 100, 150])
def test_python_schedule_matches_reference(step):
  hparams = pruning_spec.default_hparams().parse(
      'initial_sparsity=0.1,target_sparsity=0.7,'
      'weight_sparsity_map=[^big/:0.9]')
  assert pruning_spec.scheduled_sparsity(step, hparams) == pytest.approx(
      reference.scheduled_sparsity(step, begin_step=0, end_step=100,
                                   initial=0.1, target=0.7, exponent=3.0))
  assert pruning_spec.scheduled_sparsity(
      step, hparams, 'big/weights') == pytest.approx(
          reference.scheduled_sparsity(step, begin_step=0, end_step=100,
                                       initial=0.1, target=0.9,
                                       exponent=3.0))


def test_python_update_steps_match_reference():
  hparams = pruning_spec.default_hparams().parse(
      'pruning_frequency=2,begin_pruning_step=1,end_pruning_step=6')
  schedule = pruning_schedule.Schedule.from_hparams(hparams)
  fired, last = [], 0
  for step in range(10):
    if schedule.is_update_step(step, last):
      fired.append(step)
      last = step
  assert fired == reference.update_steps(range(10), begin=1, end=6,
                                         frequency=2)
