# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live stack reshaped through its inventory, its ranges: the range grows (a VPN's new slice takes ports another
publishes now), then moves elsewhere and shrinks, each converged by one `site` run; and a host port held by a process
(not a container) refused before anything is touched, in check mode too. Its VPNs: test_roles_reshape.py."""

from __future__ import annotations

import socket

from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    dump,
    failure_message,
    run_collection_playbook,
    stack,
)
from conftest import free_port_range
from test_roles_reshape import converge, owned, published, site, stack_of  # noqa: F401 pylint: disable=unused-import


def test_the_range_grows_then_moves_and_shrinks_one_run_each(stack, owned, docker_api, tmp_path):
    """Grown, gluetun1's new slice takes ports gluetun2 publishes now: gluetun2 goes first, and one run converges
    (the first used to leave gluetun1 'created'). Then the range moves to other ports, smaller."""
    start, end = free_port_range(8)
    variables = stack(mode="redundant", replicas=2, acestream_port_range_host=f"{start}-{start + 5}")
    owned.append(variables["acestream_pool_name"])
    g1, g2 = (c["name"] for c in variables["acestream_gluetun_containers"])
    site(variables, tmp_path)

    grown = dict(variables, acestream_port_range_host=f"{start}-{end}")
    converge(grown, tmp_path, discipline=True, verify=False)
    assert published(docker_api, g1) == list(range(start, start + 4))
    assert published(docker_api, g2) == list(range(start + 4, end + 1))

    low, high = free_port_range(4)
    moved = dict(variables, acestream_port_range_host=f"{low}-{high}")
    converge(moved, tmp_path)
    assert published(docker_api, g1) == [low, low + 1] and published(docker_api, g2) == [low + 2, high]


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
