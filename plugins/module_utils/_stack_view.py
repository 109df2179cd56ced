# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One observation of a stack, and its views: the guide's Verification checks, the drift, the status table, JSON
and Prometheus metrics.

Private to this collection. No I/O: the stack_info module observes (container inspects, the control servers, one
labelled list of the pool's engines, each engine's API) and hands the observations in. Every rule applied here is
the engine pool core's own (``_engine_core``): which ports a VPN publishes, whether it forwards a port, whether an
engine sits in its VPN's current network namespace, what the pool would change. Nothing is decided twice.

* ``observe(plan, params, states, engines, probes, image_id, ...)``: the whole view.
* ``checks(view)``: ``[{scope, check, ok, detail}]``, the guide's Verification section.
* ``report_lines(checks)``, ``status_lines(view)``: aligned text.
* ``prometheus_text(view)``: the node_exporter textfile.
"""

from __future__ import annotations

import json
import math
import time

from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import (
    PreflightError,
    RUNNING,
    converge,
    range_mismatch,
    reserved_ports,
    usable_forwarded_ports,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_release import contradiction
from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import (
    reads_forwarded_port,
    stranded,
    vpn_status_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    GLUETUN_DEFAULT_API_PORT,
    PortPlanError,
    ranges_text,
)

ENGINE_STATES = ("running", "restarting", "paused", "created", "exited", "dead")
EGRESS_SKIPPED = "skipped: no URL configured (set acestream_verify_egress_url, e.g. https://ifconfig.me/ip)"


# --------------------------------------------------------------------------------------- observing
def _vpn_view(vpn, state, probe, decided_plan):
    probe = probe or {}
    container = probe.get("container") or {}
    planned = decided_plan or {}
    return {
        "name": vpn.name,
        "exists": state["exists"],
        "id": state["id"],
        "running": state["status"] == RUNNING,
        "status": state["status"],
        "started_at": state["started_at"],
        "health": container.get("health") or state["health"] or "none",
        "reachable": bool(probe.get("reachable")),
        "api_url": probe.get("api_url"),
        "version": probe.get("version"),
        "release_label": state.get("release_label"),
        "vpn_status": probe.get("vpn_status"),
        "healthy": bool(probe.get("healthy")),
        "connected": bool(probe.get("connected")),
        "public_ip": probe.get("public_ip"),
        "country": probe.get("country"),
        "forwarded_port": probe.get("forwarded_port") or None,
        "forwarded_ports": [p for p in (probe.get("forwarded_ports") or []) if p],
        "port_forwarding": state["forwarding_on"],
        "error": probe.get("error"),
        "range": str(vpn.range),
        "start": vpn.range.start,
        "end": vpn.range.end,
        "share": vpn.share,
        "engines_planned": planned.get("engines", vpn.share),
        "published": ranges_text(state["published"]),
        "range_mismatch": range_mismatch(vpn, state) if state["exists"] else None,
    }


def _engine_view(engine, states, api):
    state = states.get(engine["vpn"])
    keys = ("name", "id", "vpn", "port", "https_port", "forwarded", "p2p_port", "state", "status", "network_mode",
            "vpn_started_at")
    view = dict((key, engine[key]) for key in keys)
    view["api_port"] = engine.get("api_port")
    view["host"] = engine["vpn"]
    view["in_plan"] = state is not None
    view["vpn_id"] = state["id"] if state else None
    answer = (api or {}).get(engine["name"])
    view["api_ok"] = bool(answer and answer.get("ok"))
    view["api_url"] = (answer or {}).get("url")
    view["api_detail"] = (answer or {}).get("detail") or ("not asked: engine %s" % engine["state"])
    return view


def drift(plan, params, states, engines, image_id, others=()):
    """What engine_pool would do now: ``{"actions": [...], "error": None | text, "warnings": [...],
    "plan": [...]}``. The same call engine_pool makes, so the two can never disagree (its refusal of a VPN that
    runs another pool's engines included: ``others``)."""
    try:
        decided = converge(plan, params, states, engines, image_id, others)
    except (PortPlanError, PreflightError) as exc:
        return {"actions": [], "error": str(exc), "warnings": [], "plan": []}
    actions = [dict((k, a[k]) for k in ("action", "name", "vpn", "port", "reason")) for a in decided["actions"]]
    return {"actions": actions, "error": None, "warnings": decided["warnings"], "plan": decided["plan"]}


def app_engines_joined(engines, states):
    """The app's engines with ``vpn_started_at`` as the pool's engines carry it in a label: their VPN's current start
    when they were created after it, else the engine's own creation (left in an old network namespace)."""
    vpns = dict((name, {"id": state["id"], "started_at": state["started_at"]}) for name, state in states.items())
    left = set(item["name"] for item in stranded(engines, vpns))
    out = []
    for engine in engines:
        state = states.get(engine["vpn"]) or {}
        since = engine.get("started_at") if engine.get("started_at") is not None else engine["created"]
        joined = state.get("started_at") if engine["name"] not in left else (
            "started %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since else "unknown")
        out.append(dict(engine, vpn_started_at=joined))
    return out


# States of the app's container that starting it leaves as they are (a crash loop under its restart policy, a pause):
# the role restarts it.
APP_STUCK = ("restarting", "paused")


def app_drift(app, states, pool_engines):
    """What the orchestrator_app role would change for the app's engines: restart the app when engines were left in
    an old network namespace (its start-up re-provisions them) or when it is crash-looping or paused, start it when
    it is not running otherwise, remove the collection's own engines (the app provisions them). Shaped as
    engine_pool's drift."""
    vpns = dict((name, {"id": state["id"], "started_at": state["started_at"]}) for name, state in states.items())
    actions = []
    if app["state"] in APP_STUCK:
        actions.append({"action": "restart", "name": app["name"], "vpn": None, "port": None,
                        "reason": "the orchestrator app is %s (a start leaves it so)" % app["state"]})
    elif app["state"] != RUNNING:
        actions.append({"action": "start", "name": app["name"], "vpn": None, "port": None,
                        "reason": "the orchestrator app is %s" % (app["state"] or "missing")})
    left = stranded(app["engines"], vpns)
    if left and app["state"] == RUNNING:
        actions.append({"action": "restart", "name": app["name"], "vpn": None, "port": None,
                        "reason": "its start-up re-provisions the engines left behind: %s" % "; ".join(
                            "%s %s" % (item["name"], item["reason"]) for item in left)})
    changed = app.get("settings_changed") or []
    if changed and app["state"] == RUNNING and not left:
        actions.append({"action": "restart", "name": app["name"], "vpn": None, "port": None,
                        "reason": "its settings files differ from the stack's (the role writes them back, the app reads "
                                  "them at start): %s" % ", ".join(changed)})
    for engine in pool_engines:
        actions.append({"action": "remove", "name": engine["name"], "vpn": engine["vpn"], "port": engine["port"],
                        "reason": "the orchestrator app provisions the engines"})
    return {"actions": actions, "error": None, "warnings": [], "plan": []}


# The checks of the app's engines that a restart of the app repairs (its start-up removes every engine carrying the
# stack's CONTAINER_LABEL and provisions them again): each engine's own, the engines per VPN, the forwarded engine, the
# count. After a fault the app's health manager piles up replacements (on another engine's API port: they crash-loop)
# or leaves engines in a dead namespace; whatever of these checks fails, the app's drift is a restart. Not while their
# Gluetun container is missing or unhealthy: the app places no engine on such a VPN, so a restart repairs nothing
# there (the VPN's own checks fail; Gluetun heals its tunnel, site re-creates a missing container).
APP_REPAIRED = (("VPN", "engines"), ("VPN", "forwarded engine"), ("stack", "engines"))


def _app_repaired(result, unhealthy):
    """Whether a restart of the app repairs this failed check; ``unhealthy``: the names of the VPNs not healthy."""
    kind, _sep, rest = result["scope"].partition(" ")
    if kind == "engine":
        return rest.rpartition(":")[0] not in unhealthy
    if kind == "VPN" and rest in unhealthy:
        return False
    if kind == "stack" and unhealthy:
        return False
    return (kind, result["check"]) in APP_REPAIRED


def _app_whole(view):
    """The app's drift made whole: a restart when a check of its engines fails that a restart repairs (and none is
    already decided). ``verify`` fails exactly then; ``drift`` names it; ``site`` restarts the app."""
    decided = view["drift"]
    app = view["app"]
    if app["state"] != RUNNING or any(a["action"] in ("restart", "start") for a in decided["actions"]):
        return decided
    unhealthy = set(vpn["name"] for vpn in view["vpns"] if not vpn["healthy"])
    failing = [c for c in _view_checks(view) if not c["ok"] and _app_repaired(c, unhealthy)]
    if not failing:
        return decided
    restart = {"action": "restart", "name": app["name"], "vpn": None, "port": None,
               "reason": "its start-up provisions the engines again: %s" % "; ".join(
                   "%s %s: %s" % (c["scope"], c["check"], c["detail"]) for c in failing)}
    return dict(decided, actions=[restart] + list(decided["actions"]))


def observe(plan, params, states, engines, probes, image_id, api=None, egress=None, observed_at=None, others=(),
            app=None):
    """The stack's view from its observations.

    ``plan``: the PortPlan. ``params``: the engine pool core's parameters (``pool``, ``variant``, ``image``,
    ``env``, ``labels``, ``restart_policy``, ``on_unhealthy``, ``api_port``, ``forwarded_port``) plus ``mode`` (the
    guide's VPN_MODE, shown in the table) and ``host`` (inventory name). ``states``, ``engines``, ``image_id``: what
    engine_pool observes (VPN name -> ``vpn_state()``, the pool's ``observed_engine()`` list, the image's local ID),
    so that the drift is engine_pool's own decision. ``probes``: VPN name -> gluetun_status result (what is shown:
    release, public IP, every forwarded port). ``api``: engine name -> ``{ok, url, detail}``. ``egress``: None (not
    asked) or ``{"url", "host_ip", "vpns": {vpn: {"engine", "ip", "error"}}}``. ``observed_at``: seconds since the
    epoch. ``others``: the other pools' engines on the Docker host (engine_pool's observation too): the drift then
    shows engine_pool's refusal when one of them is on this pool's VPNs. ``app``: None, or the orchestrator app
    that provisions the engines: ``{name, state, engines, url, vpn_status, error}`` (its engines as
    ``_orchestrator_app.app_engines`` reads them, its ``/vpn/status`` answer): the view's engines are then the app's,
    and the drift is the app's.
    """
    order = dict((vpn.name, vpn.index) for vpn in plan.vpns)
    if app is not None:
        decided = app_drift(app, states, engines)
        engines = app_engines_joined(app["engines"], states)
    else:
        decided = drift(plan, params, states, engines, image_id, others)
    engines = sorted(engines, key=lambda e: (order.get(e["vpn"], len(order)), e["vpn"] or "", e["port"] or 0,
                                             e["name"]))
    planned = dict((row["name"], row) for row in decided["plan"])
    view = {
        "pool": params["pool"],
        "host": params.get("host"),
        "mode": params.get("mode"),
        "api_port": params.get("api_port"),
        "port_range": str(plan.port_range) if plan.port_range else None,
        "replicas": plan.replicas,
        "on_unhealthy": params.get("on_unhealthy", "fail"),
        "observed_at": observed_at,
        "vpns": [_vpn_view(vpn, states[vpn.name], probes.get(vpn.name), planned.get(vpn.name)) for vpn in plan.vpns],
        "engines": [_engine_view(e, states, api) for e in engines],
        "drift": decided,
        "egress": egress,
        "app": None if app is None else {
            "name": app["name"], "state": app["state"], "url": app.get("url"), "vpn_status": app.get("vpn_status"),
            "error": app.get("error"), "engines": len(app["engines"]),
            "settings_changed": list(app.get("settings_changed") or []), "logs": list(app.get("logs") or [])},
    }
    if app is not None:
        view["drift"] = _app_whole(view)
    return view


# ------------------------------------------------------------------------------------------ checks
def _check(scope, check, ok, detail):
    return {"scope": scope, "check": check, "ok": bool(ok), "detail": detail}


def _vpn_checks(vpn, engines, api_port, on_unhealthy, app=False):
    scope = "VPN " + vpn["name"]
    out = []
    if not vpn["exists"]:
        detail = "container missing"
    elif not vpn["running"]:
        detail = "container not running"
    elif not vpn["reachable"]:
        detail = "control server not reachable: %s" % (vpn["error"] or "")
    else:
        detail = "running, control server %s, Gluetun %s" % (vpn["api_url"], vpn["version"] or "?")
    out.append(_check(scope, "enabled", vpn["exists"] and vpn["running"] and vpn["reachable"], detail))

    if vpn["release_label"] and vpn["version"]:
        said = contradiction(vpn["release_label"], vpn["version"])
        detail = ("Gluetun %s %s" % (vpn["name"], said)) if said else (
            "answers %s, auth file written for %s" % (vpn["version"], vpn["release_label"]))
        out.append(_check(scope, "release", said is None, detail))

    ok = vpn["connected"] and vpn["healthy"]
    detail = "VPN status %s, Docker health %s" % (vpn["vpn_status"] or "unknown", vpn["health"])
    if vpn["public_ip"]:
        detail += ", public IP %s" % vpn["public_ip"]
    if not ok:
        detail += ": %s" % (vpn["error"] or "")
    out.append(_check(scope, "connected", ok, detail))

    if vpn["port_forwarding"]:
        ok = bool(vpn["forwarded_port"])
        detail = ("port %s" % ", ".join(str(p) for p in vpn["forwarded_ports"] or [vpn["forwarded_port"]]) if ok else
                  "Failed to get forwarded port from Gluetun: VPN_PORT_FORWARDING=on but no port reported")
    else:
        ok, detail = True, "VPN_PORT_FORWARDING off: none expected"
    out.append(_check(scope, "forwarded port", ok, detail))

    if vpn["exists"]:
        mismatch = vpn["range_mismatch"]
        detail = mismatch or "publishes %s (its slice of PORT_RANGE_HOST), control server port %s" % (
            vpn["range"], api_port)
        out.append(_check(scope, "publishes its range", mismatch is None, detail))
    ok = len(engines) == vpn["engines_planned"] or (on_unhealthy == "failover" and not vpn["healthy"])
    out.append(_check(scope, "engines", ok, "%d engine(s), plan %d" % (len(engines), vpn["engines_planned"])))

    if app and vpn["forwarded_port"] and not reads_forwarded_port(vpn["version"]):
        fwd = [e["name"] for e in engines if e["forwarded"]]
        detail = ("Gluetun %s has no /v1/portforward: the orchestrator app runs no forwarded engine "
                  "(acestream_orchestrator_old_gluetun: warn)%s" % (
                      vpn["version"], "; forwarded: %s" % ", ".join(fwd) if fwd else ""))
        out.append(_check(scope, "forwarded engine", not fwd, detail))
    elif vpn["forwarded_port"]:
        # Each forwarded port on its own engine, as many as the VPN has engines (engine_pool's assignment, of the ports
        # engine_pool takes: each once, none Gluetun itself listens on); the orchestrator app runs one forwarded
        # engine per VPN, with the port Gluetun answers first.
        reported = vpn["forwarded_ports"] or [vpn["forwarded_port"]]
        api_port = api_port or GLUETUN_DEFAULT_API_PORT
        reserved = reserved_ports(api_port)
        ports = reported[:1] if app else usable_forwarded_ports(vpn["name"], reported, api_port)
        fwd = sorted((e for e in engines if e["forwarded"]), key=lambda e: e["port"] or 0)
        held = [e["p2p_port"] for e in fwd]
        ok = len(fwd) == min(len(ports), len(engines)) and len(set(held)) == len(held) \
            and all(port in ports for port in held)
        detail = "%s (%s)" % (
            ", ".join("%s with P2P port %s" % (e["name"], e["p2p_port"]) for e in fwd) or "no engine",
            "forwarded %s %s" % ("port" if len(ports) == 1 else "ports", ", ".join(str(p) for p in ports)) if ports
            else "no forwarded port an engine can take")
        if not app:
            skipped = sorted(set(p for p in reported if p in reserved))
            if skipped:
                detail += "; not for an engine: %s" % ", ".join("%d (held by %s)" % (p, reserved[p]) for p in skipped)
        out.append(_check(scope, "forwarded engine", ok, detail))
    return out


def _port_clashes(engine, engines):
    """The other engines of the same VPN holding one of ``engine``'s host ports (HTTP or API) as theirs:
    ``[text]``. In one network namespace a port is one engine's: the app's replacements that take another engine's API
    port crash-loop (v1.7.3 reserves only HTTP ports after re-indexing)."""
    mine = dict((p, what) for p, what in ((engine["port"], "HTTP"), (engine.get("api_port"), "API")) if p)
    out = []
    for other in engines:
        if other["name"] == engine["name"] or other["vpn"] != engine["vpn"]:
            continue
        for port, what in ((other["port"], "HTTP"), (other.get("api_port"), "API")):
            if port in mine:
                out.append("its %s port %s is the %s port of %s" % (mine[port], port, what, other["name"]))
    return out


def _engine_checks(engine, vpn, engines=None, app=False):
    scope = "engine %s:%s" % (engine["vpn"], engine["port"])
    out = [_check(scope, "running", engine["state"] == RUNNING, "%s %s" % (engine["name"], engine["state"]))]
    if app:
        clashes = _port_clashes(engine, engines or [])
        out.append(_check(scope, "own ports", not clashes, "; ".join(clashes) if clashes else
                          "%s: HTTP port %s, API port %s, held by no other engine" % (
                              engine["name"], engine["port"], engine.get("api_port"))))
    vpn_id = (vpn or {}).get("id")
    ok = vpn_id is not None and engine["network_mode"] == "container:%s" % vpn_id
    if ok:
        detail = "host %s (network_mode container:%s)" % (engine["vpn"], vpn_id[:12])
    else:
        detail = "joined to %s, not the current %s container %s: Gluetun was re-created; run the site playbook" % (
            engine["network_mode"] or "no network", engine["vpn"], vpn_id[:12] if vpn_id else "(missing)")
    out.append(_check(scope, "host", ok, detail))

    inside = vpn is not None and engine["port"] is not None and vpn["start"] <= engine["port"] <= vpn["end"]
    published = inside and vpn["range_mismatch"] is None
    if published:
        detail = "port %s in %s, published by %s" % (engine["port"], vpn["range"], engine["vpn"])
    elif not inside:
        detail = "port %s outside the range of %s (%s): Verify engine ports are mapped through Gluetun" % (
            engine["port"], engine["vpn"], (vpn or {}).get("range") or "none")
    else:
        detail = "port %s not published by %s: Verify engine ports are mapped through Gluetun" % (
            engine["port"], engine["vpn"])
    out.append(_check(scope, "port", published, detail))

    # The pool's rule: an engine joined its VPN at the VPN start recorded in its label; a later VPN start means
    # a new network namespace, and the engine was left in the old one.
    ok = vpn is not None and vpn["started_at"] is not None and engine["vpn_started_at"] == vpn["started_at"]
    detail = ("joined %s at its current start: in its current network namespace" % engine["vpn"] if ok else
              "joined %s before its last start (%s): left in a dead network namespace; run the site playbook" % (
                  engine["vpn"], (vpn or {}).get("started_at") or "not running"))
    out.append(_check(scope, "namespace", ok, detail))
    out.append(_check(scope, "API", engine["api_ok"], engine["api_detail"]))
    return out


def _egress_checks(view):
    egress = view["egress"]
    if not egress:
        return [_check("stack", "egress IP", True, EGRESS_SKIPPED)]
    out = []
    host_ip = egress.get("host_ip") or ""
    vpns = dict((vpn["name"], vpn) for vpn in view["vpns"])
    for name, seen in sorted(egress.get("vpns", {}).items(), key=lambda kv: vpns.get(kv[0], {}).get("start", 0)):
        public = (vpns.get(name) or {}).get("public_ip")
        ip = (seen.get("ip") or "").strip()
        ok = bool(ip) and (ip == public if public else True) and (ip != host_ip or not host_ip)
        if ok:
            detail = "egress %s from %s%s%s" % (ip, seen.get("engine"), " = VPN public IP" if public else "",
                                                ", host %s" % host_ip if host_ip else "")
        elif not ip:
            detail = "could not fetch %s from %s%s" % (
                egress.get("url"), seen.get("engine") or "no running engine",
                ": %s" % seen["error"] if seen.get("error") else "")
        elif ip == host_ip:
            detail = "egress %s is the host IP, not the VPN" % ip
        else:
            detail = "egress %s is not the VPN public IP %s" % (ip, public)
        out.append(_check("VPN " + name, "egress IP", ok, detail))
    return out


def _app_checks(view):
    app = view["app"]
    out = [_check("app " + app["name"], "running", app["state"] == RUNNING,
                  "%s %s" % (app["name"], app["state"] or "missing"))]
    if app["url"]:
        if app["error"]:
            ok, detail = False, "%s/vpn/status did not answer: %s" % (app["url"], app["error"])
        else:
            problems = vpn_status_problems(app["vpn_status"], view["vpns"])
            answer = app["vpn_status"] or {}
            ok = not problems
            detail = "; ".join(problems) if problems else "enabled, connected %s, forwarded port %s" % (
                json.dumps(answer.get("connected")), json.dumps(answer.get("forwarded_port")))
        out.append(_check("app " + app["name"], "/vpn/status", ok, detail))
    changed = app.get("settings_changed") or []
    out.append(_check("app " + app["name"], "settings files", not changed,
                      "changed behind the role's back (the app's settings API, or a hand): %s" % ", ".join(changed)
                      if changed else "as the stack's variables write them"))
    return out


def _drift_check(view):
    decided = view["drift"]
    if view.get("app"):
        actions = decided["actions"]
        if not actions:
            return _check("stack", "drift", True, "none: the orchestrator_app role would change nothing")
        return _check("stack", "drift", False, "the site playbook would make %d change(s): %s" % (
            len(actions), "; ".join("%s %s (%s)" % (a["action"], a["name"], a["reason"]) for a in actions)))
    if decided["error"]:
        return _check("stack", "drift", False, "engine_pool would refuse: %s" % decided["error"])
    actions = decided["actions"]
    if not actions:
        return _check("stack", "drift", True, "none: engine_pool would change nothing")
    return _check("stack", "drift", False, "engine_pool would make %d change(s): %s; run the site playbook" % (
        len(actions), "; ".join("%s %s (%s)" % (a["action"], a["name"], a["reason"]) for a in actions)))


def checks(view):
    """The port guide's Verification section, and the drift, as ``[{scope, check, ok, detail}]``."""
    out = _view_checks(view)
    out.append(_drift_check(view))
    return out


def _view_checks(view):
    out = []
    by_vpn = {}
    for engine in view["engines"]:
        by_vpn.setdefault(engine["vpn"], []).append(engine)
    for vpn in view["vpns"]:
        out.extend(_vpn_checks(vpn, by_vpn.get(vpn["name"], []), view["api_port"], view["on_unhealthy"],
                               app=view.get("app") is not None))
    vpns = dict((vpn["name"], vpn) for vpn in view["vpns"])
    for engine in view["engines"]:
        out.extend(_engine_checks(engine, vpns.get(engine["vpn"]), view["engines"], app=view.get("app") is not None))
    out.extend(_egress_checks(view))
    if view.get("app"):
        out.extend(_app_checks(view))
    out.append(_check("stack", "engines", len(view["engines"]) == view["replicas"], "%d engine(s) in pool %s, replicas %d"
                      % (len(view["engines"]), view["pool"], view["replicas"])))
    return out


def report_lines(results):
    """The checks as aligned text: result, scope, check, detail; a last line counting them."""
    if not results:
        return ["0 passed, 0 failed"]
    w1 = max(len(c["scope"]) for c in results)
    w2 = max(len(c["check"]) for c in results)
    lines = ["%s  %s  %s  %s" % ("ok  " if c["ok"] else "FAIL", c["scope"].ljust(w1), c["check"].ljust(w2), c["detail"])
             for c in results]
    failed = len([c for c in results if not c["ok"]])
    lines.append("%d passed, %d failed" % (len(results) - failed, failed))
    return lines


def failure_message(results, host):
    """One line naming every failed check, or None."""
    failed = [c for c in results if not c["ok"]]
    if not failed:
        return None
    return "%d check(s) failed on %s: %s" % (len(failed), host, "; ".join(
        "%s | %s | %s" % (c["scope"], c["check"], c["detail"]) for c in failed))


# ------------------------------------------------------------------------------------------ status
def _fwd_cell(vpn):
    if vpn["forwarded_ports"]:
        return ",".join(str(p) for p in vpn["forwarded_ports"])
    if vpn["forwarded_port"]:
        return str(vpn["forwarded_port"])
    return "-" if vpn["port_forwarding"] or not vpn["exists"] else "off"


def status_rows(view):
    """The status table's rows (header first): one per engine, the VPN's cells on its first engine's row."""
    rows = [["VPN", "HEALTH", "VPN STATUS", "PUBLIC IP", "FWD PORT", "ENGINE (HOST:PORT)", "STATE", "P2P", "API"]]
    for vpn in view["vpns"]:
        engines = [e for e in view["engines"] if e["vpn"] == vpn["name"]]
        cells = [vpn["name"], vpn["health"] if vpn["exists"] else "missing", vpn["vpn_status"] or "-",
                 vpn["public_ip"] or "-", _fwd_cell(vpn)]
        if not engines:
            rows.append(cells + ["(no engines)", "", "", ""])
        for index, engine in enumerate(engines):
            rows.append((cells if index == 0 else [""] * 5) + [
                "%s:%s" % (engine["vpn"], engine["port"]), engine["state"],
                str(engine["p2p_port"]) if engine["forwarded"] else "", "ok" if engine["api_ok"] else "no"])
    for engine in view["engines"]:
        if not engine["in_plan"]:
            rows.append(["(not in the plan)", "", "", "", "", "%s:%s" % (engine["vpn"], engine["port"]),
                         engine["state"], "", "ok" if engine["api_ok"] else "no"])
    return rows


def drift_summary(view):
    decided = view["drift"]
    if decided["error"]:
        return "drift: engine_pool would refuse: %s" % decided["error"]
    if not decided["actions"]:
        return "drift: none"
    return "drift: %d change(s): %s" % (len(decided["actions"]), ", ".join(
        "%s %s" % (a["action"], a["name"]) for a in decided["actions"]))


def status_lines(view):
    """The status table as text lines: a title, the aligned rows, the drift."""
    rows = status_rows(view)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    title = "Stack %s on %s: VPN_MODE=%s, GLUETUN_API_PORT=%s, PORT_RANGE_HOST=%s, %d/%d engines" % (
        view["pool"], view["host"] or "localhost", view["mode"] or ("redundant" if len(view["vpns"]) > 1 else "single"),
        view["api_port"], view["port_range"] or ", ".join(v["range"] for v in view["vpns"]), len(view["engines"]),
        view["replicas"])
    lines = [title]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    app = view.get("app")
    if app:
        answer = app["vpn_status"] or {}
        said = ""
        if app["vpn_status"] is not None:
            said = ": /vpn/status connected %s, forwarded port %s" % (
                json.dumps(answer.get("connected")), json.dumps(answer.get("forwarded_port")))
        lines.append("engines provisioned by the orchestrator app %s (%s)%s" % (
            app["name"], app["state"] or "missing", said))
    lines.append(drift_summary(view))
    return lines


def status_document(view, results):
    """The JSON status: the view's VPNs and engines, the checks, the drift, without the raw inspects."""
    failed = len([c for c in results if not c["ok"]])
    return {
        "pool": view["pool"], "host": view["host"], "mode": view["mode"], "observed_at": view["observed_at"],
        "replicas": view["replicas"], "engines_total": len(view["engines"]),
        "vpns": [dict((k, v[k]) for k in ("name", "exists", "health", "vpn_status", "healthy", "connected",
                                          "public_ip", "country", "version", "forwarded_port", "forwarded_ports",
                                          "port_forwarding", "range", "published", "share", "engines_planned"))
                 for v in view["vpns"]],
        "engines": [dict((k, e[k]) for k in ("name", "vpn", "host", "port", "https_port", "state", "forwarded",
                                             "p2p_port", "api_ok", "in_plan"))
                    for e in view["engines"]],
        "drift": {"actions": view["drift"]["actions"], "error": view["drift"]["error"]},
        "checks": {"passed": len(results) - failed, "failed": failed},
        "app": view.get("app"),
    }


# -------------------------------------------------------------------------------------- prometheus
METRICS = (
    ("acestream_vpn_info", "gauge", "Gluetun VPN container of the stack, 1; its release, public IP and country as "
                                    "labels"),
    ("acestream_vpn_up", "gauge", "1 when the Gluetun container exists and runs"),
    ("acestream_vpn_healthy", "gauge", "1 when Docker reports the Gluetun container healthy and its VPN runs"),
    ("acestream_vpn_status", "gauge", "1 for the VPN status the control server reports (label status)"),
    ("acestream_vpn_forwarded_port", "gauge", "A port forwarded to the VPN (label index: 0 for the first)"),
    ("acestream_vpn_engines", "gauge", "Engines of the pool in the VPN's network namespace"),
    ("acestream_vpn_engines_planned", "gauge", "Engines the port plan gives the VPN"),
    ("acestream_engines", "gauge", "Engines of the pool by VPN and Docker state"),
    ("acestream_engine_api_up", "gauge", "1 when the engine answers get_status through its VPN's published port"),
    ("acestream_stack_replicas", "gauge", "Engines the stack asks for"),
    ("acestream_stack_drift_changes", "gauge", "Changes engine_pool would make now (-1: it would refuse)"),
    ("acestream_stack_checks_failed", "gauge", "Verification checks that failed"),
    ("acestream_stack_observed_timestamp_seconds", "gauge", "When the stack was observed, seconds since the epoch"),
)


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels):
    return "{%s}" % ",".join('%s="%s"' % (key, _escape(value)) for key, value in sorted(labels.items()))


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN"
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def prometheus_text(view, results):
    """The node_exporter textfile collector's format (Prometheus text exposition 0.0.4), every metric with its
    HELP and TYPE, samples grouped by metric."""
    pool = view["pool"]
    samples = dict((name, []) for name, _kind, _help in METRICS)
    for vpn in view["vpns"]:
        base = {"pool": pool, "vpn": vpn["name"]}
        samples["acestream_vpn_info"].append((dict(base, version=vpn["version"] or "", public_ip=vpn["public_ip"] or "",
                                                   country=vpn["country"] or ""), 1))
        samples["acestream_vpn_up"].append((base, vpn["exists"] and vpn["running"]))
        samples["acestream_vpn_healthy"].append((base, vpn["healthy"]))
        if vpn["vpn_status"]:
            samples["acestream_vpn_status"].append((dict(base, status=vpn["vpn_status"]), 1))
        for index, port in enumerate(vpn["forwarded_ports"] or ([vpn["forwarded_port"]] if vpn["forwarded_port"]
                                                                else [])):
            samples["acestream_vpn_forwarded_port"].append((dict(base, index=str(index)), port))
        engines = [e for e in view["engines"] if e["vpn"] == vpn["name"]]
        samples["acestream_vpn_engines"].append((base, len(engines)))
        samples["acestream_vpn_engines_planned"].append((base, vpn["engines_planned"]))
        for state in ENGINE_STATES:
            samples["acestream_engines"].append((dict(base, state=state),
                                                 len([e for e in engines if e["state"] == state])))
    for engine in view["engines"]:
        samples["acestream_engine_api_up"].append(({"pool": pool, "vpn": engine["vpn"] or "", "engine": engine["name"]},
                                                   engine["api_ok"]))
    decided = view["drift"]
    samples["acestream_stack_replicas"].append(({"pool": pool}, view["replicas"]))
    samples["acestream_stack_drift_changes"].append(({"pool": pool}, -1 if decided["error"] else len(decided["actions"])))
    samples["acestream_stack_checks_failed"].append(({"pool": pool}, len([c for c in results if not c["ok"]])))
    if view["observed_at"] is not None:
        samples["acestream_stack_observed_timestamp_seconds"].append(({"pool": pool}, float(view["observed_at"])))
    lines = []
    for name, kind, text in METRICS:
        if not samples[name]:
            continue
        lines.append("# HELP %s %s" % (name, text))
        lines.append("# TYPE %s %s" % (name, kind))
        for labels, value in samples[name]:
            lines.append("%s%s %s" % (name, _labels(**labels), _number(value)))
    return "\n".join(lines) + "\n"


def to_json(view, results):
    return json.dumps(status_document(view, results), indent=2, sort_keys=True)
