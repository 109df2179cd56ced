# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live stack reshaped through its inventory: a VPN dropped, added back, renamed, the range grown, shrunk and
moved, each converged by one `site` run (the next one changes nothing, check mode predicts the change and then
none), with nothing of the old shape left (containers, engines, the VPN's credentials); `absent` removing what the
stack owns whatever the inventory lists; and a host port held by a process (not a container) refused before
anything is touched, in check mode too."""

from __future__ import annotations

import copy
import socket

import pytest

from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    dump,
    failure_message,
    run_collection_playbook,
    stack,
)
from conftest import free_port_range


@pytest.fixture
def owned(docker_api):
    """Pool names whose labelled containers are removed at the end, whatever their names became."""
    pools = []
    yield pools
    for pool in pools:
        for container in docker_api.containers(all=True, filters={"label": [f"acestream.pool={pool}"]}):
            docker_api.remove_container(container["Id"], force=True)


def stack_of(docker_api, pool):
    """The stack's containers by name, found by its label alone: ``{name: container}``."""
    found = docker_api.containers(all=True, filters={"label": [f"acestream.pool={pool}"]})
    return {c["Names"][0].lstrip("/"): c for c in found}


def gluetun_of(containers):
    return sorted(n for n, c in containers.items()
                  if c["Labels"].get("acestream.managed-by") == "acestream.orchestrator.gluetun")


def engines_by_vpn(containers):
    out = {}
    for c in containers.values():
        if c["Labels"].get("acestream.managed-by") == "acestream.orchestrator.engine_pool":
            out.setdefault(c["Labels"]["acestream.vpn"], []).append(int(c["Labels"]["acestream.http-port"]))
    return {vpn: sorted(ports) for vpn, ports in out.items()}


def published(docker_api, name):
    ports = docker_api.inspect_container(name)["HostConfig"]["PortBindings"] or {}
    return sorted(int(binding["HostPort"]) for spec, bindings in ports.items() for binding in bindings
                  if spec.endswith("/tcp") and int(spec.split("/")[0]) != 8001)


def secrets_gone(stack_dir, name):
    """The VPN's env file (its credentials) and auth directory (the API key) are gone; its state directory is kept
    (acestream_gluetun_state_keep, the default), so that the VPN coming back keeps PIA's port data."""
    directory = stack_dir / "gluetun" / name
    return not (directory / "gluetun.env").exists() and not (directory / "auth").exists()


def site(variables, tmp_path, check=False):
    run = run_collection_playbook("site", variables, tmp_path, check=check, diff=check)
    assert run.rc == 0, dump(run)
    return run


def converge(variables, tmp_path, discipline=False):
    """One site run converges the change (check mode before it predicts a change; after it, none)."""
    if discipline:
        assert site(variables, tmp_path, check=True).changed > 0
    assert site(variables, tmp_path).changed > 0
    again = site(variables, tmp_path)
    assert again.changed == 0, dump(again)
    if discipline:
        assert site(variables, tmp_path, check=True).changed == 0
    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc == 0, dump(verify)


def test_a_redundant_stack_reshaped_in_every_direction_one_run_each(stack, owned, docker_api, tmp_path):
    start, end = free_port_range(8)
    variables = stack(mode="redundant", replicas=2, acestream_port_range_host=f"{start}-{start + 5}")
    pool, stack_dir = variables["acestream_pool_name"], tmp_path / "stack"
    owned.append(pool)
    g1, g2 = (dict(c) for c in variables["acestream_gluetun_containers"])
    converge(variables, tmp_path)
    assert engines_by_vpn(stack_of(docker_api, pool)) == {g1["name"]: [start], g2["name"]: [start + 3]}

    # Redundant to single on the same range: gluetun1 takes the whole range, gluetun2's half included. drift names
    # the Gluetun side (gluetun2 to remove) before the run.
    single = dict(copy.deepcopy(variables), acestream_vpn_mode="single", acestream_gluetun_containers=[g1])
    drift = run_collection_playbook("drift", single, tmp_path, json_output=False)
    assert drift.rc == 0 and "Drift on localhost in: gluetun" in drift.stdout, drift.stdout[-3000:]
    converge(single, tmp_path, discipline=True)
    now = stack_of(docker_api, pool)
    assert gluetun_of(now) == [g1["name"]]
    assert engines_by_vpn(now) == {g1["name"]: [start, start + 1]}
    assert published(docker_api, g1["name"]) == list(range(start, start + 6))
    assert secrets_gone(stack_dir, g2["name"]), "gluetun2's env and auth files (its secrets) are gone"

    # And back: single to redundant on the same range.
    converge(variables, tmp_path)
    assert gluetun_of(stack_of(docker_api, pool)) == sorted([g1["name"], g2["name"]])

    # gluetun2 renamed: the new name takes its place and its ports, the old one leaves nothing.
    g3 = dict(g2, name=g2["name"].replace("gluetun2", "gluetun3"))
    renamed = dict(copy.deepcopy(variables), acestream_gluetun_containers=[g1, g3])
    converge(renamed, tmp_path)
    now = stack_of(docker_api, pool)
    assert gluetun_of(now) == sorted([g1["name"], g3["name"]]) and set(engines_by_vpn(now)) == {g1["name"], g3["name"]}
    assert secrets_gone(stack_dir, g2["name"])
    assert (stack_dir / "gluetun" / g3["name"] / "gluetun.env").exists()

    # The range grows: gluetun1's new slice takes ports gluetun2 (here gluetun3) publishes now.
    grown = dict(renamed, acestream_port_range_host=f"{start}-{end}")
    converge(grown, tmp_path, discipline=True)
    assert published(docker_api, g1["name"]) == list(range(start, start + 4))
    assert published(docker_api, g3["name"]) == list(range(start + 4, end + 1))

    # It shrinks back, then moves elsewhere.
    converge(renamed, tmp_path)
    low, high = free_port_range(6)
    moved = dict(renamed, acestream_port_range_host=f"{low}-{high}")
    converge(moved, tmp_path)
    assert published(docker_api, g3["name"]) == list(range(low + 3, high + 1))

    # absent with an inventory that names only gluetun1: the stack's containers and files go all the same.
    down = run_collection_playbook("site", dict(moved, acestream_state="absent", acestream_vpn_mode="single",
                                                acestream_gluetun_containers=[g1], acestream_gluetun_state_keep=False),
                                   tmp_path)
    assert down.rc == 0, dump(down)
    assert stack_of(docker_api, pool) == {}
    assert not (stack_dir / "gluetun").exists()


def test_a_host_port_held_by_a_process_is_refused_before_anything_changes(stack, docker_api, tmp_path):
    """A process (not a container) listening on a port the new layout publishes: Docker would refuse it only once
    the running Gluetun container was removed. The preflight finds it first, in check mode too, and nothing
    changes; once the port is free, one run converges."""
    variables = stack(mode="single", replicas=1, range_size=3)
    pool = variables["acestream_pool_name"]
    site(variables, tmp_path)
    before = {n: (c["Id"], c["State"]) for n, c in stack_of(docker_api, pool).items()}
    low, high = free_port_range(3)
    moved = dict(variables, acestream_port_range_host=f"{low}-{high}")
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", low + 1))
        holder.listen()
        for check in (True, False):
            run = run_collection_playbook("site", moved, tmp_path, check=check)
            assert run.rc != 0, dump(run)
            message = failure_message(run)
            assert message.startswith(
                'Docker would refuse with "address already in use": host port %d (the engine ports of %s (%d-%d)) is '
                "held by a process on the Docker host, not a container (find it with: ss -ltnp 'sport = :%d')"
                % (low + 1, variables["acestream_gluetun_containers"][0]["name"], low, high, low + 1)), message
            assert {n: (c["Id"], c["State"]) for n, c in stack_of(docker_api, pool).items()} == before
    finally:
        holder.close()
    converge(moved, tmp_path)


def test_the_stacks_own_leftover_is_never_called_another_container(stack, docker_api, tmp_path):
    """A VPN dropped while its ports are reused by the new layout: the preflight knows the leftover is the stack's own
    (its labels) and the run removes it, where a stranger's container on those ports is refused as before."""
    variables = stack(mode="redundant", replicas=1, range_size=4)
    pool = variables["acestream_pool_name"]
    site(variables, tmp_path)
    g1, g2 = variables["acestream_gluetun_containers"]
    # The new single VPN takes gluetun2's control-server port as well.
    single = dict(variables, acestream_vpn_mode="single",
                  acestream_gluetun_containers=[dict(g1, api_host_port=g2["api_host_port"])])
    run = site(single, tmp_path)
    assert "another container" not in run.stdout and gluetun_of(stack_of(docker_api, pool)) == [g1["name"]]
    assert secrets_gone(tmp_path / "stack", g2["name"])
