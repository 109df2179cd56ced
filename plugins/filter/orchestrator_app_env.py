# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: orchestrator_app_env
short_description: The AceStream Orchestrator app's environment, derived from the port plan
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Derives the environment of the AceStream Orchestrator app from the port plan, in the port guide's names -
    C(APP_PORT) (V(8000)), C(VPN_MODE), C(GLUETUN_CONTAINER_NAME) and C(GLUETUN_CONTAINER_NAME_2),
    C(GLUETUN_API_PORT), C(PORT_RANGE_HOST), C(GLUETUN_PORT_RANGE_1) and C(GLUETUN_PORT_RANGE_2), C(ACE_HTTPS_RANGE),
    C(MIN_REPLICAS) and C(MAX_REPLICAS) (at least 1), C(DOCKER_NETWORK), when given C(ENGINE_VARIANT) and, with
    O(pool), C(CONTAINER_LABEL) (C(acestream.app-pool=<pool>)) and C(VPN_UNHEALTHY_RESTART_TIMEOUT_S) V(2147483647) -
    the app never restarts the stack's Gluetun containers (a restart strands every engine in the old network
    namespace; Gluetun restarts its own tunnel, and Docker's restart policy a Gluetun that exited).
  - C(PORT_RANGE_HOST) is O(port_range_host), or the span of the plan's ranges when it is empty.
  - O(env) overrides any of them; with O(pool) it may not set C(CONTAINER_LABEL),
    C(VPN_UNHEALTHY_RESTART_TIMEOUT_S), C(MIN_REPLICAS), C(MAX_REPLICAS) or C(ENGINE_VARIANT) (the app's engine
    settings file overrides the last three). Every value is a string, trimmed; booleans are V(true)/V(false), V(null)
    empty.
  - C(API_KEY) is not in it - add it where the secret is known.
options:
  _input:
    description: The port plan, from P(acestream.orchestrator.port_plan#filter).
    type: dict
    required: true
  vpn_mode:
    description: C(VPN_MODE), V(single) or V(redundant).
    type: str
    required: true
  api_port:
    description: C(GLUETUN_API_PORT), the Gluetun control server's internal port.
    type: int
    required: true
  port_range_host:
    description: C(PORT_RANGE_HOST); empty for the span of the plan's ranges.
    type: str
    default: ""
  https_port_range:
    description: C(ACE_HTTPS_RANGE).
    type: str
    default: 45000-49999
  replicas:
    description: The number of engines, C(MIN_REPLICAS) (and C(MAX_REPLICAS), at least 1).
    type: int
    default: 0
  docker_network:
    description: C(DOCKER_NETWORK).
    type: str
    default: ""
  engine_variant:
    description: C(ENGINE_VARIANT); left out when V(null).
    type: str
  env:
    description: More environment; it overrides the derived values.
    type: dict
    default: {}
  pool:
    description:
      - The stack's name. Given, C(CONTAINER_LABEL) is C(acestream.app-pool=<pool>) - the app removes every
        container carrying its label when it starts, so each stack on a host needs its own.
    type: str
    version_added: 0.2.0
"""

EXAMPLES = r"""
- name: Derive the app's environment
  ansible.builtin.set_fact:
    app_env: >-
      {{ plan | acestream.orchestrator.orchestrator_app_env(vpn_mode='redundant', api_port=8001,
           port_range_host='19000-19999', replicas=4, docker_network='aceserver', env={'DEBUG_MODE': true}) }}
  # {APP_PORT: '8000', VPN_MODE: redundant, GLUETUN_CONTAINER_NAME: gluetun1, GLUETUN_CONTAINER_NAME_2: gluetun2,
  #  GLUETUN_API_PORT: '8001', PORT_RANGE_HOST: 19000-19999, GLUETUN_PORT_RANGE_1: 19000-19499, ...,
  #  DEBUG_MODE: 'true'}
"""

RETURN = r"""
_value:
  description: Variable name to value, every value a string.
  type: dict
  sample:
    APP_PORT: "8000"
    VPN_MODE: single
    GLUETUN_CONTAINER_NAME: gluetun
    GLUETUN_API_PORT: "8001"
    PORT_RANGE_HOST: 19000-19099
    GLUETUN_PORT_RANGE_1: 19000-19099
    ACE_HTTPS_RANGE: 45000-49999
    MIN_REPLICAS: "2"
    MAX_REPLICAS: "2"
    DOCKER_NETWORK: aceserver
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import DEFAULT_HTTPS_PORT_RANGE
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_checks import (
    StackCheckError,
    orchestrator_app_env as _orchestrator_app_env,
)


def orchestrator_app_env(plan, vpn_mode=None, api_port=None, port_range_host="",
                         https_port_range=DEFAULT_HTTPS_PORT_RANGE, replicas=0, docker_network="", engine_variant=None,
                         env=None, pool=None):
    """The app's environment (see RETURN)."""
    try:
        return _orchestrator_app_env(plan, vpn_mode, api_port, port_range_host=port_range_host,
                                     https_port_range=https_port_range, replicas=replicas,
                                     docker_network=docker_network, engine_variant=engine_variant, env=env, pool=pool)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.orchestrator_app_env: %s" % exc)


class FilterModule:
    """The acestream.orchestrator orchestrator_app_env filter."""

    def filters(self):
        return {"orchestrator_app_env": orchestrator_app_env}
