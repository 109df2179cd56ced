# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine pool's pure core: what the engines should be, and what to do to get there.

Private to this collection. No I/O: the module observes Docker (one container list call, one inspect per
VPN container, the control servers) and hands the observations in; this core decides. See docs/engine_pool.md.

* ``variant_run(variant, http, https, p2p)``: how an engine variant receives its ports (env, command).
* ``engine_name(pool, vpn, port)``: an engine's identity is its slot (VPN, HTTP port), and so is its name.
* ``observed_engine(container)``: an engine as read from the labels of one ``containers()`` list entry.
* ``vpn_health(...)``: whether a Gluetun container may take engines (Docker health and the control server's VPN status).
* ``vpn_state(name, inspect, ...)``: a VPN container as read from its inspect (health, ports it publishes).
* ``split_pools(pool, engines)``, ``one_pool_per_vpn(...)``: the list call returns every pool's engines; another
  pool's engines on one of this pool's VPNs are refused (their ports would collide in the shared namespace).
* ``preflight(...)``: the checks that must pass before anything is touched.
* ``place(...)``: which slots each VPN's engines take (balanced, lowest free port, existing slots kept).
* ``usable_forwarded_ports(vpn, ports, api_port)``: the forwarded ports engines may take (each once, none Gluetun
  itself listens on), for engine_pool, verify and the EDA source alike; ``forwarded_slots(...)``: which engine gets
  which of them.
* ``converge(...)``: desired engines, actions with reasons, the engines after the run, and the diff; its steps
  (``forwarded_and_usable``, ``placement``, ``desired_specs``, ``reconcile``, ``engines_after``, ``diff_parts``,
  ``plan_output``) are functions of their own.
* ``pull_action(...)``: pull the missing image, or refuse (pull: never).
* ``same_engine(labels, pool, spec)``: whether a container is this pool's engine for a slot (name clashes, and
  the adoption of an engine a concurrent run created).
* ``restart_baselines(actions)``, ``crash_problem(inspect, restarts)``: after a run's actions, whether an engine is
  crash-looping (wait_ready fails then rather than waiting for an engine that cannot come up).
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._env import variable_problems
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    ENGINE_MANAGER,
    GLUETUN_HEALTH_PORT,
    LABEL_FORWARDED,
    LABEL_GLUETUN_RELEASE as RELEASE_LABEL,
    LABEL_HTTP_PORT,
    LABEL_HTTPS_PORT,
    LABEL_MANAGED_BY,
    LABEL_P2P_PORT,
    LABEL_POOL,
    LABEL_SPEC_HASH,
    LABEL_VARIANT,
    LABEL_VPN,
    LABEL_VPN_ID,
    LABEL_VPN_STARTED_AT,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    GLUETUN_DEFAULT_API_PORT,
    PortPlanError,
    ascii_digits,
    ranges_text,
    share_replicas,
)

MANAGER = ENGINE_MANAGER
OWN_LABELS = (LABEL_MANAGED_BY, LABEL_POOL, LABEL_VPN, LABEL_HTTP_PORT, LABEL_HTTPS_PORT, LABEL_FORWARDED,
              LABEL_P2P_PORT, LABEL_VARIANT, LABEL_SPEC_HASH, LABEL_VPN_ID, LABEL_VPN_STARTED_AT)

VARIANTS = {
    "krinkuto11-amd64": {"image": "ghcr.io/krinkuto11/acestream-http-proxy:latest", "ports_via": "env CONF"},
    "jopsis-amd64": {"image": "jopsis/acestream:x64", "ports_via": "env ACESTREAM_ARGS"},
    "jopsis-arm32": {"image": "jopsis/acestream:arm32-v3.2.13", "ports_via": "command"},
    "jopsis-arm64": {"image": "jopsis/acestream:arm64-v3.2.13", "ports_via": "command"},
}
DEFAULT_VARIANT = "krinkuto11-amd64"
# Environment variables through which the variants receive their ports: the user's env may not set them.
PORT_ENV = ("CONF", "HTTP_PORT", "HTTPS_PORT", "BIND_ALL", "P2P_PORT", "ACESTREAM_ARGS")
# The Gluetun variables that turn port forwarding on (the current name and the older ones).
FORWARDING_ENV = ("VPN_PORT_FORWARDING", "PORT_FORWARDING", "PRIVATE_INTERNET_ACCESS_VPN_PORT_FORWARDING")
RUNNING = "running"


class PreflightError(AcestreamError):
    """A VPN container is not in a state engines can be placed on; nothing has been touched."""


# --------------------------------------------------------------------------------------- variants
def variant_run(variant, http_port, https_port, p2p_port=None):
    """``(env, command)`` through which ``variant`` gets its ports (command None: the image's own)."""
    if variant not in VARIANTS:
        raise PortPlanError("engine_variant", "unknown variant %r; use one of %s" % (variant, ", ".join(sorted(VARIANTS))))
    if variant == "krinkuto11-amd64":
        conf = ["--http-port=%d" % http_port, "--https-port=%d" % https_port, "--bind-all"]
        env = {"HTTP_PORT": str(http_port), "HTTPS_PORT": str(https_port), "BIND_ALL": "true"}
        if p2p_port:
            conf.append("--port=%d" % p2p_port)
            env["P2P_PORT"] = str(p2p_port)
        env["CONF"] = "\n".join(conf)
        return env, None
    args = ["--http-port", str(http_port), "--https-port", str(https_port)]
    if p2p_port:
        args += ["--port", str(p2p_port)]
    if variant == "jopsis-amd64":
        return {"ACESTREAM_ARGS": " ".join(args)}, None
    return {}, ["python", "main.py", "--bind-all"] + args


def default_image(variant):
    if variant not in VARIANTS:
        raise PortPlanError("engine_variant", "unknown variant %r; use one of %s" % (variant, ", ".join(sorted(VARIANTS))))
    return VARIANTS[variant]["image"]


def validate_env(env, field="env"):
    """User environment: names and values as _env takes them (no null, list or NUL; values never shown), none of
    the variables that carry the ports."""
    if env is not None and not isinstance(env, dict):
        raise PortPlanError(field, "give a mapping of variable names to values, e.g. {TZ: UTC}")
    problems = variable_problems(env)
    if problems:
        raise PortPlanError(field, "; ".join(problems))
    result = {}
    for key, value in (env or {}).items():
        if key in PORT_ENV:
            raise PortPlanError(field, "%s is set by the pool from the engine's slot (its ports); remove it from env "
                                       "(the pool sets %s)" % (key, ", ".join(PORT_ENV)))
        if isinstance(value, bool):
            value = "true" if value else "false"
        result[key] = str(value)
    return result


def validate_labels(labels, field="labels"):
    result = {}
    for key, value in (labels or {}).items():
        key = str(key)
        if key in OWN_LABELS:
            raise PortPlanError(field, "%s is a label the pool manages; remove it from labels" % key)
        result[key] = "" if value is None else str(value)
    return result


# ----------------------------------------------------------------------------------- identity
def engine_name(pool, vpn, port):
    """The container name of the slot (VPN, port): Docker's name uniqueness makes a port impossible to hand out
    twice, even by two concurrent runs."""
    return "%s-%s-%d" % (pool, vpn, port)


def spec_hash(spec):
    """A short, stable digest of everything that defines an engine except where it attaches (checked apart)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def engine_spec(pool, vpn, port, https_port, p2p_port, variant, image, env, labels, restart_policy):
    """The desired engine in one slot: container parameters, labels and the spec hash."""
    port_env, command = variant_run(variant, port, https_port, p2p_port)
    environment = dict(env)
    environment.update(port_env)
    forwarded = p2p_port is not None
    hashed = {
        "pool": pool, "vpn": vpn, "http_port": port, "https_port": https_port, "p2p_port": p2p_port,
        "variant": variant, "image": image, "env": environment, "command": command, "labels": labels,
        "restart_policy": restart_policy,
    }
    digest = spec_hash(hashed)
    all_labels = dict(labels)
    all_labels.update({
        LABEL_MANAGED_BY: MANAGER,
        LABEL_POOL: pool,
        LABEL_VPN: vpn,
        LABEL_HTTP_PORT: str(port),
        LABEL_HTTPS_PORT: str(https_port),
        LABEL_FORWARDED: "true" if forwarded else "false",
        LABEL_P2P_PORT: str(p2p_port) if forwarded else "",
        LABEL_VARIANT: variant,
        LABEL_SPEC_HASH: digest,
    })
    return {
        "name": engine_name(pool, vpn, port), "vpn": vpn, "port": port, "https_port": https_port,
        "forwarded": forwarded, "p2p_port": p2p_port, "variant": variant, "image": image,
        "env": environment, "command": command, "labels": all_labels, "restart_policy": restart_policy,
        "hash": digest,
    }


def attach(spec, vpn):
    """Where the engine joins: the VPN container's current ID, and its start time recorded in a label (the
    dead-namespace check compares it with the VPN's StartedAt on later runs). Not part of the spec hash."""
    spec["network_mode"] = "container:%s" % vpn["id"]
    spec["labels"][LABEL_VPN_ID] = vpn["id"]
    spec["labels"][LABEL_VPN_STARTED_AT] = vpn["started_at"] or ""
    return spec


def same_engine(labels, pool, spec):
    """True when a container with these labels is this pool's engine for the slot of ``spec`` (the desired spec,
    None: no engine is wanted there), with the same spec hash: made by another run converging the pool at the
    same time, so it is adopted rather than a name clash."""
    labels = labels or {}
    return (spec is not None and labels.get(LABEL_MANAGED_BY) == MANAGER and labels.get(LABEL_POOL) == pool
            and labels.get(LABEL_SPEC_HASH) == spec["labels"].get(LABEL_SPEC_HASH))


def pool_label_filters(pool):
    """The label filters of one list call that returns exactly this pool's engines."""
    return ["%s=%s" % (LABEL_MANAGED_BY, MANAGER), "%s=%s" % (LABEL_POOL, pool)]


def manager_label_filters():
    """The label filter of one list call that returns the engines of every pool on the Docker host: a converge
    must see the other pools on its VPNs (``one_pool_per_vpn``), and ``split_pools`` takes its own from them."""
    return ["%s=%s" % (LABEL_MANAGED_BY, MANAGER)]


# ---------------------------------------------------------------------------------- observing
def _int(text):
    try:
        value = int(str(text))
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 65535 else None


def observed_engine(container):
    """An engine from one entry of ``containers(all=True)`` (no inspect): labels, state, image, network mode."""
    labels = container.get("Labels") or {}
    names = container.get("Names") or []
    name = names[0].lstrip("/") if names else container.get("Id", "")[:12]
    return {
        "id": container.get("Id"),
        "name": name,
        "pool": labels.get(LABEL_POOL),
        "vpn": labels.get(LABEL_VPN),
        "port": _int(labels.get(LABEL_HTTP_PORT)),
        "https_port": _int(labels.get(LABEL_HTTPS_PORT)),
        "forwarded": labels.get(LABEL_FORWARDED) == "true",
        "p2p_port": _int(labels.get(LABEL_P2P_PORT)),
        "variant": labels.get(LABEL_VARIANT),
        "hash": labels.get(LABEL_SPEC_HASH),
        "vpn_id": labels.get(LABEL_VPN_ID),
        "vpn_started_at": labels.get(LABEL_VPN_STARTED_AT),
        "state": (container.get("State") or "unknown").lower(),
        "status": container.get("Status"),
        "image": container.get("Image"),
        "image_id": container.get("ImageID"),
        "network_mode": (container.get("HostConfig") or {}).get("NetworkMode"),
    }


def published_ports(inspect):
    """``(ports, other)``: container TCP ports published on the same host port (port -> host IP), and text for the
    other bindings.

    A running container's ``NetworkSettings.Ports`` is what Docker really publishes (a binding in
    ``HostConfig.PortBindings`` for a port that was not exposed is silently dropped); a stopped container only has
    its configuration.
    """
    inspect = inspect or {}
    running = ((inspect.get("State") or {}).get("Status")) == RUNNING
    bindings = (inspect.get("NetworkSettings") or {}).get("Ports") if running else None
    if bindings is None:
        bindings = (inspect.get("HostConfig") or {}).get("PortBindings") or {}
    same, other = {}, []
    for key, entries in bindings.items():
        port_text, _sep, proto = key.partition("/")
        if (proto or "tcp") != "tcp" or not ascii_digits(port_text):
            continue
        port = int(port_text)
        for entry in entries or []:
            host_port = str((entry or {}).get("HostPort") or "")
            host_ip = (entry or {}).get("HostIp") or ""
            if host_port == str(port):
                same.setdefault(port, host_ip)
            else:
                other.append("%s->%d" % (host_port or "random", port))
    return same, sorted(other)


def forwarding_on(env):
    """True when a Gluetun environment (name -> value) turns port forwarding on."""
    for key, value in (env or {}).items():
        if key in FORWARDING_ENV and str(value).strip().lower() in ("on", "yes", "true", "1"):
            return True
    return False


def forwarding_enabled(inspect):
    """True when the Gluetun container's environment turns port forwarding on."""
    env = dict(item.partition("=")[::2] for item in (((inspect or {}).get("Config") or {}).get("Env") or []))
    return forwarding_on(env)


def forwarded_ports_of(control):
    """Every port a control answer forwards, in order, each once: ``forwarded_ports``, else ``forwarded_port``.
    What engines may take of them is ``usable_forwarded_ports``."""
    ports = control.get("forwarded_ports")
    if ports is None:
        ports = [control.get("forwarded_port")]
    out = []
    for port in ports:
        if isinstance(port, int) and not isinstance(port, bool) and port > 0 and port not in out:
            out.append(port)
    return out


def vpn_health(status, health, vpn_status, control_error=None):
    """Whether a Gluetun container may take engines: ``(healthy, problem)``, ``problem`` None when healthy.

    The one rule, for engine_pool, gluetun_status, stack_info and the EDA source: the container runs, Docker's health
    is ``healthy`` (or the container has no healthcheck) AND its control server reports the VPN ``running``. Docker's
    health alone does not tell: a VPN stopped through the control server leaves Gluetun's health server answering OK
    (Docker stays ``healthy``), and only ``/v1/vpn/status`` says ``stopped``. ``status``: the container's Docker
    status; ``health``: ``State.Health.Status`` or ``none``; ``vpn_status``: the control server's answer (None when
    it was not read); ``control_error``: why it could not be read.
    """
    if status != RUNNING:
        return False, "the container is %s" % status
    if health not in ("healthy", "none"):
        return False, "Docker health is '%s'" % health
    if vpn_status == RUNNING:
        return True, None
    if health == "none":
        prefix = "it has no healthcheck and its control server"
    else:
        prefix = "Docker health is 'healthy' but its control server"
    if control_error:
        return False, "%s did not answer: %s" % (prefix, control_error)
    if vpn_status is None:
        return False, "%s was not asked for the VPN status" % prefix
    return False, "%s reports the VPN '%s', not 'running'" % (prefix, vpn_status)


def vpn_state(name, inspect, control=None):
    """A VPN container as the core needs it, from its inspect (None: no such container) and, when the control
    server was asked, ``control`` = ``{"vpn_status", "forwarded_port", "forwarded_ports", "error"}`` (a control
    answer without ``forwarded_ports`` has the one ``forwarded_port``)."""
    control = control or {}
    state = {
        "name": name, "exists": inspect is not None, "id": None, "status": None, "health": None, "started_at": None,
        "published": {}, "published_other": [], "healthy": False, "problem": None,
        "forwarded_port": control.get("forwarded_port"),
        "forwarded_ports": forwarded_ports_of(control), "forwarding_on": forwarding_enabled(inspect),
        "vpn_status": control.get("vpn_status"), "control_error": control.get("error"),
        "control_refused": bool(control.get("refused")), "release_label": None,
    }
    if inspect is None:
        state["problem"] = "no container named '%s' exists" % name
        return state
    docker_state = inspect.get("State") or {}
    state["id"] = inspect.get("Id")
    state["status"] = docker_state.get("Status")
    state["health"] = (docker_state.get("Health") or {}).get("Status") or "none"
    state["started_at"] = docker_state.get("StartedAt")
    state["release_label"] = ((inspect.get("Config") or {}).get("Labels") or {}).get(RELEASE_LABEL)
    state["published"], state["published_other"] = published_ports(inspect)
    state["healthy"], state["problem"] = vpn_health(state["status"], state["health"], state["vpn_status"],
                                                    state["control_error"])
    return state


def vpns_to_wait_for(states):
    """The VPNs a run waits for before it decides (engine_pool's vpn_wait_timeout): those not healthy that time may
    heal - a container that exists (just started, restarting, its VPN reconnecting) and whose control server did not
    refuse the credentials (a 401 stays a 401). ``states``: VPN name -> ``vpn_state()``. Sorted names."""
    return sorted(name for name, state in states.items()
                  if not state["healthy"] and state["exists"] and not state.get("control_refused"))


def unhealthy_message(state):
    return "VPN container '%s' is not healthy - cannot start AceStream engine (%s)" % (state["name"], state["problem"])


# ---------------------------------------------------------------------------------- preflight
def reserved_ports(api_port):
    """The ports Gluetun itself listens on inside each VPN's network namespace: port -> what holds it."""
    return {api_port: "the Gluetun control server's api_port", GLUETUN_HEALTH_PORT: "Gluetun's health server"}


def check_reserved_ports(plan, api_port):
    """Gluetun listens on api_port and on its health port inside the namespace: no engine port may be one."""
    for port, what in sorted(reserved_ports(api_port).items()):
        for vpn in plan.vpns:
            if port in vpn.range:
                raise PortPlanError(vpn.range_field, "%s (VPN '%s') includes port %d, %s inside the VPN's namespace; "
                                                     "choose engine ports without it" % (vpn.range, vpn.name, port, what))
        if port in plan.https_range:
            raise PortPlanError("https_port_range", "%s includes port %d, %s inside the VPN's namespace; choose HTTPS "
                                                    "ports without it" % (plan.https_range, port, what))


def range_mismatch(vpn, state):
    """The seed's "Port Range Mismatch" message when the VPN container does not publish its plan range, else None."""
    missing = [port for port in vpn.range if port not in state["published"]]
    if not missing:
        return None
    published = ranges_text(state["published"])
    other = ""
    if state["published_other"]:
        shown = state["published_other"][:5]
        more = ", ..." if len(state["published_other"]) > 5 else ""
        other = "; other bindings (host->container): %s%s" % (", ".join(shown), more)
    return ("Port Range Mismatch: VPN container '%s' must publish its engine range %s (from %s) on the same host ports, "
            "but it publishes %s (missing: %s)%s. Publish \"%s:%s\" on the Gluetun container, or make %s match what it "
            "publishes" % (vpn.name, vpn.range, vpn.range_field, published, ranges_text(missing), other, vpn.range,
                           vpn.range, vpn.range_field))


def preflight(plan, states, on_unhealthy="fail"):
    """Check every VPN before anything is touched. Returns ``(active, frozen)`` VPN names.

    Raises PreflightError with the seed's messages: "Port Range Mismatch" (always) and "VPN container '<name>'
    is not healthy - cannot start AceStream engine" (unless ``on_unhealthy`` is ``failover`` and at least one
    VPN is healthy).
    """
    mismatches = []
    for vpn in plan.vpns:
        state = states[vpn.name]
        if state["exists"]:
            message = range_mismatch(vpn, state)
            if message:
                mismatches.append(message)
    if mismatches:
        raise PreflightError("; ".join(mismatches))
    unhealthy = [states[vpn.name] for vpn in plan.vpns if not states[vpn.name]["healthy"]]
    if unhealthy and (on_unhealthy != "failover" or len(unhealthy) == len(plan.vpns)):
        raise PreflightError("; ".join(unhealthy_message(state) for state in unhealthy))
    frozen = [state["name"] for state in unhealthy]
    active = [vpn.name for vpn in plan.vpns if vpn.name not in frozen]
    return active, frozen


# ------------------------------------------------------------------------------ one pool per VPN
def split_pools(pool, engines):
    """``(own, others)``: the ``observed_engine()`` entries of this pool, and those of every other pool."""
    own = [engine for engine in engines if engine["pool"] == pool]
    others = [engine for engine in engines if engine["pool"] != pool]
    return own, others


def other_pools_on(plan, states, others):
    """The other pools' engines on this pool's VPNs: VPN name -> other pool -> engine names (sorted).

    An engine is on a VPN when its ``acestream.vpn`` label names it, or when it joined the VPN container's
    current network namespace (``NetworkMode: container:<id>``) whatever its label says."""
    by_id = dict(("container:%s" % states[vpn.name]["id"], vpn.name) for vpn in plan.vpns if states[vpn.name]["id"])
    names = set(vpn.name for vpn in plan.vpns)
    found = {}
    for engine in others:
        vpn = engine["vpn"] if engine["vpn"] in names else by_id.get(engine["network_mode"])
        if vpn is not None:
            found.setdefault(vpn, {}).setdefault(engine["pool"] or "", []).append(engine["name"])
    for pools in found.values():
        for engine_names in pools.values():
            engine_names.sort()
    return found


def _some(names, shown=4):
    return ", ".join(names[:shown]) + (" and %d more" % (len(names) - shown) if len(names) > shown else "")


def one_pool_per_vpn(pool, plan, states, others):
    """Refuse, before anything is touched, a VPN that already runs engines of another pool.

    Every engine of a VPN lives in the VPN container's one network namespace. Two pools there would plan their
    HTTPS ports from the same ``https_port_range`` and would both make an engine of that VPN's one forwarded port:
    the second pool's engines could not listen and Docker would restart them forever. So a VPN belongs to one
    pool; the other pool's engines are never touched. Raises PreflightError naming the VPN, the other pool, its
    engines and the fixes."""
    found = other_pools_on(plan, states, others)
    problems = []
    for vpn in plan.vpns:
        for other, engine_names in sorted(found.get(vpn.name, {}).items()):
            problems.append("VPN container '%s' already runs engine pool '%s' (%s)" % (vpn.name, other,
                                                                                       _some(engine_names)))
    if not problems:
        return
    owners = sorted(set(other for pools in found.values() for other in pools))
    raise PreflightError(
        "One engine pool per VPN: %s. Engine pool '%s' cannot share a VPN with another pool: every engine of a VPN "
        "listens in the VPN container's one network namespace, where two pools' HTTPS ports and their forwarded P2P "
        "port collide. Run one pool per VPN: merge the replicas into one pool, give one of the pools its own Gluetun "
        "container, or remove %s with state=absent" % ("; ".join(problems), pool, " and ".join("pool '%s'" % o for o in owners)))


# ---------------------------------------------------------------------------------- placement
def targets_for(plan, active, allowed):
    """How many engines each active VPN runs: its share, or with some VPNs out (failover), the replicas shared
    between the active ones, capped by what each can hold. Returns ``(targets, unplaced)``."""
    if len(active) == len(plan.vpns):
        return dict((vpn.name, vpn.share) for vpn in plan.vpns), 0
    room = dict((name, len(allowed[name])) for name in active)
    targets = dict(zip(active, share_replicas(plan.replicas, len(active))))
    overflow = 0
    for name in active:
        if targets[name] > room[name]:
            overflow += targets[name] - room[name]
            targets[name] = room[name]
    for name in active:
        extra = min(overflow, room[name] - targets[name])
        targets[name] += extra
        overflow -= extra
    return targets, overflow


def place(allowed, targets, existing):
    """The HTTP ports of each VPN's engines.

    ``allowed``: VPN -> ports an engine may take (ascending); ``targets``: VPN -> count; ``existing``: VPN ->
    ports of the pool's engines there now. Existing slots inside ``allowed`` are kept (the lowest ones when there
    are more than the target: surplus goes from the highest slot), the rest is filled from the lowest free port.
    """
    placement = {}
    for vpn, count in targets.items():
        ports = list(allowed[vpn])
        permitted = set(ports)
        kept = sorted(port for port in set(existing.get(vpn, ())) if port in permitted)[:count]
        taken = set(kept)
        for port in ports:
            if len(kept) >= count:
                break
            if port not in taken:
                kept.append(port)
                taken.add(port)
        placement[vpn] = sorted(kept)
    return placement


def usable_forwarded_ports(vpn, ports, api_port, warnings=None):
    """The forwarded ports of VPN ``vpn`` its engines can take as P2P ports: ``ports`` (what its control server
    reports) in Gluetun's order, each once, without the ports Gluetun itself listens on inside the VPN's network
    namespace (``reserved_ports``: the control server's ``api_port``, the health server's 9999). An engine given one
    of those could not listen on it and would crash-loop; each is named in ``warnings`` (when given), with what holds
    it, and no engine takes it.

    The one sanitising of forwarded ports: engine_pool (``forwarded_and_usable``), verify (stack_info) and the EDA
    source all take the ports from here, so they agree on what the VPN forwards. (A forwarded port that falls on a
    slot's HTTP or HTTPS port is usable: that slot gives way, ``forwarded_and_usable``.)"""
    reserved = reserved_ports(api_port)
    usable, seen = [], set()
    for port in ports or ():
        if isinstance(port, bool) or not isinstance(port, int) or port <= 0 or port in seen:
            continue
        seen.add(port)
        if port in reserved:
            if warnings is not None:
                warnings.append("forwarded port %d of VPN '%s' is held by %s inside the VPN's network namespace: no "
                                "engine takes it as its P2P port (it could not listen there)" % (
                                    port, vpn, reserved[port]))
            continue
        usable.append(port)
    return usable


def forwarded_slots(slots, forwarded_ports, current):
    """Which slot gets which forwarded port: ``{slot: p2p port}`` for ``min(ports, slots)`` slots, chosen stably.

    ``slots``: the VPN's placed HTTP ports. ``forwarded_ports``: its forwarded ports in Gluetun's order.
    ``current``: ``{slot: p2p port}`` of its engines that are forwarded now (read back from their labels). An engine
    whose port is still forwarded keeps it; the ports left go first to the engines that were forwarded (their port
    went away: only they are re-created), then to the lowest slots.
    """
    slots = sorted(slots)
    assigned = {}
    left = []
    for port in forwarded_ports:
        holder = sorted(slot for slot, p2p in current.items() if p2p == port and slot in slots and slot not in assigned)
        if holder:
            assigned[holder[0]] = port
        else:
            left.append(port)
    free = sorted(slot for slot in current if slot in slots and slot not in assigned) + \
        [slot for slot in slots if slot not in current and slot not in assigned]
    for slot, port in zip(free, left):
        assigned[slot] = port
    return assigned


# ------------------------------------------------------------------------------------ converge
def _summary(engine):
    return {
        "vpn": engine.get("vpn"), "port": engine.get("port"), "https_port": engine.get("https_port"),
        "forwarded": engine.get("forwarded"), "p2p_port": engine.get("p2p_port"), "image": engine.get("image"),
        "state": engine.get("state"),
    }


def _spec_change_reason(observed, desired):
    changes = []
    if observed["image"] != desired["image"] and observed["image"] not in (None, "") and \
            not str(observed["image"]).startswith("sha256:"):
        changes.append("image %s -> %s" % (observed["image"], desired["image"]))
    if observed["variant"] != desired["variant"]:
        changes.append("variant %s -> %s" % (observed["variant"], desired["variant"]))
    if observed["https_port"] != desired["https_port"]:
        changes.append("HTTPS port %s -> %s" % (observed["https_port"], desired["https_port"]))
    if observed["forwarded"] and desired["forwarded"] and observed["p2p_port"] != desired["p2p_port"]:
        changes.append("forwarded port moved: P2P %s -> %s" % (observed["p2p_port"], desired["p2p_port"]))
    elif desired["forwarded"] and not observed["forwarded"]:
        changes.append("becomes the forwarded engine of '%s' (P2P %s)" % (desired["vpn"], desired["p2p_port"]))
    elif observed["forwarded"] and not desired["forwarded"]:
        changes.append("no longer the forwarded engine of '%s'" % desired["vpn"])
    if not changes:
        changes.append("spec changed (env, command, labels or restart policy)" if observed["hash"]
                       else "no spec hash label")
    return "; ".join(changes)


def engine_drift(observed, desired, vpn, image_id=None):
    """``(action, reason)`` for an engine in its slot, ``(None, None)`` when it matches."""
    if observed["hash"] != desired["hash"]:
        return "recreate", _spec_change_reason(observed, desired)
    wanted_mode = "container:%s" % vpn["id"]
    if observed["network_mode"] != wanted_mode:
        mode = observed["network_mode"] or "none"
        old = mode.split(":", 1)[1][:12] if mode.startswith("container:") else mode
        return "recreate", ("attached to VPN container %s, which no longer exists or was re-created ('%s' is now %s)"
                            % (old, vpn["name"], vpn["id"][:12]))
    if image_id and observed["image_id"] and observed["image_id"] != image_id:
        return "recreate", "image %s was updated (engine runs %s, the image is now %s)" % (
            desired["image"], observed["image_id"].split(":")[-1][:12], image_id.split(":")[-1][:12])
    if observed["vpn_started_at"] != vpn["started_at"]:
        return "recreate", ("left in a dead network namespace: VPN container '%s' (re)started at %s, after the engine "
                            "joined it (VPN start then: %s)" % (vpn["name"], vpn["started_at"],
                                                                observed["vpn_started_at"] or "unknown"))
    state = observed["state"]
    # "Exited (137) 5 seconds ago", "Restarting (3) 2 seconds ago": keep the exit code, not the time (check and
    # apply must agree).
    code = re.match(r"^\w+ \((-?\d+)\)", observed["status"] or "")
    exit_code = " (exit code %s)" % code.group(1) if code else ""
    if state in ("created", "exited"):
        return "start", "engine is %s%s" % (state, exit_code)
    if state == "restarting":
        # A crash loop: it exits and Docker's restart policy starts it again. Re-created, it joins the current
        # namespace with fresh labels; wait_ready then tells whether that was enough.
        return "recreate", "engine is crash-looping: Docker keeps restarting it%s" % exit_code
    if state == "paused":
        return "unpause", "engine is paused"
    if state in ("dead", "removing", "unknown"):
        return "recreate", "engine is %s" % state
    return None, None


def converge(plan, params, states, observed, image_id=None, others=()):
    """Decide everything from the observations.

    ``params``: ``pool``, ``variant``, ``image``, ``env``, ``labels``, ``restart_policy``, ``on_unhealthy``,
    ``api_port``, ``forwarded_port``. ``states``: VPN name -> ``vpn_state()``. ``observed``: ``observed_engine()``
    list of the pool's engines; ``others``: those of the other pools on the Docker host (``split_pools``).
    Raises PortPlanError / PreflightError before any action is decided.

    Returns a dict: ``actions`` (ordered: removals, then recreations, starts and creations), ``desired`` (specs
    by name), ``engines`` (the pool after the run), ``plan`` (per VPN), ``warnings``, ``frozen``, ``active`` and
    the diff parts ``before``/``after``.
    """
    pool = params["pool"]
    check_reserved_ports(plan, params.get("api_port", GLUETUN_DEFAULT_API_PORT))
    one_pool_per_vpn(pool, plan, states, others)
    active, frozen = preflight(plan, states, params.get("on_unhealthy", "fail"))
    warnings = []
    by_vpn = {}
    for engine in observed:
        by_vpn.setdefault(engine["vpn"], []).append(engine)

    forwarded, allowed = forwarded_and_usable(plan, states, active, by_vpn, params.get("forwarded_port", "auto"),
                                              warnings, params.get("api_port", GLUETUN_DEFAULT_API_PORT))
    targets, placed = placement(plan, pool, active, frozen, allowed, by_vpn, warnings)
    desired = desired_specs(plan, params, states, placed, forwarded, by_vpn)
    actions, matched = reconcile(plan, pool, states, observed, desired, frozen, allowed, targets, image_id)
    before, after = diff_parts(observed, desired, matched, actions, frozen)
    return {
        "actions": actions, "desired": desired,
        "engines": engines_after(plan, observed, desired, matched, actions, frozen),
        "plan": plan_output(plan, states, targets, forwarded), "warnings": warnings, "frozen": frozen,
        "active": active, "before": {"engines": before}, "after": {"engines": after},
    }


def forwarded_and_usable(plan, states, active, by_vpn, mode="auto", warnings=None, api_port=GLUETUN_DEFAULT_API_PORT):
    """Step 1: the forwarded port of each active VPN, and the ports its engines may take.

    ``by_vpn``: VPN name -> its observed engines. ``mode``: the forwarded_port option. ``api_port``: the control
    server's port inside each VPN's namespace. Returns ``(forwarded, allowed)``: VPN -> its forwarded ports an engine
    can take (a list, Gluetun's order, ``usable_forwarded_ports``: each once, none Gluetun itself listens on; empty
    when none), VPN -> usable HTTP ports (ascending; a slot whose HTTP or HTTPS port is one of the forwarded ports is
    skipped). A control server that could not be read is a PreflightError (``auto``).
    Appends what the user should know to ``warnings``.
    """
    warnings = [] if warnings is None else warnings
    auto = mode == "auto"
    if auto:
        failed = [states[name] for name in active if states[name]["control_error"]]
        if failed:
            raise PreflightError("; ".join("Failed to get forwarded port from Gluetun '%s': %s" % (
                state["name"], state["control_error"]) for state in failed))
    forwarded, allowed = {}, {}
    for name in active:
        vpn, state = plan.vpn(name), states[name]
        reported = list(state.get("forwarded_ports") or []) if auto else []
        if not reported and auto and state.get("forwarded_port"):
            reported = [state["forwarded_port"]]
        current = sorted((e for e in by_vpn.get(name, ()) if e["forwarded"] and e["p2p_port"]),
                         key=lambda e: e["port"] or 0)
        if not reported and auto and state["forwarding_on"]:
            reported = usable_forwarded_ports(name, [engine["p2p_port"] for engine in current], api_port)
            if len(reported) == 1:
                warnings.append("VPN '%s' forwards a port but reports none right now (it is cleared on every VPN "
                                "restart): its forwarded engine keeps P2P port %d until the next run"
                                % (name, reported[0]))
            elif reported:
                warnings.append("VPN '%s' forwards ports but reports none right now (they are cleared on every VPN "
                                "restart): its forwarded engines keep P2P ports %s until the next run"
                                % (name, ", ".join(str(p) for p in reported)))
            else:
                warnings.append("VPN '%s' forwards a port but reports none yet: no forwarded engine this run" % name)
        fports = usable_forwarded_ports(name, reported, api_port, warnings)
        forwarded[name] = fports
        ports = []
        for candidate in vpn.slot_ports():
            https = vpn.https_port(candidate, plan.https_range)
            hit = [p for p in fports if p in (candidate, https)]
            if hit:
                warnings.append("forwarded port %d of VPN '%s' collides with slot %d (HTTP %d / HTTPS %d): that slot "
                                "is skipped" % (hit[0], name, candidate, candidate, https))
                continue
            ports.append(candidate)
        allowed[name] = ports
    return forwarded, allowed


def placement(plan, pool, active, frozen, allowed, by_vpn, warnings=None):
    """Step 2: how many engines each active VPN runs, and on which slots. Returns ``(targets, placed)``: VPN ->
    count, VPN -> HTTP ports. Raises PortPlanError when a VPN cannot hold its target on its usable slots."""
    warnings = [] if warnings is None else warnings
    targets, unplaced = targets_for(plan, active, allowed)
    for name in active:
        if targets[name] > len(allowed[name]):
            raise PortPlanError("replicas", "VPN '%s' must hold %d engines but only %d of its slots are usable; widen %s"
                                % (name, targets[name], len(allowed[name]), plan.vpn(name).range_field))
    if unplaced:
        warnings.append("%d of %d engines could not be placed: the healthy VPNs are full (failover)" % (
            unplaced, plan.replicas))
    if frozen:
        warnings.append("failover: %s not healthy; %s engines left in place, their share placed on %s" % (
            ", ".join(frozen), "its" if len(frozen) == 1 else "their", ", ".join(active)))
    existing_slots = {}
    for name in active:
        existing_slots[name] = [e["port"] for e in by_vpn.get(name, ()) if e["port"] is not None
                                and e["name"] == engine_name(pool, name, e["port"])]
    return targets, place(allowed, targets, existing_slots)


def desired_specs(plan, params, states, placed, forwarded, by_vpn):
    """Step 3: the desired engine of every placed slot, attached to its VPN, by container name."""
    pool = params["pool"]
    desired = {}
    for name, ports in placed.items():
        vpn = plan.vpn(name)
        # An engine whose port is still forwarded keeps it; a moved port re-creates only its engine.
        current = dict((e["port"], e["p2p_port"]) for e in by_vpn.get(name, ()) if e["forwarded"] and e["p2p_port"]
                       and e["name"] == engine_name(pool, name, e["port"] or 0))
        assigned = forwarded_slots(ports, forwarded[name], current)
        for port in ports:
            spec = engine_spec(pool, name, port, vpn.https_port(port, plan.https_range),
                               assigned.get(port), params["variant"], params["image"],
                               params["env"], params["labels"], params["restart_policy"])
            attach(spec, states[name])
            desired[spec["name"]] = spec
    return desired


def reconcile(plan, pool, states, observed, desired, frozen, allowed, targets, image_id=None):
    """Step 4: the actions, in order (removals, then repairs, then creations), each with its reason. Returns
    ``(actions, matched)``: matched is name -> the observed engine that sits in a desired slot. Observed engines
    not in a desired slot are removed, unless their VPN is frozen (failover)."""
    removals, repairs, creations = [], [], []
    matched = {}
    order = dict((vpn.name, vpn.index) for vpn in plan.vpns)
    for engine in sorted(observed, key=lambda e: (order.get(e["vpn"], len(order)), e["vpn"] or "", e["port"] or 0,
                                                  e["name"])):
        spec = desired.get(engine["name"])
        if spec is not None and engine["vpn"] == spec["vpn"] and engine["port"] == spec["port"]:
            matched[engine["name"]] = engine
            continue
        if engine["vpn"] in frozen:
            continue
        removals.append(_action("remove", engine, _removal_reason(plan, pool, engine, allowed, targets), engine["id"]))

    for name in sorted(desired, key=lambda n: (plan.vpn(desired[n]["vpn"]).index, desired[n]["port"])):
        spec = desired[name]
        engine = matched.get(name)
        if engine is None:
            creations.append(_action("create", spec, "missing"
                                     + (" (forwarded engine, P2P %d)" % spec["p2p_port"] if spec["forwarded"] else "")))
            continue
        action, reason = engine_drift(engine, spec, states[spec["vpn"]], image_id)
        if action is not None:
            repairs.append(_action(action, spec, reason, engine["id"]))
    return removals + repairs + creations, matched


def _removal_reason(plan, pool, engine, allowed, targets):
    if engine["vpn"] not in [vpn.name for vpn in plan.vpns]:
        return "its VPN '%s' is no longer in vpn_containers" % engine["vpn"]
    if engine["port"] is None or engine["name"] != engine_name(pool, engine["vpn"], engine["port"]):
        return "labels do not match its name (not a slot of this pool)"
    if engine["port"] not in plan.vpn(engine["vpn"]).range or engine["port"] not in allowed[engine["vpn"]]:
        return "port %d is outside VPN '%s''s usable range %s" % (
            engine["port"], engine["vpn"], plan.vpn(engine["vpn"]).range)
    return "surplus: VPN '%s' runs %d engine(s) (replicas %d)" % (engine["vpn"], targets[engine["vpn"]], plan.replicas)


def engines_after(plan, observed, desired, matched, actions, frozen):
    """Step 5: the pool after the run (the return value ``engines``): desired engines by VPN then port, then the
    engines left in place on frozen VPNs."""
    done = dict((a["name"], a["action"]) for a in actions)
    engines = []
    for name, spec in sorted(desired.items(), key=lambda kv: (plan.vpn(kv[1]["vpn"]).index, kv[1]["port"])):
        engine = matched.get(name)
        keep_id = engine is not None and done.get(name) in (None, "start", "unpause")
        engines.append({
            "name": name, "id": engine["id"] if keep_id else None, "vpn": spec["vpn"], "host": spec["vpn"],
            "port": spec["port"], "https_port": spec["https_port"], "forwarded": spec["forwarded"],
            "p2p_port": spec["p2p_port"], "status": RUNNING if done.get(name) or engine is None else engine["state"],
            "vpn_healthy": True,
        })
    for engine in sorted(observed, key=lambda e: (e["vpn"] or "", e["port"] or 0)):
        if engine["vpn"] in frozen:
            engines.append({
                "name": engine["name"], "id": engine["id"], "vpn": engine["vpn"], "host": engine["vpn"],
                "port": engine["port"], "https_port": engine["https_port"], "forwarded": engine["forwarded"],
                "p2p_port": engine["p2p_port"], "status": engine["state"], "vpn_healthy": False,
            })
    return engines


def diff_parts(observed, desired, matched, actions, frozen):
    """Step 5 (diff mode): ``(before, after)`` engine summaries by container name."""
    done = dict((a["name"], a["action"]) for a in actions)
    before = dict((e["name"], _summary(e)) for e in observed)
    after = dict((e["name"], _summary(e)) for e in observed if e["vpn"] in frozen)
    for name, spec in desired.items():
        summary = _summary(spec)
        summary["state"] = RUNNING if done.get(name) or name not in matched else matched[name]["state"]
        after[name] = summary
    return before, after


def plan_output(plan, states, targets, forwarded):
    """Step 6: the return value ``plan``, one entry per VPN in order."""
    plan_out = []
    for vpn in plan.vpns:
        state = states[vpn.name]
        plan_out.append({
            "name": vpn.name, "container_id": state["id"], "range": str(vpn.range), "start": vpn.range.start,
            "end": vpn.range.end, "capacity": vpn.capacity, "share": vpn.share,
            "engines": targets.get(vpn.name, 0), "published": ranges_text(state["published"]),
            "healthy": state["healthy"],
            "forwarded_port": (forwarded.get(vpn.name) or [None])[0] if vpn.name in forwarded
            else state["forwarded_port"],
            "forwarded_ports": list(forwarded.get(vpn.name, state.get("forwarded_ports") or [])),
            "https_range": "%d-%d" % (plan.https_range.start, plan.https_range.start + vpn.capacity - 1),
        })
    return plan_out


def pull_action(actions, image, image_id, pull="missing"):
    """The pull that must come first, or None: the image is not on the Docker host (``image_id`` None) and an
    engine is to be created from it. With ``pull`` ``never`` that is a PreflightError instead."""
    if image_id is not None or not any(a["action"] in ("create", "recreate") for a in actions):
        return None
    if pull == "never":
        raise PreflightError("image %s is not on the Docker host and pull is never: load or pull it first" % image)
    return {"action": "pull", "name": image, "vpn": None, "port": None, "reason": "image not on the Docker host",
            "id": None}


def restart_baselines(actions):
    """Engine name -> the ``RestartCount`` its container has right after this run's action: 0 for the engines
    created, re-created or started (Docker resets the count on every start it is asked for). Unpaused engines
    keep a count from before, unknown here: only their state is judged."""
    return dict((a["name"], 0) for a in actions if a["action"] in ("create", "recreate", "start"))


def crash_problem(inspect, restarts=None):
    """Why an engine this run brought up is not staying up, from its container inspect, or None.

    ``restarts``: its ``RestartCount`` right after this run's action (None: not judged). A container that is gone,
    exited, dead or restarting, or that Docker restarted since (the count grew), is crash-looping: waiting longer
    for it to answer is pointless, and the run fails with what it saw."""
    if inspect is None:
        return "the container is gone"
    state = inspect.get("State") or {}
    status = state.get("Status") or "unknown"
    count = inspect.get("RestartCount") or 0
    code = state.get("ExitCode")
    if state.get("Restarting") or status == "restarting":
        return "crash-looping: it exited (exit code %s) and Docker keeps restarting it (%d restart(s))" % (code, count)
    if status in ("exited", "dead"):
        return "it %s (exit code %s)" % ("exited" if status == "exited" else "is dead", code)
    if status == "created":
        return "it was never started"
    if restarts is not None and count > restarts:
        # Running again: its exit code is reset by the restart, only the count tells.
        return "crash-looping: Docker restarted it %d time(s) since this run started it" % (count - restarts)
    return None


def _action(kind, engine, reason, container_id=None):
    return {"action": kind, "name": engine["name"], "vpn": engine.get("vpn"), "port": engine.get("port"),
            "reason": reason, "id": container_id}


def name_clashes(actions, taken, pool, desired=None):
    """Fail before any change when a container the pool must create has a name used by a container that is not
    this pool's engine. ``taken``: name -> list entry of the containers that carry those names. ``desired``:
    name -> engine spec; a container that is this pool's engine for that slot with the same spec (made by
    another run converging the pool at the same time, after this run listed the pool) is not a clash: the create
    finds it and adopts it."""
    problems = []
    for action in actions:
        if action["action"] != "create" or action["name"] not in taken:
            continue
        container = taken[action["name"]]
        labels = container.get("Labels") or {}
        if same_engine(labels, pool, (desired or {}).get(action["name"])):
            continue
        owner = ("engine pool '%s'" % labels.get(LABEL_POOL) if labels.get(LABEL_MANAGED_BY) == MANAGER
                 else "not managed by acestream.orchestrator")
        problems.append("container '%s' (%s, image %s) already exists and is %s; engine pool '%s' needs this name "
                        "for its engine on VPN '%s' port %d: remove or rename that container, or choose another pool "
                        "name" % (action["name"], (container.get("Id") or "")[:12], container.get("Image"), owner, pool,
                                  action["vpn"], action["port"]))
    if problems:
        raise PreflightError("Name clash: " + "; ".join(problems))


def absent_actions(observed):
    """state=absent: remove every engine of the pool."""
    return [_action("remove", engine, "state is absent", engine["id"])
            for engine in sorted(observed, key=lambda e: (e["vpn"] or "", e["port"] or 0, e["name"]))]
