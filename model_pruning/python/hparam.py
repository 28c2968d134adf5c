"""Typed hyperparameters parsed from strings such as "a=1,b=[x:0.9]".

A pure-Python re-implementation of `tf.contrib.training.HParams` (the class
google-research forked as `model_pruning/python/hparam.py`). It
imports no TensorFlow, so the schedule and command-line tools can use it alone.

Each hparam's type is fixed by its first value: `HParams(a=1)` makes `a` an
int, so `parse('a=0.5')` fails instead of silently truncating, and
`HParams(m=['x'])` makes `m` a list of str that must be given in brackets.

Grammar of `parse` (comma-separated clauses, a trailing comma allowed):

    name=value          scalar; value is anything up to the next ',' or '['
    name=[v1,v2 v3]     list; elements split on commas and spaces
    name[3]=value       indexed scalar, parsed to {3: value}

Errors keep upstream's wording (scripts and tests match on it) and add the
valid names, the closest match and the expected type.
"""
import difflib
import json
import numbers
import re

# One clause of a parse string. Possessive quantifiers (`*+`) never give back
# what they matched, so a failed match costs linear time instead of the
# quadratic backtracking of upstream's pattern; the accepted language is the
# same because each possessive run is followed by a character it cannot match.
PARAM_RE = re.compile(
    r"""
  (?P<name>[a-zA-Z][\w\.]*+)       # variable name: "var" or "x"
  (\[\s*+(?P<index>\d++)\s*+\])?  # (optional) index: "1" or None
  \s*+=\s*+
  ((?P<val>[^,\[]*+)              # single value: "a" or None
   |
   \[(?P<vals>[^\]]*+)\])         # list of values: None or "1,2,3"
  ($|,\s*+)""", re.VERBOSE)

_TRUE_WORDS = ('true', 'True')
_FALSE_WORDS = ('false', 'False')
# What constructing a value of an arbitrary recorded type may raise.
_CONVERSION_ERRORS = (ValueError, TypeError, ArithmeticError)


def _type_name(param_type):
  return getattr(param_type, '__name__', str(param_type))


def _unknown_name_hint(name, valid_names):
  """Returns '; valid names: ...' plus a 'did you mean' for an unknown name."""
  valid = sorted(valid_names)
  if not valid:
    return '; there are no hyperparameters defined'
  hint = '; valid names: %s' % ', '.join(valid)
  close = difflib.get_close_matches(name, valid, n=1)
  if close:
    hint += ". Did you mean '%s'?" % close[0]
  return hint


def _parse_fail(name, var_type, value, values):
  """Raises the upstream 'Could not parse' error for one clause."""
  raise ValueError(
      "Could not parse hparam '%s' of type '%s' with value '%s' in %s" %
      (name, _type_name(var_type), value, values))


def _reuse_fail(name, values):
  """Raises the upstream error for a name assigned twice in one string."""
  raise ValueError("Multiple assignments to variable '%s' in %s; give each "
                   'hyperparameter (or list index) once' % (name, values))


def _infer_literal(value):
  """Parses a value for an hparam whose default was None.

  Upstream crashed here (`NoneType('1')` is a TypeError). We take the first of
  int, float, bool words that fits and fall back to the string itself, so an
  optional hparam such as `seed=None` can be set with `seed=3`.
  """
  for parse_fn in (int, float):
    try:
      return parse_fn(value)
    except ValueError:
      pass
  if value in _TRUE_WORDS:
    return True
  if value in _FALSE_WORDS:
    return False
  return value


def _make_parse_fn(name, type_, values):
  """Returns a str -> value function for the hparam's recorded type."""
  if type_ is bool:

    def parse_bool(value):
      if value in _TRUE_WORDS:
        return True
      if value in _FALSE_WORDS:
        return False
      try:
        return bool(int(value))
      except ValueError:
        _parse_fail(name, type_, value, values)

    return parse_bool
  if type_ is type(None):
    return _infer_literal
  return type_


def _process_scalar_value(name, parse_fn, var_type, m_dict, values,
                          results_dictionary):
  """Stores `name=v` as a value, or `name[i]=v` as `{i: v}`."""
  try:
    parsed_value = parse_fn(m_dict['val'])
  except _CONVERSION_ERRORS:
    _parse_fail(name, var_type, m_dict['val'], values)

  if not m_dict['index']:
    if name in results_dictionary:
      _reuse_fail(name, values)
    results_dictionary[name] = parsed_value
    return
  if name in results_dictionary:
    # Already assigned as a whole: only index dicts may take more entries.
    if not isinstance(results_dictionary.get(name), dict):
      _reuse_fail(name, values)
  else:
    results_dictionary[name] = {}
  index = int(m_dict['index'])
  if index in results_dictionary[name]:
    _reuse_fail('{}[{}]'.format(name, index), values)
  results_dictionary[name][index] = parsed_value


def _process_list_value(name, parse_fn, var_type, m_dict, values,
                        results_dictionary):
  """Stores `name=[a,b c]` as a list; empty pieces are dropped."""
  if m_dict['index'] is not None:
    raise ValueError('Assignment of a list to a list index. Got %s[%s]=[%s]; '
                     'assign one element per index instead' %
                     (name, m_dict['index'], m_dict['vals']))
  elements = [e for e in re.split('[ ,]', m_dict['vals']) if e]
  if name in results_dictionary:
    _reuse_fail(name, values)
  try:
    results_dictionary[name] = [parse_fn(e) for e in elements]
  except _CONVERSION_ERRORS:
    _parse_fail(name, var_type, m_dict['vals'], values)


def parse_values(values, type_map, ignore_unknown=False):
  """Parses a hyperparameter string into a dict of typed values.

  Example: `parse_values('a=1,b=[2.0 3],c[1]=x', {'a': int, 'b': float,
  'c': str})` returns `{'a': 1, 'b': [2.0, 3.0], 'c': {1: 'x'}}`.

  Args:
    values: the string, comma-separated `name=value`, `name=[v,...]` or
      `name[i]=value` clauses.
    type_map: name -> type used to parse that name's value(s). Bools accept
      true/True/false/False or an integer (non-zero is True).
    ignore_unknown: skip clauses whose name is not in `type_map` instead of
      raising.

  Returns:
    Dict name -> scalar, list, or {index: scalar}.

  Raises:
    ValueError: on a malformed string, an unknown name, a value that does not
      parse as its type, a list assigned to an index, or a name given twice.
  """
  results_dictionary = {}
  pos = 0
  while pos < len(values):
    m = PARAM_RE.match(values, pos)
    if not m:
      raise ValueError(
          'Malformed hyperparameter value: %s (expected comma-separated '
          "clauses such as 'a=1,b=[2,3],c[0]=x')" % values[pos:])
    pos = m.end()
    m_dict = m.groupdict()
    name = m_dict['name']
    if name not in type_map:
      if ignore_unknown:
        continue
      raise ValueError('Unknown hyperparameter type for %s%s' %
                       (name, _unknown_name_hint(name, type_map)))
    type_ = type_map[name]
    parse_fn = _make_parse_fn(name, type_, values)
    if m_dict['val'] is not None:
      _process_scalar_value(name, parse_fn, type_, m_dict, values,
                            results_dictionary)
    elif m_dict['vals'] is not None:
      _process_list_value(name, parse_fn, type_, m_dict, values,
                          results_dictionary)
    else:  # Unreachable with PARAM_RE (val may be empty), kept as upstream.
      _parse_fail(name, type_, '', values)
  return results_dictionary


def _cast_to_type_if_compatible(name, param_type, value):
  """Returns `value` converted to `param_type`, refusing lossy conversions.

  Refused: a non-string into a string hparam; bool into non-bool or the
  reverse; a non-integral value into an int; a non-number into a number. An
  hparam whose default was None (type NoneType) takes any value as-is.
  int -> float is allowed.

  Raises:
    ValueError: 'Could not cast hparam ...' naming the hparam, its type and
      the value.
  """
  fail_msg = ("Could not cast hparam '%s' of type '%s' from value %r "
              '(a %s)' % (name, _type_name(param_type), value,
                          type(value).__name__))
  if type(value) == param_type:  # pylint: disable=unidiomatic-typecheck
    return value
  if issubclass(param_type, type(None)):
    return value
  if (issubclass(param_type, (str, bytes)) and
      not isinstance(value, (str, bytes))):
    raise ValueError(fail_msg)
  # isinstance(True, int) holds, so bools need their own check.
  if issubclass(param_type, bool) != isinstance(value, bool):
    raise ValueError(fail_msg)
  if (issubclass(param_type, numbers.Integral) and
      not isinstance(value, numbers.Integral)):
    raise ValueError(fail_msg)
  if (issubclass(param_type, numbers.Number) and
      not isinstance(value, numbers.Number)):
    raise ValueError(fail_msg)
  try:
    return param_type(value)
  except _CONVERSION_ERRORS as e:
    raise ValueError('%s: %s' % (fail_msg, e)) from e


def _remove_callables(x):
  """Drops callables from (nested) dicts and lists, for JSON output."""
  if isinstance(x, dict):
    return {k: _remove_callables(v) for k, v in x.items() if not callable(v)}
  if isinstance(x, list):
    return [_remove_callables(i) for i in x if not callable(i)]
  return x


class HParams:
  """A set of named, typed hyperparameters, settable from strings or dicts.

  `HParams(learning_rate=0.1, layers=[64, 32])` makes attributes
  `learning_rate` (float) and `layers` (list of int); `parse('layers=[128]')`
  then replaces the list, and `parse('learning_rate=x')` raises ValueError.
  """

  def __init__(self, model_structure=None, **kwargs):
    """Creates one hparam per keyword argument (type taken from its value).

    Args:
      model_structure: an optional object describing the model, kept as-is
        (`get_model_structure`).
      **kwargs: name -> default value. A list or tuple makes a multi-valued
        hparam typed by its first element.

    Raises:
      ValueError: for an empty list or a name that is already an attribute.
    """
    self._hparam_types = {}
    self._model_structure = model_structure
    for name, value in kwargs.items():
      self.add_hparam(name, value)

  def add_hparam(self, name, value):
    """Adds hparam `name` whose type is taken from `value`.

    Raises:
      ValueError: if `name` is already a non-None attribute (a method such as
        `values`, or an existing hparam) or `value` is an empty list.
    """
    if getattr(self, name, None) is not None:
      raise ValueError(
          'Hyperparameter name is reserved: %s (it is already an attribute of '
          'HParams; use set_hparam to change an existing hparam, or pick '
          'another name)' % name)
    if isinstance(value, (list, tuple)):
      if not value:
        raise ValueError(
            'Multi-valued hyperparameters cannot be empty: %s (give at least '
            "one element, e.g. [''], so its element type is known)" % name)
      self._hparam_types[name] = (type(value[0]), True)
    else:
      self._hparam_types[name] = (type(value), False)
    setattr(self, name, value)

  def _type_of(self, name):
    """Returns (type, is_list) of an existing hparam; KeyError otherwise."""
    if name not in self._hparam_types:
      raise KeyError('Unknown hyperparameter %r%s' %
                     (name, _unknown_name_hint(str(name), self._hparam_types)))
    return self._hparam_types[name]

  def set_hparam(self, name, value):
    """Sets an existing hparam, type-checking and casting `value`.

    Raises:
      KeyError: if `name` is not an hparam.
      ValueError: on a list for a scalar hparam, a non-list for a list hparam,
        or a value not compatible with the hparam's type.
    """
    setattr(self, name, self._checked_value(name, value))

  def _checked_value(self, name, value):
    """Returns `value` cast for hparam `name`, or raises as `set_hparam`."""
    param_type, is_list = self._type_of(name)
    if isinstance(value, list):
      if not is_list:
        raise ValueError(
            'Must not pass a list for single-valued parameter: %s (got %r; '
            'pass one %s)' % (name, value, _type_name(param_type)))
      return [_cast_to_type_if_compatible(name, param_type, v) for v in value]
    if is_list:
      raise ValueError(
          'Must pass a list for multi-valued parameter: %s. Got %r; write '
          'it in brackets, e.g. %s=[...]' % (name, value, name))
    return _cast_to_type_if_compatible(name, param_type, value)

  def del_hparam(self, name):
    """Removes hparam `name`; does nothing if there is none."""
    if name in self._hparam_types:
      delattr(self, name)
      del self._hparam_types[name]

  def parse(self, values):
    """Overrides hparams from a string such as 'a=1,b=[2,3]'; returns self.

    Raises:
      ValueError: if the string is malformed, names an unknown hparam, or
        holds a value of the wrong type. Nothing is changed then.
    """
    if not isinstance(values, str):
      raise ValueError("parse() needs a string such as 'a=1,b=[2,3]', got %r"
                       % (values,))
    type_map = {name: t for name, (t, _) in self._hparam_types.items()}
    return self.override_from_dict(parse_values(values, type_map))

  def override_from_dict(self, values_dict):
    """Sets each item of `values_dict` as `set_hparam` would; returns self.

    All values are checked before any is set, so a bad item leaves the object
    unchanged (upstream applied the items before it).

    Raises:
      KeyError, ValueError: as `set_hparam`.
    """
    checked = {name: self._checked_value(name, value)
               for name, value in values_dict.items()}
    for name, value in checked.items():
      setattr(self, name, value)
    return self

  def set_model_structure(self, model_structure):
    self._model_structure = model_structure

  def get_model_structure(self):
    return self._model_structure

  def to_json(self, indent=None, separators=None, sort_keys=False):
    """Returns the values as JSON, leaving out callables (e.g. '{"a": 1}')."""
    return json.dumps(_remove_callables(self.values()), indent=indent,
                      separators=separators, sort_keys=sort_keys)

  def parse_json(self, values_json):
    """Overrides hparams from a JSON object string; returns self."""
    return self.override_from_dict(json.loads(values_json))

  def values(self):
    """Returns a dict name -> current value."""
    return {n: getattr(self, n) for n in self._hparam_types}

  def get(self, key, default=None):
    """Returns hparam `key`, or `default` if there is no such hparam.

    A non-None `default` for an existing hparam must match its list-ness and
    type (a cheap check that the caller's idea of the hparam is right).

    Raises:
      ValueError: if `default` is incompatible with the existing hparam.
    """
    if key not in self._hparam_types:
      return default
    if default is not None:
      self._check_default(key, default)
    return getattr(self, key)

  def _check_default(self, key, default):
    param_type, is_param_list = self._hparam_types[key]
    type_str = ('list<%s>' % _type_name(param_type) if is_param_list else
                _type_name(param_type))
    fail_msg = "Hparam '%s' of type '%s' is incompatible with default=%r" % (
        key, type_str, default)
    is_default_list = isinstance(default, list)
    if is_param_list != is_default_list:
      raise ValueError(fail_msg)
    try:
      for value in (default if is_default_list else [default]):
        _cast_to_type_if_compatible(key, param_type, value)
    except ValueError as e:
      raise ValueError('%s. %s' % (fail_msg, e)) from e

  def __contains__(self, key):
    return key in self._hparam_types

  def __str__(self):
    return str(sorted(self.values().items()))

  def __repr__(self):
    return '%s(%s)' % (type(self).__name__, self.__str__())

  @staticmethod
  def _get_kind_name(param_type, is_list):
    """Returns the HParamDef proto field kind, e.g. 'int64_list'."""
    if issubclass(param_type, bool):
      typename = 'bool'
    elif issubclass(param_type, int):
      typename = 'int64'
    elif issubclass(param_type, (str, bytes)):
      typename = 'bytes'
    elif issubclass(param_type, float):
      typename = 'float'
    else:
      raise ValueError('Unsupported parameter type: %s (expected bool, int, '
                       'str, bytes or float)' % str(param_type))
    return '_'.join([typename, 'list' if is_list else 'value'])
