# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight checks of the roles: each misconfiguration of the port guide's Troubleshooting section fails the
run before anything changes, with a message that names the guide's fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from conftest import GLUETUN_IMAGE, assert_same_docker_state, docker_state, free_port, run_playbook
from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    failure_message,
    run_roles,
    stack,
    stack_containers,
)

pytestmark = pytest.mark.exclusive


def run_refused(docker_api, tmp_path, variables, **kwargs):
    """run_roles, with a snapshot of every container of the Docker Engine taken just before."""
    before = docker_state(docker_api)
    run = run_roles(tmp_path, variables, **kwargs)
    run.docker_before = before
    return run


def assert_refused(run, docker_api, variables, tmp_path, *phrases):
    """Failed, the message names the fix, and nothing changed: no container created, removed, changed or
    restarted (every container's ID and config compared), no file, no changed task."""
    message = failure_message(run)
    assert run.rc != 0, f"the run should have failed:\n{run.stdout[-3000:]}"
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in the failure message:\n{message}"
    assert run.changed == 0, f"{run.changed} task(s) changed before the failure"
    assert stack_containers(docker_api, variables) == {}, "containers were created"
    assert_same_docker_state(run.docker_before, docker_state(docker_api))
    assert not (tmp_path / "stack").exists(), "the stack directory was created"
    return message


def test_api_port_not_matching_http_control_server_address(stack, docker_api, tmp_path):
    variables = stack(mode="single")
    variables["acestream_gluetun_containers"][0]["env"]["HTTP_CONTROL_SERVER_ADDRESS"] = ":8002"
    run = run_refused(docker_api, tmp_path, variables)
    message = assert_refused(run, docker_api, variables, tmp_path,
                             "Verify GLUETUN_API_PORT matches HTTP_CONTROL_SERVER_ADDRESS",
                             "Use the internal port, not the external port")
    assert ":8002" in message and "8001" in message


def test_overlapping_engine_ranges(stack, docker_api, tmp_path):
    variables = stack()
    first, second = (c["name"] for c in variables["acestream_gluetun_containers"])
    start = int(variables["acestream_port_range_host"].split("-")[0])
    variables["acestream_vpn_port_ranges"] = {first: f"{start}-{start + 3}", second: f"{start + 2}-{start + 5}"}
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "overlap", "Ensure ranges don't overlap")


def test_engine_range_outside_the_published_range(stack, docker_api, tmp_path):
    variables = stack()
    first, second = (c["name"] for c in variables["acestream_gluetun_containers"])
    start, end = (int(p) for p in variables["acestream_port_range_host"].split("-"))
    variables["acestream_vpn_port_ranges"] = {first: f"{start}-{start + 2}", second: f"{end + 1}-{end + 3}"}
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "outside",
                   "Check that PORT_RANGE_HOST matches Gluetun port mappings")


def test_range_smaller_than_the_replicas(stack, docker_api, tmp_path):
    variables = stack(replicas=9, range_size=6)
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "9 engines exceed",
                   "Choose a range that can accommodate your MAX_REPLICAS setting")


def test_control_server_and_orchestrator_app_on_the_same_host_port(stack, docker_api, tmp_path):
    variables = stack(mode="single")
    port = free_port()
    variables["acestream_gluetun_containers"][0]["api_host_port"] = port
    variables.update({"acestream_orchestrator_enabled": True, "acestream_orchestrator_port": port,
                      "acestream_engine_replicas": 0})
    run = run_refused(docker_api, tmp_path, variables)
    message = assert_refused(run, docker_api, variables, tmp_path, "port is already allocated",
                             "Ensure no overlap between different services")
    assert f"both publish host port {port}" in message


def test_control_server_inside_the_engine_range(stack, docker_api, tmp_path):
    variables = stack(mode="single")
    start = int(variables["acestream_port_range_host"].split("-")[0])
    variables["acestream_gluetun_containers"][0]["api_host_port"] = start + 1
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "port is already allocated", f"host port {start + 1}")


def test_host_port_held_by_another_container(stack, docker_api, tmp_path, gluetun_sim):
    variables = stack(mode="single")
    start = int(variables["acestream_port_range_host"].split("-")[0])
    other = gluetun_sim(engine_range=(start + 2, start + 2), wait_healthy=False)
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "port is already allocated",
                   f"host port {start + 2}", f"already published by container {other.name}",
                   "Check if another container is using the same ports")


def test_redundant_mode_without_a_second_container(stack, docker_api, tmp_path):
    variables = stack(mode="single")
    variables["acestream_vpn_mode"] = "redundant"
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "needs a second Gluetun container",
                   "Verify GLUETUN_CONTAINER_NAME_2 is configured")


def test_redundant_mode_with_the_second_name_repeated(stack, docker_api, tmp_path):
    variables = stack()
    containers = variables["acestream_gluetun_containers"]
    containers[1]["name"] = containers[0]["name"]
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "GLUETUN_CONTAINER_NAME_2 repeats GLUETUN_CONTAINER_NAME")


def test_single_mode_with_two_containers(stack, docker_api, tmp_path):
    variables = stack()
    variables["acestream_vpn_mode"] = "single"
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "VPN_MODE=single", "takes exactly one Gluetun container")


def test_unknown_gluetun_release(stack, docker_api, tmp_path):
    variables = stack(mode="single", release="v3.42.0")
    variables["acestream_gluetun_env"]["GLUETUN_SIM_VERSION"] = "v3.41.1"
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "v3.42.0", "set acestream_gluetun_release")


def test_no_docker_engine_answering(stack, docker_api, tmp_path):
    variables = stack(mode="single", acestream_docker_host=f"unix://{tmp_path}/no-docker.sock")
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "No Docker Engine answers",
                   f"unix://{tmp_path}/no-docker.sock", "apt-get install docker.io")


def test_python_without_the_docker_sdk(stack, docker_api, tmp_path):
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    variables = stack(mode="single", ansible_python_interpreter=str(venv / "bin" / "python3"))
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "Docker SDK for Python is missing",
                   str(venv / "bin" / "python3"), "pip install 'docker>=5.0.0'", "acestream_docker_sdk_install: true")


@pytest.mark.parametrize("roles", [("acestream.orchestrator.gluetun",), ("acestream.orchestrator.orchestrator_app",)])
def test_target_checks_off_is_refused_by_the_roles_that_read_the_containers(stack, docker_api, tmp_path, roles):
    """acestream_target_checks false is for engine-only converges: the gluetun and app roles need the target's
    containers (ownership, what to remove) and refuse it, naming the variable and both ways out."""
    variables = stack(mode="single", acestream_target_checks=False)
    run = run_refused(docker_api, tmp_path, variables, roles=roles)
    assert_refused(run, docker_api, variables, tmp_path, "acestream_target_checks is false",
                   "set acestream_target_checks: true", "acestream.orchestrator.converge_engines")


def test_engine_only_converge_without_target_checks_names_a_missing_vpn(stack, docker_api, tmp_path):
    """Without the target probes the engines role still refuses a missing Gluetun container, by its name."""
    variables = stack(mode="single", acestream_target_checks=False, acestream_engine_vpn_wait_timeout=0)
    run = run_refused(docker_api, tmp_path, variables, roles=("acestream.orchestrator.engines",))
    assert_refused(run, docker_api, variables, tmp_path, variables["acestream_gluetun_containers"][0]["name"])


def test_target_read_runs_with_the_interpreter_ansible_discovered(stack, docker_api, tmp_path):
    """No ansible_python_interpreter (as in most inventories): the one read of the target (module stack_host) runs
    with the Python Ansible discovered and tells whether it has the Docker SDK, without a fact-gathering call."""
    variables = stack(mode="single")
    playbook = tmp_path / "common-only.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "common role, interpreter discovered", "hosts": "localhost", "connection": "local",
        "gather_facts": False, "roles": [{"role": "acestream.orchestrator.common"}],
        "tasks": [{"name": "Show the SDK", "ansible.builtin.debug": {"var": "_acestream_docker_info.sdk"}},
                  {"name": "Show the interpreter", "ansible.builtin.debug": {
                      "var": "ansible_facts.discovered_interpreter_python"}}]}]))
    before = docker_state(docker_api)
    run = run_playbook(playbook=playbook, extra_vars=variables)
    assert not any("setup" in key or "gather" in key.lower() for key in run.results), list(run.results)
    if run.rc == 0:
        sdk = run.results["Show the SDK"]["localhost"]["_acestream_docker_info.sdk"]
        discovered = run.results["Show the interpreter"]["localhost"]["ansible_facts.discovered_interpreter_python"]
        assert sdk["present"] and sdk["error"] is None
        assert os.path.realpath(sdk["python"]) == os.path.realpath(discovered)
    else:  # that Python has no Docker SDK, or does not run (a pyenv shim of a missing release): refused, naming it
        message = failure_message(run)
        assert ("Docker SDK for Python is missing from /" in message
                or "cannot run on localhost with the Python Ansible uses there (/" in message), message
    assert run.changed == 0
    assert_same_docker_state(before, docker_state(docker_api))


def test_engines_role_against_a_gluetun_publishing_another_range(stack, docker_api, tmp_path, gluetun_sim):
    """The engines role alone, against Gluetun containers someone else deployed with the wrong port mapping."""
    variables = stack(mode="single", replicas=1)
    start, end = (int(p) for p in variables["acestream_port_range_host"].split("-"))
    vpn = gluetun_sim(version="v3.41.1", api_port=8001, engine_range=(start, end - 2))
    variables["acestream_gluetun_containers"] = [{"name": vpn.name, "api_host_port": vpn.api_host_port, "env": {}}]
    variables["acestream_gluetun_api_key"] = ""
    run = run_refused(docker_api, tmp_path, variables, roles=("acestream.orchestrator.engines",))
    message = failure_message(run)
    assert run.rc != 0
    assert "Port Range Mismatch" in message, message
    assert run.changed == 0
    engines = docker_api.containers(all=True, filters={"label": [f"acestream.pool={variables['acestream_pool_name']}"]})
    assert engines == []
    assert_same_docker_state(run.docker_before, docker_state(docker_api))


# --------------------------------------------------------------------------------------- hostile input (#17)
SECRET = "wg-Secret-Never-Shown-0042"


def test_values_the_roles_cannot_use_as_given(stack, docker_api, tmp_path):
    """Values that argument validation would convert but the roles use as given: a list as the API key, a NUL in a
    secret env value, a null env value, non-ASCII digits, a trailing newline, a bad regular expression, a string
    for a boolean. All named in one refusal, no value shown, before anything changes."""
    variables = stack(mode="single")
    variables["acestream_gluetun_api_key"] = [SECRET, "b"]
    variables["acestream_gluetun_containers"][0]["env"]["WIREGUARD_PRIVATE_KEY"] = SECRET + "\x00"
    variables["acestream_engine_env"] = {"TZ": None}
    variables["acestream_engine_replicas"] = "２"
    variables["acestream_orchestrator_name"] = "app\n"
    variables["acestream_secret_env_pattern"] = "(KEY"
    variables["acestream_docker_sdk_install"] = "false"
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path,
                   "acestream_gluetun_api_key must be a string ('' for none), not a list",
                   "acestream_engine_env: TZ is null (a key with no value)",
                   "acestream_engine_replicas must be a whole number written with the digits 0-9",
                   "acestream_orchestrator_name holds a control character",
                   "acestream_secret_env_pattern is not a regular expression",
                   "acestream_docker_sdk_install is a string, not a boolean")
    assert SECRET not in run.stdout + run.stderr


def test_nul_in_a_secret_env_value(stack, docker_api, tmp_path):
    """A NUL in a Gluetun container's secret env value is refused naming the variable: Docker would otherwise quote
    the value in its refusal, after the container was created."""
    variables = stack(mode="single")
    variables["acestream_gluetun_containers"][0]["env"]["WIREGUARD_PRIVATE_KEY"] = SECRET + "\x00"
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "The env of Gluetun container",
                   "WIREGUARD_PRIVATE_KEY holds a NUL character")
    assert SECRET not in run.stdout + run.stderr


@pytest.mark.parametrize("port", [-18951, 0, 70000, "8001x"])
def test_api_host_port_out_of_range(stack, docker_api, tmp_path, port):
    """Every port-like input is a whole number in 1-65535 before any change (a running Gluetun container is never
    removed for a port Docker then refuses)."""
    variables = stack(mode="single")
    variables["acestream_gluetun_containers"][0]["api_host_port"] = port
    run = run_refused(docker_api, tmp_path, variables)
    message = failure_message(run)
    assert run.rc != 0 and run.changed == 0
    # 70000 and friends: the port plan's words; '8001x': the role's argument validation, which runs first.
    assert "api_host_port" in message and ("outside 1-65535" in message or "unable to convert to int" in message), \
        message
    assert_same_docker_state(run.docker_before, docker_state(docker_api))


@pytest.mark.parametrize("case", ["https range holds 9999", "engine env sets HTTP_PORT", "engine env name with ="])
def test_engine_pool_checks_run_before_gluetun_is_created(stack, docker_api, tmp_path, case):
    """What engine_pool refuses is refused by the preflight, before the Gluetun containers and files exist."""
    variables = stack(mode="single")
    expected = {
        "https range holds 9999": ("acestream_engine_https_port_range", {"acestream_engine_https_port_range": "9990-9999"},
                                   "includes port 9999, Gluetun's health server"),
        "engine env sets HTTP_PORT": ("acestream_engine_env", {"acestream_engine_env": {"HTTP_PORT": "6878"}},
                                      "HTTP_PORT is set by the pool from the engine's slot"),
        "engine env name with =": ("acestream_engine_env", {"acestream_engine_env": {"A=B": "1"}},
                                   "'A=B' is not an environment variable name"),
    }[case]
    variables.update(expected[1])
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, expected[0], expected[2])


def test_names_colliding_inside_the_stack(stack, docker_api, tmp_path):
    """The orchestrator app named like a Gluetun container (it would replace the VPN) and a Gluetun container named
    like an engine slot are refused by the preflight."""
    variables = stack(mode="single")
    variables.update({"acestream_orchestrator_enabled": True, "acestream_engine_replicas": 0,
                      "acestream_orchestrator_port": free_port(),
                      "acestream_orchestrator_name": variables["acestream_gluetun_containers"][0]["name"]})
    run = run_refused(docker_api, tmp_path, variables)
    assert_refused(run, docker_api, variables, tmp_path, "The orchestrator app (acestream_orchestrator_name) is named",
                   "like a Gluetun container")

    variables = stack()
    start = int(variables["acestream_port_range_host"].split("-")[0])
    gluetun = variables["acestream_gluetun_containers"][0]["name"]
    variables["acestream_pool_name"] = "pool"
    variables["acestream_gluetun_containers"][1]["name"] = f"pool-{gluetun}-{start}"
    run = run_refused(docker_api, tmp_path, variables)
    message = failure_message(run)
    assert run.rc != 0 and run.changed == 0
    assert f"pool-{gluetun}-{start}" in message and "has the name of the engine of pool 'pool'" in message, message
    assert_same_docker_state(run.docker_before, docker_state(docker_api))


@pytest.mark.parametrize("owner", ["made by hand", "another stack"])
def test_gluetun_name_held_by_a_container_the_stack_does_not_own(stack, docker_api, tmp_path, gluetun_sim, owner):
    """A container holding a Gluetun name of the stack without the stack's labels - made by hand, or another stack's
    Gluetun container - is never replaced: refused, naming the container and its owner (two stacks would otherwise
    take it from each other on every run)."""
    variables = stack(mode="single")
    name = variables["acestream_gluetun_containers"][0]["name"]
    labels = {} if owner == "made by hand" else {"acestream.managed-by": "acestream.orchestrator.gluetun",
                                                 "acestream.pool": "other-stack"}
    docker_api.create_container(GLUETUN_IMAGE, name=name, labels=labels, command=["sleep", "600"],
                                entrypoint=["/bin/sh", "-c", "exec \"$@\"", "sh"])
    try:
        run = run_refused(docker_api, tmp_path, variables)
        message = failure_message(run)
        assert run.rc != 0 and run.changed == 0, message
        assert f"Container '{name}' (acestream_gluetun_containers) is not this stack's" in message, message
        assert ("it carries no acestream.managed-by label" if owner == "made by hand"
                else "it is the Gluetun container of stack 'other-stack'") in message, message
        assert_same_docker_state(run.docker_before, docker_state(docker_api))
        assert not (tmp_path / "stack").exists()
    finally:
        docker_api.remove_container(name, force=True)
