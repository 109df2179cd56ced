# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host_port_conflicts filter: registered, the roles' calls, bad input as a filter error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.host_port_conflicts import (
    FilterModule,
    host_port_conflicts,
)
from ansible_collections.acestream.orchestrator.plugins.filter.port_plan import port_plan


def test_registered():
    assert FilterModule().filters() == {"host_port_conflicts": host_port_conflicts}


def test_conflicts():
    plan = port_plan(["g"], port_range="19000-19009", api_port=8001, api_host_ports=[8000])
    app = {"name": "app", "port": 8000, "bind": "127.0.0.1"}
    assert host_port_conflicts(plan, api_bind="127.0.0.1") == []
    clash, = host_port_conflicts(plan, api_bind="127.0.0.1", orchestrator=app)
    assert clash.startswith('Docker would refuse with "port is already allocated": the control server of g '
                            '(api_host_port) and the orchestrator app (acestream_orchestrator_port) both publish host '
                            'port 8000. Fix from the port guide ("Port Already Allocated"): "Ensure no overlap')
    taken, = host_port_conflicts(plan, containers=[{"Names": ["/x"], "Ports": [{"PublicPort": 19003}]}])
    assert "host port 19003 (the engine ports of g (19000-19009)) is already published by container x" in taken
    assert '"Check if another container is using the same ports"' in taken


def test_bad_input():
    with pytest.raises(AnsibleFilterError) as info:
        host_port_conflicts({"vpns": []})
    assert str(info.value) == ("acestream.orchestrator.host_port_conflicts: the port plan has no vpns: give the result "
                               "of acestream.orchestrator.port_plan")
