# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: port_plan
short_description: The port plan of AceStream engines behind Gluetun VPN containers
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Turns the list of Gluetun VPN container names, the host port range (the seed's C(PORT_RANGE_HOST)) and/or
    explicit per-VPN ranges, and the number of engines into the port plan that M(acestream.orchestrator.engine_pool)
    converges to, so templates and playbooks show and publish exactly the same ranges.
  - The host port range is split evenly between the VPNs without an explicit range, in order; the remainder goes to
    the first VPNs. Replicas are shared the same way.
  - With O(api_port) or O(api_host_ports), also plans each VPN's Gluetun control server, as the port guide's
    "Common Configurations" table does - the same internal port (C(HTTP_CONTROL_SERVER_ADDRESS) and the
    orchestrator's C(GLUETUN_API_PORT)) everywhere, and one external host port per VPN (C(8001:8001), C(8002:8001)).
    Without either, the plan has no control-server fields and no control-server checks.
  - Fails with an error naming the option to fix on a reversed, non-numeric or out-of-range (1-65535) range,
    overlapping ranges, a VPN named twice, an explicit range for a VPN not in the list, negative replicas or replicas
    beyond the capacity of the ranges.
  - With the control server planned, also fails on a non-numeric or out-of-range O(api_port) or external port, an
    O(api_port) inside an engine range or the HTTPS range (they share each VPN's network namespace), a wrong number
    of O(api_host_ports) or one for a VPN not in the list, an external port inside a published engine range or given
    to two VPNs (Docker's C(port is already allocated)).
options:
  _input:
    description: The Gluetun container names, in order (one for single mode, two for the seed's redundant mode).
    type: list
    elements: str
    required: true
  port_range:
    description:
      - The engine port range published by the VPNs together, C(START-END). Split evenly between the VPNs that have
        no entry in O(vpn_port_ranges).
      - When every VPN has an explicit range, only checked to contain them.
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
    description:
      - Engine HTTPS ports (not published). An engine's HTTPS port is the start of this range plus its HTTP port's
        offset in its VPN's range, so a VPN's capacity is also bounded by this range's size.
    type: str
    default: 45000-49999
  api_port:
    description:
      - The Gluetun control server's internal port, the seed's C(GLUETUN_API_PORT), written as
        C(HTTP_CONTROL_SERVER_ADDRESS=:PORT) into every VPN container (the same port for all of them).
      - It listens in each VPN's network namespace, next to the engines, so it must lie outside every engine range
        and the HTTPS range.
      - Giving it (or O(api_host_ports)) plans the control server. Defaults to V(8001), the port guide's port, when
        only O(api_host_ports) is given.
    type: int
  api_host_ports:
    description:
      - >-
        The external host ports of the control servers, one per VPN - a list in the order of the input names,
        for example V([8001, 8002]), or a mapping of VPN container name to port, for example V({gluetun2: 8002}).
      - A VPN without one gets O(api_port) plus its index (V(8001), V(8002), as in the guide's redundant example).
      - They share the host with the published engine ranges, so each must lie outside them and differ from the
        others.
      - Giving it (or O(api_port)) plans the control server.
    type: raw
  ports_per_engine:
    description:
      - Host ports each engine takes from its VPN's range - V(1) for the collection's engines, V(2) for the
        orchestrator app's (an HTTP and an API port each), which halves each VPN's capacity.
    type: int
    choices: [1, 2]
    default: 1
    version_added: 0.2.0
"""

EXAMPLES = r"""
- name: Show how two VPNs share the seed's range
  ansible.builtin.debug:
    msg: "{{ ['gluetun1', 'gluetun2'] | acestream.orchestrator.port_plan(port_range='19000-19999', replicas=4) }}"
  # vpns[0]: {name: gluetun1, index: 0, range: 19000-19499, start: 19000, end: 19499,
  #           size: 500, capacity: 500, share: 2}
  # vpns[1]: {name: gluetun2, index: 1, range: 19500-19999, start: 19500, end: 19999,
  #           size: 500, capacity: 500, share: 2}

- name: Publish each VPN's slice in a compose template
  ansible.builtin.set_fact:
    gluetun_engine_ports: >-
      {{ (vpn_names | acestream.orchestrator.port_plan(port_range=port_range_host, replicas=max_replicas)).vpns
         | items2dict(key_name='name', value_name='range') }}

- name: Explicit ranges (the orchestrator's GLUETUN_PORT_RANGE_1 / _2)
  ansible.builtin.debug:
    msg: >-
      {{ ['gluetun1', 'gluetun2'] | acestream.orchestrator.port_plan(
           vpn_port_ranges={'gluetun1': '19000-19099', 'gluetun2': '19500-19599'}, replicas=10) }}

- name: The control servers of the guide's redundant example (8001:8001 and 8002:8001)
  ansible.builtin.debug:
    msg: >-
      {{ (['gluetun1', 'gluetun2'] | acestream.orchestrator.port_plan(port_range='19000-19999', api_port=8001)).vpns
         | map(attribute='api_port_mapping') }}
  # ['8001:8001', '8002:8001']; each entry also has control_server_address ':8001', api_port 8001 and
  # api_host_port 8001 / 8002
"""

RETURN = r"""
_value:
  description: The port plan.
  type: dict
  contains:
    port_range:
      description: The O(port_range) given, or V(null).
      type: dict
      contains:
        start: {description: First port., type: int}
        end: {description: Last port., type: int}
        size: {description: Number of ports., type: int}
    https_port_range:
      description: The HTTPS range (same keys as RV(_value.port_range)).
      type: dict
    replicas:
      description: The number of engines.
      type: int
    total_capacity:
      description: How many engines the ranges hold together.
      type: int
    ports_per_engine:
      description: Host ports each engine takes from its VPN's range (O(ports_per_engine)).
      type: int
    vpns:
      description: One entry per VPN, in the input order.
      type: list
      elements: dict
      contains:
        name: {description: The Gluetun container name., type: str}
        index: {description: Position in the input list (0-based)., type: int}
        range: {description: The VPN's engine port range as C(START-END) text., type: str}
        start: {description: First port., type: int}
        end: {description: Last port., type: int}
        size: {description: Number of ports in the range., type: int}
        capacity: {description: How many engines the VPN can hold., type: int}
        share: {description: How many of the engines it gets., type: int}
        control_server_address:
          description: The Gluetun container's C(HTTP_CONTROL_SERVER_ADDRESS), C(:API_PORT).
          type: str
          returned: when O(api_port) or O(api_host_ports) is given
          sample: ":8001"
        api_port:
          description: The internal control-server port, the orchestrator's C(GLUETUN_API_PORT) (same for every VPN).
          type: int
          returned: when O(api_port) or O(api_host_ports) is given
          sample: 8001
        api_host_port:
          description: The external host port of this VPN's control server.
          type: int
          returned: when O(api_port) or O(api_host_ports) is given
          sample: 8002
        api_port_mapping:
          description: The Gluetun container's control-server port mapping, C(EXTERNAL:INTERNAL).
          type: str
          returned: when O(api_port) or O(api_host_ports) is given
          sample: "8002:8001"
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    DEFAULT_HTTPS_PORT_RANGE,
    PortPlanError,
    build_plan,
)


def port_plan(vpn_names, port_range=None, vpn_port_ranges=None, replicas=0, https_port_range=DEFAULT_HTTPS_PORT_RANGE,
              api_port=None, api_host_ports=None, ports_per_engine=1):
    """The port plan as a dict (see RETURN)."""
    try:
        return build_plan(vpn_names, port_range=port_range, vpn_port_ranges=vpn_port_ranges or {},
                          replicas=replicas, https_port_range=https_port_range, api_port=api_port,
                          api_host_ports=api_host_ports, ports_per_engine=ports_per_engine).to_dict()
    except PortPlanError as exc:
        raise AnsibleFilterError("acestream.orchestrator.port_plan: %s" % exc)


class FilterModule:
    """The acestream.orchestrator port plan filter."""

    def filters(self):
        return {"port_plan": port_plan}
