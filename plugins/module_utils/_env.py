# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a container's environment variable may be: one rule for the Gluetun containers, the engines and the
orchestrator app. Private to this collection. Pure: no I/O, no Ansible import.

Environments hold secrets (provider keys, passwords): every message names the variable, never its value.
"""

from __future__ import annotations

import math
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def env_name_problem(key):
    """Why ``key`` cannot name an environment variable, or None."""
    if not isinstance(key, str):
        return "%r is not an environment variable name: names are strings" % (key,)
    if not ENV_NAME_RE.match(key):
        return ("'%s' is not an environment variable name: use letters, digits and '_', not starting with a "
                "digit" % _printable(key))
    return None


def env_value_problem(key, value, one_line=False):
    """Why ``value`` cannot be the value of variable ``key``, or None. ``one_line``: the value goes into an env file
    (one KEY=value a line). Never quotes the value."""
    if value is None:
        return "%s is null (a key with no value): give a string ('' for an empty value), a number or a boolean" % key
    if isinstance(value, (dict, list, tuple, set)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        return "%s is %s: give a string, a number or a boolean" % (key, kind)
    if isinstance(value, float) and not math.isfinite(value):
        return "%s is not a finite number: give a string, a number or a boolean" % key
    if not isinstance(value, (str, int, float)):
        return "%s is a %s: give a string, a number or a boolean" % (key, type(value).__name__)
    text = str(value)
    if "\x00" in text:
        return "%s holds a NUL character, which no environment can carry: remove it" % key
    if one_line and ("\n" in text or "\r" in text):
        return "%s spans several lines: an env file holds one KEY=value per line" % key
    return None


def variable_problems(env, one_line=False):
    """The problems of the mapping ``env``, one message each naming the variable (``[]`` for null or when every
    name and value is usable); a mapping is what the caller checked."""
    problems = (env_name_problem(key) or env_value_problem(key, value, one_line) for key, value in (env or {}).items())
    return [problem for problem in problems if problem]


def env_problems(env, field, one_line=False):
    """Every problem of the environment ``env`` (the option ``field``), one message each naming the field and the
    variable: ``[]`` when every name and value is usable."""
    if env is not None and not isinstance(env, dict):
        return ["%s must be a mapping of variable names to values, not %s" % (field, kind_of(env))]
    return ["%s: %s" % (field, problem) for problem in variable_problems(env, one_line)]


def _printable(text):
    """``text`` with control characters escaped, for a message about a name (names are not secret)."""
    return "".join(char if char.isprintable() else "\\u%04x" % ord(char) for char in text)
