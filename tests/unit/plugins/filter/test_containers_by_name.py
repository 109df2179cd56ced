# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containers_by_name filter: registered, the roles' shape, bad input as a filter error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.containers_by_name import FilterModule, containers_by_name


def test_registered():
    assert FilterModule().filters() == {"containers_by_name": containers_by_name}


def test_by_name():
    assert containers_by_name([{"Id": "1", "Names": ["/g"], "State": "running", "Labels": {"a": "b"}}]) == {
        "g": {"id": "1", "state": "running", "labels": {"a": "b"}, "owner": None}}
    labels = {"acestream.managed-by": "acestream.orchestrator.gluetun", "acestream.pool": "p"}
    assert containers_by_name([{"Id": "1", "Names": ["/g"], "Labels": labels}], pool="p")["g"]["owner"] == "gluetun"
    assert containers_by_name(None) == {}


def test_bad_input():
    with pytest.raises(AnsibleFilterError) as info:
        containers_by_name("x")
    assert str(info.value) == "acestream.orchestrator.containers_by_name: the containers must be a list, not a string"
