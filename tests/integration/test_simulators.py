"""Contract tests of the Gluetun and engine simulator images on a real Docker Engine (the app simulator's are in
test_app_simulator.py).

They pin what the rest of the suite relies on: each release profile's routes, shapes, status codes and
authentication rules (reference/gluetun-control-server.md), the health states Docker sees, forwarded ports
that change on a VPN restart, fault injection, engines of different variants sharing one simulator's network
namespace, the engine's --api-port and its lost connectivity behind a stopped VPN. What was seen on the real
Gluetun is pinned row by row in gluetun_contract.yml (test_gluetun_contract.py). The simulators are test
fixtures; users run the real images.
"""

from __future__ import annotations

import base64
import http.client
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (  # pylint: disable=import-error
    ENGINE_IMAGE,
    TEST_LABEL,
    container_logs,
    docker_exec,
    engine_ready,
    free_port_range,
    health_of,
    http_request,
    listening_tcp_ports,
    wait_exited,
    wait_for,
)

TEXT_PLAIN = "text/plain; charset=utf-8"

AUTH_V3400_ROLE = """
[[roles]]
name = "portforward"
routes = ["GET /v1/openvpn/portforwarded"]
auth = "apikey"
apikey = "key-3400"
"""

AUTH_V3411_BASIC = """
[[roles]]
name = "pf"
routes = ["GET /v1/portforward", "GET /v1/openvpn/portforwarded"]
auth = "basic"
username = "pfuser"
password = "pfpass"
"""

AUTH_V3413_SPLIT = """
[[roles]]
name = "old-route"
routes = ["GET /v1/openvpn/portforwarded"]
auth = "apikey"
apikey = "key-old"

[[roles]]
name = "new-route"
routes = ["GET /v1/portforward"]
auth = "apikey"
apikey = "key-new"
"""

AUTH_LATEST_ADMIN = """
[[roles]]
name = "admin"
routes = ["GET /v1/vpn/settings"]
auth = "basic"
username = "admin"
password = "s3cret"
"""

AUTH_WITH_PORTFORWARD = """
[[roles]]
name = "pf"
routes = ["GET /v1/portforward"]
auth = "apikey"
apikey = "key"
"""

AUTH_UNKNOWN_KEY = """
[[roles]]
name = "pf"
routes = ["GET /v1/vpn/status"]
auth = "apikey"
apikey = "key"
token = "not a Gluetun key"
"""

PF = {"VPN_PORT_FORWARDING": "on", "GLUETUN_SIM_PORT_FORWARD_DELAY": "0.2"}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def sims(gluetun_sims_module):
    """Every long-lived simulator of this module, started in parallel (the faulty ones are left to exit)."""
    return gluetun_sims_module({
        # v3.39.0: no authentication layer at all, so even a file naming a v3.41 route is not read.
        "v3390": {"version": "v3.39.0", "auth_toml": AUTH_WITH_PORTFORWARD, "env": {
            **PF, "GLUETUN_SIM_FORWARDED_PORT": "41390", "VPN_TYPE": "openvpn", "OPENVPN_USER": "ovpn-user",
            "OPENVPN_PASSWORD": "ovpn-secret", "GLUETUN_SIM_PUBLIC_IP": "203.0.113.39",
            "GLUETUN_SIM_COUNTRY": "Netherlands", "GLUETUN_SIM_REGION": "North Holland",
            "GLUETUN_SIM_CITY": "Amsterdam"}},
        "v3400": {"version": "v3.40.0", "env": {**PF, "GLUETUN_SIM_FORWARDED_PORT": "41400",
                                                "GLUETUN_SIM_PORT_FORWARD_MODE": "keep"}},
        "v3400_role": {"version": "v3.40.0", "auth_toml": AUTH_V3400_ROLE,
                       "env": {**PF, "GLUETUN_SIM_FORWARDED_PORT": "41401"}},
        "v3411_multi": {"version": "v3.41.1", "env": {
            **PF, "GLUETUN_SIM_FORWARDED_PORT": "41411", "GLUETUN_SIM_FORWARDED_PORTS_COUNT": "3"}},
        "v3411_basic": {"version": "v3.41.1", "api_port": 8001, "auth_toml": AUTH_V3411_BASIC, "env": {
            **PF, "GLUETUN_SIM_FORWARDED_PORT": "41412",
            "HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE": '{"name":"ops","auth":"apikey","apikey":"key-3411"}'}},
        "v3413": {"version": "v3.41.3", "auth_toml": AUTH_V3413_SPLIT,
                  "env": {**PF, "GLUETUN_SIM_FORWARDED_PORT": "41413"}},
        "latest_closed": {"version": "latest", "api_port": 8002,
                          "env": {"HTTP_CONTROL_SERVER_ADDRESS": "0.0.0.0:8002"}},
        "latest_default": {"version": "latest", "auth_toml": AUTH_LATEST_ADMIN, "env": {
            **PF, "GLUETUN_SIM_FORWARDED_PORT": "41500", "VPN_PORT_FORWARDING_PORTS_COUNT": "2",
            "HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE": '{"auth":"apikey","apikey":"key-default"}',
            "WIREGUARD_PRIVATE_KEY": "wg-private-key-value"}},
        "restart": {"version": "v3.41.3", "env": {**PF, "GLUETUN_SIM_FORWARDED_PORT": "41600"}},
        "engines": {"version": "v3.41.3", "engine_range": 6},
        # Gluetun refuses to start with these: the simulator must exit non-zero with a clear log line.
        "reject_route": {"version": "v3.40.0", "auth_toml": AUTH_WITH_PORTFORWARD, "wait_healthy": False},
        "reject_key": {"version": "latest", "auth_toml": AUTH_UNKNOWN_KEY, "wait_healthy": False},
        "reject_address": {"version": "v3.40.0", "wait_healthy": False,
                           "env": {"HTTP_CONTROL_SERVER_ADDRESS": "8000"}},
        "reject_default": {"version": "v3.41.3", "wait_healthy": False, "env": {
            "HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE": '{"auth":"none","routes":["GET /v1/version"]}'}},
    })


def get(sim, path, headers=None, timeout=5.0):
    return http_request("GET", sim.api_url + path, headers=headers, timeout=timeout)


def put_status(sim, path, status, headers=None):
    return http_request("PUT", sim.api_url + path, body={"status": status}, headers=headers)


def answering(sim, path):
    """The answer, or None while nothing listens yet (Docker's proxy then drops the connection)."""
    try:
        return get(sim, path, timeout=1.0)
    except (ConnectionError, http.client.HTTPException, OSError):
        return None


def in_parallel(*calls):
    """Run the calls in threads (container starts are slow on a busy Docker Engine); their results in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def forwarded(sim, headers=None):
    """The forwarded port(s) as the simulator currently reports them on /v1/portforward."""
    return get(sim, "/v1/portforward", headers).json()


# ------------------------------------------------------------------------------------------------ v3.39.0
def test_v3390_has_no_auth_and_answers_400_for_unknown_routes(sims):
    sim = sims["v3390"]
    version = get(sim, "/v1/version")
    assert version.status == 200
    assert version.json() == {"version": "v3.39.0", "commit": version.json()["commit"],
                              "created": version.json()["created"]}
    assert all(isinstance(v, str) and v for v in version.json().values())
    settings = get(sim, "/v1/openvpn/settings")
    assert settings.status == 200, "v3.39.0 has no authentication: even the settings routes are open"
    assert settings.json()["password"] == "ovpn-secret"
    assert get(sim, "/v1/vpn/settings").json()["openvpn"]["user"] == "ovpn-user"
    unknown = get(sim, "/v1/nope")
    assert (unknown.status, unknown.header("content-type")) == (400, TEXT_PLAIN)
    assert unknown.body == "GET /nope not found\n"
    wrong_method = http_request("POST", sim.api_url + "/v1/vpn/status", body="{}")
    assert (wrong_method.status, wrong_method.body) == (400, "method POST not supported\n")
    assert get(sim, "/v1/portforward").status == 400, "/v1/portforward only exists from v3.41.0"


def test_v3390_openvpn_status_port_and_public_ip(sims):
    sim = sims["v3390"]
    assert get(sim, "/v1/openvpn/status").json() == {"status": "running"}, "VPN_TYPE=openvpn"
    assert get(sim, "/v1/vpn/status").json() == {"status": "running"}
    wait_for(lambda: get(sim, "/v1/openvpn/portforwarded").json()["port"] != 0, timeout=10, what="port")
    answer = get(sim, "/v1/openvpn/portforwarded")
    assert answer.status == 200 and answer.json() == {"port": 41390}
    assert get(sim, "/v1/publicip/ip").json() == {"public_ip": "203.0.113.39", "country": "Netherlands",
                                                  "region": "North Holland", "city": "Amsterdam"}


# ------------------------------------------------------------------------------------------------ v3.40.0
def test_v3400_public_role_opens_classic_routes_only(docker_api, sims):
    sim = sims["v3400"]
    assert get(sim, "/v1/version").json()["version"] == "v3.40.0"
    for path in ("/v1/vpn/status", "/v1/dns/status", "/v1/updater/status", "/v1/publicip/ip"):
        assert get(sim, path).status == 200, path
    assert get(sim, "/v1/openvpn/status").json() == {"status": "stopped"}, "VPN_TYPE defaults to wireguard"
    wait_for(lambda: get(sim, "/v1/openvpn/portforwarded").json()["port"] != 0, timeout=10, what="port")
    assert get(sim, "/v1/openvpn/portforwarded").json() == {"port": 41400}
    for path in ("/v1/vpn/settings", "/v1/openvpn/settings"):
        denied = get(sim, path)
        assert (denied.status, denied.body) == (401, "Unauthorized\n"), path
    # Before v3.41.2 the authentication layer answers first: unknown routes and methods are 401 too.
    assert get(sim, "/v1/portforward").status == 401
    assert get(sim, "/v1/nope").status == 401
    assert http_request("POST", sim.api_url + "/v1/vpn/status").status == 401
    assert "WARN [http server]" in container_logs(docker_api, sim.name)
    assert "public role" in container_logs(docker_api, sim.name)


def test_v3400_defining_a_role_drops_the_public_role(sims):
    sim = sims["v3400_role"]
    assert get(sim, "/v1/openvpn/portforwarded").status == 401
    assert get(sim, "/v1/openvpn/portforwarded", {"X-API-Key": "wrong"}).status == 401
    answer = get(sim, "/v1/openvpn/portforwarded", {"X-API-Key": "key-3400"})
    assert answer.status == 200 and answer.json()["port"] in (0, 41401)
    for path in ("/v1/version", "/v1/vpn/status", "/v1/publicip/ip"):
        assert get(sim, path).status == 401, f"{path} must be closed once any role is defined"
        assert get(sim, path, {"X-API-Key": "key-3400"}).status == 401, "the key covers its routes only"


def test_v3400_auth_file_with_a_v341_route_stops_the_start(docker_api, sims):
    name = sims["reject_route"].name
    assert wait_exited(docker_api, name) != 0
    logs = container_logs(docker_api, name)
    assert "route not supported by the control server: GET /v1/portforward" in logs
    assert "ERROR" in logs


# ------------------------------------------------------------------------------------------------ v3.41.x
def test_v3411_several_ports_come_without_port_field(sims):
    sim = sims["v3411_multi"]
    wait_for(lambda: "ports" in forwarded(sim), timeout=10, what="forwarded ports")
    answer = forwarded(sim)
    assert set(answer) == {"ports"}
    assert answer["ports"][0] == 41411 and len(set(answer["ports"])) == 3
    assert all(40000 <= p <= 49999 for p in answer["ports"])


def test_v341_old_route_redirects_permanently(sims):
    answer = get(sims["v3411_multi"], "/v1/openvpn/portforwarded")
    assert answer.status == 301
    assert answer.header("location") == "/v1/portforward"


def test_v3411_basic_role_default_role_and_single_port_shapes(sims):
    sim = sims["v3411_basic"]
    creds, key = basic("pfuser", "pfpass"), {"X-API-Key": "key-3411"}
    denied = get(sim, "/v1/portforward")
    assert denied.status == 401
    assert denied.header("www-authenticate") == 'Basic realm="restricted", charset="UTF-8"'
    assert get(sim, "/v1/portforward", basic("pfuser", "wrong")).status == 401
    assert get(sim, "/v1/portforward", key).status == 401, "a route of the file is not the default role's"
    wait_for(lambda: forwarded(sim, creds)["port"] != 0, timeout=10, what="forwarded port")
    assert forwarded(sim, creds) == {"port": 41412}, "one port: no ports key up to v3.41.1"
    assert get(sim, "/v1/version").status == 401
    assert get(sim, "/v1/version", key).json()["version"] == "v3.41.1"
    assert get(sim, "/v1/nope", key).status == 401, "401, not 404, before v3.41.2"
    assert http_request("PUT", sim.api_url + "/v1/portforward", headers=creds).status == 401
    assert put_status(sim, "/v1/vpn/status", "stopped", key).json() == {"outcome": "stopped"}
    assert forwarded(sim, creds) == {"port": 0}, "no port: port 0, no ports key up to v3.41.1"
    assert put_status(sim, "/v1/vpn/status", "running", key).json() == {"outcome": "running"}
    new = wait_for(lambda: forwarded(sim, creds)["port"], timeout=10, what="a new forwarded port")
    assert forwarded(sim, creds) == {"port": new} and new != 41412


def test_control_server_address_forms(docker_api, sims):
    assert listening_tcp_ports(docker_api, sims["v3411_basic"].name) == {8001, 9999}  # ":8001"
    assert listening_tcp_ports(docker_api, sims["latest_closed"].name) == {8002, 9999}  # "0.0.0.0:8002"
    name = sims["reject_address"].name
    assert wait_exited(docker_api, name) != 0
    assert "HTTP_CONTROL_SERVER_ADDRESS='8000' is not a valid listening address" in container_logs(
        docker_api, name)


def test_v3413_redirect_target_needs_its_own_auth(sims):
    sim = sims["v3413"]
    old = get(sim, "/v1/openvpn/portforwarded", {"X-API-Key": "key-old"})
    assert (old.status, old.header("location")) == (301, "/v1/portforward")
    assert get(sim, "/v1/openvpn/portforwarded").status == 401
    assert get(sim, "/v1/portforward", {"X-API-Key": "key-old"}).status == 401, "following the 301 fails"
    wait_for(lambda: forwarded(sim, {"X-API-Key": "key-new"})["port"] != 0, timeout=10, what="port")
    assert forwarded(sim, {"X-API-Key": "key-new"}) == {"port": 41413, "ports": [41413]}
    assert get(sim, "/v1/version").status == 401


def test_v3413_public_role_404_405_and_empty_ports(sims):
    sim = sims["engines"]  # v3.41.3, no auth file, no port forwarding
    assert get(sim, "/v1/version").json()["version"] == "v3.41.3"
    assert forwarded(sim) == {"port": 0, "ports": []}, "null only before the first connection"
    assert get(sim, "/v1/vpn/settings").status == 401
    unknown = get(sim, "/v1/nope")
    assert (unknown.status, unknown.body) == (404, "Not Found\n")
    wrong = http_request("POST", sim.api_url + "/v1/vpn/status")
    assert (wrong.status, wrong.body, wrong.header("allow")) == (405, "Method Not Allowed\n", None)


def test_v3413_default_role_with_routes_stops_the_start(docker_api, sims):
    name = sims["reject_default"].name
    assert wait_exited(docker_api, name) != 0
    assert 'decoding default role: json: unknown field "routes"' in container_logs(docker_api, name)


# ------------------------------------------------------------------------------------------------- latest
def test_latest_without_roles_is_closed(docker_api, sims):
    sim = sims["latest_closed"]
    for path in ("/v1/version", "/v1/vpn/status", "/v1/openvpn/portforwarded", "/v1/portforward",
                 "/v1/publicip/ip"):
        assert get(sim, path).status == 401, path
    assert get(sim, "/v1/nope").status == 404
    assert http_request("DELETE", sim.api_url + "/v1/version").status == 405
    assert "public role" not in container_logs(docker_api, sim.name)


def test_latest_default_role_apikey_and_file_role_basic(sims):
    sim = sims["latest_default"]
    key = {"X-API-Key": "key-default"}
    version = get(sim, "/v1/version", key)
    assert version.status == 200 and version.json()["version"] == "latest"
    assert get(sim, "/v1/version").status == 401
    assert get(sim, "/v1/version", {"X-API-Key": "key-defaulT"}).status == 401
    wait_for(lambda: forwarded(sim, key)["port"] != 0, timeout=10, what="forwarded ports")
    ports = forwarded(sim, key)
    assert ports["port"] == 41500 and ports["ports"][0] == 41500 and len(ports["ports"]) == 2
    # A route listed in the file is not covered by the default role.
    assert get(sim, "/v1/vpn/settings", key).status == 401
    settings = get(sim, "/v1/vpn/settings", basic("admin", "s3cret"))
    assert settings.status == 200
    assert settings.json()["wireguard"]["private_key"] == "wg-private-key-value"
    assert settings.json()["type"] == "wireguard"


def test_latest_auth_file_with_unknown_key_stops_the_start(docker_api, sims):
    name = sims["reject_key"].name
    assert wait_exited(docker_api, name) != 0
    logs = container_logs(docker_api, name)
    assert "strict mode" in logs and "token" in logs


# ----------------------------------------------------------------------------------- shared behaviours
def test_json_answers_are_text_plain_with_trailing_newline(sims):
    for key, path, headers in (("v3390", "/v1/version", None), ("v3400", "/v1/vpn/status", None),
                               ("engines", "/v1/portforward", None),
                               ("latest_default", "/v1/publicip/ip", {"X-API-Key": "key-default"})):
        answer = get(sims[key], path, headers)
        assert answer.status == 200
        assert answer.header("content-type") == TEXT_PLAIN, "Gluetun never sets a JSON content type"
        assert answer.body.endswith("}\n") and isinstance(answer.json(), dict)


def test_forwarded_port_changes_after_vpn_restart(docker_api, sims):
    sim = sims["restart"]
    wait_for(lambda: forwarded(sim)["port"] != 0, timeout=10, what="first port")
    assert forwarded(sim) == {"port": 41600, "ports": [41600]}
    assert docker_exec(docker_api, sim.name, ["cat", "/tmp/gluetun/forwarded_port"]) == (0, "41600\n")
    assert put_status(sim, "/v1/vpn/status", "running").json() == {"outcome": "already running"}

    stopped = put_status(sim, "/v1/vpn/status", "stopped")
    assert (stopped.status, stopped.json()) == (200, {"outcome": "stopped"})
    assert get(sim, "/v1/vpn/status").json() == {"status": "stopped"}
    assert forwarded(sim) == {"port": 0, "ports": []}
    assert docker_exec(docker_api, sim.name, ["test", "-e", "/tmp/gluetun/forwarded_port"])[0] != 0

    started = put_status(sim, "/v1/vpn/status", "running")
    assert (started.status, started.json()) == (200, {"outcome": "running"})
    new = wait_for(lambda: forwarded(sim)["port"], timeout=10, what="a new forwarded port")
    assert new != 41600 and 40000 <= new <= 49999
    assert forwarded(sim)["ports"] == [new]
    assert docker_exec(docker_api, sim.name, ["cat", "/tmp/gluetun/forwarded_port"]) == (0, f"{new}\n")


def test_forwarded_port_kept_across_restarts_in_keep_mode(sims):
    sim = sims["v3400"]  # GLUETUN_SIM_PORT_FORWARD_MODE=keep: PIA with a persisted /gluetun
    wait_for(lambda: get(sim, "/v1/openvpn/portforwarded").json()["port"], timeout=10, what="port")
    assert put_status(sim, "/v1/openvpn/status", "stopped").json() == {"outcome": "stopped"}
    assert get(sim, "/v1/openvpn/portforwarded").json() == {"port": 0}
    assert put_status(sim, "/v1/vpn/status", "running").json() == {"outcome": "running"}
    assert wait_for(lambda: get(sim, "/v1/openvpn/portforwarded").json()["port"], timeout=10,
                    what="the port back") == 41400


def test_put_status_rejects_bad_bodies(sims):
    sim = sims["restart"]
    bad_value = put_status(sim, "/v1/vpn/status", "paused")
    assert bad_value.status == 400
    assert bad_value.body == "invalid status: paused: possible values are: stopped, running\n"
    assert http_request("PUT", sim.api_url + "/v1/vpn/status", body="{not json").status == 400
    assert http_request("PUT", sim.api_url + "/v1/vpn/status", body="").status == 400
    assert put_status(sim, "/v1/dns/status", "stopped").json() == {"outcome": "stopped"}
    assert get(sim, "/v1/dns/status").json() == {"status": "stopped"}
    assert put_status(sim, "/v1/dns/status", "running").json() == {"outcome": "running"}


def test_faults_hang_500_and_non_json(docker_api, sims):
    sim = sims["v3400"]
    try:
        assert docker_exec(docker_api, sim.name, ["gluetun-sim", "set-fault", "500"])[0] == 0
        failed = get(sim, "/v1/vpn/status")
        assert failed.status == 500
        docker_exec(docker_api, sim.name, ["gluetun-sim", "set-fault", "nonjson"])
        garbled = get(sim, "/v1/openvpn/portforwarded")
        assert garbled.status == 200 and not garbled.body.lstrip().startswith("{")
        docker_exec(docker_api, sim.name, ["gluetun-sim", "set-fault", "hang"])
        began = time.monotonic()
        with pytest.raises((socket.timeout, TimeoutError)):
            get(sim, "/v1/vpn/status", timeout=1.0)
        assert time.monotonic() - began >= 0.9
        assert docker_exec(docker_api, sim.name, ["gluetun-sim", "set-fault", "bogus"])[0] != 0
    finally:
        docker_exec(docker_api, sim.name, ["gluetun-sim", "set-fault", "none"])
    assert get(sim, "/v1/vpn/status").json() == {"status": "running"}
    assert health_of(docker_api, sim.name) == "healthy", "faults touch the control server only"


def test_health_starting_healthy_unhealthy_and_prompt_stop(docker_api, gluetun_sim):
    sim = gluetun_sim(version="v3.40.0", healthy_after=3, wait_healthy=False)
    assert health_of(docker_api, sim.name) == "starting"
    first = wait_for(lambda: answering(sim, "/v1/vpn/status"), timeout=30, interval=0.05, what="control server")
    assert first.json() == {"status": "starting"}
    rc, output = docker_exec(docker_api, sim.name, ["/gluetun-entrypoint", "healthcheck"])
    if get(sim, "/v1/vpn/status").json()["status"] == "starting":  # not yet up, even on a loaded machine
        assert rc == 1 and "healthcheck did not run yet" in output
    began = time.monotonic()
    wait_for(lambda: health_of(docker_api, sim.name) != "starting", timeout=60, interval=0.1, what="health")
    assert health_of(docker_api, sim.name) == "healthy"
    assert time.monotonic() - began > 1.0, "still starting for GLUETUN_SIM_HEALTHY_AFTER seconds"
    assert docker_exec(docker_api, sim.name, ["gluetun-sim", "healthcheck"])[0] == 0

    docker_exec(docker_api, sim.name, ["gluetun-sim", "set-health", "unhealthy"])
    wait_for(lambda: health_of(docker_api, sim.name) == "unhealthy", timeout=60, interval=0.1, what="unhealthy")
    log = docker_api.inspect_container(sim.name)["State"]["Health"]["Log"][-1]
    assert log["ExitCode"] == 1 and "set-health unhealthy" in log["Output"]
    assert get(sim, "/v1/vpn/status").json() == {"status": "running"}, "the control server still answers"
    docker_exec(docker_api, sim.name, ["gluetun-sim", "set-health", "healthy"])
    wait_for(lambda: health_of(docker_api, sim.name) == "healthy", timeout=60, interval=0.1, what="healthy")

    assert "simulator ready in " in container_logs(docker_api, sim.name)
    docker_api.stop(sim.name, timeout=30)
    # Exit code 0 (not 137): it stopped on SIGTERM by itself, before Docker's kill.
    assert docker_api.inspect_container(sim.name)["State"]["ExitCode"] == 0
    assert "caught OS signal SIGTERM" in container_logs(docker_api, sim.name)


# ------------------------------------------------------------------------------------------------ engines
def test_engines_of_different_variants_share_the_simulator_namespace(docker_api, sims, engine_sim):
    sim = sims["engines"]
    first = sim.engine_range[0]
    assert listening_tcp_ports(docker_api, sim.name) == {8000, 9999}, "the simulator binds no engine port"
    https = free_port_range(3, low=45000, high=49999)[0]
    engines = in_parallel(
        lambda: engine_sim(sim, "krinkuto11-amd64", first, https),
        lambda: engine_sim(sim, "jopsis-arm64", first + 1, https + 1, p2p_port=first + 2),
        lambda: engine_sim(sim, "jopsis-amd64", first + 3, https + 2),
    )
    expected = {"krinkuto11-amd64": "CONF", "jopsis-arm64": "command", "jopsis-amd64": "ACESTREAM_ARGS"}
    for engine in engines:
        base = f"http://127.0.0.1:{engine.http_port}"
        status = http_request("GET", base + "/server/api?api_version=3&method=get_status")
        assert status.status == 200 and status.json()["error"] is None and status.json()["result"]
        network = http_request("GET", base + "/server/api?api_version=3&method=get_network_connection_status")
        assert network.json()["result"] == {"connected": True}
        version = http_request("GET", base + "/webui/api/service?method=get_version").json()["result"]
        assert version["platform"] == "linux" and version["version"].endswith("-sim") and version["code"]
        info = http_request("GET", base + "/simulator/info").json()
        assert info["mechanism"] == expected[engine.variant]
        assert (info["http_port"], info["https_port"], info["p2p_port"]) == (
            engine.http_port, engine.https_port, engine.p2p_port)
        # The orchestrator passes --bind-all to every variant but jopsis-amd64 (whose image adds it itself).
        assert info["bind_all"] is (engine.variant != "jopsis-amd64")
        assert not docker_api.inspect_container(engine.name)["HostConfig"]["PortBindings"]
    assert listening_tcp_ports(docker_api, sim.name) == {
        8000, 9999, first, first + 1, first + 2, first + 3, https, https + 1, https + 2}

    clash, clash_http = in_parallel(
        lambda: engine_sim(sim, "jopsis-amd64", first + 4, https, wait=False),
        lambda: engine_sim(sim, "krinkuto11-amd64", first, https + 5, wait=False))
    assert wait_exited(docker_api, clash.name, timeout=20) != 0
    message = container_logs(docker_api, clash.name)
    assert f"port {https}" in message and "network namespace" in message
    assert wait_exited(docker_api, clash_http.name, timeout=20) != 0
    assert f"TCP port {first} (http port, from CONF)" in container_logs(docker_api, clash_http.name)
    assert http_request("GET", f"http://127.0.0.1:{first}/simulator/info").json()["mechanism"] == "CONF", \
        "the first engine keeps its port"


def test_engine_without_ports_or_with_conflicting_ports_exits(docker_api, engine_sim, sims):
    sim = sims["engines"]
    bare, conflicting = in_parallel(
        lambda: engine_sim(sim, "jopsis-amd64", 1, 2, wait=False, env={"ACESTREAM_ARGS": ""}),
        lambda: engine_sim(sim, "krinkuto11-amd64", 30001, 30002, wait=False, env={"HTTP_PORT": "30009"}))
    assert wait_exited(docker_api, bare.name, timeout=20) == 2
    assert "no ports given" in container_logs(docker_api, bare.name)
    assert wait_exited(docker_api, conflicting.name, timeout=20) == 2
    assert "conflicting http port: CONF says 30001 but env says 30009" in container_logs(
        docker_api, conflicting.name)


def test_engine_api_port_and_no_connectivity_behind_a_stopped_vpn(docker_api, run_id, gluetun_sim):
    # A health server on every address: the tunnel stand-in's address (127.0.0.2:9999) is then the health
    # server's, which answers the stand-in's path itself.
    sim = gluetun_sim(version="v3.41.3", engine_range=4, env={"HEALTH_SERVER_ADDRESS": ":9999"})
    assert "[tunnel stand-in] served by the health server" in container_logs(docker_api, sim.name)
    http_port, api_port, other, unprobed_port = range(sim.engine_range[0], sim.engine_range[0] + 4)

    def start(command, env=None):
        name = f"t{run_id}-engine-{uuid.uuid4().hex[:4]}"
        docker_api.start(docker_api.create_container(
            ENGINE_IMAGE, name=name, command=["python", "main.py", "--bind-all", *command], environment=env or {},
            host_config=docker_api.create_host_config(network_mode=f"container:{sim.id}"),
            labels={TEST_LABEL: run_id})["Id"])
        return name

    # AceServe, as the orchestrator app v1.7.3 starts it: --api-port (both forms), the same API on that port.
    engine = start(["--http-port", str(http_port), "--https-port", "45100", f"--api-port={api_port}"])
    unprobed = start(["--http-port", str(unprobed_port)], env={"ENGINE_SIM_VPN_STATUS_URL": ""})
    same = start(["--http-port", str(other), "--api-port", str(other)])
    taken = start(["--http-port", str(other), "--api-port", str(http_port)])
    for name in (engine, unprobed):
        wait_for(lambda name=name: engine_ready(docker_api, name), timeout=30, interval=0.1, what=f"{name} listening")
    for port in (http_port, api_port):
        base = f"http://127.0.0.1:{port}"
        assert http_request("GET", base + "/server/api?api_version=3&method=get_status").json()["result"]["http_port"] == http_port
        assert connectivity(port) is True, "the VPN runs: the tunnel is up"
        info = http_request("GET", base + "/simulator/info").json()
        assert (info["http_port"], info["api_port"], info["origin"]["api_port"]) == (http_port, api_port, "command")
    assert wait_exited(docker_api, same, timeout=20) == 2
    assert "api port and http port are both" in container_logs(docker_api, same)
    assert wait_exited(docker_api, taken, timeout=20) == 3
    assert f"TCP port {http_port} (api port, from command)" in container_logs(docker_api, taken)

    # A VPN stopped through the control server: the engine behind it has no connectivity (within 1 s), while
    # Gluetun's health server, and so Docker, still say healthy, as the real ones do.
    assert put_status(sim, "/v1/vpn/status", "stopped").json() == {"outcome": "stopped"}
    for port in (http_port, api_port):
        wait_for(lambda port=port: connectivity(port) is False, timeout=5, interval=0.1, what="no connectivity")
    info = http_request("GET", f"http://127.0.0.1:{http_port}/simulator/info").json()
    assert info["connected"] is False and info["connectivity"].startswith("VPN status stopped (")
    assert info["vpn_status_url"] == "http://127.0.0.2:9999/simulator/tunnel"
    assert docker_exec(docker_api, sim.name, ["gluetun-sim", "healthcheck"])[0] == 0
    assert health_of(docker_api, sim.name) == "healthy"
    assert connectivity(unprobed_port) is True, "ENGINE_SIM_VPN_STATUS_URL empty: no check"
    assert put_status(sim, "/v1/vpn/status", "running").json() == {"outcome": "running"}
    wait_for(lambda: connectivity(http_port) is True, timeout=10, interval=0.1, what="connectivity back")
    assert http_request("GET", f"http://127.0.0.1:{http_port}/simulator/info").json()["connectivity"].startswith(
        "VPN status running (")


def connectivity(port):
    answer = http_request("GET", f"http://127.0.0.1:{port}/server/api?api_version=3&method=get_network_connection_status")
    return answer.json()["result"]["connected"]
