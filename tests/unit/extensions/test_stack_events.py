# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_events EDA source against fakes at its two edges: a fake Docker client (list, inspect, an events
stream that can break) and the fake Gluetun control servers of tests/unit/gluetun_fake.py."""

from __future__ import annotations

import asyncio
import json
import pathlib
import importlib.util
import threading

import pytest

PLUGIN = pathlib.Path(__file__).resolve().parents[3] / "extensions" / "eda" / "plugins" / "event_source" / "stack_events.py"


def _load_source(path):
    """The source file as a module of its own, from its path (ansible-test's collection loader claims every path
    as an import location, so runpy.run_path, which looks for a __main__ there, cannot load it under
    ``ansible-test units``)."""
    spec = importlib.util.spec_from_file_location("acestream_stack_events_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return vars(module)


SE = _load_source(PLUGIN)
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
        "vars": {"acestream_gluetun_containers": [{"name": "g1", "api_host_port": 8001}], "ansible_user": "root",
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
    # Defaults as every playbook resolves them (the stack model): the pool, the replicas, the kept key's path.
    assert (stacks["localhost"]["pool"], stacks["localhost"]["replicas"]) == ("acestream", 2)
    assert stacks["localhost"]["api_key_file"] == "/opt/acestream/acestream/gluetun-api-key"


def test_an_inventory_whose_stack_has_problems_is_refused_with_the_models_words(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "acestream_vpn_mode": "redundant", "acestream_gluetun_api_key": " s3cr3t"}}}}))
    with pytest.raises(ValueError) as info:
        SE["read_inventory"]([str(inventory)])
    message = str(info.value)
    assert "the stack of inventory host localhost cannot be watched" in message
    assert "acestream_gluetun_api_key" in message and "s3cr3t" not in message and "Traceback" not in message
    # A host whose stack is absent is not watched, nor checked.
    inventory.write_text(json.dumps({"all": {"hosts": {
        "gone": {"ansible_connection": "local", "acestream_state": "absent", "acestream_vpn_mode": "redundant"},
        "localhost": {"ansible_connection": "local"}}}}))
    assert [stack["host"] for stack in SE["read_inventory"]([str(inventory)])] == ["localhost"]


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


# ----------------------------------------------------------------------- one host cannot stop the source
class ScriptedClient(SE["GluetunClient"]):
    """The collection's client, except for the control servers a test scripts (by port): a call that hangs until
    released, or an exception of any type, as a misbehaving control server can make the real client raise."""

    script = {}     # port -> "hang" or an exception instance
    calls = {}      # port -> vpn_status calls made
    release = threading.Event()

    def vpn_status(self):
        port = int(self.base_url.rsplit(":", 1)[1])
        ScriptedClient.calls[port] = ScriptedClient.calls.get(port, 0) + 1
        action = ScriptedClient.script.get(port)
        if action == "hang":
            ScriptedClient.release.wait(60)
        elif isinstance(action, BaseException):
            raise action
        return super().vpn_status()


class HangingDocker(FakeDocker):
    """A Docker Engine whose list call hangs (until released) once ``hang`` is set."""

    def __init__(self, engines, vpns):
        super().__init__(engines, vpns)
        self.hang = False
        self.release = threading.Event()
        self.hung = 0

    def containers(self, all=False, filters=None):  # pylint: disable=redefined-builtin
        if self.hang:
            self.hung += 1
            self.release.wait(60)
        return super().containers(all=all, filters=filters)


@pytest.fixture
def two_stacks(fake, monkeypatch):
    """Two stacks, hosts ``a`` and ``b``, each its own fake Docker Engine and two fake control servers; the client
    is ScriptedClient. request_timeout 1: a read is given 3 s, an observation 4 s."""
    routes = ["GET /v1/version", "GET /v1/vpn/status", "GET /v1/portforward"]
    role = {"name": "t", "auth": "apikey", "apikey": KEY, "routes": routes}
    env = {"servers": {}, "docker": {}, "stacks": []}
    for host, base_port in (("a", 41000), ("b", 45000)):
        servers = [fake(version="v3.41.1", roles=[role], ports=(base_port,)),
                   fake(version="v3.41.1", roles=[role], ports=(base_port + 1,))]
        vpns = {"g1": gluetun_inspect("g1", "A" * 64, api_port=servers[0].port),
                "g2": gluetun_inspect("g2", "B" * 64, api_port=servers[1].port)}
        engines = [engine("e1", "g1", "A" * 64, 19000, True, base_port), engine("e2", "g1", "A" * 64, 19001),
                   engine("e3", "g2", "B" * 64, 19003, True, base_port + 1)]
        env["servers"][host] = servers
        env["docker"][host] = HangingDocker(engines, vpns)
        # a tcp:// Docker host is remote: its control servers are given by address (api_url)
        gluetun = [{"name": "g%d" % (i + 1), "api_url": server.url} for i, server in enumerate(servers)]
        env["stacks"].append(stack(host=host, docker_host="tcp://%s:2375" % host, api_key=KEY, replicas=3,
                                   gluetun=gluetun))
    globals_ = SE["StackEvents"].run.__globals__
    monkeypatch.setitem(globals_, "docker_client", lambda url, _timeout: env["docker"][url[len("tcp://"):-5]])
    monkeypatch.setitem(globals_, "GluetunClient", ScriptedClient)
    ScriptedClient.script, ScriptedClient.calls = {}, {}
    ScriptedClient.release = threading.Event()
    env["options"] = SE["options_from"]({"poll_interval": 0.1, "settle": 0.1, "max_settle": 0.5,
                                         "reconnect_min": 0.05, "reconnect_max": 0.2, "request_timeout": 1})
    yield env
    ScriptedClient.release.set()  # no thread of the test left waiting
    for dock in env["docker"].values():
        dock.release.set()


def of(events, host, kind=None):
    return [e for e in events if e["host"] == host and (kind is None or e["type"] == kind)]


def remove_engine(env, host, name):
    dock = env["docker"][host]
    dock.engines[:] = [e for e in dock.engines if e["Names"] != ["/" + name]]
    dock.event("destroy", name)


def test_a_hung_control_server_holds_no_other_stack(two_stacks):
    """A control-server call that never returns (host a) delays neither the other stack's polls and events nor its
    own stack's Docker events; it costs its stack one watch_lost, no second thread while it hangs, and a
    watch_reconnected once it answers."""
    hung = two_stacks["servers"]["a"][0].port
    ScriptedClient.script[hung] = "hang"

    async def scenario(queue, env):
        await _until(lambda: ScriptedClient.calls.get(hung))
        env["servers"]["b"][1].ports = [46000]  # b's forwarded port moves: b is polled all the same
        await _until(lambda: of(queue.seen, "b", "forwarded_port_changed"))
        remove_engine(env, "b", "e2")
        await _until(lambda: of(queue.seen, "b", "engine_missing"))
        remove_engine(env, "a", "e2")  # a's own Docker events are handled while its control server hangs
        await _until(lambda: of(queue.seen, "a", "engine_missing"))
        assert not ScriptedClient.release.is_set() and ScriptedClient.calls[hung] == 1
        await _until(lambda: of(queue.seen, "a", "watch_lost"))  # once the read's bound (3 s) is over
        await asyncio.sleep(0.5)  # polls that would be due meanwhile: skipped while the call hangs
        assert ScriptedClient.calls[hung] == 1
        del ScriptedClient.script[hung]
        ScriptedClient.release.set()
        await _until(lambda: of(queue.seen, "a", "watch_reconnected"))

    seen = run_source(two_stacks, scenario)
    assert kinds(of(seen, "b")) == ["forwarded_port_changed", "engine_missing"], json.dumps(seen, indent=1)
    # b's events came while a's read still hung: before its watch_lost
    assert seen.index(of(seen, "b", "engine_missing")[0]) < seen.index(of(seen, "a", "watch_lost")[0])
    [lost] = of(seen, "a", "watch_lost")
    assert (lost["what"], lost["vpn"], lost["meta"]) == ("control_server", "g1", {"hosts": "a"})
    assert "no answer" in lost["error"]
    assert [(e["what"], e["vpn"]) for e in of(seen, "a", "watch_reconnected")] == [("control_server", "g1")]
    assert KEY not in json.dumps(seen)


@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded while decoding a JSON array"),
                                   ValueError("Expecting value: line 1 column 1 (char 0)"), KeyError("ports")],
                         ids=["RecursionError", "ValueError", "KeyError"])
def test_an_exception_from_one_stacks_poll_is_a_watch_lost_for_that_stack_only(two_stacks, error):
    """Whatever a control server makes the client raise (not only its own errors) is a watch_lost for that stack's
    control server, once, and watch_reconnected when it answers again: the source goes on, the other stack and the
    rest of its own stack too."""
    bad = two_stacks["servers"]["a"][1].port
    ScriptedClient.script[bad] = error

    async def scenario(queue, env):
        await _until(lambda: of(queue.seen, "a", "watch_lost"))
        await asyncio.sleep(0.3)  # more failed reads: still one watch_lost
        env["servers"]["b"][0].ports = [47000]
        await _until(lambda: of(queue.seen, "b", "forwarded_port_changed"))
        env["servers"]["a"][0].ports = [48000]  # a's other control server is read all the same
        await _until(lambda: of(queue.seen, "a", "forwarded_port_changed"))
        del ScriptedClient.script[bad]
        await _until(lambda: of(queue.seen, "a", "watch_reconnected"))

    seen = run_source(two_stacks, scenario)  # the source was still running when cancelled
    [lost] = [e for e in seen if e["type"] == "watch_lost"]
    assert (lost["host"], lost["what"], lost["vpn"]) == ("a", "control_server", "g2")
    assert lost["error"].startswith(type(error).__name__ + ": ")
    assert kinds(of(seen, "b")) == ["forwarded_port_changed"]
    assert [e["vpn"] for e in of(seen, "a", "forwarded_port_changed")] == ["g1"]


def test_a_hung_docker_observation_holds_no_other_stack(two_stacks):
    """A Docker Engine whose list call hangs (host a) costs its stack a watch_lost (docker) once the observation's
    bound is over; the other stack's events come meanwhile, and a is observed again once it answers."""
    async def scenario(queue, env):
        await asyncio.sleep(0.3)
        env["docker"]["a"].hang = True
        remove_engine(env, "a", "e2")
        await _until(lambda: env["docker"]["a"].hung)
        remove_engine(env, "b", "e3")
        await _until(lambda: of(queue.seen, "b", "engine_missing"))
        assert not of(queue.seen, "a"), json.dumps(queue.seen, indent=1)
        await _until(lambda: of(queue.seen, "a", "watch_lost"))  # the observation's bound: 4 s
        await asyncio.sleep(0.5)
        assert env["docker"]["a"].hung == 1  # not asked again while the call hangs
        env["docker"]["a"].hang = False
        env["docker"]["a"].release.set()
        await _until(lambda: of(queue.seen, "a", "engine_missing"))

    seen = run_source(two_stacks, scenario)
    assert kinds(of(seen, "b")) == ["engine_missing"]
    assert kinds(of(seen, "a")) == ["watch_lost", "watch_reconnected", "engine_missing"], json.dumps(seen, indent=1)
    assert of(seen, "a", "watch_lost")[0]["what"] == "docker"


def test_an_evaluation_that_fails_is_a_watch_lost_for_that_stack_only(two_stacks, monkeypatch):
    """Should the decision fail on what one stack shows, that stack gets a watch_lost (evaluation) and the others
    their events; it is evaluated again at its next change."""
    globals_ = SE["StackEvents"].run.__globals__
    real = globals_["evaluate"]
    broken = {"a": True}

    def evaluate(stack_, observation_, memory):
        if broken.get(stack_["host"]):
            raise TypeError("'<' not supported between instances of 'str' and 'int'")
        return real(stack_, observation_, memory)

    monkeypatch.setitem(globals_, "evaluate", evaluate)

    async def scenario(queue, env):
        await _until(lambda: of(queue.seen, "a", "watch_lost"))
        remove_engine(env, "b", "e2")
        await _until(lambda: of(queue.seen, "b", "engine_missing"))
        broken["a"] = False
        env["servers"]["a"][0].ports = [49000]
        await _until(lambda: of(queue.seen, "a", "forwarded_port_changed"))

    seen = run_source(two_stacks, scenario)
    assert kinds(of(seen, "a")) == ["watch_lost", "watch_reconnected", "forwarded_port_changed"]
    assert of(seen, "a", "watch_lost")[0]["what"] == "evaluation"
    assert kinds(of(seen, "b")) == ["engine_missing"]


def test_read_results_that_are_not_gluetuns_and_long_outages_are_contained():
    problem = SE["poll_problem"]
    assert problem({"ports": [41000], "vpn_status": "running", "error": None}) is None
    assert problem({"ports": None, "vpn_status": "stopped", "error": None}) is None
    for bad in ({"ports": ["41000"], "vpn_status": "running", "error": None},
                {"ports": [True], "vpn_status": "running", "error": None},
                {"ports": [70000], "vpn_status": "running", "error": None},
                {"ports": [], "vpn_status": "x" * 65, "error": None}, None):
        assert problem(bad)
    # the delay after thousands of failed reads (hours of an outage) is reconnect_max, not an overflow
    options = SE["options_from"]({"reconnect_min": 1, "reconnect_max": 30, "poll_interval": 1})
    source = SE["StackEvents"](Collector(), [stack()], options)
    watch = source.watches[0]
    watch.failures["g1"] = 5000

    async def failing_call(*_args, **_kwargs):
        return None, "no answer within 15s"

    source.call = failing_call
    assert asyncio.run(source.poll(watch, watch.stack["vpns"][0])) == 30
    # an error carried by an event holds none of the stack's secrets, and is cut short
    watch = SE["StackEvents"](Collector(), [stack(api_key=KEY)], options).watches[0]
    assert watch.scrub("echoed X-API-Key: %s" % KEY) == "echoed X-API-Key: ********"
    assert len(watch.scrub("x" * 100000)) <= SE["MAX_ERROR"] + 3


def test_blocking_calls_are_bounded_in_time_and_in_number():
    options = SE["options_from"]({})

    def raise_key_error():
        return {}["ports"]

    async def go():
        source = SE["StackEvents"](Collector(), [stack(host="a"), stack(host="b")], options)
        source.loop, source.max_calls, source.slots = asyncio.get_running_loop(), 1, asyncio.Semaphore(1)
        a, b = source.watches
        release = threading.Event()
        started = threading.active_count()
        assert await source.call(a, "read", release.wait, 30, timeout=0.2) == (None, "no answer within 0.2s")
        # while it hangs: a's next call starts no thread; b's waits for the only slot as long as for a call
        value, error = await source.call(a, "read", release.wait, 30, timeout=0.2)
        assert value is None and error.startswith("no answer for 0s (the previous request has not returned")
        value, error = await source.call(b, "read", lambda: 1, timeout=0.2)
        assert value is None and error.startswith("not asked: all 1 threads held for 0.2s")
        assert threading.active_count() == started + 1
        release.set()
        await _until(lambda: not source.slots.locked())  # the thread returned: its slot is free
        assert await source.call(b, "read", lambda: 1, timeout=5) == (1, None)
        assert await source.call(b, "read", raise_key_error, timeout=5) == (None, "KeyError: 'ports'")
        assert await source.call(b, "read", lambda: 2, timeout=5) == (2, None)

    asyncio.run(go())
