# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container_changes filter: registered, environment values never shown, bad input as a filter error."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.container_changes import FilterModule, container_changes


def test_registered():
    assert FilterModule().filters() == {"container_changes": container_changes}


def test_changes():
    results = [{"changed": True, "item": {"name": "g1"},
                "diff": {"before": {"env": ["KEY=old"]}, "after": {"env": ["KEY=new"]}}},
               {"changed": False, "item": {"name": "g2"}}]
    assert container_changes(results) == [{"container": "g1", "changes": ["env: KEY (values not shown)"]}]


def test_bad_input():
    with pytest.raises(AnsibleFilterError) as info:
        container_changes([1])
    assert str(info.value) == ("acestream.orchestrator.container_changes: each result must be a mapping as "
                               "docker_container registers it, not a number")
