# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""engine_pool when the world is not kind: a converge killed with SIGKILL midway, two converges of one pool at
once, the Gluetun container killed under its engines, control-server faults while reading the forwarded port.
After each, the next run reaches exactly the desired state: no duplicate name or port, no orphan, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import yaml

from conftest import playbook_environment, wait_for
from engine_pool_helpers import (  # noqa: F401 pylint: disable=unused-import
    MODULE,
    engine_status,
    pool_args,
    pool_containers,
    run_pool,
    set_health,
    vpn_sim,
)

pytestmark = pytest.mark.exclusive


def start_pool_run(args):
    """Start ansible-playbook running engine_pool (its output captured)."""
    workdir = Path(tempfile.mkdtemp(prefix="acestream-it-"))
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable},
             "tasks": [{"name": "engine pool", MODULE: args}]}]
    (workdir / "playbook.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    return subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
                             "playbook.yml"], cwd=workdir, env=playbook_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_tree(pid):
    """SIGKILL a process and every descendant at once (Ansible's workers start sessions of their own, so a
    process group does not hold them): stop first, so that no process can react, then kill."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for member in tree:
            try:
                os.kill(member, sig)
            except ProcessLookupError:
                pass
    return tree


def finished(proc, timeout=300):
    stdout, stderr = proc.communicate(timeout=timeout)
    data = json.loads(stdout[stdout.index("{"):]) if "{" in stdout else None
    assert data is not None, "no JSON output: rc=%s\n%s\n%s" % (proc.returncode, stdout[-3000:], stderr[-3000:])
    result = data["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, result


def assert_exact_pool(docker_api, pool, vpn, replicas):
    """The pool is exactly its desired engines: one per slot from the range start, each running in the VPN's
    namespace, no duplicate name or port, nothing else labelled with the pool."""
    containers = pool_containers(docker_api, pool)
    low = vpn.engine_range[0]
    expected = sorted("%s-%s-%d" % (pool, vpn.name, low + slot) for slot in range(replicas))
    assert sorted(containers) == expected, "pool containers %s, expected %s" % (sorted(containers), expected)
    ports = [int(c["Labels"]["acestream.http-port"]) for c in containers.values()]
    assert sorted(ports) == list(range(low, low + replicas)), ports
    for name, container in containers.items():
        assert container["State"] == "running", (name, container["Status"])
        assert container["HostConfig"]["NetworkMode"] == "container:%s" % vpn.id, name


def test_converge_killed_midway_then_rerun(docker_api, run_id, vpn_sim):
    """SIGKILL to ansible-playbook and every process under it (the module's too) while engines are created one at
    a time; the next run completes the pool exactly (it starts created-not-started engines), the next changes
    nothing."""
    replicas = 10
    vpn = vpn_sim(size=replicas)
    pool = "t%s-kill" % run_id
    args = pool_args(run_id, pool, [vpn], port_range=vpn.engine_range_text, replicas=replicas, parallelism=1)
    proc = start_pool_run(args)
    wait_for(lambda: len(pool_containers(docker_api, pool)) >= 2 or proc.poll() is not None, timeout=180,
             interval=0.02, what="the first engines of the killed converge")
    killed = kill_tree(proc.pid)
    proc.wait(timeout=30)
    assert len(killed) >= 3, "ansible-playbook, its worker and the module: %s" % killed
    time.sleep(0.5)  # a create the daemon had accepted lands now
    left = pool_containers(docker_api, pool)
    assert proc.returncode == -signal.SIGKILL, "the converge finished before it could be killed"
    assert 0 < len(left) < replicas, "killed with %d of %d engines made" % (len(left), replicas)

    _run, result = run_pool(args)
    assert result["changed"] is True
    assert {a["action"] for a in result["actions"]} <= {"create", "start"}, result["actions"]
    assert_exact_pool(docker_api, pool, vpn, replicas)
    _run, again = run_pool(args)
    assert again["changed"] is False and again["actions"] == []
    engine_status(vpn.engine_range[0] + replicas - 1)


def test_two_converges_of_one_pool_at_once(docker_api, run_id, vpn_sim):
    """Two ansible-playbook runs converge the same pool at the same time: both succeed (a name another run has
    just taken for the same slot, with the same spec, is adopted), no duplicate, and the result is converged."""
    replicas = 6
    vpn = vpn_sim(size=replicas)
    pool = "t%s-twin" % run_id
    args = pool_args(run_id, pool, [vpn], port_range=vpn.engine_range_text, replicas=replicas, parallelism=2)
    first, second = start_pool_run(args), start_pool_run(args)
    results = [finished(first), finished(second)]
    for returncode, result in results:
        assert returncode == 0 and not result.get("failed"), json.dumps(result, indent=1)[:4000]
    assert_exact_pool(docker_api, pool, vpn, replicas)
    _run, again = run_pool(args)
    assert again["changed"] is False and again["actions"] == []


def test_gluetun_killed_under_its_engines(docker_api, run_id, vpn_sim):
    """docker kill on the Gluetun container: the next run refuses to touch the pool (the VPN is not running) and
    keeps every engine; once Gluetun is started again (same ID, new namespace) the run moves the engines into the
    new namespace and they answer through its published ports again."""
    vpn = vpn_sim(size=2)
    pool = "t%s-killvpn" % run_id
    args = pool_args(run_id, pool, [vpn], port_range=vpn.engine_range_text, replicas=2)
    run_pool(args)
    ids = {name: c["Id"] for name, c in pool_containers(docker_api, pool).items()}

    docker_api.kill(vpn.id)
    _run, refused = run_pool(args, expect_failure=True)
    assert refused["failed"] and refused["changed"] is False
    assert "VPN container '%s' is not healthy - cannot start AceStream engine" % vpn.name in refused["msg"]
    assert {name: c["Id"] for name, c in pool_containers(docker_api, pool).items()} == ids

    docker_api.start(vpn.id)
    wait_for(lambda: docker_api.inspect_container(vpn.id)["State"]["Health"]["Status"] == "healthy", timeout=90,
             what="%s healthy again" % vpn.name)
    _run, repaired = run_pool(args)
    assert repaired["changed"] is True
    assert {a["action"] for a in repaired["actions"]} == {"recreate"}, repaired["actions"]
    assert_exact_pool(docker_api, pool, vpn, 2)
    for port in range(vpn.engine_range[0], vpn.engine_range[1] + 1):
        engine_status(port)  # answers through the restarted Gluetun's published port


def test_control_server_faults_while_reading_the_forwarded_port(docker_api, run_id, vpn_sim):
    """forwarded_port=auto against a control server that answers 500, non-JSON, hangs (bounded by api_timeout) or
    refuses the key (401): the VPN's status cannot be read, so it does not count as healthy; the run fails naming
    the cause and changes nothing; once the fault clears it converges."""
    vpn = vpn_sim(size=2, forwarded_port=20443, env={"HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE": json.dumps(
        {"auth": "apikey", "apikey": "the-right-key-0123456789"})})
    pool = "t%s-faults" % run_id
    args = pool_args(run_id, pool, [vpn], port_range=vpn.engine_range_text, replicas=2, forwarded_port="auto",
                     api_key="the-right-key-0123456789", api_timeout=2)
    cli = ["gluetun-sim", "set-fault"]
    for fault, phrase in (("500", "HTTP 500"), ("nonjson", "not JSON"), ("hang", "did not answer")):
        docker_api.exec_start(docker_api.exec_create(vpn.id, cli + [fault]))
        started = time.monotonic()
        _run, result = run_pool(args, expect_failure=True)
        assert result["failed"] and result["changed"] is False, (fault, result)
        assert result["msg"].startswith("VPN container '%s' is not healthy - cannot start AceStream engine (Docker "
                                        "health is 'healthy' but its control server did not answer: " % vpn.name)
        assert phrase in result["msg"], result["msg"]
        if fault == "hang":
            assert time.monotonic() - started < 60, "a hung control server held the run"
        assert pool_containers(docker_api, pool) == {}
    docker_api.exec_start(docker_api.exec_create(vpn.id, cli + ["none"]))
    _run, result = run_pool(dict(args, api_key="a-wrong-key-0123456789"), expect_failure=True)
    assert result["failed"] and "401 Unauthorized" in result["msg"] and "as api_key" in result["msg"], result["msg"]
    assert pool_containers(docker_api, pool) == {}

    _run, result = run_pool(args)
    assert result["changed"] is True
    assert [v["forwarded_port"] for v in result["plan"]] == [20443], result["plan"]
    assert len([e for e in result["engines"] if e["forwarded"]]) == 1, result["engines"]
    assert_exact_pool(docker_api, pool, vpn, 2)
