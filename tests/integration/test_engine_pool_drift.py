# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""engine_pool drift repair on the real Docker Engine, each case in the check -> apply -> apply -> check discipline."""

from __future__ import annotations

import json

import pytest

from engine_pool_helpers import (  # noqa: F401 pylint: disable=unused-import
    converge_discipline,
    engine_info,
    engine_status,
    pool_args,
    pool_containers,
    run_failing,
    run_pool,
    set_health,
    vpn_api,
    vpn_sim,
    wait_for,
)
from conftest import ENGINE_IMAGE, TEST_LABEL, assert_same_docker_state, docker_state, health_of

API_KEY = "sImUlAtEdKeY0123456789"
AUTH_ENV = {"HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE": json.dumps({"auth": "apikey", "apikey": API_KEY}),
            "GLUETUN_SIM_PORT_FORWARD_RANGE": "60000-60999"}


def slot_namer(pool):
    def name(vpn, index):
        return "%s-%s-%d" % (pool, vpn.name, vpn.engine_range[0] + index)
    return name


def two_vpns(vpn_sim, size=4, **kwargs):
    return vpn_sim(size=size, **kwargs), vpn_sim(size=size, **kwargs)


def ranges(*vpns):
    return dict((v.name, v.engine_range_text) for v in vpns)


def test_lifecycle_missing_stopped_scale_spec_clash_leave_absent(docker_api, run_id, vpn_sim):
    g1, g2 = two_vpns(vpn_sim)
    pool = "t%s-life" % run_id
    name = slot_namer(pool)
    args = pool_args(run_id, pool, [g1, g2], vpn_port_ranges=ranges(g1, g2), replicas=4)

    first = converge_discipline(args, [("create", name(v, i)) for v in (g1, g2) for i in (0, 1)])
    assert first["check"]["diff"]["before"] == {"engines": {}}
    assert sorted(first["apply"]["diff"]["after"]["engines"]) == sorted(name(v, i) for v in (g1, g2) for i in (0, 1))
    # Every engine lives in its VPN's namespace, publishes nothing, carries the pool's labels.
    for container in pool_containers(docker_api, pool).values():
        vpn = g1 if container["Labels"]["acestream.vpn"] == g1.name else g2
        assert container["HostConfig"]["NetworkMode"] == "container:%s" % vpn.id
        assert container["Ports"] == []
        assert container["Labels"]["acestream.managed-by"] == "acestream.orchestrator.engine_pool"
    ids = dict((e["name"], e["id"]) for e in first["apply"]["engines"])

    # Missing, exited and paused engines: only those are repaired.
    docker_api.remove_container(ids[name(g1, 0)], force=True)
    docker_api.stop(ids[name(g2, 1)], timeout=1)
    docker_api.pause(ids[name(g1, 1)])
    repaired = converge_discipline(args, [("create", name(g1, 0)), ("start", name(g2, 1)), ("unpause", name(g1, 1))])
    reasons = dict((a["name"], a["reason"]) for a in repaired["apply"]["actions"])
    assert reasons[name(g1, 0)] == "missing"
    assert reasons[name(g2, 1)].startswith("engine is exited (exit code ")
    assert reasons[name(g1, 1)] == "engine is paused"
    assert dict((e["name"], e["id"]) for e in repaired["again"]["engines"])[name(g2, 1)] == ids[name(g2, 1)]
    engine_status(g2.engine_range[0] + 1)

    # Scale down: the highest slot of each VPN goes. Scale up: the others keep their containers.
    down = converge_discipline(dict(args, replicas=2), [("remove", name(g1, 1)), ("remove", name(g2, 1))])
    assert down["apply"]["actions"][0]["reason"] == "surplus: VPN '%s' runs 1 engine(s) (replicas 2)" % g1.name
    kept = dict((e["name"], e["id"]) for e in down["again"]["engines"])

    # A container that is not the pool's holds the name of a slot the pool needs: fail before any change.
    foreign = docker_api.create_container(ENGINE_IMAGE, name=name(g1, 1), labels={TEST_LABEL: run_id})
    results = run_failing([(dict(args, replicas=3), True), (dict(args, replicas=3), False)])[0]
    for result in results:
        assert result["failed"] and result["changed"] is False
        assert result["msg"].startswith("Name clash: container '%s' (%s, image %s) already exists and is not managed "
                                        "by acestream.orchestrator; engine pool '%s' needs this name for its engine on "
                                        "VPN '%s' port %d: remove or rename that container"
                                        % (name(g1, 1), foreign["Id"][:12], ENGINE_IMAGE, pool, g1.name,
                                           g1.engine_range[0] + 1))
    assert set(pool_containers(docker_api, pool)) == set(kept)
    docker_api.remove_container(foreign["Id"], force=True)

    up = converge_discipline(dict(args, replicas=5), [("create", name(g1, 1)), ("create", name(g1, 2)),
                                                      ("create", name(g2, 1))])
    for engine in up["again"]["engines"]:
        if engine["name"] in kept:
            assert engine["id"] == kept[engine["name"]]

    # Spec changed (extra env): every engine is re-created, and the env reaches it.
    spec = converge_discipline(dict(args, replicas=5, env={"TZ": "UTC"}),
                               [("recreate", n) for n in names(up)])
    assert {a["reason"] for a in spec["apply"]["actions"]} == {"spec changed (env, command, labels or restart policy)"}
    some = spec["again"]["engines"][0]["id"]
    assert "TZ=UTC" in docker_api.inspect_container(some)["Config"]["Env"]

    # g2 leaves the plan: its engines go, g1's stay.
    solo = dict(args, replicas=3, env={"TZ": "UTC"}, vpn_containers=[g1.name], vpn_port_ranges=ranges(g1))
    left = converge_discipline(solo, [("remove", name(g2, 0)), ("remove", name(g2, 1))])
    assert left["apply"]["actions"][0]["reason"] == "its VPN '%s' is no longer in vpn_containers" % g2.name

    # state: absent removes the pool, nothing else.
    gone = converge_discipline({"name": pool, "state": "absent"}, [("remove", name(g1, i)) for i in range(3)])
    assert gone["apply"]["engines"] == []
    assert pool_containers(docker_api, pool) == {}
    assert health_of(docker_api, g1.name) == "healthy"


def names(results):
    return [e["name"] for e in results["again"]["engines"]]


def test_dead_namespace_recreated_vpn_and_forwarded_port(docker_api, run_id, vpn_sim):
    """Gluetun restarted (same ID, new namespace), Gluetun re-created (new ID), forwarded port moved."""
    g1 = vpn_sim(size=3, env=AUTH_ENV, forwarded_port="61001,61002,61003")  # forwarding on, pinned ports
    g2 = vpn_sim(size=3, env=AUTH_ENV)  # forwarding off
    pf = wait_for(lambda: vpn_api(g1, "GET", "/v1/portforward", api_key=API_KEY).get("port"), timeout=20,
                  what="g1's forwarded port")
    assert pf == 61001
    assert vpn_api(g2, "GET", "/v1/portforward", api_key=API_KEY).get("port") in (0, None)
    pool = "t%s-ns" % run_id
    name = slot_namer(pool)
    args = pool_args(run_id, pool, [g1, g2], vpn_port_ranges=ranges(g1, g2), replicas=4, forwarded_port="auto",
                     api_key=API_KEY, forwarded_port_timeout=15, wait_ready=30)
    first = converge_discipline(args)
    by_name = dict((e["name"], e) for e in first["again"]["engines"])
    assert sorted(by_name) == sorted(name(v, i) for v in (g1, g2) for i in (0, 1))
    forwarded = [e for e in first["again"]["engines"] if e["forwarded"]]
    # Exactly one forwarded engine on g1, whose P2P port is g1's forwarded port; none on g2.
    assert [(e["name"], e["p2p_port"]) for e in forwarded] == [(name(g1, 0), pf)]
    assert engine_info(g1.engine_range[0])["p2p_port"] == pf
    assert engine_info(g1.engine_range[0] + 1)["p2p_port"] is None
    plan = dict((p["name"], p) for p in first["again"]["plan"])
    assert plan[g1.name]["forwarded_port"] == pf and plan[g2.name]["forwarded_port"] is None
    # The API key reaches neither engines nor labels.
    for container in pool_containers(docker_api, pool).values():
        inspect = docker_api.inspect_container(container["Id"])
        assert API_KEY not in json.dumps(inspect)

    # Gluetun restarted: same ID, new network namespace; the engines that joined the old one are cut off.
    docker_api.restart(g2.id, timeout=1)
    wait_for(lambda: health_of(docker_api, g2.name) == "healthy", timeout=60, what="g2 healthy again")
    cut = docker_api.containers(all=True, filters={"name": name(g2, 0)})[0]
    assert cut["State"] == "running"
    try:
        engine_status(g2.engine_range[0], timeout=2)
        reachable = True
    except OSError:
        reachable = False
    assert not reachable, "engine still reachable after its Gluetun restarted: no dead namespace on this engine"
    dead = converge_discipline(args, [("recreate", name(g2, 0)), ("recreate", name(g2, 1))])
    assert dead["apply"]["actions"][0]["reason"].startswith(
        "left in a dead network namespace: VPN container '%s' (re)started at " % g2.name)
    assert engine_status(g2.engine_range[0])["result"]["http_port"] == g2.engine_range[0]

    # Gluetun re-created under the same name: new ID; its engines hold the old namespace by ID.
    docker_api.remove_container(g2.id, force=True)
    g2b = vpn_sim(engine_range=g2.engine_range, env=dict(AUTH_ENV), name=g2.name)
    recreated = converge_discipline(args, [("recreate", name(g2, 0)), ("recreate", name(g2, 1))])
    assert recreated["apply"]["actions"][0]["reason"] == (
        "attached to VPN container %s, which no longer exists or was re-created ('%s' is now %s)"
        % (g2.id[:12], g2.name, g2b.id[:12]))
    assert engine_status(g2.engine_range[0] + 1)["result"]["http_port"] == g2.engine_range[0] + 1

    # The forwarded port moves on a VPN reconnect: only g1's forwarded engine is re-created.
    vpn_api(g1, "PUT", "/v1/vpn/status", {"status": "stopped"}, api_key=API_KEY)
    vpn_api(g1, "PUT", "/v1/vpn/status", {"status": "running"}, api_key=API_KEY)
    new_port = wait_for(lambda: vpn_api(g1, "GET", "/v1/portforward", api_key=API_KEY).get("port"), timeout=20,
                        what="a new forwarded port")
    assert new_port == 61002
    wait_for(lambda: health_of(docker_api, g1.name) == "healthy", timeout=60, what="g1 healthy")
    moved = converge_discipline(args, [("recreate", name(g1, 0))])
    assert moved["apply"]["actions"][0]["reason"] == "forwarded port moved: P2P %d -> %d" % (pf, new_port)
    assert engine_info(g1.engine_range[0])["p2p_port"] == new_port


def test_several_forwarded_ports_each_on_its_own_engine_and_a_changing_set(docker_api, run_id, vpn_sim):
    """Gluetun latest forwarding 3 ports (ProtonVPN's VPN_PORT_FORWARDING_PORTS_COUNT): each port is the P2P port of
    its own engine; after a reconnect with another set, the engine whose port is still forwarded keeps it and only
    the engines whose port went away are re-created."""
    env = dict(AUTH_ENV, VPN_PORT_FORWARDING_PORTS_COUNT="3")
    g1 = vpn_sim(size=4, env=env, forwarded_port="61001+61002+61003,61002+61005+61006", version="latest")
    g2 = vpn_sim(size=4, env=AUTH_ENV, version="latest")  # forwarding off
    ports = wait_for(lambda: vpn_api(g1, "GET", "/v1/portforward", api_key=API_KEY).get("ports"), timeout=20,
                     what="g1's forwarded ports")
    assert ports == [61001, 61002, 61003]
    pool = "t%s-mp" % run_id
    name = slot_namer(pool)
    args = pool_args(run_id, pool, [g1, g2], vpn_port_ranges=ranges(g1, g2), replicas=6, forwarded_port="auto",
                     api_key=API_KEY, forwarded_port_timeout=15, wait_ready=30)
    first = converge_discipline(args)
    forwarded = dict((e["name"], e["p2p_port"]) for e in first["again"]["engines"] if e["forwarded"])
    assert forwarded == {name(g1, 0): 61001, name(g1, 1): 61002, name(g1, 2): 61003}
    plan = dict((p["name"], p) for p in first["again"]["plan"])
    assert plan[g1.name]["forwarded_ports"] == [61001, 61002, 61003] and plan[g1.name]["forwarded_port"] == 61001
    assert plan[g2.name]["forwarded_ports"] == [] and plan[g2.name]["forwarded_port"] is None
    for index, port in enumerate((61001, 61002, 61003)):
        assert engine_info(g1.engine_range[0] + index)["p2p_port"] == port

    vpn_api(g1, "PUT", "/v1/vpn/status", {"status": "stopped"}, api_key=API_KEY)
    vpn_api(g1, "PUT", "/v1/vpn/status", {"status": "running"}, api_key=API_KEY)
    wait_for(lambda: vpn_api(g1, "GET", "/v1/portforward", api_key=API_KEY).get("ports") == [61002, 61005, 61006],
             timeout=20, what="the new set of forwarded ports")
    wait_for(lambda: health_of(docker_api, g1.name) == "healthy", timeout=60, what="g1 healthy")
    moved = converge_discipline(args, [("recreate", name(g1, 0)), ("recreate", name(g1, 2))])
    assert [a["reason"] for a in moved["apply"]["actions"]] == [
        "forwarded port moved: P2P 61001 -> 61005", "forwarded port moved: P2P 61003 -> 61006"]
    forwarded = dict((e["name"], e["p2p_port"]) for e in moved["again"]["engines"] if e["forwarded"])
    assert forwarded == {name(g1, 0): 61005, name(g1, 1): 61002, name(g1, 2): 61006}
    assert engine_info(g1.engine_range[0] + 1)["p2p_port"] == 61002


def test_unhealthy_vpn_fails_then_failover_then_rebalance(docker_api, run_id, vpn_sim):
    g1, g2 = two_vpns(vpn_sim)
    pool = "t%s-hl" % run_id
    name = slot_namer(pool)
    args = pool_args(run_id, pool, [g1, g2], vpn_port_ranges=ranges(g1, g2), replicas=4)
    converge_discipline(args)
    set_health(docker_api, g2, "unhealthy")
    before = pool_containers(docker_api, pool)

    results = run_failing([(args, True), (args, False)])[0]
    for result in results:
        assert result["msg"] == ("VPN container '%s' is not healthy - cannot start AceStream engine (Docker health is "
                                 "'unhealthy')" % g2.name)
        assert result["changed"] is False
    assert pool_containers(docker_api, pool).keys() == before.keys()

    failover = dict(args, on_unhealthy_vpn="failover")
    moved = converge_discipline(failover, [("create", name(g1, 2)), ("create", name(g1, 3))])
    left = [e for e in moved["again"]["engines"] if not e["vpn_healthy"]]
    assert sorted(e["name"] for e in left) == [name(g2, 0), name(g2, 1)]
    assert any("failover: %s not healthy" % g2.name in w for w in moved["apply"].get("warnings", []))

    set_health(docker_api, g2, "healthy")
    converge_discipline(failover, [("remove", name(g1, 2)), ("remove", name(g1, 3))])


@pytest.mark.exclusive
def test_second_pool_on_a_vpn_is_refused_and_nothing_changes(docker_api, run_id, vpn_sim):
    """Two pools with ranges that do not overlap, on one VPN: the second would take the first's HTTPS port (both
    plan from 45000) and crash-loop. The first converges (check, apply, apply unchanged, check unchanged); the
    second is refused, in check mode and for real, naming the VPN, the first pool and its engines, and the Docker
    Engine's state is exactly what it was. The first pool still converges to nothing to do."""
    vpn = vpn_sim(size=3)
    low, high = vpn.engine_range
    one, two = "t%s-one" % run_id, "t%s-two" % run_id
    first = pool_args(run_id, one, [vpn], port_range="%d-%d" % (low, low + 1), replicas=2, wait_ready=60)
    converge_discipline(first, [("create", "%s-%s-%d" % (one, vpn.name, port)) for port in (low, low + 1)])
    second = pool_args(run_id, two, [vpn], port_range="%d-%d" % (high, high), replicas=1, wait_ready=60)
    before = docker_state(docker_api)
    results = run_failing([(second, True), (second, False)])[0]
    for result in results:
        assert result.get("failed") and result.get("changed") is False and result["actions"] == [], result
        assert result["msg"] == (
            "One engine pool per VPN: VPN container '%s' already runs engine pool '%s' (%s-%s-%d, %s-%s-%d). Engine "
            "pool '%s' cannot share a VPN with another pool: every engine of a VPN listens in the VPN container's one "
            "network namespace, where two pools' HTTPS ports and their forwarded P2P port collide. Run one pool per "
            "VPN: merge the replicas into one pool, give one of the pools its own Gluetun container, or remove pool "
            "'%s' with state=absent" % (vpn.name, one, one, vpn.name, low, one, vpn.name, low + 1, two, one))
    assert pool_containers(docker_api, two) == {}
    assert_same_docker_state(before, docker_state(docker_api))
    _run, again = run_pool(first)
    assert again["changed"] is False and again["actions"] == []


def test_crash_looping_engine_fails_wait_ready_and_every_rerun(docker_api, run_id, vpn_sim):
    """Something else in the VPN's namespace holds the engine's HTTPS port: the engine exits at once (exit 3) and
    Docker keeps restarting it. wait_ready fails naming it, with the exit code and the engine's own log line; a
    rerun re-creates it and fails again (never a success with a warning); once the port is free, the rerun
    converges and the next changes nothing."""
    vpn = vpn_sim(size=1)
    pool = "t%s-crash" % run_id
    engine = "%s-%s-%d" % (pool, vpn.name, vpn.engine_range[0])
    squatter = docker_api.create_container(
        ENGINE_IMAGE, name="t%s-squatter" % run_id, labels={TEST_LABEL: run_id},
        entrypoint=["python", "-c", "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 45000)); "
                                    "s.listen(); print('listening', flush=True); time.sleep(3600)"],
        host_config=docker_api.create_host_config(network_mode="container:%s" % vpn.id))
    docker_api.start(squatter["Id"])
    wait_for(lambda: b"listening" in docker_api.logs(squatter["Id"]), what="the squatter listening on 45000")
    args = pool_args(run_id, pool, [vpn], port_range=vpn.engine_range_text, replicas=1, wait_ready=60)

    first = run_failing([args])[0][0]
    assert first.get("failed") and first["changed"] is True, first
    assert [(a["action"], a["name"]) for a in first["actions"]] == [("create", engine)]
    assert first["msg"].startswith("1 engine(s) did not come up (wait_ready 60s): %s (" % engine), first["msg"]
    # Caught restarting, exited, or running again with a grown restart count; the log line says why either way.
    assert "crash-looping: " in first["msg"] or "it exited (exit code 3)" in first["msg"], first["msg"]
    assert "cannot listen on TCP port 45000 (https port" in first["msg"]

    def deep_in_its_loop():
        # Docker waits 0.1 s * 2^n before the restart after the n-th: once 7 restarts are done, the engine is
        # "restarting" for the next 12.8 s, so the rerun's list call sees it so (not the instant it runs between).
        inspect = docker_api.inspect_container(engine)
        return inspect["State"]["Restarting"] and inspect["RestartCount"] >= 7

    wait_for(deep_in_its_loop, timeout=90, what="%s restarted 7 times" % engine)
    rerun = run_failing([args])[0][0]
    assert rerun.get("failed") and not rerun.get("warnings"), rerun
    assert [(a["action"], a["name"], a["reason"]) for a in rerun["actions"]] == [
        ("recreate", engine, "engine is crash-looping: Docker keeps restarting it (exit code 3)")]
    assert "cannot listen on TCP port 45000 (https port" in rerun["msg"]

    docker_api.remove_container(squatter["Id"], force=True)
    _run, repaired = run_pool(args)
    # Re-created, or already brought up by Docker's own next restart attempt: either way, up and answering.
    assert [(a["action"], a["name"]) for a in repaired["actions"]] in ([], [("recreate", engine)])
    assert repaired["engines"][0]["status"] == "running"
    assert engine_info(vpn.engine_range[0])["https_port"] == 45000
    _run, again = run_pool(args)
    assert again["changed"] is False and again["actions"] == []
