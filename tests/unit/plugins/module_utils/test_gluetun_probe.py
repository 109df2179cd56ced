# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probing Gluetun containers: address resolution, input validation, health rules, waiting, parallelism.

The control servers are real local HTTP servers; Docker is a small in-memory stand-in for
``docker.APIClient.inspect_container`` (the I/O edge), fed with inspect documents shaped like Docker's.
"""

from __future__ import annotations

import base64
import json

import pytest
from gluetun_fake import RELEASES, free_port
from secret_check import HOSTILE, KEY_CORE, PASSWORD_CORE, assert_no_secret, hostile_args

from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import NotFound
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import (
    GluetunClient,
    GluetunConfigError,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import (
    configured_control_port,
    container_summary,
    needs_docker,
    normalize_instances,
    probe_instances,
    docker_host_address,
    read_control,
    read_forwarded_ports,
    read_ports,
    resolve_api_url,
    scrub_secrets,
)

KEY = "S3cretKeyValue22chars0"
PASSWORD = "hunter2-very-secret"
RESULT_FIELDS = {"name", "api_url", "api_port", "container", "reachable", "version", "vpn_status", "healthy",
                 "connected", "public_ip", "country", "region", "city", "forwarded_port", "forwarded_ports",
                 "port_route", "changed", "error", "warnings"}


def inspect_doc(name, host_port=None, api_port=8000, health="healthy", status="running", env=None,
                host_ip="127.0.0.1", bridge_ip="172.17.0.9", network_mode="bridge", health_output=None):
    """A container inspect document as Docker returns it (the fields the probe reads)."""
    ports = {}
    if host_port is not None:
        ports["%d/tcp" % api_port] = [{"HostIp": host_ip, "HostPort": str(host_port)}]
    state = {"Status": status, "Running": status == "running"}
    if health is not None:
        state["Health"] = {"Status": health, "FailingStreak": 0,
                           "Log": [{"ExitCode": 1, "Output": health_output}] if health_output else []}
    return {
        "Id": "%s-id" % name, "Name": "/" + name, "State": state,
        "Config": {"Env": env if env is not None else ["HTTP_CONTROL_SERVER_ADDRESS=:%d" % api_port, "TZ=UTC"]},
        "HostConfig": {"NetworkMode": network_mode},
        "NetworkSettings": {"Ports": ports, "IPAddress": bridge_ip if network_mode == "bridge" else "",
                            "Networks": {network_mode: {"IPAddress": bridge_ip}} if network_mode == "bridge" else {}},
    }


class FakeDocker(object):
    """docker.APIClient's inspect_container over a dict of inspect documents."""

    def __init__(self, containers=None):
        self.containers = dict(containers or {})
        self.calls = []

    def inspect_container(self, name):
        self.calls.append(name)
        if name not in self.containers:
            raise NotFound("No such container: %s" % name)
        doc = self.containers[name]
        return doc() if callable(doc) else doc


def sim(fake, name, health="healthy", **kwargs):
    """A fake control server plus the inspect document of a container publishing it."""
    server = fake(**kwargs)
    return server, inspect_doc(name, host_port=server.port, health=health)


# ---------------------------------------------------------------------------------------- resolve_api_url
def test_resolve_prefers_the_published_port_and_maps_wildcards_to_loopback():
    assert resolve_api_url(inspect_doc("g", host_port=8002, api_port=8001), 8001) == "http://127.0.0.1:8002"
    assert resolve_api_url(inspect_doc("g", host_port=8002, api_port=8001, host_ip="0.0.0.0"), 8001) == \
        "http://127.0.0.1:8002"
    assert resolve_api_url(inspect_doc("g", host_port=8002, api_port=8001, host_ip=""), 8001) == "http://127.0.0.1:8002"
    assert resolve_api_url(inspect_doc("g", host_port=8002, api_port=8001, host_ip="192.168.1.5"), 8001) == \
        "http://192.168.1.5:8002"


def test_resolve_prefers_ipv4_over_the_ipv6_wildcard():
    doc = inspect_doc("g")
    doc["NetworkSettings"]["Ports"]["8001/tcp"] = [
        {"HostIp": "::", "HostPort": "9002"}, {"HostIp": "0.0.0.0", "HostPort": "9001"}]
    assert resolve_api_url(doc, 8001) == "http://127.0.0.1:9001"
    doc["NetworkSettings"]["Ports"]["8001/tcp"] = [{"HostIp": "::", "HostPort": "9002"}]
    assert resolve_api_url(doc, 8001) == "http://[::1]:9002"


def test_resolve_falls_back_to_the_bridge_ip_and_internal_port():
    assert resolve_api_url(inspect_doc("g", api_port=8001), 8001) == "http://172.17.0.9:8001"
    doc = inspect_doc("g", api_port=8001)
    doc["NetworkSettings"]["IPAddress"] = ""
    doc["NetworkSettings"]["Networks"] = {"zz": {"IPAddress": "10.0.0.3"}, "aceserver": {"IPAddress": "10.1.0.2"}}
    assert resolve_api_url(doc, 8001) == "http://10.1.0.2:8001"
    # a binding of another port is not ours
    assert resolve_api_url(inspect_doc("g", host_port=9000, api_port=8000), 8001) == "http://172.17.0.9:8001"


def test_resolve_host_network_and_nothing():
    assert resolve_api_url(inspect_doc("g", network_mode="host"), 8001) == "http://127.0.0.1:8001"
    assert resolve_api_url(inspect_doc("g", network_mode="none"), 8001) is None
    assert resolve_api_url({}, 8000) is None


def test_resolve_from_a_remote_controller():
    """A lookup reaching a remote Docker daemon: only non-loopback bindings are reachable."""
    doc = inspect_doc("g", host_port=8002, api_port=8001, host_ip="0.0.0.0")
    assert resolve_api_url(doc, 8001, host_address="docker1.example.com") == "http://docker1.example.com:8002"
    assert resolve_api_url(inspect_doc("g", host_port=8002, api_port=8001), 8001, host_address="docker1") is None
    assert resolve_api_url(inspect_doc("g", api_port=8001), 8001, host_address="docker1") is None
    assert resolve_api_url(doc, 8001, host_address="127.0.0.1") == "http://127.0.0.1:8002"


def test_container_summary_and_configured_port():
    expected = {"id": "g-id", "status": "running", "health": "starting"}
    assert container_summary(inspect_doc("g", health="starting")) == expected
    assert container_summary(inspect_doc("g", health=None))["health"] == "none"
    assert configured_control_port(inspect_doc("g", api_port=8001)) == 8001
    assert configured_control_port(inspect_doc("g", env=["HTTP_CONTROL_SERVER_ADDRESS=[::]:8003"])) == 8003
    assert configured_control_port(inspect_doc("g", env=[])) == 8000
    assert configured_control_port(inspect_doc("g", env=["HTTP_CONTROL_SERVER_ADDRESS=bogus"])) is None


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, message", [
    ({"instances": []}, "instances is empty"),
    ({"instances": None}, "instances is empty"),
    ({"instances": [{"name": "g1"}, {"name": "g2"}, {"name": "g1"}]},
     "duplicate instance name 'g1' in instances\\[0\\] and instances\\[2\\]"),
    ({"instances": [{"name": ""}]}, "instances\\[0\\] has no name"),
    ({"instances": [{"api_port": 8000}]}, "instances\\[0\\] has no name"),
    ({"instances": [42]}, "must be a container name or a dict"),
    ({"instances": [{"name": "g", "apikey": "x"}]}, "instances\\[0\\] has unknown fields: apikey"),
    ({"instances": ["g"], "api_port": 0}, "api_port must be a TCP port number between 1 and 65535"),
    ({"instances": ["g"], "api_port": 70000}, "api_port must be a TCP port number"),
    ({"instances": ["g"], "api_port": True}, "api_port must be a TCP port number"),
    ({"instances": [{"name": "g", "api_port": "http"}]}, "instances\\[0\\] \\(g\\) api_port must be a TCP port"),
    ({"instances": ["g"], "api_key": KEY, "username": "u", "password": PASSWORD},
     "module options: api_key cannot be used together with username/password"),
    ({"instances": [{"name": "g", "api_key": KEY, "password": PASSWORD}]},
     "instances\\[0\\] \\(g\\): api_key cannot be used together with username/password"),
    ({"instances": ["g"], "username": "u"}, "username and password must be given together"),
    ({"instances": [{"name": "g", "api_url": "http://u:%s@h:1" % PASSWORD}]}, "instances\\[0\\] \\(g\\): api_url must not carry"),
])
def test_normalize_rejects_bad_input(kwargs, message):
    with pytest.raises(GluetunConfigError, match=message) as err:
        normalize_instances(**kwargs)
    assert KEY not in str(err.value) and PASSWORD not in str(err.value)


def test_normalize_merges_defaults_and_lets_instances_override():
    result = normalize_instances(
        ["g1", {"name": "g2", "api_port": 8002, "api_url": "http://127.0.0.1:9/"},
         {"name": "g3", "username": "mon", "password": PASSWORD}],
        api_port="8001", api_key=KEY)
    assert result == [
        {"name": "g1", "api_port": 8001, "api_url": None, "api_key": KEY, "username": None, "password": None},
        {"name": "g2", "api_port": 8002, "api_url": "http://127.0.0.1:9", "api_key": KEY, "username": None,
         "password": None},
        {"name": "g3", "api_port": 8001, "api_url": None, "api_key": None, "username": "mon", "password": PASSWORD},
    ]


def test_probe_validates_before_any_request(fake):
    server = fake(version="v3.41.3")
    with pytest.raises(GluetunConfigError, match="duplicate instance name"):
        probe_instances(None, [{"name": "g", "api_url": server.url}, {"name": "g", "api_url": server.url}])
    with pytest.raises(GluetunConfigError, match="no Docker access and no api_url for: g2"):
        probe_instances(None, [{"name": "g1", "api_url": server.url}, "g2"])
    with pytest.raises(GluetunConfigError, match="timeout: 0 is not above 0; use a number of seconds above 0"):
        probe_instances(None, [{"name": "g", "api_url": server.url}], timeout=0)
    with pytest.raises(GluetunConfigError, match="vpn_status must be 'running' or 'stopped'"):
        probe_instances(None, [{"name": "g", "api_url": server.url}], vpn_status="up")
    assert server.requests == []


def test_needs_docker():
    assert needs_docker(["g"]) and needs_docker([{"name": "g"}])
    assert not needs_docker([{"name": "g", "api_url": "http://x:1"}])


# --------------------------------------------------------------------------------------------- health
def test_healthy_instance_full_result(fake):
    server, doc = sim(fake, "gluetun1", version="v3.41.3", ports=[41234, 41235])
    docker = FakeDocker({"gluetun1": doc})
    [vpn] = probe_instances(docker, ["gluetun1"])
    assert set(vpn) == RESULT_FIELDS
    assert vpn["api_url"] == server.url
    assert vpn["container"] == {"id": "gluetun1-id", "status": "running", "health": "healthy"}
    assert vpn["healthy"] and vpn["connected"] and vpn["reachable"] and vpn["error"] is None
    assert (vpn["version"], vpn["vpn_status"], vpn["public_ip"], vpn["country"]) == (
        "v3.41.3", "running", "203.0.113.7", "Netherlands")
    assert vpn["forwarded_port"] == 41234 and vpn["forwarded_ports"] == [41234, 41235]
    assert vpn["port_route"] == "/v1/portforward" and vpn["changed"] is False and vpn["warnings"] == []


def test_starting_is_not_healthy(fake):
    _server, doc = sim(fake, "g", health="starting", version="v3.41.3")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"])
    assert vpn["healthy"] is False and vpn["connected"] is True
    assert vpn["error"] == "VPN container 'g' is not healthy yet: Docker health is 'starting' (the tunnel may not exist yet)"


def test_unhealthy_reports_the_last_check_output(fake):
    server = fake(version="v3.41.3")
    doc = inspect_doc("g", host_port=server.port, health="unhealthy", health_output="dialing cloudflare.com:443 failed")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"])
    assert vpn["error"] == ("VPN container 'g' is not healthy: Docker health is 'unhealthy' "
                            "(last check: dialing cloudflare.com:443 failed)")


def test_docker_healthy_but_vpn_stopped_is_not_healthy(fake):
    _server, doc = sim(fake, "g", version="v3.41.3", vpn_status="stopped")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"])
    assert not vpn["healthy"] and not vpn["connected"] and vpn["public_ip"] is None
    assert vpn["error"] == ("VPN container 'g' is not healthy: Docker health is 'healthy' but its control server "
                            "reports the VPN 'stopped', not 'running'")


def test_no_healthcheck_counts_only_when_running(fake):
    server = fake(version="v3.41.3")
    docker = FakeDocker({"g": inspect_doc("g", host_port=server.port, health=None)})
    [vpn] = probe_instances(docker, ["g"])
    assert vpn["healthy"] and vpn["container"]["health"] == "none"
    server.vpn_status = "crashed"
    [vpn] = probe_instances(docker, ["g"])
    assert not vpn["healthy"]
    assert vpn["error"] == ("VPN container 'g' is not healthy: it has no healthcheck and its control server reports "
                            "the VPN 'crashed', not 'running'")


def test_container_not_running_or_missing(fake):
    docker = FakeDocker({"g": inspect_doc("g", status="exited", host_port=1)})
    [vpn] = probe_instances(docker, ["g"])
    assert vpn["error"] == "Gluetun container 'g' is not running (status exited): start it first"
    assert vpn["container"]["status"] == "exited" and not vpn["reachable"]
    [vpn] = probe_instances(FakeDocker(), ["ghost"], docker_where=" (unix:///var/run/docker.sock)")
    assert vpn["error"] == "No Gluetun container named 'ghost' on the Docker host (unix:///var/run/docker.sock)"


def test_api_url_without_container_is_judged_by_the_control_server(fake):
    server = fake(version="v3.41.3")
    [vpn] = probe_instances(FakeDocker(), [{"name": "remote", "api_url": server.url}])
    assert vpn["healthy"] and vpn["container"] is None and vpn["error"] is None
    assert vpn["warnings"] == ["no container named 'remote' on the Docker host: its health is judged from the "
                               "control server alone"]


def test_api_url_with_a_known_container_still_uses_docker_health(fake):
    server = fake(version="v3.41.3")
    docker = FakeDocker({"g": inspect_doc("g", health="starting")})
    [vpn] = probe_instances(docker, [{"name": "g", "api_url": server.url}])
    assert vpn["api_url"] == server.url and vpn["container"]["health"] == "starting" and not vpn["healthy"]


def test_unpublished_port_without_bridge_ip(fake):
    docker = FakeDocker({"g": inspect_doc("g", api_port=8001, network_mode="none")})
    [vpn] = probe_instances(docker, ["g"], api_port=8001)
    assert vpn["error"].startswith("Cannot access Gluetun API of 'g': port 8001/tcp is not published")
    assert "give api_url" in vpn["error"] and vpn["api_url"] is None


def test_refused_port_names_the_address_mismatch():
    """GLUETUN_API_PORT 8000 while the container listens on :8001: the seed's first cause, made specific."""
    port = free_port()
    docker = FakeDocker({"g": inspect_doc("g", host_port=port, api_port=8000,
                                          env=["HTTP_CONTROL_SERVER_ADDRESS=:8001"])})
    [vpn] = probe_instances(docker, ["g"])
    assert vpn["error"].startswith("Cannot access Gluetun API of 'g' at http://127.0.0.1:%d/v1/version: connection "
                                   "refused" % port)
    assert "1) the container listens on HTTP_CONTROL_SERVER_ADDRESS port 8001 but api_port is 8000: set api_port: 8001" \
        in vpn["error"]
    assert not vpn["reachable"] and not vpn["healthy"]


def test_refused_with_required_port_uses_the_seed_message():
    port = free_port()
    docker = FakeDocker({"g": inspect_doc("g", host_port=port)})
    [vpn] = probe_instances(docker, ["g"], require_forwarded_port=True)
    assert vpn["error"].startswith("Failed to get forwarded port from Gluetun 'g': Cannot access Gluetun API of 'g'")


# ------------------------------------------------------------------------------------------ auth in probes
def test_401_is_explained_once_and_other_routes_named(fake):
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/version"]}]
    _server, doc = sim(fake, "g", version="v3.41.3", roles=roles)
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], api_key=KEY, require_forwarded_port=True)
    error = vpn["error"]
    assert error.startswith("Gluetun 'g' at http://127.0.0.1:")
    assert "answered 401 Unauthorized for GET /v1/vpn/status: the api_key sent was refused" in error
    assert error.count("Fix:") == 1
    assert "Failed to get forwarded port from Gluetun 'g': Gluetun 'g' at" in error
    assert "401 Unauthorized for GET /v1/portforward as well (same fix)" in error
    assert any("GET /v1/publicip/ip as well" in w for w in vpn["warnings"])
    assert vpn["reachable"] and not vpn["healthy"] and vpn["version"] == "v3.41.3"
    assert KEY not in json.dumps(vpn)


def test_optional_routes_refused_are_warnings(fake):
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/vpn/status", "GET /v1/portforward"]}]
    _server, doc = sim(fake, "g", version="v3.41.1", roles=roles)
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], api_key=KEY)
    assert vpn["healthy"] and vpn["error"] is None and vpn["forwarded_port"] == 41234
    assert vpn["version"] is None and vpn["public_ip"] is None
    assert len(vpn["warnings"]) == 2
    assert vpn["warnings"][0].startswith("version unknown: Gluetun 'g'")
    assert "Fix:" in vpn["warnings"][0] and "GET /v1/publicip/ip as well (same fix)" in vpn["warnings"][1]


def test_per_instance_credentials(fake):
    s1, d1 = sim(fake, "g1", version="latest", default_role={"auth": "apikey", "apikey": KEY})
    s2, d2 = sim(fake, "g2", version="latest", default_role={"auth": "basic", "username": "u", "password": PASSWORD})
    vpns = probe_instances(FakeDocker({"g1": d1, "g2": d2}),
                           ["g1", {"name": "g2", "username": "u", "password": PASSWORD}], api_key=KEY)
    assert [v["error"] for v in vpns] == [None, None]
    assert all("Authorization" not in r["headers"] for r in s1.requests)
    assert all("X-API-Key" not in r["headers"] for r in s2.requests)


# ------------------------------------------------------------------------------------------ forwarded port
def test_required_port_missing(fake):
    _server, doc = sim(fake, "g", version="v3.40.0", ports=[])
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], require_forwarded_port=True)
    assert vpn["healthy"] and vpn["forwarded_port"] is None and vpn["forwarded_ports"] == []
    assert vpn["error"].startswith("Failed to get forwarded port from Gluetun 'g': no port is forwarded (yet)")
    assert "VPN_PORT_FORWARDING=on" in vpn["error"]
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"])
    assert vpn["error"] is None and vpn["forwarded_port"] is None


def test_port_read_error_without_requirement_is_a_warning(fake):
    _server, doc = sim(fake, "g", version="v3.41.3")
    _server.fault, _server.fault_routes = "500", {"/v1/portforward"}
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"])
    assert vpn["error"] is None and vpn["healthy"]
    assert vpn["warnings"] == ["forwarded port unknown: Gluetun 'g' at %s answered HTTP 500 Internal Server Error for "
                               "GET /v1/portforward: internal error: simulated" % _server.url]


def test_read_forwarded_ports(fake):
    s1, d1 = sim(fake, "g1", version="v3.39.0", ports=[1111])
    s2, d2 = sim(fake, "g2", version="latest", ports=[2222, 2223], default_role={"auth": "apikey", "apikey": KEY})
    s3, d3 = sim(fake, "g3", version="v3.41.3", ports=[])
    results = read_forwarded_ports(FakeDocker({"g1": d1, "g2": d2, "g3": d3}), ["g1", "g2", "g3"], api_key=KEY)
    assert [r["forwarded_ports"] for r in results] == [[1111], [2222, 2223], []]
    assert [r["port_route"] for r in results] == ["/v1/openvpn/portforwarded", "/v1/portforward", "/v1/portforward"]
    assert results[0]["error"] is None and results[1]["error"] is None
    assert results[2]["error"].startswith("Failed to get forwarded port from Gluetun 'g3': no port is forwarded")
    assert "/v1/vpn/status" not in s1.paths() + s2.paths() + s3.paths()  # only what the lookup needs


# ----------------------------------------------------------------- one way to read ports: read_ports, read_control
def _api_key_roles(version):
    new = version == "latest" or version >= "v3.41"
    route = "GET /v1/portforward" if new else "GET /v1/openvpn/portforwarded"
    return [{"name": "pool", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/version", "GET /v1/vpn/status", route]}]


@pytest.mark.parametrize("version", RELEASES)
def test_read_control_every_release_with_an_api_key(fake, version):
    """What engine_pool and stack_info read, on every release: the route the release knows, X-API-Key on every
    request, the release asked once first."""
    server, doc = sim(fake, "g", version=version, roles=_api_key_roles(version), ports=[40001, 40002])
    creds = {"api_key": KEY, "username": None, "password": None}
    control = read_control(doc, "g", 8000, creds, 5, need_ports=True)
    new = version == "latest" or version >= "v3.41"
    assert control == {"vpn_status": "running", "forwarded_port": 40001,
                       "forwarded_ports": [40001, 40002] if new else [40001], "error": None,
                       "refused": False}
    assert server.paths() == ["/v1/vpn/status", "/v1/version",
                              "/v1/portforward" if new else "/v1/openvpn/portforwarded"]
    if version != "v3.39.0":
        assert all(r["headers"].get("X-API-Key") == KEY for r in server.requests)


def test_read_control_basic_auth_and_no_port_is_none(fake):
    roles = [{"name": "m", "auth": "basic", "username": "monitor", "password": PASSWORD,
              "routes": ["GET /v1/version", "GET /v1/vpn/status", "GET /v1/portforward"]}]
    server, doc = sim(fake, "g", version="latest", roles=roles, ports=[])
    creds = {"api_key": None, "username": "monitor", "password": PASSWORD}
    control = read_control(doc, "g", 8000, creds, 5, need_ports=True)
    assert control == {"vpn_status": "running", "forwarded_port": None, "forwarded_ports": [],
                       "error": None, "refused": False}  # {"port": 0, "ports": []}
    assert server.paths() == ["/v1/vpn/status", "/v1/version", "/v1/portforward"]
    assert all(r["headers"].get("Authorization", "").startswith("Basic ") for r in server.requests)


def test_read_control_asks_nothing_it_does_not_need(fake):
    server, doc = sim(fake, "g", version="v3.41.3")
    creds = {"api_key": None, "username": None, "password": None}
    assert read_control(None, "g", 8000, creds, 5, True)["error"] is None
    stopped = inspect_doc("g", host_port=server.port, status="exited")
    assert read_control(stopped, "g", 8000, creds, 5, True)["error"] is None
    assert server.paths() == []
    # The VPN status is always read (Docker's health does not tell a VPN stopped through the control server);
    # the forwarded port only when asked for.
    assert read_control(doc, "g", 8000, creds, 5, need_ports=False) == {
        "vpn_status": "running", "forwarded_port": None, "forwarded_ports": [], "error": None, "refused": False}
    assert server.paths() == ["/v1/vpn/status"]


def test_read_control_errors_are_text(fake):
    creds = {"api_key": None, "username": None, "password": None}
    hidden = inspect_doc("g", host_port=None, network_mode="none")
    assert read_control(hidden, "g", 8001, creds, 5, True)["error"] == (
        "Cannot access Gluetun API of 'g': port 8001/tcp is not published and the container has no address "
        "reachable from here; publish it (e.g. \"127.0.0.1:8001:8001\") or check api_port")
    server, doc = sim(fake, "g", version="latest")
    error = read_control(doc, "g", 8000, creds, 5, need_ports=True)["error"]
    assert "answered 401 Unauthorized for GET /v1/vpn/status" in error
    assert server.paths() == ["/v1/vpn/status"]


def test_read_control_waits_for_a_port_only_when_forwarding_is_on(fake, clock):
    server = fake(version="v3.41.3", ports=[])
    creds = {"api_key": None, "username": None, "password": None}
    doc = inspect_doc("g", host_port=server.port, env=["VPN_PORT_FORWARDING=on"])
    clock.at(2.5, lambda: setattr(server, "ports", [45678]))
    control = read_control(doc, "g", 8000, creds, 5, need_ports=True, port_wait=10)
    assert control["forwarded_port"] == 45678 and clock.sleeps == [1, 1, 1]
    server.ports = []
    off = inspect_doc("g", host_port=server.port)
    assert read_control(off, "g", 8000, creds, 5, True, port_wait=10)["forwarded_port"] is None
    assert clock.sleeps == [1, 1, 1]  # forwarding off: no port is coming, nothing to wait for


def test_read_ports_is_the_probes_path_too(fake, monkeypatch):
    """gluetun_status and the lookup read ports through read_ports as well (the release is not asked twice)."""
    from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_probe
    seen = []
    real = _gluetun_probe.read_ports

    def spy(client, *args, **kwargs):
        seen.append(client.base_url)
        return real(client, *args, **kwargs)

    monkeypatch.setattr(_gluetun_probe, "read_ports", spy)
    server, doc = sim(fake, "g", version="v3.40.0", ports=[1234])
    [result] = read_forwarded_ports(FakeDocker({"g": doc}), ["g"])
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"])
    assert result["forwarded_port"] == 1234 and vpn["forwarded_port"] == 1234
    assert seen == [server.url, server.url]
    assert server.paths().count("/v1/version") == 2  # once per call, by the probe itself


def test_read_ports_follows_the_old_routes_redirect_with_the_key(fake):
    server = fake(version="v3.41.3", default_role={"auth": "apikey", "apikey": KEY}, ports=[])
    client = GluetunClient(server.url, api_key=KEY)
    client.port_route = "/v1/openvpn/portforwarded"
    assert read_ports(client) == []  # 0 = none
    assert server.paths() == ["/v1/version", "/v1/openvpn/portforwarded", "/v1/portforward"]
    assert [r["headers"].get("X-API-Key") for r in server.requests] == [KEY, KEY, KEY]


def test_docker_host_address():
    assert docker_host_address(None) == "127.0.0.1"
    assert docker_host_address("unix:///var/run/docker.sock") == "127.0.0.1"
    assert docker_host_address("tcp://10.0.0.5:2375") == "10.0.0.5"
    assert docker_host_address("ssh://root@host.example") == "host.example"


# ------------------------------------------------------------------------------------------------ waiting
# On the fake clock (the ``clock`` fixture): it moves only when the probe sleeps between polls.
def test_wait_until_healthy_and_port(fake, clock):
    server = fake(version="v3.41.3", vpn_status="starting", ports=[])
    state = {"health": "starting"}
    docker = FakeDocker({"g": lambda: inspect_doc("g", host_port=server.port, health=state["health"])})

    def up():
        server.vpn_status = "running"
        state["health"] = "healthy"
        clock.at(clock.elapsed() + 0.5, lambda: setattr(server, "ports", [45678]))

    clock.at(0.8, up)
    [vpn] = probe_instances(docker, ["g"], wait_timeout=10, require_forwarded_port=True)
    assert vpn["healthy"] and vpn["forwarded_port"] == 45678 and vpn["error"] is None
    # polls at 0, 0.5, 1 (healthy from 0.8 s, but no port yet) and 1.5 s (the port came at 1.5 s): healthy alone
    # was not enough, and the wait ended at the first poll that saw the port, far before wait_timeout
    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert docker.calls == ["g"] * 4


def test_wait_gives_up_with_the_last_reason(fake, clock):
    _server, doc = sim(fake, "g", health="starting", version="v3.41.3")
    docker = FakeDocker({"g": doc})
    [vpn] = probe_instances(docker, ["g"], wait_timeout=1)
    assert clock.sleeps == [0.5, 0.5] and docker.calls == ["g"] * 3  # polled for the whole second, not longer
    assert vpn["error"].startswith("after waiting 1s: VPN container 'g' is not healthy yet")


def test_401_ends_the_wait_at_once(fake, clock):
    server, doc = sim(fake, "g", version="latest")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], wait_timeout=30)
    assert clock.sleeps == [] and server.paths().count("/v1/vpn/status") == 1  # one round, no wait
    assert "401 Unauthorized for GET /v1/vpn/status" in vpn["error"]


# ------------------------------------------------------------------------------------------ vpn_status PUT
def test_vpn_status_converges_and_is_idempotent(fake):
    _server, doc = sim(fake, "g", version="v3.41.3", vpn_status="stopped")
    docker = FakeDocker({"g": doc})
    [vpn] = probe_instances(docker, ["g"], vpn_status="running")
    assert vpn["changed"] and vpn["vpn_status"] == "running" and vpn["error"] is None
    assert [r["method"] for r in _server.requests].count("PUT") == 1
    [vpn] = probe_instances(docker, ["g"], vpn_status="running")
    assert not vpn["changed"] and [r["method"] for r in _server.requests].count("PUT") == 1


def test_vpn_status_check_mode_sends_nothing(fake):
    _server, doc = sim(fake, "g", version="v3.40.0", vpn_status="running")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], vpn_status="stopped", check_mode=True, wait_timeout=5)
    assert vpn["changed"] and vpn["vpn_status"] == "running" and vpn["error"] is None
    assert "PUT" not in [r["method"] for r in _server.requests]


def test_vpn_status_stopped_is_not_a_failure(fake):
    _server, doc = sim(fake, "g", version="v3.41.3")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], vpn_status="stopped", require_forwarded_port=True)
    assert vpn["changed"] and vpn["vpn_status"] == "stopped" and not vpn["healthy"] and vpn["error"] is None
    assert json.loads(_server.requests[[r["method"] for r in _server.requests].index("PUT")]["body"]) == {
        "status": "stopped"}


def test_vpn_status_starting_is_not_put_again(fake):
    _server, doc = sim(fake, "g", version="v3.41.3", vpn_status="starting")
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], vpn_status="running")
    assert not vpn["changed"] and "PUT" not in [r["method"] for r in _server.requests]


def test_vpn_status_put_unanswered_in_time_counts_as_sent(fake, clock):
    """Gluetun answers the PUT once its loop has moved: a timeout means "sent", so changed, and a wait goes on."""
    _server, doc = sim(fake, "g", version="v3.41.3", vpn_status="stopped")
    _server.put_hangs = True
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], vpn_status="running", timeout=0.4)
    assert vpn["changed"] is True
    assert "did not answer PUT /v1/vpn/status within 0.4s (timeout)" in vpn["error"]
    _server.vpn_status = "stopped"
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], vpn_status="running", timeout=0.4, wait_timeout=5)
    assert vpn["changed"] is True and vpn["healthy"] and vpn["error"] is None
    assert [r["method"] for r in _server.requests].count("PUT") == 2  # one per run, never repeated
    assert clock.sleeps == [0.5]  # the second run polled again after its unanswered PUT


def test_vpn_status_put_refused(fake):
    roles = [{"name": "r", "auth": "apikey", "apikey": KEY,
              "routes": ["GET /v1/version", "GET /v1/vpn/status", "GET /v1/portforward", "GET /v1/publicip/ip"]}]
    _server, doc = sim(fake, "g", version="v3.41.3", vpn_status="stopped", roles=roles)
    [vpn] = probe_instances(FakeDocker({"g": doc}), ["g"], vpn_status="running", api_key=KEY, wait_timeout=10)
    assert "401 Unauthorized for PUT /v1/vpn/status" in vpn["error"] and not vpn["changed"]


# -------------------------------------------------------------------------------------------- parallelism
# Without a clock: the fake servers number every request and stall in one sequence (gluetun_fake.next_seq),
# which tells which requests were open at the same moment.
def test_ten_servers_one_hung_answer_within_timeout_plus_one_second(fake, socket_timeouts):
    servers = [fake(version="v3.41.3", ports=[40000 + i]) for i in range(10)]
    hung = servers[6]
    hung.fault = "hang"
    for server in servers:
        if server is not hung:
            server.hold = hung.stalled  # the others answer only once the hung one holds its request
    docker = FakeDocker(dict(("g%d" % i, inspect_doc("g%d" % i, host_port=s.port)) for i, s in enumerate(servers)))
    vpns = probe_instances(docker, ["g%d" % i for i in range(10)], timeout=1.5)
    assert [v["name"] for v in vpns] == ["g%d" % i for i in range(10)]
    assert [v["forwarded_port"] for v in vpns] == [40000 + i if i != 6 else None for i in range(10)]
    assert "did not answer GET /v1/version within 1.5s (timeout)" in vpns[6]["error"]
    assert all(v["error"] is None for i, v in enumerate(vpns) if i != 6)
    assert len(hung.requests) == 1  # not asked again after the timeout
    # the hung request costs its timeout and no more: every socket wait bounded by it, the client hung up on its
    # own; the nine others were answered while it was held, not after it (asked one after the other, g0 would
    # have waited for g6 in vain)
    assert socket_timeouts.bounded_by(1.5), socket_timeouts
    [stall] = hung.ended_stalls()
    assert stall["ended"] == "client closed"
    others = [server for server in servers if server is not hung]
    assert all(server.requests for server in others)
    assert all(r["done"] is not None and stall["start"] < r["done"] < stall["end"] for s in others for r in s.requests)


def test_nine_hung_of_ten_still_cost_the_timeout_once(fake, socket_timeouts):
    servers = [fake(version="v3.41.3", ports=[40000 + i]) for i in range(10)]
    for server in servers[1:]:
        server.fault = "hang"
    docker = FakeDocker(dict(("g%d" % i, inspect_doc("g%d" % i, host_port=s.port)) for i, s in enumerate(servers)))
    vpns = probe_instances(docker, ["g%d" % i for i in range(10)], timeout=1)
    assert vpns[0]["error"] is None and all("within 1s (timeout)" in v["error"] for v in vpns[1:])
    # the nine hung requests were all open at one moment (the last began before the first ended): the timeout
    # was paid once, in parallel, not nine times one after the other; each client hung up on its own
    assert socket_timeouts.bounded_by(1), socket_timeouts
    stalls = [stall for server in servers[1:] for stall in server.ended_stalls()]
    assert len(stalls) == 9 and all(stall["ended"] == "client closed" for stall in stalls)
    assert max(stall["start"] for stall in stalls) < min(stall["end"] for stall in stalls)


def test_results_keep_input_order_whatever_finishes_first(fake):
    slow = fake(version="v3.41.3", ports=[1])
    slow.fault, slow.fault_routes = "trickle", {"/v1/publicip/ip"}
    quick = fake(version="v3.41.3", ports=[2])
    docker = FakeDocker({"slow": inspect_doc("slow", host_port=slow.port), "quick": inspect_doc("quick", host_port=quick.port)})
    vpns = probe_instances(docker, ["slow", "quick"], timeout=0.5)
    assert [v["name"] for v in vpns] == ["slow", "quick"]
    assert vpns[0]["error"].startswith("Gluetun 'slow' at") and "did not answer GET /v1/publicip/ip" in vpns[0]["error"]


# ------------------------------------------------------------------------------------------------ secrets
def test_no_secret_in_any_result(fake):
    cases = [
        fake(version="latest"),                                                   # 401 everywhere
        fake(version="v3.41.3", roles=[{"name": "a", "auth": "basic", "username": "u", "password": "other",
                                        "routes": ["GET /v1/vpn/status"]}]),       # basic refused
        fake(version="v3.41.3"),                                                  # fine
    ]
    cases[2].fault = "nonjson"
    for creds in ({"api_key": KEY}, {"username": "u", "password": PASSWORD}):
        instances = [dict(name="g%d" % i, api_url=s.url, **creds) for i, s in enumerate(cases)]
        vpns = probe_instances(None, instances, require_forwarded_port=True, vpn_status="running")
        text = json.dumps(vpns)
        assert KEY not in text and PASSWORD not in text
        assert all(v["error"] for v in vpns)


# ------------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("field, value, phrase", HOSTILE)
def test_hostile_credentials_refused_before_any_request_or_docker_call(fake, field, value, phrase):
    server = fake(version="v3.41.3")
    docker = FakeDocker({})
    with pytest.raises(GluetunConfigError) as err:
        probe_instances(docker, [{"name": "g1", "api_url": server.url}], **hostile_args(field, value))
    assert str(err.value).startswith("module options: " + phrase)
    assert_no_secret(value, str(err.value))
    with pytest.raises(GluetunConfigError) as err:
        read_forwarded_ports(docker, [dict(hostile_args(field, value), name="g1", api_url=server.url)])
    assert str(err.value).startswith("instances[0] (g1): " + phrase)
    assert_no_secret(value, str(err.value))
    assert server.requests == [] and docker.calls == []


@pytest.mark.parametrize("timeout, wait, message", [
    (float("nan"), 0, "timeout: nan is not a finite number; use a number of seconds above 0, e.g. 5"),
    (float("inf"), 0, "timeout: inf is not a finite number"),
    (5, float("nan"), "wait_timeout: nan is not a finite number; use 0 (do not wait) or a number of seconds"),
    (5, float("inf"), "wait_timeout: inf is not a finite number"),
    (5, float("-inf"), "wait_timeout: -inf is not a finite number"),
])
def test_nan_and_infinite_timeouts_are_refused_by_name(fake, timeout, wait, message):
    server = fake(version="v3.41.3")
    with pytest.raises(GluetunConfigError) as err:
        probe_instances(None, [{"name": "g", "api_url": server.url}], timeout=timeout, wait_timeout=wait)
    assert str(err.value).startswith(message)
    assert server.requests == []


@pytest.mark.parametrize("instances, message", [
    (["gluetun1\n"], "instances[0]: name 'gluetun1\\n' is not a Docker container name"),
    ([{"name": "glue tun"}], "instances[0]: name 'glue tun' is not a Docker container name"),
    ([{"name": ["g1"]}], "instances[0] has no name: give the Gluetun container name (a string), not a list"),
    ([{"name": None}], "instances[0] has no name: give the Gluetun container name (a string), not null"),
    ([{"name": "remote\n", "api_url": "http://127.0.0.1:1"}], "instances[0]: name 'remote\\n' holds a line break"),
])
def test_instance_names_with_a_final_newline_or_of_another_type_are_refused(instances, message):
    with pytest.raises(GluetunConfigError) as err:
        normalize_instances(instances)
    assert str(err.value).startswith(message), str(err.value)


def test_a_label_with_api_url_may_be_any_text():
    [instance] = normalize_instances([{"name": "remote VPN (office)", "api_url": "http://127.0.0.1:1"}])
    assert instance["name"] == "remote VPN (office)"


@pytest.mark.parametrize("env", ["HTTP_CONTROL_SERVER_ADDRESS=:800\u00b2", "HTTP_CONTROL_SERVER_ADDRESS=:\uff18\uff10"])
def test_control_port_with_non_ascii_digits_is_unknown(env):
    assert configured_control_port(inspect_doc("g", env=[env])) is None


@pytest.mark.parametrize("api_port", ["800\u00b2", "\uff18\uff10\uff10\uff10"])
def test_api_port_with_non_ascii_digits_is_refused_by_name(api_port):
    with pytest.raises(GluetunConfigError, match="api_port must be a TCP port number between 1 and 65535"):
        normalize_instances(["g"], api_port=api_port)


def test_an_unexpected_error_never_shows_a_credential(fake, monkeypatch):
    """Defence in depth: whatever an exception quotes of the credentials is scrubbed from the instance's error."""
    server = fake(version="v3.41.3")
    password = "p\u00e4ss-" + PASSWORD_CORE
    token = base64.b64encode(("monitor:%s" % password).encode()).decode()

    def explode(self):
        raise ValueError("Invalid header value %r, %r, %s, %r" % (
            password.encode(), password, token, password.encode("latin-1", "backslashreplace")))

    monkeypatch.setattr(GluetunClient, "vpn_status", explode)
    [vpn] = probe_instances(None, [{"name": "g1", "api_url": server.url, "username": "monitor",
                                    "password": password}])
    assert vpn["error"].startswith("Unexpected error probing Gluetun 'g1': ValueError: Invalid header value ")
    assert vpn["error"].count("********") == 4, vpn["error"]
    assert_no_secret(password, vpn["error"])
    assert token not in vpn["error"]


def test_scrub_secrets_replaces_every_form():
    instance = {"api_key": "k\u00e9y-" + KEY_CORE, "username": None, "password": None}
    key = instance["api_key"]
    text = "a %s b %r c %r d %s" % (key, key.encode(), key, ascii(key))
    scrubbed = scrub_secrets(text, instance)
    assert_no_secret(instance["api_key"], scrubbed)
    assert scrubbed.startswith("a ******** b ")


def test_unknown_fields_of_any_type_are_named():
    with pytest.raises(GluetunConfigError, match=r"^instances\[0\] has unknown fields: 1, apikey \(allowed: name, "):
        normalize_instances([{"name": "g", 1: "x", "apikey": "y"}])


def test_read_control_marks_a_refused_key_which_waiting_does_not_fix(fake):
    server, doc = sim(fake, "g", version="v3.41.1", roles=_api_key_roles("v3.41.1"))
    control = read_control(doc, "g", 8000, {"api_key": "not-the-key", "username": None, "password": None}, 5, True)
    assert control["refused"] is True and "401 Unauthorized" in control["error"]
    assert server.paths()[0] == "/v1/vpn/status"
