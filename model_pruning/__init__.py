"""model_pruning: graph-mode weight pruning for TensorFlow (tf.compat.v1).

Drop-in for `tensorflow.contrib.model_pruning`: the names below are contrib's
public API (docs/upstream.md) plus the pruning parts of google-research's
continuation and this library's extensions (N:M sparsity, hooks).
"""
from model_pruning.python.hparam import HParams
from model_pruning.python.layers.core_layers import MaskedConv1D
from model_pruning.python.layers.core_layers import MaskedConv2D
from model_pruning.python.layers.core_layers import MaskedConv3D
from model_pruning.python.layers.core_layers import MaskedFullyConnected
from model_pruning.python.layers.layers import masked_conv2d
from model_pruning.python.layers.layers import masked_convolution
from model_pruning.python.layers.layers import masked_fully_connected
from model_pruning.python.layers.rnn_cells import LSTMStateTuple
from model_pruning.python.layers.rnn_cells import MaskedBasicLSTMCell
from model_pruning.python.layers.rnn_cells import MaskedLSTMCell
from model_pruning.python.layers.rnn_cells import MultiRNNCell
from model_pruning.python.learning import train
from model_pruning.python.nm_sparsity import count_m_by_n_violations
from model_pruning.python.nm_sparsity import m_by_n_mask
from model_pruning.python.pruning import apply_mask
from model_pruning.python.pruning import apply_mask_and_return
from model_pruning.python.pruning import apply_mask_with_group
from model_pruning.python.pruning import get_gradients
from model_pruning.python.pruning import get_masked_weights
from model_pruning.python.pruning import get_masks
from model_pruning.python.pruning import get_old_old_weights
from model_pruning.python.pruning import get_old_weights
from model_pruning.python.pruning import get_pruning_hparams
from model_pruning.python.pruning import get_thresholds
from model_pruning.python.pruning import get_weight_sparsity
from model_pruning.python.pruning import get_weights
from model_pruning.python.pruning import Pruning
from model_pruning.python.pruning_hook import ModelPruningHook
from model_pruning.python.pruning_hook import ModelPruningListener
from model_pruning.python.pruning_hook import PruningHook
from model_pruning.python.strip_pruning_vars_lib import graph_def_from_checkpoint
from model_pruning.python.strip_pruning_vars_lib import strip_pruning_vars_fn

__all__ = [
    # tf.contrib.model_pruning's whitelist.
    'masked_convolution',
    'masked_conv2d',
    'masked_fully_connected',
    'MaskedBasicLSTMCell',
    'MaskedLSTMCell',
    'train',
    'apply_mask',
    'get_masked_weights',
    'get_masks',
    'get_pruning_hparams',
    'get_thresholds',
    'get_weights',
    'get_weight_sparsity',
    'Pruning',
    'strip_pruning_vars_fn',
    'graph_def_from_checkpoint',
    # google-research's pruning names.
    'ModelPruningHook',
    'ModelPruningListener',
    'apply_mask_and_return',
    'apply_mask_with_group',
    'get_gradients',
    'get_old_weights',
    'get_old_old_weights',
    # This library's additions.
    'HParams',
    'LSTMStateTuple',
    'MaskedConv1D',
    'MaskedConv2D',
    'MaskedConv3D',
    'MaskedFullyConnected',
    'MultiRNNCell',
    'PruningHook',
    'count_m_by_n_violations',
    'm_by_n_mask',
]
