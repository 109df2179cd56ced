# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the orchestrator app tests share: the app's engines on the engine, their placement, verify until the app
answers, the compose record against what runs, drift and verify side by side, the repair by one site run."""

from __future__ import annotations

import docker
import yaml

from conftest import wait_for
from roles_helpers import (
    failure_message,
    run_collection_playbook,
    run_roles,
    task_result,
)


def app_label(variables):
    return f"acestream.app-pool={variables['acestream_pool_name']}"


def app_engines(docker_api, variables):
    return docker_api.containers(all=True, filters={"label": [app_label(variables)]})


def vpn_ids(docker_api, variables):
    return dict((c["name"], docker_api.inspect_container(c["name"])["Id"])
                for c in variables["acestream_gluetun_containers"])


def seconds(timestamp):
    """Docker's RFC 3339 time in UTC (``2026-12-05T10:59:01.12Z``) as comparable seconds of the day and fraction."""
    whole, _dot, fraction = timestamp.rstrip("Z").partition(".")
    return whole, float("0." + (fraction or "0"))


def wait_engines_placed(docker_api, variables, timeout=90):
    """Wait until the app runs the replicas, every engine running in its VPN's current network namespace, created
    after that VPN's last start, placed as check_placement says; return them."""
    replicas = variables["acestream_engine_replicas"]

    def placed():
        ids = vpn_ids(docker_api, variables)
        engines = app_engines(docker_api, variables)
        if len(engines) != replicas:
            return None
        for engine in engines:
            vpn = engine["Labels"].get("acestream.vpn_container")
            started = docker_api.inspect_container(vpn)["State"]["StartedAt"] if vpn in ids else None
            if engine["State"] != "running" or engine["HostConfig"]["NetworkMode"] != f"container:{ids.get(vpn)}":
                return None
            try:
                created = docker_api.inspect_container(engine["Id"])["Created"]
            except docker.errors.NotFound:  # the app removed it meanwhile: look again
                return None
            if started is None or seconds(created) < seconds(started):
                return None
        try:  # and the forwarded engines in place (the app replaces one when a port comes late or moves)
            check_placement(docker_api, variables, engines)
        except AssertionError:
            return None
        return engines

    return wait_for(placed, timeout=timeout, what=f"{replicas} app engines placed")


def check_placement(docker_api, variables, engines):
    """Two ports per engine inside its VPN's slice, one forwarded engine per VPN with Gluetun's forwarded port."""
    start, end = (int(p) for p in variables["acestream_port_range_host"].split("-"))
    names = [c["name"] for c in variables["acestream_gluetun_containers"]]
    size = (end - start + 1) // len(names)
    slices = dict((name, (start + i * size, start + (i + 1) * size - 1)) for i, name in enumerate(names))
    for engine in engines:
        labels = engine["Labels"]
        low, high = slices[labels["acestream.vpn_container"]]
        http_port, api_port = int(labels["host.http_port"]), int(labels["host.api_port"])
        assert low <= http_port <= high and low <= api_port <= high and http_port != api_port, (labels, low, high)
    for name in names:
        forwarded = [e for e in engines if e["Labels"]["acestream.vpn_container"] == name
                     and e["Labels"]["acestream.forwarded"] == "true"]
        if any(e["Labels"]["acestream.vpn_container"] == name for e in engines):
            assert len(forwarded) == 1, (name, [e["Labels"] for e in engines])
            assert "--port " in forwarded[0]["Command"]


def verify_passes(variables, tmp_path):
    """verify until it passes (the app answers /vpn/status from its last round), then its checks."""
    runs = []

    def passed():
        run = run_collection_playbook("verify", variables, tmp_path)
        runs.append(run)
        return run if run.rc == 0 else None

    try:
        return wait_for(passed, timeout=60, interval=1, what="verify to pass")
    except AssertionError as exc:
        raise AssertionError(failure_message(runs[-1])) from exc


def remove_app(docker_api, variables):
    for container in docker_api.containers(all=True, filters={"name": [f"^/{variables['acestream_orchestrator_name']}$"]}):
        docker_api.remove_container(container["Id"], force=True)
    for container in app_engines(docker_api, variables):
        docker_api.remove_container(container["Id"], force=True)


def compose_record_matches(docker_api, variables, tmp_path):
    """The docker-compose.yml record of the app is what runs: every mount, env file entry, port, label, restart
    policy, stop timeout and network that docker inspect shows for it."""
    app = variables["acestream_orchestrator_name"]
    stack_dir = tmp_path / "stack"
    service = yaml.safe_load((stack_dir / "docker-compose.yml").read_text())["services"][app]
    inspect = docker_api.inspect_container(app)
    assert service["image"] == inspect["Config"]["Image"] and service["container_name"] == app
    assert sorted(service["volumes"]) == sorted("%s:%s" % (m["Source"], m["Destination"]) for m in inspect["Mounts"])
    env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
    written = dict(line.split("=", 1) for line in (stack_dir / service["env_file"][0]).read_text().splitlines()
                   if line and not line.startswith("#"))
    own = dict((k, v) for k, v in env.items() if k in written or k in service["environment"])
    assert own == written, "the env file holds the app's whole environment"
    assert all(env[k] == str(v) for k, v in service["environment"].items())
    binding = inspect["HostConfig"]["PortBindings"]["8000/tcp"][0]
    assert service["ports"] == ["%s:%s:8000" % (binding["HostIp"], binding["HostPort"])]
    assert service["restart"] == inspect["HostConfig"]["RestartPolicy"]["Name"]
    assert service["stop_grace_period"] == "%ss" % inspect["Config"]["StopTimeout"]
    labels = dict((k, v) for k, v in inspect["Config"]["Labels"].items() if k.startswith("acestream."))
    assert service["labels"] == labels
    assert service["networks"] == list(inspect["NetworkSettings"]["Networks"])


def drift_and_verify(variables, tmp_path, also=None):
    """``(drift names the app (and the component ``also``), verify failed, verify's failure)`` from one drift and one
    verify run."""
    drift = run_collection_playbook("drift", variables, tmp_path)
    assert drift.rc == 0, failure_message(drift)
    report = task_result(drift, "Report the drift")["msg"]
    named = "orchestrator_app" in report and (also is None or also in report)
    verify = run_collection_playbook("verify", variables, tmp_path)
    return named, verify.rc != 0, failure_message(verify) if verify.rc != 0 else ""


def repaired_by_one_site_run(docker_api, variables, tmp_path):
    """One site run repairs the stack: verify passes, and the next site run changes nothing."""
    fixed = run_roles(tmp_path, variables)
    assert fixed.rc == 0 and fixed.changed > 0, failure_message(fixed)
    check_placement(docker_api, variables, wait_engines_placed(docker_api, variables, timeout=30))
    verify_passes(variables, tmp_path)
    settled = run_roles(tmp_path, variables)
    assert settled.rc == 0 and settled.changed == 0, failure_message(settled)
