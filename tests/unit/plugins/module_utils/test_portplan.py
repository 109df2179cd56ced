# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port plan: range parsing, splitting, shares, validation messages (unit and property-based)."""

from __future__ import annotations


import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    PortPlanError,
    PortRange,
    ascii_digits,
    build_plan,
    parse_port,
    parse_range,
    ranges_text,
    share_replicas,
    split_range,
    validate_vpn_names,
)


# ------------------------------------------------------------------------------------------ parse_range
@pytest.mark.parametrize("value, expected", [
    ("19000-19999", (19000, 19999)),
    (" 19000 - 19999 ", (19000, 19999)),
    ("8000", (8000, 8000)),
    (8000, (8000, 8000)),
    ([1, 65535], (1, 65535)),
    ((20, 30), (20, 30)),
    ({"start": 5, "end": 6}, (5, 6)),
    ({"start": "5", "end": "6", "size": 2}, (5, 6)),
    ("1-1", (1, 1)),
])
def test_parse_range_accepts(value, expected):
    rng = parse_range(value)
    assert (rng.start, rng.end) == expected
    assert rng.size == expected[1] - expected[0] + 1


def test_parse_range_passes_a_range_through():
    rng = PortRange(3, 4)
    assert parse_range(rng) is rng


@pytest.mark.parametrize("value, fragment", [
    ("19999-19000", "is reversed (start 19999 > end 19000); write it low-high: '19000-19999'"),
    ("abc-19999", "is not a port range; write 'START-END'"),
    ("19000-x", "is not a port range"),
    ("19000-19999-20000", "is not a port range"),
    ("", "is not a port range"),
    ("-5", "is not a port range"),
    ("0-10", "port 0 in '0-10' is outside 1-65535"),
    ("65000-65536", "port 65536 in '65000-65536' is outside 1-65535"),
    (0, "port 0 in 0 is outside 1-65535"),
    (65536, "port 65536"),
    (True, "is not a port range"),
    (1.5, "is not a port range"),
    ([1], "give [START, END]"),
    ([1, 2, 3], "give [START, END]"),
    ({"start": 1}, "give {start: N, end: M}"),
    ({"start": 1, "end": 2, "x": 3}, "give {start: N, end: M}"),
    (None, "is not a port range"),
    ("19000 19999", "is not a port range"),
])
def test_parse_range_rejects_with_field_and_fix(value, fragment):
    with pytest.raises(PortPlanError) as info:
        parse_range(value, "vpn_port_ranges.g1")
    assert info.value.field == "vpn_port_ranges.g1"
    assert str(info.value).startswith("vpn_port_ranges.g1: ")
    assert fragment in str(info.value)


def test_range_helpers():
    a, b = PortRange(10, 20), PortRange(20, 30)
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(PortRange(21, 22))
    assert PortRange(10, 30).contains_range(a) and not a.contains_range(b)
    assert 10 in a and 21 not in a
    assert list(PortRange(1, 3)) == [1, 2, 3]
    assert str(a) == "10-20" and repr(a) == "PortRange(10, 20)"
    assert a == PortRange(10, 20) and a != (10, 20) and len({a, PortRange(10, 20)}) == 1
    assert a.to_dict() == {"start": 10, "end": 20, "size": 11}


# ------------------------------------------------------------------------------------ split and share
def test_split_the_seed_range_in_two():
    parts = split_range(PortRange(19000, 19999), 2)
    assert [str(p) for p in parts] == ["19000-19499", "19500-19999"]


def test_split_remainder_goes_to_the_first():
    assert [str(p) for p in split_range(PortRange(1, 10), 3)] == ["1-4", "5-7", "8-10"]
    assert split_range(PortRange(1, 10), 0) == []


def test_split_too_small():
    with pytest.raises(PortPlanError, match=r"port_range: 1-2 holds 2 port\(s\), too few to split between 3 VPNs; "
                                            r"widen it to at least 3 ports"):
        split_range(PortRange(1, 2), 3)


def test_share_replicas():
    assert share_replicas(5, 2) == [3, 2]
    assert share_replicas(0, 3) == [0, 0, 0]
    assert share_replicas(7, 3) == [3, 2, 2]
    assert share_replicas(3, 0) == []


@settings(deadline=None)
@given(start=st.integers(1, 60000), size=st.integers(1, 5535), count=st.integers(1, 12))
def test_split_properties(start, size, count):
    whole = PortRange(start, start + size - 1)
    if size < count:
        with pytest.raises(PortPlanError):
            split_range(whole, count)
        return
    parts = split_range(whole, count)
    assert len(parts) == count
    assert parts[0].start == whole.start and parts[-1].end == whole.end
    for left, right in zip(parts, parts[1:]):
        assert right.start == left.end + 1  # contiguous, in order, no overlap
        assert left.size >= right.size  # remainder to the first
    assert max(p.size for p in parts) - min(p.size for p in parts) <= 1
    assert sum(p.size for p in parts) == whole.size


@settings(deadline=None)
@given(replicas=st.integers(0, 10000), count=st.integers(1, 20))
def test_share_properties(replicas, count):
    shares = share_replicas(replicas, count)
    assert sum(shares) == replicas
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)


# ----------------------------------------------------------------------------------------- VPN names
def test_vpn_names_cleaned():
    assert validate_vpn_names(["gluetun1", " /gluetun2 "]) == ["gluetun1", "gluetun2"]


@pytest.mark.parametrize("value, fragment", [
    ([], "at least one Gluetun container name is required"),
    (None, "give a list of Gluetun container names"),
    ("gluetun", "give a list of Gluetun container names"),
    (["g1", "g1"], "'g1' is listed twice; list each Gluetun container once"),
    (["g1", "/g1"], "'g1' is listed twice"),
    (["g1", ""], "'' is not a container name"),
    (["g1", 3], "3 is not a container name"),
    (["bad name"], "'bad name' is not a valid Docker container name"),
])
def test_vpn_names_rejected(value, fragment):
    with pytest.raises(PortPlanError) as info:
        validate_vpn_names(value)
    assert info.value.field == "vpn_containers"
    assert fragment in str(info.value)


# ------------------------------------------------------------------------------------------ build_plan
def test_seed_redundant_plan():
    plan = build_plan(["gluetun1", "gluetun2"], port_range="19000-19999", replicas=4)
    assert plan.to_dict() == {
        "port_range": {"start": 19000, "end": 19999, "size": 1000},
        "https_port_range": {"start": 45000, "end": 49999, "size": 5000},
        "replicas": 4,
        "total_capacity": 1000,
        "ports_per_engine": 1,
        "vpns": [
            {"name": "gluetun1", "index": 0, "range": "19000-19499", "start": 19000, "end": 19499, "size": 500,
             "capacity": 500, "share": 2},
            {"name": "gluetun2", "index": 1, "range": "19500-19999", "start": 19500, "end": 19999, "size": 500,
             "capacity": 500, "share": 2},
        ],
    }
    assert plan.vpn("gluetun2").range_field == "port_range"
    with pytest.raises(KeyError):
        plan.vpn("nope")


def test_single_plan_and_https_pairing():
    plan = build_plan(["gluetun"], port_range="19000-19999", replicas=3, https_port_range="45000-45009")
    vpn = plan.vpns[0]
    assert vpn.capacity == 10  # bounded by the HTTPS range
    assert list(vpn.slot_ports()) == list(range(19000, 19010))
    assert vpn.https_port(19004, plan.https_range) == 45004


def test_explicit_ranges_and_envelope():
    plan = build_plan(["g1", "g2"], port_range="19000-19999",
                      vpn_port_ranges={"g1": "19000-19099", "g2": "19500-19509"}, replicas=6)
    assert [(v.name, str(v.range), v.capacity, v.share, v.range_field) for v in plan.vpns] == [
        ("g1", "19000-19099", 100, 3, "vpn_port_ranges.g1"),
        ("g2", "19500-19509", 10, 3, "vpn_port_ranges.g2"),
    ]
    plan = build_plan(["g1"], vpn_port_ranges={"g1": "100-110"})
    assert plan.port_range is None and plan.to_dict()["port_range"] is None


def test_mixed_explicit_and_split():
    plan = build_plan(["g1", "g2", "g3"], port_range="20000-20009", vpn_port_ranges={"g2": "30000-30004"}, replicas=3)
    assert [str(v.range) for v in plan.vpns] == ["20000-20004", "30000-30004", "20005-20009"]
    assert [v.range_field for v in plan.vpns] == ["port_range", "vpn_port_ranges.g2", "port_range"]


def test_three_vpns_uneven():
    plan = build_plan(["a", "b", "c"], port_range="1000-1009", replicas=7)
    assert [(str(v.range), v.share) for v in plan.vpns] == [("1000-1003", 3), ("1004-1006", 2), ("1007-1009", 2)]


@pytest.mark.parametrize("kwargs, field, fragment", [
    (dict(port_range="19999-19000"), "port_range", "is reversed"),
    (dict(port_range="x-19000"), "port_range", "is not a port range"),
    (dict(port_range="0-100"), "port_range", "port 0 in '0-100' is outside 1-65535"),
    (dict(port_range="65000-65536"), "port_range", "port 65536"),
    (dict(port_range="19000-19999", https_port_range="0-10"), "https_port_range", "outside 1-65535"),
    (dict(port_range="19000-19999", https_port_range="19900-20100"), "https_port_range",
     "19900-20100 overlaps the engine ports of 'g2' (19500-19999)"),
    (dict(vpn_port_ranges={"g1": "100-200", "g2": "150-300"}), "vpn_port_ranges.g2",
     "the ranges of 'g1' (100-200) and 'g2' (150-300) overlap; give each VPN its own ports"),
    (dict(port_range="100-199", vpn_port_ranges={"g2": "150-160"}), "vpn_port_ranges.g2",
     "the ranges of 'g1' (100-199) and 'g2' (150-160) overlap"),
    (dict(port_range="100-199", vpn_port_ranges={"g1": "150-160"}), "vpn_port_ranges.g1",
     "the ranges of 'g1' (150-160) and 'g2' (100-199) overlap"),
    (dict(vpn_port_ranges={"g1": "100-199", "g3": "300-399"}), "vpn_port_ranges",
     "'g3' is not in vpn_containers ['g1', 'g2']; add it there or remove its range"),
    (dict(vpn_port_ranges={"g1": "100-199"}), "port_range", "required: no range for VPN(s) g2"),
    (dict(), "port_range", "required: no range for VPN(s) g1, g2"),
    (dict(vpn_port_ranges=["100-200"]), "vpn_port_ranges", "give a mapping of VPN container name to range"),
    (dict(port_range="100-199", vpn_port_ranges={"g1": "100-149", "g2": "150-250"}), "vpn_port_ranges.g2",
     "150-250 lies outside port_range 100-199; move it inside or widen port_range"),
    (dict(port_range="100-103", replicas=5), "replicas",
     "5 engines exceed the capacity of the port ranges (4: g1 100-101, g2 102-103); widen the ranges or lower"),
    (dict(vpn_port_ranges={"g1": "100-100", "g2": "200-299"}, replicas=4), "replicas",
     "VPN 'g1' must hold 2 of the 4 engines but its range 100-100 (vpn_port_ranges.g1) has room for 1; "
     "widen vpn_port_ranges.g1 or lower replicas"),
    (dict(port_range="100-199", https_port_range="45000-45001", replicas=5), "replicas",
     "5 engines exceed the capacity of the port ranges (4"),
    (dict(port_range="100-199", replicas=-1), "replicas", "-1 is negative; use 0 or more engines"),
    (dict(port_range="100-199", replicas="many"), "replicas", "'many' is not a number of engines"),
    (dict(port_range="100-199", replicas=1.5), "replicas", "1.5 is not a whole number"),
    (dict(port_range="100-199", replicas=True), "replicas", "True is not a number of engines"),
    (dict(port_range="100-100"), "port_range", "too few to split between 2 VPNs"),
])
def test_build_plan_rejects(kwargs, field, fragment):
    with pytest.raises(PortPlanError) as info:
        build_plan(["g1", "g2"], **kwargs)
    assert info.value.field == field, str(info.value)
    assert fragment in str(info.value)


def test_build_plan_rejects_bad_names_first():
    with pytest.raises(PortPlanError, match="vpn_containers: 'g1' is listed twice"):
        build_plan(["g1", "g1"], port_range="bad")


def test_replicas_as_text_is_accepted():
    assert build_plan(["g1"], port_range="1-10", replicas="3").replicas == 3


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=1, max_size=6, unique=True),
       start=st.integers(1024, 40000), size=st.integers(1, 3000), replicas=st.integers(0, 400),
       https_size=st.integers(1, 5000))
def test_plan_properties(names, start, size, replicas, https_size):
    https = "%d-%d" % (50000, 50000 + https_size - 1)
    count = len(names)
    sizes = [size // count + (1 if i < size % count else 0) for i in range(count)]
    capacities = [min(part, https_size) for part in sizes]
    shares = share_replicas(replicas, count)
    refused = size < count or replicas > sum(capacities) or any(s > c for s, c in zip(shares, capacities))
    try:
        plan = build_plan(names, port_range="%d-%d" % (start, start + size - 1), replicas=replicas,
                          https_port_range=https)
    except PortPlanError as exc:
        # Only the capacity rules can refuse a well-formed input.
        assert refused and exc.field in ("replicas", "port_range")
        return
    assert not refused
    ranges = [v.range for v in plan.vpns]
    assert [r.size for r in ranges] == sizes and [v.capacity for v in plan.vpns] == capacities
    for i, rng in enumerate(ranges):
        assert plan.port_range.contains_range(rng)
        assert not plan.https_range.overlaps(rng)
        for other in ranges[i + 1:]:
            assert not rng.overlaps(other)
    assert [v.share for v in plan.vpns] == shares
    assert max(shares) - min(shares) <= 1
    assert all(v.share <= v.capacity <= v.range.size for v in plan.vpns)
    assert [v.name for v in plan.vpns] == names and [v.index for v in plan.vpns] == list(range(count))
    # The same inputs give the same plan (the filter and the module agree).
    assert build_plan(names, port_range=str(plan.port_range), replicas=replicas,
                      https_port_range=https).to_dict() == plan.to_dict()


def test_ranges_text():
    assert ranges_text([]) == "none"
    assert ranges_text([5, 1, 2, 3, 7, 8, 10]) == "1-3, 5, 7-8, 10"
    assert ranges_text(range(19000, 19500)) == "19000-19499"


# ------------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("text, expected", [
    ("19000", True), ("0", True), ("", False), ("2900\u2074", False), ("\uff11\uff19", False), ("\u0661", False),
    ("-1", False), ("1_000", False), (" 1", False), ("1\n", False), (19000, False), (None, False),
])
def test_ascii_digits_only_takes_0_to_9(text, expected):
    assert ascii_digits(text) is expected


@pytest.mark.parametrize("value", ["2900\u2074", "\uff11\uff19\uff10\uff10\uff10-\uff11\uff19\uff10\uff10\uff19",
                                   "19000-1900\u00b9", ["2900\u2074", 29010], {"start": "\u0661", "end": 5}])
def test_non_ascii_digits_are_not_a_port_range(value):
    with pytest.raises(PortPlanError) as err:
        parse_range(value, "port_range")
    assert err.value.field == "port_range" and err.value.kind == "syntax"
    assert "is not a port range" in str(err.value)


@pytest.mark.parametrize("value", ["800\u00b2", "\uff18\uff10\uff10\uff11", "8001\n0"])
def test_non_ascii_digits_are_not_a_port(value):
    with pytest.raises(PortPlanError, match="^api_port: .* is not a port; give"):
        parse_port(value, "api_port", "give a whole number")
    with pytest.raises(PortPlanError, match="^api_host_ports.g1: .* is not a port"):
        build_plan(["g1"], port_range="19000-19009", api_port=8001, api_host_ports=[value])


@pytest.mark.parametrize("names, message", [
    (["gluetun1\n"], "'gluetun1\\\\n' is not a valid Docker container name"),
    (["gluetun1\r"], "is not a valid Docker container name"),
    (["glue tun"], "is not a valid Docker container name"),
    (5, "give a list of Gluetun container names"),
    (None, "give a list of Gluetun container names"),
    ({"gluetun1": 1}, "give a list of Gluetun container names"),
    ([["gluetun1"]], "is not a container name; every item must be a non-empty string"),
])
def test_vpn_names_with_a_final_newline_or_of_another_type_are_refused(names, message):
    with pytest.raises(PortPlanError, match=message) as err:
        validate_vpn_names(names)
    assert err.value.field == "vpn_containers"


def test_names_keep_their_spaces_stripped():
    assert validate_vpn_names([" gluetun1 ", "/gluetun2"]) == ["gluetun1", "gluetun2"]


@pytest.mark.parametrize("replicas", [float("inf"), float("-inf"), float("nan"), "\u0663", "3\u00b2", [3], None, True])
def test_replicas_of_another_kind_are_refused_by_name(replicas):
    with pytest.raises(PortPlanError, match="^replicas: .* is not a number of engines") as err:
        build_plan(["g1"], port_range="19000-19009", replicas=replicas)
    assert err.value.kind == "syntax"


def test_replicas_as_ascii_text_or_whole_float():
    assert build_plan(["g1"], port_range="19000-19009", replicas=" 3 ").replicas == 3
    assert build_plan(["g1"], port_range="19000-19009", replicas=3.0).replicas == 3


def test_app_engines_take_two_host_ports_each():
    # The orchestrator app gives each engine an HTTP and an API port: a slice of 10 holds 5 engines, not 10.
    plan = build_plan(["gluetun1", "gluetun2"], port_range="19000-19019", replicas=10, ports_per_engine=2)
    assert [vpn.capacity for vpn in plan.vpns] == [5, 5] and plan.to_dict()["ports_per_engine"] == 2
    with pytest.raises(PortPlanError) as caught:
        build_plan(["gluetun1", "gluetun2"], port_range="19000-19019", replicas=11, ports_per_engine=2)
    assert caught.value.field == "replicas" and caught.value.kind == "capacity"
    assert "(10 engines at 2 host ports each - HTTP and API, as the orchestrator app runs them: gluetun1" \
        in str(caught.value)
    with pytest.raises(PortPlanError) as caught:
        build_plan(["gluetun1", "gluetun2"], vpn_port_ranges={"gluetun1": "19000-19003", "gluetun2": "19010-19029"},
                   replicas=6, ports_per_engine=2)
    assert "VPN 'gluetun1' must hold 3 of the 6 engines but its range 19000-19003 (vpn_port_ranges.gluetun1) has " \
        "room for 2 engines at 2 host ports each" in str(caught.value)
    # The collection's own engines: one port each, as before.
    assert build_plan(["gluetun"], port_range="19000-19004", replicas=5).vpns[0].capacity == 5


def test_ports_per_engine_as_a_template_gives_it():
    # ansible-core 2.17 leaves a templated "{{ 2 if ... else 1 }}" inside a mapping a string.
    assert build_plan(["gluetun"], port_range="19000-19003", replicas=2, ports_per_engine=" 2 ").vpns[0].capacity == 2


@pytest.mark.parametrize("value", [0, 3, True, "3", "\uff12", None, 2.0, [2]])
def test_ports_per_engine_is_one_or_two(value):
    with pytest.raises(PortPlanError) as caught:
        build_plan(["gluetun"], port_range="19000-19004", replicas=1, ports_per_engine=value)
    assert caught.value.field == "ports_per_engine"
