# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live stack reshaped through its inventory, its VPNs: one dropped (redundant to single on the same range), added
back, renamed, each converged by one `site` run (the next one changes nothing, check mode predicts the change and
then none), with nothing of the old shape left (containers, engines, the VPN's credentials); `absent` removing what
the stack owns whatever the inventory lists; the stack's own leftover never taken for another container. Its
ranges: test_roles_reshape_ranges.py."""

from __future__ import annotations

import copy

import pytest

from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    dump,
    run_collection_playbook,
    stack,
)


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


def converge(variables, tmp_path, discipline=False, verify=True):
    """One site run converges the change, the next changes nothing (with ``discipline``, check mode before it
    predicts a change and after it none); then verify passes."""
    if discipline:
        assert site(variables, tmp_path, check=True).changed > 0
    assert site(variables, tmp_path).changed > 0
    again = site(variables, tmp_path)
    assert again.changed == 0, dump(again)
    if discipline:
        assert site(variables, tmp_path, check=True).changed == 0
    if verify:
        checked = run_collection_playbook("verify", variables, tmp_path)
        assert checked.rc == 0, dump(checked)


def test_vpns_dropped_added_back_and_renamed_one_run_each_and_absent_takes_all(stack, owned, docker_api, tmp_path):
    """Redundant to single on the same range, back to redundant, a VPN renamed: each converged by one site run,
    nothing of the old shape left; absent with an inventory naming one VPN removes every container and file of the
    stack."""
    variables = stack(mode="redundant", replicas=2, range_size=6)
    start = int(variables["acestream_port_range_host"].split("-")[0])
    pool, stack_dir = variables["acestream_pool_name"], tmp_path / "stack"
    owned.append(pool)
    g1, g2 = (dict(c) for c in variables["acestream_gluetun_containers"])
    site(variables, tmp_path)
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
    converge(variables, tmp_path, verify=False)
    assert gluetun_of(stack_of(docker_api, pool)) == sorted([g1["name"], g2["name"]])

    # gluetun2 renamed: the new name takes its place and its ports, the old one leaves nothing.
    g3 = dict(g2, name=g2["name"].replace("gluetun2", "gluetun3"))
    renamed = dict(copy.deepcopy(variables), acestream_gluetun_containers=[g1, g3])
    converge(renamed, tmp_path)
    now = stack_of(docker_api, pool)
    assert gluetun_of(now) == sorted([g1["name"], g3["name"]]) and set(engines_by_vpn(now)) == {g1["name"], g3["name"]}
    assert secrets_gone(stack_dir, g2["name"])
    assert (stack_dir / "gluetun" / g3["name"] / "gluetun.env").exists()

    # absent with an inventory that names only gluetun1: the stack's containers and files go all the same.
    down = run_collection_playbook("site", dict(renamed, acestream_state="absent", acestream_vpn_mode="single",
                                                acestream_gluetun_containers=[g1], acestream_gluetun_state_keep=False),
                                   tmp_path)
    assert down.rc == 0, dump(down)
    assert stack_of(docker_api, pool) == {}
    assert not (stack_dir / "gluetun").exists()


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
