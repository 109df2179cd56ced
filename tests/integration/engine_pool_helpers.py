# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the engine_pool integration tests: run the module through ansible-playbook, read the engines."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import docker
import pytest

from conftest import (
    ENGINE_IMAGE,
    GLUETUN_IMAGE,
    TEST_LABEL,
    GluetunSim,
    free_port,
    free_port_range,
    health_of,
    run_playbook,
    wait_for,
    wait_name_free,
)

MODULE = "acestream.orchestrator.engine_pool"
SECOND = 1000000000
# The image's own check (1 s interval, 5 s timeout, 2 retries) flips to unhealthy when a loaded test machine
# starves it for a few seconds; these tests need health to change only when they change it.
SLOW_HOST_HEALTHCHECK = {
    "test": ["CMD", "/usr/bin/python3", "-I", "-S", "/opt/gluetun-sim/cli.py", "healthcheck"],
    "interval": 2 * SECOND, "timeout": 30 * SECOND, "retries": 2, "start_period": 60 * SECOND,
}
TASK = "engine pool"


def no_json(run):
    return "ansible-playbook gave no JSON: rc=%s\n%s\n%s" % (run.rc, run.stdout[-3000:], run.stderr[-3000:])


def pool_args(run_id, name, vpns, **extra):
    """Module arguments for a test pool: the engine simulator image, the run's cleanup label."""
    args = {
        "name": name,
        "vpn_containers": [vpn.name for vpn in vpns],
        "image": ENGINE_IMAGE,
        "labels": {TEST_LABEL: run_id},
        "forwarded_port": "off",
        "api_port": 8000,
    }
    args.update(extra)
    return args


def run_pool(args, check=False, diff=False, expect_failure=False):
    """One ansible-playbook run of the module; returns (run, task result)."""
    tasks = [{"name": TASK, MODULE: args, "register": "pool_result"}]
    if expect_failure:
        tasks[0]["ignore_errors"] = True
    run = run_playbook(tasks=tasks, check=check, diff=diff)
    assert run.data is not None, no_json(run)
    result = run.result(TASK)
    if not expect_failure:
        assert run.rc == 0 and not result.get("failed"), json.dumps(result, indent=1)[:6000]
    return run, result


def summary(actions):
    """Actions as comparable tuples (action, name)."""
    return sorted((a["action"], a["name"]) for a in actions)


STEPS = (("check", True), ("apply", False), ("again", False), ("check_again", True))


def converge_discipline(args, expected=None):
    """check -> apply -> apply (unchanged) -> check (unchanged), as four tasks of ONE ansible-playbook run.

    ``expected``: the (action, name) list that the check and the apply must both report. Returns the results
    {"check", "apply", "again", "check_again"}.
    """
    return converge_many([(args, expected)])[0]


def converge_many(cases):
    """The discipline for several pools at once: [(args, expected), ...] -> [results, ...] (one playbook)."""
    tasks = []
    for step, check in STEPS:
        for index, (args, _expected) in enumerate(cases):
            tasks.append({"name": "%s %d" % (step, index), MODULE: args, "check_mode": check, "diff": True})
    run = run_playbook(tasks=tasks)
    assert run.data is not None, no_json(run)
    all_results = []
    for index, (_args, expected) in enumerate(cases):
        results = {}
        for step, _check in STEPS:
            key = "%s %d" % (step, index)
            assert key in run.results, "step %s did not run: %s" % (key, json.dumps(run.data)[-4000:])
            results[step] = run.result(key)
            assert not results[step].get("failed"), json.dumps(results[step], indent=1)[:6000]
        check, applied, again, check2 = (results[s] for s, _c in STEPS)
        assert summary(check["actions"]) == summary(applied["actions"]), (check["actions"], applied["actions"])
        assert [a["reason"] for a in check["actions"]] == [a["reason"] for a in applied["actions"]]
        assert check["changed"] == applied["changed"]
        assert check["diff"] == applied["diff"]
        if expected is not None:
            assert summary(applied["actions"]) == sorted(expected), applied["actions"]
            assert applied["changed"] == bool(expected)
        assert again["changed"] is False and again["actions"] == [], again["actions"]
        assert check2["changed"] is False and check2["actions"] == [], check2["actions"]
        assert check2["diff"]["before"] == check2["diff"]["after"]
        assert again["engines"] == check2["engines"]
        all_results.append(results)
    return all_results


def run_failing(tasks_args, check=False):
    """Run tasks that must fail (ignore_errors), in one playbook; returns their results in order.

    ``tasks_args``: module arguments, or (arguments, check_mode) pairs to mix check-mode and real tasks."""
    tasks = []
    for index, item in enumerate(tasks_args):
        args, task_check = item if isinstance(item, tuple) else (item, check)
        tasks.append({"name": "bad %d" % index, MODULE: args, "ignore_errors": True, "check_mode": task_check})
    run = run_playbook(tasks=tasks)
    assert run.data is not None, no_json(run)
    return [run.result("bad %d" % i) for i in range(len(tasks_args))], run


def vpn_api(vpn, method, path, body=None, api_key=None, timeout=5):
    """One request to a simulator's control server through its published port."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(vpn.api_url + path, data=data, method=method)
    if api_key:
        request.add_header("X-API-Key", api_key)
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def set_health(docker_api, vpn, health):
    """Force the simulator's health server healthy/unhealthy and wait for Docker to see it."""
    exec_id = docker_api.exec_create(vpn.id, ["gluetun-sim", "set-health", health])
    docker_api.exec_start(exec_id)
    wait_for(lambda: health_of(docker_api, vpn.name) == health, timeout=60, what="%s %s" % (vpn.name, health))


def names_of(results_step):
    return [e["name"] for e in results_step["engines"]]


def pool_containers(docker_api, pool):
    """The pool's containers by name (list output)."""
    found = docker_api.containers(all=True, filters={"label": "acestream.pool=%s" % pool})
    return dict((c["Names"][0].lstrip("/"), c) for c in found)


def engine_info(port, host="127.0.0.1", timeout=15.0):
    """The engine simulator's /simulator/info through the published port (waits until it answers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen("http://%s:%d/simulator/info" % (host, port), timeout=2) as resp:
                return json.loads(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def engine_status(port, host="127.0.0.1", timeout=15.0):
    deadline = time.monotonic() + timeout
    url = "http://%s:%d/server/api?api_version=3&method=get_status" % (host, port)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.loads(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def vpn_sim(docker_api, run_id):
    """Factory: a Gluetun simulator publishing an engine range (each port exposed and published on 127.0.0.1 on
    the same host port) and its control server; removed, with the engines in its namespace, after the test.

    vpn_sim(size=4 | engine_range=(a, b), env={}, healthy_after=0.5, wait_healthy=True, forwarded_port=None,
            version="v3.41.1")

    The release defaults to v3.41.1: without an auth file its built-in public role answers the classic routes
    (the VPN status engine_pool reads on every run among them) without credentials; tests of the credentials give
    ``env`` a role (AUTH_ENV) and engine_pool the key.
    """
    created = []

    def start(size=4, engine_range=None, env=None, healthy_after=0.5, wait_healthy=True, forwarded_port=None,
              api_port=8000, name=None, version="v3.41.1"):
        given_name = name
        environment = {"HTTP_CONTROL_SERVER_ADDRESS": ":%d" % api_port, "GLUETUN_SIM_HEALTHY_AFTER": str(healthy_after),
                       "GLUETUN_SIM_VERSION": version}
        if forwarded_port:
            environment.update({"VPN_PORT_FORWARDING": "on", "GLUETUN_SIM_FORWARDED_PORT": str(forwarded_port),
                                "GLUETUN_SIM_PORT_FORWARD_DELAY": "0"})
        environment.update(env or {})
        for attempt in range(5):
            # A retry gets a new name: Docker may hold the name of the container just removed for a moment.
            name = given_name or "t%s-vpn-%s" % (run_id, uuid.uuid4().hex[:4])
            if attempt and given_name:
                wait_name_free(docker_api, name)
            wanted = engine_range or free_port_range(size)
            bindings = {api_port: ("127.0.0.1", free_port())}
            for port in range(wanted[0], wanted[1] + 1):
                bindings[port] = ("127.0.0.1", port)
            container = docker_api.create_container(
                GLUETUN_IMAGE, name=name, environment=environment, ports=list(bindings),
                host_config=docker_api.create_host_config(port_bindings=bindings), labels={TEST_LABEL: run_id},
                healthcheck=SLOW_HOST_HEALTHCHECK)
            created.append(container["Id"])
            try:
                docker_api.start(container["Id"])
            except docker.errors.APIError as exc:
                # Another test run took one of the ports between the check and the start: pick another range.
                docker_api.remove_container(container["Id"], force=True)
                if "already allocated" in str(exc) and engine_range is None and attempt < 4:
                    continue
                raise
            break
        engine_range = wanted
        if wait_healthy:
            wait_for(lambda: health_of(docker_api, name) == "healthy", timeout=90, what="%s healthy" % name)
        host_port = bindings[api_port][1]
        return GluetunSim(name=name, id=container["Id"], api_port=api_port, api_host_port=host_port,
                          engine_range=engine_range, api_url="http://127.0.0.1:%d" % host_port)

    yield start
    remove_with_dependents(docker_api, run_id, created)


def remove_with_dependents(docker_api, run_id, ids):
    """Remove the engines attached to these containers (by their network mode, from the list output), then them."""
    ids = set(ids)
    for container in docker_api.containers(all=True, filters={"label": "%s=%s" % (TEST_LABEL, run_id)}):
        mode = (container.get("HostConfig") or {}).get("NetworkMode", "")
        if mode.startswith("container:") and mode.split(":", 1)[1] in ids:
            _remove(docker_api, container["Id"])
    for cid in ids:
        _remove(docker_api, cid)


def _remove(docker_api, cid):
    try:
        docker_api.remove_container(cid, force=True, v=True)
    except docker.errors.NotFound:
        pass
