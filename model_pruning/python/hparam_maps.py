"""Parsers of the hparam value syntaxes: maps, block dims and N:M patterns.

One parser per syntax, shared by `Pruning`, the strip report, the tools'
flags and the tests (no TensorFlow):

  weight_sparsity_map  [regex:target, ...]     e.g. [conv1:0.8,dense/kernel:0.9]
  block_dims_map       [regex:HxW, ...]        e.g. [dense1:4x4,dense2:1x-1]
  m_by_n_map           [regex:M:N, ...]        e.g. [conv2:2:4,local3:1:4]
  group maps           [group:value, ...]
  N:M pattern          M:N or M,N              e.g. 2:4

Regexes are matched with `re.search` against a weight's op name; a name
matched by two entries of one map is an error.
"""
import collections
import numbers
import re

_M_BY_N_RE = re.compile(r'^\s*(\d+)\s*[:,]\s*(\d+)\s*$')


def check_block_dims(name, dims):
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
  check_block_dims('%s entry %r' % (map_name, where), dims)
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


def parse_m_by_n(text, name='m_by_n'):
  """Parses an N:M pattern into `(m, n)`: at most M non-zeros in every N.

  The one parser of the pattern syntax, for hparams, flags and calls alike.

  Args:
    text: 'M:N' or 'M,N' (e.g. '2:4'); an `(m, n)` pair of ints is
      accepted as is and validated.
    name: what the value is called in errors (the hparam or flag).

  Returns:
    `(m, n)` as Python ints with 0 < m < n.

  Raises:
    ValueError: naming the value, e.g. for '4:2' "sparsity_m_by_n must
      satisfy 0 < M < N, got '4:2' (M=4, N=2); use e.g. '2:4'".
  """
  if isinstance(text, (tuple, list)) and len(text) == 2:
    m, n = text
    shown = '%s:%s' % (m, n)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
               for v in (m, n)):
      raise ValueError('%s must be two integers, got %r; use e.g. (2, 4)' %
                       (name, tuple(text)))
  else:
    match = _M_BY_N_RE.match(text) if isinstance(text, str) else None
    if match is None:
      raise ValueError("%s must look like 'M:N' (or 'M,N'), got %r; use e.g. "
                       "'2:4'" % (name, text))
    m, n = int(match.group(1)), int(match.group(2))
    shown = text
  if not 0 < m < n:
    raise ValueError("%s must satisfy 0 < M < N, got %r (M=%d, N=%d); use "
                     "e.g. '2:4'" % (name, shown, m, n))
  return int(m), int(n)


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


def parse_group_sparsity(text, entry):
  try:
    value = float(text)
  except ValueError:
    raise ValueError('Sparsity in group_sparsity_map entry %r must be a '
                     'number' % entry) from None
  if not 0.0 <= value < 1.0:
    raise ValueError('Weight sparsity can not exceed 1.0: group_sparsity_map '
                     'entry %r must be in [0, 1)' % entry)
  return value


def do_not_prune_patterns(spec):
  """The compiled `do_not_prune` patterns (contrib C0/C1), empty ones dropped."""
  return [_compile(p, 'do_not_prune') for p in spec.do_not_prune if p]
