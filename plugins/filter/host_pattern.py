# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_pattern
short_description: Check the host pattern a play of the collection runs on
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Returns C(acestream_hosts) as given when it is a host pattern (a non-empty string without control characters, or a
    list of them), and fails naming the variable and the fix otherwise.
  - The collection's playbooks use it in their C(hosts), which Ansible templates in its main process, before any task.
    That loads the collection's filter plugins there once. Without that, every task that calls one of the filters
    loads all of them again in its own worker process, which adds about 50 ms to the task.
options:
  _input:
    description: The host pattern, C(acestream_hosts).
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Run on the AceStream hosts
  hosts: "{{ acestream_hosts | default('all') | acestream.orchestrator.host_pattern }}"
  gather_facts: false
  roles:
    - acestream.orchestrator.gluetun
"""

RETURN = r"""
_value:
  description: The host pattern, as given.
  type: raw
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_input import host_pattern as _host_pattern
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def host_pattern(value):
    """The host pattern, checked (see RETURN)."""
    try:
        return _host_pattern(value)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.host_pattern: %s" % exc)


class FilterModule:
    """The acestream.orchestrator host_pattern filter."""

    def filters(self):
        return {"host_pattern": host_pattern}
