"""The Gluetun simulator against the facts known about the real Gluetun: gluetun_contract.yml, one test per row.

Each setup of the table (a release and an authentication setup) is one simulator container, started once for
the module, all in parallel; a setup with ``engine: true`` gets an engine simulator in its network namespace.
The rows run in the table's order: a row that changes a simulator's state (a VPN stopped through the control
server) puts it back before it ends. The format of a row is described at the top of the table.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import (  # pylint: disable=import-error
    ENGINE_IMAGE,
    TEST_LABEL,
    GluetunSim,
    container_logs,
    docker_exec,
    engine_ready,
    engine_run_spec,
    health_of,
    http_request,
    wait_for,
)

TABLE = yaml.safe_load(Path(__file__).with_name("gluetun_contract.yml").read_text(encoding="utf-8"))
SECOND = 1_000_000_000  # Docker's healthcheck durations are in nanoseconds
ENGINE_HTTPS_PORT = 45001  # inside the simulator's namespace only
HEALTH_GET = ("import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', 9999, timeout=10); "
              "c.request('GET', '/'); r = c.getresponse(); sys.stdout.write('%d\\n' % r.status + r.read().decode())")


def sim_spec(setup):
    """create_gluetun_sim keyword arguments of a setup of the table."""
    spec = {key: setup[key] for key in ("version", "api_port", "env", "auth_toml", "healthy_after", "wait_healthy")
            if key in setup}
    if setup.get("engine"):
        spec["engine_range"] = 1
    if "healthcheck_interval" in setup:
        spec["healthcheck"] = {
            "test": ["CMD", "/usr/bin/python3", "-I", "-S", "/opt/gluetun-sim/cli.py", "healthcheck"],
            "interval": int(setup["healthcheck_interval"] * SECOND), "timeout": 5 * SECOND, "retries": 3,
            "start_period": 10 * SECOND}
    return spec


@pytest.fixture(scope="module")
def setups(gluetun_sims_module, docker_api, run_id):
    """{setup name: (GluetunSim, engine container name or None)} for every setup of the table."""
    sims = gluetun_sims_module({name: sim_spec(setup) for name, setup in TABLE["setups"].items()})
    engines = {}
    for name, setup in TABLE["setups"].items():
        if setup.get("engine"):
            engines[name] = start_engine(docker_api, run_id, sims[name])
    for engine in engines.values():
        wait_for(lambda engine=engine: engine_ready(docker_api, engine), timeout=30, interval=0.1,
                 what=f"{engine} listening")
    return {name: (sim, engines.get(name)) for name, sim in sims.items()}


def start_engine(client, run_id, sim):
    """An engine simulator in the simulator's network namespace, on its one published port (removed with it)."""
    environment, command = engine_run_spec("krinkuto11-amd64", sim.engine_range[0], ENGINE_HTTPS_PORT)
    name = f"t{run_id}-contract-engine-{uuid.uuid4().hex[:4]}"
    container = client.create_container(
        ENGINE_IMAGE, name=name, environment=environment, command=command, labels={TEST_LABEL: run_id},
        host_config=client.create_host_config(network_mode=f"container:{sim.id}"))
    client.start(container["Id"])
    return name


# ------------------------------------------------------------------------------------------------------ steps
@dataclass
class Context:
    client: object  # docker.APIClient
    sim: GluetunSim
    engine: str | None  # the engine simulator's container name


def request_problems(step, ctx):
    """Send the step's request (following redirects when asked) and compare the answer with the step."""
    spec = step["request"]
    if isinstance(spec, str):
        method, _space, path = spec.partition(" ")
        spec = {"method": method, "path": path}
    headers = dict(spec.get("headers") or {})
    if "basic" in spec:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(spec["basic"]).encode()).decode()
    if "api_key" in spec:
        headers["X-API-Key"] = spec["api_key"]
    body = spec["json"] if "json" in spec else spec.get("body")
    path, hops = spec["path"], []
    while True:
        answer = http_request(spec["method"], ctx.sim.api_url + path, body=body, headers=headers)
        location = answer.header("location")
        if not (spec.get("follow") and 300 <= answer.status < 400 and location and len(hops) < 5):
            break
        hops.append(f"{answer.status} {location}")
        path = location

    problems = []
    if "status" in step and answer.status != step["status"]:
        problems.append(f"status {answer.status}, expected {step['status']}")
    for name, value in (step.get("headers") or {}).items():
        if answer.header(name) != value:
            problems.append(f"header {name}: {answer.header(name)!r}, expected {value!r}")
    for name in step.get("absent") or ():
        if answer.header(name) is not None:
            problems.append(f"header {name}: {answer.header(name)!r}, expected none")
    if "body" in step and answer.body != step["body"]:
        problems.append(f"body {answer.body!r}, expected {step['body']!r}")
    if "json" in step:
        try:
            parsed = json.loads(answer.body)
        except ValueError:
            parsed = f"(not JSON) {answer.body!r}"
        if parsed != step["json"]:
            problems.append(f"JSON {parsed!r}, expected {step['json']!r}")
    if "redirects" in step and hops != step["redirects"]:
        problems.append(f"redirects {hops}, expected {step['redirects']}")
    return problems


def docker_health_problems(step, ctx):
    health = health_of(ctx.client, ctx.sim.name)
    return [] if health == step["docker_health"] else [f"Docker health {health!r}, expected {step['docker_health']!r}"]


def engine_connected_problems(step, ctx):
    assert ctx.engine, "engine_connected needs a setup with engine: true"
    answer = http_request("GET", f"http://127.0.0.1:{ctx.sim.engine_range[0]}/simulator/info")
    info = answer.json()
    if info["connected"] is step["engine_connected"]:
        return []
    return [f"engine connected {info['connected']} ({info['connectivity']}), expected {step['engine_connected']}"]


def health_server_problems(step, ctx):
    expected = step["health_server"]
    _rc, output = docker_exec(ctx.client, ctx.sim.name, ["python3", "-c", HEALTH_GET])
    status, _newline, body = output.partition("\n")
    problems = []
    if "status" in expected and status != str(expected["status"]):
        problems.append(f"health server status {status}, expected {expected['status']} ({body!r})")
    if "body" in expected and body != expected["body"]:
        problems.append(f"health server body {body!r}, expected {expected['body']!r}")
    if "body_contains" in expected and expected["body_contains"] not in body:
        problems.append(f"health server body {body!r}, expected to contain {expected['body_contains']!r}")
    return problems


def log_problems(step, ctx):
    return [] if step["log_contains"] in container_logs(ctx.client, ctx.sim.name) else [
        f"log without {step['log_contains']!r}"]


CHECKS = {"request": request_problems, "docker_health": docker_health_problems,
          "engine_connected": engine_connected_problems, "health_server": health_server_problems,
          "log_contains": log_problems}


def run_step(step, ctx):
    """Check one step; ``within`` retries it until it holds, ``for`` requires it to hold all along."""
    kinds = [kind for kind in CHECKS if kind in step]
    assert len(kinds) == 1, f"a step has exactly one of {', '.join(CHECKS)}: {step}"
    check = CHECKS[kinds[0]]
    if "for" in step:
        started = time.monotonic()
        while time.monotonic() - started < step["for"]:
            problems = check(step, ctx)
            if problems:
                raise AssertionError(f"held {time.monotonic() - started:.1f} s of {step['for']} s: "
                                     + "; ".join(problems))
            time.sleep(0.2)
        return
    deadline = time.monotonic() + step.get("within", 0)
    while True:
        problems = check(step, ctx)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if problems:
        raise AssertionError("; ".join(problems))


def row_id(index_row):
    index, row = index_row
    return f"{index:02d}-{row['setup']}".replace(" ", "_").replace(",", "")


@pytest.mark.parametrize("row", list(enumerate(TABLE["rows"], 1)), ids=row_id)
def test_contract_row(docker_api, setups, row):
    _index, row = row
    sim, engine = setups[row["setup"]]
    ctx = Context(docker_api, sim, engine)
    failure = None
    for number, step in enumerate(row.get("steps") or [row], 1):
        try:
            run_step(step, ctx)
        except (AssertionError, OSError, http.client.HTTPException) as exc:
            failure = f"{row['fact']}\n  step {number}: {exc}"
            break
    if failure:  # outside the except block: the fact and the step, without a chained traceback
        pytest.fail(failure, pytrace=False)
