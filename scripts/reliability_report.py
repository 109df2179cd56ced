#!/usr/bin/env python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the reliability record: one table of the fleet, bad-input, fault and security cases, each with what it
checks (the test's docstring) and its result in the last run (the JUnit reports of scripts/test.sh).

    scripts/reliability_report.py                       # build/test-reports/*.xml -> build/test-reports/reliability.md
    scripts/reliability_report.py --out docs/reliability.md
"""

from __future__ import annotations

import argparse
import ast
import datetime
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# area, test file, tests of that file (None: all of them), in the order of the table.
CASES = [
    ("fleet", "tests/fleet/test_fleet.py", None),
    ("bad input", "tests/integration/test_engine_pool_variants.py", ["test_bad_input_is_refused_before_anything_is_touched"]),
    ("bad input", "tests/integration/test_bad_input.py", None),
    ("bad input", "tests/integration/test_roles_preflight.py", None),
    ("bad input", "tests/unit/plugins/module_utils/test_stack_input.py",
     ["test_an_unusable_gluetun_container_name_is_refused_naming_its_variable",
      "test_engine_pool_names_a_vpn_container_name_that_would_not_make_engine_names"]),
    ("faults", "tests/integration/test_reliability.py", None),
    ("faults", "tests/integration/test_roles_reshape.py", None),
    ("faults", "tests/integration/test_roles_reshape_ranges.py", None),
    ("faults", "tests/integration/test_engine_pool_drift.py", None),
    ("faults", "tests/integration/test_gluetun_status.py",
     ["test_route_fallbacks_and_401_paths", "test_waits_for_health_and_port_and_reports_docker_health",
      "test_ten_instances_three_hung_report_the_timeout"]),
    ("faults", "tests/integration/test_playbooks.py",
     ["test_redundant_stack_site_verify_status_drift", "test_changed_api_key_recreates_gluetun_and_the_engines_follow"]),
    ("faults", "tests/eda/test_one_host_misbehaves.py", None),
    ("faults", "tests/unit/plugins/module_utils/test_gluetun_api.py",
     ["test_a_server_dribbling_its_answer_is_given_up_at_the_deadline",
      "test_the_reads_of_engine_pool_and_stack_info_keep_to_the_deadline",
      "test_a_body_nested_100000_deep_is_refused_naming_the_vpn_and_the_route",
      "test_json_of_the_wrong_shape_on_every_route_is_refused_naming_the_vpn_and_the_route",
      "test_answers_that_are_not_http_as_a_control_server_sends_it_are_the_collections_errors"]),
    ("faults", "tests/unit/plugins/module_utils/test_engine_core.py",
     ["test_a_forwarded_port_gluetun_itself_listens_on_is_no_engines_p2p_port",
      "test_duplicate_forwarded_ports_give_one_engine_and_converge"]),
    ("faults", "tests/unit/plugins/module_utils/test_stack_view.py",
     ["test_verify_passes_where_engine_pool_converged_with_duplicate_or_reserved_forwarded_ports"]),
    ("faults", "tests/unit/plugins/modules/test_stack_files.py",
     ["test_a_read_only_file_system_is_named_as_such_not_as_permission_denied",
      "test_each_os_error_on_a_write_is_named_with_its_fix"]),
    ("security", "tests/integration/test_playbooks.py", ["test_secrets_never_printed_even_with_diff_and_vvv"]),
    ("security", "tests/integration/test_gluetun_status.py", ["test_no_secret_at_vvv"]),
]


def docstrings(path):
    """test name -> first paragraph of its docstring, joined on one line."""
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            doc = ast.get_docstring(node) or node.name[5:].replace("_", " ") + "."
            found[node.name] = " ".join(doc.split("\n\n")[0].split())
    return found


def _list_length(tree, name):
    """Length of the first list literal assigned to ``name`` anywhere in ``tree`` (None when there is none)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name and \
                isinstance(node.value, ast.List):
            return len(node.value.elts)
    return None


def bad_input_counts():
    """How many bad-input cases each bad-input test holds: the length of its list of cases."""
    counts = {}
    for file, test, name in (
            ("tests/integration/test_engine_pool_variants.py", "test_bad_input_is_refused_before_anything_is_touched",
             "cases"),
            ("tests/integration/test_bad_input.py", "test_bad_input_to_status_lookup_and_filter_changes_nothing",
             "CASES")):
        tree = ast.parse((ROOT / file).read_text())
        if name == "cases":
            tree = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == test)
        count = _list_length(tree, name)
        if count is not None:
            counts[test] = count
    return counts


def results(reports):
    """(module path, test name without parameters) -> list of (outcome, seconds) over its runs."""
    found = {}
    for xml in sorted(reports.glob("*.xml")):
        for case in ET.parse(xml).getroot().iter("testcase"):
            module = case.get("classname", "").replace(".", "/") + ".py"
            name = case.get("name", "").split("[")[0]
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            elif case.find("skipped") is not None:
                outcome = "skipped"
            else:
                outcome = "passed"
            found.setdefault((module, name), []).append((outcome, float(case.get("time", 0))))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", default=str(ROOT / "build" / "test-reports"))
    parser.add_argument("--out", default=str(ROOT / "build" / "test-reports" / "reliability.md"))
    args = parser.parse_args()
    runs = results(Path(args.reports))
    counts = bad_input_counts()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    rows, tally, bad_cases = [], {}, 0
    for area, file, names in CASES:
        docs = docstrings(ROOT / file)
        for name in names or list(docs):
            outcomes = runs.get((file, name), [])
            if not outcomes:
                result, seconds = "not run", ""
            else:
                kinds = sorted({o for o, _s in outcomes})
                result = kinds[0] if len(kinds) == 1 else "/".join(kinds)
                if len(outcomes) > 1:
                    result += " (%d cases)" % len(outcomes)
                seconds = "%.0f" % sum(s for _o, s in outcomes)
            what = docs[name]
            if area == "bad input" and not what[0].isupper():
                what = "Refused (failed, the message names the fix, every container unchanged): " + what
            if area == "bad input":
                cases = counts.get(name, len(outcomes) or 1)
                bad_cases += cases
                if name in counts:
                    what = "%d cases. %s" % (cases, what)
            tally[result.split(" ")[0]] = tally.get(result.split(" ")[0], 0) + 1
            cells = (area, "`%s::%s`" % (Path(file).name, name), what.replace("|", "\\|"), result, seconds)
            rows.append("| %s | %s | %s | %s | %s |" % cells)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability",
        "",
        "What the test suite proves when the world is not kind: a fleet of independent Docker Engines, bad input",
        "(refused before anything is touched), faults (nothing lost, final state converged) and secrets (never shown).",
        "Every row is a test that runs in the README's test command (`scripts/test.sh`); the result is the one of",
        "the last run, written by `scripts/reliability_report.py` from its JUnit reports.",
        "",
        "Last run: %s, commit %s. Rows: %s. Bad-input cases: %d." % (
            stamp, commit, ", ".join("%d %s" % (n, k) for k, n in sorted(tally.items())), bad_cases),
        "",
        "| area | test | what it checks | result | seconds |",
        "|---|---|---|---|---:|",
    ] + rows
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote %s (%d rows, %d bad-input cases)" % (args.out, len(rows), bad_cases))


if __name__ == "__main__":
    main()
