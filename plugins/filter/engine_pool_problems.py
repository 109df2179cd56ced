# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: engine_pool_problems
short_description: What M(acestream.orchestrator.engine_pool) would refuse in the options a role gives it
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Runs the very validation M(acestream.orchestrator.engine_pool) makes on its options, without any I/O, so that a
    role can refuse before it touches anything (before the Gluetun containers are created) what the engine pool
    would refuse after - the reserved ports inside the VPNs' network namespaces (the control server's
    O(api_port), Gluetun's health server on 9999), the engine environment (the variables that carry the ports,
    names with C(=), null or list values), the credentials.
  - Returns V([]), or one message naming the engines role's variable and engine_pool's option. Never shows the
    API key.
options:
  _input:
    description: The Gluetun container names (engine_pool's O(acestream.orchestrator.engine_pool#module:vpn_containers)).
    type: list
    elements: str
    required: true
  name:
    description: The pool's name.
    type: str
  replicas:
    description: The number of engines.
    type: int
  port_range:
    description: The host port range split between the VPNs.
    type: str
  vpn_port_ranges:
    description: Explicit ranges by VPN.
    type: dict
  https_port_range:
    description: The engines' HTTPS ports.
    type: str
  engine_variant:
    description: The engine variant.
    type: str
  image:
    description: The engine image.
    type: str
  env:
    description: More environment for every engine.
    type: dict
  forwarded_port:
    description: V(auto) or V(off).
    type: str
  api_port:
    description: The control server's internal port.
    type: int
  api_key:
    description: The control-server API key.
    type: str
  on_unhealthy_vpn:
    description: V(fail) or V(failover).
    type: str
"""

EXAMPLES = r"""
- name: Check the engines' options before anything changes
  vars:
    problems: >-
      {{ ['gluetun1', 'gluetun2'] | acestream.orchestrator.engine_pool_problems(
           name='acestream', replicas=4, port_range='19000-19099', https_port_range='45000-49999',
           env={'HTTP_PORT': '1'}, api_port=8001) }}
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: V([]), or the one problem engine_pool would report, naming the role variable.
  type: list
  elements: str
  sample:
    - >-
      The engines role cannot converge this pool: acestream_engine_env (engine_pool's env): HTTP_PORT is set by the
      pool from the engine's slot (its ports); remove it from env (the pool sets CONF, HTTP_PORT, ...)
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_checks import (
    StackCheckError,
    engine_pool_problems as _engine_pool_problems,
)


def engine_pool_problems(vpn_names, **options):
    """The problem messages (see RETURN)."""
    try:
        return _engine_pool_problems(vpn_names, **options)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.engine_pool_problems: %s" % exc)


class FilterModule:
    """The acestream.orchestrator engine_pool_problems filter."""

    def filters(self):
        return {"engine_pool_problems": engine_pool_problems}
