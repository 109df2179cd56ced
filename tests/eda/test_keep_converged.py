"""The keep_converged rulebook with the real ansible-rulebook on a stack of the simulators (stage eda).

One stack (two Gluetun simulators, two engines each, unique names and ports) is deployed with ``site``, then
``ansible-rulebook -r acestream.orchestrator.keep_converged -i <the same inventory>`` runs while the cases
change the stack behind Ansible's back. Each case waits for the stack to be converged again, checks that
nothing else changed, that exactly the expected converge runs happened, and that ``site`` then reports
changed=0.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "build" / "collections"))
# pylint: disable=wrong-import-position
from conftest import http_request, run_playbook, wait_for  # noqa: E402
from roles_helpers import only_what_it_needs, remove_stack, stack_vars  # noqa: E402
from rulebook import CONVERGE_TIMEOUT, Rulebook, task_outcome, task_outcomes  # noqa: E402

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import GluetunClient  # noqa: E402

POOL_LABELS = ["acestream.managed-by=acestream.orchestrator.engine_pool"]


@pytest.fixture(scope="module")
def docker_api():
    return docker.APIClient(version="auto", timeout=120)


@pytest.fixture(scope="module")
def eda_stack(tmp_path_factory, docker_api):
    """The stack, its inventory, a first site run, and ansible-rulebook running on it."""
    tmp = tmp_path_factory.mktemp("eda")
    run_id = os.urandom(3).hex()
    # As a user's minimal inventory writes it: every optional variable at its default (acestream_gluetun_env too).
    variables = only_what_it_needs(stack_vars(run_id, tmp, mode="redundant", replicas=4, range_size=6))
    # The simulator sets the new forwarded port 1 s after the VPN is back by default: keep it, as Gluetun does.
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, **variables}}}},
        sort_keys=False))
    rulebook = Rulebook(inventory, tmp / "ansible-rulebook.log")
    try:
        first = site(inventory)
        assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
        rulebook.start()
        yield {"vars": variables, "inventory": inventory, "rulebook": rulebook, "tmp": tmp}
    finally:
        rulebook.stop()
        remove_stack(docker_api, variables)
        print(f"ansible-rulebook log: {rulebook.log}")


def site(inventory):
    return run_playbook(playbook=ROOT / "playbooks" / "site.yml", inventory=inventory)


def assert_site_noop(stack):
    run = site(stack["inventory"])
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed == 0, f"site changed {run.changed} after the rulebook's converge:\n{run.stdout[-3000:]}"


def engines(docker_api, stack):
    found = docker_api.containers(all=True, filters={"label": POOL_LABELS + [
        f"acestream.pool={stack['vars']['acestream_pool_name']}"]})
    return {c["Names"][0].lstrip("/"): c for c in found}


def gluetun_names(stack):
    return [c["name"] for c in stack["vars"]["acestream_gluetun_containers"]]


def control(stack, index):
    key = (Path(stack["vars"]["acestream_stack_dir"]) / "gluetun-api-key").read_text().strip()
    port = stack["vars"]["acestream_gluetun_containers"][index]["api_host_port"]
    return GluetunClient(f"http://127.0.0.1:{port}", api_key=key, timeout=5)


def answers(port):
    try:
        return http_request("GET", f"http://127.0.0.1:{port}/server/api?api_version=3&method=get_status",
                            timeout=2).status == 200
    except OSError:
        return False


def all_answer(docker_api, stack):
    found = engines(docker_api, stack)
    return len(found) == 4 and all(c["State"] == "running" and answers(int(c["Labels"]["acestream.http-port"]))
                                   for c in found.values())


def test_forwarded_port_moves_only_the_forwarded_engine_is_recreated(eda_stack, docker_api):
    rulebook = eda_stack["rulebook"]
    rulebook.wait_idle()
    vpn = gluetun_names(eda_stack)[0]
    before = engines(docker_api, eda_stack)
    forwarded = [n for n, c in before.items() if c["Labels"]["acestream.vpn"] == vpn
                 and c["Labels"]["acestream.forwarded"] == "true"]
    assert len(forwarded) == 1
    old_port = int(before[forwarded[0]]["Labels"]["acestream.p2p-port"])
    client = control(eda_stack, 0)
    since = rulebook.text_size()
    client.set_vpn_status("stopped")
    client.set_vpn_status("running")
    new_port = wait_for(lambda: (client.forwarded_ports() or [None])[0], timeout=20, what="a new forwarded port")
    assert new_port != old_port

    def converged():
        now = engines(docker_api, eda_stack).get(forwarded[0])
        return now and now["Labels"]["acestream.p2p-port"] == str(new_port) and now["State"] == "running" \
            and answers(int(now["Labels"]["acestream.http-port"]))

    wait_for(converged, timeout=CONVERGE_TIMEOUT, interval=0.3, what=f"{forwarded[0]} re-created with {new_port}")
    rulebook.wait_idle(since)
    after = engines(docker_api, eda_stack)
    assert sorted(after) == sorted(before)
    changed = sorted(n for n in before if before[n]["Id"] != after[n]["Id"])
    assert changed == forwarded, f"only the forwarded engine is re-created, not {changed}"
    # The VPN may be seen stopped for a poll, and running again: a converge for that too (the same converge, and the
    # forwarded engine re-created once all the same).
    runs = rulebook.runs(since)
    assert runs and set(runs) == {"Converge the AceStream engines"}, rulebook.text()[since:][-3000:]
    # The engine-only converge leaves out the target probes site made (acestream_target_checks: false).
    ran = rulebook.text()[since:]
    # The first of the runs re-creates the engine; a second one (the VPN seen healthy again) finds nothing left.
    assert "changed" in task_outcomes(ran, "acestream.orchestrator.engines : Converge the engine pool"), ran[-3000:]
    assert task_outcome(ran, "acestream.orchestrator.common : Read the Docker host (containers, the stack's images, "
                             "network and keys, ports in use, the Docker SDK)") == "skipping"
    assert task_outcome(ran, "acestream.orchestrator.common : Fail when no Docker Engine answers") == "skipping"
    assert task_outcome(ran, "acestream.orchestrator.common : Check that no other container or process holds the "
                             "stack's host ports") == "skipping"
    assert_site_noop(eda_stack)


def test_gluetun_restarted_its_engines_are_repaired(eda_stack, docker_api):
    rulebook = eda_stack["rulebook"]
    rulebook.wait_idle()
    vpn = gluetun_names(eda_stack)[1]
    before = engines(docker_api, eda_stack)
    own = sorted(n for n, c in before.items() if c["Labels"]["acestream.vpn"] == vpn)
    since = rulebook.text_size()
    docker_api.restart(vpn, timeout=5)
    started = docker_api.inspect_container(vpn)["State"]["StartedAt"]

    def repaired():
        now = engines(docker_api, eda_stack)
        return all(n in now and now[n]["Labels"]["acestream.vpn-started-at"] == started for n in own) \
            and all_answer(docker_api, eda_stack)

    wait_for(repaired, timeout=CONVERGE_TIMEOUT, interval=0.3, what=f"the engines of {vpn} repaired")
    rulebook.wait_idle(since)
    after = engines(docker_api, eda_stack)
    untouched = [n for n in before if n not in own]
    assert all(after[n]["Id"] == before[n]["Id"] for n in untouched), "the other VPN's engines are not touched"
    # The restarted container is the same one: only its engines are converged (converge_engines), once.
    assert rulebook.runs(since) == ["Converge the AceStream engines"], rulebook.runs(since)
    assert_site_noop(eda_stack)


def test_removed_engine_is_recreated(eda_stack, docker_api):
    rulebook = eda_stack["rulebook"]
    rulebook.wait_idle()
    before = engines(docker_api, eda_stack)
    victim = sorted(n for n, c in before.items() if c["Labels"]["acestream.forwarded"] != "true")[0]
    since = rulebook.text_size()
    docker_api.remove_container(victim, force=True)

    def recreated():
        now = engines(docker_api, eda_stack).get(victim)
        return now and now["Id"] != before[victim]["Id"] and now["State"] == "running" \
            and answers(int(now["Labels"]["acestream.http-port"]))

    wait_for(recreated, timeout=CONVERGE_TIMEOUT, interval=0.3, what=f"{victim} re-created")
    rulebook.wait_idle(since)
    after = engines(docker_api, eda_stack)
    assert all(after[n]["Id"] == before[n]["Id"] for n in before if n != victim)
    assert rulebook.runs(since) == ["Converge the AceStream engines"], rulebook.runs(since)
    assert_site_noop(eda_stack)


def test_vpn_stopped_through_the_control_server_is_noticed_and_the_stack_repaired_once_it_runs(eda_stack, docker_api):
    """Gluetun's health server keeps answering OK when its VPN is stopped through the control server, so Docker's
    health stays 'healthy'. The source tells it from the VPN status; the rulebook's converge places no engine on that
    VPN meanwhile, and repairs the stack once it runs again."""
    rulebook = eda_stack["rulebook"]
    rulebook.wait_idle()
    vpn = gluetun_names(eda_stack)[1]
    before = engines(docker_api, eda_stack)
    victim = sorted(n for n, c in before.items() if c["Labels"]["acestream.vpn"] == vpn)[-1]
    client = control(eda_stack, 1)
    since = rulebook.text_size()
    client.set_vpn_status("stopped")
    wait_for(lambda: f"vpn_health_changed {vpn}" in rulebook.text()[since:], timeout=30, interval=0.3,
             what=f"the source noticing {vpn} stopped")
    docker_api.remove_container(victim, force=True)
    # The converge that the removal starts waits for the VPN to be healthy (acestream_engine_vpn_wait_timeout) and
    # places nothing on it meanwhile, although Docker calls it healthy.
    wait_for(lambda: "Converge the AceStream engines" in rulebook.runs(since), timeout=30, interval=0.3,
             what="a converge for the removed engine")
    time.sleep(5)
    assert docker_api.inspect_container(vpn)["State"]["Health"]["Status"] == "healthy"
    assert victim not in engines(docker_api, eda_stack)

    client.set_vpn_status("running")

    def repaired():
        now = engines(docker_api, eda_stack).get(victim)
        return now is not None and all_answer(docker_api, eda_stack)

    wait_for(repaired, timeout=CONVERGE_TIMEOUT, interval=0.3, what=f"{victim} back once {vpn} runs")
    rulebook.wait_idle(since)
    after = engines(docker_api, eda_stack)
    untouched = [n for n, c in before.items() if c["Labels"]["acestream.vpn"] != vpn]
    assert all(after[n]["Id"] == before[n]["Id"] for n in untouched), "the other VPN's engines are not touched"
    assert set(rulebook.runs(since)) == {"Converge the AceStream engines"}, rulebook.runs(since)
    assert_site_noop(eda_stack)


def test_rulebook_restart_does_no_duplicate_work(eda_stack, docker_api):
    rulebook = eda_stack["rulebook"]
    rulebook.wait_idle()
    before = {n: c["Id"] for n, c in engines(docker_api, eda_stack).items()}
    rulebook.stop()
    since = rulebook.text_size()
    rulebook.start()
    time.sleep(8)  # several control-server polls and a settle period
    rulebook.wait_idle(since, quiet=2)
    assert rulebook.runs(since) == [], rulebook.text()[since:][-3000:]
    assert {n: c["Id"] for n, c in engines(docker_api, eda_stack).items()} == before
    assert_site_noop(eda_stack)


def test_no_secret_in_the_rulebook_log(eda_stack):
    text = eda_stack["rulebook"].text()
    key = (Path(eda_stack["vars"]["acestream_stack_dir"]) / "gluetun-api-key").read_text().strip()
    secrets = [key] + [c["env"]["WIREGUARD_PRIVATE_KEY"] for c in eda_stack["vars"]["acestream_gluetun_containers"]]
    for secret in secrets:
        assert secret not in text
    events = [json.loads(m) for m in re.findall(r'"m":(\{.*?"type":"[a-z_]+"\})\}', text)]
    assert all("api_key" not in e for e in events)
