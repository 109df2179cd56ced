# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One observation of a stack and its views: every check, the drift (engine_pool's own decision), the status
table, the JSON document and the Prometheus metrics, from recorded inspects and list entries."""

from __future__ import annotations

import copy
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.acestream.orchestrator.plugins.module_utils import _engine_core as core
from ansible_collections.acestream.orchestrator.plugins.module_utils import _orchestrator_app as app_core
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_view as sv
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import build_plan

POOL = "ace"
IMAGE = "engine:sim"
STARTED = "2026-01-01T00:00:00.000000001Z"
NAMES = ["gluetun1", "gluetun2"]


def vpn_inspect(name, ports, cid=None, health="healthy", status="running", started=STARTED, forwarding=True):
    cid = cid or ("id" + name) * 6
    published = dict(("%d/tcp" % p, [{"HostIp": "127.0.0.1", "HostPort": str(p)}]) for p in ports)
    published["8001/tcp"] = [{"HostIp": "127.0.0.1", "HostPort": "18001"}]
    state = {"Status": status, "StartedAt": started}
    if health is not None:
        state["Health"] = {"Status": health}
    env = ["VPN_PORT_FORWARDING=%s" % ("on" if forwarding else "off"), "HTTP_CONTROL_SERVER_ADDRESS=:8001"]
    return {"Id": cid, "State": state, "HostConfig": {"PortBindings": copy.deepcopy(published)},
            "NetworkSettings": {"Ports": published}, "Config": {"Env": env}}


def probe(name, port=None, health="healthy", vpn_status="running", public_ip="203.0.113.1"):
    return {"name": name, "reachable": True, "api_url": "http://127.0.0.1:18001", "version": "v3.41.1",
            "vpn_status": vpn_status, "healthy": health == "healthy" and vpn_status == "running",
            "connected": vpn_status == "running", "public_ip": public_ip, "country": "Netherlands",
            "forwarded_port": port, "forwarded_ports": [port] if port else [], "error": None,
            "container": {"health": health}}


def params(**extra):
    base = {"pool": POOL, "variant": "krinkuto11-amd64", "image": IMAGE, "env": {}, "labels": {},
            "restart_policy": "unless-stopped", "on_unhealthy": "fail", "api_port": 8001, "forwarded_port": "auto",
            "mode": "redundant", "host": "node1"}
    base.update(extra)
    return base


class Stack:
    """A converged stack as Docker and the control servers report it; tests then break one thing."""

    def __init__(self, replicas=4, forwarded=(31000, 32000)):
        self.plan = build_plan(NAMES, port_range="19000-19009", replicas=replicas)
        self.inspects = dict((v.name, vpn_inspect(v.name, list(v.range))) for v in self.plan.vpns)
        self.ports = dict(zip(NAMES, forwarded))
        self.probes = dict((n, probe(n, self.ports[n])) for n in NAMES)
        for n, port in self.ports.items():
            if isinstance(port, (list, tuple)):  # several forwarded ports
                self.probes[n].update(forwarded_port=port[0], forwarded_ports=list(port))
        states = dict((n, core.vpn_state(n, self.inspects[n], self.control(n))) for n in NAMES)
        decided = core.converge(self.plan, params(), states, [], "sha256:img")
        self.containers = [self.listed(spec) for spec in decided["desired"].values()]
        self.api = dict((c["Names"][0][1:], {"ok": True, "url": "http://127.0.0.1:%s/server/api" % c["Labels"][
            core.LABEL_HTTP_PORT], "detail": "answers get_status"}) for c in self.containers)
        self.egress = None
        self.others = []  # list entries of other pools' engines

    def control(self, name):
        return {"vpn_status": self.probes[name]["vpn_status"], "forwarded_port": self.probes[name]["forwarded_port"],
                "forwarded_ports": self.probes[name]["forwarded_ports"], "error": None}

    @staticmethod
    def listed(spec, state="running", status="Up 1 minute"):
        return {"Id": "cid-" + spec["name"], "Names": ["/" + spec["name"]], "Image": spec["image"],
                "ImageID": "sha256:img", "Labels": dict(spec["labels"]), "State": state, "Status": status,
                "HostConfig": {"NetworkMode": spec["network_mode"]}}

    def engine(self, vpn, index=0):
        return [c for c in self.containers if c["Labels"][core.LABEL_VPN] == vpn][index]

    def view(self, **extra):
        """What stack_info observes: engine_pool's own observation (VPN states, engines, image), the probes."""
        states = dict((n, core.vpn_state(n, self.inspects[n], self.control(n))) for n in NAMES)
        engines = [core.observed_engine(c) for c in self.containers]
        others = [core.observed_engine(c) for c in self.others]
        return sv.observe(self.plan, params(**extra), states, engines, self.probes, "sha256:img", self.api,
                          self.egress, 1767225600.0, others)


def failed(view):
    return [(c["scope"], c["check"]) for c in sv.checks(view) if not c["ok"]]


def check(view, scope, name):
    return next(c for c in sv.checks(view) if c["scope"] == scope and c["check"] == name)


# ------------------------------------------------------------------------------------------- checks
def test_converged_stack_passes_every_check_and_has_no_drift():
    view = Stack().view()
    assert failed(view) == []
    assert view["drift"] == {"actions": [], "error": None, "warnings": [], "plan": view["drift"]["plan"]}
    kinds = {(c["scope"].split()[0], c["check"]) for c in sv.checks(view)}
    for kind in [("VPN", "enabled"), ("VPN", "connected"), ("VPN", "forwarded port"), ("VPN", "publishes its range"),
                 ("VPN", "engines"), ("VPN", "forwarded engine"), ("engine", "running"), ("engine", "host"),
                 ("engine", "port"), ("engine", "namespace"), ("engine", "API"), ("stack", "engines"),
                 ("stack", "drift"), ("stack", "egress IP")]:
        assert kind in kinds
    assert check(view, "stack", "egress IP")["detail"] == sv.EGRESS_SKIPPED
    assert check(view, "VPN gluetun1", "enabled")["detail"] == (
        "running, control server http://127.0.0.1:18001, Gluetun v3.41.1")
    assert check(view, "VPN gluetun1", "forwarded engine")["detail"] == (
        "ace-gluetun1-19000 with P2P port 31000 (forwarded port 31000)")
    assert check(view, "stack", "drift")["detail"] == "none: engine_pool would change nothing"


def test_engine_missing():
    stack = Stack()
    stack.containers.remove(stack.engine("gluetun2", 1))
    view = stack.view()
    assert failed(view) == [("VPN gluetun2", "engines"), ("stack", "engines"), ("stack", "drift")]
    assert check(view, "stack", "engines")["detail"] == "3 engine(s) in pool ace, replicas 4"
    assert [(a["action"], a["name"]) for a in view["drift"]["actions"]] == [("create", "ace-gluetun2-19006")]
    assert check(view, "stack", "drift")["detail"] == (
        "engine_pool would make 1 change(s): create ace-gluetun2-19006 (missing); run the site playbook")


def test_engine_stopped():
    stack = Stack()
    stack.engine("gluetun1")["State"] = "exited"
    stack.engine("gluetun1")["Status"] = "Exited (137) 5 seconds ago"
    del stack.api["ace-gluetun1-19000"]
    view = stack.view()
    assert failed(view) == [("engine gluetun1:19000", "running"), ("engine gluetun1:19000", "API"), ("stack", "drift")]
    assert check(view, "engine gluetun1:19000", "API")["detail"] == "not asked: engine exited"
    assert [(a["action"], a["reason"]) for a in view["drift"]["actions"]] == [
        ("start", "engine is exited (exit code 137)")]


def test_engine_crash_looping():
    stack = Stack()
    stack.engine("gluetun2")["State"] = "restarting"
    stack.engine("gluetun2")["Status"] = "Restarting (3) 2 seconds ago"
    del stack.api["ace-gluetun2-19005"]
    view = stack.view()
    assert failed(view) == [("engine gluetun2:19005", "running"), ("engine gluetun2:19005", "API"), ("stack", "drift")]
    assert check(view, "engine gluetun2:19005", "running")["detail"] == "ace-gluetun2-19005 restarting"
    assert view["drift"]["actions"] == [{"action": "recreate", "name": "ace-gluetun2-19005", "vpn": "gluetun2",
                                         "port": 19005, "reason": "engine is crash-looping: Docker keeps restarting it "
                                                                  "(exit code 3)"}]
    assert view["drift"]["warnings"] == []


def test_other_pool_on_a_vpn_is_engine_pools_refusal():
    """Another pool's engine on gluetun2: stack_info shows engine_pool's refusal, and only this pool's engines."""
    stack = Stack()
    spec = core.attach(core.engine_spec("b", "gluetun2", 19009, 45004, None, "krinkuto11-amd64", IMAGE, {}, {}, "no"),
                       core.vpn_state("gluetun2", stack.inspects["gluetun2"]))
    stack.others.append(stack.listed(spec))
    view = stack.view()
    assert failed(view) == [("stack", "drift")]
    assert view["drift"]["error"].startswith("One engine pool per VPN: VPN container 'gluetun2' already runs engine "
                                             "pool 'b' (b-gluetun2-19009). Engine pool 'ace' cannot share a VPN "
                                             "with another pool")
    assert check(view, "stack", "drift")["detail"] == "engine_pool would refuse: " + view["drift"]["error"]
    assert "b-gluetun2-19009" not in [e["name"] for e in view["engines"]]
    assert sv.drift_summary(view).startswith("drift: engine_pool would refuse: One engine pool per VPN")
    assert 'acestream_stack_drift_changes{pool="ace"} -1' in sv.prometheus_text(view, sv.checks(view))


def test_engine_spec_changed():
    stack = Stack()
    stack.engine("gluetun1", 1)["Labels"][core.LABEL_SPEC_HASH] = "0" * 20
    view = stack.view()
    assert failed(view) == [("stack", "drift")]
    assert [(a["action"], a["name"]) for a in view["drift"]["actions"]] == [("recreate", "ace-gluetun1-19001")]


def test_gluetun_recreated():
    stack = Stack()
    stack.inspects["gluetun1"]["Id"] = "new" * 20
    view = stack.view()
    assert ("engine gluetun1:19000", "host") in failed(view)
    assert "Gluetun was re-created; run the site playbook" in check(view, "engine gluetun1:19000", "host")["detail"]
    assert {a["action"] for a in view["drift"]["actions"]} == {"recreate"}
    assert sorted(a["name"] for a in view["drift"]["actions"]) == ["ace-gluetun1-19000", "ace-gluetun1-19001"]


def test_gluetun_restarted_leaves_its_engines_in_a_dead_namespace():
    stack = Stack()
    stack.inspects["gluetun2"]["State"]["StartedAt"] = "2026-01-01T00:05:00.000000001Z"
    view = stack.view()
    assert failed(view) == [("engine gluetun2:19005", "namespace"), ("engine gluetun2:19006", "namespace"),
                            ("stack", "drift")]
    assert "left in a dead network namespace" in check(view, "engine gluetun2:19005", "namespace")["detail"]
    assert all("dead network namespace" in a["reason"] for a in view["drift"]["actions"])


def test_range_not_published():
    stack = Stack()
    for port in (19007, 19008):
        del stack.inspects["gluetun2"]["NetworkSettings"]["Ports"]["%d/tcp" % port]
    view = stack.view()
    assert ("VPN gluetun2", "publishes its range") in failed(view)
    detail = check(view, "VPN gluetun2", "publishes its range")["detail"]
    assert detail.startswith("Port Range Mismatch: VPN container 'gluetun2'") and "missing: 19007-19008" in detail
    for port in (19005, 19006):
        assert ("engine gluetun2:%d" % port, "port") in failed(view)
    assert view["drift"]["error"].startswith("Port Range Mismatch")
    assert check(view, "stack", "drift")["detail"].startswith("engine_pool would refuse: Port Range Mismatch")


def test_forwarded_port_moved():
    stack = Stack()
    stack.probes["gluetun1"] = probe("gluetun1", 31555)
    view = stack.view()
    assert failed(view) == [("VPN gluetun1", "forwarded engine"), ("stack", "drift")]
    assert [(a["action"], a["name"], a["reason"]) for a in view["drift"]["actions"]] == [
        ("recreate", "ace-gluetun1-19000", "forwarded port moved: P2P 31000 -> 31555")]


@pytest.mark.parametrize("written_for, answered, ok", [
    ("v3.41.1", "v3.41.1", True), ("latest", "v3.41.1", True), ("v3.40.0", "v3.41.1", False),
    ("v3.41.1", "v3.39.1", False),
])
def test_release_answered_against_the_release_the_auth_file_was_written_for(written_for, answered, ok):
    stack = Stack()
    stack.inspects["gluetun2"]["Config"]["Labels"] = {"acestream.gluetun.release": written_for}
    stack.probes["gluetun2"]["version"] = answered
    view = stack.view()
    found = check(view, "VPN gluetun2", "release")
    assert found["ok"] is ok
    assert failed(view) == ([] if ok else [("VPN gluetun2", "release")])
    if not ok:
        assert found["detail"] == ("Gluetun gluetun2 answers release %s, but its control-server auth file was written "
                                   "for %s: set acestream_gluetun_release to %s (or fix the image) and run site"
                                   % (answered, written_for, answered))
    # a container without the label (not deployed by the role) has no release check
    assert [c for c in sv.checks(view) if c["scope"] == "VPN gluetun1" and c["check"] == "release"] == []


def test_several_forwarded_ports_each_held_by_its_own_engine():
    stack = Stack(replicas=6, forwarded=((31000, 31001, 31002, 31003, 31004), 32000))
    view = stack.view()
    assert failed(view) == []
    found = check(view, "VPN gluetun1", "forwarded engine")
    assert found["detail"] == ("ace-gluetun1-19000 with P2P port 31000, ace-gluetun1-19001 with P2P port 31001, "
                               "ace-gluetun1-19002 with P2P port 31002 (forwarded ports 31000, 31001, 31002, 31003, "
                               "31004)")
    assert sv.status_rows(view)[1][4] == "31000,31001,31002,31003,31004"
    # 31001 is forwarded no more, 31005 is: the engine that held it is the one to re-create
    stack.probes["gluetun1"]["forwarded_ports"] = [31000, 31005, 31002]
    view = stack.view()
    assert failed(view) == [("VPN gluetun1", "forwarded engine"), ("stack", "drift")]
    assert [(a["action"], a["name"], a["reason"]) for a in view["drift"]["actions"]] == [
        ("recreate", "ace-gluetun1-19001", "forwarded port moved: P2P 31001 -> 31005")]


def test_verify_passes_where_engine_pool_converged_with_duplicate_or_reserved_forwarded_ports():
    """Where engine_pool converged a VPN that reports a port twice ({"ports": [31000, 31000]}) or a port Gluetun
    itself listens on (its api_port 8001, its health port 9999), verify passes: both take the ports from the core's
    one sanitising (each once, none Gluetun listens on), so they agree on what the VPN forwards."""
    stack = Stack(replicas=4, forwarded=((31000, 31000), (8001, 9999, 32000)))
    view = stack.view()
    assert failed(view) == [], [c for c in sv.checks(view) if not c["ok"]]
    assert view["drift"]["actions"] == [] and view["drift"]["error"] is None
    assert check(view, "VPN gluetun1", "forwarded engine")["detail"] == (
        "ace-gluetun1-19000 with P2P port 31000 (forwarded port 31000)")
    assert check(view, "VPN gluetun2", "forwarded engine")["detail"] == (
        "ace-gluetun2-19005 with P2P port 32000 (forwarded port 32000); not for an engine: 8001 (held by the Gluetun "
        "control server's api_port), 9999 (held by Gluetun's health server)")
    # Only a reserved port forwarded: no forwarded engine, and verify expects none.
    stack = Stack(replicas=4, forwarded=(31000, (9999,)))
    view = stack.view()
    assert failed(view) == [], [c for c in sv.checks(view) if not c["ok"]]
    assert not [e for e in view["engines"] if e["vpn"] == "gluetun2" and e["forwarded"]]
    assert check(view, "VPN gluetun2", "forwarded engine")["detail"] == (
        "no engine (no forwarded port an engine can take); not for an engine: 9999 (held by Gluetun's health server)")


def test_unhealthy_vpn():
    stack = Stack()
    stack.inspects["gluetun2"]["State"]["Health"]["Status"] = "unhealthy"
    stack.probes["gluetun2"] = probe("gluetun2", 32000, health="unhealthy")
    stack.probes["gluetun2"]["error"] = "VPN container 'gluetun2' is not healthy: Docker health is 'unhealthy'"
    view = stack.view()
    assert ("VPN gluetun2", "connected") in failed(view)
    assert view["drift"]["error"] == ("VPN container 'gluetun2' is not healthy - cannot start AceStream engine "
                                      "(Docker health is 'unhealthy')")
    # failover: its share goes to the healthy VPN (not enough room here: drift says so), its count is no failure.
    over = stack.view(on_unhealthy="failover")
    assert ("VPN gluetun2", "engines") not in failed(over)


def test_missing_vpn_container():
    stack = Stack()
    stack.inspects["gluetun2"] = None
    stack.probes["gluetun2"] = dict(probe("gluetun2"), reachable=False, vpn_status=None, healthy=False,
                                    connected=False, error="No Gluetun container named 'gluetun2' on the Docker host")
    view = stack.view()
    assert check(view, "VPN gluetun2", "enabled") == {"scope": "VPN gluetun2", "check": "enabled", "ok": False,
                                                      "detail": "container missing"}
    assert "joined to container:" in check(view, "engine gluetun2:19005", "host")["detail"]
    assert "(missing)" in check(view, "engine gluetun2:19005", "host")["detail"]
    assert "no container named 'gluetun2' exists" in view["drift"]["error"]


def test_forwarding_off_expects_no_forwarded_engine():
    stack = Stack(forwarded=(None, None))
    for name in NAMES:
        stack.inspects[name]["Config"]["Env"][0] = "VPN_PORT_FORWARDING=off"
    view = stack.view()
    assert failed(view) == []
    assert check(view, "VPN gluetun1", "forwarded port")["detail"] == "VPN_PORT_FORWARDING off: none expected"
    assert not [c for c in sv.checks(view) if c["check"] == "forwarded engine"]


def test_forwarding_on_but_no_port():
    stack = Stack()
    stack.probes["gluetun1"] = probe("gluetun1", None)
    view = stack.view()
    assert check(view, "VPN gluetun1", "forwarded port") == {
        "scope": "VPN gluetun1", "check": "forwarded port", "ok": False,
        "detail": "Failed to get forwarded port from Gluetun: VPN_PORT_FORWARDING=on but no port reported"}


def test_engine_api_not_answering():
    stack = Stack()
    stack.api["ace-gluetun1-19001"] = {
        "ok": False, "url": "u", "detail": "127.0.0.1:19001 did not answer get_status (Connection refused)"}
    view = stack.view()
    assert failed(view) == [("engine gluetun1:19001", "API")]


def test_engine_outside_the_plan():
    stack = Stack()
    stray = copy.deepcopy(stack.engine("gluetun1"))
    stray["Names"] = ["/ace-old-19000"]
    stray["Id"] = "cid-old"
    stray["Labels"][core.LABEL_VPN] = "old"
    stack.containers.append(stray)
    view = stack.view()
    assert ("engine old:19000", "port") in failed(view)
    assert [(a["action"], a["reason"]) for a in view["drift"]["actions"]] == [
        ("remove", "its VPN 'old' is no longer in vpn_containers")]
    assert "(not in the plan)" in "\n".join(sv.status_lines(view))


# ------------------------------------------------------------------------------------------ egress
@pytest.mark.parametrize("seen, host_ip, ok, detail", [
    ("203.0.113.1", "198.51.100.1", True, "egress 203.0.113.1 from ace-gluetun1-19000 = VPN public IP, host 198.51.100.1"),
    ("198.51.100.1", "198.51.100.1", False, "egress 198.51.100.1 is the host IP, not the VPN"),
    ("203.0.113.9", "", False, "egress 203.0.113.9 is not the VPN public IP 203.0.113.1"),
    ("", "", False, "could not fetch http://ip.test/ from ace-gluetun1-19000: exit code 7"),
])
def test_egress(seen, host_ip, ok, detail):
    stack = Stack()
    stack.egress = {"url": "http://ip.test/", "host_ip": host_ip, "vpns": {
        "gluetun1": {"engine": "ace-gluetun1-19000", "ip": seen, "error": None if seen else "exit code 7"}}}
    result = check(stack.view(), "VPN gluetun1", "egress IP")
    assert (result["ok"], result["detail"]) == (ok, detail)


# ------------------------------------------------------------------------------------------ output
def test_report_and_failure_message():
    stack = Stack()
    stack.containers.remove(stack.engine("gluetun2", 1))
    results = sv.checks(stack.view())
    lines = sv.report_lines(results)
    assert lines[-1] == "%d passed, 3 failed" % (len(results) - 3)
    assert lines[0].startswith("ok    VPN gluetun1")
    assert any(line.startswith("FAIL  stack") for line in lines)
    message = sv.failure_message(results, "node1")
    assert message.startswith("3 check(s) failed on node1: VPN gluetun2 | engines | 1 engine(s), plan 2; ")
    assert "3 engine(s) in pool ace, replicas 4" in message
    assert sv.failure_message([r for r in results if r["ok"]], "node1") is None
    assert sv.report_lines([]) == ["0 passed, 0 failed"]


def test_status_table():
    lines = sv.status_lines(Stack().view())
    assert lines[0] == ("Stack ace on node1: VPN_MODE=redundant, GLUETUN_API_PORT=8001, PORT_RANGE_HOST=19000-19009, "
                        "4/4 engines")
    header = lines[1].split()
    assert header[:3] == ["VPN", "HEALTH", "VPN"] and "P2P" in header and "API" in header
    assert lines[2].split() == ["gluetun1", "healthy", "running", "203.0.113.1", "31000", "gluetun1:19000", "running",
                                "31000", "ok"]
    assert lines[3].split() == ["gluetun1:19001", "running", "ok"]
    assert lines[-1] == "drift: none"
    assert all(line == line.rstrip() for line in lines)


def test_status_table_without_engines_and_with_a_missing_vpn():
    stack = Stack()
    stack.containers = [c for c in stack.containers if c["Labels"][core.LABEL_VPN] != "gluetun2"]
    stack.inspects["gluetun2"] = None
    stack.probes["gluetun2"] = dict(probe("gluetun2"), reachable=False, vpn_status=None, public_ip=None,
                                    forwarded_port=None, forwarded_ports=[])
    lines = sv.status_lines(stack.view())
    row = next(line for line in lines if line.startswith("gluetun2"))
    assert row.split() == ["gluetun2", "missing", "-", "-", "-", "(no", "engines)"]
    assert lines[-1].startswith("drift: engine_pool would refuse: VPN container 'gluetun2' is not healthy")


def test_json_document():
    stack = Stack()
    view = stack.view()
    document = sv.status_document(view, sv.checks(view))
    assert json.loads(sv.to_json(view, sv.checks(view))) == document
    assert document["engines_total"] == 4 and document["checks"]["failed"] == 0
    assert document["observed_at"] == 1767225600.0
    assert [v["forwarded_ports"] for v in document["vpns"]] == [[31000], [32000]]
    assert document["drift"] == {"actions": [], "error": None}
    assert set(document["engines"][0]) == {"name", "vpn", "host", "port", "https_port", "state", "forwarded",
                                           "p2p_port", "api_ok", "in_plan"}


def metrics_of(text):
    """name -> [(labels, value)], through prometheus_client's own parser (strict about the format)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_prometheus_metrics_parse_and_say_what_the_view_says():
    stack = Stack()
    stack.containers.remove(stack.engine("gluetun2", 1))
    stack.engine("gluetun1")["State"] = "exited"
    view = stack.view()
    text = sv.prometheus_text(view, sv.checks(view))
    metrics = metrics_of(text)
    for name, kind, _help in sv.METRICS:
        assert "# TYPE %s %s" % (name, kind) in text
    assert (dict(pool="ace", vpn="gluetun1", version="v3.41.1", public_ip="203.0.113.1", country="Netherlands"),
            1.0) in metrics["acestream_vpn_info"]
    assert ({"pool": "ace", "vpn": "gluetun2", "index": "0"}, 32000.0) in metrics["acestream_vpn_forwarded_port"]
    assert ({"pool": "ace", "vpn": "gluetun1", "status": "running"}, 1.0) in metrics["acestream_vpn_status"]
    assert ({"pool": "ace", "vpn": "gluetun1", "state": "exited"}, 1.0) in metrics["acestream_engines"]
    assert ({"pool": "ace", "vpn": "gluetun1", "state": "running"}, 1.0) in metrics["acestream_engines"]
    assert ({"pool": "ace", "vpn": "gluetun2", "state": "running"}, 1.0) in metrics["acestream_engines"]
    assert ({"pool": "ace", "vpn": "gluetun2"}, 1.0) in metrics["acestream_vpn_engines"]
    assert ({"pool": "ace", "vpn": "gluetun2"}, 2.0) in metrics["acestream_vpn_engines_planned"]
    assert metrics["acestream_stack_drift_changes"] == [({"pool": "ace"}, 2.0)]
    assert metrics["acestream_stack_observed_timestamp_seconds"] == [({"pool": "ace"}, 1767225600.0)]
    assert metrics["acestream_stack_replicas"] == [({"pool": "ace"}, 4.0)]
    assert len(metrics["acestream_engine_api_up"]) == 3
    # Prometheus naming: snake case, the collection's prefix, base units in the name.
    for name in metrics:
        assert name.startswith("acestream_") and name == name.lower()


def test_prometheus_escapes_label_values_and_marks_a_refusal():
    stack = Stack()
    stack.probes["gluetun1"]["country"] = 'Quote " and \\ and\nnewline'
    stack.inspects["gluetun2"]["State"]["Health"]["Status"] = "starting"
    view = stack.view()
    metrics = metrics_of(sv.prometheus_text(view, sv.checks(view)))
    info = next(labels for labels, _v in metrics["acestream_vpn_info"] if labels["vpn"] == "gluetun1")
    assert info["country"] == 'Quote " and \\ and\nnewline'
    assert metrics["acestream_stack_drift_changes"] == [({"pool": "ace"}, -1.0)]


# ------------------------------------------------------------------------------------ the orchestrator app
def app_listed(name, vpn, port, forwarded_port=None, network=None, created=1767225700, pool=POOL):
    """An engine of the orchestrator app as Docker lists it (its labels, its command line)."""
    return {"Id": "cid-" + name, "Names": ["/" + name], "State": "running", "Status": "Up",
            "Created": created, "HostConfig": {"NetworkMode": network or "container:" + ("id" + vpn) * 6},
            "Labels": {"acestream.app-pool": pool, "acestream.vpn_container": vpn, "host.http_port": str(port),
                       "acestream.forwarded": "true" if forwarded_port else "false"},
            "Command": "python main.py --http-port %d --https-port 45000 --api-port %d%s" % (
                port, port + 1, " --port %d" % forwarded_port if forwarded_port else "")}


class AppStack(Stack):
    """The redundant stack with the app's engines (2 + 1) in place of the pool's, and its /vpn/status."""

    def __init__(self):
        super().__init__(replicas=3, forwarded=(31000, 32000))
        self.containers = []  # the collection's own engines: none
        self.app_containers = [app_listed("acestream-1", "gluetun1", 19000, 31000), app_listed("acestream-2", "gluetun1", 19002),
                               app_listed("acestream-3", "gluetun2", 19005, 32000)]
        self.api = dict(("acestream-%d" % i, {"ok": True, "url": "u", "detail": "answers get_status"}) for i in (1, 2, 3))
        self.app = {"name": "app", "state": "running", "url": "http://127.0.0.1:8000",
                    "vpn_status": {"enabled": True, "connected": True, "forwarded_port": 31000}, "error": None}

    def view(self, **extra):
        states = dict((n, core.vpn_state(n, self.inspects[n], self.control(n))) for n in NAMES)
        app = dict(self.app, engines=app_core.app_engines(self.app_containers, POOL))
        pool = [core.observed_engine(c) for c in self.containers]
        return sv.observe(self.plan, params(**extra), states, pool, self.probes, "sha256:img", self.api, None,
                          1767225600.0, [], app)


def test_app_stack_passes_every_check():
    view = AppStack().view()
    assert failed(view) == []
    assert check(view, "app app", "/vpn/status")["detail"] == "enabled, connected true, forwarded port 31000"
    assert check(view, "stack", "drift")["detail"] == "none: the orchestrator_app role would change nothing"
    assert check(view, "VPN gluetun1", "forwarded engine")["detail"] == (
        "acestream-1 with P2P port 31000 (forwarded port 31000)")
    assert [e["name"] for e in view["engines"]] == ["acestream-1", "acestream-2", "acestream-3"]
    lines = sv.status_lines(view)
    assert lines[-2] == ("engines provisioned by the orchestrator app app (running): /vpn/status connected true, "
                         "forwarded port 31000")
    document = sv.status_document(view, sv.checks(view))
    assert document["engines_total"] == 3 and document["app"]["engines"] == 3


def test_app_runs_one_forwarded_engine_per_vpn_with_the_first_port():
    stack = AppStack()
    stack.probes["gluetun1"].update(forwarded_ports=[31000, 31001])
    assert failed(stack.view()) == []  # the app uses the first port: one forwarded engine is right
    stack.app_containers[1] = app_listed("acestream-2", "gluetun1", 19002, 31001)
    assert ("VPN gluetun1", "forwarded engine") in failed(stack.view())


def test_app_engines_left_behind_by_a_restarted_gluetun():
    stack = AppStack()
    stack.inspects["gluetun1"]["State"]["StartedAt"] = "2026-01-01T00:10:00Z"  # after the engines were created
    view = stack.view()
    assert ("engine gluetun1:19000", "namespace") in failed(view) and ("stack", "drift") in failed(view)
    assert [a["action"] for a in view["drift"]["actions"]] == ["restart"]
    assert "acestream-1 started before gluetun1 last started" in view["drift"]["actions"][0]["reason"]
    assert check(view, "stack", "drift")["detail"].startswith("the site playbook would make 1 change(s): restart app")


def test_app_not_answering_or_wrong():
    stack = AppStack()
    stack.app.update(vpn_status=None, error="connection refused")
    assert check(stack.view(), "app app", "/vpn/status")["detail"] == (
        "http://127.0.0.1:8000/vpn/status did not answer: connection refused")
    stack.app.update(vpn_status={"enabled": True, "connected": True, "forwarded_port": None}, error=None)
    assert "reports forwarded port null, gluetun1 forwards 31000" in check(stack.view(), "app app", "/vpn/status")["detail"]
    stack.app.update(state="exited")
    view = stack.view()
    assert not check(view, "app app", "running")["ok"]
    assert [a["action"] for a in view["drift"]["actions"]] == ["start"]


def app_repairs(view):
    """The failed checks, the drift's actions, and whether the two agree (drift named exactly when verify fails)."""
    bad = [c for c in failed(view) if c != ("stack", "drift")]
    return bad, [a["action"] for a in view["drift"]["actions"]], (bool(bad) == bool(view["drift"]["actions"]))


def test_app_faults_are_drift_exactly_when_verify_fails():
    # engines beyond the replicas (the health manager's replacements piling up)
    stack = AppStack()
    stack.app_containers.append(app_listed("acestream-4", "gluetun2", 19007))
    bad, actions, agree = app_repairs(stack.view())
    assert ("stack", "engines") in bad and ("VPN gluetun2", "engines") in bad and actions == ["restart"] and agree
    # two engines on one port: a replacement took another engine's API port, and crash-loops
    stack = AppStack()
    crashing = app_listed("acestream-4", "gluetun1", 19001)
    crashing.update(State="restarting", Status="Restarting (3) 2 seconds ago")
    stack.app_containers[1] = crashing
    view = stack.view()
    bad, actions, agree = app_repairs(view)
    assert ("engine gluetun1:19001", "own ports") in bad and ("engine gluetun1:19001", "running") in bad
    assert ("engine gluetun1:19000", "own ports") in bad and actions == ["restart"] and agree
    assert "its HTTP port 19001 is the API port of acestream-1" in check(view, "engine gluetun1:19001", "own ports")["detail"]
    assert "engine gluetun1:19001 running: acestream-4 restarting" in view["drift"]["actions"][0]["reason"]
    # a settings file changed behind the role's back
    stack = AppStack()
    stack.app["settings_changed"] = ["/srv/stack/orchestrator/engine_settings.json"]
    view = stack.view()
    bad, actions, agree = app_repairs(view)
    assert bad == [("app app", "settings files")] and actions == ["restart"] and agree
    assert "engine_settings.json" in view["drift"]["actions"][0]["reason"]
    # the app not running: started, not restarted
    stack = AppStack()
    stack.app.update(state="exited")
    assert app_repairs(stack.view())[1:] == (["start"], True)


def test_app_without_a_forwarded_port_from_an_old_gluetun_is_no_drift():
    # Gluetun v3.40 (acestream_orchestrator_old_gluetun: warn): the app reads no forwarded port, runs no forwarded
    # engine and reports forwarded_port null; that is what it does, not something a run of site would change.
    stack = AppStack()
    for name in NAMES:
        stack.probes[name]["version"] = "v3.40.0"
    stack.app_containers = [app_listed("acestream-1", "gluetun1", 19000), app_listed("acestream-2", "gluetun1", 19002),
                            app_listed("acestream-3", "gluetun2", 19005)]
    stack.app["vpn_status"] = {"enabled": True, "connected": True, "forwarded_port": None}
    view = stack.view()
    assert failed(view) == [] and view["drift"]["actions"] == []
    assert "has no /v1/portforward" in check(view, "VPN gluetun1", "forwarded engine")["detail"]


def test_app_crash_looping_or_paused_is_restarted_not_started():
    # Starting a container that is restarting (its restart policy) or paused leaves it so: the role restarts it.
    for state in ("restarting", "paused"):
        stack = AppStack()
        stack.app.update(state=state)
        view = stack.view()
        assert not check(view, "app app", "running")["ok"]
        assert [a["action"] for a in view["drift"]["actions"]] == ["restart"], state
        assert view["drift"]["actions"][0]["reason"] == "the orchestrator app is %s (a start leaves it so)" % state


def test_an_unhealthy_gluetun_is_not_the_apps_drift():
    # gluetun2 unhealthy (its tunnel down): its engine answers nothing and the app places none there; a restart of the
    # app repairs none of it. verify fails on the VPN; the drift does not restart the app for it.
    stack = AppStack()
    stack.probes["gluetun2"] = probe("gluetun2", 32000, health="unhealthy")
    stack.api["acestream-3"] = {"ok": False, "url": "u", "detail": "no answer"}
    view = stack.view()
    bad = failed(view)
    assert ("VPN gluetun2", "connected") in bad and ("engine gluetun2:19005", "API") in bad
    assert view["drift"]["actions"] == []
    # the same engine failing behind a healthy Gluetun is the app's drift
    stack.probes["gluetun2"] = probe("gluetun2", 32000)
    assert [a["action"] for a in stack.view()["drift"]["actions"]] == ["restart"]
