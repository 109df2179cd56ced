# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator_app_env filter: registered, the roles' call, bad input as a filter error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.orchestrator_app_env import (
    FilterModule,
    orchestrator_app_env,
)
from ansible_collections.acestream.orchestrator.plugins.filter.port_plan import port_plan


def test_registered():
    assert FilterModule().filters() == {"orchestrator_app_env": orchestrator_app_env}


def test_env():
    plan = port_plan(["g1", "g2"], port_range="19000-19999")
    env = orchestrator_app_env(plan, vpn_mode="redundant", api_port=8001, port_range_host="19000-19999", replicas=4,
                               docker_network="aceserver", engine_variant=None, env={"DEBUG_MODE": False})
    assert env["GLUETUN_PORT_RANGE_2"] == "19500-19999" and env["DEBUG_MODE"] == "false"
    assert env["ACE_HTTPS_RANGE"] == "45000-49999" and "ENGINE_VARIANT" not in env


def test_bad_input():
    with pytest.raises(AnsibleFilterError) as info:
        orchestrator_app_env(port_plan(["g"], port_range="1-9"), vpn_mode="single", api_port="x")
    assert str(info.value) == "acestream.orchestrator.orchestrator_app_env: api_port must be a port number, not a string"


def test_container_label_from_the_pool():
    plan = port_plan(["g1"], port_range="19000-19009")
    env = orchestrator_app_env(plan, vpn_mode="single", api_port=8001, replicas=1, pool="stack-a",
                               engine_variant="AceServe-amd64")
    assert env["CONTAINER_LABEL"] == "acestream.app-pool=stack-a" and env["ENGINE_VARIANT"] == "AceServe-amd64"
    # The app never restarts the stack's Gluetun containers: a timeout it never reaches (an int, as the app reads it).
    assert env["VPN_UNHEALTHY_RESTART_TIMEOUT_S"] == "2147483647"
    alone = orchestrator_app_env(plan, vpn_mode="single", api_port=8001, replicas=1)
    assert "CONTAINER_LABEL" not in alone and "VPN_UNHEALTHY_RESTART_TIMEOUT_S" not in alone
    for env in ({"CONTAINER_LABEL": "ondemand.app=myservice"}, {"MAX_REPLICAS": 6},
                {"VPN_UNHEALTHY_RESTART_TIMEOUT_S": 60}):
        with pytest.raises(AnsibleFilterError) as info:
            orchestrator_app_env(plan, vpn_mode="single", api_port=8001, replicas=1, pool="stack-a", env=env)
        assert "acestream_orchestrator_env sets" in str(info.value)
    with pytest.raises(AnsibleFilterError) as info:
        orchestrator_app_env(plan, vpn_mode="single", api_port=8001, replicas=1, pool="a=b")
    assert "acestream_pool_name" in str(info.value)
