# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_events EDA source against fakes at its two edges: a fake Docker client (list, inspect, an events
stream that can break) and the fake Gluetun control servers of tests/unit/gluetun_fake.py."""

from __future__ import annotations

import asyncio
import json
import pathlib
import runpy
import threading

import pytest

PLUGIN = pathlib.Path(__file__).resolve().parents[3] / "build" / "collections" / "ansible_collections" / "acestream" \
    / "orchestrator" / "extensions" / "eda" / "plugins" / "event_source" / "stack_events.py"
SE = runpy.run_path(str(PLUGIN))  # as ansible-rulebook loads a source
KEY = "UnitTestApiKey" + "k" * 10
POOL = "pool"
STARTED = "2026-01-01T00:00:00.000000001Z"


def gluetun_inspect(name, cid, started=STARTED, health="healthy", status="running", api_port=None):
    ports = {"8001/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(api_port)}]} if api_port else {}
    return {"Id": cid, "Name": "/" + name,
            "State": {"Status": status, "StartedAt": started, "Health": {"Status": health}},
            "Config": {"Env": ["VPN_PORT_FORWARDING=on", "WIREGUARD_PRIVATE_KEY=wg-secret"]},
            "NetworkSettings": {"Ports": ports}, "HostConfig": {"NetworkMode": "bridge"}}


def engine(name, vpn, vpn_id, port, forwarded=False, p2p=None, started=STARTED, state="running", cid=None):
    return {"Id": cid or "id-" + name, "Names": ["/" + name], "State": state, "Status": state,
            "HostConfig": {"NetworkMode": "container:" + vpn_id},
            "Labels": {"acestream.managed-by": SE["_core"].MANAGER, "acestream.pool": POOL, "acestream.vpn": vpn,
                       "acestream.http-port": str(port), "acestream.https-port": str(port + 1000),
                       "acestream.forwarded": "true" if forwarded else "false",
                       "acestream.p2p-port": str(p2p) if p2p else "", "acestream.vpn-started-at": started,
                       "acestream.spec-hash": "h", "acestream.vpn-id": vpn_id}}


def stack(**extra):
    item = {"host": "stream-a", "pool": POOL, "gluetun": ["g1", "g2"], "api_port": 8001}
    item.update(extra)
    return SE["normalize_stack"](item)


def observation(engines, vpns, control=None):
    return {"engines": [SE["_core"].observed_engine(e) for e in engines],
            "vpns": {n: SE["vpn_summary"](i) for n, i in vpns.items()}, "control": control or {}}


def base():
    vpns = {"g1": gluetun_inspect("g1", "A" * 64), "g2": gluetun_inspect("g2", "B" * 64)}
    engines = [engine("e1", "g1", "A" * 64, 19000, True, 41000), engine("e2", "g1", "A" * 64, 19001),
               engine("e3", "g2", "B" * 64, 19003, True, 42000)]
    control = {"g1": {"ports": [41000], "vpn_status": "running", "error": None},
               "g2": {"ports": [42000], "vpn_status": "running", "error": None}}
    return engines, vpns, control


def kinds(events):
    return [e["type"] for e in events]


# ------------------------------------------------------------------------------------- the decision
def test_converged_stack_gives_no_event_and_meta_hosts_is_the_host():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    control["g1"] = {"ports": [43000], "vpn_status": "running", "error": None}
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["forwarded_port_changed"]
    assert events[0]["meta"] == {"hosts": "stream-a"}
    assert (events[0]["vpn"], events[0]["old_port"], events[0]["new_port"], events[0]["engine"]) == \
        ("g1", 41000, 43000, "e1")


def test_port_change_is_sent_once_and_not_while_the_port_is_cleared():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    control["g1"] = {"ports": [], "vpn_status": "stopped", "error": None}
    assert "forwarded_port_changed" not in kinds(SE["evaluate"](stack(), observation(engines, vpns, control), memory))
    control["g1"] = {"ports": [43000], "vpn_status": "running", "error": None}
    assert "forwarded_port_changed" in kinds(SE["evaluate"](stack(), observation(engines, vpns, control), memory))
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []  # de-duplicated
    # the converge re-creates the forwarded engine with the new port: nothing more to say
    engines[0] = engine("e1", "g1", "A" * 64, 19000, True, 43000, cid="new-e1")
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []


def test_several_forwarded_ports_follow_the_cores_assignment():
    memory = SE["StackMemory"]()
    vpns = {"g1": gluetun_inspect("g1", "A" * 64), "g2": gluetun_inspect("g2", "B" * 64)}
    engines = [engine("e1", "g1", "A" * 64, 19000, True, 41000), engine("e2", "g1", "A" * 64, 19001, True, 41001),
               engine("e3", "g1", "A" * 64, 19002), engine("e4", "g2", "B" * 64, 19005)]
    control = {"g1": {"ports": [41000, 41001], "vpn_status": "running", "error": None},
               "g2": {"ports": None, "vpn_status": "running", "error": None}}
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    control["g1"]["ports"] = [41001, 41000]  # the same set in another order: nothing to do
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    # 41000 went away, 41002 and 41003 came: e1 gets a new port, e3 becomes forwarded; e2 keeps 41001
    control["g1"] = {"ports": [41001, 41002, 41003], "vpn_status": "running", "error": None}
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["forwarded_port_changed"]
    event = events[0]
    assert (event["old_port"], event["new_port"], event["engine"]) == (41000, 41002, "e1")
    assert (event["old_ports"], event["new_ports"], event["engines"]) == ([41000, 41001], [41001, 41002, 41003],
                                                                          ["e1", "e3"])
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []  # de-duplicated


def test_gluetun_restart_and_recreate_subsume_the_port_change():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    vpns["g1"] = gluetun_inspect("g1", "A" * 64, started="2026-01-01T00:01:00Z", health="starting")
    control["g1"] = {"ports": [44000], "vpn_status": "running", "error": None}
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["vpn_restarted", "vpn_health_changed"]
    assert sorted(events[0]["engines"]) == ["e1", "e2"] and events[1]["healthy"] is False
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    vpns["g2"] = gluetun_inspect("g2", "C" * 64)
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["vpn_recreated"] and events[0]["container_id"] == "C" * 12
    del vpns["g2"]
    vpns["g2"] = None
    assert kinds(SE["evaluate"](stack(), observation(engines, vpns, control), memory)) == ["vpn_missing"]


def test_stopped_gluetun_waits_for_its_start():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    vpns["g1"] = gluetun_inspect("g1", "A" * 64, started="later", status="exited")
    assert "vpn_restarted" not in kinds(SE["evaluate"](stack(), observation(engines, vpns, control), memory))


def test_engine_died_and_missing_but_not_when_the_converge_recreated_it():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    # re-created by a converge: same name, new ID -> no event
    engines[1] = engine("e2", "g1", "A" * 64, 19001, cid="recreated")
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    engines[1] = engine("e2", "g1", "A" * 64, 19001, cid="recreated", state="exited")
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["engine_died"] and events[0]["engine"] == "e2"
    del engines[1]
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["engine_missing"] and (events[0]["engine"], events[0]["http_port"]) == ("e2", 19001)
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []


def test_first_evaluation_counts_missing_replicas_and_reports_no_health_change():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    events = SE["evaluate"](stack(replicas=4), observation(engines, vpns, control), memory)
    assert kinds(events) == ["engine_missing"] and (events[0]["found"], events[0]["replicas"]) == (3, 4)
    fresh = SE["StackMemory"]()
    assert SE["evaluate"](stack(replicas=3), observation(engines, vpns, control), fresh) == []


def test_health_changes_are_sent_on_change_only():
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    vpns["g2"] = gluetun_inspect("g2", "B" * 64, health="unhealthy")
    events = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert kinds(events) == ["vpn_health_changed"]
    assert (events[0]["old_health"], events[0]["new_health"], events[0]["healthy"]) == ("healthy", "unhealthy", False)
    assert events[0]["was_healthy"] is True
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    control["g2"] = {"ports": None, "vpn_status": None, "error": "timeout"}  # unreadable: no change
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []


def test_a_vpn_stopped_through_the_control_server_is_unhealthy_while_docker_says_healthy():
    """Gluetun's health server keeps answering OK when the VPN is stopped through the control server: Docker stays
    'healthy' and only the VPN status tells. The event says the VPN is unhealthy, and healthy again (the rulebook's
    cue to converge what failed meanwhile) once it runs."""
    memory = SE["StackMemory"]()
    engines, vpns, control = base()
    SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    control["g1"] = {"ports": [], "vpn_status": "stopped", "error": None}
    [event] = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert (event["type"], event["vpn"], event["old_health"], event["new_health"]) == (
        "vpn_health_changed", "g1", "healthy", "healthy")
    assert (event["old_vpn_status"], event["new_vpn_status"], event["was_healthy"], event["healthy"]) == (
        "running", "stopped", True, False)
    assert SE["evaluate"](stack(), observation(engines, vpns, control), memory) == []
    control["g1"] = {"ports": [], "vpn_status": "running", "error": None}
    [event] = SE["evaluate"](stack(), observation(engines, vpns, control), memory)
    assert (event["type"], event["was_healthy"], event["healthy"]) == ("vpn_health_changed", False, True)


def test_safe_url_and_stack_validation():
    assert SE["safe_url"]("tcp://user:pw@host:2375") == "tcp://host:2375"
    assert SE["safe_url"]("ssh://root@h") == "ssh://h"
    with pytest.raises(ValueError):
        SE["normalize_stack"]({"gluetun": ["g"]})
    with pytest.raises(ValueError):
        SE["normalize_stack"]({"pool": "p", "gluetun": ["g", "g"]})
    assert SE["rulebook_inventory"](["ansible-rulebook", "-r", "x", "-i", "inv.yml"]) == "inv.yml"
    assert SE["rulebook_inventory"](["ansible-rulebook", "--inventory=i2"]) == "i2"


# ------------------------------------------------------------------------------ the source, end to end
class FakeStream(object):
    def __init__(self):
        self.items = []
        self.cond = threading.Condition()
        self.closed = False

    def push(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def __iter__(self):
        while True:
            with self.cond:
                while not self.items and not self.closed:
                    self.cond.wait(0.05)
                if self.closed:
                    raise OSError("connection reset")
                item = self.items.pop(0)
            yield item


class FakeDocker(object):
    """The Docker Engine of one host: containers, inspects, event streams; ``down`` makes every call fail."""

    def __init__(self, engines, vpns):
        self.engines = engines
        self.vpns = vpns
        self.down = False
        self.streams = []
        self.lock = threading.Lock()

    def client(self, *_args, **_kwargs):
        return self

    def _check(self):
        if self.down:
            raise OSError("Cannot connect to the Docker daemon")

    def ping(self):
        self._check()

    def containers(self, all=False, filters=None):  # pylint: disable=redefined-builtin,unused-argument
        self._check()
        return list(self.engines)

    def inspect_container(self, name):
        import docker  # pylint: disable=import-outside-toplevel

        self._check()
        if self.vpns.get(name) is None:
            raise docker.errors.NotFound("no such container")
        return self.vpns[name]

    def events(self, decode=True, filters=None):  # pylint: disable=unused-argument
        self._check()
        stream = FakeStream()
        with self.lock:
            self.streams.append(stream)
        return stream

    def event(self, action, name):
        for stream in list(self.streams):
            if not stream.closed:
                stream.push({"Action": action, "Actor": {"Attributes": {"name": name}}})

    def crash(self):
        self.down = True
        for stream in self.streams:
            stream.close()


class Collector(asyncio.Queue):
    def __init__(self):
        super().__init__(maxsize=100)
        self.seen = []

    async def put(self, item):
        self.seen.append(item)


async def _until(predicate, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


@pytest.fixture
def source(fake, monkeypatch):
    """A running StackEvents on a FakeDocker and two fake control servers with an API key."""
    routes = ["GET /v1/version", "GET /v1/vpn/status", "GET /v1/portforward"]
    role = {"name": "t", "auth": "apikey", "apikey": KEY, "routes": routes}
    servers = [fake(version="v3.41.1", roles=[role], ports=(41000,)),
               fake(version="v3.41.1", roles=[role], ports=(42000,))]
    vpns = {"g1": gluetun_inspect("g1", "A" * 64, api_port=servers[0].port),
            "g2": gluetun_inspect("g2", "B" * 64, api_port=servers[1].port)}
    engines = [engine("e1", "g1", "A" * 64, 19000, True, 41000), engine("e2", "g1", "A" * 64, 19001),
               engine("e3", "g2", "B" * 64, 19003, True, 42000)]
    dock = FakeDocker(engines, vpns)
    globals_ = SE["StackEvents"].run.__globals__
    monkeypatch.setitem(globals_, "docker_client", dock.client)
    options = SE["options_from"]({"poll_interval": 0.1, "settle": 0.1, "max_settle": 0.5, "reconnect_min": 0.05,
                                  "reconnect_max": 0.2, "request_timeout": 2})
    return {"docker": dock, "servers": servers, "options": options,
            "stacks": [stack(api_key=KEY, replicas=3)]}


def run_source(env, scenario):
    async def go():
        queue = Collector()
        events = SE["StackEvents"](queue, env["stacks"], env["options"])
        task = asyncio.create_task(events.run())
        try:
            await scenario(queue, env)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert events.stop.is_set()
        return queue.seen

    return asyncio.run(go())


def test_source_port_change_engine_removal_and_no_secret(source):
    async def scenario(queue, env):
        await asyncio.sleep(0.5)
        assert queue.seen == []  # converged: nothing
        env["servers"][0].ports = [43000]
        await _until(lambda: "forwarded_port_changed" in kinds(queue.seen))
        env["docker"].engines[:] = [e for e in env["docker"].engines if e["Names"] != ["/e2"]]
        env["docker"].event("destroy", "e2")
        await _until(lambda: "engine_missing" in kinds(queue.seen))
        await asyncio.sleep(0.5)

    seen = run_source(source, scenario)
    assert kinds(seen) == ["forwarded_port_changed", "engine_missing"], json.dumps(seen, indent=1)
    text = json.dumps(seen)
    assert KEY not in text and "wg-secret" not in text


def test_source_docker_engine_goes_away_and_comes_back(source):
    async def scenario(queue, env):
        await asyncio.sleep(0.3)
        env["docker"].crash()
        await _until(lambda: "watch_lost" in kinds(queue.seen))
        env["docker"].engines[:] = [e for e in env["docker"].engines if e["Names"] != ["/e2"]]
        await asyncio.sleep(0.3)
        env["docker"].down = False
        await _until(lambda: "engine_missing" in kinds(queue.seen))

    seen = run_source(source, scenario)
    assert kinds(seen)[:1] == ["watch_lost"] and seen[0]["what"] == "docker"
    assert "watch_reconnected" in kinds(seen)
    assert kinds(seen).count("watch_lost") == 1  # once per outage, not per attempt


def test_source_control_server_goes_away_and_comes_back(source):
    async def scenario(queue, env):
        await asyncio.sleep(0.3)
        env["servers"][1].fault = "500"
        await _until(lambda: "watch_lost" in kinds(queue.seen))
        await asyncio.sleep(0.3)
        env["servers"][1].fault = None
        await _until(lambda: "watch_reconnected" in kinds(queue.seen))

    seen = run_source(source, scenario)
    lost = [e for e in seen if e["type"] == "watch_lost"]
    assert len(lost) == 1 and lost[0]["what"] == "control_server" and lost[0]["vpn"] == "g2"
    assert KEY not in json.dumps(seen)


def test_schema_beside_the_source_accepts_the_documented_arguments():
    import jsonschema  # pylint: disable=import-outside-toplevel

    schema = json.loads((PLUGIN.parent / "schemas" / "stack_events.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"poll_interval": 2, "stacks": [{"host": "h", "pool": "p", "gluetun": ["g1", {"name": "g2"}],
                                                         "api_key_file": "/k"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"poll_interval": 0}, schema)


# ------------------------------------------------------------------------------- remote hosts over SSH
def test_ssh_settings_are_validated_and_give_the_command_line():
    item = stack(ssh={"destination": "10.0.0.6", "user": "root", "port": "2222", "private_key_file": "/k/id",
                      "args": "-o StrictHostKeyChecking=no -o 'UserKnownHostsFile=/dev/null'"})
    assert item["docker_host"] == "ssh://root@10.0.0.6:2222"  # shown in events, never a credential
    assert item["ssh"]["args"] == ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    assert item["ssh"]["docker_socket"] == "/var/run/docker.sock"
    tunnel = SE["SshTunnel"](item["ssh"], 5)
    tunnel.dir = "/tmp/t"
    assert tunnel.command("-O", "forward") == [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
        "-o", "ConnectTimeout=5", "-o", "ControlPersist=no", "-o", "ControlMaster=no", "-S", "/tmp/t/ctl", "-l", "root", "-p", "2222", "-i", "/k/id",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-O", "forward", "10.0.0.6"]
    assert tunnel.command(remote="cat -- /x")[-2:] == ["10.0.0.6", "cat -- /x"]
    # the master only is a master, and none persists in the background whatever the user's ssh arguments say
    master = tunnel.command(master=True)
    assert "ControlMaster=yes" in master and "ControlPersist=no" in master
    assert "-M" not in master  # -M on top of ControlMaster=yes would make it "ask", and refuse every forward
    for bad in ({"user": "root"}, {"destination": ""}, "host", {"destination": "h", "port": "22a"},
                {"destination": "h", "args": [1]}):
        with pytest.raises(ValueError, match=r"stacks\[0\]\.ssh"):
            SE["normalize_stack"]({"pool": "p", "gluetun": ["g"], "ssh": bad})
    with pytest.raises(ValueError, match="give docker_host or ssh, not both"):
        SE["normalize_stack"]({"pool": "p", "gluetun": ["g"], "ssh": {"destination": "h"},
                               "docker_host": "tcp://h:2375"})


def test_inventory_hosts_that_are_not_local_are_reached_over_ssh(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {
        "vars": {"acestream_gluetun_containers": [{"name": "g1"}], "ansible_user": "root",
                 "ansible_ssh_common_args": "-o StrictHostKeyChecking=no", "ansible_ssh_private_key_file": "/k/id"},
        "hosts": {
            "localhost": {"ansible_connection": "local"},
            "far": {"ansible_host": "10.0.0.7", "ansible_port": 2222, "acestream_stack_dir": "/srv/ace"},
            "rootless": {"ansible_host": "10.0.0.8", "acestream_docker_host": "unix:///run/user/1000/docker.sock"},
            "tcp": {"ansible_host": "10.0.0.9", "acestream_docker_host": "tcp://10.0.0.9:2375"}}}}))
    stacks = {s["host"]: s for s in SE["read_inventory"]([str(inventory)])}
    assert stacks["localhost"]["ssh"] is None and stacks["localhost"]["docker_host"] is None
    far = stacks["far"]
    assert far["docker_host"] is None and far["api_key_file"] == "/srv/ace/gluetun-api-key"
    assert far["ssh"] == {"destination": "10.0.0.7", "user": "root", "port": 2222, "private_key_file": "/k/id",
                          "args": ["-o", "StrictHostKeyChecking=no"], "docker_socket": "/var/run/docker.sock"}
    assert stacks["rootless"]["ssh"]["docker_socket"] == "/run/user/1000/docker.sock"
    assert stacks["tcp"]["ssh"] is None and stacks["tcp"]["docker_host"] == "tcp://10.0.0.9:2375"
    assert SE["normalize_stack"](far)["docker_host"] == "ssh://root@10.0.0.7:2222"


class FakeTunnel(object):
    """SshTunnel's edge: the fake control servers listen on 127.0.0.1, so a forward is the port itself."""

    instances = []

    def __init__(self, settings, timeout):
        self.settings = settings
        self.timeout = timeout
        self.forwarded = []
        self.reads = []
        self.closed = False
        FakeTunnel.instances.append(self)

    def alive(self):
        return not self.closed

    def docker_host(self):
        return "unix:///tunnel/docker.sock"

    def forward(self, host, port):
        self.forwarded.append((host, port))
        return port

    def read_file(self, path):
        self.reads.append(path)
        return KEY, None

    def close(self):
        self.closed = True


def test_source_reaches_a_remote_host_through_its_tunnel(source, monkeypatch):
    FakeTunnel.instances = []
    monkeypatch.setitem(SE["StackEvents"].run.__globals__, "SshTunnel", FakeTunnel)
    source["stacks"] = [stack(ssh={"destination": "10.0.0.6"}, api_key_file="/opt/acestream/pool/gluetun-api-key",
                              replicas=3)]

    async def scenario(queue, env):
        await asyncio.sleep(0.5)
        assert queue.seen == []
        env["servers"][1].ports = [44000]
        await _until(lambda: "forwarded_port_changed" in kinds(queue.seen))

    seen = run_source(source, scenario)
    assert kinds(seen) == ["forwarded_port_changed"] and seen[0]["vpn"] == "g2"
    assert seen[0]["docker_host"] == "ssh://10.0.0.6" and seen[0]["meta"]["hosts"] == "stream-a"
    tunnel = FakeTunnel.instances[0]
    # each control server at its address on the remote host, the key read there once, the tunnel closed at the end
    assert sorted(set(tunnel.forwarded)) == sorted({("127.0.0.1", s.port) for s in source["servers"]})
    assert tunnel.reads == ["/opt/acestream/pool/gluetun-api-key"]
    assert tunnel.closed
    assert KEY not in json.dumps(seen)


class UnreadableKeyTunnel(FakeTunnel):
    def read_file(self, path):
        self.reads.append(path)
        return None, "cannot read %s on 10.0.0.6: Permission denied" % path


def test_a_remote_key_that_cannot_be_read_is_not_asked_for_on_every_poll(source, monkeypatch):
    UnreadableKeyTunnel.instances = []
    FakeTunnel.instances = []
    monkeypatch.setitem(SE["StackEvents"].run.__globals__, "SshTunnel", UnreadableKeyTunnel)
    source["stacks"] = [stack(ssh={"destination": "10.0.0.6"}, api_key_file="/opt/acestream/pool/gluetun-api-key")]

    async def scenario(queue, env):
        await _until(lambda: "watch_lost" in kinds(queue.seen))
        await asyncio.sleep(0.6)  # several polls (poll_interval 0.1) and reconnection attempts

    seen = run_source(source, scenario)
    tunnel = FakeTunnel.instances[0]
    assert len(tunnel.reads) <= 2, tunnel.reads  # the failed read, then one after the 401 at most
    lost = [e for e in seen if e["type"] == "watch_lost" and e["what"] == "control_server"]
    assert lost and "(the kept API key: cannot read /opt/acestream/pool/gluetun-api-key on 10.0.0.6: Permission " \
        "denied)" in lost[0]["error"]
