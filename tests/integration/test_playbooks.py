# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's playbooks on the local Docker Engine with the simulators: site (idempotent, repairs drift),
verify (the port guide's Verification section), drift (reports, optionally fails), status; secrets never
printed; the Gluetun auth file per release; the egress-IP check."""

from __future__ import annotations

import hashlib
import http.server
import ipaddress
import json
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    dump,
    failure_message,
    file_mode,
    run_collection_playbook,
    stack,
    task_result,
)


def engines_of(docker_api, variables):
    return docker_api.containers(all=True, filters={"label": [
        "acestream.managed-by=acestream.orchestrator.engine_pool", f"acestream.pool={variables['acestream_pool_name']}"]})


def checks_of(run):
    return task_result(run, "Observe the stack")["checks"]


def assert_not_printed(secret, output):
    where = output.find(secret)
    assert where < 0, f"secret printed:\n...{output[max(0, where - 1500):where + 200]}..."


def test_redundant_stack_site_verify_status_drift(stack, docker_api, tmp_path):
    variables = stack(mode="redundant", replicas=4, range_size=8)
    first, second = (c["name"] for c in variables["acestream_gluetun_containers"])

    site = run_collection_playbook("site", variables, tmp_path)
    assert site.rc == 0, dump(site)
    assert site.changed > 0
    engines = engines_of(docker_api, variables)
    assert len(engines) == 4
    assert {e["Labels"]["acestream.vpn"] for e in engines} == {first, second}

    # Files: secrets 0600, the compose record without them.
    stack_dir = tmp_path / "stack"
    assert file_mode(stack_dir / "gluetun-api-key") == "0o600"
    for name in (first, second):
        assert file_mode(stack_dir / "gluetun" / name / "gluetun.env") == "0o600"
        assert file_mode(stack_dir / "gluetun" / name / "auth" / "config.toml") == "0o600"
    compose = (stack_dir / "docker-compose.yml").read_text()
    for container in variables["acestream_gluetun_containers"]:
        assert container["env"]["WIREGUARD_PRIVATE_KEY"] not in compose
    assert (stack_dir / "gluetun-api-key").read_text().strip() not in compose
    assert f'"127.0.0.1:{variables["acestream_gluetun_containers"][1]["api_host_port"]}:8001"' in compose
    # The config-hash label is keyed with the stack's own secret (0600): not a digest anyone can recompute from a
    # guess of the auth file, which holds the API key.
    assert file_mode(stack_dir / "gluetun" / "config-hash-key") == "0o600"
    hash_key = (stack_dir / "gluetun" / "config-hash-key").read_text().strip()
    assert len(hash_key) == 32
    for name in (first, second):
        label = docker_api.inspect_container(name)["Config"]["Labels"]["acestream.config-hash"]
        auth = (stack_dir / "gluetun" / name / "auth" / "config.toml").read_text()
        assert len(label) == 16 and label not in hashlib.sha256(auth.encode()).hexdigest()

    again = run_collection_playbook("site", variables, tmp_path)
    assert again.rc == 0, dump(again)
    assert again.changed == 0, f"second site run changed {again.changed} task(s)"

    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc == 0, failure_message(verify)
    checks = checks_of(verify)
    assert all(c["ok"] for c in checks)
    kinds = {(c["scope"].split()[0], c["check"]) for c in checks}
    for kind in [("VPN", "enabled"), ("VPN", "connected"), ("VPN", "forwarded port"), ("VPN", "publishes its range"),
                 ("engine", "host"), ("engine", "port"), ("engine", "namespace"), ("engine", "API")]:
        assert kind in kinds
    assert any(c["check"] == "egress IP" and c["detail"].startswith("skipped") for c in checks)

    status = run_collection_playbook("status", {**variables, "acestream_status_file": str(tmp_path / "status.txt")},
                                     tmp_path)
    assert status.rc == 0, dump(status)
    table = (tmp_path / "status.txt").read_text()
    assert "VPN" in table and "PUBLIC IP" in table and "FWD PORT" in table
    for engine in engines:
        assert f"{engine['Labels']['acestream.vpn']}:{engine['Labels']['acestream.http-port']}" in table
    assert table.rstrip().endswith("drift: none")

    # The same observation as JSON, and as Prometheus metrics for node_exporter's textfile collector.
    textfile = tmp_path / "textfile" / "acestream.prom"
    textfile.parent.mkdir()
    status = run_collection_playbook("status", {**variables, "acestream_status_format": "json",
                                                "acestream_status_file": str(tmp_path / "status.json"),
                                                "acestream_status_textfile": str(textfile)}, tmp_path)
    assert status.rc == 0, dump(status)
    document = json.loads((tmp_path / "status.json").read_text())[0]
    assert document["engines_total"] == 4 and document["checks"]["failed"] == 0
    assert sorted(v["name"] for v in document["vpns"]) == sorted([first, second])
    assert file_mode(textfile) == "0o644"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(textfile.read_text()) for s in family.samples}
    pool = variables["acestream_pool_name"]
    assert samples[("acestream_stack_drift_changes", (("pool", pool),))] == 0
    assert samples[("acestream_vpn_healthy", (("pool", pool), ("vpn", first)))] == 1

    drift = run_collection_playbook("drift", {**variables, "acestream_drift_fail": True}, tmp_path)
    assert drift.rc == 0, failure_message(drift)
    assert "No drift" in task_result(drift, "Report the drift")["msg"]

    # Someone removes an engine: drift reports it without repairing it, site repairs it.
    victim = engines[0]
    docker_api.remove_container(victim["Id"], force=True)
    drift = run_collection_playbook("drift", {**variables, "acestream_drift_fail": True}, tmp_path)
    assert drift.rc != 0
    assert "engines" in failure_message(drift)
    assert len(engines_of(docker_api, variables)) == 3

    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc != 0
    assert "3 engine(s) in pool" in failure_message(verify)

    repair = run_collection_playbook("site", variables, tmp_path)
    assert repair.rc == 0, dump(repair)
    assert len(engines_of(docker_api, variables)) == 4
    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc == 0, failure_message(verify)

    # acestream_state=absent removes what the collection created.
    down = run_collection_playbook("site", {**variables, "acestream_state": "absent"}, tmp_path)
    assert down.rc == 0, dump(down)
    assert engines_of(docker_api, variables) == []
    for name in (first, second):
        assert docker_api.containers(all=True, filters={"name": [f"^/{name}$"]}) == []
    # Only each VPN's state directory is kept (acestream_gluetun_state_keep, the default), nothing else of the role.
    left = sorted(str(p.relative_to(stack_dir)) for p in (stack_dir / "gluetun").rglob("*"))
    kept = [p for p in left if not p.endswith("/state") and "/state/" not in p]
    assert kept == [f"gluetun/{first}", f"gluetun/{second}"], left


def test_several_forwarded_ports_through_site_verify_and_status(stack, docker_api, tmp_path):
    """Gluetun latest forwarding 3 ports to a VPN with 2 engines (ProtonVPN's VPN_PORT_FORWARDING_PORTS_COUNT):
    site gives two of them to the two engines, a second run changes nothing, verify passes, the status table lists
    every port and each engine's P2P port."""
    variables = stack(mode="single", replicas=2, range_size=4, release="latest")
    variables["acestream_gluetun_env"].update({"VPN_PORT_FORWARDING_PORTS_COUNT": "3",
                                               "GLUETUN_SIM_FORWARDED_PORT": "61101+61102+61103"})
    site = run_collection_playbook("site", variables, tmp_path)
    assert site.rc == 0, dump(site)
    engines = sorted(engines_of(docker_api, variables), key=lambda e: int(e["Labels"]["acestream.http-port"]))
    assert [e["Labels"]["acestream.p2p-port"] for e in engines] == ["61101", "61102"]
    again = run_collection_playbook("site", variables, tmp_path)
    assert again.rc == 0 and again.changed == 0, dump(again)
    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc == 0, failure_message(verify)
    found = [c for c in checks_of(verify) if c["check"] == "forwarded engine"]
    assert len(found) == 1 and found[0]["ok"] and found[0]["detail"].endswith("(forwarded ports 61101, 61102, 61103)")
    status = run_collection_playbook("status", {**variables, "acestream_status_file": str(tmp_path / "status.txt")},
                                     tmp_path)
    assert status.rc == 0, dump(status)
    table = (tmp_path / "status.txt").read_text()
    assert "61101,61102,61103" in table
    for engine in engines:  # each engine's row shows the port it holds
        row = next(line for line in table.splitlines()
                   if f"{engine['Labels']['acestream.vpn']}:{engine['Labels']['acestream.http-port']}" in line)
        assert f" {engine['Labels']['acestream.p2p-port']} " in f" {row} ", row


def test_secrets_never_printed_even_with_diff_and_vvv(stack, docker_api, tmp_path):
    """The VPN key and the API key never appear in output at -vvv --diff (also when rotated), in any label or in
    the engines' environment; the control server is published on 127.0.0.1 only and the engines publish nothing."""
    variables = stack(mode="single", replicas=1, range_size=2, acestream_gluetun_api_key="ApiKey" + "x" * 20)
    secret = variables["acestream_gluetun_containers"][0]["env"]["WIREGUARD_PRIVATE_KEY"]
    run = run_collection_playbook("site", variables, tmp_path, diff=True, verbosity=3, json_output=False)
    assert run.rc == 0, run.stdout[-3000:]
    # Change a secret: the env file and the container change, their values still never appear.
    variables["acestream_gluetun_containers"][0]["env"]["WIREGUARD_PRIVATE_KEY"] = secret + "-rotated"
    rotated = run_collection_playbook("site", variables, tmp_path, diff=True, verbosity=3, json_output=False)
    assert rotated.rc == 0, rotated.stdout[-3000:]
    assert "env: WIREGUARD_PRIVATE_KEY (values not shown)" in rotated.stdout
    for output in (run.stdout + run.stderr, rotated.stdout + rotated.stderr):
        for value in (secret, secret + "-rotated", variables["acestream_gluetun_api_key"]):
            assert_not_printed(value, output)

    secrets = (secret, secret + "-rotated", variables["acestream_gluetun_api_key"])
    gluetun = variables["acestream_gluetun_containers"][0]
    inspect = docker_api.inspect_container(gluetun["name"])
    assert {tuple(sorted(b.items())) for b in inspect["HostConfig"]["PortBindings"]["8001/tcp"]} == {
        (("HostIp", "127.0.0.1"), ("HostPort", str(gluetun["api_host_port"])))}
    labels = json.dumps(inspect["Config"]["Labels"])
    engines = engines_of(docker_api, variables)
    assert len(engines) == 1
    for engine in engines:
        engine_inspect = docker_api.inspect_container(engine["Id"])
        assert engine_inspect["HostConfig"]["PortBindings"] in ({}, None), "an engine publishes ports"
        labels += json.dumps(engine_inspect["Config"]["Labels"])
        environment = "\n".join(engine_inspect["Config"]["Env"] or [])
        for value in secrets:
            assert value not in environment, "a secret is in an engine's environment"
    for value in secrets:
        assert value not in labels, "a secret is in a label"


@pytest.mark.parametrize("release, has_portforward", [("v3.40.0", False), ("v3.41.1", True), ("latest", True)])
def test_auth_file_lists_the_routes_of_the_release(stack, tmp_path, release, has_portforward):
    variables = stack(mode="single", replicas=1, range_size=2, release=release)
    run = run_collection_playbook("site", variables, tmp_path)
    # The simulator, like Gluetun, refuses to start on a route its release does not know: a healthy VPN and a
    # placed engine prove the file is accepted.
    assert run.rc == 0, failure_message(run)
    name = variables["acestream_gluetun_containers"][0]["name"]
    auth = (tmp_path / "stack" / "gluetun" / name / "auth" / "config.toml").read_text()
    assert ('"GET /v1/portforward"' in auth) is has_portforward
    for route in ("GET /v1/version", "GET /v1/vpn/status", "PUT /v1/vpn/status", "GET /v1/openvpn/status",
                  "GET /v1/publicip/ip", "GET /v1/openvpn/portforwarded"):
        assert f'"{route}"' in auth
    assert "/v1/vpn/settings" not in auth


def test_changed_api_key_recreates_gluetun_and_the_engines_follow(stack, docker_api, tmp_path):
    """Scaling the engines leaves Gluetun as it is; a new API key re-creates it (it reads its auth file at start)
    and the engines follow it into its new namespace."""
    variables = stack(mode="single", replicas=2, range_size=3)
    name = variables["acestream_gluetun_containers"][0]["name"]
    assert run_collection_playbook("site", variables, tmp_path).rc == 0
    before = docker_api.inspect_container(name)["Id"]
    # More engines in the same range: Gluetun (and so every engine in its namespace) is not re-created.
    variables["acestream_engine_replicas"] = 3
    scaled = run_collection_playbook("site", variables, tmp_path)
    assert scaled.rc == 0, failure_message(scaled)
    assert docker_api.inspect_container(name)["Id"] == before, "scaling the engines re-created Gluetun"
    assert len(engines_of(docker_api, variables)) == 3
    variables["acestream_gluetun_api_key"] = "AnotherKey" + "y" * 16
    run = run_collection_playbook("site", variables, tmp_path)
    assert run.rc == 0, failure_message(run)
    after = docker_api.inspect_container(name)["Id"]
    assert after != before, "the auth file changed: Gluetun must be re-created to read it"
    for engine in engines_of(docker_api, variables):
        assert engine["HostConfig"]["NetworkMode"] == f"container:{after}"
    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc == 0, failure_message(verify)


class _EgressHandler(http.server.BaseHTTPRequestHandler):
    """Answers 203.0.113.77 to clients of the containers' subnet (the "VPN"), 198.51.100.1 to anyone else (the host)."""

    subnet = ipaddress.ip_network("172.16.0.0/12")

    def do_GET(self):  # noqa: N802 - http.server's API
        inside = ipaddress.ip_address(self.client_address[0]) in self.subnet
        body = ("203.0.113.77" if inside else "198.51.100.1").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


def test_egress_ip_check(stack, docker_api, tmp_path):
    """A stand-in for an 'what is my IP' service: the host gets one address, the VPN namespaces another."""
    variables = stack(mode="redundant", replicas=2, range_size=4)
    first, second = (c["name"] for c in variables["acestream_gluetun_containers"])
    variables["acestream_gluetun_containers"][0]["env"]["GLUETUN_SIM_PUBLIC_IP"] = "203.0.113.77"
    variables["acestream_gluetun_containers"][1]["env"]["GLUETUN_SIM_PUBLIC_IP"] = "203.0.113.99"
    assert run_collection_playbook("site", variables, tmp_path).rc == 0

    network = docker_api.inspect_network(variables["acestream_docker_network"])
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    subnet = ipaddress.ip_network(network["IPAM"]["Config"][0]["Subnet"])
    handler = type("Handler", (_EgressHandler,), {"subnet": subnet})
    server = http.server.ThreadingHTTPServer((gateway, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://{gateway}:{server.server_address[1]}/ip"
        verify = run_collection_playbook("verify", {**variables, "acestream_verify_egress_url": url}, tmp_path)
    finally:
        server.shutdown()
    checks = {(c["scope"], c["check"]): c for c in checks_of(verify)}
    assert checks[(f"VPN {first}", "egress IP")]["ok"], checks[(f"VPN {first}", "egress IP")]
    assert "203.0.113.77" in checks[(f"VPN {first}", "egress IP")]["detail"]
    failed = checks[(f"VPN {second}", "egress IP")]
    assert not failed["ok"]
    assert "is not the VPN public IP 203.0.113.99" in failed["detail"]
    assert verify.rc != 0
