# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gluetun_env_problems filter: registered, its messages, bad input as a filter error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.gluetun_env_problems import (
    FilterModule,
    gluetun_env_problems,
)


def test_registered():
    assert FilterModule().filters() == {"gluetun_env_problems": gluetun_env_problems}


def test_problems():
    assert gluetun_env_problems([{"name": "g", "env": {"A": 1}}], env={}, api_port=8001) == []
    address, unusable = gluetun_env_problems([{"name": "g", "env": {"HTTP_CONTROL_SERVER_ADDRESS": ":8002",
                                                                    "B": "x\ny"}}], api_port=8001)
    assert "Verify GLUETUN_API_PORT matches HTTP_CONTROL_SERVER_ADDRESS" in address
    assert unusable.startswith("The env of Gluetun container 'g' has 1 unusable variable(s): B spans several lines")


def test_bad_input():
    with pytest.raises(AnsibleFilterError) as info:
        gluetun_env_problems([{"name": "g"}])
    assert str(info.value) == "acestream.orchestrator.gluetun_env_problems: api_port must be a port number, not null"
