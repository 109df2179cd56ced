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
  - Fails with an error naming the option to fix on a reversed, non-numeric or out-of-range (1-65535) range,
    overlapping ranges, a VPN named twice, an explicit range for a VPN not in the list, negative replicas or replicas
    beyond the capacity of the ranges.
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
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    DEFAULT_HTTPS_PORT_RANGE,
    PortPlanError,
    build_plan,
)


def port_plan(vpn_names, port_range=None, vpn_port_ranges=None, replicas=0, https_port_range=DEFAULT_HTTPS_PORT_RANGE):
    """The port plan as a dict (see RETURN)."""
    try:
        return build_plan(vpn_names, port_range=port_range, vpn_port_ranges=vpn_port_ranges or {},
                          replicas=replicas, https_port_range=https_port_range).to_dict()
    except PortPlanError as exc:
        raise AnsibleFilterError("acestream.orchestrator.port_plan: %s" % exc)


class FilterModule:
    """The acestream.orchestrator port plan filter."""

    def filters(self):
        return {"port_plan": port_plan}
