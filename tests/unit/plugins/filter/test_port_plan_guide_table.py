# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port guide's "Common Configurations" table, generated through the port_plan filter (scripts/port_table.py):
equal to the guide's rows, and to the block in docs/port-planning.md. Also the filter's control-server options."""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.port_plan import FilterModule

_ROOT = pathlib.Path(__file__).resolve().parents[4]

# The guide, next to the checkout (absent on a clean clone: then only the in-repo copy below is checked).
SEED_GUIDE = pathlib.Path(os.environ.get("ACESTREAM_PORT_GUIDE",
                                         str(_ROOT.parent / "shared" / "seed" / "GLUETUN_PORT_CONFIGURATION.md")))

# The guide's "Common Configurations" table, verbatim.
GUIDE_TABLE = """\
| Setup | Gluetun HTTP_CONTROL_SERVER_ADDRESS | Gluetun Port Mapping | Orchestrator GLUETUN_API_PORT |
|-------|-------------------------------------|----------------------|-------------------------------|
| Single VPN | `:8001` | `8001:8001` | `8001` |
| Single VPN (alt) | `:8000` | `8000:8000` | `8000` |
| Redundant VPN1 | `:8001` | `8001:8001` | `8001` |
| Redundant VPN2 | `:8001` | `8002:8001` | `8001` |"""


def _load_generator():
    spec = importlib.util.spec_from_file_location("port_table", _ROOT / "scripts" / "port_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


port_table = _load_generator()
port_plan = FilterModule().filters()["port_plan"]


def guide_table(text):
    """The table under the guide's "### Common Configurations" heading, as text."""
    lines = text.splitlines()
    start = lines.index("### Common Configurations")
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table or line.startswith("#"):
            break
    return "\n".join(table)


def test_generated_table_is_the_guides():
    rows = port_table.table_rows(port_plan)
    assert rows == [
        ("Single VPN", "`:8001`", "`8001:8001`", "`8001`"),
        ("Single VPN (alt)", "`:8000`", "`8000:8000`", "`8000`"),
        ("Redundant VPN1", "`:8001`", "`8001:8001`", "`8001`"),
        ("Redundant VPN2", "`:8001`", "`8002:8001`", "`8001`"),
    ]
    assert port_table.render_table(rows) == GUIDE_TABLE


@pytest.mark.skipif(not SEED_GUIDE.is_file(), reason="the port guide is not next to this checkout")
def test_generated_table_is_the_seed_guides():
    seed = guide_table(SEED_GUIDE.read_text(encoding="utf-8"))
    assert seed == GUIDE_TABLE, "the guide's table changed: update GUIDE_TABLE and scripts/port_table.py"
    assert port_table.render_table(port_table.table_rows(port_plan)) == seed


def test_guide_table_parser():
    text = "# Guide\n\n### Common Configurations\n\n%s\n\n**Important:** ...\n| not | this |\n" % GUIDE_TABLE
    assert guide_table(text) == GUIDE_TABLE


def test_rows_come_from_the_calls_shown():
    # Each call shown in the doc, evaluated by the filter, gives its rows; the generator evaluates those very calls.
    for name, call, entries in port_table.SETUPS:
        plan = port_table.evaluate(call, port_plan)
        direct = port_plan(**_call_arguments(call))
        assert plan == direct, name
        assert len(entries) == len(plan["vpns"])
    calls = port_table.render_calls()
    for name, call, _entries in port_table.SETUPS:
        assert '%s: "{{ %s }}"' % (name, call) in calls


def _call_arguments(call):
    """The Python arguments of a filter call written as ``[names] | acestream.orchestrator.port_plan(k=v, ...)``."""
    names, sep, rest = call.partition(" | %s" % port_table.FILTER)
    assert sep, call
    node = ast.parse("f%s" % rest, mode="eval").body
    assert isinstance(node, ast.Call) and not node.args
    kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
    return dict(vpn_names=ast.literal_eval(names), **kwargs)


def test_doc_holds_exactly_the_generated_block():
    doc = (_ROOT / "docs" / "port-planning.md").read_text(encoding="utf-8")
    block = port_table.render_block(port_plan)
    assert doc.count(port_table.BEGIN) == 1 and doc.count(port_table.END) == 1
    assert port_table.doc_block(doc) == block, "docs/port-planning.md is out of date: python scripts/port_table.py --write"
    assert GUIDE_TABLE in block
    section = doc.split("## The port guide's Common Configurations, from the plan", 1)
    assert len(section) == 2 and block in section[1].split("\n## ", 1)[0]


def test_generator_check_mode():
    assert port_table.main(["--check"]) == 0


# ------------------------------------------------------------------------------------------ filter options
def test_filter_control_server_fields():
    plan = port_plan(["gluetun1", "gluetun2"], port_range="19000-19999", api_port=8001)
    assert [(v["control_server_address"], v["api_port"], v["api_host_port"], v["api_port_mapping"])
            for v in plan["vpns"]] == [(":8001", 8001, 8001, "8001:8001"), (":8001", 8001, 8002, "8002:8001")]
    plan = port_plan(["gluetun1", "gluetun2"], port_range="19000-19999", api_host_ports={"gluetun2": 9002})
    assert [v["api_port_mapping"] for v in plan["vpns"]] == ["8001:8001", "9002:8001"]


def test_filter_without_api_arguments_as_before():
    plan = port_plan(["gluetun1", "gluetun2"], port_range="19000-19999", vpn_port_ranges={}, replicas=4,
                     https_port_range="45000-49999")
    assert set(plan["vpns"][0]) == {"name", "index", "range", "start", "end", "size", "capacity", "share"}


@pytest.mark.parametrize("kwargs, message", [
    (dict(api_port="x"), "acestream.orchestrator.port_plan: api_port: 'x' is not a port; give GLUETUN_API_PORT"),
    (dict(api_port=70000), "acestream.orchestrator.port_plan: api_port: port 70000 is outside 1-65535"),
    (dict(api_port=19500), "api_port: 19500 lies inside the engine ports of 'gluetun2' (19500-19999)"),
    (dict(api_port=46000), "api_port: 46000 lies inside https_port_range 45000-49999"),
    (dict(api_host_ports=[8001]), "api_host_ports: [8001] gives 1 port(s) for 2 VPN(s)"),
    (dict(api_host_ports={"g9": 1}), "api_host_ports: 'g9' is not in vpn_containers"),
    (dict(api_host_ports=[8001, 8001]), "api_host_ports.gluetun2: host port 8001 of 'gluetun2' is already given to "
                                        "'gluetun1': Docker would refuse with \"port is already allocated\""),
    (dict(api_host_ports=[19000, 8002]), "api_host_ports.gluetun1: host port 19000 of 'gluetun1' lies inside the "
                                         "engine range 19000-19499"),
])
def test_filter_errors_name_the_field(kwargs, message):
    with pytest.raises(AnsibleFilterError) as info:
        port_plan(["gluetun1", "gluetun2"], port_range="19000-19999", **kwargs)
    assert message in str(info.value)
