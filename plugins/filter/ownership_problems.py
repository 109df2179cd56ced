# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ownership_problems
short_description: Containers holding a name the stack converges that the stack does not own
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - A container belongs to the stack whose labels it carries (C(acestream.managed-by) and C(acestream.pool)). The
    roles never replace or remove a container that is not their stack's own; this filter names each container
    that holds one of the stack's Gluetun names (O(gluetun)) or its orchestrator app's name (O(app_name)) without
    the stack's labels - a container made by hand, another stack's Gluetun container, an engine - and its owner;
    with O(plan), the pool's engine slots too.
options:
  _input:
    description: The Docker host's containers by name, from P(acestream.orchestrator.containers_by_name#filter).
    type: dict
    required: true
  pool:
    description: The stack's name (C(acestream.pool)).
    type: str
    required: true
  gluetun:
    description: The stack's Gluetun container names.
    type: list
    elements: str
    default: []
  app_name:
    description: The orchestrator app's container name; V(null) when the app is off.
    type: str
  plan:
    description:
      - The port plan, from P(acestream.orchestrator.port_plan#filter), when the pool's engines are the stack's to
        converge - a container holding the name of one of its engine slots (C(<pool>-<vpn>-<port>)) without the
        pool's labels is named too. V(null) (the default) checks no engine name.
    type: dict
"""

EXAMPLES = r"""
- name: Refuse to take over a container the stack does not own
  vars:
    problems: >-
      {{ docker_containers | acestream.orchestrator.ownership_problems(pool='acestream',
                                                                       gluetun=['gluetun1', 'gluetun2']) }}
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: One message per container not owned by the stack, naming it and its owner.
  type: list
  elements: str
  sample:
    - >-
      Container 'gluetun1' (acestream_gluetun_containers) is not this stack's: it is the Gluetun container of stack
      'other' (acestream.managed-by=acestream.orchestrator.gluetun, acestream.pool=other). ...
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._ownership import (
    ownership_problems as _ownership_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def ownership_problems(containers, pool, gluetun=(), app_name=None, plan=None):
    """The ownership messages (see RETURN)."""
    try:
        return _ownership_problems(containers, pool, gluetun=gluetun, app_name=app_name, plan=plan)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.ownership_problems: %s" % exc)


class FilterModule:
    """The acestream.orchestrator ownership_problems filter."""

    def filters(self):
        return {"ownership_problems": ownership_problems}
