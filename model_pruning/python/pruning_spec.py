"""Pruning hparams: defaults, validation, and each weight's settings.

`get_pruning_hparams()` (in pruning.py) returns `default_hparams()`;
`PruningPlan` parses the maps once (with `hparam_maps`) and says how each
weight is pruned. Everything here runs when a `Pruning` object is built, so a
typo in an hparam string fails at once with a message that names the hparam,
the value and the fix, not after a day of training. The schedule's own
hparams are checked by `pruning_schedule.Schedule`.
"""
import collections
import difflib

from model_pruning.python import hparam
from model_pruning.python import pruning_schedule
# The parsers, importable from here as before.
# pylint: disable=unused-import
from model_pruning.python.hparam_maps import check_block_dims
from model_pruning.python.hparam_maps import do_not_prune_patterns
from model_pruning.python.hparam_maps import lookup_map
from model_pruning.python.hparam_maps import MapEntry
from model_pruning.python.hparam_maps import parse_block_dims
from model_pruning.python.hparam_maps import parse_block_dims_map
from model_pruning.python.hparam_maps import parse_group_map
from model_pruning.python.hparam_maps import parse_group_sparsity
from model_pruning.python.hparam_maps import parse_m_by_n
from model_pruning.python.hparam_maps import parse_m_by_n_map
from model_pruning.python.hparam_maps import parse_sparsity_map
# pylint: enable=unused-import

THRESHOLD_METHODS = ('histogram', 'sort', 'exact')
PRUNE_OPTIONS = ('weight', 'first_order_gradient', 'second_order_gradient')
POOLING_FUNCTIONS = ('AVG', 'MAX')

# Hparams read only by google-research's graph_compression library. Accepted so
# that google-research hparam strings parse unchanged; `Pruning` ignores them.
COMPRESSION_PASS_THROUGH = collections.OrderedDict([
    ('alpha_decrement_value', 0.01),
    ('begin_compression_step', 0),
    ('end_compression_step', -1),
    ('compression_frequency', 10),
    ('compression_option', 0),
    ('rank', 7),
    ('block_size', 1),
    ('update_option', 0),
    ('run_update_interval_check', 1),
    ('pruning_fraction', 0.4),
    ('use_collection', False),
    ('do_transpose', False),
    ('compress_input', True),
    ('input_compression_factor', 1),
    ('input_block_size', 1),
    ('compress_output', False),
    ('output_compression_factor', 1),
    ('output_block_size', 1),
    ('block_method', 'loop'),
    ('block_compression_factor', 1),
    ('compression_factor', 1),
    ('num_bases', 1),
    ('add_summary', True),
])


def default_hparams():
  """Returns a fresh HParams with every pruning hparam at its default.

  The defaults are the documented contrib table (docs/upstream.md); see the
  README for the meaning of each.
  """
  return hparam.HParams(
      name='model_pruning',
      begin_pruning_step=0,
      end_pruning_step=-1,
      weight_sparsity_map=[''],
      block_dims_map=[''],
      do_not_prune=[''],
      threshold_decay=0.0,
      threshold_method='histogram',
      seed=-1,
      pruning_frequency=10,
      nbins=256,
      block_height=1,
      block_width=1,
      block_pooling_function='AVG',
      initial_sparsity=0.0,
      target_sparsity=0.5,
      sparsity_function_begin_step=0,
      sparsity_function_end_step=100,
      sparsity_function_exponent=3.0,
      use_tpu=False,
      sparsity_m_by_n='',
      m_by_n_map=[''],
      prune_option='weight',
      gradient_decay_rate=0.99,
      group_pruning=False,
      group_sparsity_map=[''],
      group_block_dims_map=[''],
      intra_block_sparsity=False,
      **COMPRESSION_PASS_THROUGH)


def as_full_spec(spec=None):
  """A pruning HParams holding every default hparam, from any accepted form.

  Args:
    spec: None (all defaults); a dict of hparams (e.g. decoded from the JSON a
      graph stores); or an HParams, returned as is when it already has every
      default hparam, else copied with the missing ones added (extra hparams,
      such as google-research's compression ones, are kept).

  Returns:
    An HParams. google-research's `_normalize_spec` mutated the caller's
    object; this never does.
  """
  if spec is None:
    return default_hparams()
  values = spec if isinstance(spec, dict) else spec.values()
  merged = default_hparams()
  if not isinstance(spec, dict) and all(name in values
                                        for name in merged.values()):
    return spec
  for name, value in values.items():
    if name in merged:
      merged.set_hparam(name, value)
    else:
      merged.add_hparam(name, value)
  return merged


def _check_range(name, value, low, high, high_inclusive=False):
  ok = low <= value <= high if high_inclusive else low <= value < high
  if not ok:
    bracket = ']' if high_inclusive else ')'
    raise ValueError('%s must be in [%g, %g%s, got %r' %
                     (name, low, high, bracket, value))


def _check_choice(name, value, choices):
  if value not in choices:
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = ' (did you mean %r?)' % close[0] if close else ''
    raise ValueError('%s must be one of %s, got %r%s' %
                     (name, ', '.join(repr(c) for c in choices), value, hint))


def validate_spec(spec):
  """Raises ValueError naming the hparam, the value and the fix.

  The schedule's own hparams are checked by `pruning_schedule.Schedule`; the
  maps by `PruningPlan`.
  """
  pruning_schedule.Schedule.from_hparams(spec)
  _check_range('threshold_decay', spec.threshold_decay, 0.0, 1.0)
  _check_range('gradient_decay_rate', spec.gradient_decay_rate, 0.0, 1.0,
               high_inclusive=True)
  if spec.nbins < 1:
    raise ValueError('nbins must be >= 1, got %d' % spec.nbins)
  _check_choice('threshold_method', spec.threshold_method, THRESHOLD_METHODS)
  _check_choice('prune_option', spec.prune_option, PRUNE_OPTIONS)
  _check_choice('block_pooling_function', spec.block_pooling_function,
                POOLING_FUNCTIONS)
  check_block_dims('block_height/block_width',
                    [spec.block_height, spec.block_width])
  PruningPlan(spec)


# How one weight is pruned. `target` is its own final sparsity (None: the
# global target_sparsity); `block_dims` [h, w] (-1 = whole dimension);
# `m_by_n` an (M, N) pair or None; `excluded` when do_not_prune matches.
WeightSettings = collections.namedtuple(
    'WeightSettings', ['target', 'block_dims', 'm_by_n', 'excluded'])


class PruningPlan:
  """Every per-weight and per-group map of a spec, parsed once.

  `for_weight` is the one place a weight's name is matched against
  `weight_sparsity_map`, `block_dims_map`, `m_by_n_map` and `do_not_prune`.
  """

  def __init__(self, spec):
    self._spec = spec
    self._sparsity_map = parse_sparsity_map(spec.weight_sparsity_map)
    self._block_dims_map = parse_block_dims_map(spec.block_dims_map)
    self._m_by_n_map = parse_m_by_n_map(spec.m_by_n_map)
    self._m_by_n = (parse_m_by_n(spec.sparsity_m_by_n, 'sparsity_m_by_n')
                    if spec.sparsity_m_by_n else None)
    self._do_not_prune = do_not_prune_patterns(spec)
    self.group_targets = parse_group_map(
        spec.group_sparsity_map, parse_group_sparsity, 'group_sparsity_map')
    self.group_block_dims = parse_group_map(
        spec.group_block_dims_map,
        lambda text, entry: parse_block_dims(text, 'group_block_dims_map',
                                             entry), 'group_block_dims_map')
    if self._sparsity_map and spec.target_sparsity == 0.0:
      raise ValueError(
          'weight_sparsity_map needs target_sparsity > 0: per-weight targets '
          'are scaled against it. Set target_sparsity to the default target.')

  @property
  def sparsity_map_patterns(self):
    return [entry.pattern for entry in self._sparsity_map]

  @property
  def block_dims_map_values(self):
    return [entry.value for entry in self._block_dims_map]

  def for_weight(self, weight_name, mask_name=None):
    """The WeightSettings of the weight whose op name is `weight_name`.

    `do_not_prune` is matched against the mask's name when given (contrib
    matched mask names), else against the weight's.
    """
    target = lookup_map(self._sparsity_map, weight_name,
                        'weight_sparsity_map')
    dims = lookup_map(self._block_dims_map, weight_name, 'block_dims_map')
    m_by_n = lookup_map(self._m_by_n_map, weight_name, 'm_by_n_map')
    excluded_name = mask_name if mask_name is not None else weight_name
    return WeightSettings(
        target=target,
        block_dims=list(dims if dims is not None else
                        [self._spec.block_height, self._spec.block_width]),
        m_by_n=m_by_n if m_by_n is not None else self._m_by_n,
        excluded=any(regex.search(excluded_name)
                     for regex in self._do_not_prune))

  def listed_groups(self):
    """Groups thresholded jointly: named in either group map."""
    return set(self.group_targets) | set(self.group_block_dims)


def scheduled_sparsity(step, hparams, weight_name=None):
  """The sparsity the hparams' schedule asks of a weight at `step` (a float).

  Args:
    step: the global step (int).
    hparams: pruning HParams, or a dict of them (missing ones at defaults).
    weight_name: optional op name of the weight (e.g. 'conv1/weights'); its
      `weight_sparsity_map` entry and `do_not_prune` (target 0) apply.
  """
  spec = as_full_spec(hparams)
  target = None
  if weight_name is not None:
    settings = PruningPlan(spec).for_weight(weight_name)
    if settings.excluded:
      return 0.0
    target = settings.target
  return pruning_schedule.Schedule.from_hparams(spec).sparsity(step, target)
