# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the roles and playbooks integration tests: a stack description made of unique names, free ports and
the simulator images, and a runner for the collection's playbooks against it."""

from __future__ import annotations

import json
import os
import sys
import uuid

import pytest
import yaml

from conftest import ENGINE_IMAGE, GLUETUN_IMAGE, ROOT, free_port, free_port_range, run_playbook

SLOW_HOST_HEALTHCHECK = {"test": ["CMD", "/gluetun-entrypoint", "healthcheck"], "interval": "1s", "timeout": "30s",
                         "retries": 3, "start_period": "60s"}
APP_IMAGE = os.environ.get("ACESTREAM_APP_SIM_IMAGE", "acestream-sim/orchestrator-app-simulator:latest")
ROLES = ("acestream.orchestrator.gluetun", "acestream.orchestrator.engines", "acestream.orchestrator.orchestrator_app")


def stack_vars(run_id, tmp_path, mode="redundant", replicas=2, range_size=6, release="v3.41.1", **overrides):
    """A stack on the local Docker Engine with the simulators, every name and port unique to this test."""
    tag = f"t{run_id}{uuid.uuid4().hex[:4]}"
    count = 2 if mode == "redundant" else 1
    start, end = free_port_range(range_size)
    names = [f"{tag}-gluetun{i + 1}" for i in range(count)]
    data = {
        "acestream_vpn_mode": mode,
        "acestream_pool_name": tag,
        "acestream_stack_dir": str(tmp_path / "stack"),
        "acestream_docker_network": f"{tag}-net",
        "acestream_gluetun_containers": [
            {"name": name, "api_host_port": free_port(),
             "env": {"SERVER_COUNTRIES": f"Country{i}", "WIREGUARD_PRIVATE_KEY": f"wg-secret-{tag}-{i}"}}
            for i, name in enumerate(names)],
        "acestream_gluetun_api_port": 8001,
        "acestream_port_range_host": f"{start}-{end}",
        "acestream_port_range_bind": "127.0.0.1",
        "acestream_engine_replicas": replicas,
        "acestream_gluetun_image": GLUETUN_IMAGE,
        "acestream_gluetun_release": release,
        "acestream_gluetun_pull": "never",
        "acestream_gluetun_capabilities": [],
        "acestream_gluetun_devices": [],
        "acestream_gluetun_env": {"GLUETUN_SIM_VERSION": release, "GLUETUN_SIM_HEALTHY_AFTER": "1",
                                  "VPN_PORT_FORWARDING": True},
        "acestream_engine_image": ENGINE_IMAGE,
        "acestream_engine_vpn_wait_timeout": 90,
        "acestream_engine_wait_ready": 60,
        "acestream_engine_forwarded_port_timeout": 30,
        # The simulator's own check (1 s interval, 2 retries) flips to unhealthy when a loaded test machine starves
        # it for a few seconds; this override (also a test of acestream_gluetun_healthcheck) tolerates that.
        "acestream_gluetun_healthcheck": SLOW_HOST_HEALTHCHECK,
    }
    data.update(overrides)
    return data


# What a stack on a shared, loaded Docker Engine cannot leave at its default: its own names, directory and ports, the
# stand-in images and the health check a starved simulator needs.
SHARED_ENGINE_NEEDS = ("acestream_vpn_mode", "acestream_pool_name", "acestream_stack_dir", "acestream_docker_network",
                       "acestream_port_range_host", "acestream_engine_replicas", "acestream_gluetun_image",
                       "acestream_gluetun_release", "acestream_gluetun_pull", "acestream_gluetun_capabilities",
                       "acestream_gluetun_devices", "acestream_engine_image", "acestream_gluetun_healthcheck")


def only_what_it_needs(variables):
    """The stack as a user's minimal inventory writes it: each Gluetun container's settings in its own env, every
    other optional variable (acestream_gluetun_env among them) left at its default."""
    shared_env = variables.get("acestream_gluetun_env", {})
    out = {name: variables[name] for name in SHARED_ENGINE_NEEDS if name in variables}
    out["acestream_gluetun_containers"] = [{**item, "env": {**shared_env, **item.get("env", {})}}
                                           for item in variables["acestream_gluetun_containers"]]
    return out


def with_app(variables, **env):
    """The stack with the orchestrator app on, played by the orchestrator-app simulator (it starts the engine
    simulator image for every variant); ``env`` adds to the app's environment."""
    # The simulated delays of the real app, short: the health manager's replacements 1 s after a fault, then every
    # 2 s, an engine starting for 3 s; a shutdown of 1 s (the image's default, 12 s, outlasts Docker's 10 s as v1.7.3's does).
    app_env = {"APP_SIM_ENGINE_IMAGE": ENGINE_IMAGE, "APP_SIM_INTERVAL": "1", "APP_SIM_REPLACE_DELAY_S": "1",
               "APP_SIM_REPLACE_INTERVAL_S": "2", "APP_SIM_SHUTDOWN_S": "1", "APP_SIM_ENGINE_GRACE_S": "3"}
    app_env.update(env)
    variables.update({
        "acestream_orchestrator_enabled": True,
        "acestream_orchestrator_name": f"{variables['acestream_pool_name']}-app",
        "acestream_orchestrator_image": APP_IMAGE,
        # Like the real image, the simulator carries no version label: the release is given (the tag is a test's).
        "acestream_orchestrator_release": "v1.7.3",
        "acestream_orchestrator_port": free_port(),
        "acestream_orchestrator_env": app_env,
        "acestream_engine_image": "",  # the app runs its own engine images
    })
    return variables


@pytest.fixture
def stack(run_id, tmp_path, docker_api):
    """Factory of stack descriptions; whatever a run left of them is removed at the end."""
    made = []

    def make(**kwargs):
        variables = stack_vars(run_id, tmp_path, **kwargs)
        made.append(variables)
        return variables

    yield make
    for variables in made:
        remove_stack(docker_api, variables)


def write_playbook(tmp_path, roles=ROLES, check=False):
    play = {"name": "roles under test", "hosts": "localhost", "connection": "local", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "roles": [{"role": role} for role in roles]}
    if check:
        play.update({"check_mode": True, "diff": True})
    path = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    return path


def run_roles(tmp_path, variables, roles=ROLES, **kwargs):
    return run_playbook(playbook=write_playbook(tmp_path, roles), extra_vars=variables, **kwargs)


def run_collection_playbook(name, variables, tmp_path, **kwargs):
    """One of the collection's playbooks (playbooks/<name>.yml) on localhost with these variables."""
    inventory = tmp_path / f"inventory-{uuid.uuid4().hex[:4]}.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return run_playbook(playbook=ROOT / "playbooks" / f"{name}.yml", extra_vars=variables, inventory=inventory,
                        **kwargs)


def task_result(run, name, host="localhost"):
    """The result of the last task with this name (role tasks are listed as '<role> : <name>')."""
    for key in reversed(list(run.results)):
        if key == name or key.endswith(" : " + name):
            return run.results[key][host]
    raise KeyError(f"no task {name!r} in {list(run.results)}")


def failure_message(run):
    """The message of the last failed task (json callback; a failure rescued by a block comes before), or the output."""
    message = None
    for play in (run.data or {}).get("plays", []):
        for task in play.get("tasks", []):
            for result in task.get("hosts", {}).values():
                if not result.get("failed") or result.get("ignore_errors"):
                    continue
                message = result.get("msg", "")
                for item in result.get("results", []):
                    if item.get("failed"):
                        message = item.get("msg", "")
    return message if message is not None else run.stdout + run.stderr


def stack_containers(docker_api, variables):
    """Containers of the stack: its Gluetun containers and the pool's engines."""
    names = [c["name"] for c in variables["acestream_gluetun_containers"]]
    found = docker_api.containers(all=True, filters={"name": [f"^/{n}$" for n in names]})
    found += docker_api.containers(all=True, filters={"label": [f"acestream.pool={variables['acestream_pool_name']}"]})
    return {c["Id"]: c for c in found}


def remove_stack(docker_api, variables):
    """Remove what a test's stack left (engines first, then Gluetun, then the network)."""
    engines = docker_api.containers(all=True, filters={"label": [
        "acestream.managed-by=acestream.orchestrator.engine_pool", f"acestream.pool={variables['acestream_pool_name']}"]})
    for container in engines:
        docker_api.remove_container(container["Id"], force=True)
    for c in variables["acestream_gluetun_containers"]:
        for container in docker_api.containers(all=True, filters={"name": [f"^/{c['name']}$"]}):
            labels = container.get("Labels") or {}
            if labels.get("acestream.pool") == variables["acestream_pool_name"]:
                docker_api.remove_container(container["Id"], force=True)
    network = variables.get("acestream_docker_network")
    if network:
        for net in docker_api.networks(names=[network]):
            if net["Name"] == network:
                try:
                    docker_api.remove_network(net["Id"])
                except Exception:  # pylint: disable=broad-except  # still in use by a container of another test
                    pass


def file_mode(path):
    return oct(os.stat(path).st_mode & 0o777)


def dump(run):
    return json.dumps(run.data, indent=1)[:4000] if run.data else (run.stdout + run.stderr)[-4000:]
