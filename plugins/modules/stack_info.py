#!/usr/bin/python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_info
short_description: Observe a whole AceStream stack once - its Gluetun VPNs, engines, checks, drift and status
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Reads one stack in one call, changing nothing - each Gluetun container (inspect) and its control server (version,
    VPN status, public IP, forwarded ports, with its credentials, on every release from v3.39 to C(latest)); the pool's
    engines (one labelled container list); each engine's API through the port its VPN publishes, in parallel with a
    bounded timeout; optionally each VPN's egress IP from inside one of its engines.
  - From that observation it returns the port guide's Verification checks, the drift M(acestream.orchestrator.engine_pool)
    would act on (the very decision engine_pool makes in check mode, so the two never disagree), the status table and
    a JSON status document, and the Prometheus metrics for node_exporter's textfile collector.
  - Takes the same options as M(acestream.orchestrator.engine_pool) for the pool, so that both read the stack alike.
  - The C(verify) and C(status) playbooks and the roles' checks are built on it. See the collection's C(docs/stack_info.md).
extends_documentation_fragment:
  - acestream.orchestrator.pool
attributes:
  check_mode:
    support: full
    description: Changes nothing in either mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  idempotent:
    support: full
    description: Read-only.
options:
  vpn_containers:
    description: Gluetun container names, in order (the first is C(GLUETUN_CONTAINER_NAME)).
    type: list
    elements: str
    required: true
  forwarded_port:
    description: V(auto) reads each VPN's forwarded ports; V(off) expects no forwarded engine.
    type: str
    choices: [auto, 'off']
    default: auto
  wait_timeout:
    description:
      - Seconds to wait for VPNs that are not healthy yet (just started, reconnecting) before reporting them as they
        are. V(0) reports at once.
    type: float
    default: 0
  on_unhealthy_vpn:
    description: As in M(acestream.orchestrator.engine_pool) - with V(failover), an unhealthy VPN's engine count is not a failure.
    type: str
    choices: [fail, failover]
    default: fail
  egress_url:
    description:
      - A URL that answers the caller's public IP address as text (for example C(https://ifconfig.me/ip)). Each VPN's
        egress is fetched from inside one of its running engines and must be the VPN's public IP, not the Docker host's.
      - Empty - the egress check is skipped, and says so.
    type: str
    default: ""
  mode:
    description: The stack's C(VPN_MODE), shown in the status table's title. Empty - told from the number of VPNs.
    type: str
    default: ""
  host:
    description: The name the status table and failure message give the Docker host (the inventory hostname).
    type: str
    default: localhost
  app:
    description:
      - The AceStream Orchestrator app (v1.7.3) that provisions the engines instead of
        M(acestream.orchestrator.engine_pool). Given, the engines observed and checked are the app's - the containers
        carrying the stack's C(CONTAINER_LABEL) C(acestream.app-pool=<name>), each placed by its labels
        C(acestream.vpn_container) (host) and C(host.http_port) (port), its P2P port read from its command line;
        each VPN must have one forwarded engine, with the port Gluetun answers first.
      - The drift is then what the C(orchestrator_app) role would change - start the app; restart it when it is
        crash-looping or paused, when engines were left in an old network namespace of their Gluetun container
        (re-created or restarted), or whenever a check of its engines behind a healthy Gluetun container fails that
        its start-up repairs (engines beyond the replicas or missing, two engines on one port, a crash-looping engine,
        an engine's host, port or API, the forwarded engine), or its settings files differ from
        O(app.settings_files); remove the collection's own engines. So the drift names the app exactly when
        C(verify) fails on its engines.
    type: dict
    version_added: 0.2.0
    suboptions:
      name:
        description: The app's container name.
        type: str
        required: true
      url:
        description:
          - The app's API as the Docker host reaches it (C(http://127.0.0.1:8000)); its C(/vpn/status) is checked
            against Gluetun (enabled, connected, the forwarded port). Empty - not asked.
        type: str
        default: ""
      settings_files:
        description:
          - The app's settings files on the Docker host and the content the stack's variables give them (path ->
            content); one that differs (the app's settings API, or a hand, wrote into it) is drift.
        type: dict
        default: {}
        version_added: 0.2.0
      log_lines:
        description: The app's last log lines to return in RV(status.app.logs) (what the app said when it does not answer).
        type: int
        default: 0
        version_added: 0.2.0
requirements:
  - Docker SDK for Python >= 5.0
notes:
  - Fails only on bad options or when the Docker Engine cannot be reached; everything the stack gets wrong is in
    RV(checks) and RV(drift).
  - Credentials and the control servers' settings routes are never part of the result.
seealso:
  - module: acestream.orchestrator.engine_pool
  - module: acestream.orchestrator.gluetun_status
"""

EXAMPLES = r"""
- name: Observe the guide's redundant stack
  acestream.orchestrator.stack_info:
    name: acestream
    vpn_containers: [gluetun1, gluetun2]
    port_range: 19000-19999
    replicas: 4
    api_port: 8001
    api_key: "{{ vault_gluetun_api_key }}"
  register: stack

- name: Fail listing every check that failed
  ansible.builtin.assert:
    that: stack.checks_failed == 0
    fail_msg: "{{ stack.failure }}"

- name: Write the metrics for node_exporter's textfile collector
  ansible.builtin.copy:
    content: "{{ stack.metrics }}"
    dest: /var/lib/node_exporter/textfile/acestream.prom
    mode: "0644"
"""

RETURN = r"""
vpns:
  description: Each VPN of the plan as observed, in plan order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Gluetun container name.
      type: str
    exists:
      description: Whether the container exists.
      type: bool
    health:
      description: Docker health (C(healthy), C(starting), C(unhealthy), C(none) without a healthcheck).
      type: str
    vpn_status:
      description: The control server's VPN status.
      type: str
    healthy:
      description: Docker health C(healthy) (or no healthcheck) and the VPN C(running).
      type: bool
    version:
      description: The Gluetun release the control server reports.
      type: str
    public_ip:
      description: The VPN's public IP.
      type: str
    forwarded_port:
      description: The first forwarded port, V(null) when none.
      type: int
    forwarded_ports:
      description: Every forwarded port.
      type: list
      elements: int
    port_forwarding:
      description: Whether the container's environment turns port forwarding on.
      type: bool
    range:
      description: Its engine port range.
      type: str
    published:
      description: The TCP ports it publishes on the same host ports.
      type: str
engines:
  description: The pool's engines (with O(app), the app's), by VPN then port.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
    vpn:
      description: Its VPN container.
      type: str
    port:
      description: Its HTTP port.
      type: int
    state:
      description: Docker state.
      type: str
    forwarded:
      description: Whether it is its VPN's forwarded engine.
      type: bool
    p2p_port:
      description: Its P2P port when forwarded.
      type: int
    api_ok:
      description: Whether it answered get_status through its VPN's published port.
      type: bool
checks:
  description: The port guide's Verification checks and the drift, each C({scope, check, ok, detail}).
  returned: always
  type: list
  elements: dict
checks_failed:
  description: How many checks failed.
  returned: always
  type: int
failure:
  description: One line naming every failed check; empty when none failed.
  returned: always
  type: str
report:
  description: The checks as aligned text lines, the last counting them.
  returned: always
  type: list
  elements: str
drift:
  description: What M(acestream.orchestrator.engine_pool) would do now (with O(app), what the C(orchestrator_app) role would).
  returned: always
  type: dict
  contains:
    actions:
      description: Its planned actions (C(action), C(name), C(vpn), C(port), C(reason)), in order.
      type: list
      elements: dict
    error:
      description: Its refusal (an unhealthy VPN, a range not published ...), V(null) when it would run.
      type: str
    warnings:
      description: Its warnings.
      type: list
      elements: str
status_table:
  description: The status table as text lines.
  returned: always
  type: list
  elements: str
status:
  description: The status as one JSON-ready document (VPNs, engines, drift, check counts, time of the observation).
  returned: always
  type: dict
  contains:
    app:
      description: With O(app), the app as observed (its name, state, URL, C(/vpn/status) answer ...).
      returned: when O(app) is given
      type: dict
      contains:
        logs:
          description: The app's last O(app.log_lines) log lines; empty when none were asked for.
          type: list
          elements: str
metrics:
  description: The Prometheus text exposition of the status, for node_exporter's textfile collector.
  returned: always
  type: str
"""

import json
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import fail
from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    DOCKER_ARGUMENT_SPEC,
    DockerException,
    docker_client,
    docker_host_from,
    require_docker_sdk,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import RUNNING
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_docker import DockerEngines, engine_status
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import docker_host_address
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import GluetunConfigError
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import probe_instances
from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import (
    app_engines,
    container_label,
    with_started_at,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._pool_options import (
    POOL_ARGUMENT_SPEC,
    check_seconds,
    credentials,
    validate_pool,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_view as view_of

# Run inside an engine to fetch the egress URL with whatever the image has: curl, wget or Python.
EGRESS_SCRIPT = ('curl -fsS -m "$2" "$1" 2>/dev/null || wget -qO- -T "$2" "$1" 2>/dev/null || '
                 "python3 -c 'import sys, urllib.request as u; "
                 "print(u.build_opener().open(sys.argv[1], timeout=float(sys.argv[2])).read().decode())' \"$1\" \"$2\"")


def argument_spec():
    spec = dict(POOL_ARGUMENT_SPEC)
    spec.update(
        vpn_containers=dict(type="list", elements="str", required=True),
        wait_timeout=dict(type="float", default=0),
        egress_url=dict(type="str", default=""),
        mode=dict(type="str", default=""),
        host=dict(type="str", default="localhost"),
        app=dict(type="dict", options=dict(name=dict(type="str", required=True), url=dict(type="str", default=""),
                                           settings_files=dict(type="dict", default={}),
                                           log_lines=dict(type="int", default=0))),
    )
    spec.update(DOCKER_ARGUMENT_SPEC)
    return spec


def engine_answer(url, timeout):
    """``{ok, url, detail}``: one get_status request to an engine, as engine_pool's wait_ready makes it."""
    ok, problem = engine_status(url, timeout)
    where = url.split("/server/")[0]
    return {"ok": ok, "url": url, "detail": "%s answers get_status" % where if ok else
            "%s did not answer get_status (%s)" % (where, problem)}


def _exec_output(api, container_id, argv):
    exec_id = api.exec_create(container_id, argv, stdout=True, stderr=False)["Id"]
    output = api.exec_start(exec_id).decode("utf-8", "replace").strip()
    code = api.exec_inspect(exec_id).get("ExitCode")
    return output if code == 0 else "", None if code == 0 else "exit code %s" % code


def observe_egress(ops, url, timeout, engines):
    """The host's own egress IP, and one running engine's per VPN."""
    host_ip = ""
    try:
        resp = open_url(url, timeout=timeout, use_proxy=False)
        try:
            if resp.status == 200:
                host_ip = resp.read(256).decode("utf-8", "replace").strip()
        finally:
            resp.close()
    except Exception:  # pylint: disable=broad-except  # no host IP: the check then only compares with the VPN's
        host_ip = ""
    first = {}
    for engine in engines:
        if engine["state"] == RUNNING and engine["vpn"] not in first:
            first[engine["vpn"]] = engine

    def fetch(engine):
        try:
            ip, error = _exec_output(ops._api(), engine["id"], ["sh", "-c", EGRESS_SCRIPT, "egress", url,
                                                                "%g" % timeout])
        except DockerException as exc:
            ip, error = "", str(exc)
        return {"engine": engine["name"], "ip": ip, "error": error}

    seen = dict(zip(first, ops.parallel(fetch, list(first.values()))))
    return {"url": url, "host_ip": host_ip, "vpns": seen}


def app_vpn_status(url, timeout):
    """``(answer, error)``: the app's ``GET /vpn/status`` (no credentials: it is a read-only route)."""
    try:
        resp = open_url(url.rstrip("/") + "/vpn/status", timeout=timeout, use_proxy=False)
        try:
            return json.loads(resp.read(65536).decode("utf-8", "replace")), None
        finally:
            resp.close()
    except ValueError as exc:
        return None, "not JSON (%s)" % exc
    except Exception as exc:  # pylint: disable=broad-except  # any failure is the check's detail
        return None, str(exc)


def observe_app(ops, pool, app, timeout):
    """The app: its container's state, its engines (one list call by the stack's CONTAINER_LABEL), its /vpn/status."""
    inspect = ops.inspect_container(app["name"])
    state = ((inspect or {}).get("State") or {}).get("Status")
    engines = app_engines(ops.list_labelled(container_label(pool)), pool)
    # Each engine's own start (after a Docker Engine restart it started again, in its VPN's current namespace).
    inspects = dict(zip([e["id"] for e in engines], ops.parallel(ops.inspect_container, [e["id"] for e in engines])))
    answer, error = app_vpn_status(app["url"], timeout) if app["url"] and state == RUNNING else (None, None)
    if app["url"] and state != RUNNING:
        error = "the app is %s" % (state or "missing")
    return {"name": app["name"], "state": state, "engines": with_started_at(engines, inspects), "url": app["url"] or None,
            "vpn_status": answer, "error": error, "settings_changed": settings_changed(app.get("settings_files")),
            "logs": app_logs(ops, app["name"], app.get("log_lines")) if inspect else []}


def app_logs(ops, name, lines):
    """The app container's last ``lines`` log lines (none asked: [])."""
    if not lines or lines <= 0:
        return []
    try:
        text = ops._api().logs(name, tail=int(lines)).decode("utf-8", "replace")  # pylint: disable=protected-access
    except Exception as exc:  # pylint: disable=broad-except  # what the logs could not say is said instead
        return ["(cannot read the logs of %s: %s)" % (name, exc)]
    return [line for line in text.splitlines() if line.strip()][-int(lines):]


def settings_changed(files):
    """The app's settings files (path -> the content the stack gives them) whose content on this host differs."""
    out = []
    for path, wanted in sorted((files or {}).items()):
        try:
            with open(path, "rb") as handle:
                seen = handle.read(1 << 20)
        except (IOError, OSError):
            seen = None
        if seen != str(wanted).encode("utf-8"):
            out.append(path)
    return out


def observe(ops, plan, core, params, docker_api):
    """engine_pool's own observation (so the drift is its decision), the probes shown, each engine's API."""
    names = [vpn.name for vpn in plan.vpns]
    creds = credentials(params)
    host = docker_host_address(ops.docker_host)
    probes = dict(zip(names, probe_instances(docker_api, names, api_port=params["api_port"],
                                             timeout=params["api_timeout"], wait_timeout=params["wait_timeout"],
                                             public_ip=True, host_address=None if host == "127.0.0.1" else host,
                                             **creds)))
    engines, states, image_id, others = ops.observe(plan, core["pool"], core["image"], params["api_port"], creds,
                                                    params["api_timeout"], ports=params["forwarded_port"] == "auto")
    app = observe_app(ops, core["pool"], params["app"], params["api_timeout"]) if params["app"] else None
    asked = engines if app is None else app["engines"]

    def ask(engine):
        url = ops.engine_url(engine, states[engine["vpn"]]["published"].get(engine["port"]))
        return engine_answer(url, params["api_timeout"])

    running = [e for e in asked if e["state"] == RUNNING and e["port"] and e["vpn"] in states]
    api = dict(zip([e["name"] for e in running], ops.parallel(ask, running)))
    egress = observe_egress(ops, params["egress_url"], params["api_timeout"], asked) if params["egress_url"] else None
    core = dict(core, mode=params["mode"] or None, host=params["host"])
    return view_of.observe(plan, core, states, engines, probes, image_id, api, egress, time.time(), others, app)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_docker_sdk(module)
    params = module.params
    try:
        plan, core = validate_pool(params)
        module.no_log_values.update([params["api_key"]] if params["api_key"] else [])  # read from api_key_file
        check_seconds(params, "wait_timeout", zero_ok=True)
    except PortPlanError as exc:
        fail(module, exc)
    docker_host = docker_host_from(params["docker_host"])
    try:
        client = docker_client(docker_host, params["docker_timeout"])
        ops = DockerEngines(client, params["parallelism"], docker_host)
        view = observe(ops, plan, core, params, client)
    except GluetunConfigError as exc:
        fail(module, exc)
    except DockerException as exc:
        module.fail_json(msg="Docker error: %s" % exc, exception=traceback.format_exc())
    results = view_of.checks(view)
    module.exit_json(
        changed=False,
        vpns=view["vpns"],
        engines=view["engines"],
        checks=results,
        checks_failed=len([c for c in results if not c["ok"]]),
        failure=view_of.failure_message(results, params["host"]) or "",
        report=view_of.report_lines(results),
        drift=view["drift"],
        status_table=view_of.status_lines(view),
        status=view_of.status_document(view, results),
        metrics=view_of.prometheus_text(view, results),
    )


if __name__ == "__main__":
    main()
