# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine_pool module against an in-memory Docker: calls made, check mode, failures, concurrency."""

from __future__ import annotations

import json
import re
import threading

import pytest
from module_runner import run_module_main
from secret_check import HOSTILE, assert_no_secret, hostile_args
from docker.errors import APIError, NotFound

from ansible_collections.acestream.orchestrator.plugins.module_utils import _engine_docker
from ansible_collections.acestream.orchestrator.plugins.modules import engine_pool

IMAGE = "engine:sim"
STARTED = "2026-01-01T00:00:00Z"


class FakeDocker:
    """The part of docker.APIClient that engine_pool uses, in memory, counting calls."""

    base_url = "http+docker://localhost"
    api_version = "1.41"
    timeout = 60

    def __init__(self):
        self.containers_by_id = {}
        self.images = {IMAGE: "sha256:img"}
        self.calls = []
        self.lock = threading.Lock()
        self.fail_start = set()
        self.race_names = set()
        # name -> how many inspects answer 404 while another run's create of that name is still running
        self.reserved_names = {}
        self.reserved_done = set()
        # names another, unrelated container takes between the run's name check and its create
        self.foreign_race = set()
        # names of engines that exit at once with code 3 whenever started, Docker restarting them
        self.crash = set()
        self.seq = 0

    def _log(self, *call):
        with self.lock:
            self.calls.append(call)

    def count(self, kind):
        return sum(1 for call in self.calls if call[0] == kind)

    def add_vpn(self, name, ports, health="healthy", started=STARTED, status="running"):
        bindings = dict(("%d/tcp" % p, [{"HostIp": "127.0.0.1", "HostPort": str(p)}]) for p in ports)
        cid = ("%s-id" % name).ljust(64, "0")
        self.containers_by_id[cid] = {
            "Id": cid, "Name": "/" + name, "Image": "gluetun", "ImageID": "sha256:g",
            "State": {"Status": status, "StartedAt": started, "Health": {"Status": health}},
            "Config": {"Env": [], "Labels": {}}, "HostConfig": {"PortBindings": bindings, "NetworkMode": "default"},
            "NetworkSettings": {"Ports": bindings},
        }
        return cid

    def _find(self, ref):
        for cid, c in self.containers_by_id.items():
            if cid == ref or c["Name"] == "/" + ref or cid.startswith(ref):
                return c
        raise NotFound("No such container: %s" % ref)

    # --- API -----------------------------------------------------------------------------------
    def containers(self, all=False, filters=None):  # noqa: A002 - the SDK's name
        self._log("list", json.dumps(filters, sort_keys=True))
        result = []
        for c in list(self.containers_by_id.values()):
            labels = c["Config"]["Labels"]
            ok = True
            for item in (filters or {}).get("label", []):
                key, _sep, value = item.partition("=")
                ok = ok and labels.get(key) == value
            names = (filters or {}).get("name")
            if names:
                ok = ok and any(re.search(n, c["Name"]) for n in names)
            if ok:
                result.append({"Id": c["Id"], "Names": [c["Name"]], "Image": c["Image"], "ImageID": c["ImageID"],
                               "Labels": dict(labels), "State": c["State"]["Status"],
                               "Status": {"running": "Up 1 second", "created": "Created",
                                          "restarting": "Restarting (3) 1 second ago"}.get(
                                   c["State"]["Status"], "Exited (0) 1 second ago"),
                               "HostConfig": {"NetworkMode": c["HostConfig"]["NetworkMode"]}})
        return result

    def inspect_container(self, ref):
        self._log("inspect", ref)
        with self.lock:
            if self.reserved_names.get(ref):
                self.reserved_names[ref] -= 1
                raise NotFound("No such container: %s" % ref)
        return json.loads(json.dumps(self._find(ref)))

    def inspect_image(self, image):
        self._log("inspect_image", image)
        if image not in self.images:
            raise NotFound("No such image: %s" % image)
        return {"Id": self.images[image]}

    def pull(self, repository, tag=None):
        self._log("pull", repository, tag)
        self.images["%s:%s" % (repository, tag)] = "sha256:pulled"

    def create_host_config(self, network_mode=None, restart_policy=None):
        return {"NetworkMode": network_mode, "RestartPolicy": restart_policy}

    def create_container(self, image, name=None, environment=None, command=None, labels=None, host_config=None,
                         detach=True):
        self._log("create", name)
        with self.lock:
            if name in self.reserved_names and name not in self.reserved_done:
                # Another run's create of this name is under way: the name is taken, the container not visible yet.
                self.reserved_done.add(name)
                self._insert(image, name, environment, command, labels, host_config)
                raise APIError("Conflict", response=type("R", (), {"status_code": 409, "reason": "Conflict"})(),
                               explanation="Conflict. The container name \"/%s\" is already in use" % name)
            if name in self.foreign_race:
                self.foreign_race.discard(name)
                self._insert("nginx", name, {}, None, {}, host_config)
            if name in self.race_names:
                # Another run created the very same engine a moment ago.
                self.race_names.discard(name)
                self._insert(image, name, environment, command, labels, host_config)
            if any(c["Name"] == "/" + name for c in self.containers_by_id.values()):
                raise APIError("Conflict", response=type("R", (), {"status_code": 409, "reason": "Conflict"})(),
                               explanation="Conflict. The container name \"/%s\" is already in use" % name)
            cid = self._insert(image, name, environment, command, labels, host_config)
        return {"Id": cid}

    def _insert(self, image, name, environment, command, labels, host_config):
        self.seq += 1
        cid = ("c%04d" % self.seq).ljust(64, "0")
        self.containers_by_id[cid] = {
            "Id": cid, "Name": "/" + name, "Image": image, "ImageID": self.images.get(image, "sha256:?"),
            "State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z"},
            "Config": {"Env": ["%s=%s" % kv for kv in (environment or {}).items()], "Labels": dict(labels or {}),
                       "Cmd": command},
            "HostConfig": {"NetworkMode": host_config["NetworkMode"], "PortBindings": {}},
            "NetworkSettings": {"Ports": {}},
        }
        return cid

    def start(self, cid):
        self._log("start", cid)
        container = self._find(cid)
        if container["Name"].lstrip("/") in self.fail_start:
            raise APIError("boom", explanation="simulated start failure")
        if container["Name"].lstrip("/") in self.crash:
            container["State"].update(Status="restarting", Restarting=True, ExitCode=3)
            container["RestartCount"] = 2
            return
        container["State"].update(Status="running", Restarting=False)
        container["RestartCount"] = 0

    def unpause(self, cid):
        self._log("unpause", cid)
        self._find(cid)["State"]["Status"] = "running"

    def remove_container(self, cid, force=False, v=False):
        self._log("remove", cid)
        with self.lock:
            self.containers_by_id.pop(self._find(cid)["Id"])

    def logs(self, cid, tail=5):
        return b"cannot listen on TCP port 19000\n"


@pytest.fixture
def fake(monkeypatch):
    docker = FakeDocker()
    monkeypatch.setattr(engine_pool, "docker_client", lambda host, timeout: docker)
    monkeypatch.setattr(_engine_docker.DockerEngines, "_api", lambda self: self.client)
    # The control servers: each running VPN's answers the VPN running and no forwarded port, unless a test sets
    # docker.control[name] (what read_control returns).
    docker.control = {}

    def read_control(inspect, name, api_port, credentials, timeout, need_ports, port_wait=0.0, docker_host=None):
        if inspect is None or inspect["State"]["Status"] != "running":
            return {"vpn_status": None, "forwarded_port": None, "forwarded_ports": [], "error": None}
        return docker.control.get(name, {"vpn_status": "running", "forwarded_port": None, "forwarded_ports": [],
                                         "error": None})

    monkeypatch.setattr(_engine_docker, "read_control", read_control)
    return docker


def run_module(args, check=False, diff=False, capsys=None):
    return run_module_main(engine_pool.main, capsys, args, check_mode=check, diff=diff)[1]


def base_args(**extra):
    args = {"name": "ace", "vpn_containers": ["g1", "g2"], "vpn_port_ranges": {"g1": "100-103", "g2": "200-203"},
            "replicas": 4, "image": IMAGE, "forwarded_port": "off"}
    args.update(extra)
    return args


@pytest.fixture
def two(fake):
    fake.add_vpn("g1", range(100, 104))
    fake.add_vpn("g2", range(200, 204))
    return fake


def test_create_then_noop_from_one_list_call(two, capsys):
    first = run_module(base_args(), capsys=capsys)
    assert first["changed"] and [a["action"] for a in first["actions"]] == ["create"] * 4
    assert [e["name"] for e in first["engines"]] == ["ace-g1-100", "ace-g1-101", "ace-g2-200", "ace-g2-201"]
    assert all(e["id"] for e in first["engines"])
    assert two.count("create") == 4 and two.count("start") == 4
    two.calls.clear()
    second = run_module(base_args(), capsys=capsys)
    assert second["changed"] is False and second["actions"] == []
    # The no-op path: ONE container list call, one inspect per VPN, one image inspect, nothing else.
    assert two.calls[0] == ("list", '{"label": ["acestream.managed-by=acestream.orchestrator.engine_pool"]}')
    assert two.count("list") == 1
    assert sorted(c[1] for c in two.calls if c[0] == "inspect") == ["g1", "g2"]
    assert two.count("inspect_image") == 1
    assert len(two.calls) == 4


def test_check_mode_mutates_nothing_and_matches_the_run(two, capsys):
    checked = run_module(base_args(), check=True, diff=True, capsys=capsys)
    assert two.count("create") == 0 and two.count("start") == 0 and two.count("remove") == 0
    assert all(e["id"] is None for e in checked["engines"])
    applied = run_module(base_args(), diff=True, capsys=capsys)
    assert checked["actions"] == applied["actions"] and checked["changed"] == applied["changed"]
    assert checked["diff"] == applied["diff"]
    assert sorted(applied["diff"]["after"]["engines"]) == ["ace-g1-100", "ace-g1-101", "ace-g2-200", "ace-g2-201"]


def test_missing_image_is_pulled_and_never_fails(two, capsys):
    args = base_args(image="registry.example/engine:2")
    checked = run_module(args, check=True, capsys=capsys)
    assert checked["actions"][0] == {"action": "pull", "name": "registry.example/engine:2", "vpn": None, "port": None,
                                     "reason": "image not on the Docker host", "id": None}
    assert two.count("pull") == 0
    applied = run_module(args, capsys=capsys)
    assert [c for c in two.calls if c[0] == "pull"] == [("pull", "registry.example/engine", "2")]
    assert applied["actions"] == checked["actions"]
    failed = run_module(base_args(image="other:1", pull="never"), capsys=capsys)
    assert failed["failed"] and failed["msg"] == ("image other:1 is not on the Docker host and pull is never: load or "
                                                  "pull it first")


def test_failure_midway_then_converges(two, capsys):
    two.fail_start.add("ace-g2-200")
    failed = run_module(base_args(), capsys=capsys)
    assert failed["failed"] and failed["changed"] is True
    assert failed["msg"] == ("Converging engine pool 'ace' failed midway (the next run converges the rest): create "
                             "ace-g2-200: simulated start failure")
    assert sorted(a["name"] for a in failed["actions"]) == ["ace-g1-100", "ace-g1-101", "ace-g2-201"]
    two.fail_start.clear()
    again = run_module(base_args(), capsys=capsys)
    assert [(a["action"], a["name"], a["reason"]) for a in again["actions"]] == [
        ("start", "ace-g2-200", "engine is created")]
    assert run_module(base_args(), capsys=capsys)["changed"] is False


def test_concurrent_run_created_the_same_engine(two, capsys):
    two.race_names.add("ace-g1-101")
    result = run_module(base_args(), capsys=capsys)
    assert result["changed"] and not result.get("failed")
    assert len([c for c in two.containers_by_id.values() if c["Name"] == "/ace-g1-101"]) == 1
    assert run_module(base_args(), capsys=capsys)["changed"] is False


def test_container_of_someone_else_taking_the_name_meanwhile_is_a_clash(two, capsys):
    """Not the pool's engine (no labels), taking a slot's name after the run's check: the create fails for that
    slot with a message naming the container, the others are made, nothing of the other container is touched."""
    two.foreign_race.add("ace-g1-101")
    result = run_module(base_args(), capsys=capsys)
    assert result["failed"] and result["changed"] is True
    assert ("create ace-g1-101: container 'ace-g1-101' already exists and is not this pool's engine for that slot "
            "(labels {}); remove or rename it, or choose another pool name") in result["msg"], result["msg"]
    foreign = [c for c in two.containers_by_id.values() if c["Name"] == "/ace-g1-101"]
    assert len(foreign) == 1 and foreign[0]["Image"] == "nginx" and foreign[0]["Config"]["Labels"] == {}


def test_concurrent_run_still_creating_the_same_engine(two, capsys):
    """The name is taken but the other run's container cannot be inspected yet (Docker reserves the name first):
    look again until it shows, then adopt it; no clash, no second container."""
    two.reserved_names["ace-g1-101"] = 3
    result = run_module(base_args(), capsys=capsys)
    assert result["changed"] and not result.get("failed"), result.get("msg")
    assert two.reserved_names["ace-g1-101"] == 0, "it did not look again"
    assert len([c for c in two.containers_by_id.values() if c["Name"] == "/ace-g1-101"]) == 1
    assert run_module(base_args(), capsys=capsys)["changed"] is False


def test_name_clash_fails_before_any_change(two, capsys):
    cid = two._insert("nginx", "ace-g2-201", {}, None, {}, {"NetworkMode": "default"})
    result = run_module(base_args(), capsys=capsys)
    assert result["failed"] and result["changed"] is False
    assert result["msg"].startswith("Name clash: container 'ace-g2-201' (%s, image nginx) already exists and is not "
                                    "managed by acestream.orchestrator" % cid[:12])
    assert two.count("create") == 0
    assert two.containers_by_id[cid]["Image"] == "nginx"


def test_unhealthy_and_mismatch_messages(fake, capsys):
    fake.add_vpn("g1", range(100, 104))
    fake.add_vpn("g2", range(200, 202), health="starting")
    result = run_module(base_args(), capsys=capsys)
    assert result["failed"] and result["msg"].startswith(
        "Port Range Mismatch: VPN container 'g2' must publish its engine range 200-203 (from vpn_port_ranges.g2) on the "
        "same host ports, but it publishes 200-201 (missing: 202-203)")
    fake.containers_by_id.pop([c for c in fake.containers_by_id if c.startswith("g2")][0])
    fake.add_vpn("g2", range(200, 204), health="starting")
    result = run_module(base_args(), capsys=capsys)
    assert result["msg"] == ("VPN container 'g2' is not healthy - cannot start AceStream engine (Docker health is "
                             "'starting')")
    assert fake.count("create") == 0


def test_absent_removes_only_the_pool(two, capsys):
    run_module(base_args(), capsys=capsys)
    two.add_vpn("g3", range(300, 304))
    other = run_module(base_args(name="other", vpn_containers=["g3"], vpn_port_ranges={"g3": "300-303"}, replicas=2),
                       capsys=capsys)
    assert other["changed"]
    checked = run_module({"name": "ace", "state": "absent"}, check=True, diff=True, capsys=capsys)
    assert [a["action"] for a in checked["actions"]] == ["remove"] * 4
    assert checked["diff"]["after"] == {"engines": {}} and len(checked["diff"]["before"]["engines"]) == 4
    removed = run_module({"name": "ace", "state": "absent"}, capsys=capsys)
    assert removed["actions"] == checked["actions"]
    left = sorted(c["Name"] for c in two.containers_by_id.values() if c["Config"]["Labels"].get("acestream.pool"))
    assert left == ["/other-g3-300", "/other-g3-301"]
    assert run_module({"name": "ace", "state": "absent"}, capsys=capsys)["changed"] is False


def test_forwarded_port_auto(two, capsys, monkeypatch):
    answers = {"g1": {"vpn_status": "running", "forwarded_port": 51000, "error": None},
               "g2": {"vpn_status": "running", "forwarded_port": None, "error": None}}
    seen = []

    def read_control(inspect, name, api_port, credentials, timeout, need_ports, port_wait=0.0, docker_host=None):
        seen.append((name, api_port, credentials, need_ports))
        return answers[name]

    monkeypatch.setattr(_engine_docker, "read_control", read_control)
    args = base_args(forwarded_port="auto", api_port=8001, api_key="s3cret-key")
    result = run_module(args, capsys=capsys)
    assert [(e["name"], e["p2p_port"]) for e in result["engines"] if e["forwarded"]] == [("ace-g1-100", 51000)]
    assert seen[0] == ("g1", 8001, {"api_key": "s3cret-key", "username": None, "password": None}, True)
    assert "s3cret-key" not in json.dumps(result)
    for container in two.containers_by_id.values():
        assert "s3cret-key" not in json.dumps(container)
    answers["g1"] = {"vpn_status": "running", "forwarded_port": None, "error": "answered 401 Unauthorized"}
    failed = run_module(args, capsys=capsys)
    assert failed["msg"] == "Failed to get forwarded port from Gluetun 'g1': answered 401 Unauthorized"


def test_wait_ready_failure_explains(two, capsys):
    result = run_module(base_args(replicas=1, vpn_containers=["g1"], vpn_port_ranges={"g1": "100-103"}, wait_ready=1),
                        capsys=capsys)
    assert result["failed"] and result["changed"] is True
    assert result["msg"].startswith("1 engine(s) did not come up (wait_ready 1s): ace-g1-100 "
                                    "(http://127.0.0.1:100/server/api?api_version=3&method=get_status: ")
    assert "last log lines: cannot listen on TCP port 19000" in result["msg"]


def test_second_pool_on_a_vpn_is_refused_and_nothing_touched(two, capsys):
    """Pool 'other' on g2 with a range that does not overlap ours: refused before any change (check mode alike),
    naming the VPN, the pool there, its engines and the fix; the run that found it made only its list call, VPN
    inspects and image inspect. The other pool keeps converging on its own."""
    two.add_vpn("g3", range(300, 304))
    run_module(base_args(name="other", vpn_containers=["g2", "g3"], vpn_port_ranges={"g2": "202-203", "g3": "300-303"},
                         replicas=2), capsys=capsys)
    before = json.dumps(two.containers_by_id, sort_keys=True)
    two.calls.clear()
    for check in (True, False):
        refused = run_module(base_args(), check=check, capsys=capsys)
        assert refused["failed"] and refused["changed"] is False and refused["actions"] == []
        assert refused["msg"].startswith(
            "One engine pool per VPN: VPN container 'g2' already runs engine pool 'other' (other-g2-202). Engine pool "
            "'ace' cannot share a VPN with another pool: ")
        assert refused["msg"].endswith("or remove pool 'other' with state=absent")
    assert sorted(set(c[0] for c in two.calls)) == ["inspect", "inspect_image", "list"]
    assert json.dumps(two.containers_by_id, sort_keys=True) == before
    assert run_module(base_args(name="other", vpn_containers=["g2", "g3"],
                                vpn_port_ranges={"g2": "202-203", "g3": "300-303"}, replicas=2),
                      capsys=capsys)["changed"] is False


def test_crash_looping_engine_fails_wait_ready_at_once_and_on_every_rerun(two, capsys, monkeypatch):
    """An engine that exits as soon as it starts (Docker restarting it) fails wait_ready as soon as an inspect sees
    it, not at the end of the wait (the detail is what the inspect saw, not the last status request's error),
    with its state, exit code and last log lines; the rerun re-creates it (no success with a warning) and fails
    the same way while it keeps crashing; fixed, it converges."""
    monkeypatch.setattr(_engine_docker, "CRASH_CHECK_INTERVAL", 0)
    args = base_args(replicas=1, vpn_containers=["g1"], vpn_port_ranges={"g1": "100-103"}, wait_ready=30)
    two.crash.add("ace-g1-100")
    for attempt in ("first", "rerun"):
        result = run_module(args, capsys=capsys)
        assert result["failed"] and result["changed"] is True
        assert result["msg"].startswith(
            "1 engine(s) did not come up (wait_ready 30s): ace-g1-100 (http://127.0.0.1:100/server/api?api_version=3"
            "&method=get_status: crash-looping: it exited (exit code 3) and Docker keeps restarting it (2 restart(s))) "
            "- state restarting, exit code 3, last log lines: cannot listen on TCP port 19000"), (attempt, result["msg"])
        expected = ("create", "missing") if attempt == "first" else (
            "recreate", "engine is crash-looping: Docker keeps restarting it (exit code 3)")
        assert [(a["action"], a["reason"]) for a in result["actions"]] == [expected]
        assert not result.get("warnings")
    checked = run_module(dict(args, wait_ready=0), check=True, capsys=capsys)
    assert [a["action"] for a in checked["actions"]] == ["recreate"]
    two.crash.clear()
    assert run_module(dict(args, wait_ready=0), capsys=capsys)["changed"] is True
    assert run_module(args, capsys=capsys)["changed"] is False


def test_docker_errors_and_failed_removals_are_reported(two, capsys, monkeypatch):
    run_module(base_args(), capsys=capsys)

    def refuse(cid, force=False, v=False):
        raise APIError("boom", explanation="simulated remove failure")

    monkeypatch.setattr(two, "remove_container", refuse)
    failed = run_module({"name": "ace", "state": "absent"}, capsys=capsys)
    assert failed["failed"] and failed["changed"] is False and failed["actions"] == []
    assert failed["msg"].startswith("Removing the pool's engines failed: remove ace-g1-100: simulated remove failure")

    def down(all=False, filters=None):  # noqa: A002 - the SDK's name
        raise APIError("boom", explanation="daemon is shutting down")

    monkeypatch.setattr(two, "containers", down)
    for args in (base_args(), {"name": "ace", "state": "absent"}):
        failed = run_module(args, capsys=capsys)
        assert failed["failed"] and failed["msg"] == 'Docker error: boom ("daemon is shutting down")'


def test_wait_ready_returns_name_and_detail_pairs():
    """wait_ready hands back (name, detail) for each engine that did not answer, in input order; the module builds
    its message from the pairs (nothing parsed back out of text)."""
    import http.server
    import socket
    import threading

    bodies = {"json": b'{"result": {"status": "idle"}}', "html": b"<html>"}

    class Handler(http.server.BaseHTTPRequestHandler):
        body = bodies["json"]

        def do_GET(self):  # noqa: N802 - http.server's API
            self.send_response(200)
            self.end_headers()
            self.wfile.write(type(self).body)

        def log_message(self, *args):
            pass

    servers = {}
    for kind in bodies:
        handler = type("Handler", (Handler,), {"body": bodies[kind]})
        servers[kind] = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=servers[kind].serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = closed.getsockname()[1]
    closed.close()
    try:
        ports = {"refused": refused, "json": servers["json"].server_address[1], "html": servers["html"].server_address[1]}
        ops = _engine_docker.DockerEngines(FakeDocker(), 1)
        engines = [{"name": "ace-g1-%s" % kind, "port": ports[kind]} for kind in ("refused", "json", "html")]
        url = "http://127.0.0.1:%d/server/api?api_version=3&method=get_status"
        failures = ops.wait_ready(engines, {"ace-g1-refused": "127.0.0.1"}, 0)
        assert [name for name, _detail in failures] == ["ace-g1-refused", "ace-g1-html"]
        assert failures[0][1].startswith(url % ports["refused"] + ": ") and "refused" in failures[0][1]
        assert failures[1][1] == url % ports["html"] + ": Expecting value: line 1 column 1 (char 0)"
        assert ops.wait_ready([engines[1]], {}, 0) == []
        assert _engine_docker.engine_status(url % ports["json"], 2) == (True, None)
        # An engine with an ID is inspected once it answers: gone is a failure, answer or not; an inspect that
        # fails otherwise tells nothing, and the answer stands.
        docker = FakeDocker()
        ops = _engine_docker.DockerEngines(docker, 1)
        gone = {"name": "ace-g1-gone", "port": ports["json"], "id": "0" * 64}
        assert ops.wait_ready([gone], {}, 5, {"ace-g1-gone": 0}) == [
            ("ace-g1-gone", url % ports["json"] + ": the container is gone")]

        def daemon_busy(ref):
            raise APIError("boom", explanation="daemon busy")

        docker.inspect_container = daemon_busy
        assert ops.wait_ready([gone], {}, 5, {"ace-g1-gone": 0}) == []
    finally:
        for server in servers.values():
            server.shutdown()


@pytest.mark.parametrize("args, field, message", [
    (dict(name="a b"), "name", "name: 'a b' is not usable as a container name prefix"),
    (dict(parallelism=0), "parallelism", "parallelism: 0 is below 1; use 1 or more"),
    (dict(wait_ready=-1), "wait_ready", "wait_ready: -1 is negative"),
    (dict(api_timeout=0), "api_timeout", "api_timeout: 0 is not above 0; use a number of seconds above 0, e.g. 5"),
    (dict(api_port=70000), "api_port", "api_port: 70000 is outside 1-65535"),
    (dict(vpn_containers=[]), "vpn_containers", "vpn_containers: at least one Gluetun container name is required"),
    (dict(username="u"), "password", "password: is required with username: username and password must be given together"),
    (dict(api_key="key-1234567", username="user", password="pass-1234567"), "api_key",
     "api_key: cannot be used together with username/password"),
    (dict(vpn_port_ranges={"g1": "7999-8001", "g2": "200-203"}), "vpn_port_ranges.g1",
     "includes port 8000, the Gluetun control server's api_port"),
    (dict(labels={"acestream.vpn": "x"}), "labels", "labels: acestream.vpn is a label the pool manages"),
    (dict(env={"CONF": "x"}), "env", "env: CONF is set by the pool"),
    (dict(replicas=9), "replicas", "replicas: 9 engines exceed the capacity"),
])
def test_bad_input_names_the_field(fake, capsys, args, field, message):
    result = run_module(base_args(**args), capsys=capsys)
    assert result["failed"] and result["field"] == field
    assert message in result["msg"]
    assert fake.calls == []


def test_docker_sdk_missing(monkeypatch, capsys):
    from ansible_collections.acestream.orchestrator.plugins.module_utils import _docker_common
    monkeypatch.setattr(_docker_common, "HAS_DOCKER", False)
    monkeypatch.setattr(_docker_common, "DOCKER_IMPORT_ERROR", "ImportError: No module named docker")
    result = run_module(base_args(), capsys=capsys)
    assert result["failed"] and "docker (Docker SDK for Python >= 5.0)" in result["msg"]


# ------------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("field, value, phrase", HOSTILE)
@pytest.mark.parametrize("state", ["present", "absent"])
def test_hostile_credentials_are_refused_by_name_before_docker(fake, capsys, field, value, phrase, state):
    code, out, raw = run_module_main(engine_pool.main, capsys,
                                     base_args(state=state, forwarded_port="auto", **hostile_args(field, value)))
    assert code == 1 and out["failed"] and out["field"] == field
    assert out["msg"].startswith("%s: %s" % (field, phrase.split(" ", 1)[1])), out["msg"]
    assert "Traceback" not in raw and "exception" not in out
    # the username is no secret to Ansible: the invocation shows it, as it shows every option without no_log
    assert_no_secret(value, out["msg"] if field == "username" else raw)
    assert fake.calls == []


@pytest.mark.parametrize("args, field, message", [
    (dict(api_timeout=float("nan")), "api_timeout", "api_timeout: nan is not a finite number; use a number of seconds "
                                                    "above 0, e.g. 5"),
    (dict(api_timeout="inf"), "api_timeout", "api_timeout: inf is not a finite number"),
    (dict(api_timeout="-inf"), "api_timeout", "api_timeout: -inf is not a finite number"),
    (dict(forwarded_port_timeout="nan"), "forwarded_port_timeout", "forwarded_port_timeout: nan is not a finite "
                                                                   "number; use 0 (do not wait) or a number of seconds"),
    (dict(forwarded_port_timeout="inf"), "forwarded_port_timeout", "forwarded_port_timeout: inf is not a finite"),
    (dict(docker_timeout=0), "docker_timeout", "docker_timeout: 0 is not above 0; use a number of seconds above 0, "
                                               "e.g. 60"),
    (dict(docker_timeout=-1, state="absent"), "docker_timeout", "docker_timeout: -1 is negative"),
    (dict(port_range="2900\u2074-29010", vpn_port_ranges={}), "port_range", "is not a port range"),
    (dict(port_range="\uff11\uff19\uff10\uff10\uff10-\uff11\uff19\uff10\uff10\uff19", vpn_port_ranges={}),
     "port_range", "is not a port range"),
    (dict(vpn_port_ranges={"g1": "100-10\u00b3", "g2": "200-203"}), "vpn_port_ranges.g1", "is not a port range"),
    (dict(vpn_containers=["g1\n", "g2"]), "vpn_containers", "'g1\\n' is not a valid Docker container name"),
    (dict(name="ace\n"), "name", "is not usable as a container name prefix"),
])
def test_timeouts_ports_and_names_of_another_kind_are_refused_by_name(fake, capsys, args, field, message):
    code, out, raw = run_module_main(engine_pool.main, capsys, base_args(**args))
    assert code == 1 and out["field"] == field and message in out["msg"], out["msg"]
    assert "Traceback" not in raw and "exception" not in out
    assert fake.calls == []


def test_vpn_wait_timeout_waits_for_a_starting_vpn_then_converges(fake, capsys, monkeypatch):
    """vpn_wait_timeout: a VPN still starting is looked at again (every VPN_WAIT_INTERVAL) until it is healthy, then the
    run decides on what it sees; without the wait, the same stack is refused."""
    fake.add_vpn("g1", range(100, 104))
    fake.add_vpn("g2", range(200, 204), health="starting")
    g2 = next(c for c in fake.containers_by_id.values() if c["Name"] == "/g2")
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        g2["State"]["Health"]["Status"] = "healthy"  # healthy by the next look

    monkeypatch.setattr(engine_pool.time, "sleep", sleep)
    refused = run_module(base_args(), capsys=capsys)
    assert refused["failed"] and "VPN container 'g2' is not healthy" in refused["msg"] and slept == []
    result = run_module(base_args(vpn_wait_timeout=30), capsys=capsys)
    assert not result.get("failed") and result["changed"] and slept == [engine_pool.VPN_WAIT_INTERVAL]
    assert fake.count("create") == 4


def test_vpn_wait_timeout_waits_in_check_mode_as_the_run_would_but_not_for_a_missing_vpn(fake, capsys, monkeypatch):
    """Check mode waits for a starting VPN as the run would (the wait is read-only), then reports the run's plan; a
    VPN that does not exist is not waited for."""
    fake.add_vpn("g1", range(100, 104), health="starting")
    fake.add_vpn("g2", range(200, 204))
    g1 = next(c for c in fake.containers_by_id.values() if c["Name"] == "/g1")
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        g1["State"]["Health"]["Status"] = "healthy"

    monkeypatch.setattr(engine_pool.time, "sleep", sleep)
    checked = run_module(base_args(vpn_wait_timeout=30), check=True, capsys=capsys)
    assert not checked.get("failed") and checked["changed"] and slept == [engine_pool.VPN_WAIT_INTERVAL]
    assert fake.count("create") == 0  # check mode: planned, not done
    del fake.containers_by_id[next(cid for cid, c in fake.containers_by_id.items() if c["Name"] == "/g2")]
    monkeypatch.setattr(engine_pool.time, "sleep", lambda seconds: pytest.fail("waited"))
    missing = run_module(base_args(vpn_wait_timeout=30), capsys=capsys)  # g2 does not exist: nothing to wait for
    assert missing["failed"] and "no container named 'g2' exists" in missing["msg"]


def test_vpn_wait_timeout_gives_up_when_the_time_is_out(fake, capsys, monkeypatch):
    fake.add_vpn("g1", range(100, 104))
    fake.add_vpn("g2", range(200, 204), health="unhealthy")
    clock = [1000.0]
    monkeypatch.setattr(engine_pool.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(engine_pool.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    result = run_module(base_args(vpn_wait_timeout=2.5), capsys=capsys)
    assert result["failed"] and "VPN container 'g2' is not healthy" in result["msg"]
    assert clock[0] == 1002.5 and fake.count("create") == 0


def test_the_api_key_is_read_from_api_key_file_when_not_given(two, capsys, monkeypatch, tmp_path):
    answers = {"g1": {"vpn_status": "running", "forwarded_port": 51000, "error": None},
               "g2": {"vpn_status": "running", "forwarded_port": None, "error": None}}
    seen = []

    def read_control(inspect, name, api_port, credentials, timeout, need_ports, port_wait=0.0, docker_host=None):
        seen.append(credentials["api_key"])
        return answers[name]

    monkeypatch.setattr(_engine_docker, "read_control", read_control)
    key_file = tmp_path / "gluetun-api-key"
    key_file.write_text("kept-k3y-0123456789\n")
    result = run_module(base_args(api_key_file=str(key_file)), capsys=capsys)
    assert set(seen) == {"kept-k3y-0123456789"} and "kept-k3y-0123456789" not in json.dumps(result)
    seen.clear()
    run_module(base_args(api_key="given-key-0123456", api_key_file=str(key_file)), capsys=capsys)
    assert set(seen) == {"given-key-0123456"}  # a key given wins
    seen.clear()
    run_module(base_args(api_key_file=str(tmp_path / "missing")), capsys=capsys)
    assert set(seen) == {None}  # no file: no key

    def refuse(*_args, **_kwargs):  # an unreadable file (root reads any mode, so the refusal is simulated)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    failed = run_module(base_args(api_key_file=str(key_file)), capsys=capsys)
    assert failed["failed"] and failed["msg"].startswith("api_key_file: %s cannot be read (Permission denied)" % key_file)
