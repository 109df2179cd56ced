"""Every role's meta/argument_specs.yml documents exactly its defaults/main.yml, with the same defaults and types.

Also: one variable namespace shared by the roles, so a variable has a single owner (one role's defaults), every
acestream_* variable the roles and playbooks read is defined somewhere, and each role's README names its variables.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict, "path": str}
VAR_RE = re.compile(r"\bacestream_[a-z0-9_]+\b")


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def defaults(role):
    return load(ROOT / "roles" / role / "defaults" / "main.yml") or {}


def options(role):
    spec = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")
    return spec["argument_specs"]["main"].get("options") or {}


def test_roles_found():
    assert {"common", "gluetun", "engines", "orchestrator_app"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_list_exactly_the_defaults(role):
    documented, default = set(options(role)), set(defaults(role))
    assert documented - default == set(), f"{role}: in argument_specs.yml but not in defaults/main.yml"
    assert default - documented == set(), f"{role}: in defaults/main.yml but not in argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_defaults_and_types_match(role):
    values = defaults(role)
    for name, spec in options(role).items():
        assert spec.get("description"), f"{role}: {name} has no description"
        assert "type" in spec, f"{role}: {name} has no type"
        assert spec.get("default") == values[name], (
            f"{role}: {name} defaults to {values[name]!r} in defaults/main.yml but {spec.get('default')!r} "
            "in argument_specs.yml")
        expected = TYPES[spec["type"]]
        assert isinstance(values[name], expected) and not (expected is int and isinstance(values[name], bool)), (
            f"{role}: {name} is a {spec['type']} but defaults to {values[name]!r}")
        if "choices" in spec:
            assert values[name] in spec["choices"], f"{role}: default of {name} is not one of its choices"
        if spec["type"] == "list" and "elements" in spec:
            assert all(isinstance(item, TYPES[spec["elements"]]) for item in values[name]), name


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_use_the_shared_namespace(role):
    for name in defaults(role):
        assert name.startswith("acestream_"), f"{role}: {name} is outside the acestream_ namespace"


def test_each_variable_has_one_owner():
    owners = {}
    for role in ROLES:
        for name in defaults(role):
            owners.setdefault(name, []).append(role)
    shared = {name: roles for name, roles in owners.items() if len(roles) > 1}
    assert shared == {}, f"defined in more than one role (give each variable one owner): {shared}"


def test_the_guide_names_are_kept():
    names = set().union(*(defaults(role) for role in ROLES))
    for name in ("acestream_vpn_mode", "acestream_gluetun_containers", "acestream_gluetun_image",
                 "acestream_gluetun_api_port", "acestream_gluetun_api_bind", "acestream_gluetun_api_key",
                 "acestream_port_range_host", "acestream_engine_replicas", "acestream_engine_variant",
                 "acestream_engine_image", "acestream_pool_name", "acestream_orchestrator_enabled"):
        assert name in names


def _set_names(node, found):
    """Names a play or task list sets: set_fact keys, register, vars of plays/tasks (YAML walk)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("ansible.builtin.set_fact", "set_fact") and isinstance(value, dict):
                found.update(value)
            elif key == "register" and isinstance(value, str):
                found.add(value)
            _set_names(value, found)
    elif isinstance(node, list):
        for item in node:
            _set_names(item, found)
    return found


def test_every_acestream_variable_read_is_defined():
    defined = set().union(*(defaults(role) for role in ROLES))
    for path in list((ROOT / "roles").rglob("*.yml")) + list((ROOT / "playbooks").glob("*.yml")):
        _set_names(load(path), defined)
    # Variables a user passes to a playbook (documented in the playbook's header).
    playbook_inputs = {"acestream_hosts", "acestream_status_file", "acestream_drift_fail"}
    unknown = {}
    sources = [p for p in (ROOT / "roles").rglob("*") if p.suffix in (".yml", ".j2")]
    sources += list((ROOT / "playbooks").glob("*.yml"))
    for path in sources:
        for name in VAR_RE.findall(path.read_text(encoding="utf-8")):
            if name not in defined | playbook_inputs:
                unknown.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert unknown == {}, f"read but never defined (typo?): {unknown}"


def readme_default(value):
    """A default as the READMEs' variable tables write it: YAML flow style without quotes, ``""`` for empty."""
    if value == "":
        return '""'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{%s}" % ", ".join(f"{key}: {readme_default(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "[%s]" % ", ".join(readme_default(item) for item in value)
    return str(value).replace("|", "\\|")


@pytest.mark.parametrize("role", ROLES)
def test_readme_names_every_variable(role):
    readme = (ROOT / "roles" / role / "README.md").read_text(encoding="utf-8")
    missing = [name for name in defaults(role) if f"`{name}`" not in readme]
    assert missing == [], f"roles/{role}/README.md does not document {missing}"
    rows = dict(re.findall(r"^\| `(acestream_[a-z0-9_]+)` \| `(.*?)` \| ", readme, flags=re.MULTILINE))
    wrong = {name: (rows[name], readme_default(value)) for name, value in defaults(role).items()
             if name in rows and rows[name] != readme_default(value)}
    assert wrong == {}, f"roles/{role}/README.md gives other defaults (README, declared): {wrong}"
    assert set(rows) <= set(defaults(role)), f"roles/{role}/README.md tabulates another role's variables"


def _render_module():
    import importlib.util  # pylint: disable=import-outside-toplevel

    spec = importlib.util.spec_from_file_location("render_variables", ROOT / "scripts" / "render_variables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_argument_specs_and_defaults_are_rendered_from_the_one_declaration():
    assert _render_module().stale() == [], "run scripts/render_variables.py"


# A role's tasks and templates read its own variables and common's; any other role's only through the stack model
# (_acestream_model.vars), which every entry point resolves with the declared defaults.
BARE_VAR_RE = re.compile(r"(?<![.\w])acestream_[a-z0-9_]+\b")


@pytest.mark.parametrize("role", ROLES)
def test_roles_read_only_their_own_and_commons_variables(role):
    own = set(defaults(role)) | set(defaults("common"))
    declared = set().union(*(defaults(other) for other in ROLES))
    for path in sorted((ROOT / "roles" / role).glob("**/*")):
        if path.suffix not in (".yml", ".j2") or {"meta", "defaults"} & set(path.parts):
            continue
        others = {name for name in BARE_VAR_RE.findall(path.read_text(encoding="utf-8"))
                  if name in declared and name not in own}
        assert others == set(), (
            f"{path.relative_to(ROOT)} reads {sorted(others)} of another role: read _acestream_model.vars instead")
