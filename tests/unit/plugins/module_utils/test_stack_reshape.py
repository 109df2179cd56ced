# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a stack owns, what goes before its Gluetun containers are converged, and the host's listening sockets."""

from __future__ import annotations

import pytest

from ansible_collections.acestream.orchestrator.plugins.module_utils import _host_ports as host_ports
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_reshape as reshape

POOL = "ace"
GLUETUN = {"acestream.managed-by": "acestream.orchestrator.gluetun", "acestream.pool": POOL}


def container(name, labels=None, ports=(), ip="127.0.0.1", state="running"):
    return {"Names": ["/" + name], "Labels": dict(labels or {}), "State": state,
            "Ports": [{"IP": ip, "PrivatePort": p, "PublicPort": p, "Type": "tcp"} for p in ports]}


def engine(name, vpn, pool=POOL):
    return container(name, {"acestream.managed-by": "acestream.orchestrator.engine_pool", "acestream.pool": pool,
                            "acestream.vpn": vpn})


def instance(name, api, start, end, bind="127.0.0.1"):
    return {"name": name, "published": ["%s:%d:8001" % (bind, api), "%s:%d-%d:%d-%d" % (bind, start, end, start, end)]}


def test_owner_by_labels_only():
    assert reshape.owner(GLUETUN, POOL) == "gluetun"
    assert reshape.owner(dict(GLUETUN, **{"acestream.pool": "other"}), POOL) is None
    assert reshape.owner({"acestream.managed-by": "acestream.orchestrator.orchestrator_app", "acestream.pool": POOL},
                         POOL) == "app"
    assert reshape.owner(engine("e", "g1")["Labels"], POOL) == "engine"
    assert reshape.owner({"acestream.app-pool": POOL, "acestream.vpn_container": "g1"}, POOL) == "app_engine"
    assert reshape.owner({}, POOL) is None and reshape.owner(None, POOL) is None


def test_a_dropped_vpn_is_a_leftover_with_its_engines_and_files_and_goes_first():
    """Redundant to single on the same range: gluetun2 is the stack's (labels) and no longer named; its engines, its
    container and its secrets go before gluetun1 is re-created over its old ports."""
    containers = [container("g1", GLUETUN, [8001] + list(range(100, 103))),
                  container("g2", GLUETUN, [8002] + list(range(103, 106))),
                  engine("ace-g1-100", "g1"), engine("ace-g2-103", "g2"), engine("other-g2-103", "g2", pool="other"),
                  container("stranger", {}, [9000])]
    out = reshape.gluetun_reshape(containers, POOL, [instance("g1", 8001, 100, 105)], "/srv/stack/",
                                  vpn_dirs=["/srv/stack/gluetun/g1", "/srv/stack/gluetun/g2"])
    assert out["leftovers"] == ["g2"]
    assert out["engines"] == ["ace-g2-103"]
    assert out["remove_first"] == []  # g1's own ports grow: only the leftover stood in its way
    assert out["absent"] == ["/srv/stack/gluetun/g2/gluetun.env", "/srv/stack/gluetun/g2/auth/config.toml"]
    assert out["absent_if_empty"] == ["/srv/stack/gluetun/g2/auth", "/srv/stack/gluetun/g2"]
    keep_not = reshape.gluetun_reshape(containers, POOL, [instance("g1", 8001, 100, 105)], "/srv/stack",
                                       state_keep=False)
    assert "/srv/stack/gluetun/g2/state" in keep_not["absent"]


def test_a_renamed_vpn_and_files_without_a_container():
    containers = [container("g1", GLUETUN, [8001, 100]), container("g2", GLUETUN, [8002, 101])]
    out = reshape.gluetun_reshape(containers, POOL, [instance("g1", 8001, 100, 100), instance("g3", 8002, 101, 101)],
                                  "/s", vpn_dirs=["/s/gluetun/g1", "/s/gluetun/g3", "/s/gluetun/old/"])
    assert out["leftovers"] == ["g2"]
    assert out["absent_if_empty"] == ["/s/gluetun/g2/auth", "/s/gluetun/g2", "/s/gluetun/old/auth", "/s/gluetun/old"]


def test_a_container_with_the_name_but_not_the_labels_is_never_a_leftover():
    containers = [container("g2", {"acestream.pool": POOL}), container("g9", dict(GLUETUN, **{"acestream.pool": "x"}))]
    assert reshape.gluetun_reshape(containers, POOL, [instance("g1", 8001, 100, 100)], "/s")["leftovers"] == []


def test_a_growing_range_removes_first_the_vpn_whose_old_ports_the_other_takes():
    """Both VPNs kept, the range grows from 100-105 to 100-111: gluetun1 goes from 100-102 to 100-105, gluetun2 from
    103-105 to 106-111. gluetun2's old ports meet gluetun1's new ones: gluetun2 goes before gluetun1 is re-created.
    gluetun1's old ports meet nobody's new ones: it is re-created in its turn."""
    containers = [container("g1", GLUETUN, [8001] + list(range(100, 103))),
                  container("g2", GLUETUN, [8002] + list(range(103, 106)))]
    out = reshape.gluetun_reshape(containers, POOL, [instance("g1", 8001, 100, 105), instance("g2", 8002, 106, 111)],
                                  "/s")
    assert out["remove_first"] == ["g2"] and out["leftovers"] == []


def test_unchanged_or_stopped_containers_are_not_removed_first():
    running = [container("g1", GLUETUN, [8001, 100]), container("g2", GLUETUN, [8002, 101])]
    same = [instance("g1", 8001, 100, 100), instance("g2", 8002, 101, 101)]
    assert reshape.gluetun_reshape(running, POOL, same, "/s")["remove_first"] == []
    stopped = [container("g1", GLUETUN, [], state="exited"), container("g2", GLUETUN, [8002, 101])]
    swapped = [instance("g1", 8001, 101, 101), instance("g2", 8002, 102, 102)]
    assert reshape.gluetun_reshape(stopped, POOL, swapped, "/s")["remove_first"] == ["g2"]
    elsewhere = [container("g2", GLUETUN, [101], ip="10.0.0.5")]
    assert reshape.gluetun_reshape(elsewhere, POOL, [instance("g1", 8001, 101, 101), instance("g2", 8002, 102, 102)],
                                   "/s")["remove_first"] == []


def test_absent_takes_every_container_of_the_stack():
    containers = [container("g1", GLUETUN), container("renamed", GLUETUN), container("g2", {})]
    out = reshape.gluetun_reshape(containers, POOL, [], "/s", vpn_dirs=["g1", "g2"])
    assert out["leftovers"] == ["g1", "renamed"]
    assert out["absent"][:2] == ["/s/gluetun/g1/gluetun.env", "/s/gluetun/g1/auth/config.toml"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(containers="x"), "containers must be a list, not a string"),
    (dict(pool=None), "pool must be the stack's pool name"),
    (dict(stack_dir="/"), "stack_dir must be a directory path"),
    (dict(instances=[{"published": []}]), "each instance must be a mapping with a name"),
    (dict(containers=[["g1"]]), "each container must be a mapping as docker_host_info lists it, not a list"),
])
def test_bad_input_names_the_field(kwargs, message):
    args = dict(containers=[], pool=POOL, instances=[], stack_dir="/s")
    args.update(kwargs)
    with pytest.raises(reshape.ReshapeError, match=message):
        reshape.gluetun_reshape(**args)


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4A38 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:4A39 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:4A3A 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:4A3B 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:4A3C 00000000000000000000000000000000:0000 0A 00000000:00000000
   2: 0000000000000000FFFF00000100007F:4A3D 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_listening_sockets_from_proc_net_tcp():
    assert reshape.listening_ports(PROC_NET_TCP) == [
        ("127.0.0.1", 19000), ("0.0.0.0", 19001), ("::", 19003), ("00000000000000000000000001000000", 19004),
        ("127.0.0.1", 19005)]
    assert reshape.listening_ports(None) == [] and reshape.listening_ports("garbage\n\n") == []
    with pytest.raises(reshape.ReshapeError, match="must be the text of /proc/net/tcp, not a list"):
        reshape.listening_ports(["x"])


def plan(start=19000, end=19009):
    return {"vpns": [{"name": "g1", "index": 0, "range": "%d-%d" % (start, end), "start": start, "end": end,
                      "api_host_port": 18001}]}


def test_a_port_held_by_a_process_is_a_conflict_before_anything_changes():
    """A process listening on a host port of the stack (not a container) is found by the preflight: Docker would
    refuse it only when it (re-)creates the Gluetun container, after the running one was removed."""
    [message] = host_ports.host_port_conflicts(plan(), api_bind="127.0.0.1", port_range_bind="127.0.0.1",
                                               containers=[], pool=POOL, listening=PROC_NET_TCP)
    assert message.startswith('Docker would refuse with "address already in use": host ports 19000-19001, 19003, '
                              '19005 (the engine ports of g1 (19000-19009)) are held by a process on the Docker host, '
                              "not a container (find it with: ss -ltnp 'sport = :19000')")
    assert "Nothing was changed: stop that process" in message
    # The IPv6 loopback (::1) does not meet 127.0.0.1; ports Docker publishes for a container are its proxy's.
    published = [container("g1", GLUETUN, [19000, 19001, 19003, 19005])]
    assert host_ports.host_port_conflicts(plan(), api_bind="127.0.0.1", port_range_bind="127.0.0.1",
                                          containers=published, pool=POOL, listening=PROC_NET_TCP) == []


def test_the_stacks_own_leftover_is_not_another_container():
    """A Gluetun container of this stack that the inventory no longer names holds some of the ports: it is the
    stack's own (the gluetun role removes it first), not "another container" to stop by hand."""
    leftover = [container("g2", GLUETUN, [19005, 19006])]
    assert host_ports.host_port_conflicts(plan(), port_range_bind="127.0.0.1", containers=leftover, pool=POOL) == []
    [taken] = host_ports.host_port_conflicts(plan(), port_range_bind="127.0.0.1", containers=leftover, pool="other")
    assert "host ports 19005-19006 (the engine ports of g1 (19000-19009)) are already published by container g2" \
        in taken
