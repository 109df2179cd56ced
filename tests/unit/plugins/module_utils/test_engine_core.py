# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine pool's pure core: variants, identity, labels, VPN states, preflight, placement, reconcile."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.acestream.orchestrator.plugins.module_utils import _engine_core as core
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    PortPlanError,
    build_plan,
)

POOL = "ace"
IMAGE = "engine:sim"
STARTED = "2026-01-01T00:00:00.000000001Z"
RUNNING_VPN = {"vpn_status": "running"}  # a control server that reports the VPN running


# ---------------------------------------------------------------------------------------- fixtures
def vpn_inspect(name, cid=None, ports=(), health="healthy", status="running", started=STARTED, env=(),
                bindings=None):
    """A Gluetun container inspect as Docker returns it (only the fields the core reads)."""
    cid = cid or ("id-" + name) * 4
    published = bindings if bindings is not None else dict(
        ("%d/tcp" % p, [{"HostIp": "127.0.0.1", "HostPort": str(p)}]) for p in ports)
    published["8000/tcp"] = [{"HostIp": "127.0.0.1", "HostPort": "40000"}]
    state = {"Status": status, "StartedAt": started}
    if health is not None:
        state["Health"] = {"Status": health}
    return {"Id": cid, "State": state, "HostConfig": {"PortBindings": copy.deepcopy(published)},
            "NetworkSettings": {"Ports": published}, "Config": {"Env": list(env)}}


def states_for(plan, **overrides):
    """Healthy, correctly publishing VPN states for the plan; overrides: name -> dict of vpn_inspect kwargs
    (or None: no such container) plus ``control``."""
    states = {}
    for vpn in plan.vpns:
        kwargs = {"ports": list(vpn.range)}
        control = {"vpn_status": "running"}  # the control server's answer: the VPN runs
        if vpn.name in overrides:
            if overrides[vpn.name] is None:
                states[vpn.name] = core.vpn_state(vpn.name, None)
                continue
            kwargs.update(overrides[vpn.name])
            control.update(kwargs.pop("control", None) or {})
        states[vpn.name] = core.vpn_state(vpn.name, vpn_inspect(vpn.name, **kwargs), control)
    return states


def params(**extra):
    base = {"pool": POOL, "variant": "krinkuto11-amd64", "image": IMAGE, "env": {}, "labels": {},
            "restart_policy": "unless-stopped", "on_unhealthy": "fail", "api_port": 8000, "forwarded_port": "off"}
    base.update(extra)
    return base


def as_listed(spec, state="running", status="Up 1 minute", image_id="sha256:img", network_mode=None, **labels):
    """The list-output entry of a container created from ``spec`` (what Docker returns from containers())."""
    all_labels = dict(spec["labels"])
    all_labels.update(labels)
    return {"Id": "cid-" + spec["name"], "Names": ["/" + spec["name"]], "Image": spec["image"], "ImageID": image_id,
            "Labels": all_labels, "State": state, "Status": status,
            "HostConfig": {"NetworkMode": network_mode or spec["network_mode"]}}


def run(plan, states, observed=(), image_id="sha256:img", **extra):
    return core.converge(plan, params(**extra), states, [core.observed_engine(c) for c in observed], image_id)


def apply(plan, states, decided, **kw):
    """What Docker holds after the actions: list entries for every desired engine, plus frozen ones kept."""
    listed = [as_listed(spec, **kw) for spec in decided["desired"].values()]
    return listed


def acts(decided):
    return [(a["action"], a["name"]) for a in decided["actions"]]


def name(vpn, port):
    return core.engine_name(POOL, vpn, port)


# ---------------------------------------------------------------------------------------- variants
def test_variant_krinkuto_env():
    env, command = core.variant_run("krinkuto11-amd64", 19000, 45000)
    assert command is None
    assert env == {"HTTP_PORT": "19000", "HTTPS_PORT": "45000", "BIND_ALL": "true",
                   "CONF": "--http-port=19000\n--https-port=45000\n--bind-all"}
    env = core.variant_run("krinkuto11-amd64", 19000, 45000, 51234)[0]
    assert env["P2P_PORT"] == "51234" and env["CONF"].endswith("\n--port=51234")


def test_variant_jopsis_amd64_args():
    assert core.variant_run("jopsis-amd64", 1, 2) == ({"ACESTREAM_ARGS": "--http-port 1 --https-port 2"}, None)
    assert core.variant_run("jopsis-amd64", 1, 2, 3)[0]["ACESTREAM_ARGS"] == "--http-port 1 --https-port 2 --port 3"


@pytest.mark.parametrize("variant", ["jopsis-arm32", "jopsis-arm64"])
def test_variant_jopsis_arm_command(variant):
    env, command = core.variant_run(variant, 19000, 45000, 7)
    assert env == {}
    assert command == ["python", "main.py", "--bind-all", "--http-port", "19000", "--https-port", "45000", "--port", "7"]


def test_unknown_variant():
    with pytest.raises(PortPlanError, match="engine_variant: unknown variant 'x86'; use one of jopsis-amd64"):
        core.variant_run("x86", 1, 2)
    with pytest.raises(PortPlanError, match="engine_variant: unknown variant"):
        core.default_image("x86")
    assert core.default_image("jopsis-arm64") == "jopsis/acestream:arm64-v3.2.13"
    assert core.default_image("krinkuto11-amd64") == "ghcr.io/krinkuto11/acestream-http-proxy:latest"


def test_env_and_labels_validation():
    assert core.validate_env({"TZ": "UTC", "N": 3, "B": True, "E": ""}) == {"TZ": "UTC", "N": "3", "B": "true", "E": ""}
    assert core.validate_env(None) == {}
    with pytest.raises(PortPlanError, match=r"env: give a mapping of variable names to values, e.g. \{TZ: UTC\}"):
        core.validate_env(["TZ=UTC"])
    with pytest.raises(PortPlanError, match="env: HTTP_PORT is set by the pool from the engine's slot"):
        core.validate_env({"HTTP_PORT": "1"})
    with pytest.raises(PortPlanError, match="env: 'A=B' is not an environment variable name"):
        core.validate_env({"A=B": "1"})
    # Never the value: null, a list, a NUL are named by the variable only.
    with pytest.raises(PortPlanError) as info:
        core.validate_env({"E": None, "L": ["s3cr3t"], "K": "s3cr3t\x00"})
    assert str(info.value) == (
        "env: E is null (a key with no value): give a string ('' for an empty value), a number or a boolean; "
        "L is a list: give a string, a number or a boolean; K holds a NUL character, which no environment can carry: "
        "remove it")
    assert core.validate_labels({"x": 1}) == {"x": "1"}
    with pytest.raises(PortPlanError, match="labels: acestream.pool is a label the pool manages"):
        core.validate_labels({"acestream.pool": "x"})


# ---------------------------------------------------------------------------------------- identity
def test_name_and_hash():
    assert core.engine_name("ace", "gluetun1", 19000) == "ace-gluetun1-19000"
    a = core.engine_spec("ace", "g", 1, 2, None, "jopsis-amd64", IMAGE, {}, {}, "no")
    b = core.engine_spec("ace", "g", 1, 2, None, "jopsis-amd64", IMAGE, {}, {}, "no")
    c = core.engine_spec("ace", "g", 1, 2, 9, "jopsis-amd64", IMAGE, {}, {}, "no")
    d = core.engine_spec("ace", "g", 1, 2, None, "jopsis-amd64", IMAGE, {"X": "1"}, {}, "no")
    assert a["hash"] == b["hash"] and len({a["hash"], c["hash"], d["hash"]}) == 3
    assert a["labels"][core.LABEL_FORWARDED] == "false" and a["labels"][core.LABEL_P2P_PORT] == ""
    assert c["labels"][core.LABEL_FORWARDED] == "true" and c["labels"][core.LABEL_P2P_PORT] == "9"
    assert c["labels"][core.LABEL_MANAGED_BY] == core.MANAGER and c["labels"][core.LABEL_SPEC_HASH] == c["hash"]
    assert core.pool_label_filters("ace") == ["acestream.managed-by=acestream.orchestrator.engine_pool",
                                              "acestream.pool=ace"]
    assert core.manager_label_filters() == ["acestream.managed-by=acestream.orchestrator.engine_pool"]


def test_observed_engine_reads_list_output():
    spec = core.attach(core.engine_spec("ace", "g", 19000, 45000, 5, "krinkuto11-amd64", IMAGE, {}, {}, "no"),
                       {"id": "gid", "started_at": STARTED})
    engine = core.observed_engine(as_listed(spec, state="exited", status="Exited (1)"))
    assert engine == {
        "id": "cid-ace-g-19000", "name": "ace-g-19000", "pool": "ace", "vpn": "g", "port": 19000, "https_port": 45000,
        "forwarded": True, "p2p_port": 5, "variant": "krinkuto11-amd64", "hash": spec["hash"], "vpn_id": "gid",
        "vpn_started_at": STARTED, "state": "exited", "status": "Exited (1)", "image": IMAGE,
        "image_id": "sha256:img", "network_mode": "container:gid",
    }
    broken = core.observed_engine({"Id": "abcdef0123456789", "Labels": {core.LABEL_HTTP_PORT: "x"}})
    assert broken["port"] is None and broken["name"] == "abcdef012345" and broken["state"] == "unknown"


# -------------------------------------------------------------------------------------- VPN state
def test_vpn_state_healthy_and_published():
    state = core.vpn_state("g", vpn_inspect("g", ports=[10, 11], env=["VPN_PORT_FORWARDING=on"]), RUNNING_VPN)
    assert state["healthy"] and state["problem"] is None and state["forwarding_on"]
    assert state["published"] == {10: "127.0.0.1", 11: "127.0.0.1"}
    assert state["started_at"] == STARTED


@pytest.mark.parametrize("kwargs, control, problem", [
    (dict(health="starting"), None, "Docker health is 'starting'"),
    (dict(health="unhealthy"), None, "Docker health is 'unhealthy'"),
    (dict(status="exited"), None, "the container is exited"),
    (dict(health=None), {"vpn_status": "stopped"}, "it has no healthcheck and its control server reports the VPN "
                                                   "'stopped', not 'running'"),
    (dict(health=None), {"error": "refused"}, "it has no healthcheck and its control server did not answer: refused"),
    # Docker's health alone does not tell: a VPN stopped through the control server stays 'healthy' to Docker.
    (dict(), {"vpn_status": "stopped"}, "Docker health is 'healthy' but its control server reports the VPN "
                                        "'stopped', not 'running'"),
    (dict(), {"error": "401 Unauthorized"}, "Docker health is 'healthy' but its control server did not answer: "
                                            "401 Unauthorized"),
    (dict(), None, "Docker health is 'healthy' but its control server was not asked for the VPN status"),
])
def test_vpn_state_unhealthy(kwargs, control, problem):
    state = core.vpn_state("g", vpn_inspect("g", **kwargs), control)
    assert not state["healthy"]
    assert state["problem"] == problem
    assert core.unhealthy_message(state) == (
        "VPN container 'g' is not healthy - cannot start AceStream engine (%s)" % problem)


def test_vpn_without_healthcheck_running_counts():
    assert core.vpn_state("g", vpn_inspect("g", health=None), {"vpn_status": "running"})["healthy"]
    missing = core.vpn_state("g", None)
    assert not missing["exists"] and missing["problem"] == "no container named 'g' exists"


def test_published_ports_runtime_wins_and_other_bindings():
    inspect = vpn_inspect("g", ports=[5])
    inspect["HostConfig"]["PortBindings"]["6/tcp"] = [{"HostIp": "", "HostPort": "6"}]  # configured, not published
    inspect["NetworkSettings"]["Ports"]["7/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": "17"}]
    inspect["NetworkSettings"]["Ports"]["9/tcp"] = None
    inspect["NetworkSettings"]["Ports"]["5/udp"] = [{"HostIp": "", "HostPort": "5"}]
    same, other = core.published_ports(inspect)
    assert same == {5: "127.0.0.1"} and other == ["17->7", "40000->8000"]
    inspect["State"]["Status"] = "exited"
    assert 6 in core.published_ports(inspect)[0]


def test_forwarding_enabled():
    assert core.forwarding_enabled(vpn_inspect("g", env=["VPN_PORT_FORWARDING=on"]))
    assert core.forwarding_enabled(vpn_inspect("g", env=["PORT_FORWARDING=yes"]))
    assert not core.forwarding_enabled(vpn_inspect("g", env=["VPN_PORT_FORWARDING=off"]))
    assert not core.forwarding_enabled(None)


# -------------------------------------------------------------------------------------- preflight
def test_reserved_ports():
    with pytest.raises(PortPlanError) as info:
        core.check_reserved_ports(build_plan(["g"], port_range="7990-8010"), 8000)
    assert info.value.field == "port_range"
    assert "7990-8010 (VPN 'g') includes port 8000, the Gluetun control server's api_port" in str(info.value)
    with pytest.raises(PortPlanError, match="vpn_port_ranges.g: 9990-9999 .* port 9999, Gluetun's health server"):
        core.check_reserved_ports(build_plan(["g"], vpn_port_ranges={"g": "9990-9999"}), 8000)
    with pytest.raises(PortPlanError, match="https_port_range: 7000-8999 includes port 8000"):
        core.check_reserved_ports(build_plan(["g"], port_range="100-200", https_port_range="7000-8999"), 8000)
    core.check_reserved_ports(build_plan(["g"], port_range="7990-8010"), 8011)


def test_port_range_mismatch_message():
    plan = build_plan(["g1", "g2"], port_range="19000-19009")
    states = states_for(plan, g2={"ports": [19005, 19006, 19007]})
    with pytest.raises(core.PreflightError) as info:
        run(plan, states)
    text = str(info.value)
    assert text.startswith("Port Range Mismatch: VPN container 'g2' must publish its engine range 19005-19009 "
                           "(from port_range) on the same host ports, but it publishes 19005-19007 (missing: "
                           "19008-19009)")
    assert "Publish \"19005-19009:19005-19009\" on the Gluetun container, or make port_range match" in text


def test_port_range_mismatch_other_host_ports():
    plan = build_plan(["g"], port_range="100-101")
    bindings = {"100/tcp": [{"HostIp": "", "HostPort": "200"}], "101/tcp": [{"HostIp": "", "HostPort": "201"}]}
    states = {"g": core.vpn_state("g", vpn_inspect("g", bindings=bindings), RUNNING_VPN)}
    with pytest.raises(core.PreflightError, match=r"publishes none \(missing: 100-101\); other bindings "
                                                  r"\(host->container\): 200->100, 201->101, 40000->8000"):
        run(plan, states)


def test_unhealthy_vpn_fails_with_seed_message():
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=2)
    with pytest.raises(core.PreflightError) as info:
        run(plan, states_for(plan, g2={"health": "starting"}))
    assert str(info.value) == ("VPN container 'g2' is not healthy - cannot start AceStream engine (Docker health is "
                               "'starting')")
    with pytest.raises(core.PreflightError, match="VPN container 'g1' is not healthy - cannot start AceStream engine "
                                                  r"\(no container named 'g1' exists\)"):
        run(plan, states_for(plan, g1=None))


def test_failover_needs_one_healthy():
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=2)
    with pytest.raises(core.PreflightError, match="VPN container 'g1' is not healthy.*; VPN container 'g2' is not"):
        run(plan, states_for(plan, g1={"health": "unhealthy"}, g2={"status": "exited"}), on_unhealthy="failover")


def test_forwarded_port_read_failure():
    plan = build_plan(["g"], port_range="100-109", replicas=1)
    states = states_for(plan, g={"control": {"error": "answered 401 Unauthorized"}})
    with pytest.raises(core.PreflightError, match="^Failed to get forwarded port from Gluetun 'g': answered 401"):
        run(plan, states, forwarded_port="auto")
    assert run(plan, states, forwarded_port="off")["actions"]


# -------------------------------------------------------------------------------------- placement
def test_place_fills_lowest_and_keeps_existing():
    allowed = {"a": list(range(10, 20))}
    assert core.place(allowed, {"a": 3}, {}) == {"a": [10, 11, 12]}
    assert core.place(allowed, {"a": 3}, {"a": [15, 11]}) == {"a": [10, 11, 15]}
    assert core.place(allowed, {"a": 2}, {"a": [15, 11, 18]}) == {"a": [11, 15]}
    assert core.place(allowed, {"a": 2}, {"a": [25, 11]}) == {"a": [10, 11]}  # 25 is outside
    assert core.place(allowed, {"a": 0}, {"a": [11]}) == {"a": []}


def test_targets_for_failover():
    plan = build_plan(["a", "b", "c"], vpn_port_ranges={"a": "1-2", "b": "11-20", "c": "21-30"}, replicas=6)
    allowed = dict((v.name, list(v.slot_ports())) for v in plan.vpns)
    assert core.targets_for(plan, ["a", "b", "c"], allowed) == ({"a": 2, "b": 2, "c": 2}, 0)
    assert core.targets_for(plan, ["a", "c"], allowed) == ({"a": 2, "c": 4}, 0)
    assert core.targets_for(plan, ["a"], allowed) == ({"a": 2}, 4)


def test_forwarded_slots_one_port_as_before():
    assert core.forwarded_slots([], [41000], {1: 40000}) == {}
    assert core.forwarded_slots([3, 5], [41000], {}) == {3: 41000}
    assert core.forwarded_slots([3, 5], [41000], {5: 40000, 9: 39000}) == {5: 41000}  # the forwarded one moves
    assert core.forwarded_slots([3, 5], [41000], {9: 41000}) == {3: 41000}  # its slot is no longer placed
    assert core.forwarded_slots([3, 5], [], {5: 41000}) == {}


def test_forwarded_slots_several_ports_stable():
    # each port to its own engine, min(ports, slots) of them, in slot order when nothing is forwarded yet
    assert core.forwarded_slots([1, 2, 3], [41, 42, 43, 44, 45], {}) == {1: 41, 2: 42, 3: 43}
    assert core.forwarded_slots([1, 2, 3, 4], [41, 42], {}) == {1: 41, 2: 42}
    # the set changes: an engine whose port is still forwarded keeps it; the new port goes to the engine whose
    # port went away (only that one is re-created), not to a lower slot
    assert core.forwarded_slots([1, 2, 3, 4], [42, 50], {1: 41, 2: 42}) == {2: 42, 1: 50}
    assert core.forwarded_slots([1, 2, 3, 4], [50, 42], {1: 41, 2: 42}) == {2: 42, 1: 50}
    # a port more: the lowest engine that is not forwarded takes it
    assert core.forwarded_slots([1, 2, 3, 4], [41, 42, 43], {1: 41, 2: 42}) == {1: 41, 2: 42, 3: 43}
    # a port fewer: the engine whose port went away is forwarded no more
    assert core.forwarded_slots([1, 2, 3, 4], [42], {1: 41, 2: 42}) == {2: 42}
    # two engines claiming one port (by hand): the lower keeps it, the other gets a port left or none
    assert core.forwarded_slots([1, 2], [41, 43], {1: 41, 2: 41}) == {1: 41, 2: 43}


@st.composite
def placement_case(draw):
    vpns = draw(st.integers(1, 4))
    allowed, targets, existing = {}, {}, {}
    for index in range(vpns):
        name = "v%d" % index
        start = 1000 * (index + 1)
        size = draw(st.integers(1, 30))
        allowed[name] = list(range(start, start + size))
        targets[name] = draw(st.integers(0, size))
        existing[name] = draw(st.lists(st.integers(start - 5, start + size + 5), max_size=40, unique=True))
    return allowed, targets, existing


@settings(max_examples=400, deadline=None)
@given(case=placement_case(), scale=st.integers(-10, 10))
def test_place_properties(case, scale):
    allowed, targets, existing = case
    placement = core.place(allowed, targets, existing)
    for vpn, ports in placement.items():
        assert len(ports) == targets[vpn]  # exactly the target: balanced as the shares are
        assert len(set(ports)) == len(ports)  # no port twice
        assert set(ports) <= set(allowed[vpn])  # inside the VPN's range
        kept = [p for p in existing[vpn] if p in allowed[vpn]]
        # Existing engines inside the range keep their slot, up to the target (surplus: highest first).
        assert set(sorted(kept)[:targets[vpn]]) <= set(ports)
        # New engines take the lowest free ports.
        new = sorted(set(ports) - set(kept))
        free = [p for p in allowed[vpn] if p not in kept]
        assert new == free[:len(new)]
    # Stable under rerun: placing again with the result as the existing state changes nothing.
    assert core.place(allowed, targets, placement) == placement
    # Scale up or down: the engines that stay keep their ports.
    scaled = dict((vpn, max(0, min(len(allowed[vpn]), count + scale))) for vpn, count in targets.items())
    rescaled = core.place(allowed, scaled, placement)
    for vpn in placement:
        if scaled[vpn] >= targets[vpn]:
            assert set(placement[vpn]) <= set(rescaled[vpn])
        else:
            assert rescaled[vpn] == placement[vpn][:scaled[vpn]]


@settings(max_examples=150, deadline=None)
@given(vpns=st.integers(1, 3), size=st.integers(3, 12), replicas=st.integers(0, 9), steps=st.lists(
    st.integers(0, 9), min_size=1, max_size=4))
def test_converge_properties(vpns, size, replicas, steps):
    """Whole runs: unique ports, inside ranges, balanced, a rerun is a no-op, scaling keeps the engines that stay."""
    names = ["g%d" % i for i in range(vpns)]
    docker = []
    for count in [replicas] + steps:
        count = min(count, vpns * size)
        plan = build_plan(names, port_range="20000-%d" % (20000 + vpns * size - 1), replicas=count)
        states = states_for(plan)
        before = dict((c["Names"][0], c) for c in docker)
        decided = run(plan, states, docker)
        ports = [(e["vpn"], e["port"]) for e in decided["engines"]]
        assert len(set(ports)) == len(ports) == count
        https = [(e["vpn"], e["https_port"]) for e in decided["engines"]]
        assert len(set(https)) == len(https)
        for engine in decided["engines"]:
            assert engine["port"] in plan.vpn(engine["vpn"]).range
        per_vpn = [sum(1 for e in decided["engines"] if e["vpn"] == n) for n in names]
        assert max(per_vpn) - min(per_vpn) <= 1
        assert all(a["action"] in ("create", "remove") for a in decided["actions"])
        docker = apply(plan, states, decided)
        # Engines that stay are untouched.
        for listed in docker:
            if listed["Names"][0] in before:
                assert listed["Labels"] == before[listed["Names"][0]]["Labels"]
        again = run(plan, states, docker)
        assert again["actions"] == [] and again["before"] == again["after"]


# ---------------------------------------------------------------------------------------- reconcile
@pytest.fixture
def two():
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=4)
    states = states_for(plan)
    decided = run(plan, states)
    return plan, states, decided


def test_first_run_creates_balanced(two):
    plan, states, decided = two
    assert acts(decided) == [("create", name("g1", 100)), ("create", name("g1", 101)), ("create", name("g2", 105)),
                             ("create", name("g2", 106))]
    assert all(a["reason"] == "missing" for a in decided["actions"])
    engine = decided["engines"][2]
    assert engine == {"name": name("g2", 105), "id": None, "vpn": "g2", "host": "g2", "port": 105, "https_port": 45000,
                      "forwarded": False, "p2p_port": None, "status": "running", "vpn_healthy": True}
    spec = decided["desired"][name("g2", 105)]
    assert spec["network_mode"] == "container:" + states["g2"]["id"]
    assert spec["labels"][core.LABEL_VPN_STARTED_AT] == STARTED
    assert [p["range"] for p in decided["plan"]] == ["100-104", "105-109"]
    assert decided["plan"][0]["published"] == "100-104"


def test_noop_rerun(two):
    plan, states, decided = two
    again = run(plan, states, apply(plan, states, decided))
    assert again["actions"] == [] and again["warnings"] == []
    assert [e["id"] for e in again["engines"]] == ["cid-" + n for n in sorted(decided["desired"])]


def test_missing_engine_recreated_alone(two):
    plan, states, decided = two
    docker = [c for c in apply(plan, states, decided) if c["Names"][0] != "/" + name("g1", 101)]
    assert acts(run(plan, states, docker)) == [("create", name("g1", 101))]


@pytest.mark.parametrize("state, action", [("exited", "start"), ("created", "start"), ("paused", "unpause"),
                                           ("dead", "recreate")])
def test_stopped_engines(two, state, action):
    plan, states, decided = two
    docker = apply(plan, states, decided)
    docker[0]["State"], docker[0]["Status"] = state, "Exited (137) 5 seconds ago" if state == "exited" else "x"
    again = run(plan, states, docker)
    assert acts(again) == [(action, name("g1", 100))]
    assert again["actions"][0]["id"] == docker[0]["Id"]
    assert again["actions"][0]["reason"] == {"exited": "engine is exited (exit code 137)", "created": "engine is created",
                                             "paused": "engine is paused", "dead": "engine is dead"}[state]


@pytest.mark.parametrize("status, reason", [
    ("Restarting (3) 2 seconds ago", "engine is crash-looping: Docker keeps restarting it (exit code 3)"),
    ("Restarting", "engine is crash-looping: Docker keeps restarting it"),
])
def test_crash_looping_engine_is_recreated_not_warned_about(two, status, reason):
    """A rerun that finds an engine Docker keeps restarting repairs it (wait_ready then judges it), with a reason
    that check and apply share (the exit code, not the time); no warning, no success that hides it."""
    plan, states, decided = two
    docker = apply(plan, states, decided)
    docker[0]["State"], docker[0]["Status"] = "restarting", status
    again = run(plan, states, docker)
    assert again["actions"] == [{"action": "recreate", "name": name("g1", 100), "vpn": "g1", "port": 100,
                                 "reason": reason, "id": docker[0]["Id"]}]
    assert again["warnings"] == []
    assert core.restart_baselines(again["actions"]) == {name("g1", 100): 0}


def test_image_changed(two):
    plan, states, decided = two
    again = run(plan, states, apply(plan, states, decided), image="engine:v2")
    assert [pair[0] for pair in acts(again)] == ["recreate"] * 4
    assert again["actions"][0]["reason"] == "image engine:sim -> engine:v2"


def test_image_updated_under_same_tag(two):
    plan, states, decided = two
    again = run(plan, states, apply(plan, states, decided), image_id="sha256:newer")
    assert [pair[0] for pair in acts(again)] == ["recreate"] * 4
    assert again["actions"][0]["reason"] == "image engine:sim was updated (engine runs img, the image is now newer)"
    # An unknown local image (to be pulled) is not a reason by itself.
    assert run(plan, states, apply(plan, states, decided), image_id=None)["actions"] == []


def test_spec_changed(two):
    plan, states, decided = two
    again = run(plan, states, apply(plan, states, decided), env={"TZ": "UTC"})
    assert [pair[0] for pair in acts(again)] == ["recreate"] * 4
    assert again["actions"][0]["reason"] == "spec changed (env, command, labels or restart policy)"
    again = run(plan, states, apply(plan, states, decided), variant="jopsis-amd64")
    assert again["actions"][0]["reason"] == "variant krinkuto11-amd64 -> jopsis-amd64"
    docker = apply(plan, states, decided)
    del docker[0]["Labels"][core.LABEL_SPEC_HASH]
    assert run(plan, states, docker)["actions"][0]["reason"] == "no spec hash label"


def test_https_range_changed(two):
    plan, states, decided = two
    plan2 = build_plan(["g1", "g2"], port_range="100-109", replicas=4, https_port_range="46000-46999")
    again = run(plan2, states_for(plan2), apply(plan, states, decided))
    assert again["actions"][0]["reason"] == "HTTPS port 45000 -> 46000"


def test_vpn_recreated(two):
    plan, states, decided = two
    states2 = states_for(plan, g1={"cid": "newid" * 8})
    again = run(plan, states2, apply(plan, states, decided))
    assert acts(again) == [("recreate", name("g1", 100)), ("recreate", name("g1", 101))]
    assert again["actions"][0]["reason"] == ("attached to VPN container id-g1id-g1id, which no longer exists or was "
                                             "re-created ('g1' is now newidnewidne)")
    assert again["desired"][name("g1", 100)]["network_mode"] == "container:" + "newid" * 8


def test_dead_namespace_after_vpn_restart(two):
    plan, states, decided = two
    states2 = states_for(plan, g2={"started": "2026-01-02T00:00:00Z"})
    again = run(plan, states2, apply(plan, states, decided))
    assert acts(again) == [("recreate", name("g2", 105)), ("recreate", name("g2", 106))]
    assert again["actions"][0]["reason"] == (
        "left in a dead network namespace: VPN container 'g2' (re)started at 2026-01-02T00:00:00Z, after the engine "
        "joined it (VPN start then: %s)" % STARTED)
    assert again["desired"][name("g2", 105)]["labels"][core.LABEL_VPN_STARTED_AT] == "2026-01-02T00:00:00Z"


def test_vpn_left_the_plan(two):
    plan, states, decided = two
    plan1 = build_plan(["g1"], vpn_port_ranges={"g1": "100-104"}, replicas=2)
    again = run(plan1, states_for(plan1), apply(plan, states, decided))
    assert acts(again) == [("remove", name("g2", 105)), ("remove", name("g2", 106))]
    assert again["actions"][0]["reason"] == "its VPN 'g2' is no longer in vpn_containers"


def test_scale_down_removes_highest_and_scale_up_keeps(two):
    plan, states, decided = two
    docker = apply(plan, states, decided)
    plan3 = build_plan(["g1", "g2"], port_range="100-109", replicas=3)
    down = run(plan3, states_for(plan3), docker)
    assert acts(down) == [("remove", name("g2", 106))]
    assert down["actions"][0]["reason"] == "surplus: VPN 'g2' runs 1 engine(s) (replicas 3)"
    # An engine lost in the middle: scaling up refills the hole first, keeping the others.
    docker = [c for c in docker if c["Names"][0] != "/" + name("g1", 100)]
    plan6 = build_plan(["g1", "g2"], port_range="100-109", replicas=6)
    up = run(plan6, states_for(plan6), docker)
    assert acts(up) == [("create", name("g1", 100)), ("create", name("g1", 102)), ("create", name("g2", 107))]


def test_range_moved_removes_outside(two):
    plan, states, decided = two
    plan2 = build_plan(["g1", "g2"], vpn_port_ranges={"g1": "101-104", "g2": "105-109"}, replicas=4)
    again = run(plan2, states_for(plan2), apply(plan, states, decided))
    assert ("remove", name("g1", 100)) in acts(again) and ("create", name("g1", 102)) in acts(again)
    removal = [a for a in again["actions"] if a["action"] == "remove"][0]
    assert removal["reason"] == "port 100 is outside VPN 'g1''s usable range 101-104"
    # HTTPS ports follow the new range start: the kept engine is re-created with its new HTTPS port.
    assert ("recreate", name("g1", 101)) in acts(again)


def test_foreign_labels_on_our_name_removed(two):
    plan, states, decided = two
    docker = apply(plan, states, decided)
    docker[0]["Labels"][core.LABEL_HTTP_PORT] = "103"  # labels disagree with the name
    again = run(plan, states, docker)
    assert acts(again)[0] == ("remove", name("g1", 100))
    assert again["actions"][0]["reason"] == "labels do not match its name (not a slot of this pool)"
    assert ("create", name("g1", 100)) in acts(again)
    # Removals come before creations (the name and the ports are freed first).
    kinds = [pair[0] for pair in acts(again)]
    assert kinds == sorted(kinds, key=lambda k: k != "remove")


# ------------------------------------------------------------------------------------- forwarding
def fwd_states(plan, ports, forwarding_on=True):
    overrides = {}
    for vpn, port in ports.items():
        overrides[vpn] = {"control": {"forwarded_port": port},
                          "env": ["VPN_PORT_FORWARDING=on"] if forwarding_on else []}
    return states_for(plan, **overrides)


def multi_states(plan, ports):
    overrides = dict((vpn, {"control": {"forwarded_port": (p or [None])[0], "forwarded_ports": list(p)},
                            "env": ["VPN_PORT_FORWARDING=on"]}) for vpn, p in ports.items())
    return states_for(plan, **overrides)


def forwarded_of(decided):
    return dict((e["name"], e["p2p_port"]) for e in decided["engines"] if e["forwarded"])


def test_several_forwarded_ports_each_to_its_own_engine_stably():
    """check -> apply -> apply (unchanged) -> the port set changes -> only the engines whose port went away."""
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=6)  # 3 engines a VPN
    first = multi_states(plan, {"g1": [41, 42, 43, 44, 45], "g2": [51]})
    decided = run(plan, first, forwarded_port="auto")
    assert forwarded_of(decided) == {name("g1", 100): 41, name("g1", 101): 42, name("g1", 102): 43,
                                     name("g2", 105): 51}  # min(ports, engines) per VPN
    assert [p["forwarded_ports"] for p in decided["plan"]] == [[41, 42, 43, 44, 45], [51]]
    assert [p["forwarded_port"] for p in decided["plan"]] == [41, 51]
    docker = apply(plan, first, decided)
    assert run(plan, first, docker, forwarded_port="auto")["actions"] == []
    # 41 and 43 went away, 46 came: 42 stays on its engine, 46 goes to the engine that had 41, the engine that
    # had 43 takes 44 (the next port left); nothing else is touched
    moved = multi_states(plan, {"g1": [42, 46, 44], "g2": [51]})
    again = run(plan, moved, docker, forwarded_port="auto")
    assert acts(again) == [("recreate", name("g1", 100)), ("recreate", name("g1", 102))]
    assert forwarded_of(again) == {name("g1", 100): 46, name("g1", 101): 42, name("g1", 102): 44,
                                   name("g2", 105): 51}
    docker = apply(plan, moved, again)
    assert run(plan, moved, docker, forwarded_port="auto")["actions"] == []
    # one port left: the other two forwarded engines are forwarded no more
    fewer = multi_states(plan, {"g1": [44], "g2": [51]})
    last = run(plan, fewer, docker, forwarded_port="auto")
    assert acts(last) == [("recreate", name("g1", 100)), ("recreate", name("g1", 101))]
    assert forwarded_of(last) == {name("g1", 102): 44, name("g2", 105): 51}


def test_a_forwarded_port_on_a_slot_skips_that_slot_and_the_others_still_get_theirs():
    plan = build_plan(["g"], port_range="100-109", replicas=3)
    decided = run(plan, multi_states(plan, {"g": [101, 60000]}), forwarded_port="auto")
    assert [e["port"] for e in decided["engines"]] == [100, 102, 103]
    assert forwarded_of(decided) == {name("g", 100): 101, name("g", 102): 60000}
    assert any("forwarded port 101 of VPN 'g' collides with slot 101" in w for w in decided["warnings"])


def test_ports_cleared_by_a_restart_keep_every_forwarded_engine():
    plan = build_plan(["g"], port_range="100-109", replicas=3)
    docker = apply(plan, None, run(plan, multi_states(plan, {"g": [41, 42]}), forwarded_port="auto"))
    again = run(plan, multi_states(plan, {"g": []}), docker, forwarded_port="auto")
    assert again["actions"] == []
    assert again["warnings"] == ["VPN 'g' forwards ports but reports none right now (they are cleared on every VPN "
                                 "restart): its forwarded engines keep P2P ports 41, 42 until the next run"]


def test_one_forwarded_engine_per_vpn():
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=4)
    decided = run(plan, fwd_states(plan, {"g1": 51000, "g2": None}, forwarding_on=False), forwarded_port="auto")
    forwarded = [e for e in decided["engines"] if e["forwarded"]]
    assert [(e["name"], e["p2p_port"]) for e in forwarded] == [(name("g1", 100), 51000)]
    spec = decided["desired"][name("g1", 100)]
    assert spec["env"]["P2P_PORT"] == "51000"
    assert decided["actions"][0]["reason"] == "missing (forwarded engine, P2P 51000)"
    assert decided["plan"][0]["forwarded_port"] == 51000 and decided["plan"][1]["forwarded_port"] is None


def test_forwarded_port_moved_recreates_only_that_engine():
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=4)
    states = fwd_states(plan, {"g1": 51000, "g2": 52000})
    docker = apply(plan, states, run(plan, states, forwarded_port="auto"))
    # The forwarded engine of g1 sits at 101 (e.g. 100 was lost and re-created later): it keeps the role.
    moved = run(plan, fwd_states(plan, {"g1": 51001, "g2": 52000}), docker, forwarded_port="auto")
    assert acts(moved) == [("recreate", name("g1", 100))]
    assert moved["actions"][0]["reason"] == "forwarded port moved: P2P 51000 -> 51001"


def test_forwarded_role_stays_with_its_engine():
    plan = build_plan(["g"], port_range="100-109", replicas=3)
    states = fwd_states(plan, {"g": 51000})
    docker = apply(plan, states, run(plan, states, forwarded_port="auto"))
    docker = [c for c in docker if c["Names"][0] != "/" + name("g", 100)]
    # The forwarded engine (100) is gone and no other engine holds the role: the lowest slot, re-created, gets it.
    again = run(plan, states, docker, forwarded_port="auto")
    assert acts(again) == [("create", name("g", 100))]
    assert again["desired"][name("g", 100)]["forwarded"]
    # A forwarded engine at 102 keeps the role when the port moves; 100 and 101 are untouched.
    spec = core.attach(core.engine_spec(POOL, "g", 102, 45002, 51000, "krinkuto11-amd64", IMAGE, {}, {},
                                        "unless-stopped"), states["g"])
    plain = [as_listed(core.attach(core.engine_spec(POOL, "g", p, 45000 + p - 100, None, "krinkuto11-amd64", IMAGE,
                                                    {}, {}, "unless-stopped"), states["g"])) for p in (100, 101)]
    moved = run(plan, fwd_states(plan, {"g": 51009}), plain + [as_listed(spec)], forwarded_port="auto")
    assert acts(moved) == [("recreate", name("g", 102))]


def test_forwarded_port_lost_keeps_engine_when_forwarding_is_on():
    plan = build_plan(["g"], port_range="100-109", replicas=2)
    states = fwd_states(plan, {"g": 51000})
    docker = apply(plan, states, run(plan, states, forwarded_port="auto"))
    again = run(plan, fwd_states(plan, {"g": None}), docker, forwarded_port="auto")
    assert again["actions"] == []
    assert again["warnings"] == ["VPN 'g' forwards a port but reports none right now (it is cleared on every VPN "
                                 "restart): its forwarded engine keeps P2P port 51000 until the next run"]
    # Forwarding turned off: the engine stops being the forwarded one.
    off = run(plan, fwd_states(plan, {"g": None}, forwarding_on=False), docker, forwarded_port="auto")
    assert acts(off) == [("recreate", name("g", 100))]
    assert off["actions"][0]["reason"] == "no longer the forwarded engine of 'g'"
    # forwarded_port: off does the same.
    assert acts(run(plan, states, docker, forwarded_port="off")) == [("recreate", name("g", 100))]


def test_no_port_yet_warns():
    plan = build_plan(["g"], port_range="100-109", replicas=1)
    decided = run(plan, fwd_states(plan, {"g": None}), forwarded_port="auto")
    assert decided["warnings"] == ["VPN 'g' forwards a port but reports none yet: no forwarded engine this run"]
    assert not decided["engines"][0]["forwarded"]


def test_forwarded_port_inside_the_range_skips_that_slot():
    plan = build_plan(["g"], port_range="100-109", replicas=2)
    decided = run(plan, fwd_states(plan, {"g": 100}), forwarded_port="auto")
    assert [e["port"] for e in decided["engines"]] == [101, 102]
    assert "forwarded port 100 of VPN 'g' collides with slot 100 (HTTP 100 / HTTPS 45000)" in decided["warnings"][0]
    full = build_plan(["g"], port_range="100-101", replicas=2)
    with pytest.raises(PortPlanError, match="replicas: VPN 'g' must hold 2 engines but only 1 of its slots are usable"):
        run(full, fwd_states(full, {"g": 45001}), forwarded_port="auto")


def test_forwarded_ports_are_sanitised_once_duplicates_dropped_reserved_ports_skipped():
    """The one sanitising of forwarded ports (engine_pool, verify and the EDA source all use it): Gluetun's order,
    each port once, and the ports Gluetun itself listens on in the VPN's namespace (api_port, the health server's
    9999) skipped with a warning naming the port and what holds it."""
    warnings = []
    assert core.usable_forwarded_ports("g", [41000, 41000, 8001, 9999, 42000, 8001, 0, None, True, "43000"], 8001,
                                       warnings) == [41000, 42000]
    assert warnings == [
        "forwarded port 8001 of VPN 'g' is held by the Gluetun control server's api_port inside the VPN's network "
        "namespace: no engine takes it as its P2P port (it could not listen there)",
        "forwarded port 9999 of VPN 'g' is held by Gluetun's health server inside the VPN's network namespace: no "
        "engine takes it as its P2P port (it could not listen there)"]
    assert core.usable_forwarded_ports("g", [], 8001) == [] and core.usable_forwarded_ports("g", None, 8001) == []
    assert core.reserved_ports(8001) == {8001: "the Gluetun control server's api_port",
                                         core.GLUETUN_HEALTH_PORT: "Gluetun's health server"}


def test_duplicate_forwarded_ports_give_one_engine_and_converge():
    """A VPN that reports a port twice ({"ports": [41000, 41000]}) gets one forwarded engine, with P2P port 41000,
    and the next run changes nothing; verify expects the same (test_stack_view)."""
    plan = build_plan(["g"], port_range="100-109", replicas=3)
    states = multi_states(plan, {"g": [41000, 41000]})
    decided = run(plan, states, forwarded_port="auto")
    assert forwarded_of(decided) == {name("g", 100): 41000}
    assert decided["plan"][0]["forwarded_ports"] == [41000] and decided["warnings"] == []
    assert run(plan, states, apply(plan, states, decided), forwarded_port="auto")["actions"] == []


@pytest.mark.parametrize("reserved, holder", [(8000, "the Gluetun control server's api_port"),
                                              (9999, "Gluetun's health server")])
def test_a_forwarded_port_gluetun_itself_listens_on_is_no_engines_p2p_port(reserved, holder):
    """A forwarded port equal to the control server's api_port or the health port 9999 would be an engine's P2P
    port that cannot listen (the engine crash-loops): it is skipped with a warning naming the port and what holds
    it, the other ports still go to their engines, and the next run changes nothing."""
    plan = build_plan(["g"], port_range="100-109", replicas=3)
    states = multi_states(plan, {"g": [reserved, 41000]})
    decided = run(plan, states, forwarded_port="auto")  # params(): api_port 8000
    assert forwarded_of(decided) == {name("g", 100): 41000}
    assert decided["warnings"] == [
        "forwarded port %d of VPN 'g' is held by %s inside the VPN's network namespace: no engine takes it as its P2P "
        "port (it could not listen there)" % (reserved, holder)]
    assert decided["plan"][0]["forwarded_ports"] == [41000]
    assert run(plan, states, apply(plan, states, decided), forwarded_port="auto")["actions"] == []
    # Only that port forwarded: no forwarded engine at all (not "none reported yet").
    alone = run(plan, multi_states(plan, {"g": [reserved]}), forwarded_port="auto")
    assert forwarded_of(alone) == {} and len(alone["warnings"]) == 1 and "is held by" in alone["warnings"][0]
    # An engine a former run gave that port as its P2P port is forwarded no more.
    spec = core.attach(core.engine_spec(POOL, "g", 100, 45000, reserved, "krinkuto11-amd64", IMAGE, {}, {},
                                        "unless-stopped"), states["g"])
    again = run(plan, states, [as_listed(spec)] + apply(plan, states, decided)[1:], forwarded_port="auto")
    assert acts(again) == [("recreate", name("g", 100))]
    assert again["actions"][0]["reason"] == "forwarded port moved: P2P %d -> 41000" % reserved


# --------------------------------------------------------------------------------------- failover
def test_failover_moves_share_and_rebalances_later():
    plan = build_plan(["g1", "g2"], port_range="100-109", replicas=4)
    healthy = states_for(plan)
    docker = apply(plan, healthy, run(plan, healthy))
    sick = states_for(plan, g2={"health": "unhealthy"})
    failed = run(plan, sick, docker, on_unhealthy="failover")
    assert acts(failed) == [("create", name("g1", 102)), ("create", name("g1", 103))]
    assert failed["warnings"] == ["failover: g2 not healthy; its engines left in place, their share placed on g1"]
    left = [e for e in failed["engines"] if not e["vpn_healthy"]]
    assert [e["name"] for e in left] == [name("g2", 105), name("g2", 106)]
    assert failed["frozen"] == ["g2"] and failed["plan"][1]["engines"] == 0 and failed["plan"][0]["engines"] == 4
    # Run again while g2 is still sick: nothing to do.
    docker = docker + [as_listed(failed["desired"][name("g1", p)]) for p in (102, 103)]
    assert run(plan, sick, docker, on_unhealthy="failover")["actions"] == []
    # g2 healthy again (same start): the surplus on g1 goes, g2's engines stay.
    back = run(plan, healthy, docker, on_unhealthy="failover")
    assert acts(back) == [("remove", name("g1", 102)), ("remove", name("g1", 103))]
    # ... or restarted meanwhile: its engines are re-created too.
    restarted = run(plan, states_for(plan, g2={"started": "2026-02-01T00:00:00Z"}), docker, on_unhealthy="failover")
    assert sorted(acts(restarted)) == [("recreate", name("g2", 105)), ("recreate", name("g2", 106)),
                                       ("remove", name("g1", 102)), ("remove", name("g1", 103))]


def test_failover_capacity_limited():
    plan = build_plan(["g1", "g2"], vpn_port_ranges={"g1": "100-102", "g2": "200-209"}, replicas=6)
    decided = run(plan, states_for(plan, g2=None), on_unhealthy="failover")
    assert [e["port"] for e in decided["engines"]] == [100, 101, 102]
    assert "3 of 6 engines could not be placed: the healthy VPNs are full (failover)" in decided["warnings"]


# -------------------------------------------------------------------------------- one pool per VPN
def other_pool(states, pool, vpn, ports, **listed):
    """The observed engines of another pool on ``vpn`` (as its own run made them), from list entries."""
    engines = []
    for port in ports:
        spec = core.attach(core.engine_spec(pool, vpn, port, 45000 + port % 100, None, "krinkuto11-amd64", IMAGE, {},
                                            {}, "unless-stopped"), states[vpn])
        engines.append(core.observed_engine(as_listed(spec, **listed)))
    return engines


def test_split_pools_by_the_pool_label():
    plan = build_plan(["g1"], port_range="100-104", replicas=1)
    states = states_for(plan)
    ours, theirs = other_pool(states, POOL, "g1", [100]), other_pool(states, "b", "g1", [103])
    unlabelled = core.observed_engine({"Id": "f" * 64, "Names": ["/odd"], "Labels": {core.LABEL_MANAGED_BY: core.MANAGER}})
    assert core.split_pools(POOL, theirs + ours + [unlabelled]) == (ours, theirs + [unlabelled])
    assert core.split_pools(POOL, []) == ([], [])


def test_second_pool_on_a_vpn_is_refused_before_anything(two):
    """Pool 'b' runs engines on g1 (ports 103-104, outside this pool's slots there): this pool may not add its own,
    whatever the ranges; nothing is decided, so nothing is touched (check mode alike)."""
    plan, states, decided = two
    others = other_pool(states, "b", "g1", [104, 103])
    with pytest.raises(core.PreflightError) as info:
        core.converge(plan, params(), states, [], "sha256:img", others)
    assert str(info.value) == (
        "One engine pool per VPN: VPN container 'g1' already runs engine pool 'b' (b-g1-103, b-g1-104). Engine pool "
        "'ace' cannot share a VPN with another pool: every engine of a VPN listens in the VPN container's one network "
        "namespace, where two pools' HTTPS ports and their forwarded P2P port collide. Run one pool per VPN: merge "
        "the replicas into one pool, give one of the pools its own Gluetun container, or remove pool 'b' with "
        "state=absent")
    # The pool's own engines there change nothing: it is refused on a rerun as well.
    own = [core.observed_engine(c) for c in apply(plan, states, decided)]
    with pytest.raises(core.PreflightError, match="VPN container 'g1' already runs engine pool 'b'"):
        core.converge(plan, params(), states, own, "sha256:img", others)


def test_other_pool_found_by_network_mode_and_every_owner_named(two):
    """An engine that joined g2's namespace is on g2 whatever its VPN label says; every VPN and every other pool is
    named (in plan order, at most four engines each), and each other pool is offered its removal."""
    plan, states, _decided = two
    relabelled = other_pool(states, "c", "g2", [107])
    relabelled[0]["vpn"] = "gone"
    many = other_pool(states, "b", "g1", range(100, 106))
    with pytest.raises(core.PreflightError) as info:
        core.converge(plan, params(), states, [], "sha256:img", relabelled + many)
    message = str(info.value)
    assert message.startswith(
        "One engine pool per VPN: VPN container 'g1' already runs engine pool 'b' (b-g1-100, b-g1-101, b-g1-102, "
        "b-g1-103 and 2 more); VPN container 'g2' already runs engine pool 'c' (c-g2-107). Engine pool 'ace' cannot "
        "share a VPN with another pool: ")
    assert message.endswith("or remove pool 'b' and pool 'c' with state=absent")


def test_other_pool_refusal_comes_before_health_and_failover(two):
    plan, _states, _decided = two
    states = states_for(plan, g2={"health": "unhealthy"})
    others = other_pool(states, "b", "g2", [108])
    for mode in ("fail", "failover"):
        with pytest.raises(core.PreflightError, match="^One engine pool per VPN: VPN container 'g2' already runs"):
            core.converge(plan, params(on_unhealthy=mode), states, [], "sha256:img", others)


def test_other_pools_elsewhere_are_no_concern(two):
    """Pools on other VPNs (by label and by namespace), and engines of a VPN container that does not exist, are
    neither refused nor touched."""
    plan, states, decided = two
    elsewhere = core.vpn_state("g9", vpn_inspect("g9", ports=range(900, 905)), RUNNING_VPN)
    others = other_pool({"g9": elsewhere}, "b", "g9", [900, 901])
    assert core.other_pools_on(plan, states, others) == {}
    gone = dict(states, g2=core.vpn_state("g2", None))
    orphan = other_pool({"g9": dict(elsewhere, id=None)}, "b", "g9", [902])
    orphan[0]["network_mode"] = "container:"
    assert core.other_pools_on(plan, gone, orphan) == {}
    again = core.converge(plan, params(), states, [], "sha256:img", others + orphan)
    assert acts(again) == acts(decided)
    assert core.other_pools_on(plan, states, other_pool(states, "b", "g2", [109, 108])) == {
        "g2": {"b": [core.engine_name("b", "g2", 108), core.engine_name("b", "g2", 109)]}}


# ------------------------------------------------------------------------------------- crash loops
@pytest.mark.parametrize("inspect, restarts, problem", [
    (None, 0, "the container is gone"),
    ({"State": {"Status": "restarting", "Restarting": True, "ExitCode": 3}, "RestartCount": 2}, 0,
     "crash-looping: it exited (exit code 3) and Docker keeps restarting it (2 restart(s))"),
    ({"State": {"Status": "running", "Restarting": True, "ExitCode": 1}, "RestartCount": 1}, None,
     "crash-looping: it exited (exit code 1) and Docker keeps restarting it (1 restart(s))"),
    ({"State": {"Status": "exited", "ExitCode": 3}, "RestartCount": 0}, 0, "it exited (exit code 3)"),
    ({"State": {"Status": "dead", "ExitCode": 137}}, 0, "it is dead (exit code 137)"),
    ({"State": {"Status": "created", "ExitCode": 0}}, 0, "it was never started"),
    ({"State": {"Status": "running", "ExitCode": 0}, "RestartCount": 2}, 0,
     "crash-looping: Docker restarted it 2 time(s) since this run started it"),
    ({"State": {"Status": "running", "ExitCode": 0}, "RestartCount": 3}, 1,
     "crash-looping: Docker restarted it 2 time(s) since this run started it"),
    ({"State": {"Status": "running", "ExitCode": 0}, "RestartCount": 0}, 0, None),
    ({"State": {"Status": "running", "ExitCode": 0}}, 0, None),
    ({"State": {"Status": "running", "ExitCode": 0}, "RestartCount": 4}, None, None),  # unpaused: count not judged
    ({"State": {"Status": "paused", "ExitCode": 0}, "RestartCount": 0}, 0, None),
])
def test_crash_problem(inspect, restarts, problem):
    assert core.crash_problem(inspect, restarts) == problem


def test_restart_baselines():
    """Docker resets RestartCount on every start it is asked for: 0 after create, recreate and start; an unpaused
    engine's count is from before (not judged); removals and the pull bring nothing up."""
    actions = [{"action": kind, "name": "e-%s" % kind} for kind in
               ("pull", "remove", "recreate", "start", "unpause", "create")]
    assert core.restart_baselines(actions) == {"e-recreate": 0, "e-start": 0, "e-create": 0}


# ------------------------------------------------------------------------------------ name clashes
def test_name_clash():
    actions = [{"action": "create", "name": "ace-g-100", "vpn": "g", "port": 100},
               {"action": "recreate", "name": "ace-g-101", "vpn": "g", "port": 101}]
    core.name_clashes(actions, {}, "ace")
    taken = {"ace-g-100": {"Id": "0123456789abcdef", "Image": "nginx", "Labels": {}},
             "ace-g-101": {"Id": "x", "Image": "y", "Labels": {}}}
    with pytest.raises(core.PreflightError) as info:
        core.name_clashes(actions, taken, "ace")
    assert str(info.value) == (
        "Name clash: container 'ace-g-100' (0123456789ab, image nginx) already exists and is not managed by "
        "acestream.orchestrator; engine pool 'ace' needs this name for its engine on VPN 'g' port 100: remove or "
        "rename that container, or choose another pool name")
    taken["ace-g-100"]["Labels"] = {core.LABEL_MANAGED_BY: core.MANAGER, core.LABEL_POOL: "other"}
    with pytest.raises(core.PreflightError, match="already exists and is engine pool 'other'"):
        core.name_clashes(actions, taken, "ace")


def test_same_engine_made_by_a_concurrent_run_is_no_clash():
    """Another run converging the pool made the slot's engine after this run listed the pool: same pool, same spec
    hash: not a clash (the create adopts it). Another spec for that slot still is one."""
    actions = [{"action": "create", "name": "ace-g-100", "vpn": "g", "port": 100}]
    desired = {"ace-g-100": {"labels": {core.LABEL_SPEC_HASH: "abc"}}}
    labels = {core.LABEL_MANAGED_BY: core.MANAGER, core.LABEL_POOL: "ace", core.LABEL_SPEC_HASH: "abc"}
    taken = {"ace-g-100": {"Id": "0123456789abcdef", "Image": "engine", "Labels": labels}}
    core.name_clashes(actions, taken, "ace", desired)
    labels[core.LABEL_SPEC_HASH] = "older"
    with pytest.raises(core.PreflightError, match="already exists and is engine pool 'ace'"):
        core.name_clashes(actions, taken, "ace", desired)
    with pytest.raises(core.PreflightError):
        core.name_clashes(actions, taken, "other-pool", desired)


def test_same_engine():
    """One check for "this container is the pool's engine for that slot": the name-clash check and the adoption of
    an engine a concurrent run created (a 409 on create) both use it."""
    spec = {"labels": {core.LABEL_SPEC_HASH: "abc"}}
    labels = {core.LABEL_MANAGED_BY: core.MANAGER, core.LABEL_POOL: "ace", core.LABEL_SPEC_HASH: "abc"}
    assert core.same_engine(labels, "ace", spec)
    assert not core.same_engine(labels, "other", spec)
    assert not core.same_engine(labels, "ace", None)  # no engine wanted in that slot
    assert not core.same_engine(dict(labels, **{core.LABEL_SPEC_HASH: "older"}), "ace", spec)
    assert not core.same_engine(dict(labels, **{core.LABEL_MANAGED_BY: "someone"}), "ace", spec)
    assert not core.same_engine({}, "ace", spec) and not core.same_engine(None, "ace", spec)


@pytest.mark.parametrize("kinds, image_id, pull, expected", [
    (["create"], None, "missing", "pull"),
    (["remove", "recreate"], None, "missing", "pull"),
    (["create"], "sha256:img", "missing", None),      # on the host already
    (["start", "unpause", "remove"], None, "missing", None),  # nothing is created from it
    ([], None, "never", None),
    (["start"], None, "never", None),
    (["create"], "sha256:img", "never", None),
])
def test_pull_action(kinds, image_id, pull, expected):
    actions = [{"action": kind, "name": "e%d" % i} for i, kind in enumerate(kinds)]
    decided = core.pull_action(actions, "registry.example/engine:2", image_id, pull)
    if expected is None:
        assert decided is None
    else:
        assert decided == {"action": "pull", "name": "registry.example/engine:2", "vpn": None, "port": None,
                           "reason": "image not on the Docker host", "id": None}


def test_pull_never_refuses_before_any_change():
    with pytest.raises(core.PreflightError) as info:
        core.pull_action([{"action": "recreate", "name": "e"}], "other:1", None, "never")
    assert str(info.value) == "image other:1 is not on the Docker host and pull is never: load or pull it first"


def test_converge_steps_compose(two):
    """converge is its steps in a row: the same answer from the step functions called one by one."""
    plan, states, decided = two
    observed = [core.observed_engine(c) for c in apply(plan, states, decided)][1:]
    by_vpn = {}
    for engine in observed:
        by_vpn.setdefault(engine["vpn"], []).append(engine)
    active, frozen = core.preflight(plan, states)
    warnings = []
    forwarded, allowed = core.forwarded_and_usable(plan, states, active, by_vpn, "off", warnings)
    assert forwarded == {"g1": [], "g2": []} and allowed["g1"] == list(plan.vpn("g1").slot_ports())
    targets, placed = core.placement(plan, POOL, active, frozen, allowed, by_vpn, warnings)
    desired = core.desired_specs(plan, params(), states, placed, forwarded, by_vpn)
    actions, matched = core.reconcile(plan, POOL, states, observed, desired, frozen, allowed, targets, "sha256:img")
    assert [(a["action"], a["name"]) for a in actions] == [("create", name("g1", 100))]
    before, after = core.diff_parts(observed, desired, matched, actions, frozen)
    whole = run(plan, states, apply(plan, states, decided)[1:])
    assert whole["actions"] == actions and whole["desired"] == desired and whole["warnings"] == warnings
    assert whole["engines"] == core.engines_after(plan, observed, desired, matched, actions, frozen)
    assert whole["before"] == {"engines": before} and whole["after"] == {"engines": after}
    assert whole["plan"] == core.plan_output(plan, states, targets, forwarded)
    assert (whole["active"], whole["frozen"]) == (active, frozen)


def test_absent_actions(two):
    plan, states, decided = two
    observed = [core.observed_engine(c) for c in apply(plan, states, decided)]
    actions = core.absent_actions(observed)
    assert [a["action"] for a in actions] == ["remove"] * 4
    assert actions[0] == {"action": "remove", "name": name("g1", 100), "vpn": "g1", "port": 100,
                          "reason": "state is absent", "id": "cid-" + name("g1", 100)}


def test_diff_before_after(two):
    plan, states, decided = two
    assert decided["before"] == {"engines": {}}
    assert decided["after"]["engines"][name("g1", 100)] == {
        "vpn": "g1", "port": 100, "https_port": 45000, "forwarded": False, "p2p_port": None, "image": IMAGE,
        "state": "running"}
    docker = apply(plan, states, decided)
    docker[0]["State"] = "exited"
    again = run(plan, states, docker)
    assert again["before"]["engines"][name("g1", 100)]["state"] == "exited"
    assert again["after"]["engines"][name("g1", 100)]["state"] == "running"
    untouched = copy.deepcopy(again["after"]["engines"])
    del untouched[name("g1", 100)]
    assert all(v["state"] == "running" for v in untouched.values())


# -------------------------------------------------------------------------------------- waiting for the VPNs
def test_vpns_to_wait_for_are_the_unhealthy_ones_time_may_heal():
    states = {
        "up": core.vpn_state("up", vpn_inspect("up"), RUNNING_VPN),
        "starting": core.vpn_state("starting", vpn_inspect("starting", health="starting"), RUNNING_VPN),
        "reconnecting": core.vpn_state("reconnecting", vpn_inspect("reconnecting"), {"vpn_status": "stopped"}),
        "restarting": core.vpn_state("restarting", vpn_inspect("restarting", status="restarting"), None),
        "missing": core.vpn_state("missing", None),
        "refused": core.vpn_state("refused", vpn_inspect("refused"), {"error": "401 Unauthorized", "refused": True}),
    }
    assert core.vpns_to_wait_for(states) == ["reconnecting", "restarting", "starting"]
    assert core.vpns_to_wait_for({"up": states["up"]}) == []
