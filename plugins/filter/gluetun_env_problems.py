# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gluetun_env_problems
short_description: What the Gluetun containers' environments cannot be, with the port guide's fix
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Checks the environment of each Gluetun container - O(env) merged with the container's own C(env) - and
    returns one message per container and problem, V([]) when there is none.
  - An C(HTTP_CONTROL_SERVER_ADDRESS) whose port is not O(api_port) (the guide's C(GLUETUN_API_PORT)) - "Verify
    GLUETUN_API_PORT matches HTTP_CONTROL_SERVER_ADDRESS. Use the internal port, not the external port."
  - Variables an env file (one C(KEY=value) per line) cannot hold - a name other than letters, digits and C(_)
    (not starting with a digit), a mapping or list value, a value on several lines. The messages name the
    variables, never their values.
options:
  _input:
    description: The Gluetun containers - each with C(name), optionally C(env) and C(api_host_port).
    type: list
    elements: dict
    required: true
  env:
    description: Environment for every container; each container's own C(env) overrides it.
    type: dict
    default: {}
  api_port:
    description: The control server's internal port, the guide's C(GLUETUN_API_PORT).
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Check the Gluetun environments
  vars:
    problems: >-
      {{ gluetun_containers | acestream.orchestrator.gluetun_env_problems(env=gluetun_env, api_port=8001) }}
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
    quiet: true
  no_log: true
"""

RETURN = r"""
_value:
  description: The problems, one message each.
  type: list
  elements: str
  sample:
    - >-
      The env of Gluetun container 'gluetun1' has 1 unusable variable(s): SERVER_NAMES. Names are letters, digits
      and '_'; values are single-line strings, numbers or booleans (an env file holds one KEY=value per line).
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_checks import (
    StackCheckError,
    gluetun_env_problems as _gluetun_env_problems,
)


def gluetun_env_problems(containers, env=None, api_port=None):
    """The problem messages (see RETURN)."""
    try:
        return _gluetun_env_problems(containers, env=env, api_port=api_port)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.gluetun_env_problems: %s" % exc)


class FilterModule:
    """The acestream.orchestrator gluetun_env_problems filter."""

    def filters(self):
        return {"gluetun_env_problems": gluetun_env_problems}
