# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port plan's control server: api_port / api_host_ports, the vpns fields and every validation message."""

from __future__ import annotations

import pathlib

import pytest

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    DEFAULT_API_PORT,
    PortPlanError,
    PortRange,
    build_plan,
    free_port,
    parse_port,
)

_ROOT = pathlib.Path(__file__).resolve().parents[4]

TWO = ["gluetun1", "gluetun2"]
CONTROL_KEYS = {"control_server_address", "api_port", "api_host_port", "api_port_mapping"}


def control(plan):
    return [(v["name"], v["control_server_address"], v["api_port"], v["api_host_port"], v["api_port_mapping"])
            for v in plan.to_dict()["vpns"]]


# ------------------------------------------------------------------------------------------ the plan
def test_without_api_arguments_the_plan_is_unchanged():
    for kwargs in ({}, {"api_port": None}, {"api_port": ""}, {"api_host_ports": None}, {"api_host_ports": []},
                   {"api_host_ports": {}}):
        plan = build_plan(TWO, port_range="19000-19999", replicas=4, **kwargs).to_dict()
        assert plan == build_plan(TWO, port_range="19000-19999", replicas=4).to_dict()
        assert all(not CONTROL_KEYS & set(vpn) for vpn in plan["vpns"])


def test_without_api_arguments_no_control_server_check():
    # 8001 inside the engine range is only an error once the control server is planned.
    build_plan(TWO, port_range="8000-8009")
    with pytest.raises(PortPlanError):
        build_plan(TWO, port_range="8000-8009", api_port=8001)


def test_guide_single():
    assert control(build_plan(["gluetun"], port_range="19000-19999", api_port=8001)) == [
        ("gluetun", ":8001", 8001, 8001, "8001:8001")]
    assert control(build_plan(["gluetun"], port_range="19000-19999", api_port=8000)) == [
        ("gluetun", ":8000", 8000, 8000, "8000:8000")]


def test_guide_redundant_same_internal_port_different_external_ports():
    assert control(build_plan(TWO, port_range="19000-19999", api_port=8001)) == [
        ("gluetun1", ":8001", 8001, 8001, "8001:8001"),
        ("gluetun2", ":8001", 8001, 8002, "8002:8001"),
    ]


def test_default_api_port_is_the_guides():
    assert DEFAULT_API_PORT == 8001
    assert control(build_plan(TWO, port_range="19000-19999", api_host_ports=[8001, 8002])) == [
        ("gluetun1", ":8001", 8001, 8001, "8001:8001"),
        ("gluetun2", ":8001", 8001, 8002, "8002:8001"),
    ]


@pytest.mark.parametrize("api_host_ports, expected", [
    ([9001, 9101], [9001, 9101]),
    (("9001", " 9101 "), [9001, 9101]),
    ({"gluetun1": 9001, "gluetun2": 9101}, [9001, 9101]),
    ({"/gluetun2": 9101}, [8001, 9101]),
    ({"gluetun2": None}, [8001, 8002]),
    ({"gluetun1": 9000}, [9000, 8002]),
])
def test_api_host_ports_list_or_mapping(api_host_ports, expected):
    plan = build_plan(TWO, port_range="19000-19999", api_port="8001", api_host_ports=api_host_ports)
    assert [vpn.api_host_port for vpn in plan.vpns] == expected
    assert [vpn.api_port for vpn in plan.vpns] == [8001, 8001]


def test_vpn_plan_objects_carry_the_ports():
    plan = build_plan(TWO, port_range="19000-19999", api_port=8001)
    assert (plan.vpn("gluetun2").api_port, plan.vpn("gluetun2").api_host_port) == (8001, 8002)
    assert build_plan(TWO, port_range="19000-19999").vpn("gluetun2").api_port is None


def test_api_port_may_equal_an_external_port_and_sit_next_to_the_ranges():
    # Internal and external ports live in different namespaces; edges of the ranges are free.
    plan = build_plan(TWO, vpn_port_ranges={"gluetun1": "100-199", "gluetun2": "300-399"}, https_port_range="500-599",
                      api_port=200, api_host_ports=[200, 299])
    assert [vpn.api_host_port for vpn in plan.vpns] == [200, 299]


def test_https_range_is_not_published_so_host_ports_may_lie_in_it():
    plan = build_plan(TWO, port_range="19000-19999", api_port=8001, api_host_ports=[45000, 45001])
    assert [vpn.api_host_port for vpn in plan.vpns] == [45000, 45001]


# ------------------------------------------------------------------------------------------ helpers
def test_parse_port():
    assert parse_port(8001, "f", "fix") == 8001
    assert parse_port(" 8001 ", "f", "fix") == 8001
    for value in (True, 8001.0, None, "80a", "", "-1", [8001]):
        with pytest.raises(PortPlanError) as info:
            parse_port(value, "f", "the fix")
        assert info.value.field == "f" and str(info.value) == "f: %r is not a port; the fix" % (value,)
    with pytest.raises(PortPlanError, match=r"^f: port 0 is outside 1-65535; the fix$"):
        parse_port(0, "f", "the fix")


def test_free_port():
    assert free_port(8001, (), []) == 8001
    assert free_port(8001, {8001, 8002}, []) == 8003
    assert free_port(8001, {8011}, [PortRange(7990, 8010)]) == 8012
    assert free_port(65535, {65535}, []) is None
    assert free_port(0, (), [PortRange(1, 65535)]) is None


# ------------------------------------------------------------------------------------------ errors
API_PORT_FIX = ("give GLUETUN_API_PORT, the internal port of HTTP_CONTROL_SERVER_ADDRESS (the same for every VPN), "
                "as a whole number, e.g. 8001")

# (build_plan keyword arguments on top of TWO and port_range 19000-19999, field, the whole message)
ERRORS = [
    (dict(api_port="abc"), "api_port", "'abc' is not a port; " + API_PORT_FIX),
    (dict(api_port=True), "api_port", "True is not a port; " + API_PORT_FIX),
    (dict(api_port=8001.5), "api_port", "8001.5 is not a port; " + API_PORT_FIX),
    (dict(api_port=70000), "api_port", "port 70000 is outside 1-65535; " + API_PORT_FIX),
    (dict(api_port=0), "api_port", "port 0 is outside 1-65535; " + API_PORT_FIX),
    (dict(api_port=19000), "api_port",
     "19000 lies inside the engine ports of 'gluetun1' (19000-19499): the control server listens in the VPN's "
     "network namespace, where an engine would find the port taken; choose an api_port outside the engine ranges "
     "and the HTTPS range, e.g. 8001"),
    (dict(api_port=19999), "api_port",
     "19999 lies inside the engine ports of 'gluetun2' (19500-19999): the control server listens in the VPN's "
     "network namespace, where an engine would find the port taken; choose an api_port outside the engine ranges "
     "and the HTTPS range, e.g. 8001"),
    (dict(api_port=45000), "api_port",
     "45000 lies inside https_port_range 45000-49999: the engines' HTTPS ports share the VPN's network namespace "
     "with the control server; choose an api_port outside the engine ranges and the HTTPS range, e.g. 8001"),
    (dict(api_host_ports=[8001]), "api_host_ports",
     "[8001] gives 1 port(s) for 2 VPN(s) (gluetun1, gluetun2); give one external port per VPN, in the order of "
     "vpn_containers, e.g. [8001, 8002]"),
    (dict(api_port=9000, api_host_ports=[1, 2, 3]), "api_host_ports",
     "[1, 2, 3] gives 3 port(s) for 2 VPN(s) (gluetun1, gluetun2); give one external port per VPN, in the order "
     "of vpn_containers, e.g. [9000, 9001]"),
    (dict(api_host_ports={"gluetun3": 8003}), "api_host_ports",
     "'gluetun3' is not in vpn_containers ['gluetun1', 'gluetun2']; add it there or remove its port"),
    (dict(api_host_ports=8001), "api_host_ports",
     "8001 is neither a list nor a mapping; give the external ports in the order of vpn_containers, e.g. "
     "[8001, 8002], or by name, e.g. {'gluetun1': 8001, 'gluetun2': 8002}"),
    (dict(api_host_ports="8001,8002"), "api_host_ports",
     "'8001,8002' is neither a list nor a mapping; give the external ports in the order of vpn_containers, e.g. "
     "[8001, 8002], or by name, e.g. {'gluetun1': 8001, 'gluetun2': 8002}"),
    (dict(api_host_ports=[8001, "abc"]), "api_host_ports.gluetun2",
     "'abc' is not a port; give the external host port of the VPN's control server as a whole number, e.g. 8002"),
    (dict(api_host_ports={"gluetun1": 0}), "api_host_ports.gluetun1",
     "port 0 is outside 1-65535; give the external host port of the VPN's control server as a whole number, "
     "e.g. 8001"),
    (dict(api_port=65535), "api_host_ports.gluetun2",
     "port 65536 is outside 1-65535; it defaults to api_port + the VPN's index (65535 + 1): give api_host_ports "
     "explicitly"),
    (dict(api_host_ports=[8001, 8001]), "api_host_ports.gluetun2",
     "host port 8001 of 'gluetun2' is already given to 'gluetun1': Docker would refuse with \"port is already "
     "allocated\"; each control server needs its own external port, e.g. 8002"),
    (dict(api_host_ports={"gluetun2": 8001}), "api_host_ports.gluetun2",
     "host port 8001 of 'gluetun2' is already given to 'gluetun1': Docker would refuse with \"port is already "
     "allocated\"; each control server needs its own external port, e.g. 8002"),
    (dict(api_host_ports={"gluetun2": 19600}), "api_host_ports.gluetun2",
     "host port 19600 of 'gluetun2' lies inside the engine range 19500-19999 that 'gluetun2' publishes on the host: "
     "Docker would refuse with \"port is already allocated\"; choose an external control port outside every engine "
     "range, e.g. 20000"),
    (dict(api_host_ports=[19499, 8002]), "api_host_ports.gluetun1",
     "host port 19499 of 'gluetun1' lies inside the engine range 19000-19499 that 'gluetun1' publishes on the host: "
     "Docker would refuse with \"port is already allocated\"; choose an external control port outside every engine "
     "range, e.g. 20000"),
]


@pytest.mark.parametrize("kwargs, field, message", ERRORS)
def test_errors_name_the_field_and_the_fix(kwargs, field, message):
    with pytest.raises(PortPlanError) as info:
        build_plan(TWO, port_range="19000-19999", **kwargs)
    assert info.value.field == field
    assert info.value.message == message
    assert str(info.value) == "%s: %s" % (field, message)


def test_suggestions_skip_taken_ports():
    # 8001 is in the engine range: the suggestion is the first port after it.
    with pytest.raises(PortPlanError, match=r"choose an api_port outside .*, e\.g\. 8011$"):
        build_plan(["g"], port_range="7990-8010", api_port=8001)
    # A repeated host port: the suggestion skips the other VPNs' host ports and the engine ranges.
    with pytest.raises(PortPlanError, match=r"^api_host_ports\.g3: .* already given to 'g1'.*, e\.g\. 8003$"):
        build_plan(["g1", "g2", "g3"], port_range="19000-19999", api_host_ports=[8001, 8002, 8001])
    # No free port left after it: no suggestion.
    with pytest.raises(PortPlanError, match=r"own external port$"):
        build_plan(["g1", "g2"], port_range="100-199", api_host_ports=[65535, 65535])


def test_engine_range_errors_come_first():
    # The existing checks keep their messages when the control server is asked for too.
    with pytest.raises(PortPlanError) as info:
        build_plan(TWO, port_range="19999-19000", api_port=19000)
    assert info.value.field == "port_range"


def test_documented_messages_are_the_real_ones():
    doc = (_ROOT / "docs" / "port-planning.md").read_text(encoding="utf-8")
    documented = [line for line in doc.splitlines() if line.startswith(("api_port: ", "api_host_ports"))]
    real = {"%s: %s" % (field, message) for _kwargs, field, message in ERRORS}
    assert documented and set(documented) <= real, sorted(set(documented) - real)
