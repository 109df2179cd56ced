"""Contract tests of the AceStream Orchestrator app v1.7.3 simulator image on a real Docker Engine.

Two Gluetun simulators on a user network (a v3.41.1 one forwarding a port, a v3.40.0 one whose /v1/portforward
answers 401) and the app simulator with the Docker socket: what it provisions (names, network namespaces, two
ports per engine from each VPN's range, labels, the forwarded engine's --port), its API (/vpn/status, /engines,
the API key), its start-up clean-up of its CONTAINER_LABEL, the engine settings file that wins over the
environment, a VPN stopped through the control server, and SIGTERM. The simulator is a test fixture; users run
the real app. Facts: reference/orchestrator-app-v1.7.3.md.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import uuid

import docker
import pytest

from conftest import (  # pylint: disable=import-error
    ENGINE_IMAGE,
    GLUETUN_IMAGE,
    TEST_LABEL,
    GluetunSim,
    container_logs,
    docker_exec,
    free_port,
    free_port_range,
    health_of,
    http_request,
    remove_containers,
    wait_exited,
    wait_for,
)

APP_IMAGE = os.environ.get("ACESTREAM_APP_SIM_IMAGE", "acestream-sim/orchestrator-app-simulator:latest")
APP_LABEL_KEY = "org.acestream.test.app"
SECOND = 1000000000
# A quick healthcheck on these few containers: healthy about a second after they start (the image's: 5 s).
FAST_HEALTHCHECK = {"test": ["CMD", "/usr/bin/python3", "-I", "-S", "/opt/gluetun-sim/cli.py", "healthcheck"],
                    "interval": SECOND, "timeout": 5 * SECOND, "retries": 2, "start_period": 0}
CONNECTIVITY = "/server/api?api_version=3&method=get_network_connection_status"
API_KEY = "app-sim-test-key"
FORWARDED_PORT = 41731
FLAG = re.compile(r"--(http-port|https-port|api-port|port) (\d+)")


# ------------------------------------------------------------------------------------------------ fixtures
class Stack:
    """The containers of this module: a user network, Gluetun simulators on it, app simulators, their engines."""

    def __init__(self, client, run_id):
        self.client, self.run_id = client, run_id
        self.network = f"t{run_id}-appnet-{uuid.uuid4().hex[:4]}"
        self.containers, self.apps = [], []
        client.create_network(self.network, driver="bridge", labels={TEST_LABEL: run_id})

    def app_label(self, suffix):
        return f"{APP_LABEL_KEY}={self.run_id}-{suffix}"

    def gluetun(self, version, size, env=None):
        environment = {"GLUETUN_SIM_VERSION": version, "HTTP_CONTROL_SERVER_ADDRESS": ":8001",
                       "GLUETUN_SIM_HEALTHY_AFTER": "0.5", "GLUETUN_SIM_PORT_FORWARD_DELAY": "0.2", **(env or {})}
        for attempt in range(5):
            name = f"t{self.run_id}-appvpn-{uuid.uuid4().hex[:4]}"
            wanted = free_port_range(size)
            bindings = {8001: ("127.0.0.1", free_port())}
            bindings.update({port: ("127.0.0.1", port) for port in range(wanted[0], wanted[1] + 1)})
            container = self.client.create_container(
                GLUETUN_IMAGE, name=name, environment=environment, ports=list(bindings), healthcheck=FAST_HEALTHCHECK,
                host_config=self.client.create_host_config(port_bindings=bindings, network_mode=self.network),
                labels={TEST_LABEL: self.run_id})
            self.containers.append(container["Id"])
            try:
                self.client.start(container["Id"])
            except docker.errors.APIError as exc:  # a concurrent run took a port meanwhile: another range
                self.client.remove_container(container["Id"], force=True)
                if "already allocated" in str(exc) and attempt < 4:
                    continue
                raise
            return GluetunSim(name=name, id=container["Id"], api_port=8001, api_host_port=bindings[8001][1],
                              engine_range=wanted, api_url=f"http://127.0.0.1:{bindings[8001][1]}")
        raise AssertionError("unreachable")

    def app(self, env, settings=None, tmp_dir=None, network=True):
        """Start an app simulator (Docker socket mounted, on the network); returns (name, base URL)."""
        name = f"t{self.run_id}-app-{uuid.uuid4().hex[:4]}"
        port = free_port()
        binds = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}
        if settings is not None:
            path = tmp_dir / f"{name}-engine_settings.json"
            path.write_text(json.dumps(settings))
            binds[str(path)] = {"bind": "/app/app/config/engine_settings.json", "mode": "ro"}
        host_config = self.client.create_host_config(
            binds=binds, port_bindings={8000: ("127.0.0.1", port)}, network_mode=self.network if network else None)
        container = self.client.create_container(
            APP_IMAGE, name=name, environment={"APP_SIM_ENGINE_IMAGE": ENGINE_IMAGE, **env}, ports=[8000],
            host_config=host_config, labels={TEST_LABEL: self.run_id})
        self.apps.append(container["Id"])
        self.client.start(container["Id"])
        return name, f"http://127.0.0.1:{port}"

    def decoy(self, labels):
        """A running container carrying the given labels (not an engine of any app)."""
        container = self.client.create_container(
            ENGINE_IMAGE, name=f"t{self.run_id}-decoy-{uuid.uuid4().hex[:4]}", command=["python", "main.py", "--http-port", "1"],
            labels={TEST_LABEL: self.run_id, **labels})
        self.containers.append(container["Id"])
        self.client.start(container["Id"])
        return container["Id"]

    def engines(self, label, running=True):
        """The containers carrying an app's CONTAINER_LABEL, inspected."""
        found = self.client.containers(all=not running, filters={"label": label})
        return [self.client.inspect_container(c["Id"]) for c in found]

    def close(self):
        remove_containers(self.client, self.apps)  # first: an app left running would replace its engines
        engines = [c["Id"] for c in self.client.containers(all=True, filters={"label": APP_LABEL_KEY})
                   if c["Labels"][APP_LABEL_KEY].startswith(f"{self.run_id}-")]
        remove_containers(self.client, engines)
        remove_containers(self.client, self.containers)
        try:
            self.client.remove_network(self.network)
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="module")
def stack(docker_api, run_id):
    created = Stack(docker_api, run_id)
    yield created
    created.close()


@pytest.fixture(scope="module")
def vpns(stack, docker_api):
    """The redundant pair: a v3.41.1 Gluetun forwarding FORWARDED_PORT, a v3.40.0 one (its /v1/portforward is 401)."""
    pf = {"VPN_PORT_FORWARDING": "on"}
    first = stack.gluetun("v3.41.1", 6, {**pf, "GLUETUN_SIM_FORWARDED_PORT": str(FORWARDED_PORT)})
    second = stack.gluetun("v3.40.0", 6, {**pf, "GLUETUN_SIM_FORWARDED_PORT": str(FORWARDED_PORT + 1)})
    for sim in (first, second):
        wait_for(lambda sim=sim: health_of(docker_api, sim.name) == "healthy", timeout=60, what=f"{sim.name} healthy")
    wait_for(lambda: get_json(first.api_url + "/v1/portforward").get("port"), timeout=20, what="the forwarded port")
    return first, second


@pytest.fixture(scope="module")
def redundant_app(stack, vpns, docker_api):
    """The app in redundant mode (MIN_REPLICAS=3), started after two decoys: one with its label, one without."""
    first, second = vpns
    label = stack.app_label("redundant")
    doomed = stack.decoy(dict([label.split("=", 1)]))
    survivor = stack.decoy({APP_LABEL_KEY: f"{stack.run_id}-other"})
    name, url = stack.app({
        "VPN_MODE": "redundant", "GLUETUN_CONTAINER_NAME": first.name, "GLUETUN_CONTAINER_NAME_2": second.name,
        "GLUETUN_API_PORT": "8001",
        "PORT_RANGE_HOST": f"{min(first.engine_range + second.engine_range)}-{max(first.engine_range + second.engine_range)}",
        "GLUETUN_PORT_RANGE_1": first.engine_range_text, "GLUETUN_PORT_RANGE_2": second.engine_range_text,
        "ACE_HTTPS_RANGE": "45000-45009", "MIN_REPLICAS": "3", "MAX_REPLICAS": "6", "ENGINE_VARIANT": "krinkuto11-amd64",
        "DOCKER_NETWORK": stack.network, "API_KEY": API_KEY, "CONTAINER_LABEL": label, "APP_SIM_INTERVAL": "0.5"})
    wait_for(lambda: answering(url + "/health"), timeout=30, what="the app simulator answering")
    wait_for(lambda: len(stack.engines(label)) >= 3, timeout=30, what="three engines")
    return {"name": name, "url": url, "label": label, "doomed": doomed, "survivor": survivor, "vpns": vpns}


# ------------------------------------------------------------------------------------------------- helpers
def answering(url):
    try:
        return http_request("GET", url, timeout=2.0).status == 200
    except (ConnectionError, http.client.HTTPException, OSError):
        return False


def get_json(url, headers=None):
    answer = http_request("GET", url, headers=headers)
    assert answer.status == 200, f"GET {url}: {answer.status} {answer.body}"
    return answer.json()


def flags(engine):
    """The engine's command-line ports: {'http-port': P, 'https-port': Q, 'api-port': A[, 'port': F]}."""
    return {flag: int(port) for flag, port in FLAG.findall(" ".join(engine["Config"]["Cmd"]))}


def connected(port):
    """What an engine answers about its connectivity, through the port published on its Gluetun simulator."""
    try:
        return http_request("GET", f"http://127.0.0.1:{port}{CONNECTIVITY}", timeout=2.0).json()["result"]["connected"]
    except (ConnectionError, http.client.HTTPException, OSError, ValueError):
        return None


def vpn_status_when(url, predicate, what, timeout=20):
    """/vpn/status once the predicate holds for it."""
    def matching():
        status = get_json(url + "/vpn/status")
        return status if predicate(status) else None

    return wait_for(matching, timeout=timeout, what=what)


def in_range(port, sim):
    return sim.engine_range[0] <= port <= sim.engine_range[1]


# ------------------------------------------------------------------------------------------------- tests
def test_start_up_removes_only_containers_with_its_label(docker_api, redundant_app):
    assert not docker_api.containers(all=True, filters={"id": redundant_app["doomed"]}), "the labelled container is removed"
    assert docker_api.inspect_container(redundant_app["survivor"])["State"]["Running"], "another label's container stays"
    logs = container_logs(docker_api, redundant_app["name"])
    assert "start-up clean-up: stopped and removed" in logs and redundant_app["label"] in logs
    assert re.search(r"Falling back to engine variant 'AceServe-(amd64|arm64|arm32)'", logs), "krinkuto11-amd64 is unknown"


def test_engines_in_each_vpn_namespace_with_two_ports_from_its_range(stack, redundant_app):
    first, second = redundant_app["vpns"]
    engines = stack.engines(redundant_app["label"])
    assert len(engines) == 3
    by_vpn = {first.name: [], second.name: []}
    for engine in engines:
        labels, ports = engine["Config"]["Labels"], flags(engine)
        vpn = first if labels["acestream.vpn_container"] == first.name else second
        by_vpn[vpn.name].append(engine)
        assert re.fullmatch(r"/acestream-\d+", engine["Name"])
        assert engine["HostConfig"]["NetworkMode"] == f"container:{vpn.id}"
        assert not engine["HostConfig"]["PortBindings"], "ports are published on the Gluetun container"
        assert in_range(ports["http-port"], vpn) and in_range(ports["api-port"], vpn)
        assert ports["http-port"] != ports["api-port"]
        assert "https-port" not in ports, "v1.7.3 gives AceServe engines no --https-port"
        assert 45000 <= int(labels["acestream.https_port"]) <= 45009, "ACE_HTTPS_RANGE only in the label"
        assert labels[APP_LABEL_KEY] == redundant_app["label"].split("=", 1)[1]
        assert labels["host.http_port"] == labels["acestream.http_port"] == str(ports["http-port"])
        assert labels["host.api_port"] == labels["acestream.api_port"] == str(ports["api-port"])
        assert labels["acestream.engine_variant"] == "krinkuto11-amd64"
        assert labels["acestream.forwarded"] == ("true" if "port" in ports else "false")
        # The engine answers on both ports, through the ports published on its Gluetun simulator (once it listens:
        # the app starts it and moves on).
        wait_for(lambda p=ports["http-port"]: connected(p) is True, timeout=20, what="the engine answering connected")
        info = get_json(f"http://127.0.0.1:{ports['api-port']}/simulator/info")
        assert (info["http_port"], info["api_port"]) == (ports["http-port"], ports["api-port"])
    # Lowest count first, VPN 1 on a tie: 2 + 1.
    assert (len(by_vpn[first.name]), len(by_vpn[second.name])) == (2, 1)
    taken = [p for e in by_vpn[first.name] for p in (flags(e)["http-port"], flags(e)["api-port"])]
    assert sorted(taken) == list(range(first.engine_range[0], first.engine_range[0] + 4)), "lowest free ports"
    forwarded = [e for e in engines if e["Config"]["Labels"]["acestream.forwarded"] == "true"]
    assert len(forwarded) == 1 and forwarded[0] in by_vpn[first.name], "one forwarded engine, on the VPN with a port"
    assert flags(forwarded[0])["port"] == FORWARDED_PORT
    assert len({e["Config"]["Labels"]["acestream.https_port"] for e in engines}) == 3


def test_vpn_status_and_engines_routes(docker_api, redundant_app):
    first, second = redundant_app["vpns"]
    url = redundant_app["url"]
    status = vpn_status_when(url, lambda s: s["vpn1"]["connected"] and s["vpn2"]["connected"], "both VPNs connected")
    assert status["mode"] == "redundant" and status["enabled"] is True
    assert status["forwarded_port"] == FORWARDED_PORT
    assert status["vpn1"]["container_name"] == first.name and status["vpn2"]["container_name"] == second.name
    assert status["vpn1"]["health"] == status["vpn2"]["health"] == "healthy"
    assert status["vpn1"]["forwarded_port"] == FORWARDED_PORT
    assert status["vpn2"]["forwarded_port"] is None, "v3.40.0 answers 401 on /v1/portforward"
    assert status["vpn1"]["public_ip"] == "203.0.113.10"
    logs = container_logs(docker_api, redundant_app["name"])
    assert f"Port forwarding not supported by VPN config for '{second.name}' (401 Unauthorized)" in logs
    assert "Both Gluetun containers are healthy" in logs

    engines = get_json(url + "/engines")
    assert len(engines) == 3
    for engine in engines:
        assert engine["host"] == engine["vpn_container"] == engine["labels"]["acestream.vpn_container"]
        assert engine["port"] == int(engine["labels"]["host.http_port"])
        assert engine["api_port"] == int(engine["labels"]["host.api_port"])
        assert re.fullmatch(r"acestream-\d+", engine["container_name"]) and len(engine["container_id"]) == 64
        assert engine["forwarded"] is (engine["labels"]["acestream.forwarded"] == "true")
    assert [e["port"] for e in engines] == sorted(e["port"] for e in engines)
    assert [e["forwarded_port"] for e in engines if e["forwarded"]] == [FORWARDED_PORT]
    assert get_json(url + "/version") == {"version": "1.7.3", "title": "AceStream Orchestrator"}
    assert get_json(url + "/settings/engine")["min_replicas"] == 3


def test_provisioning_needs_the_bearer_key(stack, redundant_app):
    url, label = redundant_app["url"], redundant_app["label"]
    _first, second = redundant_app["vpns"]
    missing = http_request("POST", url + "/provision/acestream", body={})
    assert (missing.status, missing.json()) == (401, {"detail": "missing bearer token"})
    assert http_request("POST", url + "/provision/acestream", body={}, headers={"X-API-Key": API_KEY}).status == 401
    wrong = http_request("POST", url + "/provision/acestream", body={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 403
    assert http_request("POST", url + "/scale/5").status == 401
    assert http_request("DELETE", url + "/containers/abc").status == 401
    assert len(stack.engines(label)) == 3, "nothing started without the key"

    started = http_request("POST", url + "/provision/acestream", body={},
                           headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert started.status == 200, started.body
    answer = started.json()
    assert set(answer) >= {"container_id", "container_name", "host_http_port", "host_api_port"}
    engine = stack.client.inspect_container(answer["container_id"])
    assert engine["Config"]["Labels"]["acestream.vpn_container"] == second.name, "the VPN with fewer engines"
    assert in_range(answer["host_http_port"], second) and in_range(answer["host_api_port"], second)
    time.sleep(1.5)
    assert len(stack.engines(label)) == 4, "an engine above MIN_REPLICAS is kept"


def test_stopped_vpn_disconnects_and_a_new_forwarded_port_replaces_the_forwarded_engine(stack, redundant_app, docker_api):
    first, second = redundant_app["vpns"]
    url, label = redundant_app["url"], redundant_app["label"]
    on_first = [e for e in stack.engines(label) if e["Config"]["Labels"]["acestream.vpn_container"] == first.name]
    on_second = [e for e in stack.engines(label) if e["Config"]["Labels"]["acestream.vpn_container"] == second.name]
    old_forwarded = next(e for e in on_first if e["Config"]["Labels"]["acestream.forwarded"] == "true")

    assert http_request("PUT", first.api_url + "/v1/vpn/status", body={"status": "stopped"}).json() == {"outcome": "stopped"}
    for engine in on_first:  # a real engine behind a stopped tunnel has no connectivity
        wait_for(lambda e=engine: connected(flags(e)["http-port"]) is False, timeout=10, what="engine disconnected")
    for engine in on_second:
        wait_for(lambda e=engine: connected(flags(e)["http-port"]) is True, timeout=10, what="engine still connected")
    status = vpn_status_when(url, lambda s: s["vpn1"]["connected"] is False, "vpn1 disconnected", timeout=10)
    # Docker's health stays healthy, as with the real Gluetun: only its engines (and its control server) tell.
    assert status["vpn1"]["health"] == "healthy" and health_of(docker_api, first.name) == "healthy"
    assert status["vpn2"]["connected"] is True
    assert status["connected"] is True, "redundant: connected while one VPN is"
    assert len(stack.engines(label)) == 4, "the engines stay while their VPN is down"

    assert http_request("PUT", first.api_url + "/v1/vpn/status", body={"status": "running"}).json() == {"outcome": "running"}
    new_port = wait_for(lambda: get_json(first.api_url + "/v1/portforward").get("port"), timeout=20, what="new port")
    assert new_port != FORWARDED_PORT

    def replaced():
        now = [e for e in stack.engines(label) if e["Config"]["Labels"]["acestream.vpn_container"] == first.name
               and e["Config"]["Labels"]["acestream.forwarded"] == "true"]
        return now if now and now[0]["Id"] != old_forwarded["Id"] else None

    new_forwarded = wait_for(replaced, timeout=30, what="the forwarded engine replaced")
    assert len(new_forwarded) == 1 and flags(new_forwarded[0])["port"] == new_port
    assert new_forwarded[0]["HostConfig"]["NetworkMode"] == f"container:{first.id}"
    assert not docker_api.containers(all=True, filters={"id": old_forwarded["Id"]})
    assert f"port changed from {FORWARDED_PORT} to {new_port}" in container_logs(docker_api, redundant_app["name"])
    vpn_status_when(url, lambda s: s["vpn1"]["connected"] is True, "vpn1 connected again")


def test_engine_settings_file_wins_single_mode_ranges_and_sigterm(stack, docker_api, tmp_path_factory):
    sim = stack.gluetun("v3.41.1", 4, {"VPN_PORT_FORWARDING": "on", "GLUETUN_SIM_FORWARDED_PORT": "41741"})
    wait_for(lambda: health_of(docker_api, sim.name) == "healthy", timeout=60, what=f"{sim.name} healthy")
    label = stack.app_label("single")
    settings = {"min_replicas": 1, "max_replicas": 10, "auto_delete": False, "engine_variant": "AceServe-amd64",
                "use_custom_variant": True, "platform": "amd64"}
    name, url = stack.app({
        "VPN_MODE": "single", "GLUETUN_CONTAINER_NAME": sim.name, "GLUETUN_API_PORT": "8001",
        "PORT_RANGE_HOST": "19000-19999", "GLUETUN_PORT_RANGE_1": sim.engine_range_text, "MIN_REPLICAS": "3",
        "MAX_REPLICAS": "3", "ENGINE_VARIANT": "krinkuto11-amd64", "CONTAINER_LABEL": label, "APP_SIM_INTERVAL": "0.5"},
        settings=settings, tmp_dir=tmp_path_factory.mktemp("app-settings"))
    wait_for(lambda: answering(url + "/health"), timeout=30, what="the app simulator answering")
    engines = wait_for(lambda: stack.engines(label), timeout=30, what="an engine")
    time.sleep(1.5)  # a few reconcile periods: the file's min_replicas (1) wins over MIN_REPLICAS (3)
    engines = stack.engines(label)
    assert len(engines) == 1
    ports = flags(engines[0])
    assert in_range(ports["http-port"], sim) and in_range(ports["api-port"], sim), "GLUETUN_PORT_RANGE_1, in single mode too"
    assert ports["port"] == 41741 and engines[0]["Config"]["Labels"]["acestream.engine_variant"] == "AceServe-amd64"
    assert get_json(url + "/settings/engine")["min_replicas"] == 1
    status = get_json(url + "/vpn/status")
    assert status["mode"] == "single" and status["vpn2"] == {} and status["container_name"] == sim.name
    assert "Loading persisted engine settings" in container_logs(docker_api, name)

    # As v1.7.3: its shutdown outlasts Docker's default 10 s stop timeout (killed, exit 137: its engines stay).
    began = time.monotonic()
    docker_api.stop(name, timeout=10)
    assert time.monotonic() - began >= 10 and docker_api.inspect_container(name)["State"]["ExitCode"] == 137
    assert "caught SIGTERM" in container_logs(docker_api, name)
    assert [e["Id"] for e in stack.engines(label)] == [engines[0]["Id"]], "killed in its shutdown: the engines stay"
    assert "org.opencontainers.image.version" not in (docker_api.inspect_image(APP_IMAGE)["Config"]["Labels"] or {})


def test_container_label_without_equals_stops_the_start(stack, docker_api):
    name, _url = stack.app({"GLUETUN_CONTAINER_NAME": "none", "CONTAINER_LABEL": "no-equals-sign"}, network=False)
    assert wait_exited(docker_api, name) == 1
    assert 'CONTAINER_LABEL must contain "=" (key=value format)' in container_logs(docker_api, name)


def test_gluetun_unhealthy_for_the_timeout_is_restarted_by_the_app_once(stack, docker_api):
    """v1.7.3's VPN monitor restarts a Gluetun container Docker has called unhealthy for
    VPN_UNHEALTHY_RESTART_TIMEOUT_S, once per unhealthy spell; with the value the orchestrator_app role sets
    (2147483647) it never does."""
    sims, apps = {}, {}
    for timeout in ("2", "2147483647"):
        sim = sims[timeout] = stack.gluetun("v3.41.1", 2)
        wait_for(lambda sim=sim: health_of(docker_api, sim.name) == "healthy", timeout=60, what=f"{sim.name} healthy")
        apps[timeout], _url = stack.app({
            "VPN_MODE": "single", "GLUETUN_CONTAINER_NAME": sim.name, "GLUETUN_API_PORT": "8001",
            "GLUETUN_PORT_RANGE_1": sim.engine_range_text, "MIN_REPLICAS": "0", "MAX_REPLICAS": "1",
            "CONTAINER_LABEL": stack.app_label(f"restart-{timeout}"), "APP_SIM_INTERVAL": "0.5",
            "VPN_UNHEALTHY_RESTART_TIMEOUT_S": timeout})
    started = {t: docker_api.inspect_container(sim.name)["State"]["StartedAt"] for t, sim in sims.items()}
    for sim in sims.values():
        docker_exec(docker_api, sim.name, ["gluetun-sim", "set-health", "unhealthy"])
    watched, spared = sims["2"], sims["2147483647"]
    wait_for(lambda: docker_api.inspect_container(watched.name)["State"]["StartedAt"] != started["2"] or None,
             timeout=40, what=f"{watched.name} restarted by the app")
    time.sleep(3)  # longer than the timeout: no second restart in the same unhealthy spell
    said = container_logs(docker_api, apps["2"])
    assert said.count(f"Force restarting VPN container '{watched.name}' after 2s timeout") == 1, said
    assert health_of(docker_api, spared.name) == "unhealthy"
    assert docker_api.inspect_container(spared.name)["State"]["StartedAt"] == started["2147483647"]
    assert "Force restarting" not in container_logs(docker_api, apps["2147483647"])
