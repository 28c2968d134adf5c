"""model_pruning: graph-mode weight pruning for TensorFlow (tf.compat.v1).

Drop-in for `tensorflow.contrib.model_pruning`: the names below are contrib's
public API plus the pruning parts of google-research's continuation.
"""
from model_pruning.python.hparam import HParams
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

__all__ = [
    'HParams',
    'Pruning',
    'apply_mask',
    'apply_mask_and_return',
    'apply_mask_with_group',
    'get_gradients',
    'get_masked_weights',
    'get_masks',
    'get_old_old_weights',
    'get_old_weights',
    'get_pruning_hparams',
    'get_thresholds',
    'get_weight_sparsity',
    'get_weights',
]
