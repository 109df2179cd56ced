# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: container_changes
short_description: What docker_container changed in each container, environment values left out
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Summarises the registered C(results) of a looped M(community.docker.docker_container) task run with C(diff)
    into one entry per changed container, safe to print when the task itself is C(no_log).
  - >-
    A container that did not exist is V(created). Otherwise each changed key of its diff is one line -
    C(env) gives only the names of the variables that changed, never a value (they hold VPN credentials);
    C(labels) gives the labels that changed with their new values; any other key C(KEY: BEFORE -> AFTER), the
    values as JSON.
    A container changed without a diff line (only started) is V(started).
  - The container's name is the loop item's C(name) (or the item itself when it is a string).
options:
  _input:
    description: The C(results) of the looped M(community.docker.docker_container) task.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Report what changed in the Gluetun containers
  ansible.builtin.debug:
    msg: "{{ item.container }}: {{ item.changes | join('; ') }}"
  loop: "{{ converge.results | acestream.orchestrator.container_changes }}"
  loop_control:
    label: "{{ item.container }}"
  # gluetun1: env: WIREGUARD_PRIVATE_KEY (values not shown); labels: acestream.config-hash=3c1f...
"""

RETURN = r"""
_value:
  description: One entry per changed container, in the order of the results.
  type: list
  elements: dict
  contains:
    container: {description: The container name., type: str}
    changes:
      description: What changed, one line each.
      type: list
      elements: str
      sample: ["env: WIREGUARD_PRIVATE_KEY (values not shown)", "published_ports: [\"8001:8001\"] -> [\"8002:8001\"]"]
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._container_changes import (
    container_changes as _container_changes,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def container_changes(results):
    """[{container, changes}] (see RETURN)."""
    try:
        return _container_changes(results)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.container_changes: %s" % exc)


class FilterModule:
    """The acestream.orchestrator container_changes filter."""

    def filters(self):
        return {"container_changes": container_changes}
