# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: variable_problems
short_description: What the roles' variables cannot be, checked against their argument specs without conversion
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - The roles read their variables as they are given; M(ansible.builtin.validate_argument_spec) checks a value but
    converts nothing for them, so a list given as an API key would reach Gluetun as its text. This filter refuses
    every value that would need converting, and names the variable and what to give instead.
  - C(str) and C(path) take a string (or a whole number) without control characters (a newline, a tab, a NUL);
    C(int) a whole number or a string of the digits 0-9; C(float) a finite number; C(bool) V(true) or V(false), not
    a string; C(dict) a mapping; C(list) a list, each element checked against C(elements) and C(options). V(null)
    (a key with no value) is refused for every type.
  - The values of options with C(no_log) are never shown.
  - O(envs) names the variables that hold an environment (each name and value checked as a container's
    environment; V(true) when it is written to an env file, one line a variable); O(patterns) names the variables
    that hold a regular expression; O(credentials) the variables that hold an API key.
options:
  _input:
    description: The names of the variables set, in the order of O(values).
    type: list
    elements: str
    required: true
  values:
    description: The values of those variables (P(ansible.builtin.vars#lookup) gives them in order).
    type: list
    elements: raw
    required: true
  specs:
    description: The argument specs of the roles, variable name to option (C(type), C(elements), C(options), C(no_log)).
    type: dict
    required: true
  envs:
    description: Variables holding an environment, name to V(true) when the environment is written to an env file.
    type: dict
    default: {}
  patterns:
    description: Variables holding a regular expression.
    type: list
    elements: str
    default: []
  credentials:
    description:
      - Variables holding a control-server API key, checked as the Gluetun client checks one before any request
        (printable ASCII, no space at either end); never shown.
    type: list
    elements: str
    default: []
  containers:
    description:
      - Variables listing the Gluetun containers the roles create, name to the key of each item's container name.
        Each name must be one Docker takes (V([a-zA-Z0-9][a-zA-Z0-9_.-]+), two characters at least) and fit one file
        name (at most 255 bytes, the gluetun role's directory C(<acestream_stack_dir>/gluetun/<name>)); a problem
        is named as C(<variable>[N].<key>), before anything is written.
      - V(null) (the default) checks C(acestream_gluetun_containers) (key C(name)); V({}) checks none.
    type: dict
"""

EXAMPLES = r"""
- name: Check the variables as the roles will use them
  vars:
    names: "{{ query('ansible.builtin.varnames', '^acestream_') | select('in', specs) | list }}"
    problems: >-
      {{ names | acestream.orchestrator.variable_problems(query('ansible.builtin.vars', *names), specs=specs,
                                                          envs={'acestream_engine_env': false}) }}
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: The problems, one message each, naming the variable; V([]) when there is none.
  type: list
  elements: str
  sample:
    - acestream_gluetun_api_key must be a string ('' for none), not a list
    - "acestream_gluetun_containers[1].name is 300 characters long: the gluetun role keeps the container's files in
      <acestream_stack_dir>/gluetun/<name>, and a file name holds at most 255 bytes (NAME_MAX): ..."
    - acestream_engine_replicas must be a whole number written with the digits 0-9, not other digits ('２')
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_checks import (
    StackCheckError,
    variable_problems as _variable_problems,
)


def variable_problems(names, values, specs, envs=None, patterns=(), credentials=(), containers=None):
    """The problem messages (see RETURN)."""
    try:
        return _variable_problems(names, values, specs, envs=envs, patterns=patterns, credentials=credentials,
                                  containers=containers)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.variable_problems: %s" % exc)


class FilterModule:
    """The acestream.orchestrator variable_problems filter."""

    def filters(self):
        return {"variable_problems": variable_problems}
