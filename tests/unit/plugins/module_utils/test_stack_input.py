# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile input to the roles, decided in _stack_input, _gluetun_stack and _env: the variables as given (every type a
YAML file can hold), environments, the stack's own names, who owns a container, engine_pool's checks made up front and the
config-hash label. Every message in its words; no secret value in any of them."""

from __future__ import annotations

import hashlib
import hmac
import pathlib

import pytest
import yaml

from ansible_collections.acestream.orchestrator.plugins.module_utils import _env
from ansible_collections.acestream.orchestrator.plugins.module_utils import _app_stack as app_stack
from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_stack as gluetun_stack
from ansible_collections.acestream.orchestrator.plugins.module_utils import _names as stack_names
from ansible_collections.acestream.orchestrator.plugins.module_utils import _ownership as ownership
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_input as stack_input
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_values as stack_values
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError, build_plan

SECRET = "s3cr3t-Value-42"
SPECS = {
    "key": {"type": "str", "no_log": True},
    "name": {"type": "str"},
    "dir": {"type": "path"},
    "port": {"type": "int"},
    "timeout": {"type": "float"},
    "enabled": {"type": "bool"},
    "env": {"type": "dict"},
    "items": {"type": "list", "elements": "dict", "options": {
        "name": {"type": "str"}, "port": {"type": "int"}, "env": {"type": "dict"}}},
    "names": {"type": "list", "elements": "str"},
    "anything": {"type": "raw"},
}


def problems(**values):
    return stack_input.variable_problems(list(values), list(values.values()), SPECS)


# --------------------------------------------------------------------------------------- variables as given
@pytest.mark.parametrize("values", [
    dict(key=SECRET, name="gluetun1", dir="/opt/acestream", port=8001, timeout=5, enabled=False, env={}, items=[],
         names=["a"], anything=None),
    dict(name="2024", port="8001", timeout="2.5", enabled=True, env={"A": 1}, items=[{"name": "g", "port": "1"}]),
    dict(port=" -1 ", timeout=0, key="", name=""),
    dict(unknown=["not", "checked"]),
])
def test_values_as_the_roles_use_them(values):
    assert problems(**values) == []


@pytest.mark.parametrize("values, message", [
    (dict(key=["a", "b"]), "key must be a string ('' for none), not a list"),
    (dict(key=SECRET + "\n"), "key holds a control character (a newline, tab or NUL): remove it (a YAML '|' block "
                              "ends in a newline: write '|-' or a plain string)"),
    (dict(key=7.5), "key must be a string ('' for none), not a decimal number: quote it"),
    (dict(key=123456), "key must be a string ('' for none), not a number: quote it"),
    (dict(name=2024), "name must be a string ('' for none), not a number (2024): quote it"),
    (dict(name="g\x85"), "name holds a control character"),
    (dict(key=None), "key is null (a key with no value): give a string ('' for none)"),
    (dict(key=True), "key must be a string ('' for none), not a boolean"),
    (dict(name=["g"]), "name must be a string ('' for none), not a list"),
    (dict(name="g\x00"), "name holds a control character"),
    (dict(name={"a": 1}), "name must be a string ('' for none), not a mapping"),
    (dict(name=1.5), "name must be a string ('' for none), not a decimal number (1.5): quote it"),
    (dict(dir="/opt/\tx"), "dir holds a control character"),
    (dict(port="8001x"), "port must be a whole number, not a string"),
    (dict(port="２９００４"), "port must be a whole number written with the digits 0-9, not other digits ('２９００４')"),
    (dict(port="2900⁴"), "port must be a whole number written with the digits 0-9, not other digits ('2900⁴')"),
    (dict(port=8001.0), "port must be a whole number, not a decimal number (8001.0)"),
    (dict(port=float("nan")), "port is NaN, not a finite number: give a whole number"),
    (dict(port=True), "port must be a whole number, not a boolean (True)"),
    (dict(port=None), "port is null (a key with no value): give a whole number"),
    (dict(port=[8001]), "port must be a whole number, not a list"),
    (dict(timeout=float("inf")), "timeout is infinite, not a finite number: give a number"),
    (dict(timeout="nan"), "timeout must be a number, not a string"),
    (dict(enabled="false"), "enabled is a string, not a boolean: give true or false (on the command line as JSON"),
    (dict(enabled=1), "enabled must be true or false, not a number (1)"),
    (dict(enabled=None), "enabled is null (a key with no value): give true or false"),
    (dict(env="A=1"), "env must be a mapping ({} for none), not a string"),
    (dict(env=None), "env is null (a key with no value): give a mapping ({} for none)"),
    (dict(items={"name": "g"}), "items must be a list ([] for none), not a mapping"),
    (dict(items="g"), "items must be a list ([] for none), not a string"),
    (dict(items=[{"name": ["g"], "port": 1}]), "items[0].name must be a string ('' for none), not a list"),
    (dict(items=[{"name": "g"}, {"name": "h", "port": "70O0"}]),
     "items[1].port must be a whole number, not a string"),
    (dict(items=[{"name": "g", "env": SECRET}]), "items[0].env must be a mapping ({} for none), not a string"),
    (dict(names=["a", None]), "names[1] is null (a key with no value): give a string ('' for none)"),
])
def test_values_refused(values, message):
    found = problems(**values)
    assert len(found) == 1 and found[0].startswith(message), found
    assert SECRET not in found[0]


def test_environments_and_patterns():
    names = ["env", "gluetun_env", "pattern", "other_pattern"]
    values = [{"A": None, "B=C": "x", "D": "x\ny"}, {"E": "x\ny", "F": [SECRET]}, "(", "(?i)(KEY|PASS)"]
    found = stack_input.variable_problems(names, values, {"env": {"type": "dict"}, "gluetun_env": {"type": "dict"},
                                                          "pattern": {"type": "str"}, "other_pattern": {"type": "str"}},
                                          envs={"env": False, "gluetun_env": True}, patterns=["pattern", "other_pattern"])
    assert found == [
        "env: A is null (a key with no value): give a string ('' for an empty value), a number or a boolean",
        "env: 'B=C' is not an environment variable name: use letters, digits and '_', not starting with a digit",
        "gluetun_env: E spans several lines: an env file holds one KEY=value per line",
        "gluetun_env: F is a list: give a string, a number or a boolean",
        "pattern is not a regular expression (missing ), unterminated subpattern at position 0): fix it, e.g. "
        "'(?i)(KEY|PASS|SECRET)'",
    ]
    # An environment of the wrong type is named once, by its type.
    assert stack_input.variable_problems(["env"], [["A=1"]], {"env": {"type": "dict"}}, envs={"env": True}) == [
        "env must be a mapping ({} for none), not a list"]


@pytest.mark.parametrize("value, message", [
    (SECRET, None),
    ("", None),
    (SECRET + " ", "holds a space at its start or end, which the X-API-Key header cannot carry as it is"),
    ("clé-" + SECRET, "holds a character outside printable ASCII, which the X-API-Key header cannot carry"),
    (SECRET + "\n", "holds a control character (a newline, tab or NUL): remove it"),
])
def test_credentials(value, message):
    found = stack_input.variable_problems(["key"], [value], SPECS, credentials=["key"])
    if message is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith("key " + message) and SECRET not in found[0], found


def test_stack_check_errors_never_show_a_value():
    """The filters can be given anything: their errors name the kind of a value, never the value itself."""
    with pytest.raises(stack_values.StackCheckError) as info:
        gluetun_stack.gluetun_env_problems([{"name": "g1", "env": "WIREGUARD_PRIVATE_KEY=" + SECRET}], api_port=8001)
    assert str(info.value) == "the env of 'g1' must be a mapping, not a string"
    with pytest.raises(stack_values.StackCheckError) as info:
        gluetun_stack.gluetun_env_problems([{"env": {"WIREGUARD_PRIVATE_KEY": SECRET}}], api_port=8001)
    assert str(info.value) == "each container must be a mapping with a name, not a mapping whose name is null"
    with pytest.raises(stack_values.StackCheckError) as info:
        app_stack.orchestrator_app_env(plan(), "single", 8001, env="API_KEY=" + SECRET)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("args, message", [
    ((["a"], [], {}), "names and values must be lists of the same length"),
    (("a", ["x"], {}), "names must be a list, not a string"),
    ((["a"], ["x"], []), "specs must be a mapping, not a list"),
])
def test_variable_problems_bad_input(args, message):
    with pytest.raises(stack_values.StackCheckError) as info:
        stack_input.variable_problems(*args)
    assert str(info.value) == message


# --------------------------------------------------------------------------------------- Gluetun names
ROLES = pathlib.Path(__file__).resolve().parents[4] / "roles"


def role_specs():
    """The options of every role, as roles/common/tasks/main.yml hands them to variable_problems."""
    specs = {}
    for role in ("common", "gluetun", "engines", "orchestrator_app"):
        specs.update(yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
                     ["argument_specs"]["main"]["options"])
    return specs


DOCKER_RULE = ("which Docker refuses as a container name: use letters, digits, '_', '.' and '-', starting with a "
               "letter or digit, two characters at least ([a-zA-Z0-9][a-zA-Z0-9_.-]+), e.g. gluetun1 (the port "
               "guide's GLUETUN_CONTAINER_NAME)")


@pytest.mark.parametrize("name, message", [
    ("g" * 256, "is 256 characters long: the gluetun role keeps the container's files in <acestream_stack_dir>/"
                "gluetun/<name>, and a file name holds at most 255 bytes (NAME_MAX): give it a name of at most 255 "
                "characters, e.g. gluetun1 (the port guide's GLUETUN_CONTAINER_NAME)"),
    ("gluetun-" * 40, "is 320 characters long"),
    ("g", "is 'g', " + DOCKER_RULE),
    ("glue tun", "is 'glue tun', " + DOCKER_RULE),
    ("-gluetun", "is '-gluetun', " + DOCKER_RULE),
    ("/gluetun2", "is '/gluetun2', " + DOCKER_RULE),
    ("gluetun2 ", "is 'gluetun2 ', " + DOCKER_RULE),
    ("gl\u00fcetun", "is 'gl\u00fcetun', " + DOCKER_RULE),
    ("gluetun:2", "is 'gluetun:2', " + DOCKER_RULE),
    ("." + "g" * 300, "is '." + "g" * 56 + "'..., " + DOCKER_RULE),
])
def test_an_unusable_gluetun_container_name_is_refused_naming_its_variable(name, message):
    """A Gluetun container name Docker refuses, or one too long for the file name the gluetun role derives from it
    (<acestream_stack_dir>/gluetun/<name>, NAME_MAX 255 bytes), is refused by the roles' first check, before
    anything is written, naming acestream_gluetun_containers[N].name and the fix."""
    containers = [{"name": "gluetun1", "api_host_port": 8001, "env": {}},
                  {"name": name, "api_host_port": 8002, "env": {}}]
    found = stack_input.variable_problems(["acestream_vpn_mode", "acestream_gluetun_containers"], ["redundant", containers],
                                          role_specs())
    assert len(found) == 1 and found[0].startswith("acestream_gluetun_containers[1].name " + message), found


def test_gluetun_container_names_docker_and_the_file_system_take_pass():
    containers = [{"name": name, "api_host_port": 8001 + index}
                  for index, name in enumerate(["gluetun1", "g" * 255, "VPN_2.nl-ams", "g2"])]
    assert stack_input.variable_problems(["acestream_gluetun_containers"], [containers], role_specs()) == []
    # A name of another type is the type check's (named once); the check can be turned off or aimed elsewhere.
    found = stack_input.variable_problems(["acestream_gluetun_containers"], [[{"name": ["g"], "api_host_port": 8001}]],
                                          role_specs())
    assert found == ["acestream_gluetun_containers[0].name must be a string ('' for none), not a list (['g'])"]
    assert stack_input.variable_problems(["acestream_gluetun_containers"], [[{"name": "g", "api_host_port": 8001}]],
                                         role_specs(), containers={}) == []
    assert stack_input.variable_problems(["items"], [[{"name": "g"}]], SPECS, containers={"items": "name"}) == [
        "items[0].name is 'g', " + DOCKER_RULE]


@pytest.mark.parametrize("names, message", [
    (["gluetun1", "glue tun"], "vpn_containers: 'glue tun' is not a valid Docker container name (item 2): use "
                               "letters, digits, '_', '.' and '-', starting with a letter or digit, e.g. gluetun1 "
                               "(the engines are named <pool>-<vpn>-<port>, a Docker name too)"),
    (["-gluetun"], "vpn_containers: '-gluetun' is not a valid Docker container name (item 1)"),
])
def test_engine_pool_names_a_vpn_container_name_that_would_not_make_engine_names(names, message):
    """The engine_pool module's own check of vpn_containers (its engines are named <pool>-<vpn>-<port>, Docker names
    too) names the item, Docker's rule and an example; the roles' preflight says it with their variable."""
    with pytest.raises(PortPlanError) as err:
        build_plan(names, port_range="19000-19009")
    assert str(err.value).startswith(message), str(err.value)
    assert err.value.field == "vpn_containers" and err.value.kind == "names"
    problems = stack_input.engine_pool_problems(names, name="acestream", port_range="19000-19009", api_port=8001)
    assert problems == ["The engines role cannot converge this pool: acestream_gluetun_containers (engine_pool's "
                        "vpn_containers): " + str(err.value).split(": ", 1)[1]]


# --------------------------------------------------------------------------------------- environments
@pytest.mark.parametrize("key, value, one_line, message", [
    ("A", "x", False, None),
    ("A", "x\ny", False, None),
    ("_a1", 1.5, True, None),
    ("A", "x\ny", True, "A spans several lines: an env file holds one KEY=value per line"),
    ("A", "x\ry", True, "A spans several lines: an env file holds one KEY=value per line"),
    ("A", "x\x00y", False, "A holds a NUL character, which no environment can carry: remove it"),
    ("A", None, False, "A is null (a key with no value): give a string ('' for an empty value), a number or a boolean"),
    ("A", ["a", "b"], False, "A is a list: give a string, a number or a boolean"),
    ("A", {"a": 1}, False, "A is a mapping: give a string, a number or a boolean"),
    ("A", float("-inf"), False, "A is not a finite number: give a string, a number or a boolean"),
    ("A", b"x", False, "A is a bytes: give a string, a number or a boolean"),
    ("A=B", "x", False, "'A=B' is not an environment variable name"),
    ("", "x", False, "'' is not an environment variable name"),
    ("A\x00", "x", False, "'A\\u0000' is not an environment variable name"),
    (None, "x", False, "None is not an environment variable name: names are strings"),
])
def test_env_rule(key, value, one_line, message):
    problem = _env.env_name_problem(key) or _env.env_value_problem(key, value, one_line)
    if message is None:
        assert problem is None
    else:
        assert problem.startswith(message), problem


def test_env_problems_never_show_values():
    env = {"KEY": SECRET + "\x00", "PASS": [SECRET], "OK": SECRET}
    found = _env.env_problems(env, "acestream_engine_env")
    assert found == ["acestream_engine_env: KEY holds a NUL character, which no environment can carry: remove it",
                     "acestream_engine_env: PASS is a list: give a string, a number or a boolean"]
    assert _env.env_problems(None, "x") == []
    assert _env.env_problems([SECRET], "x") == ["x must be a mapping of variable names to values, not a list"]


# --------------------------------------------------------------------------------------- names and owners
def plan(names=("gluetun1", "gluetun2"), port_range="19000-19003"):
    return build_plan(list(names), port_range=port_range).to_dict()


def test_name_collisions():
    assert ownership.name_collisions(plan(), "acestream", app_name="acestream-orchestrator") == []
    assert ownership.name_collisions(plan(), "acestream", app_name=None) == []
    # gluetun2's slots are acestream-gluetun2-19002 and -19003: a Gluetun container of that name is refused.
    taken = plan(("gluetun1", "acestream-gluetun1-19000"))
    assert ownership.name_collisions(taken, "acestream") == [
        "Gluetun container 'acestream-gluetun1-19000' (acestream_gluetun_containers) has the name of the engine of "
        "pool 'acestream' on VPN 'gluetun1', port 19000: one would replace the other. Rename the Gluetun container or "
        "the pool (acestream_pool_name)."]
    assert ownership.name_collisions(plan(), "acestream", app_name="gluetun2") == [
        "The orchestrator app (acestream_orchestrator_name) is named 'gluetun2', like a Gluetun container of "
        "acestream_gluetun_containers: one would replace the other. Give the app its own name, e.g. "
        "acestream-orchestrator."]
    # With the app on, the engines role creates no engine: an app named like a slot takes nothing's place.
    assert ownership.name_collisions(plan(), "acestream", app_name="acestream-gluetun2-19003") == []


def owned(manager=stack_names.GLUETUN_MANAGER, pool="acestream"):
    return {"id": "x", "state": "running", "labels": {"acestream.managed-by": manager, "acestream.pool": pool}}


def test_ownership_problems():
    containers = {"gluetun1": owned(), "acestream-orchestrator": owned(stack_names.APP_MANAGER), "other": {"labels": {}}}
    assert ownership.ownership_problems(containers, "acestream", gluetun=["gluetun1", "gluetun2"],
                                        app_name="acestream-orchestrator") == []
    assert ownership.ownership_problems({}, "acestream", gluetun=["gluetun1"], app_name="app") == []
    foreign = {"gluetun1": {"id": "x", "state": "running", "labels": {"maintainer": "me"}},
               "gluetun2": owned(pool="other"),
               "app": owned(stack_names.ENGINE_MANAGER)}
    assert ownership.ownership_problems(foreign, "acestream", gluetun=["gluetun1", "gluetun2"], app_name="app") == [
        "Container 'gluetun1' (acestream_gluetun_containers) is not this stack's: it carries no acestream.managed-by "
        "label: it was not created by this collection. Nothing without this stack's labels is changed or removed: "
        "rename this stack's container in acestream_gluetun_containers, or remove or rename that container yourself.",
        "Container 'gluetun2' (acestream_gluetun_containers) is not this stack's: it is the Gluetun container of stack "
        "'other' (acestream.managed-by=acestream.orchestrator.gluetun, acestream.pool=other). Nothing without this "
        "stack's labels is changed or removed: rename this stack's container in acestream_gluetun_containers, or "
        "remove or rename that container yourself.",
        "Container 'app' (acestream_orchestrator_name) is not this stack's: it is an engine of stack 'acestream' "
        "(acestream.managed-by=acestream.orchestrator.engine_pool, acestream.pool=acestream). Nothing without this "
        "stack's labels is changed or removed: rename this stack's container in acestream_orchestrator_name, or "
        "remove or rename that container yourself.",
    ]
    # Engine slots: the pool's own engines are fine; a container made by hand or another pool's is named.
    slots = {"acestream-gluetun1-19000": owned(stack_names.ENGINE_MANAGER), "acestream-gluetun2-19003": {"labels": {}},
             "acestream-gluetun1-19001": owned(stack_names.ENGINE_MANAGER, pool="other")}
    assert ownership.ownership_problems(slots, "acestream", plan=plan()) == [
        "Container 'acestream-gluetun1-19001' (an engine slot of acestream_pool_name) is not this stack's: it is an "
        "engine of stack 'other' (acestream.managed-by=acestream.orchestrator.engine_pool, acestream.pool=other). "
        "Nothing without this stack's labels is changed or removed: rename the pool (acestream_pool_name), or remove "
        "or rename that container yourself.",
        "Container 'acestream-gluetun2-19003' (an engine slot of acestream_pool_name) is not this stack's: it carries "
        "no acestream.managed-by label: it was not created by this collection. Nothing without this stack's labels "
        "is changed or removed: rename the pool (acestream_pool_name), or remove or rename that container yourself.",
    ]
    assert ownership.ownership_problems(slots, "acestream") == []
    # The app's container is not a Gluetun container, even of the same stack.
    assert len(ownership.ownership_problems({"g": owned(stack_names.APP_MANAGER)}, "acestream", gluetun=["g"])) == 1
    with pytest.raises(stack_values.StackCheckError, match="containers must be a mapping, not a list"):
        ownership.ownership_problems([], "acestream")


# --------------------------------------------------------------------------------------- engine_pool up front
POOL = dict(name="acestream", replicas=2, port_range="19000-19009", https_port_range="45000-49999", api_port=8001,
            env={}, api_key="")


def test_engine_pool_problems_accepts_what_engine_pool_takes():
    assert stack_input.engine_pool_problems(["g1", "g2"], **POOL) == []
    given_as_text = {**POOL, "replicas": "2", "api_port": "8001", "image": None, "engine_variant": None,
                     "forwarded_port": None}
    assert stack_input.engine_pool_problems(["g1"], **given_as_text) == []


@pytest.mark.parametrize("options, message", [
    (dict(https_port_range="9990-9999"),
     "acestream_engine_https_port_range (engine_pool's https_port_range): 9990-9999 includes port 9999, Gluetun's "
     "health server inside the VPN's namespace"),
    (dict(port_range="9995-10004"),
     "acestream_port_range_host (engine_pool's port_range): 9995-9999 (VPN 'g1') includes port 9999"),
    (dict(env={"HTTP_PORT": "1"}),
     "acestream_engine_env (engine_pool's env): HTTP_PORT is set by the pool from the engine's slot"),
    (dict(env={"A=B": "1"}), "acestream_engine_env (engine_pool's env): 'A=B' is not an environment variable name"),
    (dict(env={"A": None}), "acestream_engine_env (engine_pool's env): A is null"),
    (dict(env={"WIREGUARD_PRIVATE_KEY": SECRET + "\x00"}),
     "acestream_engine_env (engine_pool's env): WIREGUARD_PRIVATE_KEY holds a NUL character"),
    (dict(name="bad name"), "acestream_pool_name (engine_pool's name): 'bad name' is not usable"),
])
def test_engine_pool_problems_refuses_what_engine_pool_would(options, message):
    found = stack_input.engine_pool_problems(["g1", "g2"], **{**POOL, **options})
    assert len(found) == 1 and found[0].startswith("The engines role cannot converge this pool: " + message), found
    assert SECRET not in found[0]


def test_engine_pool_problems_bad_input():
    with pytest.raises(stack_values.StackCheckError, match="engine_pool_problems takes only name, .* not labels"):
        stack_input.engine_pool_problems(["g1"], labels={})


# --------------------------------------------------------------------------------------- config-hash label
def test_config_hash_is_keyed():
    content = 'apikey = "%s"' % SECRET
    value = gluetun_stack.config_hash(content, "k" * 32)
    assert value == hmac.new(b"k" * 32, content.encode(), hashlib.sha256).hexdigest()[:16]
    assert len(value) == 16 and value == gluetun_stack.config_hash(content, "k" * 32)
    # Without the key, the unkeyed digest of a guess tells nothing.
    assert value != hashlib.sha256(content.encode()).hexdigest()[:16]
    assert gluetun_stack.config_hash(content, "other-key") != value
    assert gluetun_stack.config_hash(content + " ", "k" * 32) != value
    with pytest.raises(stack_values.StackCheckError, match="the hash key is empty"):
        gluetun_stack.config_hash(content, "")
    with pytest.raises(stack_values.StackCheckError, match="key must be a string, not null"):
        gluetun_stack.config_hash(content, None)


@pytest.mark.parametrize("value", ["all", "acestream:&prod", ["web", "acestream"]])
def test_host_patterns_are_returned_as_given(value):
    assert stack_input.host_pattern(value) == value


@pytest.mark.parametrize("value, words", [
    ("", "not an empty string"), ("   ", "not an empty string"), (None, "not null"), (7, "not a number"),
    ({"a": 1}, "not a mapping"), ([], "an empty list"), (["web", 3], "not a number"),
    ("web\nprod", "control character"), (float("nan"), "not a decimal number"),
])
def test_a_bad_host_pattern_names_acestream_hosts_and_the_fix(value, words):
    with pytest.raises(stack_values.StackCheckError) as raised:
        stack_input.host_pattern(value)
    assert "acestream_hosts" in str(raised.value) and words in str(raised.value)
