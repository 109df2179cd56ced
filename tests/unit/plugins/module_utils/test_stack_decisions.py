# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's decisions (_host_ports, _plan_messages, _gluetun_stack, _app_stack, _container_changes, _ownership),
every message in its exact words, bad input."""

from __future__ import annotations

import pytest

from ansible_collections.acestream.orchestrator.plugins.module_utils import _app_stack as app_stack
from ansible_collections.acestream.orchestrator.plugins.module_utils import _container_changes as changes
from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_stack as gluetun_stack
from ansible_collections.acestream.orchestrator.plugins.module_utils import _host_ports as host_ports
from ansible_collections.acestream.orchestrator.plugins.module_utils import _ownership as ownership
from ansible_collections.acestream.orchestrator.plugins.module_utils import _plan_messages as plan_messages
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_values as stack_values
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    ERROR_KINDS,
    PortPlanError,
    build_plan,
)


def plan(names=("gluetun1", "gluetun2"), port_range="19000-19009", api_port=8001, **kwargs):
    return build_plan(list(names), port_range=port_range, api_port=api_port, **kwargs).to_dict()


def docker(name, ports=(), state="running", **extra):
    return dict({"Id": "id-" + name, "Names": ["/" + name], "State": state, "Labels": {"a": "b"},
                 "Ports": list(ports)}, **extra)


# --------------------------------------------------------------------------------------- containers_by_name
def test_containers_by_name():
    containers = [docker("g1"), {"Id": "x", "Names": ["/other", "/alias"]}, {"Id": "y", "Labels": None},
                  {"Id": "z", "Names": "/single"}]
    assert ownership.containers_by_name(containers) == {
        "g1": {"id": "id-g1", "state": "running", "labels": {"a": "b"}, "owner": None},
        "other": {"id": "x", "state": "unknown", "labels": {}, "owner": None},
        "?": {"id": "y", "state": "unknown", "labels": {}, "owner": None},
        "single": {"id": "z", "state": "unknown", "labels": {}, "owner": None},
    }
    assert ownership.containers_by_name(None) == {} and ownership.containers_by_name([]) == {}


def test_containers_by_name_tells_the_owner_by_the_labels():
    def labelled(name, labels):
        return {"Id": name, "Names": ["/" + name], "Labels": labels}

    gluetun = {"acestream.managed-by": "acestream.orchestrator.gluetun", "acestream.pool": "p"}
    app = {"acestream.managed-by": "acestream.orchestrator.orchestrator_app", "acestream.pool": "p"}
    engine = {"acestream.managed-by": "acestream.orchestrator.engine_pool", "acestream.pool": "p"}
    found = ownership.containers_by_name([labelled("g", gluetun), labelled("a", app), labelled("e", engine),
                                          labelled("x", dict(app, **{"acestream.pool": "other"})),
                                          labelled("ae", {"acestream.app-pool": "p"}), labelled("n", {})], pool="p")
    assert {name: entry["owner"] for name, entry in found.items()} == {
        "g": "gluetun", "a": "app", "e": "engine", "x": None, "ae": "app_engine", "n": None}


@pytest.mark.parametrize("value, message", [
    ("text", "the containers must be a list, not a string"),
    ({"a": 1}, "the containers must be a list, not a mapping"),
    (5, "the containers must be a list, not a number"),
    ([None], "each container must be a mapping as docker_host_info lists it, not null"),
    (["x"], "each container must be a mapping as docker_host_info lists it, not a string"),
])
def test_containers_by_name_bad_input(value, message):
    with pytest.raises(stack_values.StackCheckError) as info:
        ownership.containers_by_name(value)
    assert str(info.value) == message


# --------------------------------------------------------------------------------------- host ports
def test_stack_host_ports():
    the_plan = plan(api_host_ports=[8001, 8002])
    ports = host_ports.stack_host_ports(the_plan, api_bind="127.0.0.1", port_range_bind=None,
                                        orchestrator={"name": "app", "port": "8000", "bind": "127.0.0.1"})
    assert ports == [
        {"what": "the control server of gluetun1 (api_host_port)", "bind": "127.0.0.1", "start": 8001, "end": 8001},
        {"what": "the control server of gluetun2 (api_host_port)", "bind": "127.0.0.1", "start": 8002, "end": 8002},
        {"what": "the engine ports of gluetun1 (19000-19004)", "bind": "", "start": 19000, "end": 19004},
        {"what": "the engine ports of gluetun2 (19005-19009)", "bind": "", "start": 19005, "end": 19009},
        {"what": "the orchestrator app (acestream_orchestrator_port)", "bind": "127.0.0.1", "start": 8000, "end": 8000},
    ]
    # A plan without control servers publishes only the engine ranges.
    bare = build_plan(["g"], port_range="1-2").to_dict()
    assert [p["what"] for p in host_ports.stack_host_ports(bare)] == ["the engine ports of g (1-2)"]


@pytest.mark.parametrize("the_plan, kwargs, message", [
    (None, {}, "the port plan has no vpns: give the result of acestream.orchestrator.port_plan"),
    ([], {}, "the port plan must be a mapping, not a list"),
    ("plan", {}, "the port plan must be a mapping, not a string"),
    ({"vpns": "x"}, {}, "the port plan's vpns must be a list, not a string"),
    ({"vpns": [{"name": "g"}]}, {}, "the port plan's vpns must be the entries of acestream.orchestrator.port_plan "
                                    "(name, index, range, start, end ...), not {'name': 'g'}"),
    ("ok", {"api_bind": 5}, "api_bind must be a string, not a number"),
    ("ok", {"orchestrator": "app"}, "orchestrator must be a mapping, not a string"),
    ("ok", {"orchestrator": {"port": None}}, "the orchestrator app's port must be a port number, not null"),
    ("ok", {"orchestrator": {"port": True}}, "the orchestrator app's port must be a port number, not a boolean"),
    ("ok", {"orchestrator": {"port": 70000}},
     "the orchestrator app's port must be a port number between 1 and 65535, not 70000"),
])
def test_stack_host_ports_bad_input(the_plan, kwargs, message):
    with pytest.raises(stack_values.StackCheckError) as info:
        host_ports.stack_host_ports(plan() if the_plan == "ok" else the_plan, **kwargs)
    assert str(info.value) == message


def ports(*entries):
    return [{"what": what, "bind": bind, "start": start, "end": end} for what, bind, start, end in entries]


def test_port_clashes():
    assert host_ports.port_clashes(ports(("A", "", 8000, 8000), ("B", "127.0.0.1", 8000, 8000))) == [
        "A and B both publish host port 8000"]
    assert host_ports.port_clashes(ports(("A", "0.0.0.0", 19000, 19009), ("B", "::", 19005, 19020))) == [
        "A and B both publish host port 19005-19009"]
    # Two different addresses may publish the same port; apart ranges never clash.
    assert host_ports.port_clashes(ports(("A", "127.0.0.1", 8000, 8000), ("B", "10.0.0.1", 8000, 8000))) == []
    assert host_ports.port_clashes(ports(("A", "", 1, 5), ("B", "", 6, 9))) == []
    assert host_ports.port_clashes(ports(("A", "1.2.3.4", 1, 5), ("B", "1.2.3.4", 5, 9), ("C", "", 9, 9))) == [
        "A and B both publish host port 5", "B and C both publish host port 9"]
    assert host_ports.port_clashes(None) == []
    with pytest.raises(stack_values.StackCheckError, match="host_ports must be a list, not a mapping"):
        host_ports.port_clashes({})


def test_ports_taken():
    mine = ports(("the engine ports of g (19000-19009)", "", 19000, 19009), ("the control server of g", "127.0.0.1",
                                                                             8001, 8001))
    containers = [
        docker("g", [{"PublicPort": 19000, "IP": "0.0.0.0"}]),                   # ours
        docker("other", [{"PublicPort": p, "IP": ip, "Type": "tcp"} for p in (19002, 19003, 19004, 19007)
                         for ip in ("0.0.0.0", "::")] + [{"PrivatePort": 80}]),  # unpublished port
        docker("udp", [{"PublicPort": 19001, "Type": "udp"}]),
        docker("stopped", [{"PublicPort": 19001}], state="exited"),
        docker("elsewhere", [{"PublicPort": 8001, "IP": "10.0.0.1"}]),           # another address than ours
        docker("local", [{"PublicPort": 8001, "IP": "127.0.0.1"}, {"PublicPort": 19008}], State=None),
    ]
    assert host_ports.ports_taken(mine, containers, ["g"]) == [
        "host ports 19002-19004, 19007 (the engine ports of g (19000-19009)) are already published by container other",
        "host port 8001 (the control server of g) is already published by container local",
        "host port 19008 (the engine ports of g (19000-19009)) is already published by container local",
    ]
    assert host_ports.ports_taken(mine, None) == []
    with pytest.raises(stack_values.StackCheckError, match="each container must be a mapping as docker_host_info lists it"):
        host_ports.ports_taken(mine, [3])
    with pytest.raises(stack_values.StackCheckError, match="the stack's container names must be a list, not a string"):
        host_ports.ports_taken(mine, [], "g")


CLASH = ('Docker would refuse with "port is already allocated": %s. Fix from the port guide ("Port Already '
         'Allocated"): "Ensure no overlap between different services" and "Verify Gluetun port mappings match '
         'PORT_RANGE_HOST" (the orchestrator app takes 8000: keep GLUETUN_API_PORT and api_host_port off it, e.g. '
         '8001/8002 as in the guide).')
TAKEN = ('Docker would refuse with "port is already allocated": %s. Fix from the port guide: "Check if another '
         'container is using the same ports" and "Ensure no overlap between different services": stop that '
         'container or move acestream_port_range_host / api_host_port / acestream_orchestrator_port.')


def test_host_port_conflicts():
    the_plan = plan(["g"], api_host_ports=[8000])
    app = {"name": "app", "port": 8000, "bind": "127.0.0.1"}
    assert host_ports.host_port_conflicts(the_plan, api_bind="127.0.0.1") == []
    assert host_ports.host_port_conflicts(the_plan, api_bind="127.0.0.1", orchestrator=app) == [
        CLASH % "the control server of g (api_host_port) and the orchestrator app (acestream_orchestrator_port) both "
                "publish host port 8000"]
    containers = [docker("app", [{"PublicPort": 8000}]), docker("x", [{"PublicPort": 19001}])]
    assert host_ports.host_port_conflicts(the_plan, orchestrator=dict(app, port=8080), containers=containers) == [
        TAKEN % "host port 19001 (the engine ports of g (19000-19009)) is already published by container x"]
    # Without the app (null, or what ansible-core 2.17 renders of it: '' or an empty mapping), its container is
    # someone else's.
    for off in ("", {}):
        assert host_ports.host_port_conflicts(the_plan, orchestrator=off, containers=containers) == \
            host_ports.host_port_conflicts(the_plan, containers=containers)
    assert host_ports.host_port_conflicts(the_plan, containers=containers) == [
        TAKEN % ("host port 8000 (the control server of g (api_host_port)) is already published by container app; "
                 "host port 19001 (the engine ports of g (19000-19009)) is already published by container x")]
    with pytest.raises(stack_values.StackCheckError, match="the orchestrator app's name must be a string, not null"):
        host_ports.host_port_conflicts(the_plan, orchestrator={"port": 8080}, containers=[])


def test_host_port_conflicts_lists_ten():
    the_plan = plan(["g"], port_range="19000-19099")
    containers = [docker("c%02d" % n, [{"PublicPort": 19000 + n}]) for n in range(12)]
    message, = host_ports.host_port_conflicts(the_plan, containers=containers)
    assert message.count("already published by container") == 10
    assert "container c09; ... (2 more). Fix from the port guide" in message


# --------------------------------------------------------------------------------------- the port plan's errors
VARIABLES = ("Variables: port_range = acestream_port_range_host (PORT_RANGE_HOST), vpn_port_ranges = "
             "acestream_vpn_port_ranges (GLUETUN_PORT_RANGE_1/_2), replicas = acestream_engine_replicas (MAX_REPLICAS), "
             "https_port_range = acestream_engine_https_port_range (ACE_HTTPS_RANGE), api_port = "
             "acestream_gluetun_api_port (GLUETUN_API_PORT), api_host_ports = the api_host_port of each item of "
             "acestream_gluetun_containers.")
OVERLAP = ('Fix from the port guide: "Port Range Not Split: Verify each VPN has its own port range. Ensure ranges '
           'don\'t overlap" (and keep ACE_HTTPS_RANGE apart from them).')
SIZE = ('Fix from the port guide: "Size: Choose a range that can accommodate your MAX_REPLICAS setting": widen '
        'acestream_port_range_host (PORT_RANGE_HOST) or the VPN\'s range, or lower acestream_engine_replicas.')
OUTSIDE = ('Fix from the port guide: "Check that PORT_RANGE_HOST matches Gluetun port mappings": keep every '
           'GLUETUN_PORT_RANGE_N inside PORT_RANGE_HOST.')
RANGES = "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999."
NAMESPACE = ('Fix from the port guide ("Wrong GLUETUN_API_PORT"): "Use the internal port, not the external port": '
             'the control server and the engines share each Gluetun container\'s network namespace; choose a '
             'GLUETUN_API_PORT (acestream_gluetun_api_port) outside the engine and HTTPS ranges (the guide uses 8001).')
ALLOCATED = ('Fix from the port guide ("Port Already Allocated"): "Ensure no overlap between different services": '
             'keep every api_host_port of acestream_gluetun_containers outside the engine ranges.')
DIFFERENT = ('Fix from the port guide: "Different External Ports: in redundant mode, use different external HTTP '
             'control server ports for host access" (e.g. 8001:8001 and 8002:8001).')

G2 = ["g1", "g2"]


@pytest.mark.parametrize("names, kwargs, kind, error, fix", [
    (G2, dict(vpn_port_ranges={"g1": "19000-19003", "g2": "19002-19005"}), "overlap",
     "vpn_port_ranges.g2: the ranges of 'g1' (19000-19003) and 'g2' (19002-19005) overlap; give each VPN its own "
     "ports", OVERLAP),
    (["g1"], dict(port_range="19000-19009", https_port_range="19005-19006"), "overlap",
     "https_port_range: 19005-19006 overlaps the engine ports of 'g1' (19000-19009); HTTPS ports share the VPN's "
     "namespace with them: choose a range apart, e.g. '45000-49999'", OVERLAP),
    (G2, dict(port_range="19000-19005", replicas=9), "capacity",
     "replicas: 9 engines exceed the capacity of the port ranges (6: g1 19000-19002, g2 19003-19005); widen the "
     "ranges or lower replicas", SIZE),
    (G2, dict(port_range="19000-19000"), "capacity",
     "port_range: 19000-19000 holds 1 port(s), too few to split between 2 VPNs; widen it to at least 2 ports", SIZE),
    (G2, dict(port_range="19000-19009", vpn_port_ranges={"g1": "19000-19002", "g2": "19010-19012"}), "outside",
     "vpn_port_ranges.g2: 19010-19012 lies outside port_range 19000-19009; move it inside or widen port_range",
     OUTSIDE),
    (G2, dict(port_range="19999-19000"), "syntax",
     "port_range: '19999-19000' is reversed (start 19999 > end 19000); write it low-high: '19000-19999'", RANGES),
    (G2, dict(port_range="a-b"), "syntax",
     "port_range: 'a-b' is not a port range; write 'START-END' with whole numbers, e.g. '19000-19999'", RANGES),
    (G2, dict(vpn_port_ranges={"g1": "1-2", "g2": [1]}), "syntax",
     "vpn_port_ranges.g2: [1] is not a port range; give [START, END] or 'START-END'", RANGES),
    (G2, dict(port_range="1-9", replicas="many"), "syntax",
     "replicas: 'many' is not a number of engines; use a whole number, 0 or more",
     "Give MAX_REPLICAS (acestream_engine_replicas) as a whole number, 0 or more."),
    (G2, dict(port_range="1-9", api_port="x"), "syntax",
     "api_port: 'x' is not a port; give GLUETUN_API_PORT, the internal port of HTTP_CONTROL_SERVER_ADDRESS (the "
     "same for every VPN), as a whole number, e.g. 8001",
     "Give GLUETUN_API_PORT (acestream_gluetun_api_port) as a port number, e.g. 8001."),
    (G2, dict(port_range="1-9", api_host_ports=[8001, True]), "syntax",
     "api_host_ports.g2: True is not a port; give the external host port of the VPN's control server as a whole "
     "number, e.g. 8002", None),
    (G2, dict(port_range="1-9", api_host_ports=[8001, "x"]), "syntax",
     "api_host_ports.g2: 'x' is not a port; give the external host port of the VPN's control server as a whole "
     "number, e.g. 8002",
     "Give each api_host_port of acestream_gluetun_containers as a port number, e.g. 8001 and 8002."),
    (G2, dict(port_range="19000-19009", api_port=19001), "namespace",
     "api_port: 19001 lies inside the engine ports of 'g1' (19000-19004)", NAMESPACE),
    (G2, dict(port_range="19000-19009", api_port=45000), "namespace",
     "api_port: 45000 lies inside https_port_range 45000-49999", NAMESPACE),
    (G2, dict(port_range="19000-19009", api_port=8001, api_host_ports=[19001, 8002]), "allocated",
     "api_host_ports.g1: host port 19001 of 'g1' lies inside the engine range 19000-19004 that 'g1' publishes on "
     "the host: Docker would refuse with \"port is already allocated\"", ALLOCATED),
    (G2, dict(port_range="19000-19009", api_port=8001, api_host_ports=[8001, 8001]), "duplicate",
     "api_host_ports.g2: host port 8001 of 'g2' is already given to 'g1': Docker would refuse with \"port is already "
     "allocated\"; each control server needs its own external port, e.g. 8002", DIFFERENT),
    (G2, dict(port_range="19000-19009", api_port=8001, api_host_ports=[8001]), "count",
     "api_host_ports: [8001] gives 1 port(s) for 2 VPN(s)",
     "Give one api_host_port to each item of acestream_gluetun_containers."),
    (G2, dict(port_range="1-9", api_host_ports="8001"), "syntax", "api_host_ports: '8001' is neither a list nor",
     "Give each api_host_port of acestream_gluetun_containers as a port number, e.g. 8001 and 8002."),
    (G2, dict(), "required", "port_range: required: no range for VPN(s) g1, g2",
     "Set acestream_port_range_host (PORT_RANGE_HOST), split evenly between the Gluetun containers, or give each "
     "container its own range in acestream_vpn_port_ranges (GLUETUN_PORT_RANGE_1/_2)."),
    (G2, dict(port_range="1-9", vpn_port_ranges={"g3": "1-2"}), "unknown",
     "vpn_port_ranges: 'g3' is not in vpn_containers ['g1', 'g2']",
     "Name only the Gluetun containers of acestream_gluetun_containers."),
    (G2, dict(port_range="1-9", vpn_port_ranges=["1-2"]), "syntax",
     "vpn_port_ranges: give a mapping of VPN container name to range", RANGES),
    (["g1", "g1"], dict(port_range="1-9"), "names", "vpn_containers: 'g1' is listed twice",
     "Give each Gluetun container of acestream_gluetun_containers its own valid Docker name (the guide's best "
     "practice: gluetun1, gluetun2)."),
    ("g1", dict(port_range="1-9"), "names", "vpn_containers: give a list of Gluetun container names", None),
    ([], dict(port_range="1-9"), "names", "vpn_containers: at least one Gluetun container name is required", None),
    (["bad name"], dict(port_range="1-9"), "names", "vpn_containers: 'bad name' is not a valid Docker container name",
     None),
    ([None], dict(port_range="1-9"), "names", "vpn_containers: None is not a container name", None),
])
def test_port_plan_messages(names, kwargs, kind, error, fix):
    with pytest.raises(PortPlanError) as info:
        build_plan(names, **kwargs)
    assert info.value.kind == kind and kind in ERROR_KINDS
    message = plan_messages.port_plan_message(info.value)
    assert message.startswith("The port plan is not valid: " + error), message
    assert (" %s " % VARIABLES) in message
    assert message.endswith(fix or plan_messages.port_plan_fix(info.value))


OTHER = plan_messages.OTHER_FIX


def test_every_kind_has_a_fix():
    for kind in ERROR_KINDS:
        if kind != "syntax":
            assert kind in plan_messages.PLAN_FIXES
    assert set(plan_messages.PLAN_FIXES) <= set(ERROR_KINDS)


def test_port_plan_fix_of_other_errors():
    # Raised outside _portplan (no kind), or a field the roles do not set.
    assert plan_messages.port_plan_fix(PortPlanError("engine_variant", "unknown variant")) == OTHER
    assert plan_messages.port_plan_fix(PortPlanError("name", "x", kind="syntax")) == OTHER
    assert plan_messages.port_plan_message(PortPlanError("replicas", "bad.", kind="capacity")) == (
        "The port plan is not valid: replicas: bad. %s %s" % (VARIABLES, SIZE))
    with pytest.raises(stack_values.StackCheckError, match="port_plan_fix takes a PortPlanError, not a string"):
        plan_messages.port_plan_fix("overlap")


def test_port_plan_error_kind_is_additive():
    error = PortPlanError("port_range", "bad")
    assert (error.field, error.message, error.kind, str(error)) == ("port_range", "bad", None, "port_range: bad")


# --------------------------------------------------------------------------------------- Gluetun environments
ADDRESS = ('GLUETUN_API_PORT (acestream_gluetun_api_port) is 8001 but Gluetun container \'g1\' sets '
           'HTTP_CONTROL_SERVER_ADDRESS=:8002. Fix from the port guide ("Wrong GLUETUN_API_PORT"): "Verify '
           'GLUETUN_API_PORT matches HTTP_CONTROL_SERVER_ADDRESS. Use the internal port, not the external port." '
           "Remove HTTP_CONTROL_SERVER_ADDRESS from the container's env (the role writes :8001 itself) or set "
           "acestream_gluetun_api_port to 8002; the external port is api_host_port (8001).")
UNUSABLE = ("The env of Gluetun container '%s' has %d unusable variable(s): %s. Names are letters, digits and '_'; "
            "values are single-line strings, numbers or booleans (an env file holds one KEY=value per line).")


def test_gluetun_env_problems():
    env = {"HTTP_CONTROL_SERVER_ADDRESS": "0.0.0.0:8001", "A": 1, "B": True, "C": "", "D": 1.5}
    ok = [{"name": "g1", "api_host_port": 8001, "env": env}]
    assert gluetun_stack.gluetun_env_problems(ok, env={"TZ": "UTC"}, api_port="8001") == []
    assert gluetun_stack.gluetun_env_problems([{"name": "g1"}], api_port=8001) == []
    bad = [{"name": "g1", "api_host_port": 8001, "env": {"HTTP_CONTROL_SERVER_ADDRESS": ":8002"}},
           {"name": "g2", "env": {"1X": "a", "M": {"a": 1}, "L": ["a"], "N": "a\nb", "R": "a\r", "Z": None,
                                  "K": "s3cr3t\x00"}}]
    assert gluetun_stack.gluetun_env_problems(bad, env={"SECRET": "s3cr3t"}, api_port=8001) == [
        ADDRESS, UNUSABLE % ("g2", 7, "; ".join([
            "'1X' is not an environment variable name: use letters, digits and '_', not starting with a digit",
            "M is a mapping: give a string, a number or a boolean", "L is a list: give a string, a number or a boolean",
            "N spans several lines: an env file holds one KEY=value per line",
            "R spans several lines: an env file holds one KEY=value per line",
            "Z is null (a key with no value): give a string ('' for an empty value), a number or a boolean",
            "K holds a NUL character, which no environment can carry: remove it"]))]
    # The shared env counts for every container, and a container's own env overrides it.
    bad_name = "'Y-Z' is not an environment variable name: use letters, digits and '_', not starting with a digit"
    assert gluetun_stack.gluetun_env_problems([{"name": "g1", "env": {"X": "fine"}}], env={"X": "a\nb", "Y-Z": 1},
                                              api_port=8001) == [UNUSABLE % ("g1", 1, bad_name)]
    assert "s3cr3t" not in " ".join(gluetun_stack.gluetun_env_problems(bad, env={"SECRET": "s3cr3t"}, api_port=8001))


@pytest.mark.parametrize("containers, kwargs, message", [
    ("g1", dict(api_port=8001), "containers must be a list, not a string"),
    ([{"env": {}}], dict(api_port=8001), "each container must be a mapping with a name, not a mapping whose name is null"),
    ([None], dict(api_port=8001), "each container must be a mapping with a name, not null"),
    ([{"name": "g", "env": ["A=1"]}], dict(api_port=8001), "the env of 'g' must be a mapping, not a list"),
    ([{"name": "g"}], dict(api_port=8001, env="A=1"), "env must be a mapping, not a string"),
    ([{"name": "g"}], dict(api_port=None), "api_port must be a port number, not null"),
])
def test_gluetun_env_problems_bad_input(containers, kwargs, message):
    with pytest.raises(stack_values.StackCheckError) as info:
        gluetun_stack.gluetun_env_problems(containers, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("key, value, expected", [
    ("A", True, "on"), ("A", False, "off"), ("A", "", ""), ("A", 1, "1"), ("A", 1.5, "1.5"), ("A", "x y", "x y"),
    ("_A1", "=", "="),
])
def test_gluetun_env_value(key, value, expected):
    assert gluetun_stack.gluetun_env_value(key, value) == expected


@pytest.mark.parametrize("key, value, message", [
    ("1A", "x", "'1A' is not an environment variable name: use letters, digits and '_', not starting with a digit"),
    ("A-B", "x", "'A-B' is not an environment variable name"),
    (1, "x", "1 is not an environment variable name"),
    ("A", {"k": 1}, "A is a mapping: give a string, a number or a boolean"),
    ("A", [1], "A is a list: give a string, a number or a boolean"),
    ("A", None, "A is null (a key with no value): give a string ('' for an empty value), a number or a boolean"),
    ("A", "a\x00b", "A holds a NUL character, which no environment can carry: remove it"),
    ("A", float("nan"), "A is not a finite number: give a string, a number or a boolean"),
    ("A=B", "x", "'A=B' is not an environment variable name"),
    ("A\n", "x", "'A\\u000a' is not an environment variable name"),
    ("A", "a\nb", "A spans several lines: an env file holds one KEY=value per line"),
])
def test_gluetun_env_value_refused(key, value, message):
    with pytest.raises(stack_values.StackCheckError) as info:
        gluetun_stack.gluetun_env_value(key, value)
    assert str(info.value).startswith(message)
    assert "a\nb" not in str(info.value)


# --------------------------------------------------------------------------------------- Gluetun containers
HEADER = ("# Gluetun container %s of stack pool: environment written by acestream.orchestrator.\n"
          "# Mode 0600: it holds the provider credentials. One KEY=value per line, taken literally (no quotes).\n")


def test_gluetun_env_text():
    assert gluetun_stack.gluetun_env_text("g1", "pool", {"B": "x", "A": "on"}) == HEADER % "g1" + "A=on\nB=x\n"
    assert gluetun_stack.gluetun_env_text("g1", "pool", {}) == HEADER % "g1"


def test_gluetun_instances():
    containers = [{"name": "g1", "api_host_port": 8001, "env": {"KEY": "k1", "PF": True}},
                  {"name": "g2", "api_host_port": 8002}]
    the_plan = plan(["g1", "g2"], api_host_ports=[8001, 9002])
    out = gluetun_stack.gluetun_instances(containers, the_plan, "/opt/s/", "pool", env={"PF": False, "TZ": "UTC"},
                                          api_bind="127.0.0.1", port_range_bind="", auth_toml="[[roles]]\n")
    first, second = out
    assert {k: v for k, v in first.items() if k not in ("files", "directories", "absent")} == {
        "name": "g1", "index": 0, "api_host_port": 8001, "range": "19000-19004", "dir": "/opt/s/gluetun/g1",
        "env_file": "/opt/s/gluetun/g1/gluetun.env", "auth_dir": "/opt/s/gluetun/g1/auth",
        "state_dir": "/opt/s/gluetun/g1/state",
        "env": {"KEY": "k1", "PF": "on", "TZ": "UTC", "HTTP_CONTROL_SERVER_ADDRESS": ":8001",
                "HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH": "/gluetun/auth/config.toml"},
        "published": ["127.0.0.1:8001:8001", "19000-19004:19000-19004"],
    }
    assert second["published"] == ["127.0.0.1:9002:8001", "19005-19009:19005-19009"]
    assert second["api_host_port"] == 9002 and second["env"]["PF"] == "off"
    assert first["directories"] == [{"path": "/opt/s/gluetun/g1", "mode": "0700"},
                                    {"path": "/opt/s/gluetun/g1/state", "mode": "0700"},
                                    {"path": "/opt/s/gluetun/g1/auth", "mode": "0700"}]
    assert second["state_dir"] == "/opt/s/gluetun/g2/state"  # never shared between VPNs
    assert first["files"] == [
        {"path": "/opt/s/gluetun/g1/gluetun.env", "mode": "0600", "secret_content": HEADER % "g1" + (
            "HTTP_CONTROL_SERVER_ADDRESS=:8001\nHTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH=/gluetun/auth/config.toml\n"
            "KEY=k1\nPF=on\nTZ=UTC\n")},
        {"path": "/opt/s/gluetun/g1/auth/config.toml", "mode": "0600", "secret_content": "[[roles]]\n"},
    ]
    assert first["absent"] == []


def test_gluetun_instances_without_auth():
    for auth in (None, ""):
        g, = gluetun_stack.gluetun_instances([{"name": "g1"}], plan(["g1"]), "/s", "pool", api_bind=None, port_range_bind="::",
                                             auth_toml=auth, auth_dir="/elsewhere/")
        assert g["published"] == ["8001:8001", ":::19000-19009:19000-19009"]
        assert g["env"] == {"HTTP_CONTROL_SERVER_ADDRESS": ":8001"}
        assert g["directories"] == [{"path": "/s/gluetun/g1", "mode": "0700"},
                                    {"path": "/s/gluetun/g1/state", "mode": "0700"}]
        assert [f["path"] for f in g["files"]] == ["/s/gluetun/g1/gluetun.env"]
        assert g["absent"] == ["/s/gluetun/g1/auth"]


def test_gluetun_instances_auth_dir():
    g, = gluetun_stack.gluetun_instances([{"name": "g1"}], plan(["g1"]), "/s", "pool", auth_toml="x", auth_dir="/elsewhere/")
    assert g["env"]["HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH"] == "/elsewhere/config.toml"


@pytest.mark.parametrize("containers, the_plan, args, kwargs, message", [
    ([{"name": "g9"}], "ok", ("/s", "p"), {}, "container 'g9' is not in the port plan (gluetun1, gluetun2): plan the "
                                              "same containers"),
    ([{"name": "gluetun1"}], "bare", ("/s", "p"), {},
     "the port plan has no control servers: compute it with api_port (acestream.orchestrator.port_plan(..., "
     "api_port=...))"),
    ("gluetun1", "ok", ("/s", "p"), {}, "containers must be a list, not a string"),
    ([{"name": 1}], "ok", ("/s", "p"), {}, "each container must be a mapping with a name, not a mapping whose name is a number"),
    ([{"name": "gluetun1"}], "ok", (None, "p"), {}, "stack_dir must be a string, not null"),
    ([{"name": "gluetun1"}], "ok", ("/", "p"), {}, "stack_dir must be a directory path, not empty"),
    ([{"name": "gluetun1"}], "ok", ("/s", ["p"]), {}, "stack_name must be a string, not a list"),
    ([{"name": "gluetun1"}], "ok", ("/s", "p"), {"env": []}, "env must be a mapping, not a list"),
    ([{"name": "gluetun1"}], "ok", ("/s", "p"), {"auth_toml": 5}, "auth_toml must be a string, not a number"),
    ([{"name": "gluetun1"}], "ok", ("/s", "p"), {"port_range_bind": False},
     "port_range_bind must be a string, not a boolean"),
    ([{"name": "gluetun1", "env": {"M": {"a": 1}}}], "ok", ("/s", "p"), {},
     "the env of Gluetun container 'gluetun1': M is a mapping: give a string, a number or a boolean"),
    ([{"name": "gluetun1"}], None, ("/s", "p"), {},
     "the port plan has no vpns: give the result of acestream.orchestrator.port_plan"),
])
def test_gluetun_instances_bad_input(containers, the_plan, args, kwargs, message):
    the_plan = {"ok": plan(), "bare": build_plan(["gluetun1"], port_range="1-9").to_dict()}.get(the_plan, the_plan)
    with pytest.raises(stack_values.StackCheckError) as info:
        gluetun_stack.gluetun_instances(containers, the_plan, *args, **kwargs)
    assert str(info.value) == message


# --------------------------------------------------------------------------------------- the orchestrator app
def test_orchestrator_app_env():
    env = app_stack.orchestrator_app_env(plan(), "redundant", 8001, port_range_host="", https_port_range="45000-49999",
                                         replicas=4, docker_network="aceserver", engine_variant="krinkuto11-amd64",
                                         env={"DEBUG_MODE": True, "IDLE": 30, "APP_PORT": " 9000 ", "X": ""})
    assert env == {
        "APP_PORT": "9000", "VPN_MODE": "redundant", "GLUETUN_CONTAINER_NAME": "gluetun1", "GLUETUN_API_PORT": "8001",
        "PORT_RANGE_HOST": "19000-19009", "GLUETUN_PORT_RANGE_1": "19000-19004", "ACE_HTTPS_RANGE": "45000-49999",
        "MIN_REPLICAS": "4", "MAX_REPLICAS": "4", "DOCKER_NETWORK": "aceserver", "GLUETUN_CONTAINER_NAME_2": "gluetun2",
        "GLUETUN_PORT_RANGE_2": "19005-19009", "ENGINE_VARIANT": "krinkuto11-amd64", "DEBUG_MODE": "true",
        "IDLE": "30", "X": "",
    }
    single = app_stack.orchestrator_app_env(plan(["g"]), "single", "8001", port_range_host="19000-19999", replicas="0")
    assert single["PORT_RANGE_HOST"] == "19000-19999" and single["MAX_REPLICAS"] == "1"
    assert single["MIN_REPLICAS"] == "0" and "GLUETUN_CONTAINER_NAME_2" not in single
    assert "ENGINE_VARIANT" not in single and single["DOCKER_NETWORK"] == ""


@pytest.mark.parametrize("args, kwargs, message", [
    ((None, "single", 8001), {}, "the port plan has no vpns: give the result of acestream.orchestrator.port_plan"),
    (("ok", "single", None), {}, "api_port must be a port number, not null"),
    (("ok", "single", 8001), {"replicas": -1}, "replicas must be a whole number, 0 or more, not '-1'"),
    (("ok", "single", 8001), {"replicas": "x"}, "replicas must be a whole number, 0 or more, not 'x'"),
    (("ok", "single", 8001), {"env": "A=1"}, "env must be a mapping, not a string"),
    (("ok", "single", 8001), {"env": {"A": [1]}}, "env: A is a list: give a string, a number or a boolean"),
    (("ok", "single", 8001), {"env": {"A": None, "B": "x\ny"}},
     "env: A is null (a key with no value): give a string ('' for an empty value), a number or a boolean; env: B "
     "spans several lines: an env file holds one KEY=value per line"),
])
def test_orchestrator_app_env_bad_input(args, kwargs, message):
    args = (plan() if args[0] == "ok" else args[0],) + args[1:]
    with pytest.raises(stack_values.StackCheckError) as info:
        app_stack.orchestrator_app_env(*args, **kwargs)
    assert str(info.value) == message


# --------------------------------------------------------------------------------------- what changed
def result(name, before, after, changed=True):
    return {"changed": changed, "item": {"name": name, "env": {"SECRET": "s3cr3t"}},
            "diff": {"before": before, "after": after}}


def test_container_changes():
    results = [
        result("g0", {}, {}, changed=False),
        result("g1", {"exists": False}, {"exists": True, "env": ["SECRET=s3cr3t"]}),
        result("g2", {"exists": True, "env": ["SECRET=old", "SAME=1", "GONE=x"], "labels": {"a": "1", "b": "2"},
                      "published_ports": ["8001:8001"], "running": False},
               {"exists": True, "env": ["SECRET=s3cr3t", "SAME=1", "NEW=y"], "labels": {"a": "1", "b": "3", "c": "4"},
                "published_ports": ["8002:8001"], "running": True, "image": "img:2"}),
        result("g3", {"exists": True, "running": False}, {"exists": True, "running": True}),
        result("g4", {"env": {"A": "1"}, "labels": {"a": "1"}}, {"env": {"A": "2"}, "labels": {"a": "1"}}),
        {"changed": True, "item": "g5"},
        {"changed": True, "container": {"Name": "/g6"}, "diff": None},
        {"changed": True, "diff": {"before": {"env": ["A=1"]}, "after": {"env": ["A=1"]}}},
        {"skipped": True, "item": {"name": "g8"}},
    ]
    assert changes.container_changes(results) == [
        {"container": "g1", "changes": ["created"]},
        {"container": "g2", "changes": ["env: GONE, NEW, SECRET (values not shown)", "image: null -> \"img:2\"",
                                        "labels: b=3, c=4", "published_ports: [\"8001:8001\"] -> [\"8002:8001\"]"]},
        {"container": "g3", "changes": ["started"]},
        {"container": "g4", "changes": ["env: A (values not shown)"]},
        {"container": "g5", "changes": ["started"]},
        {"container": "g6", "changes": ["started"]},
        {"container": "?", "changes": ["started"]},
    ]
    text = repr(changes.container_changes(results))
    assert "s3cr3t" not in text and "old" not in text and "=y" not in text
    assert changes.container_changes(None) == [] and changes.container_changes([]) == []


@pytest.mark.parametrize("value, message", [
    ("x", "results must be a list, not a string"),
    ({"results": []}, "results must be a list, not a mapping"),
    ([None], "each result must be a mapping as docker_container registers it, not null"),
])
def test_container_changes_bad_input(value, message):
    with pytest.raises(stack_values.StackCheckError) as info:
        changes.container_changes(value)
    assert str(info.value) == message


def test_split_secrets_keeps_the_records_order():
    """Keys sorted regardless of case, as the compose record always listed them (Jinja's sort): '_' before letters,
    a lower-case key among the others."""
    env = {"HTTPPROXY": "on", "HTTP_CONTROL_SERVER_ADDRESS": ":8001", "b_lower": "1", "A_KEY": "k", "Z": "z"}
    shown, hidden = gluetun_stack.split_secrets(env, "KEY")
    assert list(shown) == ["b_lower", "HTTP_CONTROL_SERVER_ADDRESS", "HTTPPROXY", "Z"] and hidden == ["A_KEY"]
