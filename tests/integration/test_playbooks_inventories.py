# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped inventories describe valid stacks: each host passes the preflight checks of its description (the
checks of the target's Docker are left out: the hosts are examples) and gets the port plan the port guide shows."""

from __future__ import annotations

import sys
import uuid

import pytest
import yaml

from conftest import ROOT, run_playbook


def preflight(tmp_path, inventory):
    play = [{"name": "preflight of an inventory", "hosts": "all", "gather_facts": False,
             "roles": [{"role": "acestream.orchestrator.common"}],
             "tasks": [{"name": "Show the plan", "ansible.builtin.debug": {"var": "_acestream_model.plan"}}]}]
    path = tmp_path / f"preflight-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    # Every host is this machine, over a local connection, without the checks of the target's Docker.
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}
    return run_playbook(playbook=path, inventory=ROOT / "inventories" / inventory, extra_vars=local,
                        env={"ANSIBLE_SKIP_TAGS": "acestream-docker"})


def plans(run):
    return {host: result["_acestream_model.plan"] for host, result in run.results["Show the plan"].items()}


def test_single_inventory_is_the_guides_single_example(tmp_path):
    run = preflight(tmp_path, "single")
    assert run.rc == 0, run.stdout[-3000:]
    plan = plans(run)["acestream-host"]
    assert [(v["name"], v["range"]) for v in plan["vpns"]] == [("gluetun", "19000-19999")]


def test_redundant_inventory_is_the_guides_redundant_example(tmp_path):
    run = preflight(tmp_path, "redundant")
    assert run.rc == 0, run.stdout[-3000:]
    plan = plans(run)["acestream-host"]
    assert [(v["name"], v["range"]) for v in plan["vpns"]] == [("gluetun1", "19000-19499"), ("gluetun2", "19500-19999")]


def test_fleet_inventory_has_per_host_modes_and_ranges(tmp_path):
    run = preflight(tmp_path, "fleet")
    assert run.rc == 0, run.stdout[-3000:]
    found = {host: [(v["name"], v["range"]) for v in plan["vpns"]] for host, plan in plans(run).items()}
    assert found == {
        "stream-a": [("gluetun1", "19000-19049"), ("gluetun2", "19050-19099")],
        "stream-b": [("gluetun1", "20000-20049"), ("gluetun2", "20100-20149")],
        "stream-edge": [("gluetun", "19000-19019")],
    }


@pytest.mark.parametrize("inventory", ["single", "redundant", "fleet"])
def test_real_inventories_pin_a_gluetun_release(inventory):
    text = "\n".join(p.read_text() for p in (ROOT / "inventories" / inventory).rglob("*.yml"))
    assert "qmcgaw/gluetun:v3." in text
    assert "CHANGE-ME" in text, "secrets are placeholders meant for a vault"
