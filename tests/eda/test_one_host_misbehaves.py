"""The keep_converged rulebook with the real ansible-rulebook on two hosts, one of whose control servers misbehaves
(stage eda).

Two inventory hosts on this machine (``ansible_connection: local``), each its own stack of the simulators (one
Gluetun simulator, its own pool name, container names and ports), are deployed with ``site``; then
``ansible-rulebook -r acestream.orchestrator.keep_converged -i <that inventory>`` runs while the control server of
one host holds every request (``gluetun-sim set-fault hang``). An engine removed on the other host is re-created as
usual, the misbehaving host gets a ``watch_lost`` and the healthy one none, and once the fault is cleared ``site``
changes nothing on either host.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
# pylint: disable=wrong-import-position
from conftest import http_request, run_playbook, wait_for  # noqa: E402
from roles_helpers import remove_stack, stack_vars  # noqa: E402
from rulebook import CONVERGE_TIMEOUT, Rulebook  # noqa: E402

POOL_LABELS = ["acestream.managed-by=acestream.orchestrator.engine_pool"]
HEALTHY, FAULTY = "stack-ok", "stack-faulty"
CONVERGE_RUN = "Converge the AceStream engines"


@pytest.fixture(scope="module")
def docker_api():
    return docker.APIClient(version="auto", timeout=120)


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory, docker_api):
    """Two stacks on this machine as two inventory hosts, a first site run, and ansible-rulebook running on both."""
    tmp = tmp_path_factory.mktemp("eda-faulty")
    run_id = os.urandom(3).hex()
    stacks = {HEALTHY: stack_vars(run_id, tmp / HEALTHY, mode="single", replicas=2, range_size=4),
              FAULTY: stack_vars(run_id, tmp / FAULTY, mode="single", replicas=1, range_size=2)}
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        host: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **variables}
        for host, variables in stacks.items()}}}, sort_keys=False))
    rulebook = Rulebook(inventory, tmp / "ansible-rulebook.log")
    try:
        first = site(inventory)
        assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
        assert sorted((first.data or {}).get("stats", {})) == sorted(stacks), first.stdout[-3000:]
        rulebook.start()
        yield {"stacks": stacks, "inventory": inventory, "rulebook": rulebook}
    finally:
        rulebook.stop()
        for variables in stacks.values():
            set_fault(docker_api, variables, "none")
            remove_stack(docker_api, variables)
        print(f"ansible-rulebook log: {rulebook.log}")


def site(inventory):
    return run_playbook(playbook=ROOT / "playbooks" / "site.yml", inventory=inventory)


def set_fault(docker_api, variables, fault):
    """``gluetun-sim set-fault`` in the stack's Gluetun simulator (hang: every control-server request is held)."""
    name = variables["acestream_gluetun_containers"][0]["name"]
    try:
        exec_id = docker_api.exec_create(name, ["gluetun-sim", "set-fault", fault])
    except docker.errors.NotFound:
        return
    docker_api.exec_start(exec_id)
    assert docker_api.exec_inspect(exec_id)["ExitCode"] == 0


def engines(docker_api, variables):
    found = docker_api.containers(all=True, filters={"label": POOL_LABELS + [
        f"acestream.pool={variables['acestream_pool_name']}"]})
    return {c["Names"][0].lstrip("/"): c for c in found}


def answers(port):
    try:
        return http_request("GET", f"http://127.0.0.1:{port}/server/api?api_version=3&method=get_status",
                            timeout=2).status == 200
    except OSError:
        return False


def test_one_hosts_hung_control_server_does_not_hold_the_repair_of_another_host(two_hosts, docker_api):
    """Two hosts watched by one ansible-rulebook; the control server of one holds every request (fault hang): an
    engine removed on the other host is re-created as usual (one converge run, limited to that host), the hung host
    gets a watch_lost and the healthy one none, the hung host's containers are not touched, and once the fault is
    cleared (watch_reconnected) no run follows and site changes nothing on either host."""
    rulebook = two_hosts["rulebook"]
    healthy, faulty = two_hosts["stacks"][HEALTHY], two_hosts["stacks"][FAULTY]
    rulebook.wait_idle(quiet=3)  # converged by site: the first observations run nothing
    faulty_before = {n: c["Id"] for n, c in engines(docker_api, faulty).items()}
    since = rulebook.text_size()
    set_fault(docker_api, faulty, "hang")
    wait_for(lambda: f"{FAULTY}: watch_lost control_server" in rulebook.text()[since:], timeout=60, interval=0.3,
             what=f"the source reporting {FAULTY}'s control server lost")

    before = engines(docker_api, healthy)
    victim = sorted(n for n, c in before.items() if c["Labels"]["acestream.forwarded"] != "true")[0]
    removed = time.monotonic()
    docker_api.remove_container(victim, force=True)

    def recreated():
        now = engines(docker_api, healthy).get(victim)
        return now and now["Id"] != before[victim]["Id"] and now["State"] == "running" \
            and answers(int(now["Labels"]["acestream.http-port"]))

    wait_for(recreated, timeout=CONVERGE_TIMEOUT, interval=0.3, what=f"{victim} re-created on {HEALTHY}")
    took = time.monotonic() - removed
    print(f"{victim} on {HEALTHY} re-created {took:.1f}s after its removal, {FAULTY}'s control server hung")
    rulebook.wait_idle(since)
    assert rulebook.runs(since) == [CONVERGE_RUN], rulebook.text()[since:][-3000:]
    assert {host for host, *_counts in rulebook.recaps(since)} == {HEALTHY}, rulebook.recaps(since)
    after = engines(docker_api, healthy)
    assert all(after[n]["Id"] == before[n]["Id"] for n in before if n != victim)
    assert {n: c["Id"] for n, c in engines(docker_api, faulty).items()} == faulty_before
    text = rulebook.text()
    assert f"{HEALTHY}: watch_lost" not in text, "the healthy host lost nothing"
    assert text.count(f"{FAULTY}: watch_lost control_server") == 1, "one watch_lost per outage"

    # The fault cleared: site changes nothing on either host, the source reads the control server again (within
    # its reconnection delay, at most 30 s) and nothing is run for it.
    since = rulebook.text_size()
    set_fault(docker_api, faulty, "none")
    run = site(two_hosts["inventory"])
    assert run.rc == 0, run.stdout[-3000:]
    changed = {host: stats.get("changed", 0) for host, stats in (run.data or {}).get("stats", {}).items()}
    assert changed == {HEALTHY: 0, FAULTY: 0}, f"site after the fault was cleared: {changed}\n{run.stdout[-3000:]}"
    wait_for(lambda: f"{FAULTY}: watch_reconnected control_server" in rulebook.text()[since:], timeout=60,
             interval=0.3, what=f"{FAULTY}'s control server answering again")
    rulebook.wait_idle(since, quiet=3)
    assert rulebook.runs(since) == [], rulebook.text()[since:][-3000:]
    assert f"{HEALTHY}: watch_lost" not in rulebook.text()
