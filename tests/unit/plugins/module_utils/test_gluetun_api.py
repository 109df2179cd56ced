# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Gluetun control-server client against real local HTTP servers, one per release behaviour."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gluetun_fake import RELEASES, refused_url
from secret_check import HOSTILE, KEY_CORE, assert_no_secret, hostile_args

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import read_control
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import (
    GluetunClient,
    GluetunConfigError,
    GluetunHTTPError,
    GluetunInvalidResponse,
    GluetunTimeout,
    GluetunUnauthorized,
    GluetunUnreachable,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    check_credentials,
    check_seconds,
    json_nested_deeper_than,
    parse_version,
    ports_from_answer,
    seconds_problem,
    validate_api_url,
)

KEY = "S3cretKeyValue22chars0"
PASSWORD = "hunter2-very-secret"


# ------------------------------------------------------------------------------------------ pure helpers
@pytest.mark.parametrize("text, expected", [
    ("v3.41.1", (3, 41, 1)), ("3.40.0", (3, 40, 0)), ("v3.39", (3, 39, 0)), ("latest", None), (None, None),
    ("abcdef0", None),
])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("answer, ports", [
    ({"port": 41234}, [41234]),
    ({"port": 0}, []),
    ({"ports": [1001, 1002, 1003]}, [1001, 1002, 1003]),
    ({"port": 1001, "ports": [1001, 1002]}, [1001, 1002]),
    ({"port": 0, "ports": None}, []),
    ({"port": 0, "ports": []}, []),
    ({"ports": []}, []),
    ({"port": 5000, "ports": None}, [5000]),
])
def test_ports_from_every_answer_shape(answer, ports):
    assert ports_from_answer(answer) == ports


@pytest.mark.parametrize("answer, message", [
    ({}, "no 'port' or 'ports'"),
    ([], "no 'port' or 'ports'"),
    ({"port": "41234"}, "'port' holds '41234'"),
    ({"port": True}, "'port' holds True"),
    ({"ports": 5}, "'ports' is not a list"),
    ({"ports": [70000]}, "'ports' holds 70000"),
])
def test_ports_from_answer_rejects_other_shapes(answer, message):
    with pytest.raises(ValueError, match=message):
        ports_from_answer(answer)


def test_validate_api_url_normalises_and_rejects():
    assert validate_api_url(" http://127.0.0.1:8001/ ") == "http://127.0.0.1:8001"
    assert validate_api_url("https://vpn.example.com/gluetun/") == "https://vpn.example.com/gluetun"
    with pytest.raises(GluetunConfigError) as err:
        validate_api_url("http://admin:%s@127.0.0.1:8001" % PASSWORD)
    assert "must not carry credentials" in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(GluetunConfigError, match="not an http:// or https:// URL"):
        validate_api_url("ftp://127.0.0.1")
    with pytest.raises(GluetunConfigError, match="not an http:// or https:// URL"):
        validate_api_url("127.0.0.1:8001")
    with pytest.raises(GluetunConfigError, match="invalid port"):
        validate_api_url("http://127.0.0.1:99999")
    with pytest.raises(GluetunConfigError, match="query or fragment"):
        validate_api_url("http://127.0.0.1:8001/?api_key=x")
    with pytest.raises(GluetunConfigError, match="non-empty URL"):
        validate_api_url("")


def test_check_credentials_names_the_fields():
    with pytest.raises(GluetunConfigError) as err:
        check_credentials(KEY, "admin", PASSWORD, where="instances[0] (gluetun1)")
    text = str(err.value)
    assert "instances[0] (gluetun1): api_key cannot be used together with username/password" in text
    assert KEY not in text and PASSWORD not in text
    with pytest.raises(GluetunConfigError, match="username and password must be given together"):
        check_credentials(None, "admin", None)
    with pytest.raises(GluetunConfigError, match="username and password must be given together"):
        check_credentials(None, None, PASSWORD)
    check_credentials(KEY)
    check_credentials(None, "admin", PASSWORD)
    check_credentials()


# ------------------------------------------------------------------------------------------ every release
@pytest.mark.parametrize("version", RELEASES)
def test_every_release_without_auth_file(fake, version):
    """No auth file: the public role (v3.39.1..v3.41.3) or no auth layer (v3.39.0) answers; latest says 401."""
    server = fake(version=version)
    client = GluetunClient(server.url, name="gluetun1")
    if version == "latest":
        with pytest.raises(GluetunUnauthorized) as err:
            client.vpn_status()
        assert "GET /v1/vpn/status" in str(err.value)
        return
    assert client.version()["version"] == version
    assert client.vpn_status() == "running"
    assert client.forwarded_ports() == [41234]
    expected = "/v1/portforward" if version >= "v3.41" else "/v1/openvpn/portforwarded"
    assert client.port_route == expected
    port_paths = [p for p in server.paths() if "portforward" in p]
    assert port_paths == [expected]  # the release read first decided the route: no failed attempt
    ip = client.public_ip()
    assert ip["public_ip"] == "203.0.113.7" and ip["country"] == "Netherlands" and ip["city"] == "Amsterdam"
    assert ip["hostname"] is None  # empty strings become None


@pytest.mark.parametrize("version", RELEASES)
def test_every_release_with_api_key_default_role_or_file(fake, version):
    """A role in the auth file listing the routes this release knows, with an API key."""
    new = version == "latest" or version >= "v3.41"
    port_route = "GET /v1/portforward" if new else "GET /v1/openvpn/portforwarded"
    roles = [{"name": "acestream", "auth": "apikey", "apikey": KEY,
              "routes": ["GET /v1/version", "GET /v1/vpn/status", port_route, "GET /v1/publicip/ip"]}]
    server = fake(version=version, roles=roles, ports=[40001, 40002])
    client = GluetunClient(server.url, api_key=KEY, name="gluetun1")
    client.version()
    assert client.vpn_status() == "running"
    assert client.forwarded_ports() == ([40001, 40002] if new else [40001])
    if version != "v3.39.0":
        assert all(r["headers"].get("X-API-Key") == KEY for r in server.requests)
        with pytest.raises(GluetunUnauthorized):
            GluetunClient(server.url, name="gluetun1").vpn_status()
    else:
        assert GluetunClient(server.url).vpn_status() == "running"  # no auth layer in v3.39.0


def test_multi_port_answer_without_port_field_v3_41_1(fake):
    server = fake(version="v3.41.1", ports=[1001, 1002, 1003])
    assert GluetunClient(server.url).forwarded_ports() == [1001, 1002, 1003]


def test_null_ports_answer_latest_means_none(fake):
    server = fake(version="latest", default_role={"auth": "apikey", "apikey": KEY}, ports=[])
    assert GluetunClient(server.url, api_key=KEY).forwarded_ports() == []
    assert json.loads(GluetunClient(server.url, api_key=KEY).request("GET", "/v1/portforward").body) == {
        "port": 0, "ports": None}


def test_old_route_redirect_followed_with_the_same_credentials(fake):
    server = fake(version="v3.41.3", default_role={"auth": "apikey", "apikey": KEY})
    client = GluetunClient(server.url, api_key=KEY)
    client.port_route = "/v1/openvpn/portforwarded"
    assert client.forwarded_ports() == [41234]
    assert server.paths() == ["/v1/openvpn/portforwarded", "/v1/portforward"]
    assert [r["headers"].get("X-API-Key") for r in server.requests] == [KEY, KEY]
    assert client.port_route == "/v1/portforward"  # remembered after the redirect


def test_redirect_with_basic_auth_keeps_authorization(fake):
    roles = [{"name": "m", "auth": "basic", "username": "monitor", "password": PASSWORD,
              "routes": ["GET /v1/openvpn/portforwarded", "GET /v1/portforward"]}]
    server = fake(version="v3.41.1", roles=roles)
    resp = GluetunClient(server.url, username="monitor", password=PASSWORD).request("GET", "/v1/openvpn/portforwarded")
    assert resp.status == 200 and resp.route == "/v1/portforward"
    assert all(r["headers"].get("Authorization", "").startswith("Basic ") for r in server.requests)


def test_redirect_to_another_server_is_not_followed(fake):
    server = fake(version="v3.41.3")
    server.fault = "offsite"
    client = GluetunClient(server.url, api_key=KEY, name="gluetun1")
    with pytest.raises(GluetunInvalidResponse) as err:
        client.request("GET", "/v1/openvpn/portforwarded")
    assert "redirected GET /v1/openvpn/portforwarded to another server" in str(err.value)
    assert len(server.requests) == 1 and KEY not in str(err.value)


def test_unknown_version_falls_back_to_the_old_route_after_401(fake):
    """v3.40 with a role that allows neither /v1/version nor (unknown to it) /v1/portforward: 401, then old route."""
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY,
              "routes": ["GET /v1/vpn/status", "GET /v1/openvpn/portforwarded"]}]
    server = fake(version="v3.40.0", roles=roles)
    client = GluetunClient(server.url, api_key=KEY)
    with pytest.raises(GluetunUnauthorized):
        client.version()
    assert client.forwarded_ports() == [41234]
    assert server.paths()[-2:] == ["/v1/portforward", "/v1/openvpn/portforwarded"]
    assert client.port_route == "/v1/openvpn/portforwarded"


def test_v3_39_0_answers_400_to_the_new_route_and_the_client_falls_back(fake):
    server = fake(version="v3.39.0")
    client = GluetunClient(server.url)  # release not read first
    assert client.forwarded_ports() == [41234]
    assert server.paths() == ["/v1/portforward", "/v1/openvpn/portforwarded"]


def test_vpn_status_falls_back_to_openvpn_status_where_absent(fake):
    server = fake(version="v3.39.0")
    server.absent = {"/v1/vpn/status"}
    client = GluetunClient(server.url)
    assert client.vpn_status() == "running"
    assert server.paths() == ["/v1/vpn/status", "/v1/openvpn/status"]
    assert client.status_route == "/v1/openvpn/status"
    client.vpn_status()
    assert server.paths()[-1] == "/v1/openvpn/status"  # remembered


def test_vpn_status_401_is_not_hidden_by_the_openvpn_fallback(fake):
    """/v1/openvpn/status says 'stopped' for WireGuard: never use it to hide a refused /v1/vpn/status."""
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/openvpn/status"]}]
    server = fake(version="v3.41.3", roles=roles)
    with pytest.raises(GluetunUnauthorized, match="GET /v1/vpn/status"):
        GluetunClient(server.url, api_key=KEY).vpn_status()
    assert server.paths() == ["/v1/vpn/status"]


# ------------------------------------------------------------------------------------------------ 401
def test_401_names_route_container_and_fix_without_the_key(fake):
    roles = [{"name": "a", "auth": "apikey", "apikey": "other-key", "routes": ["GET /v1/vpn/status"]}]
    server = fake(version="v3.41.3", roles=roles)
    client = GluetunClient(server.url, api_key=KEY, name="gluetun2")
    with pytest.raises(GluetunUnauthorized) as err:
        client.vpn_status()
    text = str(err.value)
    assert "Gluetun 'gluetun2' at %s answered 401 Unauthorized for GET /v1/vpn/status" % server.url in text
    assert "the api_key sent was refused, or no role of the auth file lists this route" in text
    assert 'add "GET /v1/vpn/status" to the routes of a role in /gluetun/auth/config.toml' in text
    assert "HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE" in text and "X-API-Key" in text
    assert KEY not in text and err.value.retriable is False


def test_401_without_credentials_says_none_were_sent(fake):
    server = fake(version="latest")
    with pytest.raises(GluetunUnauthorized) as err:
        GluetunClient(server.url, name="g").public_ip()
    assert "no credentials were sent" in str(err.value) and "GET /v1/publicip/ip" in str(err.value)


def test_401_on_both_port_routes_latest_names_the_new_route(fake):
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/vpn/status"]}]
    server = fake(version="latest", roles=roles)
    client = GluetunClient(server.url, api_key=KEY, name="g")
    with pytest.raises(GluetunUnauthorized) as err:
        client.forwarded_ports()
    text = str(err.value)
    assert "401 Unauthorized for GET /v1/portforward (and GET /v1/openvpn/portforwarded)" in text
    assert "redirects here: this route needs its own entry" in text


def test_401_after_redirect_names_the_target_route(fake):
    """The old route is allowed but its 301 target is not: the message names GET /v1/portforward."""
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/version", "GET /v1/openvpn/portforwarded"]}]
    server = fake(version="v3.41.3", roles=roles)
    client = GluetunClient(server.url, api_key=KEY)
    client.version()
    client.port_route = "/v1/openvpn/portforwarded"
    with pytest.raises(GluetunUnauthorized) as err:
        client.forwarded_ports()
    assert "401 Unauthorized for GET /v1/portforward:" in str(err.value)


def test_401_on_v3_40_old_route_advises_against_the_new_route(fake):
    roles = [{"name": "a", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/version"]}]
    server = fake(version="v3.40.0", roles=roles)
    client = GluetunClient(server.url, api_key=KEY)
    client.version()
    with pytest.raises(GluetunUnauthorized) as err:
        client.forwarded_ports()
    text = str(err.value)
    assert "GET /v1/openvpn/portforwarded" in text and "listing it stops Gluetun" in text
    assert "HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE" not in text  # v3.41.0+ only
    assert server.paths() == ["/v1/version", "/v1/openvpn/portforwarded"]  # the release decided the route


def test_basic_auth_refused_mentions_username_password(fake):
    roles = [{"name": "m", "auth": "basic", "username": "monitor", "password": "right", "routes": ["GET /v1/vpn/status"]}]
    server = fake(version="v3.41.1", roles=roles)
    assert GluetunClient(server.url, username="monitor", password="right").vpn_status() == "running"
    with pytest.raises(GluetunUnauthorized) as err:
        GluetunClient(server.url, username="monitor", password=PASSWORD).vpn_status()
    assert "the username/password sent was refused" in str(err.value) and PASSWORD not in str(err.value)


# ------------------------------------------------------------------------------------------------ faults
def test_connection_refused_keeps_the_seed_wording():
    url = refused_url()
    client = GluetunClient(url, name="gluetun1", api_port=8001, hints=["a caller hint"])
    with pytest.raises(GluetunUnreachable) as err:
        client.vpn_status()
    text = str(err.value)
    assert text.startswith("Cannot access Gluetun API of 'gluetun1' at %s/v1/vpn/status: connection refused" % url)
    assert "1) a caller hint" in text
    assert "GLUETUN_API_PORT, here 8001" in text and "HTTP_CONTROL_SERVER_ADDRESS=:8001" in text
    assert 'publish it (e.g. "8001:8001")' in text


def test_unresolvable_host():
    with pytest.raises(GluetunUnreachable, match="Cannot access Gluetun API at http://gluetun.invalid:8000.*cannot resolve"):
        GluetunClient("http://gluetun.invalid:8000", timeout=2).vpn_status()


def test_hung_server_is_bounded_by_the_timeout(fake, socket_timeouts):
    server = fake()
    server.fault = "hang"
    client = GluetunClient(server.url, name="g", timeout=0.5)
    with pytest.raises(GluetunTimeout) as err:
        client.vpn_status()
    assert "did not answer GET /v1/vpn/status within 0.5s (timeout)" in str(err.value)
    assert socket_timeouts.bounded_by(0.5), socket_timeouts
    # the client hung up on its own, the server still holding the request
    assert [(s["path"], s["ended"]) for s in server.ended_stalls()] == [("/v1/vpn/status", "client closed")]


def test_trickling_body_is_bounded_by_the_timeout(fake, socket_timeouts):
    """A byte every 0.1 s never lets a read time out: the timeout bounds the whole answer, not each read."""
    server = fake()
    server.fault = "trickle"
    with pytest.raises(GluetunTimeout, match="did not answer GET /v1/vpn/status within 0.6s"):
        GluetunClient(server.url, timeout=0.6).vpn_status()
    assert socket_timeouts.bounded_by(0.6), socket_timeouts
    # the client hung up in the middle of the body, which was still coming
    assert [(s["fault"], s["ended"]) for s in server.ended_stalls()] == [("trickle", "client closed")]


def test_non_json_answer_is_a_clear_error(fake):
    server = fake()
    server.fault = "nonjson"
    with pytest.raises(GluetunInvalidResponse) as err:
        GluetunClient(server.url, name="g").vpn_status()
    text = str(err.value)
    assert "answered GET /v1/vpn/status with a body that is not JSON (HTTP 200" in text
    assert "<html>not gluetun</html>" in text and "another service" in text


def test_non_http_service_is_unreachable_not_a_crash(fake):
    server = fake()
    server.fault = "garbage"
    with pytest.raises(GluetunUnreachable, match="the connection closed without an HTTP answer"):
        GluetunClient(server.url, name="g").vpn_status()


def test_http_500_names_status_and_route(fake):
    server = fake()
    server.fault = "500"
    with pytest.raises(GluetunHTTPError) as err:
        GluetunClient(server.url, name="g").forwarded_ports()
    assert "answered HTTP 500 Internal Server Error for GET /v1/portforward: internal error: simulated" in str(err.value)


def test_wrong_shapes_are_invalid_responses(fake):
    server = fake(version="v3.41.3")
    server.fault, server.fault_routes = "nonjson", {"/v1/version"}
    client = GluetunClient(server.url)
    with pytest.raises(GluetunInvalidResponse):
        client.version()
    assert client.vpn_status() == "running"


# ------------------------------------------------------------------------------------------------ PUT
def test_put_vpn_status_sends_json_and_returns_the_outcome(fake):
    server = fake(version="v3.41.3", vpn_status="stopped")
    client = GluetunClient(server.url)
    assert client.set_vpn_status("running") == "running"
    assert server.requests[-1]["method"] == "PUT" and json.loads(server.requests[-1]["body"]) == {"status": "running"}
    assert client.set_vpn_status("running") == "already running"
    with pytest.raises(GluetunConfigError, match="vpn_status must be 'running' or 'stopped'"):
        client.set_vpn_status("paused")


def test_put_refused_names_the_put_route(fake):
    roles = [{"name": "r", "auth": "apikey", "apikey": KEY, "routes": ["GET /v1/vpn/status"]}]
    server = fake(version="v3.41.1", roles=roles)
    with pytest.raises(GluetunUnauthorized, match='401 Unauthorized for PUT /v1/vpn/status.*add "PUT /v1/vpn/status"'):
        GluetunClient(server.url, api_key=KEY).set_vpn_status("stopped")


def test_base_path_prefix_is_kept(fake):
    """A control server behind a reverse proxy path: routes are appended to it (the fake ignores the prefix)."""
    server = fake(version="v3.41.3")
    client = GluetunClient(server.url + "/gluetun")
    with pytest.raises(GluetunHTTPError) as err:
        client.vpn_status()
    assert err.value.status == 404 and server.paths()[0] == "/gluetun/v1/vpn/status"


def test_constructor_rejects_conflicting_credentials():
    with pytest.raises(GluetunConfigError, match="api_key cannot be used together with username/password"):
        GluetunClient("http://127.0.0.1:8000", api_key=KEY, username="u", password=PASSWORD)


# ------------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("field, value, phrase", HOSTILE)
def test_credentials_that_cannot_travel_in_a_header_are_refused_by_name_never_shown(field, value, phrase):
    with pytest.raises(GluetunConfigError) as err:
        check_credentials(where="instances[2] (gluetun3)", **hostile_args(field, value))
    text = str(err.value)
    assert text.startswith("instances[2] (gluetun3): " + phrase), text
    assert "allowed: " in text or "must be a string (" in text
    assert err.value.field == field and text.endswith(err.value.detail)
    assert_no_secret(value, text)


@pytest.mark.parametrize("field, value, phrase", HOSTILE)
def test_client_refuses_hostile_credentials_before_any_request(fake, field, value, phrase):
    server = fake(version="v3.41.3")
    with pytest.raises(GluetunConfigError) as err:
        GluetunClient(server.url, **hostile_args(field, value))
    assert phrase in str(err.value)
    assert_no_secret(value, str(err.value))
    assert server.requests == []


@pytest.mark.parametrize("kwargs", [
    {"api_key": "a-key with inner spaces and ~!@#$%^&*()"},
    {"username": "j\u00fcrgen", "password": "p\u00e4ss: with colon and \u20ac"},
])
def test_credentials_that_can_travel_are_sent(fake, kwargs):
    check_credentials(**kwargs)
    server = fake(version="v3.41.3")
    GluetunClient(server.url, **kwargs).vpn_status()
    assert len(server.requests) == 1


@pytest.mark.parametrize("value, zero_ok, expected", [
    (float("nan"), False, "nan is not a finite number; use a number of seconds above 0, e.g. 5"),
    (float("inf"), False, "inf is not a finite number"),
    (float("-inf"), True, "-inf is not a finite number; use 0 (do not wait) or a number of seconds, e.g. 30"),
    (0, False, "0 is not above 0"),
    (-1, True, "-1 is negative"),
    (True, False, "a boolean is not a number"),
    ("5", False, "'5' is not a number"),
    ([5], True, "a list is not a number"),
    (0, True, None),
    (0.5, False, None),
])
def test_seconds_problem(value, zero_ok, expected):
    problem = seconds_problem(value, zero_ok)
    assert problem == expected if expected is None else problem.startswith(expected), problem


def test_check_seconds_names_the_field_and_the_client_refuses_nan():
    with pytest.raises(GluetunConfigError, match="^docker_timeout: 0 is not above 0; use a number of seconds above "
                                                 "0, e.g. 60$"):
        check_seconds(0, "docker_timeout", example=60)
    assert check_seconds(3, "timeout") == 3.0
    with pytest.raises(GluetunConfigError, match="^timeout: nan is not a finite number"):
        GluetunClient("http://127.0.0.1:8000", timeout=float("nan"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000\n", "http://127.0.0.1:8000/a b", "http://127.0.0.1:\t8000",
                                 "http://127.0.0.1:8000/\x00"])
def test_api_url_with_control_characters_or_spaces_is_refused(url):
    with pytest.raises(GluetunConfigError, match="api_url"):
        validate_api_url(url)


def test_api_url_with_a_query_is_refused_without_echoing_it():
    with pytest.raises(GluetunConfigError) as err:
        validate_api_url("http://127.0.0.1:8000/?apikey=" + KEY_CORE)
    assert "must not have a query" in str(err.value)
    assert_no_secret(KEY_CORE, str(err.value))


@pytest.mark.parametrize("url, message", [
    ("http://[::1:8000", "api_url is not a URL (an IPv6 address goes in brackets"),
    ("ftp://127.0.0.1:8000/?apikey=" + KEY_CORE, "api_url must not have a query or fragment"),
    ("ftp://127.0.0.1:8000/#" + KEY_CORE, "api_url must not have a query or fragment"),
    ("http://127.0.0.1:80x0/?k=" + KEY_CORE, "api_url must not have a query or fragment"),
])
def test_api_url_refusals_never_echo_what_could_hold_a_key(url, message):
    with pytest.raises(GluetunConfigError) as err:
        validate_api_url(url)
    assert str(err.value).startswith(message), str(err.value)
    assert_no_secret(KEY_CORE, str(err.value))


# ---------------------------------------------------------------------------- one deadline per request
class LoopbackServer(object):
    """A raw TCP server on 127.0.0.1: each connection is handed to ``handle(conn)`` in a thread of its own."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _peer = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self.listener.close()


class Dribbler(LoopbackServer):
    """A server on 127.0.0.1 that answers each connection with ``head`` then ``tail`` repeated forever, one byte
    every ``interval`` seconds: every read gets a byte long before any per-read timeout, so only a deadline for the
    whole answer ends it. Sends until the client hangs up (recorded in ``hung_up``) or GUARD seconds have passed."""

    GUARD = 30.0  # only keeps a broken client from holding the test forever

    def __init__(self, head, tail, interval=0.02):
        self.head, self.tail, self.interval = head, tail, interval
        self.hung_up = threading.Event()
        super().__init__()

    def handle(self, conn):
        with conn:
            conn.recv(65536)  # the request
            ends = time.monotonic() + self.GUARD
            sent = 0
            try:
                while time.monotonic() < ends:
                    data = self.head[sent:sent + 1] or self.tail[(sent - len(self.head)) % len(self.tail):][:1]
                    conn.sendall(data)
                    sent += 1
                    time.sleep(self.interval)
            except OSError:
                self.hung_up.set()


DRIBBLES = {
    "status line": (b"HTTP/1.1 200 ", b"O"),
    "headers": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slow: ", b"a"),
    "chunked body": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n \r\n"),
    "body": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", b" "),
}


@pytest.fixture
def dribbler():
    servers = []

    def start(where):
        servers.append(Dribbler(*DRIBBLES[where]))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("where", sorted(DRIBBLES))
def test_a_server_dribbling_its_answer_is_given_up_at_the_deadline(dribbler, socket_timeouts, where):
    """A control server that sends its status line, its headers or its body (chunked or not) one byte at a time,
    forever, is given up once timeout has passed since the connect (one deadline per request, from the connect to
    the last byte), with an error naming the VPN, the route and the timeout."""
    server = dribbler(where)
    client = GluetunClient(server.url, name="gluetun1", timeout=1)
    with pytest.raises(GluetunTimeout) as err:
        client.vpn_status()
    assert str(err.value).startswith("Gluetun 'gluetun1' at %s did not answer GET /v1/vpn/status within 1s "
                                     "(timeout)" % server.url), str(err.value)
    assert socket_timeouts.bounded_by(1.0), socket_timeouts  # no read was ever given more than the time left
    # one deadline: each read is given what is left of it, never a fresh timeout
    assert all(a >= b for a, b in zip(socket_timeouts, socket_timeouts[1:])), socket_timeouts
    assert server.hung_up.wait(10)  # the client hung up while the server was still sending


def test_the_reads_of_engine_pool_and_stack_info_keep_to_the_deadline(dribbler, socket_timeouts):
    """The read engine_pool and stack_info make of a VPN (read_control) keeps to the deadline too: a control server
    dribbling its headers ends it as that VPN's error, naming the VPN and the route, not an exception."""
    server = dribbler("headers")
    port = int(server.url.rsplit(":", 1)[1])
    inspect = {"State": {"Status": "running"}, "Config": {"Env": ["VPN_PORT_FORWARDING=on"]},
               "NetworkSettings": {"Ports": {"8001/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}}
    control = read_control(inspect, "gluetun1", 8001, {"api_key": KEY}, 1, need_ports=True)
    assert control["vpn_status"] is None and control["forwarded_ports"] == []
    assert control["error"].startswith("Gluetun 'gluetun1' at %s did not answer GET /v1/vpn/status within 1s "
                                       "(timeout)" % server.url), control["error"]
    assert socket_timeouts.bounded_by(1.0), socket_timeouts  # no read was ever given more than the time left
    # one deadline: each read is given what is left of it, never a fresh timeout
    assert all(a >= b for a, b in zip(socket_timeouts, socket_timeouts[1:])), socket_timeouts


# -------------------------------------------------------------------------- bodies Gluetun never sends
class BodyServer(object):
    """A server on 127.0.0.1 answering each path with a fixed body (bytes), HTTP 200; 404 for the others."""

    def __init__(self, bodies):
        self.bodies = bodies
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = owner.bodies.get(self.path)
                status = 200 if body is not None else 404
                body = body if body is not None else b"404 page not found\n"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bodies():
    servers = []

    def start(answers):
        servers.append(BodyServer(dict((path, body if isinstance(body, bytes) else json.dumps(body).encode())
                                       for path, body in answers.items())))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


DEEP = b"[" * 100000 + b"]" * 100000  # 200 kB, well under the 1 MiB cap: a recursing parser gives up on it


@pytest.mark.parametrize("body", [DEEP, b'{"port": ' + DEEP + b"}", b'{"a":' * 50000 + b"1" + b"}" * 50000],
                         ids=["array", "in a field", "object"])
def test_a_body_nested_100000_deep_is_refused_naming_the_vpn_and_the_route(bodies, body):
    """A body nested 100000 levels deep, under the 1 MiB cap, is refused with the collection's own error naming the
    VPN and the route, on every route (never a RecursionError), and engine_pool's and stack_info's read of the VPN
    reports it as that VPN's error."""
    assert len(body) < MAX_BODY_BYTES
    paths = ["/v1/version", "/v1/vpn/status", "/v1/publicip/ip", "/v1/portforward", "/v1/openvpn/portforwarded"]
    server = bodies(dict((path, body) for path in paths))
    client = GluetunClient(server.url, name="gluetun1", timeout=5)
    for call, route in ((client.version, "/v1/version"), (client.vpn_status, "/v1/vpn/status"),
                        (client.public_ip, "/v1/publicip/ip"), (client.forwarded_ports, "/v1/portforward")):
        with pytest.raises(GluetunInvalidResponse) as err:
            call()
        assert str(err.value).startswith("Gluetun 'gluetun1' at %s answered GET %s with JSON nested more than %d "
                                         "levels deep" % (server.url, route, MAX_JSON_DEPTH)), str(err.value)
    port = int(server.url.rsplit(":", 1)[1])
    inspect = {"State": {"Status": "running"}, "Config": {"Env": []},
               "NetworkSettings": {"Ports": {"8001/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}}
    control = read_control(inspect, "gluetun1", 8001, {}, 5, need_ports=True)
    assert "answered GET /v1/vpn/status with JSON nested more than" in control["error"], control["error"]


@pytest.mark.parametrize("answers, call, message", [
    ({"/v1/version": []}, "version", "answered GET /v1/version without a valid 'version' field: []"),
    ({"/v1/version": {"version": 3.41}}, "version", "answered GET /v1/version without a valid 'version' field"),
    ({"/v1/vpn/status": {"status": ["running"]}}, "vpn_status",
     "answered GET /v1/vpn/status without a valid 'status' field"),
    ({"/v1/vpn/status": "running"}, "vpn_status", "answered GET /v1/vpn/status without a valid 'status' field"),
    ({"/v1/openvpn/status": {"status": None}}, "vpn_status",
     "answered GET /v1/openvpn/status without a valid 'status' field"),
    ({"/v1/publicip/ip": "203.0.113.7"}, "public_ip", "answered GET /v1/publicip/ip without a 'public_ip' field"),
    ({"/v1/publicip/ip": {"public_ip": 203}}, "public_ip",
     "answered GET /v1/publicip/ip with 'public_ip' that is not a string"),
    ({"/v1/publicip/ip": {"public_ip": "203.0.113.7", "country": {"name": "NL"}}}, "public_ip",
     "answered GET /v1/publicip/ip with 'country' that is not a string"),
    ({"/v1/portforward": [41000]}, "forwarded_ports",
     "answered GET /v1/portforward with an unexpected port answer (no 'port' or 'ports' field)"),
    ({"/v1/portforward": {"port": "41000"}}, "forwarded_ports", "'port' holds '41000', not a port number"),
    ({"/v1/portforward": {"ports": {"first": 41000}}}, "forwarded_ports", "'ports' is not a list"),
    ({"/v1/portforward": {"ports": [41000, 70000]}}, "forwarded_ports", "'ports' holds 70000, not a port number"),
    ({"/v1/openvpn/portforwarded": {"port": 41000.5}}, "forwarded_ports",
     "answered GET /v1/openvpn/portforwarded with an unexpected port answer ('port' holds 41000.5"),
    ({"/v1/vpn/status": b"\xff\xfe{}"}, "vpn_status", "answered GET /v1/vpn/status with a body that is not UTF-8"),
    ({"/v1/vpn/status": b"{\"status\": \"running\""}, "vpn_status",
     "answered GET /v1/vpn/status with a body that is not JSON"),
    ({"/v1/vpn/status": b"1" * 5000}, "vpn_status", "answered GET /v1/vpn/status with a body that is not JSON"),
    ({"/v1/vpn/status": b" " * (MAX_BODY_BYTES + 1)}, "vpn_status",
     "sent more than 1048576 bytes for GET /v1/vpn/status"),
])
def test_json_of_the_wrong_shape_on_every_route_is_refused_naming_the_vpn_and_the_route(bodies, answers, call,
                                                                                        message):
    """Each route the client reads, answered with JSON of the wrong type (or not UTF-8, not JSON, too large): the
    collection's own error (GluetunInvalidResponse) naming the VPN and the route, nothing else."""
    server = bodies(answers)
    client = GluetunClient(server.url, name="gluetun1", timeout=5)
    if call == "forwarded_ports" and "/v1/openvpn/portforwarded" in answers:
        client.port_route = "/v1/openvpn/portforwarded"  # a release before v3.41
    with pytest.raises(GluetunInvalidResponse) as err:
        getattr(client, call)()
    text = str(err.value)
    assert text.startswith("Gluetun 'gluetun1' at %s " % server.url) and message in text, text


class RawServer(LoopbackServer):
    """A server on 127.0.0.1 that answers every connection with ``answer`` (bytes), then closes it."""

    def __init__(self, answer):
        self.answer = answer
        super().__init__()

    def handle(self, conn):
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(self.answer)
            except OSError:
                pass


@pytest.mark.parametrize("answer, error, words", [
    (b"HTTP/1.1 301 Moved\r\nLocation: http://[::1:8000/v1/vpn/status\r\nContent-Length: 0\r\n\r\n",
     GluetunInvalidResponse, "redirected GET /v1/vpn/status to 'http://[::1:8000/v1/vpn/status', which is not a URL"),
    (b"HTTP/1.1 301 Moved\r\nLocation: /v1/vpn/st atus\r\nContent-Length: 0\r\n\r\n",
     GluetunInvalidResponse, "GET /v1/vpn/st atus cannot be read as a control server's answer (InvalidURL)"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n{}", GluetunInvalidResponse,
     "GET /v1/vpn/status cannot be read as a control server's answer (LineTooLong)"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n{}", GluetunInvalidResponse,
     "GET /v1/vpn/status cannot be read as a control server's answer (HTTPException)"),
    (b"HTTP/2.0 200 OK\r\n\r\n{}", GluetunInvalidResponse,
     "GET /v1/vpn/status cannot be read as a control server's answer (UnknownProtocol)"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", GluetunUnreachable,
     "the connection closed without an HTTP answer (IncompleteRead)"),
])
def test_answers_that_are_not_http_as_a_control_server_sends_it_are_the_collections_errors(answer, error, words):
    """Whatever a server answers (a redirect to no URL, a header line of 70000 bytes, 200 headers, a broken chunk),
    the client raises one of the collection's own errors, naming the VPN and the route."""
    server = RawServer(answer)
    try:
        with pytest.raises(error) as err:
            GluetunClient(server.url, name="gluetun1", timeout=5).vpn_status()
    finally:
        server.close()
    assert "'gluetun1'" in str(err.value) and words in str(err.value), str(err.value)


def test_a_put_answered_with_the_wrong_shape_is_no_crash(bodies):
    """PUT /v1/vpn/status answered with something else than {"outcome": ...}: its text is the outcome."""
    server = bodies({"/v1/vpn/status": [1, 2]})
    assert GluetunClient(server.url, name="gluetun1").set_vpn_status("running") == "[1, 2]"


@pytest.mark.parametrize("text, deeper", [
    ("{}", False), ('{"port": 1, "ports": [1, 2]}', False), ("[" * 32 + "]" * 32, False),
    ("[" * 33 + "]" * 33, True), ('{"a": "' + "[" * 100 + '"}', False), ('["\\\\", ' + "[" * 40 + "]" * 40 + "]", True),
    ('["\\"[[[[", 1]', False), ("[" * 100000, True),
])
def test_json_nesting_is_measured_without_recursion(text, deeper):
    assert json_nested_deeper_than(text, 32) is deeper
