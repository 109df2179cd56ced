# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stack_info and engine_pool side by side on the real Docker Engine: for every drift case of the suite, the drift
that stack_info reports (and so verify, status and drift) is the decision engine_pool makes in check mode, and
its checks fail exactly when there is drift."""

from __future__ import annotations

import json
import time

from engine_pool_helpers import (  # noqa: F401 pylint: disable=unused-import
    MODULE,
    no_json,
    pool_args,
    run_pool,
    vpn_api,
    vpn_sim,
    wait_for,
)
from conftest import health_of, run_playbook
from test_engine_pool_drift import API_KEY, AUTH_ENV, ranges, slot_namer

# engine_pool options that say how to act, not what the pool is: stack_info has none of them.
ACTING = ("forwarded_port_timeout", "wait_ready", "pull", "state")


def side_by_side(args):
    """engine_pool in check mode and stack_info, one playbook: (engine_pool result, stack_info result)."""
    info_args = dict((k, v) for k, v in args.items() if k not in ACTING)
    run = run_playbook(tasks=[
        {"name": "pool", MODULE: args, "check_mode": True, "ignore_errors": True},
        {"name": "info", "acestream.orchestrator.stack_info": info_args},
    ])
    assert run.data is not None, no_json(run)
    pool, info = run.result("pool"), run.result("info")
    assert not info.get("failed"), json.dumps(info, indent=1)[:4000]
    return pool, info


def assert_same_verdict(pool, info, expected):
    """The same decision, and the checks fail exactly when engine_pool would act or refuse."""
    drift = info["drift"]
    if pool.get("failed"):
        assert drift["error"] == pool["msg"], (drift, pool["msg"])
        assert drift["actions"] == []
    else:
        assert drift["error"] is None, drift
        assert [(a["action"], a["name"], a["reason"]) for a in drift["actions"]] == [
            (a["action"], a["name"], a["reason"]) for a in pool["actions"]]
        assert pool["changed"] is bool(drift["actions"])
    if expected is not None:
        assert sorted((a["action"], a["name"]) for a in drift["actions"]) == sorted(expected)
    failed = [c for c in info["checks"] if not c["ok"]]
    assert info["checks_failed"] == len(failed)
    drifted = bool(drift["actions"]) or drift["error"] is not None
    assert bool(failed) is drifted, failed
    assert any(c["check"] == "drift" and c["ok"] is not drifted for c in info["checks"])
    return failed


def test_stack_info_agrees_with_engine_pool_on_every_drift_case(docker_api, run_id, vpn_sim):
    g1 = vpn_sim(size=3, env=AUTH_ENV, forwarded_port="61001,61002,61003")
    g2 = vpn_sim(size=3, env=AUTH_ENV)
    wait_for(lambda: vpn_api(g1, "GET", "/v1/portforward", api_key=API_KEY).get("port"), timeout=20,
             what="g1's forwarded port")
    pool = "t%s-si" % run_id
    name = slot_namer(pool)
    args = pool_args(run_id, pool, [g1, g2], vpn_port_ranges=ranges(g1, g2), replicas=4, forwarded_port="auto",
                     api_key=API_KEY, forwarded_port_timeout=15, wait_ready=30)

    def case(expected, repair=True):
        engine, info = side_by_side(args)
        failed = assert_same_verdict(engine, info, expected)
        if repair:
            run_pool(args)
            _engine, clean = side_by_side(args)
            assert_same_verdict(_engine, clean, [])
        return info, failed

    run_pool(args)
    info, failed = case([], repair=False)
    assert failed == []
    assert [(e["name"], e["api_ok"]) for e in info["engines"]] == [(name(v, i), True) for v in (g1, g2) for i in (0, 1)]
    assert info["vpns"][0]["forwarded_port"] == 61001 and info["vpns"][0]["version"]
    assert info["status_table"][-1] == "drift: none"
    assert "acestream_vpn_forwarded_port{index=\"0\",pool=\"%s\",vpn=\"%s\"} 61001" % (pool, g1.name) in info["metrics"]
    assert API_KEY not in json.dumps(info)

    # Engine missing.
    engines = dict((c["Names"][0][1:], c["Id"]) for c in docker_api.containers(
        all=True, filters={"label": "acestream.pool=%s" % pool}))
    docker_api.remove_container(engines[name(g2, 1)], force=True)
    info, failed = case([("create", name(g2, 1))])
    assert ("stack", "engines") in [(c["scope"], c["check"]) for c in failed]

    # Engine stopped.
    engines = dict((c["Names"][0][1:], c["Id"]) for c in docker_api.containers(
        all=True, filters={"label": "acestream.pool=%s" % pool}))
    docker_api.stop(engines[name(g1, 1)], timeout=1)
    info, failed = case([("start", name(g1, 1))])
    assert ("engine %s:%d" % (g1.name, g1.engine_range[0] + 1), "running") in [(c["scope"], c["check"]) for c in failed]

    # Spec changed (the inventory gained an env variable): every engine is re-created.
    args["env"] = {"EXTRA": "1"}
    case([("recreate", name(v, i)) for v in (g1, g2) for i in (0, 1)])

    # Gluetun restarted: same ID, new namespace.
    docker_api.restart(g2.id, timeout=1)
    wait_for(lambda: health_of(docker_api, g2.name) == "healthy", timeout=60, what="g2 healthy again")
    info, failed = case([("recreate", name(g2, 0)), ("recreate", name(g2, 1))])
    assert {c["check"] for c in failed if c["scope"].startswith("engine")} >= {"namespace"}

    # Gluetun re-created under the same name: new ID.
    docker_api.remove_container(g2.id, force=True)
    g2 = vpn_sim(engine_range=g2.engine_range, env=dict(AUTH_ENV), name=g2.name)
    info, failed = case([("recreate", name(g2, 0)), ("recreate", name(g2, 1))])
    assert {c["check"] for c in failed if c["scope"].startswith("engine")} >= {"host"}

    # The forwarded port moved on a VPN reconnect.
    vpn_api(g1, "PUT", "/v1/vpn/status", {"status": "stopped"}, api_key=API_KEY)
    vpn_api(g1, "PUT", "/v1/vpn/status", {"status": "running"}, api_key=API_KEY)
    wait_for(lambda: vpn_api(g1, "GET", "/v1/portforward", api_key=API_KEY).get("port") == 61002, timeout=20,
             what="a new forwarded port")
    wait_for(lambda: health_of(docker_api, g1.name) == "healthy", timeout=60, what="g1 healthy")
    info, failed = case([("recreate", name(g1, 0))])
    assert ("VPN %s" % g1.name, "forwarded engine") in [(c["scope"], c["check"]) for c in failed]

    # A VPN stopped through its control server: Gluetun's health server keeps answering OK, so Docker's health stays
    # 'healthy' (as on the real image) and only the VPN status tells. engine_pool refuses to place an engine on it
    # (the seed's message, naming the control server's 'stopped'); the drift and the checks say the same.
    vpn_api(g2, "PUT", "/v1/vpn/status", {"status": "stopped"}, api_key=API_KEY)
    time.sleep(5)  # two healthcheck intervals and more
    assert health_of(docker_api, g2.name) == "healthy"
    engines = dict((c["Names"][0][1:], c["Id"]) for c in docker_api.containers(
        all=True, filters={"label": "acestream.pool=%s" % pool}))
    docker_api.remove_container(engines[name(g2, 1)], force=True)
    info, failed = case(None, repair=False)
    assert info["drift"]["error"] == (
        "VPN container '%s' is not healthy - cannot start AceStream engine (Docker health is 'healthy' but its "
        "control server reports the VPN 'stopped', not 'running')" % g2.name)
    connected = [c for c in failed if (c["scope"], c["check"]) == ("VPN %s" % g2.name, "connected")]
    assert connected and connected[0]["detail"].startswith("VPN status stopped, Docker health healthy"), failed
    stopped_row = [line for line in info["status_table"] if line.split()[:1] == [g2.name]]
    assert stopped_row and "stopped" in stopped_row[0].split(), info["status_table"]
    assert name(g2, 1) not in [e["name"] for e in info["engines"]]
    _run, refused = run_pool(args, expect_failure=True)  # not only in check mode: no new engine on that VPN
    assert refused["failed"] and refused["msg"] == info["drift"]["error"] and refused["changed"] is False
    assert name(g2, 1) not in [c["Names"][0][1:] for c in docker_api.containers(
        all=True, filters={"label": "acestream.pool=%s" % pool})]
    # The VPN runs again: the same converge repairs the stack.
    vpn_api(g2, "PUT", "/v1/vpn/status", {"status": "running"}, api_key=API_KEY)
    info, failed = case([("create", name(g2, 1))])

    # A range the VPN does not publish: engine_pool refuses with the seed's message, and so does the drift.
    start, end = g2.engine_range
    args["vpn_port_ranges"] = dict(ranges(g1), **{g2.name: "%d-%d" % (start, end + 1)})
    info, failed = case(None, repair=False)
    assert info["drift"]["error"].startswith("Port Range Mismatch")
    assert ("VPN %s" % g2.name, "publishes its range") in [(c["scope"], c["check"]) for c in failed]
