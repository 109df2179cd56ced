# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: engines_readiness
short_description: Whether the engines can be converged in this run, given the Gluetun containers
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - The engines live in their Gluetun container's network namespace, so they follow it. A Gluetun container missing
    from the Docker host fails the run, with the port guide's "VPN container ... is not healthy" and what to do.
  - The Gluetun containers the gluetun role converged in this play exist, except in check mode, where a Gluetun
    container still to be created or re-created defers the engines (nothing of them can be checked yet); the
    message then says what would happen.
  - P(acestream.orchestrator.engines#role) asks it before it waits for the VPNs.
options:
  _input:
    description: The Gluetun container names of the stack, in order.
    type: list
    elements: str
    required: true
  containers:
    description:
      - The Docker host's containers by name, listed before anything changed
        (P(acestream.orchestrator.containers_by_name#filter)).
      - Null when the target was not asked (C(acestream_target_checks=false)); M(acestream.orchestrator.gluetun_status)
        and M(acestream.orchestrator.engine_pool) then name a missing VPN container themselves.
    type: dict
  gluetun_results:
    description: The gluetun role's M(community.docker.docker_container) results in this play; null when it did not run.
    type: list
    elements: dict
  check_mode:
    description: Whether the play runs in check mode.
    type: bool
    default: false
  host:
    description: The inventory host, for the message.
    type: str
    default: ""
  pool:
    description: The pool name, for the message.
    type: str
    default: ""
  replicas:
    description: The engine count, for the message.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Decide whether the engines can be converged in this run
  ansible.builtin.set_fact:
    readiness: >-
      {{ ['gluetun1', 'gluetun2'] | acestream.orchestrator.engines_readiness(
           containers=docker_containers, gluetun_results=converge.results | default(none),
           check_mode=ansible_check_mode, host=inventory_hostname, pool='acestream', replicas=4) }}
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    missing:
      description: The Gluetun containers not on the Docker host (and not created in this play).
      type: list
      elements: str
    deferred:
      description: True in check mode when a Gluetun container is still to be created or re-created.
      type: bool
    message:
      description: Why the run fails (a container missing) or what would happen (deferred); empty otherwise.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import (
    ReshapeError,
    engines_readiness as _engines_readiness,
)


def engines_readiness(vpn_names, containers=None, gluetun_results=None, check_mode=False, host="", pool="",
                      replicas=0):
    """The decision (see RETURN)."""
    try:
        return _engines_readiness(vpn_names, containers=containers, gluetun_results=gluetun_results,
                                  check_mode=check_mode, host=host, pool=pool, replicas=replicas)
    except ReshapeError as exc:
        raise AnsibleFilterError("acestream.orchestrator.engines_readiness: %s" % exc)


class FilterModule:
    """The acestream.orchestrator engines_readiness filter."""

    def filters(self):
        return {"engines_readiness": engines_readiness}
