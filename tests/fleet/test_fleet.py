"""The simulated fleet (tests/fleet/fleet.sh, docs/fleet-testing.md).

First the infrastructure: every host is an independent Docker Engine in its own network namespace, and Ansible
reaches every host over SSH, in parallel. Then the collection on it: one ``ansible-playbook`` run with forks
deploys a different plan per host from inventories/fleet-sim, a second run changes nothing, and drift on one
host is repaired without touching the others.

The session brings the fleet up (``fleet.sh up``) and down at the end; ACESTREAM_FLEET_KEEP=1 leaves it up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The integration suite's environment for ansible-playbook (this checkout's collection, ansible.cfg, JSON callback).
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import playbook_environment, report_line, run_script, wait_for  # noqa: E402  pylint: disable=wrong-import-position

FLEET_SH = ROOT / "tests" / "fleet" / "fleet.sh"
INVENTORY = ROOT / "inventories" / "fleet-sim"
SITE = ROOT / "playbooks" / "site.yml"
FLEET_RUN = Path(os.environ.get("ACESTREAM_FLEET_RUN", "/run/acestream-fleet"))
FLEET_KEY = Path(os.environ.get("ACESTREAM_FLEET_DIR") or ROOT / "build" / "fleet") / "ssh" / "id_ed25519"
BASE_IMAGE = "acestream-sim/debian-base:bookworm"
LAN_PREFIX = "10.213.0."
MAIN_BRIDGE_SUBNET = "172.17.0.0/16"


# ------------------------------------------------------------------------------------------- helpers
def report(config, line):
    report_line(config, f"[fleet] {line}")


def fleet_sh(*args, timeout=300):
    return run_script(FLEET_SH, *args, timeout=timeout)


def load_yaml(path):
    return yaml.safe_load(path.read_text()) or {}


@dataclass
class Host:
    name: str
    address: str
    group: str
    plan: dict

    @property
    def vpn_names(self):
        return [c["name"] for c in self.plan["acestream_gluetun_containers"]]


def inventory_hosts():
    """The hosts of inventories/fleet-sim with their plan: group_vars of all, then of each group down to theirs."""
    hosts = {}

    def walk(group, body, plan):
        group_vars = INVENTORY / "group_vars" / f"{group}.yml"
        plan = {**plan, **(load_yaml(group_vars) if group_vars.exists() else {})}
        for name, hostvars in (body.get("hosts") or {}).items():
            hosts[name] = Host(name=name, address=hostvars["ansible_host"], group=group, plan=plan)
        for child, child_body in (body.get("children") or {}).items():
            walk(child, child_body or {}, plan)

    walk("all", load_yaml(INVENTORY / "hosts.yml")["all"], {})
    return dict(sorted(hosts.items()))


@dataclass
class Fleet:
    hosts: dict
    clients: dict
    bring_up_seconds: float

    def client(self, host):
        return self.clients[host]

    def containers(self, host):
        """name -> inspect data of every container on the host's engine (one removed between the list and its
        inspect, as a converge run replaces an engine, is gone: left out)."""
        api = self.clients[host]
        out = {}
        for listed in api.containers(all=True):
            try:
                out[listed["Names"][0].lstrip("/")] = api.inspect_container(listed["Id"])
            except docker.errors.NotFound:
                continue
        return out


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    data: dict = field(default_factory=dict)

    @property
    def stats(self):
        return self.data.get("stats", {})

    def explain(self):
        return f"rc={self.rc}\nstats={json.dumps(self.stats, indent=1)}\n{self.failures()}\nstderr:\n{self.stderr[-3000:]}"

    def failures(self):
        lines = []
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed") or result.get("unreachable"):
                        lines.append(f"{host}: {task['task']['name']}: {result.get('msg', result)}")
        return "\n".join(lines[:20])

    def task(self, name):
        """Per-host results and duration (seconds) of the last task with this name."""
        for play in reversed(self.data.get("plays", [])):
            for task in reversed(play.get("tasks", [])):
                if task["task"]["name"] == name:
                    duration = task["task"].get("duration", {})
                    return task["hosts"], seconds_between(duration.get("start"), duration.get("end"))
        raise KeyError(name)


def seconds_between(start, end):
    from datetime import datetime

    if not start or not end:
        return float("nan")
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(end, stamp) - datetime.strptime(start, stamp)).total_seconds()


def ansible_playbook(playbook, *args, forks, timeout=1200):
    """ansible-playbook against inventories/fleet-sim (over SSH), with the JSON callback."""
    env = playbook_environment(json_output=True)
    env.update({
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        # The hosts' Python: the one running these tests (it has the Docker SDK).
        "ACESTREAM_FLEET_PYTHON": sys.executable,
    })
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY), "--forks", str(forks),
           str(playbook), *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=ROOT)
    run = PlaybookRun(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, seconds=time.monotonic() - start)
    try:
        run.data = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        run.data = {}
    return run


def write_playbook(tmp_path, tasks, hosts="all", gather_facts=False):
    path = tmp_path / "playbook.yml"
    path.write_text(yaml.safe_dump([{"name": "fleet test", "hosts": hosts, "gather_facts": gather_facts,
                                     "tasks": tasks}], sort_keys=False))
    return path


def process_name(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def http_get(url, timeout=5.0, attempts=50):
    last = None
    for _attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own LAN
                return response.read().decode()
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {last}")


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def fleet(request):
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root (network namespaces, a Docker Engine per host)")
    hosts = inventory_hosts()
    start = time.monotonic()
    try:
        fleet_sh("up", str(len(hosts)))
    except AssertionError:
        subprocess.run([str(FLEET_SH), "down", str(len(hosts))], capture_output=True, timeout=300, check=False)
        raise
    bring_up = time.monotonic() - start
    report(request.config, f"bring-up of {len(hosts)} hosts (fleet.sh up): {bring_up:.1f}s")
    fleet_sh("reset", str(len(hosts)))
    clients = {name: docker.APIClient(base_url=f"unix://{FLEET_RUN / name / 'docker.sock'}", version="auto",
                                      timeout=120) for name in hosts}
    yield Fleet(hosts=hosts, clients=clients, bring_up_seconds=bring_up)
    for client in clients.values():
        client.close()
    if not os.environ.get("ACESTREAM_FLEET_KEEP"):
        fleet_sh("down", str(len(hosts)))


@pytest.fixture
def fleet_containers(fleet):
    """Factory: start a container on a host's engine; removed at the end of the test."""
    created = []

    def start(host, command, ports=None, name=None):
        api = fleet.client(host)
        name = name or f"fleettest-{uuid.uuid4().hex[:6]}"
        # ports: container port -> host port. (The SDK adds "/tcp" to the exposed ports itself.)
        ports = ports or {}
        container = api.create_container(BASE_IMAGE, command=command, name=name, ports=list(ports),
                                         host_config=api.create_host_config(port_bindings=ports))
        created.append((host, container["Id"]))
        api.start(container["Id"])
        return name

    yield start
    for host, cid in created:
        try:
            fleet.client(host).remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass


# ----------------------------------------------------------------------------------- infrastructure
def test_inventory_names_the_hosts_fleet_sh_made(fleet):
    """The fleet-sim inventory names the hosts fleet.sh made, with their LAN addresses, and holds both modes."""
    assert len(fleet.hosts) >= 3
    for number, host in enumerate(fleet.hosts.values(), start=1):
        assert host.name == f"fleet{number}"
        assert host.address == f"{LAN_PREFIX}{10 + number}", "inventories/fleet-sim and fleet.sh disagree"
    assert {h.plan["acestream_vpn_mode"] for h in fleet.hosts.values()} == {"single", "redundant"}


def test_each_host_is_an_independent_engine(fleet, fleet_containers):
    """Each host is its own Docker Engine: its own engine ID, data root, bridge and containers."""
    infos = {name: fleet.client(name).info() for name in fleet.hosts}
    main = docker.APIClient(version="auto", timeout=30)
    try:
        main_id = main.info()["ID"]
    finally:
        main.close()
    ids = [info["ID"] for info in infos.values()]
    assert len(set(ids)) == len(ids), "two fleet hosts report the same engine ID"
    assert main_id not in ids, "a fleet host answers with the machine's own engine"
    for name, info in infos.items():
        assert info["Name"] == name, "each host has its own hostname"

    subnets = {}
    for name in fleet.hosts:
        bridge = fleet.client(name).inspect_network("bridge")
        subnets[name] = bridge["IPAM"]["Config"][0]["Subnet"]
    assert len(set(subnets.values())) == len(subnets), subnets
    assert MAIN_BRIDGE_SUBNET not in subnets.values()

    first, *others = fleet.hosts
    probe = fleet_containers(first, ["sleep", "300"])
    assert probe in fleet.containers(first)
    for other in others:
        assert probe not in fleet.containers(other), f"a container of {first} is visible on {other}"


def test_same_published_port_on_every_host_at_once(fleet, fleet_containers):
    """Every host publishes the same port at once (separate network namespaces), as real hosts do."""
    port = 18080
    for name in fleet.hosts:
        fleet_containers(name, ["sh", "-c", f"mkdir -p /srv && echo {name} >/srv/whoami && "
                                            "exec python3 -m http.server -d /srv 8080"], ports={8080: port})
    for name, host in fleet.hosts.items():
        assert http_get(f"http://{host.address}:{port}/whoami").strip() == name


def test_ansible_reaches_every_host_over_ssh_in_parallel(fleet, tmp_path):
    """Ansible reaches every host over SSH, and forks run the hosts at the same time."""
    sleep = 8
    playbook = write_playbook(tmp_path, [
        {"name": "ping", "ansible.builtin.ping": {}},
        {"name": "how we came in", "ansible.builtin.command": {"cmd": "printenv SSH_CONNECTION"},
         "register": "ssh", "changed_when": False},
        {"name": "hostname", "ansible.builtin.command": {"cmd": "hostname"}, "changed_when": False},
        {"name": "docker engine", "community.docker.docker_host_info": {}},
        {"name": "sleep", "ansible.builtin.shell": {"cmd": f"date +%s.%N; sleep {sleep}; date +%s.%N"},
         "changed_when": False},
    ])
    run = ansible_playbook(playbook, forks=len(fleet.hosts))
    assert run.rc == 0, run.explain()
    assert set(run.stats) == set(fleet.hosts)

    pings = run.task("ping")[0]
    ssh = run.task("how we came in")[0]
    hostnames = run.task("hostname")[0]
    engines = run.task("docker engine")[0]
    for name, host in fleet.hosts.items():
        assert pings[name]["ping"] == "pong"
        # SSH_CONNECTION = "<client> <port> <server> 22": an SSH session on the host's LAN address.
        client, _port, server, server_port = ssh[name]["stdout"].split()
        assert (client, server, server_port) == (f"{LAN_PREFIX}1", host.address, "22")
        assert hostnames[name]["stdout"] == name
        # The module used the default socket on the host, and that is the host's own engine.
        assert engines[name]["host_info"]["ID"] == fleet.client(name).info()["ID"]

    # Forks: the hosts' sleeps overlap (one host after the other, none would). The hosts share this machine's
    # clock, so their timestamps compare.
    spans = {name: [float(t) for t in result["stdout"].split()] for name, result in run.task("sleep")[0].items()}
    latest_start = max(start for start, _end in spans.values())
    earliest_end = min(end for _start, end in spans.values())
    assert latest_start < earliest_end, f"the hosts' sleeps did not run at the same time: {spans}"


def test_a_crashed_host_comes_back_with_up_and_the_others_stay(fleet, fleet_containers):
    """A host whose dockerd and containerd are killed comes back with fleet.sh up; the other hosts are not
    restarted."""
    *others, victim = fleet.hosts
    survivor = fleet_containers(others[0], ["sleep", "300"])
    doomed = fleet_containers(victim, ["sleep", "300"])
    doomed_pid = fleet.client(victim).inspect_container(doomed)["State"]["Pid"]
    before = {name: (FLEET_RUN / name / "docker.pid").read_text().strip() for name in others}
    # Kill the host's engine and its containerd without letting them clean up.
    pids = subprocess.run(["ip", "netns", "pids", victim], capture_output=True, text=True, check=True).stdout.split()
    daemons = [p for p in pids if process_name(p) in ("dockerd", "containerd")]
    assert len(daemons) == 2, daemons
    subprocess.run(["kill", "-KILL", *daemons], check=True)
    assert subprocess.run([str(FLEET_SH), "status", str(len(fleet.hosts))], capture_output=True,
                          check=False).returncode == 1

    fleet_sh("up", str(len(fleet.hosts)))
    fleet_sh("status", str(len(fleet.hosts)))
    after = {name: (FLEET_RUN / name / "docker.pid").read_text().strip() for name in others}
    assert after == before, "bringing one host back restarted others"
    assert fleet.client(others[0]).inspect_container(survivor)["State"]["Running"]
    # The crashed engine's container processes did not outlive it.
    cmdline = Path(f"/proc/{doomed_pid}/cmdline")
    assert not cmdline.exists() or b"sleep" not in cmdline.read_bytes(), "a process of the crashed host lives on"
    fleet_sh("reset", str(len(fleet.hosts)))


# -------------------------------------------------------------------------- the collection on the fleet
def stack_on(fleet, host):
    """What the stack looks like on one host: Gluetun containers and engines (containers in a VPN's namespace)."""
    containers = fleet.containers(host.name)
    by_id = {c["Id"]: name for name, c in containers.items()}
    vpns = {name: c for name, c in containers.items() if name in host.vpn_names}
    engines = {}
    for name, c in containers.items():
        mode = c["HostConfig"].get("NetworkMode", "")
        if mode.startswith("container:"):
            target = mode.split(":", 1)[1]
            engines[name] = by_id.get(target, target)
    return {
        "vpns": {name: c["State"].get("Running", False) for name, c in vpns.items()},
        "engines": engines,
        "running": {name: c["State"].get("Running", False) for name, c in containers.items()},
        "ids": {name: (c["Id"], c["State"].get("StartedAt")) for name, c in containers.items()},
        "labels": {name: c["Config"].get("Labels") or {} for name, c in containers.items()},
    }


def assert_stack(fleet, host):
    stack = stack_on(fleet, host)
    assert stack["vpns"] == {name: True for name in host.vpn_names}, f"{host.name}: {stack['vpns']}"
    engines = stack["engines"]
    assert len(engines) == int(host.plan["acestream_engine_replicas"]), f"{host.name}: {engines}"
    assert all(stack["running"][name] for name in engines), f"{host.name}: an engine is not running"
    assert set(engines.values()) <= set(host.vpn_names), f"{host.name}: engines outside its VPNs: {engines}"
    if host.plan["acestream_vpn_mode"] == "redundant":
        assert set(engines.values()) == set(host.vpn_names), f"{host.name}: engines not spread over the VPNs"
    # Every engine answers its API from the fleet LAN, on the host's address, through its VPN's published port.
    for name in engines:
        port = stack["labels"][name]["acestream.http-port"]
        answer = json.loads(http_get(f"http://{host.address}:{port}/webui/api/service?method=get_version"))
        assert answer["result"]["version"], f"{host.name}: engine {name} on port {port}: {answer}"
    return stack


@pytest.mark.skipif(not SITE.exists(), reason="playbooks/site.yml is not in this checkout yet: no deploy to test")
def test_one_run_deploys_every_plan_converges_and_repairs_drift(fleet, request):
    """A run limited to one host deploys it alone; one run with forks then deploys the others' plans (single and
    redundant) and leaves the first as it was; the next changes nothing; drift on one host is repaired without
    touching the others, and after that host's Docker Engine restarts the next run restores it alone."""
    forks = len(fleet.hosts)
    hosts = list(fleet.hosts.values())
    lone = next(h for h in hosts if h.plan["acestream_vpn_mode"] == "redundant")

    one = ansible_playbook(SITE, "--limit", lone.name, forks=forks)
    report(request.config, f"one-host run ({lone.name}, {lone.plan['acestream_vpn_mode']}, from nothing): {one.seconds:.1f}s")
    assert one.rc == 0, one.explain()
    assert set(one.stats) == {lone.name}
    assert one.stats[lone.name]["changed"] > 0, one.explain()
    for other in hosts:
        if other.name != lone.name:
            assert stack_on(fleet, other)["vpns"] == {}, f"{other.name} was touched by a run limited to {lone.name}"
    deployed = stack_on(fleet, lone)

    first = ansible_playbook(SITE, forks=forks)
    report(request.config, f"fleet run ({len(hosts)} hosts, forks {forks}, {len(hosts) - 1} from nothing): "
                           f"{first.seconds:.1f}s")
    assert first.rc == 0, first.explain()
    for host in hosts:
        stats = first.stats[host.name]
        assert stats["failures"] == 0 and stats["unreachable"] == 0, first.explain()
        if host.name == lone.name:
            assert stats["changed"] == 0, f"{host.name}: deployed already, yet changed: {first.explain()}"
        else:
            assert stats["changed"] > 0, f"{host.name}: the first run changed nothing"
        assert_stack(fleet, host)
    assert stack_on(fleet, lone)["ids"] == deployed["ids"], f"{lone.name}'s containers were re-created"

    second = ansible_playbook(SITE, forks=forks)
    report(request.config, f"fleet run with nothing to do: {second.seconds:.1f}s")
    assert second.rc == 0, second.explain()
    assert {name: s["changed"] for name, s in second.stats.items()} == {h.name: 0 for h in hosts}, second.explain()

    def run_changing_only(host, what, before):
        """A run that must change this host only: every stack is right after it, the others' containers are the
        ones they had (same IDs, same start times)."""
        run = ansible_playbook(SITE, forks=forks)
        report(request.config, f"fleet run {what}: {run.seconds:.1f}s")
        assert run.rc == 0, run.explain()
        assert run.stats[host.name]["changed"] > 0, run.explain()
        for other in hosts:
            after = assert_stack(fleet, other)
            if other.name != host.name:
                assert run.stats[other.name]["changed"] == 0, run.explain()
                assert after["ids"] == before[other.name]["ids"], f"{other.name} was touched by the run {what}"

    # Drift on one host: an engine removed behind Ansible's back.
    before = {h.name: stack_on(fleet, h) for h in hosts}
    victim = sorted(before[lone.name]["engines"])[0]
    fleet.client(lone.name).remove_container(victim, force=True)
    run_changing_only(lone, "repairing one host", before)
    assert victim in stack_on(fleet, lone)["engines"]

    # The same host reboots between runs: its Docker Engine stops every container and starts again in new
    # namespaces. The next run brings its stack back (engines into the new Gluetun namespaces); the others stay.
    before = {h.name: stack_on(fleet, h) for h in hosts}
    fleet_sh("reboot", lone.name)
    run_changing_only(lone, f"after {lone.name}'s Docker Engine restarted", before)
    fifth = ansible_playbook(SITE, forks=forks)
    assert fifth.rc == 0, fifth.explain()
    assert {name: s["changed"] for name, s in fifth.stats.items()} == {h.name: 0 for h in hosts}, fifth.explain()


# ----------------------------------------------------------------------------- keep_converged on the fleet
def move_forwarded_port(host, vpn_index=0):
    """Restart a host's VPN through its control server, which listens on that host's loopback only: over SSH,
    as an operator would. Returns the port forwarded before."""
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import GluetunClient\n"
        "key = open(%r).read().strip()\n"
        "client = GluetunClient('http://127.0.0.1:%d', api_key=key, timeout=5)\n"
        "print(client.forwarded_ports()[0]); client.set_vpn_status('stopped'); client.set_vpn_status('running')\n"
    ) % (str(ROOT / "build" / "collections"), f"/opt/acestream/{host.plan['acestream_pool_name']}/gluetun-api-key",
         host.plan["acestream_gluetun_containers"][vpn_index]["api_host_port"])
    proc = subprocess.run(["ssh", "-i", str(FLEET_KEY), "-o", "StrictHostKeyChecking=no", "-o",
                           "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{host.address}",
                           sys.executable, "-"], input=script, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[0])


def source_connections():
    """The SSH master connections of stack_events sources on this machine (ps lines), "" when none."""
    return subprocess.run(["pgrep", "-af", "acestream-eda-[^ ]*/ctl"], capture_output=True, text=True,
                          check=False).stdout


def forwarded_engines(fleet, host):
    """vpn -> (engine name, container ID, P2P port) of a host's forwarded engines."""
    found = {}
    for name, c in fleet.containers(host.name).items():
        labels = c["Config"].get("Labels") or {}
        if labels.get("acestream.forwarded") == "true":
            found[labels["acestream.vpn"]] = (name, c["Id"], labels["acestream.p2p-port"])
    return found


def test_keep_converged_answers_a_change_on_the_host_it_happened_on_only(fleet, request, tmp_path):
    """The keep_converged rulebook with the fleet's inventory: the source reaches every host over SSH (its Docker
    Engine and its control servers, which listen on that host's loopback). An engine removed on one host and a
    forwarded port moved on another are each answered by one engine converge limited to that host; the other hosts
    are not touched, and site then changes nothing anywhere."""
    sys.path.insert(0, str(ROOT / "tests" / "eda"))
    from rulebook import CONVERGE_TIMEOUT, Rulebook  # pylint: disable=import-outside-toplevel

    hosts = list(fleet.hosts.values())
    forks = len(hosts)
    deploy = ansible_playbook(SITE, forks=forks)
    assert deploy.rc == 0, deploy.explain()
    rulebook = Rulebook(INVENTORY, tmp_path / "ansible-rulebook.log",
                        env={"ACESTREAM_FLEET_PYTHON": sys.executable, "ANSIBLE_DEPRECATION_WARNINGS": "0"})
    rulebook.start()
    try:
        rulebook.wait_idle(quiet=4)
        assert rulebook.runs() == [], rulebook.text()[-3000:]  # every host converged: no event, no run

        def changed_only(host, before, since, what):
            rulebook.wait_idle(since, quiet=4)
            assert rulebook.runs(since) == ["Converge the AceStream engines"], rulebook.text()[since:][-3000:]
            recaps = rulebook.recaps(since)
            assert [r[0] for r in recaps] == [host.name], f"{what}: the run was not limited to {host.name}: {recaps}"
            assert recaps[0][2:] == (0, 0), recaps
            for other in hosts:
                if other.name != host.name:
                    assert stack_on(fleet, other)["ids"] == before[other.name]["ids"], f"{other.name} touched ({what})"
            report(request.config, f"keep_converged, {what}: one engine converge on {host.name} only")

        # An engine removed on one host (a Docker event, through that host's forwarded Docker socket).
        target = next(h for h in hosts if h.plan["acestream_vpn_mode"] == "redundant")
        before = {h.name: stack_on(fleet, h) for h in hosts}
        victim = sorted(before[target.name]["engines"])[0]
        since = rulebook.text_size()
        fleet.client(target.name).remove_container(victim, force=True)

        def recreated():
            now = stack_on(fleet, target)
            return now["running"].get(victim) and now["ids"][victim] != before[target.name]["ids"][victim]

        wait_for(recreated, timeout=CONVERGE_TIMEOUT, interval=0.5, what=f"{victim} re-created on {target.name}")
        changed_only(target, before, since, "engine removed")
        assert_stack(fleet, target)

        # The forwarded port moves on another host (its control server, read through the SSH tunnel).
        mover = next(h for h in hosts if h.name != target.name)
        before = {h.name: stack_on(fleet, h) for h in hosts}
        vpn = mover.vpn_names[0]
        engine, old_id, old_port = forwarded_engines(fleet, mover)[vpn]
        since = rulebook.text_size()
        assert move_forwarded_port(mover) == int(old_port)

        def followed():
            now = forwarded_engines(fleet, mover).get(vpn)
            return now and now[1] != old_id and now[2] != old_port and stack_on(fleet, mover)["running"].get(now[0])

        wait_for(followed, timeout=CONVERGE_TIMEOUT, interval=0.5, what=f"{engine} on {mover.name} with a new port")
        changed_only(mover, before, since, "forwarded port moved")
        after = stack_on(fleet, mover)
        assert {n: i for n, i in after["ids"].items() if n != engine} == \
            {n: i for n, i in before[mover.name]["ids"].items() if n != engine}, "only the forwarded engine changes"
        # The source's SSH connections end with it: stopped cleanly (SIGINT), and killed (its pipe closes).
        rulebook.stop(cleanup=False)
        assert source_connections() == "", f"SSH connections left after a clean stop:\n{source_connections()}"
        rulebook.start()
        rulebook.wait_idle(quiet=3)
        assert source_connections() != ""
        rulebook.stop(signal.SIGKILL, cleanup=False)
        wait_for(lambda: source_connections() == "", timeout=20, interval=0.5,
                 what="the SSH connections of a killed source to end")
    finally:
        rulebook.stop()
    again = ansible_playbook(SITE, forks=forks)
    assert again.rc == 0, again.explain()
    assert {name: st["changed"] for name, st in again.stats.items()} == {h.name: 0 for h in hosts}, again.explain()
