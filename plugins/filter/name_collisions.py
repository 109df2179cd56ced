# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: name_collisions
short_description: The container names of one stack that would replace each other
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - A Gluetun container named like one of the pool's engine slots (C(<pool>-<vpn>-<port>)), or the orchestrator app
    named like a Gluetun container, would take the other's place on every run. Returns one message each, V([])
    when every name is its own.
options:
  _input:
    description: The port plan, from P(acestream.orchestrator.port_plan#filter).
    type: dict
    required: true
  pool:
    description: The pool's name (the engines' name prefix).
    type: str
    required: true
  app_name:
    description: The orchestrator app's container name; V(null) when the app is off.
    type: str
"""

EXAMPLES = r"""
- name: Check that the stack's names are distinct
  vars:
    problems: "{{ plan | acestream.orchestrator.name_collisions(pool='acestream', app_name='acestream-orchestrator') }}"
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: The collisions, one message each.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_checks import (
    StackCheckError,
    name_collisions as _name_collisions,
)


def name_collisions(plan, pool, app_name=None):
    """The collision messages (see RETURN)."""
    try:
        return _name_collisions(plan, pool, app_name=app_name)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.name_collisions: %s" % exc)


class FilterModule:
    """The acestream.orchestrator name_collisions filter."""

    def filters(self):
        return {"name_collisions": name_collisions}
