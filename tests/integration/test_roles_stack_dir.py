# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack directory on a shared host: one that exists keeps its mode (a shared 1777 one its sticky bit, a private
0700 one is not widened) through site and absent, which removes only the stack's own files and directories; one
that cannot be made (its parent is a regular file) fails with the path and the fix before any container exists.

The orchestrator app is played by the orchestrator-app simulator image (no registry is reachable here), so both roles
that write into the stack directory run."""

from __future__ import annotations

import os
import stat

import pytest

from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    dump,
    failure_message,
    run_roles,
    stack,
    stack_containers,
    with_app,
)

ROLES = ("acestream.orchestrator.gluetun", "acestream.orchestrator.orchestrator_app")


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("mode", [0o1777, 0o700])
def test_an_existing_stack_dir_keeps_its_mode_across_site_and_absent(stack, docker_api, tmp_path, mode):
    variables = with_app(stack(mode="single", replicas=1, range_size=2))
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    os.chmod(stack_dir, mode)
    (stack_dir / "users-notes").write_text("the user's own file\n")
    app = variables["acestream_orchestrator_name"]
    try:
        site = run_roles(tmp_path, variables, roles=ROLES)
        assert site.rc == 0, dump(site)
        assert mode_of(stack_dir) == mode
        assert mode_of(stack_dir / "gluetun") == 0o700
        name = variables["acestream_gluetun_containers"][0]["name"]
        assert mode_of(stack_dir / "gluetun" / name) == 0o700
        assert mode_of(stack_dir / "gluetun" / name / "gluetun.env") == 0o600
        assert mode_of(stack_dir / "orchestrator.env") == 0o600

        down = run_roles(tmp_path, {**variables, "acestream_state": "absent", "acestream_gluetun_state_keep": False},
                         roles=ROLES)
        assert down.rc == 0, dump(down)
        assert stack_containers(docker_api, variables) == {}
        assert docker_api.containers(all=True, filters={"name": [f"^/{app}$"]}) == []
        assert sorted(p.name for p in stack_dir.iterdir()) == ["users-notes"]
        assert (stack_dir / "users-notes").read_text() == "the user's own file\n"
        assert mode_of(stack_dir) == mode
    finally:
        for container in docker_api.containers(all=True, filters={"name": [f"^/{app}$"]}) + docker_api.containers(
                all=True, filters={"label": [f"acestream.app-pool={variables['acestream_pool_name']}"]}):
            docker_api.remove_container(container["Id"], force=True)


def test_absent_leaves_a_gluetun_directory_holding_files_of_the_user(stack, docker_api, tmp_path):
    variables = stack(mode="single", replicas=1, range_size=2)
    site = run_roles(tmp_path, variables, roles=ROLES[:1])
    assert site.rc == 0, dump(site)
    users = tmp_path / "stack" / "gluetun" / "servers.json"
    users.write_text("{}\n")
    down = run_roles(tmp_path, {**variables, "acestream_state": "absent", "acestream_gluetun_state_keep": False},
                     roles=ROLES[:1])
    assert down.rc == 0, dump(down)
    assert sorted(p.name for p in (tmp_path / "stack" / "gluetun").iterdir()) == ["servers.json"]
    assert f"{tmp_path}/stack/gluetun left in place: not empty" in down.stdout + down.stderr
    assert stack_containers(docker_api, variables) == {}


def test_a_stack_dir_below_a_regular_file_fails_before_any_container(stack, docker_api, tmp_path):
    variables = stack(mode="single", replicas=1, range_size=2)
    blocker = tmp_path / "opt"
    blocker.write_text("a regular file where a directory should be\n")
    variables["acestream_stack_dir"] = str(blocker / "stack")
    run = run_roles(tmp_path, variables)
    message = failure_message(run)
    assert run.rc != 0, dump(run)
    assert f"{blocker}/stack is below {blocker}, which is a regular file, not a directory: move it away" in message
    assert "Traceback" not in run.stdout + run.stderr
    assert run.changed == 0, dump(run)
    assert stack_containers(docker_api, variables) == {}
    assert docker_api.networks(names=[variables["acestream_docker_network"]]) == []
    assert blocker.read_text() == "a regular file where a directory should be\n"


def exec_in(docker_api, container, command):
    run = docker_api.exec_create(container, ["sh", "-c", command])
    output = docker_api.exec_start(run["Id"]).decode()
    assert docker_api.exec_inspect(run["Id"])["ExitCode"] == 0, output
    return output


def test_each_gluetun_keeps_its_own_state_across_a_recreate_and_absent(stack, docker_api, tmp_path):
    """Each Gluetun container has its own state directory at /gluetun (never shared): what Gluetun keeps there
    (PIA's port-forwarding data) survives a re-create by the role and, by default, acestream_state: absent."""
    variables = stack(mode="redundant", range_size=4)
    names = [c["name"] for c in variables["acestream_gluetun_containers"]]
    state = {name: tmp_path / "stack" / "gluetun" / name / "state" for name in names}
    site = run_roles(tmp_path, variables, roles=ROLES[:1])
    assert site.rc == 0, dump(site)
    sources = {}
    for name in names:
        mounts = {m["Destination"]: m for m in docker_api.inspect_container(name)["Mounts"]}
        sources[name] = mounts["/gluetun"]["Source"]
        assert sources[name] == str(state[name]) and mounts["/gluetun"]["RW"]
        assert mounts["/gluetun/auth"]["RW"] is False
        assert mode_of(state[name]) == 0o700
    assert len(set(sources.values())) == len(names), f"two VPNs share a state directory: {sources}"

    first = names[0]
    exec_in(docker_api, first, "echo '{\"port\": 51820}' > /gluetun/piaportforward.json")
    old_id = docker_api.inspect_container(first)["Id"]
    changed = {**variables, "acestream_gluetun_env": {**variables["acestream_gluetun_env"], "TZ": "Europe/Paris"}}
    again = run_roles(tmp_path, changed, roles=ROLES[:1])
    assert again.rc == 0, dump(again)
    assert docker_api.inspect_container(first)["Id"] != old_id, "the environment change re-creates the container"
    assert exec_in(docker_api, first, "cat /gluetun/piaportforward.json") == '{"port": 51820}\n'
    assert not (state[names[1]] / "piaportforward.json").exists()
    noop = run_roles(tmp_path, changed, roles=ROLES[:1])
    assert noop.rc == 0 and noop.changed == 0, dump(noop)

    down = run_roles(tmp_path, {**changed, "acestream_state": "absent"}, roles=ROLES[:1])
    assert down.rc == 0, dump(down)
    assert stack_containers(docker_api, variables) == {}
    assert (state[first] / "piaportforward.json").read_text() == '{"port": 51820}\n'
    assert not (tmp_path / "stack" / "gluetun" / first / "gluetun.env").exists()
    assert f"{tmp_path}/stack/gluetun/{first} left in place: not empty" in down.stdout + down.stderr
    back = run_roles(tmp_path, changed, roles=ROLES[:1])
    assert back.rc == 0, dump(back)
    assert exec_in(docker_api, first, "cat /gluetun/piaportforward.json") == '{"port": 51820}\n'

    gone = run_roles(tmp_path, {**changed, "acestream_state": "absent", "acestream_gluetun_state_keep": False},
                     roles=ROLES[:1])
    assert gone.rc == 0, dump(gone)
    assert not (tmp_path / "stack" / "gluetun").exists()
