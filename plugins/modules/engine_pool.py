#!/usr/bin/python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: engine_pool
short_description: Converge a pool of AceStream engines onto the port ranges of Gluetun VPN containers
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Runs O(replicas) AceStream engine containers inside the network namespaces of one or more Gluetun VPN containers
    (C(network_mode=container:<Gluetun ID>)). Each VPN gets its own slice of the host port range (the seed's
    C(PORT_RANGE_HOST), split evenly in order) or an explicit range, and its engines get HTTP ports inside that
    slice, the ports the VPN container publishes.
  - An engine's identity is its slot, the pair (VPN, HTTP port); its container name is derived from it
    (C(<name>-<vpn>-<port>)), so two runs can never hand out one port twice. Labels carry the VPN, the ports, the
    forwarded flag, the P2P port and a hash of the desired spec, so a run that changes nothing decides from one
    container list call.
  - Repairs drift - missing, stopped, exited, paused or crash-looping engines; a changed image or spec; engines attached
    to a Gluetun container that was re-created or removed; engines left in a dead network namespace by a Gluetun
    restart; engines on a VPN no longer listed; surplus engines (highest slots first); a forwarded port that moved
    (only the engines whose port went away are re-created). Engines that already match keep their slot, on every rerun and
    on scale-up.
  - Before any change, checks that the ranges are valid and do not overlap, that every VPN can hold its share, that
    each VPN container publishes its range on the same host ports (else the seed's C(Port Range Mismatch)), and that
    each VPN container exists, runs, is C(healthy) to Docker (or has no healthcheck) and its control server reports the
    VPN C(running) (C(GET /v1/vpn/status), read on every run, since a VPN stopped through the control server stays
    C(healthy) to Docker), else C(VPN container '<name>' is not healthy - cannot start AceStream engine).
  - With O(forwarded_port=auto), reads each VPN's forwarded ports from its control server (Gluetun C(latest) forwards
    up to 5 on ProtonVPN, Perfect Privacy 3); each port goes to its own engine of that VPN as its P2P port
    (C(min(ports, engines of the VPN)) forwarded engines), stably (an engine whose port is still forwarded keeps it).
  - See the collection's C(docs/engine_pool.md) for the decisions behind identity, labels and drift detection.
extends_documentation_fragment:
  - acestream.orchestrator.pool
attributes:
  check_mode:
    support: full
    description: Reports the same RV(actions) and C(changed) that the real run then performs, without any change.
  diff_mode:
    support: full
    description: The engines before and after, by container name.
  idempotent:
    support: full
    description: A second run with the same options reports C(changed=false).
options:
  state:
    description:
      - V(present) converges the pool; V(absent) removes every engine of the pool (VPN containers are not needed).
    type: str
    choices: [present, absent]
    default: present
  vpn_containers:
    description:
      - Gluetun container names, in order. One is the seed's single mode, two its redundant mode; more are allowed.
      - Required with O(state=present).
    type: list
    elements: str
  pull:
    description:
      - V(missing) pulls the image when it is not on the Docker host and an engine must be created; V(never) fails then.
    type: str
    choices: [missing, never]
    default: missing
  forwarded_port:
    description:
      - V(auto) reads each VPN's forwarded ports from its control server (C(/v1/portforward), or
        C(/v1/openvpn/portforwarded), one port, on releases before v3.41) and gives each port to its own engine of that
        VPN as its P2P port, as many as the VPN has engines, in slot order. When the set of ports changes, an engine
        whose port is still forwarded keeps it and only the engines whose port went away are re-created (the
        assignment is read back from the engines' labels). A VPN that forwards no port gets no forwarded engine.
      - A control server whose VPN status cannot be read makes its VPN not healthy (C(VPN container '<name>' is not
        healthy - cannot start AceStream engine (... its control server did not answer ...))); one that answers the
        status but not the forwarded-port route fails the run with C(Failed to get forwarded port from Gluetun).
      - V(off) does not ask; no engine is forwarded.
    type: str
    choices: [auto, 'off']
    default: auto
  forwarded_port_timeout:
    description:
      - When a VPN container turns port forwarding on (C(VPN_PORT_FORWARDING=on)) but reports no port yet (it is cleared
        on every VPN restart), ask again for up to this many seconds. With 0, such a VPN keeps its current forwarded
        engine as it is until a run sees the new port.
    type: float
    default: 0
  vpn_wait_timeout:
    description:
      - Seconds to wait, before deciding, for every VPN container to be healthy with its VPN running (just started,
        restarting, reconnecting). A VPN that is missing, or whose control server refuses the credentials (401), is
        not waited for. In check mode too (the wait changes nothing), so that check mode reports what a run would
        do. V(0) decides at once.
      - A VPN still not healthy then is handled as O(on_unhealthy_vpn) says.
    type: float
    default: 0
  on_unhealthy_vpn:
    description:
      - V(fail) refuses to change anything when a VPN container is missing, not running or not C(healthy).
      - V(failover) places an unhealthy VPN's share on the healthy VPNs (as far as their capacity allows), leaves the
        unhealthy VPN's engines in place, and a later run with every VPN healthy rebalances. Fails when no VPN is
        healthy.
    type: str
    choices: [fail, failover]
    default: fail
  wait_ready:
    description:
      - Seconds to wait for new, re-created and restarted engines to answer their status API
        (C(/server/api?api_version=3&method=get_status)) through their VPN's published port. V(0) does not wait.
      - An engine that exits, or that Docker restarts, meanwhile or after it answered fails the run at once, with its
        state, exit code and last log lines.
    type: int
    default: 0
requirements:
  - Docker SDK for Python >= 5.0
notes:
  - Engines publish no ports; the Gluetun containers publish the ranges. Containers without the pool's labels are
    never touched; one holding the name of a slot fails the run before any change.
  - One pool per VPN container - the engines of a VPN share its network namespace. A VPN that runs engines of another
    pool fails the run before any change, naming that pool and its engines.
seealso:
  - name: Gluetun port configuration guide
    description: The seed document whose rules this module enforces.
    link: https://github.com/krinkuto11/acestream-orchestrator
"""

EXAMPLES = r"""
- name: The seed's redundant mode - two VPNs split 19000-19999, four engines
  acestream.orchestrator.engine_pool:
    name: acestream
    vpn_containers: [gluetun1, gluetun2]
    port_range: 19000-19999
    replicas: 4
    api_port: 8001
    api_key: "{{ vault_gluetun_api_key }}"
    wait_ready: 60

- name: Single VPN, jopsis engines, no forwarded engine
  acestream.orchestrator.engine_pool:
    name: acestream
    vpn_containers: [gluetun]
    port_range: 19000-19019
    replicas: 2
    engine_variant: jopsis-amd64
    forwarded_port: "off"

- name: Three VPNs with explicit ranges, failing over when one is unhealthy
  acestream.orchestrator.engine_pool:
    name: acestream
    vpn_containers: [vpn-a, vpn-b, vpn-c]
    vpn_port_ranges:
      vpn-a: 19000-19009
      vpn-b: 19100-19109
      vpn-c: 19200-19209
    replicas: 6
    on_unhealthy_vpn: failover

- name: Show drift without touching anything
  acestream.orchestrator.engine_pool:
    name: acestream
    vpn_containers: [gluetun1, gluetun2]
    port_range: 19000-19999
    replicas: 4
  check_mode: true
  diff: true
  register: drift

- name: Remove the pool
  acestream.orchestrator.engine_pool:
    name: acestream
    state: absent
"""

RETURN = r"""
engines:
  description: The pool's engines after the run (in check mode, what the run would leave), by VPN then port.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Container name, C(<pool>-<vpn>-<port>).
      type: str
      sample: acestream-gluetun1-19000
    id:
      description: Container ID; V(null) for an engine that is yet to be created (check mode).
      type: str
    vpn:
      description: The VPN container name.
      type: str
      sample: gluetun1
    host:
      description: Where the engine is reached, the VPN container's name (as the orchestrator reports it).
      type: str
      sample: gluetun1
    port:
      description: HTTP port, inside the VPN's range, published by the VPN container.
      type: int
      sample: 19000
    https_port:
      description: HTTPS port (not published).
      type: int
      sample: 45000
    forwarded:
      description: Whether this is its VPN's forwarded engine.
      type: bool
    p2p_port:
      description: The P2P port of the forwarded engine (the VPN's forwarded port); V(null) for the others.
      type: int
    status:
      description: Container state; V(running) for engines this run creates or starts.
      type: str
    vpn_healthy:
      description: V(false) for engines left in place on an unhealthy VPN (failover).
      type: bool
plan:
  description: The port plan, one entry per VPN in order.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    name:
      description: VPN container name.
      type: str
    container_id:
      description: Its container ID; V(null) when missing.
      type: str
    range:
      description: Its engine port range.
      type: str
      sample: 19000-19499
    start:
      description: First port.
      type: int
    end:
      description: Last port.
      type: int
    capacity:
      description: How many engines it can hold.
      type: int
    share:
      description: Its share of O(replicas).
      type: int
    engines:
      description: How many engines it runs after this run (its share; more under failover).
      type: int
    published:
      description: The TCP ports the container publishes on the same host ports.
      type: str
      sample: 19000-19499
    healthy:
      description: Whether it counts as healthy.
      type: bool
    forwarded_port:
      description: Its first forwarded port; V(null) when none or with O(forwarded_port=off).
      type: int
    forwarded_ports:
      description: Every port it forwards, in Gluetun's order (empty when none or with O(forwarded_port=off)).
      type: list
      elements: int
    https_range:
      description: HTTPS ports its engines may use.
      type: str
actions:
  description: What the run did (in check mode, would do), in order, each with its reason.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: What is done to the engine.
      type: str
      choices: [pull, remove, recreate, start, unpause, create]
    name:
      description: Engine container name (the image for V(pull)).
      type: str
    vpn:
      description: The engine's VPN.
      type: str
    port:
      description: The engine's HTTP port.
      type: int
    reason:
      description: Why.
      type: str
      sample: "left in a dead network namespace: VPN container 'gluetun1' (re)started at ..."
    id:
      description: ID of the container acted on; V(null) for a creation.
      type: str
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import fail
from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    DOCKER_ARGUMENT_SPEC,
    DockerException,
    docker_client,
    docker_host_from,
    require_docker_sdk,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import (
    PreflightError,
    absent_actions,
    converge,
    name_clashes,
    observed_engine,
    pull_action,
    restart_baselines,
    vpns_to_wait_for,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_docker import (
    DockerEngines,
    EngineActionError,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._pool_options import (
    POOL_ARGUMENT_SPEC,
    check_seconds,
    credentials,
    validate_common,
    validate_pool,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError


# Seconds between two looks at VPNs still not healthy (vpn_wait_timeout).
VPN_WAIT_INTERVAL = 1.0


class EnginesNotReady(Exception):
    """Engines this run created or started did not answer in time; ``result`` is what the run did."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def argument_spec():
    spec = dict(POOL_ARGUMENT_SPEC)
    spec.update(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        pull=dict(type="str", default="missing", choices=["missing", "never"]),
        forwarded_port_timeout=dict(type="float", default=0),
        vpn_wait_timeout=dict(type="float", default=0),
        wait_ready=dict(type="int", default=0),
    )
    spec.update(DOCKER_ARGUMENT_SPEC)
    return spec


def validate(params):
    """Everything that can be checked without I/O. Returns (plan, core params); raises PortPlanError."""
    validate_common(params)
    for field in ("wait_ready", "forwarded_port_timeout", "vpn_wait_timeout"):
        check_seconds(params, field, zero_ok=True)
    if params["state"] == "absent":
        return None, None
    return validate_pool(params)


def remove_pool(module, ops, pool):
    """state=absent: every engine of the pool goes. Returns the result."""
    observed = [observed_engine(c) for c in ops.list_pool(pool)]
    actions = absent_actions(observed)
    result = dict(changed=bool(actions), actions=actions, engines=[])
    if module._diff:
        before = dict((e["name"], {"vpn": e["vpn"], "port": e["port"], "state": e["state"]}) for e in observed)
        result["diff"] = {"before": {"engines": before}, "after": {"engines": {}}}
    if actions and not module.check_mode:
        ops.execute(actions, {}, pool)
    return result


def observe_when_healthy(module, ops, plan, core, params):
    """The run's observation, once every VPN is healthy or vpn_wait_timeout is out (not waiting for what waiting cannot
    heal: vpns_to_wait_for). In check mode too: the wait is read-only, and check mode reports what a run would do."""
    deadline = time.monotonic() + params["vpn_wait_timeout"]
    while True:
        observation = ops.observe(plan, core["pool"], core["image"], params["api_port"], credentials(params),
                                  params["api_timeout"], ports=params["forwarded_port"] == "auto",
                                  port_wait=params["forwarded_port_timeout"])
        left = deadline - time.monotonic()
        if left <= 0 or not vpns_to_wait_for(observation[1]):
            return observation
        time.sleep(min(VPN_WAIT_INTERVAL, left))


def converge_pool(module, ops, plan, core, params):
    """state=present: observe (waiting for the VPNs), decide (the core), check the names, act, wait. Returns the
    result."""
    observed, states, image_id, others = observe_when_healthy(module, ops, plan, core, params)
    decided = converge(plan, core, states, observed, image_id, others)
    actions = decided["actions"]
    pull = pull_action(actions, core["image"], image_id, params["pull"])
    if pull is not None:
        actions.insert(0, pull)
    own = set(e["id"] for e in observed)
    creates = [a["name"] for a in actions if a["action"] == "create"]
    taken = dict((name, c) for name, c in ops.containers_named(creates).items() if c.get("Id") not in own)
    name_clashes(actions, taken, core["pool"], decided["desired"])

    engines = decided["engines"]
    for warning in decided["warnings"]:
        module.warn(warning)
    if actions and not module.check_mode:
        ids, _done = ops.execute(actions, decided["desired"], core["pool"])
        for engine in engines:
            if engine["name"] in ids:
                engine["id"] = ids[engine["name"]]
        touched = [e for e in engines if e["name"] in ids]
        if params["wait_ready"] and touched:
            host_ips = dict((e["name"], states[e["vpn"]]["published"].get(e["port"])) for e in touched)
            failures = ops.wait_ready(touched, host_ips, params["wait_ready"], restart_baselines(actions))
            if failures:
                details = ["%s (%s) - %s" % (name, detail, ops.explain(ids[name])) for name, detail in failures]
                raise EnginesNotReady("%d engine(s) did not come up (wait_ready %ds): %s" % (
                    len(failures), params["wait_ready"], "; ".join(details)),
                    dict(changed=True, actions=actions, engines=engines))
    result = dict(changed=bool(actions), actions=actions, engines=engines, plan=decided["plan"])
    if module._diff:
        result["diff"] = {"before": decided["before"], "after": decided["after"]}
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_docker_sdk(module)
    params = module.params
    # Every failure is reported here, in one place.
    try:
        plan, core = validate(params)
        module.no_log_values.update([params["api_key"]] if params["api_key"] else [])  # read from api_key_file
        docker_host = docker_host_from(params["docker_host"])
        ops = DockerEngines(docker_client(docker_host, params["docker_timeout"]), params["parallelism"], docker_host)
        if params["state"] == "absent":
            result = remove_pool(module, ops, params["name"])
        else:
            result = converge_pool(module, ops, plan, core, params)
    except (PortPlanError, PreflightError) as exc:
        fail(module, exc, changed=False, actions=[])
    except EngineActionError as exc:
        if params["state"] == "absent":
            msg = "Removing the pool's engines failed: %s" % exc
        else:
            msg = "Converging engine pool '%s' failed midway (the next run converges the rest): %s" % (
                params["name"], exc)
        module.fail_json(msg=msg, changed=bool(exc.done), actions=exc.done)
    except EnginesNotReady as exc:
        module.fail_json(msg=str(exc), **exc.result)
    except DockerException as exc:
        module.fail_json(msg="Docker error: %s" % exc, exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
