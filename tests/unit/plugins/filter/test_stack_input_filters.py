# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters over the roles' hostile-input checks: registered under their names, the core's answer, bad input as
a filter error naming the filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter import (
    config_hash,
    engine_pool_problems,
    name_collisions,
    ownership_problems,
    variable_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import build_plan

FILTERS = [config_hash, engine_pool_problems, name_collisions, ownership_problems, variable_problems]


@pytest.mark.parametrize("module", FILTERS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_registered(module):
    name = module.__name__.rsplit(".", 1)[-1]
    assert module.FilterModule().filters() == {name: getattr(module, name)}


def test_answers():
    plan = build_plan(["g1"], port_range="19000-19001").to_dict()
    assert variable_problems.variable_problems(["a"], [None], {"a": {"type": "int"}}) == [
        "a is null (a key with no value): give a whole number"]
    assert variable_problems.variable_problems(["k", "p", "e"], [" key", "(", {"A": None}],
                                               {"k": {"type": "str"}, "p": {"type": "str"}, "e": {"type": "dict"}},
                                               envs={"e": True}, patterns=["p"], credentials=["k"]) == [
        "k holds a space at its start or end, which the X-API-Key header cannot carry as it is; allowed: printable "
        "ASCII: letters, digits and punctuation, spaces only between them",
        "p is not a regular expression (missing ), unterminated subpattern at position 0): fix it, e.g. "
        "'(?i)(KEY|PASS|SECRET)'",
        "e: A is null (a key with no value): give a string ('' for an empty value), a number or a boolean"]
    assert engine_pool_problems.engine_pool_problems(["g1"], name="p", replicas=1, port_range="19000-19001",
                                                     api_port=8001) == []
    assert name_collisions.name_collisions(plan, "p", app_name="g1")[0].startswith(
        "The orchestrator app (acestream_orchestrator_name) is named 'g1'")
    assert ownership_problems.ownership_problems({"g1": {"labels": {}}}, "p", gluetun=["g1"])[0].startswith(
        "Container 'g1' (acestream_gluetun_containers) is not this stack's")
    assert len(config_hash.config_hash("content", "key")) == 16


@pytest.mark.parametrize("call, message", [
    (lambda: variable_problems.variable_problems("a", [], {}),
     "acestream.orchestrator.variable_problems: names must be a list, not a string"),
    (lambda: engine_pool_problems.engine_pool_problems(["g1"], image_id="x"),
     "acestream.orchestrator.engine_pool_problems: engine_pool_problems takes only"),
    (lambda: name_collisions.name_collisions({}, "p"),
     "acestream.orchestrator.name_collisions: the port plan has no vpns"),
    (lambda: ownership_problems.ownership_problems({}, None),
     "acestream.orchestrator.ownership_problems: pool must be a string, not null"),
    (lambda: config_hash.config_hash("content", ""),
     "acestream.orchestrator.config_hash: the hash key is empty"),
])
def test_bad_input(call, message):
    with pytest.raises(AnsibleFilterError) as info:
        call()
    assert str(info.value).startswith(message)
