# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gluetun_reshape
short_description: What goes before a stack's Gluetun containers are converged (VPNs that left it, ports that move)
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - A stack owns the containers that carry its labels (C(acestream.managed-by) and C(acestream.pool)) and the files
    under its directory. From the Docker host's containers and the Gluetun containers to converge, decides what the
    gluetun role removes before it converges any of them, so that a VPN dropped or renamed leaves nothing behind and
    a range that moves between VPNs converges in one run.
  - C(leftovers) are the stack's Gluetun containers (by their labels) that O(instances) no longer names;
    C(engines) the stack's engines on them (engine_pool's, and the orchestrator app's by the stack's
    C(CONTAINER_LABEL)), which go first.
  - C(remove_first) are the kept Gluetun containers whose host ports published now meet ports another Gluetun
    container is to publish, and whose own bindings change; Docker would refuse the other's (re-)creation
    ("port is already allocated") while they hold them.
  - C(absent) and C(absent_if_empty) are the M(acestream.orchestrator.stack_files) lists that remove the files of
    the VPNs no longer named (a leftover container's, or a directory found under C(<stack_dir>/gluetun)); the env
    and auth files always (they hold the VPN credentials and the API key), the state directory unless O(state_keep).
  - With O(instances) V([]) everything of the Gluetun side is a leftover (C(acestream_state=absent)).
options:
  _input:
    description: The C(containers) list of M(community.docker.docker_host_info) (verbose).
    type: list
    elements: dict
    required: true
  pool:
    description: The stack's pool name (C(acestream_pool_name)), the value of its C(acestream.pool) label.
    type: str
    required: true
  instances:
    description:
      - The Gluetun containers to converge, as P(acestream.orchestrator.gluetun_instances#filter) describes them
        (C(name), C(published)). V([]) to remove the whole Gluetun side.
    type: list
    elements: dict
    required: true
  stack_dir:
    description: The stack directory (C(acestream_stack_dir)).
    type: str
    required: true
  vpn_dirs:
    description: The directories found under C(<stack_dir>/gluetun) (paths), so that files are found without their
      container.
    type: list
    elements: str
    default: []
  state_keep:
    description: Keep the state directory of a VPN that leaves (C(acestream_gluetun_state_keep)).
    type: bool
    default: true
  inspects:
    description:
      - The inspect of each Gluetun container by name (null for one that does not exist), from
        M(acestream.orchestrator.stack_host). Null - every container of O(instances) is to be converged.
    type: dict
  image:
    description: The inspect of the Gluetun image (null when it is not on the Docker host).
    type: dict
  converge_options:
    description:
      - The other options of the gluetun role's docker_container task - C(pull), C(restart_policy),
        C(capabilities), C(devices), C(healthcheck), C(network) - against which each container is found in place
        or not. Each entry of O(instances) must then have C(labels) and C(mounts).
    type: dict
"""

EXAMPLES = r"""
- name: Decide what goes first
  ansible.builtin.set_fact:
    reshape: >-
      {{ docker_info.containers | acestream.orchestrator.gluetun_reshape(pool='acestream', instances=gluetun,
           stack_dir='/opt/acestream', vpn_dirs=found.files | map(attribute='path') | list) }}
  # {leftovers: [gluetun2], engines: [acestream-gluetun2-19500], remove_first: [],
  #  absent: [/opt/acestream/gluetun/gluetun2/gluetun.env, ...], absent_if_empty: [...]}
"""

RETURN = r"""
_value:
  description: What to remove before the Gluetun containers are converged.
  type: dict
  contains:
    leftovers: {description: The stack's Gluetun containers no longer named., type: list, elements: str}
    engines: {description: The stack's engines on those containers., type: list, elements: str}
    remove_first: {description: Kept Gluetun containers holding host ports another one is to publish., type: list,
                   elements: str}
    absent: {description: Files to remove (stack_files absent)., type: list, elements: str}
    absent_if_empty: {description: Directories to remove when empty (stack_files absent_if_empty)., type: list,
                      elements: str}
    converge:
      description:
        - The Gluetun containers the docker_container task converges, in the order of O(instances) - those removed
          first and those not found in place (each option compared at least as strictly as docker_container does;
          a healthcheck given, C(pull=always) or a missing inspect send every one). The others are left out of its
          loop.
      type: list
      elements: str
    foreign: {description: Containers holding a name of the stack that it does not own (left in place)., type: list,
              elements: str}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import (
    ReshapeError,
    gluetun_reshape as _gluetun_reshape,
)


def gluetun_reshape(containers, pool, instances, stack_dir, vpn_dirs=(), state_keep=True, inspects=None, image=None,
                    converge_options=None):
    """What goes before the Gluetun containers are converged, and which are converged (see RETURN)."""
    try:
        return _gluetun_reshape(containers, pool, instances, stack_dir, vpn_dirs, state_keep, inspects=inspects,
                                image=image, converge_options=converge_options)
    except ReshapeError as exc:
        raise AnsibleFilterError("acestream.orchestrator.gluetun_reshape: %s" % exc)


class FilterModule:
    """The acestream.orchestrator gluetun_reshape filter."""

    def filters(self):
        return {"gluetun_reshape": gluetun_reshape}
