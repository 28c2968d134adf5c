"""Pruning hparams: defaults, validation and map parsing (no TensorFlow).

`get_pruning_hparams()` (in pruning.py) returns `default_hparams()`. Everything
here runs when a `Pruning` object is built, so a typo in an hparam string
fails at once with a message that names the hparam, the value and the fix,
not after a day of training.
"""
import collections
import difflib
import re

from model_pruning.python import hparam

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

  The defaults are the documented contrib table (SPEC_DECISIONS); see the
  README for the meaning of each.
  """
  return hparam.HParams(
      name='model_pruning',
      begin_pruning_step=0,
      end_pruning_step=-1,
      weight_sparsity_map=[''],
      block_dims_map=[''],
      do_not_prune=[''],
      threshold_decay=0.9,
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


def normalize_spec(spec):
  """Returns a copy of `spec` with every missing default hparam added.

  google-research's `_normalize_spec` mutated the caller's object; we copy.
  """
  merged = default_hparams()
  for name, value in spec.values().items():
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
  """Raises ValueError naming the hparam, the value and the fix (SPEC 2.4.2)."""
  if spec.begin_pruning_step < 0:
    raise ValueError('Illegal value for begin_pruning_step: %d; it must be >= 0'
                     % spec.begin_pruning_step)
  if (spec.begin_pruning_step >= spec.end_pruning_step and
      spec.end_pruning_step != -1):
    raise ValueError(
        'Pruning must begin before it can end: begin_pruning_step=%d, '
        'end_pruning_step=%d. Use end_pruning_step=-1 to prune until training '
        'ends.' % (spec.begin_pruning_step, spec.end_pruning_step))
  if spec.sparsity_function_begin_step < 0:
    raise ValueError('sparsity_function_begin_step must be >= 0, got %d' %
                     spec.sparsity_function_begin_step)
  if spec.sparsity_function_begin_step >= spec.sparsity_function_end_step:
    raise ValueError(
        'Sparsity function requires begin_step < end_step: '
        'sparsity_function_begin_step=%d, sparsity_function_end_step=%d' %
        (spec.sparsity_function_begin_step, spec.sparsity_function_end_step))
  _check_range('threshold_decay', spec.threshold_decay, 0.0, 1.0)
  _check_range('initial_sparsity', spec.initial_sparsity, 0.0, 1.0)
  _check_range('target_sparsity', spec.target_sparsity, 0.0, 1.0)
  _check_range('gradient_decay_rate', spec.gradient_decay_rate, 0.0, 1.0,
               high_inclusive=True)
  if spec.sparsity_function_exponent < 0:
    raise ValueError('sparsity_function_exponent must be >= 0, got %r' %
                     spec.sparsity_function_exponent)
  if spec.pruning_frequency < 1:
    raise ValueError('pruning_frequency must be >= 1 (global steps between '
                     'mask updates), got %d' % spec.pruning_frequency)
  if spec.nbins < 1:
    raise ValueError('nbins must be >= 1, got %d' % spec.nbins)
  _check_choice('threshold_method', spec.threshold_method, THRESHOLD_METHODS)
  _check_choice('prune_option', spec.prune_option, PRUNE_OPTIONS)
  _check_choice('block_pooling_function', spec.block_pooling_function,
                POOLING_FUNCTIONS)
  _check_block_dims('block_height/block_width',
                    [spec.block_height, spec.block_width])
  if spec.sparsity_m_by_n:
    parse_m_by_n(spec.sparsity_m_by_n, 'sparsity_m_by_n')


def _check_block_dims(name, dims):
  for dim in dims:
    if dim == 0 or dim < -1:
      raise ValueError('%s must be positive or -1 (the whole dimension), got '
                       '%r' % (name, dims))


MapEntry = collections.namedtuple('MapEntry', ['pattern', 'regex', 'value'])


def _split_entries(entries, map_name, example):
  """Yields (pattern, value_text) for the non-empty entries of a map hparam."""
  for entry in entries:
    if not entry:
      continue
    pattern, sep, value_text = entry.rpartition(':')
    if not sep or not pattern or not value_text:
      raise ValueError(
          'Malformed %s entry %r: expected <regex>:<value>, e.g. %s' %
          (map_name, entry, example))
    yield pattern, value_text


def _compile(pattern, map_name):
  try:
    return re.compile(pattern)
  except re.error as err:
    raise ValueError('Invalid regular expression %r in %s: %s' %
                     (pattern, map_name, err)) from None


def parse_sparsity_map(entries, map_name='weight_sparsity_map'):
  """Parses ['conv1:0.8', ...] into MapEntry(pattern, regex, float) items."""
  parsed = []
  for pattern, value_text in _split_entries(entries, map_name,
                                            '[conv1:0.8,dense/kernel:0.9]'):
    try:
      value = float(value_text)
    except ValueError:
      raise ValueError('Sparsity in %s entry %r must be a number, got %r' %
                       (map_name, pattern + ':' + value_text,
                        value_text)) from None
    if not 0.0 <= value < 1.0:
      raise ValueError('Weight sparsity can not exceed 1.0: %s entry %r must '
                       'be in [0, 1)' % (map_name, pattern + ':' + value_text))
    parsed.append(MapEntry(pattern, _compile(pattern, map_name), value))
  return parsed


def parse_block_dims(text, map_name, entry=None):
  """Parses '4x4' (or '1x-1') into [4, 4]."""
  parts = text.split('x')
  where = entry if entry is not None else text
  if len(parts) != 2:
    raise ValueError('Expected 2 values for block dim for %s, got %r (write '
                     'HEIGHTxWIDTH, e.g. 4x4 or 1x-1)' % (where, text))
  try:
    dims = [int(part) for part in parts]
  except ValueError:
    raise ValueError('Block dims in %s entry %r must be integers, e.g. 4x4' %
                     (map_name, where)) from None
  _check_block_dims('%s entry %r' % (map_name, where), dims)
  return dims


def parse_block_dims_map(entries, map_name='block_dims_map'):
  """Parses ['dense1:4x4', ...] into MapEntry(pattern, regex, [h, w]) items."""
  return [
      MapEntry(pattern, _compile(pattern, map_name),
               parse_block_dims(value_text, map_name,
                                pattern + ':' + value_text))
      for pattern, value_text in _split_entries(entries, map_name,
                                                '[dense1:4x4,dense2:1x-1]')
  ]


def parse_m_by_n(text, name='sparsity_m_by_n'):
  """Parses '2:4' (or '2,4') into (2, 4): at most M non-zeros in every N."""
  parts = re.split(r'[:,]', str(text).strip())
  try:
    m, n = (int(part) for part in parts)
  except ValueError:
    raise ValueError('%s must look like M:N with integers 0 < M < N, e.g. '
                     '2:4, got %r' % (name, text)) from None
  if not 0 < m < n:
    raise ValueError('%s must satisfy 0 < M < N, got %r' % (name, text))
  return m, n


def parse_m_by_n_map(entries, map_name='m_by_n_map'):
  """Parses ['conv2:2:4', ...] into MapEntry(pattern, regex, (m, n)) items."""
  parsed = []
  for entry in entries:
    if not entry:
      continue
    pieces = entry.rsplit(':', 2)
    if len(pieces) != 3 or not pieces[0]:
      raise ValueError('Malformed %s entry %r: expected <regex>:<M>:<N>, e.g. '
                       '[conv2:2:4,local3:1:4]' % (map_name, entry))
    pattern = pieces[0]
    value = parse_m_by_n(pieces[1] + ':' + pieces[2],
                         '%s entry %r' % (map_name, entry))
    parsed.append(MapEntry(pattern, _compile(pattern, map_name), value))
  return parsed


def lookup_map(entries, weight_name, map_name):
  """Returns the value of the one entry whose regex `re.search`es the name.

  Returns None when nothing matches; raises ValueError when several entries
  match, since the intended value is then ambiguous.
  """
  matches = [entry for entry in entries if entry.regex.search(weight_name)]
  if len(matches) > 1:
    raise ValueError(
        'Multiple matches in %s for weight %s: %s. Make the patterns '
        'exclusive (anchor them, e.g. ^conv1/).' %
        (map_name, weight_name, ', '.join(repr(m.pattern) for m in matches)))
  return matches[0].value if matches else None


def parse_group_map(entries, parse_value, map_name):
  """Parses a group map ('group:value') into a dict group -> value."""
  groups = {}
  for entry in entries:
    if not entry:
      continue
    group, sep, value_text = entry.rpartition(':')
    if not sep or not group:
      raise ValueError('Malformed %s entry %r: expected <group>:<value>' %
                       (map_name, entry))
    groups[group] = parse_value(value_text, entry)
  return groups


def do_not_prune_patterns(spec):
  """The compiled `do_not_prune` patterns (contrib C0/C1), empty ones dropped."""
  return [_compile(p, 'do_not_prune') for p in spec.do_not_prune if p]
