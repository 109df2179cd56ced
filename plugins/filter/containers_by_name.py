# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: containers_by_name
short_description: Index the containers of a Docker host by name
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Turns the container list of M(community.docker.docker_host_info) (with O(community.docker.docker_host_info#module:containers)
    and O(community.docker.docker_host_info#module:verbose_output)) into a mapping of container name to its ID, state
    and labels, so tasks look a container up by name.
  - The first name of each container is used, without its leading C(/). A container without a state is
    V(unknown); a container without labels has V({}).
  - V(null) (no list, for example when the Docker Engine did not answer) gives V({}).
options:
  _input:
    description: The C(containers) list registered from M(community.docker.docker_host_info).
    type: list
    elements: dict
    required: true
  pool:
    description: The stack's pool name (C(acestream_pool_name)); each container's C(owner) then says what it is to that stack.
    type: str
"""

EXAMPLES = r"""
- name: List the Docker host's containers
  community.docker.docker_host_info:
    containers: true
    containers_all: true
    verbose_output: true
  register: docker_info

- name: Index them by name
  ansible.builtin.set_fact:
    docker_containers: "{{ docker_info.containers | acestream.orchestrator.containers_by_name }}"
  # {gluetun1: {id: 3f2c..., state: running, labels: {acestream.pool: acestream, ...}}, ...}
"""

RETURN = r"""
_value:
  description: Container name to its ID, state and labels.
  type: dict
  contains:
    id: {description: The container ID., type: str}
    state: {description: "The container state (V(running), V(exited), ...), V(unknown) when not given.", type: str}
    labels: {description: The container labels., type: dict}
    owner:
      description: What the container is to stack O(pool) by its labels (V(gluetun), V(app), V(engine), V(app_engine)); null when it is not that stack's.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._ownership import (
    containers_by_name as _containers_by_name,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def containers_by_name(containers, pool=None):
    """Container name -> {id, state, labels, owner} (see RETURN)."""
    try:
        return _containers_by_name(containers, pool=pool)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.containers_by_name: %s" % exc)


class FilterModule:
    """The acestream.orchestrator containers_by_name filter."""

    def filters(self):
        return {"containers_by_name": containers_by_name}
