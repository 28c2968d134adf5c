"""Upstream's hparam clause pattern, kept verbatim as an oracle.

`model_pruning.python.hparam.PARAM_RE` rewrites this pattern with possessive
quantifiers so that failed matches run in linear time; the tests check that the
two accept exactly the same clauses. This file never imports model_pruning.
"""
import re

UPSTREAM_PARAM_RE = re.compile(
    r"""
  (?P<name>[a-zA-Z][\w\.]*)      # variable name: "var" or "x"
  (\[\s*(?P<index>\d+)\s*\])?  # (optional) index: "1" or None
  \s*=\s*
  ((?P<val>[^,\[]*)            # single value: "a" or None
   |
   \[(?P<vals>[^\]]*)\])       # list of values: None or "1,2,3"
  ($|,\s*)""", re.VERBOSE)
