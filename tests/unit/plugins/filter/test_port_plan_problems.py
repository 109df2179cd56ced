# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port_plan_problems filter: registered, [] for a good plan, the message with the guide's fix otherwise."""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.filter.port_plan_problems import (
    FilterModule,
    port_plan_problems,
)


def test_registered():
    assert FilterModule().filters() == {"port_plan_problems": port_plan_problems}


def test_good_plan():
    assert port_plan_problems(["g1", "g2"], port_range="19000-19009", replicas=4, api_port=8001) == []
    assert port_plan_problems(["g1"], port_range="19000-19009", vpn_port_ranges=None) == []


def test_problems():
    message, = port_plan_problems(["g1", "g2"], port_range="19000-19005", replicas=9)
    assert message.startswith("The port plan is not valid: replicas: 9 engines exceed the capacity")
    assert message.endswith('"Size: Choose a range that can accommodate your MAX_REPLICAS setting": widen '
                            "acestream_port_range_host (PORT_RANGE_HOST) or the VPN's range, or lower "
                            "acestream_engine_replicas.")
    message, = port_plan_problems(["g1", "g2"], port_range="19000-19009", api_port=8001, api_host_ports=[8001, 8001])
    assert '"Different External Ports' in message
    message, = port_plan_problems(None, port_range="1-9")
    assert message.startswith("The port plan is not valid: vpn_containers: give a list of Gluetun container names")
