"""Fixtures for the integration suite: a real Docker Engine, the simulator images, ansible-playbook.

Every container a test creates is named with the session's ``run_id`` and labelled
``org.acestream.test.run=<run_id>``; the session removes them at the end. Tests of different runs can
share one Docker Engine: they pick free host ports and never touch containers of another run.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GLUETUN_IMAGE = os.environ.get("ACESTREAM_GLUETUN_SIM_IMAGE", "acestream-sim/gluetun-simulator:latest")
ENGINE_IMAGE = os.environ.get("ACESTREAM_ENGINE_SIM_IMAGE", "acestream-sim/engine-simulator:latest")
TEST_LABEL = "org.acestream.test.run"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "exclusive: the test needs the Docker Engine to itself (it compares the engine's whole state "
                   "before and after, or kills processes midway on a timing): scripts/test.sh runs these after the "
                   "others, one at a time, while the others share the engine between workers")


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
    joined = [c["Id"] for c in found if (c.get("HostConfig") or {}).get("NetworkMode", "").startswith("container:")]
    remove_containers(client, joined)
    remove_containers(client, [c["Id"] for c in found if c["Id"] not in joined])


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


def worker_slice(low, high):
    """The part of [low, high) for this pytest-xdist worker (gw0, gw1, ...): the workers' ranges never overlap."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count <= 1:
        return low, high
    index, width = int(worker[2:]), (high - low) // count
    return low + index * width, low + (index + 1) * width


def free_port_range(size, low=20000, high=32000):
    """A run of ``size`` consecutive free host ports, chosen at random to keep parallel runs apart (and within this
    worker's slice of [low, high) when the tests run in several workers)."""
    low, high = worker_slice(low, high)
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


def docker_state(client):
    """Every container of the engine, by ID: name, image, config, host config and run state (health aside: a
    healthcheck moves on its own). Two equal snapshots mean nothing was created, removed, changed or restarted."""
    state = {}
    for listed in client.containers(all=True):
        try:
            inspect = client.inspect_container(listed["Id"])
        except docker.errors.NotFound:  # removed meanwhile: absent from the snapshot, like any removal
            continue
        run = {k: v for k, v in inspect["State"].items() if k != "Health"}
        state[inspect["Id"]] = {"Name": inspect["Name"], "Image": inspect["Image"], "Config": inspect["Config"],
                                "HostConfig": inspect["HostConfig"], "State": run,
                                "RestartCount": inspect["RestartCount"]}
    return state


def assert_same_docker_state(before, after):
    """Fail with the differences between two docker_state() snapshots."""
    gone = sorted(before[i]["Name"] for i in set(before) - set(after))
    new = sorted(after[i]["Name"] for i in set(after) - set(before))
    changed = sorted(before[i]["Name"] for i in set(before) & set(after) if before[i] != after[i])
    assert not (gone or new or changed), f"Docker state changed: removed {gone}, created {new}, changed {changed}"


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


def _port_clash(exc):
    text = str(exc).lower()
    return "already allocated" in text or "address already in use" in text


def create_gluetun_sim(client, run_id, version="latest", api_port=8000, publish_api=True, engine_range=None,
                       env=None, auth_toml=None, healthy_after=1, name=None, labels=None, healthcheck=None):
    """Create and start a Gluetun simulator container (not waiting for health); returns a GluetunSim.

    ``engine_range`` is None, (start, end) or a size (a free range is picked). Host ports picked here are
    picked again when Docker finds them taken by a concurrent run. ``healthcheck`` (a Docker healthcheck dict)
    replaces the image's.
    """
    given_name = name
    environment = {
        "GLUETUN_SIM_VERSION": version,
        "HTTP_CONTROL_SERVER_ADDRESS": f":{api_port}",
        "GLUETUN_SIM_HEALTHY_AFTER": str(healthy_after),
    }
    environment.update(env or {})
    for attempt in range(5):
        # A retry gets a new name: Docker may hold the name of the container just removed for a moment.
        name = given_name or f"t{run_id}-gluetun-{uuid.uuid4().hex[:4]}"
        if attempt and given_name:
            wait_name_free(client, name)
        wanted = free_port_range(engine_range) if isinstance(engine_range, int) else engine_range
        port_bindings = {}  # container port -> (host address, host port); docker-py appends "/tcp" itself
        if publish_api:
            port_bindings[api_port] = ("127.0.0.1", free_port())
        if wanted:
            for port in range(wanted[0], wanted[1] + 1):
                port_bindings[port] = ("127.0.0.1", port)
        host_config = client.create_host_config(port_bindings=port_bindings)
        container = client.create_container(
            GLUETUN_IMAGE, name=name, environment=environment, ports=list(port_bindings), healthcheck=healthcheck,
            host_config=host_config, labels={TEST_LABEL: run_id, **(labels or {})})
        try:
            if auth_toml is not None:
                put_file(client, container["Id"], "/gluetun/auth/config.toml", auth_toml)
            client.start(container["Id"])
        except docker.errors.APIError as exc:
            client.remove_container(container["Id"], force=True, v=True)
            if _port_clash(exc) and attempt < 4 and (engine_range is None or isinstance(engine_range, int)):
                continue
            raise
        break
    api_host_port = port_bindings[api_port][1] if publish_api else None
    return GluetunSim(name=name, id=container["Id"], api_port=api_port, api_host_port=api_host_port,
                      engine_range=wanted,
                      api_url=f"http://127.0.0.1:{api_host_port}" if publish_api else None)


def wait_name_free(client, name, timeout=15):
    """Docker may still hold the name of a container just removed: wait until no container has it."""
    wait_for(lambda: not client.containers(all=True, filters={"name": f"^/{name}$"}), timeout=timeout, interval=0.1,
             what=f"the name {name} free again")


def wait_until_healthy(client, name, timeout=90):
    wait_for(lambda: health_of(client, name) == "healthy", timeout=timeout, interval=0.1, what=f"{name} healthy")


def start_gluetun_sims(client, run_id, specs, created=None, wait=True):
    """Start several simulators in parallel: ``specs`` maps a key to create_gluetun_sim keyword arguments
    (plus ``wait_healthy``, default ``wait``); returns {key: GluetunSim} once the waited ones are healthy."""
    specs = {key: dict(spec) for key, spec in specs.items()}
    waits = {key: spec.pop("wait_healthy", wait) for key, spec in specs.items()}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {key: pool.submit(create_gluetun_sim, client, run_id, **spec) for key, spec in specs.items()}
        sims, errors = {}, []
        for key, future in futures.items():
            try:
                sims[key] = future.result()
            except Exception as exc:  # pylint: disable=broad-exception-caught
                errors.append(f"{key}: {exc}")
        if created is not None:
            created.extend(sim.id for sim in sims.values())
        if errors:
            raise RuntimeError("starting Gluetun simulators failed: " + "; ".join(errors))
        list(pool.map(lambda key: wait_until_healthy(client, sims[key].name), [k for k in sims if waits[k]]))
    return sims


def remove_containers(client, container_ids):
    """Force-remove containers in parallel (one at a time is slow on a busy Docker Engine)."""
    def remove(cid):
        try:
            client.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass

    container_ids = list(container_ids)
    if container_ids:
        with ThreadPoolExecutor(max_workers=min(8, len(container_ids))) as pool:
            list(pool.map(remove, container_ids))


def remove_with_dependents(client, run_id, container_ids):
    """Remove containers and, first, the containers of this run joined to their network namespaces."""
    ids = set(container_ids)
    if not ids:
        return
    dependents = []
    for dependent in client.containers(all=True, filters={"label": f"{TEST_LABEL}={run_id}"}):
        mode = (dependent.get("HostConfig") or {}).get("NetworkMode", "")
        if mode.startswith("container:") and mode.split(":", 1)[1] in ids:
            dependents.append(dependent["Id"])
    remove_containers(client, dependents)
    remove_containers(client, container_ids)


@pytest.fixture
def gluetun_sim(docker_api, run_id):
    """Factory: start a Gluetun simulator container; removed at the end of the test.

    gluetun_sim(version="latest", api_port=8000, publish_api=True, engine_range=None | (start, end) | size,
                env={}, auth_toml=None, healthy_after=1, wait_healthy=True, name=None)
    """
    created = []

    def start(version="latest", api_port=8000, publish_api=True, engine_range=None, env=None,
              auth_toml=None, healthy_after=1, wait_healthy=True, name=None, labels=None):
        sim = create_gluetun_sim(docker_api, run_id, version=version, api_port=api_port, publish_api=publish_api,
                                 engine_range=engine_range, env=env, auth_toml=auth_toml,
                                 healthy_after=healthy_after, name=name, labels=labels)
        created.append(sim.id)
        if wait_healthy:
            wait_until_healthy(docker_api, sim.name)
        return sim

    yield start
    remove_with_dependents(docker_api, run_id, created)


@pytest.fixture(scope="module")
def gluetun_sims_module(docker_api, run_id):
    """Module-scoped: start_gluetun_sims(specs) -> {key: GluetunSim}; everything is removed after the module."""
    created = []

    def start(specs, wait=True):
        return start_gluetun_sims(docker_api, run_id, specs, created=created, wait=wait)

    yield start
    remove_with_dependents(docker_api, run_id, created)


# ------------------------------------------------------------------------------------------ engine simulator
ENGINE_VARIANTS = ("krinkuto11-amd64", "jopsis-amd64", "jopsis-arm32", "jopsis-arm64")


def engine_run_spec(variant, http_port, https_port, p2p_port=None):
    """(environment, command) passing the ports the way the orchestrator does for each engine variant."""
    if variant == "krinkuto11-amd64":
        conf = [f"--http-port={http_port}", f"--https-port={https_port}", "--bind-all"]
        environment = {"CONF": "\n".join(conf), "HTTP_PORT": str(http_port), "HTTPS_PORT": str(https_port),
                       "BIND_ALL": "true"}
        if p2p_port:
            environment["P2P_PORT"] = str(p2p_port)
        return environment, None
    args = ["--http-port", str(http_port), "--https-port", str(https_port)]
    if p2p_port:
        args += ["--port", str(p2p_port)]
    if variant == "jopsis-amd64":
        return {"ACESTREAM_ARGS": " ".join(args)}, None
    if variant in ("jopsis-arm32", "jopsis-arm64"):
        return {}, ["python", "main.py", "--bind-all", *args]
    raise ValueError(f"unknown engine variant {variant!r} (one of {', '.join(ENGINE_VARIANTS)})")


@dataclass
class EngineSim:
    name: str
    id: str
    variant: str
    http_port: int
    https_port: int
    p2p_port: int | None


def engine_ready(client, name):
    """True once the engine simulator listens, False while it starts; raises when it has exited."""
    state = client.inspect_container(name)["State"]
    if not state["Running"]:
        raise AssertionError(f"engine {name} exited with {state['ExitCode']}: {container_logs(client, name)}")
    return "ready in" in container_logs(client, name)


@pytest.fixture
def engine_sim(docker_api, run_id):
    """Factory: start an engine simulator in a Gluetun simulator's network namespace.

    engine_sim(gluetun (GluetunSim or container id), variant, http_port, https_port, p2p_port=None,
               env=None, name=None, wait=True) -> EngineSim; wait=True waits until it listens.
    """
    created = []

    def start(gluetun, variant, http_port, https_port, p2p_port=None, env=None, name=None, wait=True):
        target = gluetun.id if isinstance(gluetun, GluetunSim) else gluetun
        environment, command = engine_run_spec(variant, http_port, https_port, p2p_port)
        environment.update(env or {})
        name = name or f"t{run_id}-engine-{http_port}-{uuid.uuid4().hex[:4]}"
        container = docker_api.create_container(
            ENGINE_IMAGE, name=name, environment=environment, command=command,
            host_config=docker_api.create_host_config(network_mode=f"container:{target}"),
            labels={TEST_LABEL: run_id, "org.acestream.test.engine-variant": variant})
        created.append(container["Id"])
        docker_api.start(container["Id"])
        if wait:
            wait_for(lambda: engine_ready(docker_api, name), timeout=30, interval=0.1, what=f"{name} listening")
        return EngineSim(name=name, id=container["Id"], variant=variant, http_port=http_port,
                         https_port=https_port, p2p_port=p2p_port)

    yield start
    remove_containers(docker_api, created)


# ------------------------------------------------------------------------------------ containers and HTTP
def container_logs(client, name):
    return client.logs(name, stdout=True, stderr=True).decode(errors="replace")


def wait_exited(client, name, timeout=30):
    """Wait until the container has stopped; returns its exit code."""
    wait_for(lambda: not client.inspect_container(name)["State"]["Running"], timeout=timeout, interval=0.1,
             what=f"{name} exited")
    return client.inspect_container(name)["State"]["ExitCode"]


def docker_exec(client, name, cmd):
    """Run a command in a running container: (exit code, combined output)."""
    exec_id = client.exec_create(name, cmd, stdout=True, stderr=True)["Id"]
    output = client.exec_start(exec_id).decode(errors="replace")
    return client.exec_inspect(exec_id)["ExitCode"], output


def listening_tcp_ports(client, name):
    """The TCP ports listened on in a container's network namespace (from /proc/net/tcp and tcp6)."""
    _rc, output = docker_exec(client, name, ["cat", "/proc/net/tcp", "/proc/net/tcp6"])
    ports = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class HttpAnswer:
    status: int
    headers: dict
    body: str

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def http_request(method, url, body=None, headers=None, timeout=5.0):
    """One HTTP request, redirects NOT followed; a dict body is sent as JSON. Returns an HttpAnswer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
        return HttpAnswer(status=response.status, headers={k.lower(): v for k, v in response.getheaders()},
                          body=text)
    finally:
        conn.close()


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


def run_script(script, *args, timeout=300):
    """Run one of the suite's scripts (tests/fleet/fleet.sh, tests/engines/engines.sh); its output is in the error."""
    proc = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{Path(script).name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def report_line(config, line):
    """A line in pytest's own output, even with -q and output captured (progress of the long multi-host tests)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - pytest without its terminal
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


def playbook_environment(json_output=True):
    """The environment of the tests' ansible-playbook runs: this checkout's collection and ansible.cfg, and the
    ansible.posix.json callback unless the text output is wanted."""
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
    return environment


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
    environment = playbook_environment(json_output)
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
