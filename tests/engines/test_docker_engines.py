"""The Docker Engine matrix (tests/engines/engines.sh, README "Requirements"): the collection on Debian's own
docker.io releases, 26.x (trixie) and the newest (sid), each on a Docker host of its own that Ansible and the
stack_events source reach over SSH. Every playbook run covers both hosts at once (forks); each host's result is
asserted on its own, so a failure names the release it happened on.

On each host: site, site again with nothing changed, site --check --diff with nothing to do, verify, drift with
none; an engine removed, Gluetun restarted and Gluetun removed, each seen by the stack_events source and by drift
and repaired by site; verify and drift with none again; absent.

ACESTREAM_ENGINES picks the hosts (default "trixie sid"); ACESTREAM_ENGINES_KEEP=1 leaves them running.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import playbook_environment, report_line, run_script  # noqa: E402  pylint: disable=wrong-import-position

ENGINES_SH = ROOT / "tests" / "engines" / "engines.sh"
ENGINES_DIR = Path(os.environ.get("ACESTREAM_ENGINES_DIR") or ROOT / "build" / "engines")
HOSTS = os.environ.get("ACESTREAM_ENGINES", "trixie sid").split()
PLAYBOOKS = ROOT / "playbooks"
SOURCE = ROOT / "extensions" / "eda" / "plugins" / "event_source" / "stack_events.py"
SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
POOL = "acestream"
VPNS = ("gluetun1", "gluetun2")
REPLICAS = 4

# The stack on every host: VPN_MODE=redundant with the simulators, as inventories/fleet-sim deploys it.
STACK = {
    "ansible_user": "root",
    "ansible_ssh_common_args": SSH_ARGS,
    "ansible_pipelining": True,
    # Each Debian release's own Python, with its own Docker SDK (python3-docker).
    "ansible_python_interpreter": "/usr/bin/python3",
    "acestream_gluetun_image": "acestream-sim/gluetun-simulator:latest",
    "acestream_gluetun_release": "v3.41.1",
    "acestream_gluetun_pull": "never",
    "acestream_gluetun_capabilities": [],
    "acestream_gluetun_devices": [],
    "acestream_gluetun_env": {
        "GLUETUN_SIM_VERSION": "v3.41.1", "VPN_SERVICE_PROVIDER": "protonvpn", "VPN_TYPE": "wireguard",
        "VPN_PORT_FORWARDING": True, "WIREGUARD_PRIVATE_KEY": "engines-matrix-not-a-real-key", "TZ": "UTC",
    },
    "acestream_engine_variant": "krinkuto11-amd64",
    "acestream_engine_image": "acestream-sim/engine-simulator:latest",
    "acestream_pool_name": POOL,
    "acestream_vpn_mode": "redundant",
    "acestream_gluetun_containers": [{"name": name, "api_host_port": 8001 + i, "env": {}} for i, name in enumerate(VPNS)],
    "acestream_port_range_host": "19000-19015",
    "acestream_engine_replicas": REPLICAS,
}


# ------------------------------------------------------------------------------------------- helpers
def report(config, line):
    report_line(config, f"[engines] {line}")


def engines_sh(*args, timeout=900):
    return run_script(ENGINES_SH, *args, timeout=timeout).stdout


def on_host(host, *cmd, check=True, timeout=120):
    """A command on a Docker host, as its console would run it."""
    proc = subprocess.run(["docker", "exec", f"acestream-dockerhost-{host}", *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{host}: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def containers(host):
    """name -> (id, started at, running, labels, network mode) of every container on the host's engine."""
    ids = on_host(host, "docker", "ps", "-aq").split()
    if not ids:
        return {}
    data = json.loads(on_host(host, "docker", "inspect", *ids, check=False) or "[]")
    return {c["Name"].lstrip("/"): {"id": c["Id"], "started": c["State"]["StartedAt"],
                                    "running": c["State"]["Running"], "labels": c["Config"]["Labels"] or {},
                                    "network": c["HostConfig"]["NetworkMode"]} for c in data}


def stack_on(host):
    """The stack's Gluetun containers and engines (containers in a VPN's network namespace) on a host."""
    found = containers(host)
    by_id = {c["id"]: name for name, c in found.items()}
    engines = {name: by_id.get(c["network"].split(":", 1)[1]) for name, c in found.items()
               if c["network"].startswith("container:")}
    return {"vpns": {name: found[name]["running"] for name in VPNS if name in found}, "engines": engines,
            "containers": found}


def assert_stack(host):
    stack = stack_on(host)
    assert stack["vpns"] == {name: True for name in VPNS}, f"{host}: {stack['vpns']}"
    assert len(stack["engines"]) == REPLICAS, f"{host}: {stack['engines']}"
    assert set(stack["engines"].values()) == set(VPNS), f"{host}: engines not spread over the VPNs"
    assert all(stack["containers"][name]["running"] for name in stack["engines"]), f"{host}: an engine is down"
    return stack


class Run:
    def __init__(self, proc, seconds):
        self.rc, self.stdout, self.stderr, self.seconds = proc.returncode, proc.stdout, proc.stderr, seconds
        try:
            self.data = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            self.data = {}

    @property
    def stats(self):
        return self.data.get("stats", {})

    def results(self, task_name):
        """host -> result of the last task with this name."""
        for play in reversed(self.data.get("plays", [])):
            for task in reversed(play.get("tasks", [])):
                if task["task"]["name"] == task_name:
                    return task["hosts"]
        raise KeyError(task_name)

    def explain(self):
        failures = [f"{host}: {task['task']['name']}: {result.get('msg', result)}"
                    for play in self.data.get("plays", []) for task in play.get("tasks", [])
                    for host, result in task.get("hosts", {}).items()
                    if result.get("failed") or result.get("unreachable")]
        return (f"rc={self.rc}\nstats={json.dumps(self.stats)}\n" + "\n".join(failures[:20])
                + f"\nstderr:\n{self.stderr[-3000:]}")


class Matrix:
    def __init__(self, addresses, inventory):
        self.addresses, self.inventory = addresses, inventory

    def play(self, name, *args):
        env = playbook_environment(json_output=True)
        env["ANSIBLE_DEPRECATION_WARNINGS"] = "0"
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory), "--forks",
               str(len(self.addresses)), str(PLAYBOOKS / f"{name}.yml"), *args]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False, cwd=ROOT)
        return Run(proc, time.monotonic() - start)

    def play_ok(self, name, *args, changed=None):
        """A run that succeeds on every host; changed: None (any), 0, or True (above 0 on every host)."""
        run = self.play(name, *args)
        assert run.rc == 0, run.explain()
        assert set(run.stats) == set(self.addresses), run.explain()
        for host, stats in run.stats.items():
            assert stats["failures"] == 0 and stats["unreachable"] == 0, f"{host}: {run.explain()}"
            if changed == 0:
                assert stats["changed"] == 0, f"{host} changed in {name} {' '.join(args)}: {run.explain()}"
            elif changed:
                assert stats["changed"] > 0, f"{host}: {name} {' '.join(args)} changed nothing"
        return run

    def drift(self):
        """host -> the components drift reports on it."""
        run = self.play_ok("drift")
        messages = {host: result["msg"] for host, result in run.results("Report the drift").items()}
        return {host: [] if msg.startswith("No drift") else msg for host, msg in messages.items()}


def write_inventory(path, addresses):
    hosts = {host: {"ansible_host": address} for host, address in addresses.items()}
    path.mkdir(parents=True, exist_ok=True)
    inventory = path / "hosts.yml"
    stack = dict(STACK, ansible_ssh_private_key_file=str(ENGINES_DIR / "ssh" / "id_ed25519"))
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": stack}}, sort_keys=False))
    return inventory


class Source:
    """The stack_events source run as a user tries it by hand (python stack_events.py INVENTORY), its events read
    line by line."""

    def __init__(self, inventory, log):
        env = playbook_environment(json_output=False)
        self.log = log
        self.proc = subprocess.Popen([sys.executable, str(SOURCE), str(inventory)], stdout=subprocess.PIPE,
                                     stderr=log.open("w"), text=True, env=env, cwd=ROOT)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue

    def wait(self, predicate, timeout, what):
        deadline, seen = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no event {what} within {timeout}s; seen: {json.dumps(seen)[-3000:]}\n"
                             f"source log: {self.log.read_text()[-2000:]}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the Docker hosts need root (containers with every capability)")
    start = time.monotonic()
    addresses = dict(line.split() for line in engines_sh("up", *HOSTS).splitlines() if line.strip())
    report(request.config, f"hosts up ({', '.join(HOSTS)}): {time.monotonic() - start:.1f}s")
    yield Matrix(addresses, write_inventory(tmp_path_factory.mktemp("engines"), addresses))
    if not os.environ.get("ACESTREAM_ENGINES_KEEP"):
        engines_sh("down", *HOSTS)


# ------------------------------------------------------------------------------------------- the tests
def test_each_host_runs_its_debian_release(matrix, request):
    """Each host runs its Debian release's Docker Engine, containerd, runc, Python and Docker SDK, and Ansible
    runs the modules there with that Python."""
    for host in matrix.addresses:
        version = json.loads(on_host(host, "docker", "version", "--format", "{{json .}}"))
        components = {c["Name"]: c["Version"] for c in version["Server"].get("Components", [])}
        sdk = on_host(host, "python3", "-c", "import docker, sys; print(docker.__version__, sys.version.split()[0])")
        report(request.config, f"{host}: Docker {version['Server']['Version']} (API {version['Server']['ApiVersion']}),"
                               f" containerd {components.get('containerd')}, runc {components.get('runc')},"
                               f" Docker SDK and Python {sdk.strip()}")
        major = int(version["Server"]["Version"].split(".")[0])
        assert major >= (26 if host == "trixie" else 28), f"{host} runs Docker {version['Server']['Version']}"


def test_site_converges_then_changes_nothing(matrix, request):
    first = matrix.play_ok("site", changed=True)
    report(request.config, f"site from nothing: {first.seconds:.1f}s")
    for host in matrix.addresses:
        assert_stack(host)
    before = {host: stack_on(host)["containers"] for host in matrix.addresses}
    second = matrix.play_ok("site", changed=0)
    report(request.config, f"site with nothing to do: {second.seconds:.1f}s")
    matrix.play_ok("site", "--check", "--diff", changed=0)
    for host in matrix.addresses:
        assert {n: (c["id"], c["started"]) for n, c in stack_on(host)["containers"].items()} == \
            {n: (c["id"], c["started"]) for n, c in before[host].items()}, f"{host}: a container was re-created"


def test_verify_passes_and_drift_finds_none(matrix, request):
    verify = matrix.play_ok("verify", changed=0)
    report(request.config, f"verify: {verify.seconds:.1f}s")
    assert matrix.drift() == {host: [] for host in matrix.addresses}


FAULTS = {
    # fault: (what is done on each host, the event the source gives for it)
    "an engine removed": (lambda host, stack: on_host(host, "docker", "rm", "-f", sorted(stack["engines"])[0]),
                          lambda event, stack: event["type"] == "engine_missing"
                          and event.get("engine") == sorted(stack["engines"])[0]),
    "Gluetun restarted": (lambda host, stack: on_host(host, "docker", "restart", VPNS[0]),
                          lambda event, stack: event["type"] == "vpn_restarted" and event.get("vpn") == VPNS[0]),
    "Gluetun removed": (lambda host, stack: on_host(host, "docker", "rm", "-f", VPNS[1]),
                        lambda event, stack: event["type"] == "vpn_missing" and event.get("vpn") == VPNS[1]),
}


def test_faults_seen_by_stack_events_and_drift_repaired_by_site(matrix, tmp_path, request):
    """Each fault on every host: the stack_events source (reading the inventory, reaching each host's Docker socket
    and control servers over SSH) gives its event for that host, drift sees it, site repairs it. Then verify."""
    source = Source(matrix.inventory, tmp_path / "source.log")
    try:
        # A converged stack gives no event: give the source time to watch every host (its first polls) first.
        time.sleep(6)
        assert source.events.empty(), f"an event on a converged stack: {source.events.get_nowait()}"
        for fault, (do, seen) in FAULTS.items():
            stacks = {host: assert_stack(host) for host in matrix.addresses}
            start = time.monotonic()
            for host, stack in stacks.items():
                do(host, stack)
            for host, stack in stacks.items():
                source.wait(lambda e, h=host, s=stack: e.get("meta", {}).get("hosts") == h and seen(e, s), 60,
                            f"for '{fault}' on {host}")
            seen_after = time.monotonic() - start
            drift = matrix.drift()
            for host in matrix.addresses:
                assert drift[host], f"{host}: drift found nothing after '{fault}'"
            repair = matrix.play_ok("site", changed=True)
            for host in matrix.addresses:
                assert_stack(host)
            report(request.config, f"{fault}: the source's events after {seen_after:.1f}s, site repaired both hosts"
                                   f" in {repair.seconds:.1f}s")
    finally:
        source.stop()
    matrix.play_ok("verify", changed=0)
    assert matrix.drift() == {host: [] for host in matrix.addresses}


def test_absent_removes_the_stack(matrix):
    matrix.play_ok("site", "-e", "acestream_state=absent", changed=True)
    for host in matrix.addresses:
        assert containers(host) == {}, f"{host}: left behind: {sorted(containers(host))}"
    matrix.play_ok("site", "-e", "acestream_state=absent", changed=0)
