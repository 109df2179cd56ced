# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters the roles call on the target's answers (ownership, the config-hash label) and the stack_model filter:
registered under their names, the core's answer, bad input as a filter error naming the filter."""

from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter import config_hash, ownership_problems, stack_model

FILTERS = [config_hash, ownership_problems, stack_model]


@pytest.mark.parametrize("module", FILTERS, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_registered(module):
    name = module.__name__.rsplit(".", 1)[-1]
    assert module.FilterModule().filters() == {name: getattr(module, name)}


def test_answers():
    assert ownership_problems.ownership_problems({"g1": {"labels": {}}}, "p", gluetun=["g1"])[0].startswith(
        "Container 'g1' (acestream_gluetun_containers) is not this stack's")
    assert len(config_hash.config_hash("content", "key")) == 16
    model = stack_model.stack_model(["acestream_engine_replicas", "not_the_stacks"], [3, "ignored"])
    assert model["problems"] == [] and model["pool"]["replicas"] == 3 and "not_the_stacks" not in model["vars"]
    assert stack_model.stack_model(["acestream_engine_replicas"], [None])["problems"] == [
        "acestream_engine_replicas is null (a key with no value): give a whole number."]


def test_stack_model_documents_every_field():
    documented = set(yaml.safe_load(stack_model.RETURN)["_value"]["contains"])
    assert documented == set(stack_model.stack_model([], []))


@pytest.mark.parametrize("call, message", [
    (lambda: ownership_problems.ownership_problems({}, None),
     "acestream.orchestrator.ownership_problems: pool must be a string, not null"),
    (lambda: config_hash.config_hash("content", ""),
     "acestream.orchestrator.config_hash: the hash key is empty"),
    (lambda: stack_model.stack_model("acestream_pool_name", []),
     "acestream.orchestrator.stack_model takes a list of variable names and a list of their values"),
    (lambda: stack_model.stack_model(["a", "b"], [1]),
     "acestream.orchestrator.stack_model takes a list of variable names and a list of their values"),
])
def test_bad_input(call, message):
    with pytest.raises(AnsibleFilterError) as info:
        call()
    assert str(info.value).startswith(message)
