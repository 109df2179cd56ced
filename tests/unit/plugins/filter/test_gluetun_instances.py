# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gluetun_instances filter: registered, the roles' call, bad input as a filter error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.gluetun_instances import FilterModule, gluetun_instances
from ansible_collections.acestream.orchestrator.plugins.filter.port_plan import port_plan


def test_registered():
    assert FilterModule().filters() == {"gluetun_instances": gluetun_instances}


def test_instances():
    plan = port_plan(["g1", "g2"], port_range="19000-19009", api_port=8001)
    out = gluetun_instances([{"name": "g1", "env": {"A": True}}, {"name": "g2"}], plan=plan, stack_dir="/s",
                            stack_name="p", api_bind="127.0.0.1", auth_toml="x")
    assert [g["published"] for g in out] == [["127.0.0.1:8001:8001", "19000-19004:19000-19004"],
                                             ["127.0.0.1:8002:8001", "19005-19009:19005-19009"]]
    assert out[0]["env"]["A"] == "on"
    assert out[1]["env"]["HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH"] == "/gluetun/auth/config.toml"


def test_bad_input():
    with pytest.raises(AnsibleFilterError) as info:
        gluetun_instances([{"name": "g1"}])
    assert str(info.value) == ("acestream.orchestrator.gluetun_instances: the port plan has no vpns: give the result "
                               "of acestream.orchestrator.port_plan")
