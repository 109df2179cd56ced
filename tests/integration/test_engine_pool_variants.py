# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""engine_pool: every variant's port passing, three VPNs, and bad input refused before anything is touched."""

from __future__ import annotations

import pytest

from conftest import assert_same_docker_state, docker_state, health_of, wait_for
from engine_pool_helpers import (  # noqa: F401 pylint: disable=unused-import
    converge_many,
    engine_info,
    pool_args,
    pool_containers,
    run_failing,
    vpn_sim,
)

# Distinctive secrets: no part of them may reach the output of a refusal.
KEY = "Qx9Vw7Zk3Jm2Tb-integration"
PASSWORD = "Pw4Hy8Lr6Nd5Sc-integration"

VARIANTS = {
    # variant: the port-passing mechanisms the engine simulator reports
    "krinkuto11-amd64": ["CONF", "env"],
    "jopsis-arm32": ["command"],
    "jopsis-arm64": ["command"],
}


def test_every_variant_one_two_and_three_vpns(docker_api, run_id, vpn_sim):
    """One playbook: krinkuto11-amd64 on one VPN (2 engines), each jopsis arm variant on its own VPN, and 5
    jopsis-amd64 engines over three VPNs."""
    single = {"krinkuto11-amd64": vpn_sim(size=2, wait_healthy=False),
              "jopsis-arm32": vpn_sim(size=1, wait_healthy=False),
              "jopsis-arm64": vpn_sim(size=1, wait_healthy=False)}
    three = [vpn_sim(size=3, wait_healthy=False) for _index in range(3)]
    for vpn in list(single.values()) + three:
        wait_for(lambda: health_of(docker_api, vpn.name) == "healthy", timeout=90, what="%s healthy" % vpn.name)
    cases = []
    for variant, vpn in single.items():
        args = pool_args(run_id, "t%s-%s" % (run_id, variant), [vpn], port_range=vpn.engine_range_text,
                         replicas=vpn.engine_range[1] - vpn.engine_range[0] + 1, engine_variant=variant, wait_ready=60)
        cases.append((args, [("create", "t%s-%s-%s-%d" % (run_id, variant, vpn.name, p))
                             for p in range(vpn.engine_range[0], vpn.engine_range[1] + 1)]))
    trio = "t%s-trio" % run_id
    trio_args = pool_args(run_id, trio, three, vpn_port_ranges=dict((v.name, v.engine_range_text) for v in three),
                          replicas=5, engine_variant="jopsis-amd64", wait_ready=60)
    cases.append((trio_args, None))
    results = converge_many(cases)

    for (variant, vpn), result in zip(single.items(), results):
        engines = result["again"]["engines"]
        assert [e["port"] for e in engines] == list(range(vpn.engine_range[0], vpn.engine_range[1] + 1))
        for index, engine in enumerate(engines):
            assert engine["https_port"] == 45000 + index
            assert engine["host"] == vpn.name and engine["status"] == "running"
            info = engine_info(engine["port"])
            assert info["mechanisms"] == VARIANTS[variant], (variant, info)
            assert (info["http_port"], info["https_port"], info["p2p_port"]) == (engine["port"], engine["https_port"],
                                                                                 None)
            inspect = docker_api.inspect_container(engine["id"])
            if variant.startswith("jopsis-arm"):
                assert inspect["Config"]["Cmd"] == ["python", "main.py", "--bind-all", "--http-port", str(engine["port"]),
                                                    "--https-port", str(engine["https_port"])]
            else:
                assert "CONF=--http-port=%d\n--https-port=%d\n--bind-all" % (engine["port"], engine["https_port"]) \
                    in inspect["Config"]["Env"]
            assert inspect["HostConfig"]["NetworkMode"] == "container:%s" % vpn.id
            assert inspect["HostConfig"]["PortBindings"] in ({}, None)

    trio_engines = results[-1]["again"]["engines"]
    per_vpn = [[e["port"] for e in trio_engines if e["vpn"] == v.name] for v in three]
    assert per_vpn == [[three[0].engine_range[0], three[0].engine_range[0] + 1],
                       [three[1].engine_range[0], three[1].engine_range[0] + 1],
                       [three[2].engine_range[0]]]
    plan = results[-1]["again"]["plan"]
    assert [(p["share"], p["capacity"], p["published"]) for p in plan] == [
        (2, 3, three[0].engine_range_text), (2, 3, three[1].engine_range_text), (1, 3, three[2].engine_range_text)]
    for engine in trio_engines:
        info = engine_info(engine["port"])
        assert info["mechanisms"] == ["ACESTREAM_ARGS"] and info["https_port"] == engine["https_port"]
    assert len(pool_containers(docker_api, trio)) == 5


@pytest.mark.exclusive
def test_bad_input_is_refused_before_anything_is_touched(docker_api, run_id, vpn_sim):
    vpn = vpn_sim(size=2)
    low, high = vpn.engine_range
    base = pool_args(run_id, "t%s-bad" % run_id, [vpn], port_range=vpn.engine_range_text, replicas=1)
    fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in str(low))
    cases = [
        (dict(base, port_range="%d-%d" % (high, low)), "port_range: '%d-%d' is reversed" % (high, low)),
        (dict(base, port_range="abc-%d" % high), "port_range: 'abc-%d' is not a port range" % high),
        (dict(base, port_range="0-%d" % high), "port_range: port 0 in '0-%d' is outside 1-65535" % high),
        (dict(base, port_range="%d-65536" % low), "port_range: port 65536 in '%d-65536' is outside 1-65535" % low),
        (dict(base, vpn_containers=[vpn.name, "other"], port_range=None,
              vpn_port_ranges={vpn.name: "%d-%d" % (low, high), "other": "%d-%d" % (high, high + 5)}),
         "vpn_port_ranges.other: the ranges of '%s' (%d-%d) and 'other' (%d-%d) overlap" % (vpn.name, low, high, high,
                                                                                            high + 5)),
        (dict(base, https_port_range="%d-%d" % (low, low)), "https_port_range: %d-%d overlaps the engine ports" % (low, low)),
        (dict(base, replicas=3), "replicas: 3 engines exceed the capacity of the port ranges (2: %s %d-%d)"
         % (vpn.name, low, high)),
        (dict(base, replicas=-1), "replicas: -1 is negative; use 0 or more engines"),
        (dict(base, vpn_containers=[vpn.name, vpn.name]), "vpn_containers: '%s' is listed twice" % vpn.name),
        (dict(base, vpn_port_ranges={"ghost": "1000-1001"}),
         "vpn_port_ranges: 'ghost' is not in vpn_containers ['%s']; add it there or remove its range" % vpn.name),
        (dict(base, vpn_containers=["t%s-no-such-vpn" % run_id]),
         "VPN container 't%s-no-such-vpn' is not healthy - cannot start AceStream engine (no container named "
         "'t%s-no-such-vpn' exists)" % (run_id, run_id)),
        (dict(base, engine_variant="x86"), "value of engine_variant must be one of: jopsis-amd64, jopsis-arm32, "
                                           "jopsis-arm64, krinkuto11-amd64, got: x86"),
        (dict(base, env={"HTTP_PORT": "1"}), "env: HTTP_PORT is set by the pool from the engine's slot"),
        (dict(base, name="bad name"), "name: 'bad name' is not usable as a container name prefix"),
        (dict(base, port_range="%d-%d" % (low, high + 1)),
         "Port Range Mismatch: VPN container '%s' must publish its engine range %d-%d (from port_range) on the same "
         "host ports, but it publishes %d-%d (missing: %d)" % (vpn.name, low, high + 1, low, high, high + 1)),
        # credentials that cannot travel in a header, or are not strings: refused by name, never shown
        (dict(base, api_key=KEY + "\n"), "api_key: holds a line break, which cannot be sent in a request header"),
        (dict(base, api_key=KEY + "\u20ac"), "api_key: holds a character outside printable ASCII"),
        (dict(base, api_key=[KEY, "second"]), "api_key: must be a string"),
        (dict(base, username="monitor", password=PASSWORD + "\r"), "password: holds a line break"),
        (dict(base, username="mon:itor", password=PASSWORD), "username: holds ':'"),
        # timeouts, port text and names of another kind
        (dict(base, api_timeout="nan"), "api_timeout: nan is not a finite number; use a number of seconds above 0"),
        (dict(base, forwarded_port_timeout="inf"), "forwarded_port_timeout: inf is not a finite number"),
        (dict(base, docker_timeout=0), "docker_timeout: 0 is not above 0; use a number of seconds above 0, e.g. 60"),
        (dict(base, port_range="%s-%d" % (fullwidth, high)), "port_range: '%s-%d' is not a port range" % (fullwidth, high)),
        (dict(base, vpn_containers=[vpn.name + "\n"]), "vpn_containers: '%s\\n' is not a valid Docker container name"
         % vpn.name),
    ]
    before = docker_state(docker_api)
    results, run = run_failing([args for args, _msg in cases])
    for (args, message), result in zip(cases, results):
        assert result.get("failed"), (args, result)
        assert message in result["msg"], (message, result["msg"])
        assert result.get("changed") is False
    for secret in ("Qx9Vw7Zk3Jm2Tb", "Pw4Hy8Lr6Nd5Sc"):
        assert secret not in run.stdout and secret not in run.stderr, secret
    assert pool_containers(docker_api, "t%s-bad" % run_id) == {}
    assert_same_docker_state(before, docker_state(docker_api))
