"""Fixtures for the integration suite: a real Docker Engine, the simulator images, ansible-playbook.

Every container a test creates is named with the session's ``run_id`` and labelled
``org.acestream.test.run=<run_id>``; the session removes them at the end. Tests of different runs can
share one Docker Engine: they pick free host ports and never touch containers of another run.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GLUETUN_IMAGE = os.environ.get("ACESTREAM_GLUETUN_SIM_IMAGE", "acestream-sim/gluetun-simulator:latest")
ENGINE_IMAGE = os.environ.get("ACESTREAM_ENGINE_SIM_IMAGE", "acestream-sim/engine-simulator:latest")
TEST_LABEL = "org.acestream.test.run"


# --------------------------------------------------------------------------------------------- Docker
@pytest.fixture(scope="session")
def run_id():
    return uuid.uuid4().hex[:6]


@pytest.fixture(scope="session")
def docker_api(run_id):
    client = docker.APIClient(version="auto", timeout=120)
    try:
        client.ping()
    except docker.errors.DockerException as exc:  # pragma: no cover - environment problem
        pytest.exit(f"no Docker Engine answers: {exc} (run scripts/bootstrap.sh)", returncode=3)
    yield client
    remove_test_containers(client, run_id)


def remove_test_containers(client, run_id):
    """Remove every container of this run: engines first (they live in the Gluetun namespaces)."""
    found = client.containers(all=True, filters={"label": f"{TEST_LABEL}={run_id}"})
    found.sort(key=lambda c: "network_mode" not in json.dumps(c.get("HostConfig", {})).lower())
    for container in found:
        try:
            client.remove_container(container["Id"], force=True, v=True)
        except docker.errors.NotFound:
            pass


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def free_port_range(size, low=20000, high=32000):
    """A run of ``size`` consecutive free host ports, chosen at random to keep parallel runs apart."""
    for _attempt in range(200):
        start = random.randrange(low, high - size)
        if all(port_is_free(p) for p in range(start, start + size)):
            return start, start + size - 1
    raise RuntimeError(f"no {size} consecutive free ports between {low} and {high}")


def wait_for(predicate, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def health_of(client, name):
    state = client.inspect_container(name)["State"]
    return (state.get("Health") or {}).get("Status")


@dataclass
class GluetunSim:
    name: str
    id: str
    api_port: int
    api_host_port: int | None
    engine_range: tuple[int, int] | None
    api_url: str | None

    @property
    def engine_range_text(self):
        return f"{self.engine_range[0]}-{self.engine_range[1]}" if self.engine_range else None


@pytest.fixture
def gluetun_sim(docker_api, run_id):
    """Factory: start a Gluetun simulator container; removed at the end of the test.

    gluetun_sim(version="latest", api_port=8000, publish_api=True, engine_range=None | (start, end) | size,
                env={}, auth_toml=None, healthy_after=1, wait_healthy=True, name=None)
    """
    created = []

    def start(version="latest", api_port=8000, publish_api=True, engine_range=None, env=None,
              auth_toml=None, healthy_after=1, wait_healthy=True, name=None, labels=None):
        name = name or f"t{run_id}-gluetun-{uuid.uuid4().hex[:4]}"
        environment = {
            "GLUETUN_SIM_VERSION": version,
            "HTTP_CONTROL_SERVER_ADDRESS": f":{api_port}",
            "GLUETUN_SIM_HEALTHY_AFTER": str(healthy_after),
        }
        environment.update(env or {})
        if isinstance(engine_range, int):
            engine_range = free_port_range(engine_range)
        port_bindings = {}
        if publish_api:
            port_bindings[f"{api_port}/tcp"] = ("127.0.0.1", free_port())
        if engine_range:
            for port in range(engine_range[0], engine_range[1] + 1):
                port_bindings[f"{port}/tcp"] = ("127.0.0.1", port)
        host_config = docker_api.create_host_config(port_bindings=port_bindings)
        container = docker_api.create_container(
            GLUETUN_IMAGE, name=name, environment=environment, ports=list(port_bindings),
            host_config=host_config, labels={TEST_LABEL: run_id, **(labels or {})})
        created.append(container["Id"])
        if auth_toml is not None:
            put_file(docker_api, container["Id"], "/gluetun/auth/config.toml", auth_toml)
        docker_api.start(container["Id"])
        if wait_healthy:
            wait_for(lambda: health_of(docker_api, name) == "healthy", timeout=60, what=f"{name} healthy")
        api_host_port = port_bindings[f"{api_port}/tcp"][1] if publish_api else None
        return GluetunSim(name=name, id=container["Id"], api_port=api_port, api_host_port=api_host_port,
                          engine_range=engine_range,
                          api_url=f"http://127.0.0.1:{api_host_port}" if publish_api else None)

    yield start
    for cid in reversed(created):
        # Engines joined to this namespace first, then the simulator itself.
        for dependent in docker_api.containers(all=True, filters={"label": f"{TEST_LABEL}={run_id}"}):
            mode = docker_api.inspect_container(dependent["Id"])["HostConfig"].get("NetworkMode", "")
            if mode == f"container:{cid}":
                docker_api.remove_container(dependent["Id"], force=True)
        try:
            docker_api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass


def put_file(client, container, path, content, mode=0o600):
    """Write one file into a created (not necessarily started) container."""
    import io
    import tarfile

    data = content.encode() if isinstance(content, str) else content
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(os.path.basename(path))
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    client.put_archive(container, os.path.dirname(path) or "/", buf.getvalue())


# ------------------------------------------------------------------------------------- ansible-playbook
@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    data: dict | None = None
    results: dict = field(default_factory=dict)

    @property
    def stats(self):
        return (self.data or {}).get("stats", {}).get("localhost", {})

    @property
    def changed(self):
        return self.stats.get("changed", 0)

    def result(self, task_name, host="localhost"):
        """The result of the last task with this name."""
        return self.results[task_name][host]


def run_playbook(tasks=None, playbook=None, extra_vars=None, check=False, diff=False, verbosity=0,
                 json_output=True, env=None, inventory=None, timeout=900):
    """Run ansible-playbook on localhost with a list of tasks (or a playbook file) and parse its output.

    With json_output, the ansible.posix.json callback is used and ``results`` maps task names to per-host
    results; otherwise stdout is the default callback's text (what a user sees, e.g. for secret greps).
    """
    workdir = Path(tempfile.mkdtemp(prefix="acestream-it-"))
    if playbook is None:
        play = [{
            "name": "integration test", "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks,
        }]
        playbook = workdir / "playbook.yml"
        playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook)]
    cmd += ["-i", str(inventory) if inventory else "localhost,"]
    if extra_vars:
        vars_file = workdir / "extra_vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        cmd += ["-e", f"@{vars_file}"]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    environment = dict(os.environ)
    environment.update({
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "build" / "collections"),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    if json_output:
        environment["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    environment.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environment, timeout=timeout, cwd=workdir, check=False)
    run = PlaybookRun(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    if json_output:
        try:
            run.data = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            run.data = None
        for play in (run.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                run.results[task["task"]["name"]] = task["hosts"]
    return run


@pytest.fixture
def playbook():
    return run_playbook
