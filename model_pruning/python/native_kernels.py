"""The fused mask-update kernels (native/pruning_kernels.cc), when available.

`available()` says whether the kernels are loaded; `kth_largest`,
`mask_update`, `m_by_n_mask`, `pool_blocks` and `expand_blocks` (with
their in-place variants) wrap the ops. Where to find the library, in order:

1. $MODEL_PRUNING_NATIVE=0 turns them off: the TensorFlow-op pipeline runs
   (same answers, slower; docs/native_kernels.md).
2. A library built beside this module (the Bazel genrule puts it there).
3. A cache, $MODEL_PRUNING_CACHE_DIR or ~/.cache/model_pruning, keyed by
   `native_build.build_key` (source, TensorFlow build, compiler): built
   there on first use, under a file lock so that concurrent processes
   build it once.

Without a compiler, or when the build fails, the kernels are off with one
warning that says why. The ops are registered as soon as this module is
imported, so a training graph that holds them can be imported again
(`import_meta_graph`, `strip_pruning_vars`) in any process that imports
model_pruning.
"""
import collections
import contextlib
import ctypes
import os
import platform
import subprocess

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # Not POSIX: no lock; a build still lands atomically.
  fcntl = None

from absl import logging
import tensorflow as tf

from model_pruning.python import native_build

# Weight dtypes the kernels read directly; others are cast to float32 first.
NATIVE_DTYPES = (tf.float32, tf.float64)
# AVG pooling rounds as TensorFlow's reduce_mean only where that adds a
# block's cells one by one: blocks narrower and shorter than Eigen's vector
# of the dtype (8 float32 or 4 float64 lanes in TensorFlow's x86-64 builds;
# wider blocks are summed lane-wise, in an order the kernel does not copy).
_AVG_POOL_MAX_SIDE = {tf.float32: 7, tf.float64: 3}
_X86_64 = ('x86_64', 'amd64')
_ENV_SWITCH = 'MODEL_PRUNING_NATIVE'
_ENV_CACHE = 'MODEL_PRUNING_CACHE_DIR'

_library = None
_library_path = None
_load_error = None
_enabled = True


def _cache_dir():
  return os.environ.get(_ENV_CACHE) or os.path.join(
      os.path.expanduser('~'), '.cache', 'model_pruning')


def _built_beside():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      native_build.LIBRARY_NAME)
  return path if os.path.exists(path) else None


def _cached_build():
  """The cached library's path, building it first when missing."""
  directory = os.path.join(_cache_dir(), 'native', native_build.build_key())
  path = os.path.join(directory, native_build.LIBRARY_NAME)
  if os.path.exists(path):
    return path
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, 'build.lock'), 'w') as lock:
    if fcntl is not None:
      fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(path):  # Another process may have built it.
      logging.info('Building model_pruning\'s kernels into %s (once).', path)
      native_build.build(path)
  return path


def load():
  """Loads the kernels once; returns the op module, or None (and why, in
  `load_error()`)."""
  global _library, _library_path, _load_error
  if _library is not None or _load_error is not None:
    return _library
  if os.environ.get(_ENV_SWITCH, '1') == '0':
    _load_error = '%s=0' % _ENV_SWITCH
    return None
  try:
    path = _built_beside() or _cached_build()
    _library = tf.load_op_library(path)
    _library_path = path
  except (OSError, RuntimeError, tf.errors.OpError,
          subprocess.TimeoutExpired) as error:
    _load_error = str(error)
    logging.warning(
        'model_pruning runs its mask updates with TensorFlow ops (slower, '
        'same masks): the native kernels are unavailable: %s. Install g++ '
        '(or set CXX) to build them, or set %s=0 to silence this.', error,
        _ENV_SWITCH)
  return _library


def load_error():
  """Why the kernels are unavailable, or None."""
  return _load_error


def available():
  """Whether graphs built now use the kernels."""
  return _enabled and load() is not None


def pipeline():
  """'native' or 'tf_ops': what builds mask updates now (for reports)."""
  return 'native' if available() else 'tf_ops'


def vector_isa():
  """The instructions the kernels' passes run on now: 'avx2' (8 lanes, where
  the CPU has it), 'sse2' (4 lanes; also with $MODEL_PRUNING_NATIVE_ISA=sse2)
  or 'scalar'; None without the kernels."""
  if load() is None:
    return None
  function = ctypes.CDLL(_library_path).ModelPruningVectorIsa
  function.restype = ctypes.c_char_p
  return function().decode('ascii')


@contextlib.contextmanager
def disabled():
  """Builds graphs with the TensorFlow-op pipeline inside the block."""
  global _enabled
  was = _enabled
  _enabled = False
  try:
    yield
  finally:
    _enabled = was


def kth_largest(values, k, take_abs):
  """(kth, count_above, count_at, max) of the cleaned (|)values(|), any
  shape, in one pass; k (int32, clamped to [1, N]) counts from the top.

  Cleaned: NaN as 0, values above the dtype's largest finite as it.
  """
  return load().model_pruning_kth_largest(values, k, take_abs=take_abs)


# ModelPruningMaskUpdate's outputs: `k` is the count exact keeps, else the
# rank of the selected k-th largest.
MaskUpdate = collections.namedtuple(
    'MaskUpdate', ['threshold', 'mask', 'kth', 'count_above', 'count_at',
                   'max_value', 'k'])


def _update_inputs(values, sparsity, previous_threshold, decay):
  """The mask-update ops' scalar inputs: sparsity (float32), the previous
  threshold and smoothing = (1 - decay, decay) in the values' dtype."""
  dtype = values.dtype
  if previous_threshold is None:
    previous_threshold = 0.0
  smoothing = tf.constant([1.0 - decay, decay] if decay else [1.0, 0.0],
                          dtype)
  return (tf.cast(sparsity, tf.float32), tf.cast(previous_threshold, dtype),
          smoothing)


def mask_update(values, sparsity, previous_threshold, method, nbins, decay,
                take_abs):
  """One weight's whole update (rank, k-th selection, threshold, float32
  mask) in one op, by thresholds.py's rules for `method` ('histogram',
  'sort', 'exact'); `decay` smooths with `previous_threshold` as
  saliency_masks._smooth does (exact ignores both)."""
  return MaskUpdate(*load().model_pruning_mask_update(
      values, *_update_inputs(values, sparsity, previous_threshold, decay),
      method=method, nbins=nbins, take_abs=take_abs))


def mask_update_in_place(values, mask, sparsity, previous_threshold, method,
                         nbins, decay, take_abs):
  """`mask_update` writing the mask into `mask` (a float32 resource variable
  of the values' shape) under its lock, in the variable's own buffer when no
  read of it is alive: no new buffer per update, none freed. Returns the
  op's outputs as a MaskUpdate whose `mask` is None; run `threshold` (or
  its op) to update."""
  threshold, *rest = load().model_pruning_mask_update_in_place(
      values, *_update_inputs(values, sparsity, previous_threshold, decay),
      mask.handle, method=method, nbins=nbins, take_abs=take_abs)
  return MaskUpdate(threshold, None, *rest)


def pools_blocks(dtype, block_dims, pooling):
  """Whether `pool_blocks` gives TensorFlow's pool_blocks bit for bit for
  a matrix of `dtype` in blocks of `block_dims` ([height, width], resolved)."""
  if not available() or dtype not in NATIVE_DTYPES:
    return False
  if pooling == 'MAX':
    return True  # A maximum does not depend on the order.
  return (platform.machine().lower() in _X86_64 and
          max(block_dims) <= _AVG_POOL_MAX_SIDE[dtype])


def pool_blocks(values, block_dims, pooling):
  """pruning_utils.pool_blocks of |values| (a float32/64 matrix) in one pass;
  check `pools_blocks` first."""
  return load().model_pruning_pool_blocks(
      values, block_height=block_dims[0], block_width=block_dims[1],
      pooling=pooling)


def expand_blocks(block_mask, block_dims, shape):
  """The float32 mask of `shape` ([height, width]) repeating each value of
  `block_mask` over its block (pruning_utils.expand_tensor, cropped)."""
  return load().model_pruning_expand_blocks(
      tf.cast(block_mask, tf.float32), block_height=block_dims[0],
      block_width=block_dims[1], height=shape[0], width=shape[1])


def expand_blocks_in_place(block_mask, block_dims, mask, shape):
  """`expand_blocks` writing into `mask` (a float32 resource variable whose
  shape squeezes to `shape`) under its lock, in the variable's own buffer
  when no read of it is alive. Returns the op."""
  return load().model_pruning_expand_blocks_in_place(
      tf.cast(block_mask, tf.float32), mask.handle,
      block_height=block_dims[0], block_width=block_dims[1],
      height=shape[0], width=shape[1])


def m_by_n_mask(scores, m, n, take_abs):
  """float32 N:M mask of `scores` (rank >= 2, groups along axis -2), by
  nm_sparsity.m_by_n_mask's rule, in one pass; m and n are Python ints."""
  return load().model_pruning_m_by_n_mask(scores, m=m, n=n,
                                          take_abs=take_abs)


def m_by_n_mask_in_place(scores, m, n, mask, take_abs):
  """`m_by_n_mask` writing into `mask` (a float32 resource variable of the
  scores' shape) under its lock, in the variable's own buffer when no read
  of it is alive; m is an int32 tensor (m >= n keeps every weight), n a
  Python int. Returns the op."""
  return load().model_pruning_m_by_n_mask_in_place(
      scores, tf.cast(m, tf.int32), mask.handle, n=n, take_abs=take_abs)


load()
