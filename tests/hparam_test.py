"""Tests for model_pruning.python.hparam (docs/upstream.md, upstream tests docs/upstream.md).

The first part mirrors upstream's hparam_test.py case by case (the upstream
test name is in each docstring); the second checks the helpful error messages
and our additions; the last part fuzzes `parse`. No TensorFlow is needed.
"""
import re

import hypothesis
from hypothesis import strategies as st
import pytest

from model_pruning.python import hparam
from tests import reference_hparam


def _raises(exc_type, phrase):
  """pytest.raises matching a literal phrase (not a regex) in the message."""
  return pytest.raises(exc_type, match=re.escape(phrase))


# ---------------------------------------------------------------------------
# Upstream cases (docs/upstream.md).
# ---------------------------------------------------------------------------


def test_empty():
  """testEmpty."""
  hparams = hparam.HParams()
  assert hparams.values() == {}
  hparams.parse('')
  assert hparams.values() == {}
  with _raises(ValueError, 'Unknown hyperparameter'):
    hparams.parse('xyz=123')


def test_contains():
  """testContains."""
  hparams = hparam.HParams(foo=1)
  assert 'foo' in hparams
  assert 'bar' not in hparams


def test_some_values():
  """testSomeValues: a sequence of parses, then failures that change nothing."""
  hparams = hparam.HParams(aaa=1, b=2.0, c_c='relu6', d='/a/b=c/d')
  assert hparams.values() == {
      'aaa': 1, 'b': 2.0, 'c_c': 'relu6', 'd': '/a/b=c/d'}
  expected_str = "[('aaa', 1), ('b', 2.0), ('c_c', 'relu6'), ('d', '/a/b=c/d')]"
  assert str(hparams) == expected_str
  assert repr(hparams) == 'HParams(%s)' % expected_str
  steps = [
      ('aaa=12', {'aaa': 12}),
      ('c_c=relu4, b=-2.0e10', {'c_c': 'relu4', 'b': -2.0e10}),
      ('c_c=,b=0,', {'c_c': '', 'b': 0.0}),
      ('c_c=2.3",b=+2,', {'c_c': '2.3"', 'b': 2.0}),
      ('d=/a/b/c/d,aaa=11,', {'d': '/a/b/c/d', 'aaa': 11}),
      ('b=1.5,d=/a=b/c/d,aaa=10,', {'b': 1.5, 'd': '/a=b/c/d', 'aaa': 10}),
  ]
  expected = dict(hparams.values())
  for text, changes in steps:
    hparams.parse(text)
    expected.update(changes)
    assert hparams.values() == expected, text
  assert isinstance(hparams.b, float)
  with _raises(ValueError, 'Unknown hyperparameter'):
    hparams.parse('x=123')
  for text in ('aaa=poipoi', 'aaa=1.0', 'b=12x', 'b=relu'):
    with _raises(ValueError, 'Could not parse'):
      hparams.parse(text)
  with _raises(ValueError, 'Must not pass a list'):
    hparams.parse('aaa=[123]')
  assert hparams.values() == expected


def test_with_period_in_variable_name():
  """testWithPeriodInVariableName."""
  hparams = hparam.HParams()
  hparams.add_hparam(name='a.b', value=0.0)
  hparams.parse('a.b=1.0')
  assert getattr(hparams, 'a.b') == 1.0
  hparams.add_hparam(name='c.d', value=0.0)
  with _raises(ValueError, 'Could not parse'):
    hparams.parse('c.d=abc')
  hparams.add_hparam(name='e.f', value='')
  hparams.parse('e.f=abc')
  assert getattr(hparams, 'e.f') == 'abc'
  hparams.add_hparam(name='d..', value=0.0)
  hparams.parse('d..=10.0')
  assert getattr(hparams, 'd..') == 10.0


def test_set_from_map():
  """testSetFromMap: scalars, then a float list."""
  hparams = hparam.HParams(a=1, b=2.0, c='tanh')
  assert hparams.override_from_dict({'a': -2, 'c': 'identity'}) is hparams
  assert hparams.values() == {'a': -2, 'b': 2.0, 'c': 'identity'}
  hparams = hparam.HParams(x=1, b=2.0, d=[0.5])
  hparams.override_from_dict({'d': [0.1, 0.2, 0.3]})
  assert hparams.values() == {'x': 1, 'b': 2.0, 'd': [0.1, 0.2, 0.3]}


def test_function():
  """testFunction: callables are stored but left out of JSON."""

  def f(x):
    return x

  hparams = hparam.HParams(function=f)
  assert hparams.function is f
  assert hparams.to_json() == '{}'


@pytest.mark.parametrize('initial', [False, True], ids=['from_false', 'from_true'])
@pytest.mark.parametrize('text', ['true', 'false', 'True', 'False', '1', '0'])
def test_bool_parsing(initial, text):
  """testBoolParsing: True exactly for True, true and 1."""
  hparams = hparam.HParams(use_gpu=initial)
  hparams.parse('use_gpu=' + text)
  assert hparams.use_gpu is (text in ('True', 'true', '1'))


def test_bool_parsing_fail():
  """testBoolParsingFail."""
  hparams = hparam.HParams(use_gpu=True)
  with pytest.raises(ValueError, match=r'Could not parse.*use_gpu'):
    hparams.parse('use_gpu=yep')


def test_lists():
  """testLists: list parses, then failures."""
  hparams = hparam.HParams(aaa=[1], b=[2.0, 3.0], c_c=['relu6'])
  assert hparams.values() == {'aaa': [1], 'b': [2.0, 3.0], 'c_c': ['relu6']}
  steps = [
      ('aaa=[12]', {'aaa': [12]}),
      ('aaa=[12,34,56]', {'aaa': [12, 34, 56]}),
      ('c_c=[relu4,relu12],b=[1.0]', {'c_c': ['relu4', 'relu12'], 'b': [1.0]}),
      ('c_c=[],aaa=[-34]', {'c_c': [], 'aaa': [-34]}),
      ('c_c=[_12,3\'4"],aaa=[+3]', {'c_c': ['_12', '3\'4"'], 'aaa': [3]}),
  ]
  expected = dict(hparams.values())
  for text, changes in steps:
    hparams.parse(text)
    expected.update(changes)
    assert hparams.values() == expected, text
  with _raises(ValueError, 'Unknown hyperparameter'):
    hparams.parse('x=[123]')
  for text in ('aaa=[poipoi]', 'aaa=[1.0]', 'b=[12x]', 'b=[relu]'):
    with _raises(ValueError, 'Could not parse'):
      hparams.parse(text)
  with _raises(ValueError, 'Must pass a list'):
    hparams.parse('aaa=123')
  assert hparams.values() == expected


_INDEX_CASES = [
    # (id, text, type_map, ignore_unknown, expected)
    ('IndexAssigment1', 'arr[1]=10', {'arr': int}, False, {'arr': {1: 10}}),
    ('IndexAssigment1_IgnoreUnknown', 'arr[1]=10,b=5', {'arr': int}, True,
     {'arr': {1: 10}}),
    ('IndexAssigment2', 'arr[0]=10,arr[5]=20', {'arr': int}, False,
     {'arr': {0: 10, 5: 20}}),
    ('IndexAssigment2_IgnoreUnknown', 'arr[0]=10,arr[5]=20,foo=bar',
     {'arr': int}, True, {'arr': {0: 10, 5: 20}}),
    ('IndexAssigment3', 'arr[0]=10,arr[1]=20,L[5]=100,L[10]=200',
     {'arr': int, 'L': int}, False,
     {'arr': {0: 10, 1: 20}, 'L': {5: 100, 10: 200}}),
    ('IndexAssigment3_IgnoreUnknown',
     'arr[0]=10,C=5,arr[1]=20,B[0]=kkk,L[5]=100,L[10]=200',
     {'arr': int, 'L': int}, True,
     {'arr': {0: 10, 1: 20}, 'L': {5: 100, 10: 200}}),
    ('IndexAssigment4', 'x=10,arr[1]=20,y=30',
     {'x': int, 'y': int, 'arr': int}, False,
     {'x': 10, 'arr': {1: 20}, 'y': 30}),
    ('IndexAssigment4_IgnoreUnknown', 'x=10,foo[0]=bar,arr[1]=20,zzz=78,y=30',
     {'x': int, 'y': int, 'arr': int}, True,
     {'x': 10, 'arr': {1: 20}, 'y': 30}),
    ('IndexAssigment5', 'a[0]=5, b[1]=true, c[2]=abc, d[3]=3.14',
     {'a': int, 'b': bool, 'c': str, 'd': float}, False,
     {'a': {0: 5}, 'b': {1: True}, 'c': {2: 'abc'}, 'd': {3: 3.14}}),
    ('IndexAssigment5_IgnoreUnknown',
     'a[0]=5, cc=4, b[1]=true, c[2]=abc, mm=2, d[3]=3.14',
     {'a': int, 'b': bool, 'c': str, 'd': float}, True,
     {'a': {0: 5}, 'b': {1: True}, 'c': {2: 'abc'}, 'd': {3: 3.14}}),
]


@pytest.mark.parametrize('text,type_map,ignore_unknown,expected',
                         [case[1:] for case in _INDEX_CASES],
                         ids=[case[0] for case in _INDEX_CASES])
def test_parse_values_with_index_assignment(text, type_map, ignore_unknown,
                                            expected):
  """testParseValuesWithIndexAssigment1..5 (+ _IgnoreUnknown)."""
  result = hparam.parse_values(
      text, type_map, ignore_unknown=ignore_unknown)
  assert result == expected
  # Exact types too: True must stay a bool, 3.14 a float.
  for name, by_index in expected.items():
    if isinstance(by_index, dict):
      for index, value in by_index.items():
        assert type(result[name][index]) is type(value)


@pytest.mark.parametrize('text,ignore_unknown', [
    ('arr[1]=[1,2,3]', False),
    ('arr[1]=[1,2,3],c=8', True),
], ids=['BadIndexAssigment1', 'BadIndexAssigment1_IgnoreUnknown'])
def test_parse_values_list_to_index(text, ignore_unknown):
  """testParseValuesWithBadIndexAssigment1 (+ _IgnoreUnknown)."""
  with _raises(ValueError, 'Assignment of a list to a list index.'):
    hparam.parse_values(text, {'arr': int}, ignore_unknown=ignore_unknown)


@pytest.mark.parametrize('text,type_map', [
    ('arr[1]=5', {}),
    ('arr[1]=1', {'arr[1]': int}),
], ids=['BadIndexAssigment2', 'BadIndexAssigment3'])
def test_parse_values_unknown_indexed_name(text, type_map):
  """testParseValuesWithBadIndexAssigment2..3 (+ _IgnoreUnknown)."""
  with _raises(ValueError, 'Unknown hyperparameter type for arr'):
    hparam.parse_values(text, type_map)
  assert hparam.parse_values(text, type_map, ignore_unknown=True) == {}


@pytest.mark.parametrize('text,reused', [
    ('x=1,x=1', 'x'),
    ('arr=[100,200],arr[0]=10', 'arr'),
    ('arr[0]=10,arr[0]=20', 'arr[0]'),
    ('arr[0]=10,arr=[100]', 'arr'),
], ids=['scalar_twice', 'list_then_index', 'index_twice', 'index_then_list'])
def test_with_reused_variables(text, reused):
  """testWithReusedVariables."""
  with _raises(ValueError, "Multiple assignments to variable '%s'" % reused):
    hparam.parse_values(text, {'x': int, 'arr': int})


def test_json_round_trip():
  """testJson: parse_json restores every value with its type."""
  hparams = hparam.HParams(aaa=1, b=2.0, c_c='relu6', d=True)
  hparams2 = hparam.HParams(aaa=10, b=20.0, c_c='hello', d=False)
  assert hparams2.parse_json(hparams.to_json()) is hparams2
  assert hparams2.values() == {'aaa': 1, 'b': 2.0, 'c_c': 'relu6', 'd': True}
  assert isinstance(hparams2.b, float)
  assert hparams2.d is True


@pytest.mark.parametrize('kwargs,json_args,expected', [
    ({'aaa': 123}, {}, '{"aaa": 123}'),
    ({'aaa': 123}, {'indent': 2}, '{\n  "aaa": 123\n}'),
    ({'aaa': 123}, {'separators': (';', '=')}, '{"aaa"=123}'),
    ({'aaa': 123, 'b': 'hello', 'c_c': False}, {'sort_keys': True},
     '{"aaa": 123, "b": "hello", "c_c": false}'),
], ids=['default', 'indent', 'separators', 'sort_keys'])
def test_json_formats(kwargs, json_args, expected):
  """testJson: to_json's formatting arguments."""
  assert hparam.HParams(**kwargs).to_json(**json_args) == expected


def test_set_hparam():
  """testSetHParam: each of int, float, str, bool."""
  hparams = hparam.HParams(aaa=1, b=2.0, c_c='relu6', d=True)
  hparams.set_hparam('aaa', 12)
  hparams.set_hparam('b', 5.0)
  hparams.set_hparam('c_c', 'relu4')
  hparams.set_hparam('d', False)
  assert hparams.values() == {'aaa': 12, 'b': 5.0, 'c_c': 'relu4', 'd': False}


def test_set_hparam_list_non_list_mismatch():
  """testSetHParamListNonListMismatch."""
  hparams = hparam.HParams(a=1, b=[2.0, 3.0])
  with _raises(ValueError, 'Must not pass a list'):
    hparams.set_hparam('a', [1.0])
  with _raises(ValueError, 'Must pass a list'):
    hparams.set_hparam('b', 1.0)


@pytest.mark.parametrize('name,value', [
    ('str_', 2.2),
    ('int_', False),
    ('bool_', 1),
    ('int_', 2.2),
    ('list_int', [2, 3.3]),
    ('int_', '2'),
], ids=['str_from_float', 'int_from_bool', 'bool_from_int', 'int_from_float',
        'int_list_from_float', 'int_from_str'])
def test_set_hparam_type_mismatch(name, value):
  """testSetHParamTypeMismatch: refused casts."""
  hparams = hparam.HParams(
      int_=1, str_='str', bool_=True, float_=1.1, list_int=[1, 2], none=None)
  before = hparams.values()
  with _raises(ValueError, "Could not cast hparam '%s'" % name):
    hparams.set_hparam(name, value)
  assert hparams.values() == before


def test_set_hparam_allowed_casts():
  """testSetHParamTypeMismatch: int -> float is fine; None adopts anything."""
  hparams = hparam.HParams(float_=1.1, none=None)
  hparams.set_hparam('float_', 1)
  assert hparams.float_ == 1.0 and isinstance(hparams.float_, float)
  hparams.set_hparam('none', '1')
  assert hparams.none == '1'


def _get_hparams():
  return hparam.HParams(aaa=1, b=2.0, c_c='relu6', d=True, e=[5.0, 6.0])


@pytest.mark.parametrize('key,default,expected', [
    ('aaa', None, 1), ('b', None, 2.0), ('c_c', None, 'relu6'),
    ('d', None, True), ('e', None, [5.0, 6.0]),
    ('aaa', 2, 1), ('b', 3, 2.0), ('b', 3.0, 2.0), ('c_c', 'default', 'relu6'),
    ('d', False, True), ('e', [1.0, 2.0, 3.0], [5.0, 6.0]),
    ('e', [1, 2, 3], [5.0, 6.0]),
    ('unknown', None, None), ('unknown', 123, 123),
    ('unknown', [1, 2, 3], [1, 2, 3]),
])
def test_get(key, default, expected):
  """testGet: existing keys with compatible defaults, and unknown keys."""
  assert _get_hparams().get(key, default) == expected


@pytest.mark.parametrize('key,default', [
    ('aaa', 2.0), ('b', False), ('c_c', [1, 2, 3]), ('d', 'relu'),
    ('e', 123.0), ('e', ['a', 'b', 'c']),
])
def test_get_incompatible_default(key, default):
  """testGet: incompatible defaults for existing keys raise."""
  with _raises(ValueError, "Hparam '%s' of type" % key):
    _get_hparams().get(key, default)


def test_del():
  """testDel: a deleted name can be re-added with a new type."""
  hparams = hparam.HParams(aaa=1, b=2.0)
  with _raises(ValueError, 'Could not cast'):
    hparams.set_hparam('aaa', 'will fail')
  with _raises(ValueError, 'Hyperparameter name is reserved: aaa'):
    hparams.add_hparam('aaa', 'will fail')
  hparams.del_hparam('aaa')
  assert 'aaa' not in hparams and not hasattr(hparams, 'aaa')
  hparams.add_hparam('aaa', 'will work')
  assert hparams.get('aaa') == 'will work'
  hparams.set_hparam('aaa', 'still works')
  assert hparams.get('aaa') == 'still works'
  hparams.del_hparam('not_there')  # Silently nothing.
  assert hparams.values() == {'aaa': 'still works', 'b': 2.0}


# ---------------------------------------------------------------------------
# Object model details and our additions.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('name', ['values', 'parse', 'get', 'to_json'])
def test_reserved_names(name):
  with _raises(ValueError, 'Hyperparameter name is reserved: %s' % name):
    hparam.HParams(**{name: 1})


def test_empty_list_rejected():
  with _raises(ValueError, 'Multi-valued hyperparameters cannot be empty: m'):
    hparam.HParams(m=[])


def test_tuple_default_is_a_list_hparam():
  hparams = hparam.HParams(dims=(1, 2))
  hparams.parse('dims=[3 4,5]')
  assert hparams.dims == [3, 4, 5]


def test_parse_returns_self_and_pruning_style_maps():
  """docs/upstream.md: map hparams are string lists given in brackets."""
  hparams = hparam.HParams(weight_sparsity_map=[''], begin_pruning_step=0)
  result = hparams.parse(
      'weight_sparsity_map=[conv1:0.8,conv2/kernel:0.8],begin_pruning_step=10')
  assert result is hparams
  assert hparams.weight_sparsity_map == ['conv1:0.8', 'conv2/kernel:0.8']
  with _raises(ValueError, 'Must pass a list'):
    hparams.parse('weight_sparsity_map=conv1:0.9')


def test_indexed_parse_into_hparams_fails_in_set_hparam():
  """docs/upstream.md: indexed results reach set_hparam, which refuses a dict."""
  hparams = hparam.HParams(arr=[1, 2], x=1)
  with _raises(ValueError, 'Must pass a list'):
    hparams.parse('arr[0]=5')
  with _raises(ValueError, "Could not cast hparam 'x'"):
    hparams.parse('x[0]=5')


@pytest.mark.parametrize('text,expected', [
    ('3', 3), ('0.5', 0.5), ('true', True), ('abc', 'abc'),
], ids=['int', 'float', 'bool', 'str'])
def test_none_default_parses_literals(text, expected):
  """Upstream crashed with TypeError here; we infer int, float, bool, str."""
  hparams = hparam.HParams(seed=None)
  hparams.parse('seed=' + text)
  assert hparams.seed == expected
  assert type(hparams.seed) is type(expected)


@pytest.mark.parametrize('text', ['a=5,b=[1.0]', 'b=[1.0],a=5'],
                         ids=['bad_last', 'bad_first'])
def test_failed_parse_changes_nothing(text):
  """Every value is checked before any is set (upstream was not atomic)."""
  hparams = hparam.HParams(a=1, b=2.0)
  with _raises(ValueError, 'Must not pass a list'):
    hparams.parse(text)
  assert hparams.values() == {'a': 1, 'b': 2.0}


def test_failed_override_changes_nothing():
  hparams = hparam.HParams(a=1, b=2.0)
  with _raises(ValueError, "Could not cast hparam 'b'"):
    hparams.override_from_dict({'a': 5, 'b': 'x'})
  with pytest.raises(KeyError):
    hparams.override_from_dict({'a': 5, 'zz': 1})
  assert hparams.values() == {'a': 1, 'b': 2.0}


def test_model_structure():
  hparams = hparam.HParams(model_structure='tree', a=1)
  assert hparams.get_model_structure() == 'tree'
  hparams.set_model_structure({'layers': 2})
  assert hparams.get_model_structure() == {'layers': 2}
  assert hparams.values() == {'a': 1}


def test_to_json_drops_nested_callables():
  hparams = hparam.HParams(fns=[len, 'keep'], a=1)
  assert hparams.to_json(sort_keys=True) == '{"a": 1, "fns": ["keep"]}'


@pytest.mark.parametrize('param_type,is_list,expected', [
    (bool, False, 'bool_value'), (int, True, 'int64_list'),
    (str, False, 'bytes_value'), (bytes, True, 'bytes_list'),
    (float, True, 'float_list'), (float, False, 'float_value'),
])
def test_get_kind_name(param_type, is_list, expected):
  """G2's proto kind names (docs/upstream.md lists `_get_kind_name` as API)."""
  assert hparam.HParams._get_kind_name(param_type, is_list) == expected  # pylint: disable=protected-access


def test_get_kind_name_unsupported():
  with _raises(ValueError, 'Unsupported parameter type'):
    hparam.HParams._get_kind_name(dict, False)  # pylint: disable=protected-access


# ---------------------------------------------------------------------------
# Helpful error messages.
# ---------------------------------------------------------------------------


def test_parse_unknown_name_lists_valid_names_and_suggests():
  hparams = hparam.HParams(target_sparsity=0.5, begin_pruning_step=0)
  with pytest.raises(ValueError) as info:
    hparams.parse('target_sparsty=0.9')
  message = str(info.value)
  assert message.startswith('Unknown hyperparameter type for target_sparsty')
  assert 'begin_pruning_step, target_sparsity' in message
  assert "Did you mean 'target_sparsity'?" in message


def test_parse_unknown_name_without_close_match():
  hparams = hparam.HParams(alpha=1)
  with pytest.raises(ValueError) as info:
    hparams.parse('zzzzzz=1')
  assert 'valid names: alpha' in str(info.value)
  assert 'Did you mean' not in str(info.value)


def test_set_hparam_unknown_name_is_key_error_with_suggestion():
  hparams = hparam.HParams(nbins=256, threshold_decay=0.9)
  with pytest.raises(KeyError) as info:
    hparams.set_hparam('nbin', 10)
  message = str(info.value)
  assert 'nbins, threshold_decay' in message
  assert "Did you mean 'nbins'?" in message
  with pytest.raises(KeyError):
    hparams.override_from_dict({'nope': 1})


def test_could_not_parse_names_hparam_type_and_value():
  hparams = hparam.HParams(pruning_frequency=10)
  with _raises(ValueError, "Could not parse hparam 'pruning_frequency' of type "
               "'int' with value '0.5'"):
    hparams.parse('pruning_frequency=0.5')


def test_could_not_cast_names_both_types():
  hparams = hparam.HParams(nbins=256)
  with _raises(ValueError, "Could not cast hparam 'nbins' of type 'int' from "
               'value 2.5 (a float)'):
    hparams.set_hparam('nbins', 2.5)


def test_list_messages_suggest_the_fix():
  hparams = hparam.HParams(m=[''], s=1)
  with _raises(ValueError, 'write it in brackets, e.g. m=[...]'):
    hparams.set_hparam('m', 'a:1')
  with _raises(ValueError, 'got [1]; pass one int'):
    hparams.set_hparam('s', [1])


def test_malformed_names_the_rest_and_the_grammar():
  hparams = hparam.HParams(a=1, b=2)
  with pytest.raises(ValueError) as info:
    hparams.parse('a=1,b=[2')
  assert str(info.value).startswith('Malformed hyperparameter value: b=[2')
  assert 'a=1,b=[2,3]' in str(info.value)
  assert hparams.a == 1  # Parse errors change nothing.


def test_non_string_parse_input():
  with _raises(ValueError, "parse() needs a string such as 'a=1,b=[2,3]'"):
    hparam.HParams(a=1).parse(None)


# ---------------------------------------------------------------------------
# PARAM_RE: same language as upstream, linear time on failures, fuzzing.
# ---------------------------------------------------------------------------

_GRAMMAR_CHARS = 'abcde[]=, .01x"_\n'


def _clause_match(pattern, text):
  match = pattern.match(text)
  return None if match is None else (match.end(), match.groupdict())


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(text=st.text(alphabet=_GRAMMAR_CHARS, max_size=30))
def test_param_re_matches_upstream_pattern(text):
  """The possessive rewrite accepts exactly what upstream's pattern does."""
  assert _clause_match(hparam.PARAM_RE, text) == _clause_match(
      reference_hparam.UPSTREAM_PARAM_RE, text)


@pytest.mark.parametrize('text', [
    'c=' + ' ' * 20000 + 'x[',
    'c=' + 'x' * 20000 + '[',
    'a' * 20000 + '[',
    'd=[' + '1,' * 20000,
    'c[' + ' ' * 20000 + '1' * 20000,
], ids=['spaces_then_bracket', 'value_then_bracket', 'long_name',
        'unclosed_list', 'open_index'])
def test_pathological_strings_fail_cleanly(text):
  """Long runs fail with a clean error and no backtracking blow-up.

  Upstream's pattern needs seconds for the first case (quadratic in the run of
  spaces); the others guard the other repeated parts of the pattern.
  """
  with _raises(ValueError, 'Malformed hyperparameter value'):
    hparam.HParams(a=1, b=2.0, c='x', d=[1], e=True).parse(text)


_EXPECTED_TYPES = {'a': int, 'b': float, 'c': str, 'e': bool}


def _check_parse_outcome(text):
  hparams = hparam.HParams(a=1, b=2.0, c='x', d=[1], e=True)
  try:
    hparams.parse(text)
  except (ValueError, KeyError):
    return
  for name, expected_type in _EXPECTED_TYPES.items():
    assert type(getattr(hparams, name)) is expected_type, (text, name)
  assert all(type(v) is int for v in hparams.d), text


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(text=st.text(max_size=60))
def test_parse_random_text_raises_only_value_or_key_error(text):
  _check_parse_outcome(text)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(text=st.text(alphabet=_GRAMMAR_CHARS + 'tr1-+eE9', max_size=40))
def test_parse_grammar_like_text_keeps_types(text):
  """Near-miss strings: either a clean error or every hparam keeps its type."""
  _check_parse_outcome(text)


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(
    a=st.integers(),
    b=st.floats(allow_nan=False),
    c=st.text(alphabet='abc/:=._-x', max_size=10),
    d=st.lists(st.integers(min_value=-10**6, max_value=10**6), max_size=5),
    e=st.booleans())
def test_parse_round_trip(a, b, c, d, e):
  """Values written in the grammar parse back to themselves."""
  hparams = hparam.HParams(a=0, b=0.0, c='', d=[0], e=False)
  hparams.parse('a=%d,b=%r,c=%s,d=[%s],e=%s' %
                (a, b, c, ' '.join(str(v) for v in d), e))
  assert hparams.values() == {'a': a, 'b': b, 'c': c, 'd': d, 'e': e}
