# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack model: every generated inventory resolves without a problem, to the same result every time, with the
declared defaults wherever a variable is not given; bad input becomes problems that name the variable; each field the
roles read follows from the variables."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.acestream.orchestrator.plugins.plugin_utils import _stack_model as model
from ansible_collections.acestream.orchestrator.plugins.plugin_utils._stack_variables import VARIABLES

from stack_inventories import DOCUMENTED_STYLES, documented_examples, minimal, one_at_a_time

ONE_AT_A_TIME = one_at_a_time()


def assert_resolves(inventory):
    given = copy.deepcopy(inventory)
    resolved = model.resolve(inventory)
    assert resolved["problems"] == [], resolved["problems"]
    assert inventory == given, "resolve changed its input"
    assert json.dumps(model.resolve(inventory), sort_keys=True) == json.dumps(resolved, sort_keys=True)
    for name, spec in VARIABLES.items():
        expected = inventory[name] if name in inventory else spec["default"]
        if name == "acestream_stack_dir" and name not in inventory:
            expected = "/opt/acestream/" + resolved["vars"]["acestream_pool_name"]
        assert resolved["vars"][name] == expected, name
    return resolved


def test_the_minimal_inventory_resolves_to_the_defaults():
    resolved = assert_resolves(minimal())
    assert resolved["vpn_names"] == ["gluetun"]
    assert resolved["plan"]["vpns"][0]["range"] == "19000-19099"
    assert resolved["pool"] == {
        "name": "acestream", "replicas": 2, "vpn_containers": ["gluetun"], "port_range": "19000-19099",
        "vpn_port_ranges": {}, "https_port_range": "45000-49999", "engine_variant": "krinkuto11-amd64", "image": "",
        "env": {}, "forwarded_port": "auto", "api_port": 8001, "on_unhealthy_vpn": "fail"}
    assert resolved["paths"]["stack_dir"] == "/opt/acestream/acestream"
    assert resolved["containers"] == [{"name": "gluetun", "api_host_port": 8001, "env": {}}]
    assert resolved["app"] is None and resolved["app_env"] is None and resolved["orchestrator_host_port"] == {}
    assert resolved["owned"] == {"pool": "acestream", "gluetun": ["gluetun"], "app": None,
                                 "engines_plan": resolved["plan"]}


def test_every_variable_has_an_example_other_than_its_default():
    for name, spec in VARIABLES.items():
        assert "example" in spec and spec["example"] != spec["default"], name


@pytest.mark.parametrize("name, inventory", ONE_AT_A_TIME, ids=[name for name, _inventory in ONE_AT_A_TIME])
def test_the_minimal_inventory_plus_one_variable_resolves(name, inventory):
    resolved = assert_resolves(inventory)
    if resolved["state"] == "present":
        assert resolved["plan"] is not None
        assert resolved["pool"]["vpn_containers"] == resolved["vpn_names"] == [
            container["name"] for container in resolved["vars"]["acestream_gluetun_containers"]]
        assert (resolved["app"] is not None) == resolved["vars"]["acestream_orchestrator_enabled"]
    else:
        assert resolved["plan"] is None and resolved["vpn_names"]


EXAMPLES = documented_examples()


def test_the_documentation_shows_stacks():
    documents = {where.split(":")[0] for where, inventory in EXAMPLES}
    assert documents >= {"roles/common/README.md", "roles/gluetun/README.md", "roles/engines/README.md"}


@pytest.mark.parametrize("where, inventory", EXAMPLES, ids=[where for where, inventory in EXAMPLES])
def test_every_documented_example_resolves(where, inventory):
    assert_resolves(inventory)


@pytest.mark.parametrize("style", sorted(DOCUMENTED_STYLES))
def test_each_documented_style_resolves(style):
    inventory = DOCUMENTED_STYLES[style]
    resolved = assert_resolves(inventory)
    assert len(resolved["plan"]["vpns"]) == len(resolved["vpn_names"])
    if inventory.get("acestream_orchestrator_enabled"):
        env = resolved["app_env"]
        assert env["GLUETUN_CONTAINER_NAME"] == resolved["vpn_names"][0]
        assert env["CONTAINER_LABEL"] == resolved["app"]["label"]
        assert "API_KEY" in resolved["app_env_secrets"]
        assert resolved["owned"]["engines_plan"] is None
    if "acestream_vpn_port_ranges" in inventory:
        assert [vpn["range"] for vpn in resolved["plan"]["vpns"]] == list(
            inventory["acestream_vpn_port_ranges"].values())


def test_a_default_naming_another_variable_follows_it():
    assert model.resolve({"acestream_pool_name": "p2"})["paths"]["stack_dir"] == "/opt/acestream/p2"
    assert model.resolve({"acestream_pool_name": "p2", "acestream_stack_dir": "/srv/x/"})["paths"]["stack_dir"] == (
        "/srv/x")


def test_undeclared_names_are_ignored_and_secrets_stay_in_vars_only():
    resolved = model.resolve({"acestream_gluetun_api_key": "s3cr3t-key", "acestream_hosts": "all"})
    assert "acestream_hosts" not in resolved["vars"]
    shown = json.dumps({key: value for key, value in resolved.items() if key != "vars"})
    assert "s3cr3t-key" not in shown


@pytest.mark.parametrize("given, problem", [
    ({"acestream_vpn_mode": "x"}, "acestream_vpn_mode must be one of single, redundant, not 'x'."),
    ({"acestream_gluetun_containers": [{"name": "g1"}]},
     "acestream_gluetun_containers[0] has no api_host_port: give it, the host port publishing the control server "
     "(the external port, one per container)."),
    ({"acestream_gluetun_containers": [{"name": "g1", "api_host_port": 8001, "ports": [1]}]},
     "acestream_gluetun_containers[0] has ports, which the roles do not read: remove it (an item takes name, "
     "api_host_port, env)."),
    ({"acestream_engine_replicas": float("nan")}, "acestream_engine_replicas is NaN, not a finite number"),
    ({"acestream_engine_replicas": "\u0663"}, "acestream_engine_replicas must be a whole number written with the "
                                              "digits 0-9"),
    ({"acestream_gluetun_containers": None}, "acestream_gluetun_containers is null (a key with no value)"),
    ({"acestream_pool_name": "a\nb"}, "acestream_pool_name holds a control character"),
    ({"acestream_gluetun_api_key": ["k"]}, "acestream_gluetun_api_key must be a string ('' for none), not a list."),
    ({"acestream_vpn_mode": "redundant"}, "VPN_MODE=redundant (acestream_vpn_mode) needs a second Gluetun container"),
    ({"acestream_gluetun_containers": [{"name": "g1", "api_host_port": 8001}, {"name": "g2", "api_host_port": 8002}]},
     "VPN_MODE=single (acestream_vpn_mode) takes exactly one Gluetun container"),
    ({"acestream_port_range_host": "19000-19001", "acestream_engine_replicas": 5},
     "The port plan is not valid: "),
    ({"acestream_gluetun_env": {"HTTP_CONTROL_SERVER_ADDRESS": ":9999"}},
     "GLUETUN_API_PORT (acestream_gluetun_api_port) is 8001 but Gluetun container 'gluetun' sets "
     "HTTP_CONTROL_SERVER_ADDRESS=:9999."),
    ({"acestream_engine_env": {"HTTP_PORT": "1"}}, "The engines role cannot converge this pool: acestream_engine_env"),
    ({"acestream_orchestrator_enabled": True, "acestream_orchestrator_env": {"CONTAINER_LABEL": "x=y"}},
     "CONTAINER_LABEL"),
    ({"acestream_orchestrator_enabled": True, "acestream_orchestrator_name": "gluetun"},
     "The orchestrator app (acestream_orchestrator_name) is named 'gluetun', like a Gluetun container"),
])
def test_bad_input_is_a_problem_naming_the_variable(given, problem):
    found = model.resolve(given)["problems"]
    assert any(problem in message for message in found), found


def test_the_secret_values_are_never_in_a_problem():
    found = model.resolve({"acestream_gluetun_api_key": " s3cr3t", "acestream_orchestrator_api_key": 7})["problems"]
    assert found and not any("s3cr3t" in message for message in found)


def test_an_absent_stack_needs_no_plan_but_keeps_its_names_and_paths():
    resolved = model.resolve({"acestream_state": "absent", "acestream_port_range_host": "1-2",
                              "acestream_engine_replicas": 50})
    assert resolved["problems"] == [] and resolved["plan"] is None
    assert resolved["vpn_names"] == ["gluetun"] and resolved["paths"]["gluetun_dir"] == "/opt/acestream/acestream/gluetun"


def test_the_model_takes_a_mapping_only():
    with pytest.raises(model.StackModelError):
        model.resolve(["acestream_pool_name"])


def test_the_compose_record_names_the_files_where_the_roles_write_them():
    resolved = model.resolve({"acestream_pool_name": "My.Pool", "acestream_stack_dir": "/srv/stack/",
                              "acestream_orchestrator_enabled": True, "acestream_orchestrator_bind": ""})
    compose, vpn = resolved["compose"], resolved["paths"]["vpns"]["gluetun"]
    assert compose["project"] == "my-pool"
    assert compose["vpns"]["gluetun"] == {"env_file": "gluetun/gluetun/gluetun.env",
                                          "state_volume": "./gluetun/gluetun/state:/gluetun",
                                          "auth_volume": "./gluetun/gluetun/auth:/gluetun/auth:ro"}
    assert "/srv/stack/" + compose["vpns"]["gluetun"]["env_file"] == vpn["env_file"]
    assert compose["app_env_file"] == "orchestrator.env" and compose["app_port"] == "8000:8000"
    assert model.resolve({"acestream_orchestrator_port": 8080})["compose"]["app_port"] == "127.0.0.1:8080:8000"


def test_a_bad_app_port_is_a_problem_not_an_error():
    # The filter's task hides its output (no_log): the port must come back as a problem, never as an exception.
    for port in (0, -1, 70000):
        problems = model.resolve({"acestream_orchestrator_enabled": True, "acestream_orchestrator_port": port})["problems"]
        assert len(problems) == 1 and problems[0].startswith("acestream_orchestrator_port: "), problems


def test_the_compose_record_lists_variables_as_it_always_did():
    """Sorted regardless of case (the order of the records written before the model), API_KEY first among the
    app's secrets: an upgrade rewrites no record."""
    env = {"HTTPPROXY": "on", "HTTP_TIMEOUT": "1", "lower_name": "x", "A_PASSWORD": "s"}
    resolved = model.resolve({"acestream_orchestrator_enabled": True, "acestream_orchestrator_env": env})
    shown = list(resolved["app_env_shown"])
    assert shown == sorted(shown, key=str.lower) and shown.index("HTTP_TIMEOUT") < shown.index("HTTPPROXY")
    assert shown.index("HTTPPROXY") < shown.index("lower_name")
    assert resolved["app_env_secrets"] == ["API_KEY", "A_PASSWORD"]
