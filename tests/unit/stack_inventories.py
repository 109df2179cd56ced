# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventories generated from the one declaration of the stack's variables (plugins/plugin_utils/_stack_variables.py),
as the unit tests resolve them and the integration tests run them:

* ``minimal()``: only the required variables (the stack has none: every variable has a default);
* ``one_at_a_time()``: the minimal inventory plus one optional variable set to its declared ``example`` (a value other
  than its default; with ``example_with`` when it needs another, e.g. VPN_MODE=redundant a second Gluetun container),
  for each declared variable;
* ``DOCUMENTED_STYLES``: each way the READMEs and docs/ describe a stack;
* ``documented_examples()``: the stacks of the plays the READMEs and docs/ show, as written there.

A test that needs its own names, ports and directory (several stacks on one Docker Engine) lays them over these.
"""

from __future__ import annotations

import copy
import importlib.util
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


def declaration():
    """The declaration module, loaded from the checkout (no collection loader needed)."""
    path = ROOT / "plugins" / "plugin_utils" / "_stack_variables.py"
    spec = importlib.util.spec_from_file_location("stack_variables_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VARIABLES = declaration().VARIABLES


def minimal():
    return {name: copy.deepcopy(spec["default"]) for name, spec in VARIABLES.items() if spec.get("required")}


def one_at_a_time():
    """``[(name, inventory)]``: the minimal inventory with that one variable set to its example."""
    out = []
    for name, spec in VARIABLES.items():
        inventory = minimal()
        inventory.update(copy.deepcopy(spec.get("example_with") or {}))
        inventory[name] = copy.deepcopy(spec["example"])
        out.append((name, inventory))
    return out


TWO_VPNS = [{"name": "gluetun1", "api_host_port": 8001, "env": {"VPN_SERVICE_PROVIDER": "custom"}},
            {"name": "gluetun2", "api_host_port": 8002, "env": {"VPN_SERVICE_PROVIDER": "custom"}}]

# The stack styles the documentation shows: the environment per container or for every container, the range split
# evenly or given per VPN, the app off or on, one VPN or two.
DOCUMENTED_STYLES = {
    "single, env per container": {
        "acestream_gluetun_containers": [{"name": "gluetun", "api_host_port": 8001,
                                          "env": {"VPN_SERVICE_PROVIDER": "custom", "VPN_TYPE": "wireguard"}}],
    },
    "single, env for every container": {
        "acestream_gluetun_containers": [{"name": "gluetun", "api_host_port": 8001}],
        "acestream_gluetun_env": {"VPN_SERVICE_PROVIDER": "custom", "VPN_TYPE": "wireguard"},
    },
    "redundant, range split evenly": {
        "acestream_vpn_mode": "redundant",
        "acestream_gluetun_containers": TWO_VPNS,
        "acestream_port_range_host": "19000-19019",
        "acestream_engine_replicas": 4,
    },
    "redundant, explicit per-VPN ranges": {
        "acestream_vpn_mode": "redundant",
        "acestream_gluetun_containers": TWO_VPNS,
        "acestream_port_range_host": "",
        "acestream_vpn_port_ranges": {"gluetun1": "19000-19009", "gluetun2": "19500-19509"},
        "acestream_engine_replicas": 4,
    },
    "single, orchestrator app on": {
        "acestream_orchestrator_enabled": True,
        "acestream_gluetun_env": {"VPN_SERVICE_PROVIDER": "custom"},
    },
    "redundant, orchestrator app on": {
        "acestream_vpn_mode": "redundant",
        "acestream_gluetun_containers": TWO_VPNS,
        "acestream_orchestrator_enabled": True,
        "acestream_engine_replicas": 4,
    },
}


DOCUMENTS = ("README.md", "docs/*.md", "roles/*/README.md")
TEMPLATE = re.compile(r"{{.*?}}")


def _untemplated(value):
    """A value as Ansible hands it to the model: an expression (a vault variable) becomes the text it gives."""
    if isinstance(value, dict):
        return {key: _untemplated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untemplated(item) for item in value]
    if isinstance(value, str) and TEMPLATE.search(value) and "acestream_" not in value:
        return TEMPLATE.sub("templated-value", value)
    return value


def documented_examples():
    """``[(where, inventory)]``: the ``vars`` of every play in a YAML block of the READMEs and docs/ that sets a
    stack variable (``where`` is ``path:line``)."""
    out = []
    for pattern in DOCUMENTS:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            for block in re.finditer(r"^```ya?ml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
                plays = yaml.safe_load(block.group(1))
                line = text[:block.start()].count("\n") + 1
                for play in plays if isinstance(plays, list) else []:
                    stack = {key: value for key, value in ((play or {}).get("vars") or {}).items()
                             if isinstance(play, dict) and key.startswith("acestream_")}
                    if stack:
                        out.append(("%s:%d" % (path.relative_to(ROOT), line), _untemplated(stack)))
    return out
