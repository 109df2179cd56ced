# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port_plan filter: the roles' contract (keys, values) and its error messages."""

from __future__ import annotations


import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.port_plan import FilterModule, port_plan


def test_registered():
    assert FilterModule().filters() == {"port_plan": port_plan}


def test_roles_contract():
    plan = port_plan(["gluetun1", "gluetun2"], port_range="19000-19999", vpn_port_ranges={}, replicas=4,
                     https_port_range="45000-49999")
    assert set(plan) == {"port_range", "https_port_range", "replicas", "total_capacity", "ports_per_engine", "vpns"}
    assert plan["port_range"] == {"start": 19000, "end": 19999, "size": 1000}
    assert plan["https_port_range"] == {"start": 45000, "end": 49999, "size": 5000}
    assert plan["replicas"] == 4 and plan["total_capacity"] == 1000
    assert [(v["name"], v["index"], v["range"], v["start"], v["end"], v["capacity"], v["share"]) for v in plan["vpns"]] == [
        ("gluetun1", 0, "19000-19499", 19000, 19499, 500, 2),
        ("gluetun2", 1, "19500-19999", 19500, 19999, 500, 2),
    ]


def test_defaults():
    plan = port_plan(["gluetun"], port_range="19000-19009")
    assert plan["replicas"] == 0 and plan["https_port_range"]["start"] == 45000
    assert plan["vpns"][0]["range"] == "19000-19009"
    assert port_plan(["g"], vpn_port_ranges={"g": "1-2"})["port_range"] is None
    assert port_plan(["g"], port_range="1-2", vpn_port_ranges=None)["vpns"][0]["size"] == 2


@pytest.mark.parametrize("args, kwargs, message", [
    (["g1", "g2"], dict(port_range="19999-19000"), "acestream.orchestrator.port_plan: port_range: '19999-19000' is reversed"),
    (["g1"], dict(port_range="19000-19009", replicas=11), "replicas: 11 engines exceed the capacity"),
    (["g1"], dict(port_range="19000-19009", vpn_port_ranges={"g9": "1-2"}), "vpn_port_ranges: 'g9' is not in vpn_containers"),
    (["g1", "g1"], dict(port_range="19000-19009"), "vpn_containers: 'g1' is listed twice"),
    (["g1"], dict(port_range="19000-19009", https_port_range="19005-19006"), "https_port_range: 19005-19006 overlaps"),
])
def test_errors_name_the_field(args, kwargs, message):
    with pytest.raises(AnsibleFilterError) as info:
        port_plan(args, **kwargs)
    assert message in str(info.value)
