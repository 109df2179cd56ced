# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: port_plan_problems
short_description: What is wrong with the inputs of a port plan, with the port guide's fix
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Takes the same inputs as P(acestream.orchestrator.port_plan#filter) and returns V([]) when that filter would
    accept them, else one message - the plan's error (naming the option to fix), the roles' variables behind the
    plan's options (C(port_range) is C(acestream_port_range_host), the guide's C(PORT_RANGE_HOST), ...) and the fix
    the port guide gives for that kind of error.
  - The fix is chosen by what the error is about and which option it names - overlapping ranges ("Ensure ranges
    don't overlap"), ranges too small for the replicas ("Choose a range that can accommodate your MAX_REPLICAS
    setting"), an explicit range outside C(PORT_RANGE_HOST) ("Check that PORT_RANGE_HOST matches Gluetun port
    mappings"), a control-server port in the engines' namespace, an external port taken twice ("Different External
    Ports"), a value that is not a range or a number.
  - Lets a task check the plan with M(ansible.builtin.assert) instead of rescuing the filter's error.
options:
  _input:
    description: The Gluetun container names, in order.
    type: list
    elements: str
    required: true
  port_range:
    description: The engine port range published by the VPNs together, C(START-END).
    type: str
  vpn_port_ranges:
    description: Explicit ranges, VPN container name to C(START-END).
    type: dict
    default: {}
  replicas:
    description: Number of engines to place.
    type: int
    default: 0
  https_port_range:
    description: Engine HTTPS ports (not published).
    type: str
    default: 45000-49999
  api_port:
    description: The Gluetun control server's internal port; given (or O(api_host_ports)), the control servers are checked too.
    type: int
  api_host_ports:
    description: The external host ports of the control servers, a list in the order of the input or a mapping by name.
    type: raw
  ports_per_engine:
    description:
      - Host ports each engine takes from its VPN's range - V(1) for the collection's engines, V(2) for the
        orchestrator app's (an HTTP and an API port each), which halves each VPN's capacity.
    type: int
    choices: [1, 2]
    default: 1
    version_added: 0.2.0
seealso:
  - plugin: acestream.orchestrator.port_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Check the port plan
  vars:
    problems: >-
      {{ vpn_names | acestream.orchestrator.port_plan_problems(port_range='19000-19009', replicas=12) }}
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
    quiet: true
  # The port plan is not valid: replicas: 12 engines exceed the capacity of the port ranges (10: ...) ...
  # Fix from the port guide: "Size: Choose a range that can accommodate your MAX_REPLICAS setting" ...
"""

RETURN = r"""
_value:
  description: V([]), or the one message saying what is wrong and how to fix it.
  type: list
  elements: str
  sample:
    - >-
      The port plan is not valid: vpn_port_ranges.gluetun2: the ranges of 'gluetun1' (19000-19003) and 'gluetun2'
      (19002-19005) overlap; give each VPN its own ports. Variables: ... Fix from the port guide: "Port Range Not
      Split: Verify each VPN has its own port range. Ensure ranges don't overlap" (and keep ACE_HTTPS_RANGE apart
      from them).
"""

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import DEFAULT_HTTPS_PORT_RANGE
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_checks import (
    port_plan_problems as _port_plan_problems,
)


def port_plan_problems(vpn_names, port_range=None, vpn_port_ranges=None, replicas=0,
                       https_port_range=DEFAULT_HTTPS_PORT_RANGE, api_port=None, api_host_ports=None, ports_per_engine=1):
    """The problem messages (see RETURN)."""
    return _port_plan_problems(vpn_names, port_range=port_range, vpn_port_ranges=vpn_port_ranges, replicas=replicas,
                               https_port_range=https_port_range, api_port=api_port, api_host_ports=api_host_ports,
                               ports_per_engine=ports_per_engine)


class FilterModule:
    """The acestream.orchestrator port_plan_problems filter."""

    def filters(self):
        return {"port_plan_problems": port_plan_problems}
