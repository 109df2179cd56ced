# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_port_conflicts
short_description: The host ports of a stack that Docker would refuse with "port is already allocated"
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Lists the host ports a stack publishes - each Gluetun container's control server (its C(api_host_port) in the
    port plan), each VPN's engine range and the orchestrator app's port - and finds those Docker would refuse.
  - Inside the stack, two bindings clash when their ports overlap and their host addresses meet (the same address,
    or either one empty, C(0.0.0.0) or C(::)).
  - With O(containers), also the ports that other running containers (not the stack's Gluetun containers nor its
    orchestrator app) already publish over TCP on a meeting address; with O(listening), the ports a process on the
    Docker host listens on.
  - Returns one message per kind of conflict, naming the ports (compressed to ranges, C(19000-19004)) and the port
    guide's fix; V([]) when there is none, so a task can fail with the list.
options:
  _input:
    description:
      - The port plan, from P(acestream.orchestrator.port_plan#filter). Planned with O(acestream.orchestrator.port_plan#filter:api_port),
        it holds the control servers' external ports too.
    type: dict
    required: true
  api_bind:
    description: The host address the control servers are published on (empty for every interface).
    type: str
    default: ""
  port_range_bind:
    description: The host address the engine ranges are published on (empty for every interface).
    type: str
    default: ""
  orchestrator:
    description:
      - The orchestrator app, when it runs - C(name) (its container name), C(port) (its host port) and C(bind) (its
        host address). V(null) when it is off.
    type: dict
  containers:
    description:
      - The Docker host's containers, the C(containers) list of M(community.docker.docker_host_info). V(null) (the
        default) checks only the stack's own ports against each other.
    type: list
    elements: dict
  pool:
    description:
      - The stack's pool name. With it, every container carrying that stack's labels is the stack's own, whatever
        its name (a Gluetun container the inventory no longer names, which the gluetun role removes first, is not
        "another container").
    type: str
  listening:
    description:
      - The text of C(/proc/net/tcp) and C(/proc/net/tcp6) on the Docker host. With it, a port of the stack that a
        process (not a container) listens on is reported too, before anything is changed. V(null) (the default)
        does not check.
    type: str
"""

EXAMPLES = r"""
- name: Check the stack's own host ports
  vars:
    conflicts: >-
      {{ plan | acestream.orchestrator.host_port_conflicts(api_bind='127.0.0.1',
           orchestrator={'name': 'acestream-orchestrator', 'port': 8000, 'bind': '127.0.0.1'}) }}
  ansible.builtin.assert:
    that: conflicts | length == 0
    fail_msg: "{{ conflicts | join(' ') }}"
    quiet: true

- name: And against what the Docker host already publishes
  ansible.builtin.assert:
    that: conflicts | length == 0
    fail_msg: "{{ conflicts | join(' ') }}"
    quiet: true
  vars:
    conflicts: "{{ plan | acestream.orchestrator.host_port_conflicts(containers=docker_info.containers) }}"
  # Docker would refuse with "port is already allocated": host port 19002 (the engine ports of gluetun1
  # (19000-19049)) is already published by container other. Fix from the port guide: "Check if another
  # container is using the same ports" ...
"""

RETURN = r"""
_value:
  description:
    - The conflicts, one message for the stack's own clashes, one for the ports other containers hold and one for the
      ports processes on the Docker host hold.
  type: list
  elements: str
  sample:
    - >-
      Docker would refuse with "port is already allocated": the control server of gluetun (api_host_port) and the
      orchestrator app (acestream_orchestrator_port) both publish host port 8000. Fix from the port guide ...
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._host_ports import (
    host_port_conflicts as _host_port_conflicts,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def host_port_conflicts(plan, api_bind="", port_range_bind="", orchestrator=None, containers=None, pool=None,
                        listening=None):
    """The conflict messages (see RETURN)."""
    try:
        return _host_port_conflicts(plan, api_bind=api_bind, port_range_bind=port_range_bind,
                                    orchestrator=orchestrator, containers=containers, pool=pool, listening=listening)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.host_port_conflicts: %s" % exc)


class FilterModule:
    """The acestream.orchestrator host_port_conflicts filter."""

    def filters(self):
        return {"host_port_conflicts": host_port_conflicts}
