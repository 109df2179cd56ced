# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The forwarded_port lookup: terms, options, one element per term, errors modes, secrets.

Real local control servers; URL terms or api_url, so that no Docker daemon is needed here (container-name
terms run in the integration suite).
"""

from __future__ import annotations

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleLookupError
from gluetun_fake import refused_url
from secret_check import HOSTILE, assert_no_secret, hostile_args

from ansible_collections.acestream.orchestrator.plugins.lookup import forwarded_port

KEY = "S3cretKeyValue22chars0"
PASSWORD = "hunter2-very-secret"
NAME = "acestream.orchestrator.forwarded_port"


@pytest.fixture
def lookup():
    C.config.initialize_plugin_configuration_definitions(
        "lookup", NAME, yaml.safe_load(forwarded_port.DOCUMENTATION)["options"])
    plugin = forwarded_port.LookupModule()
    plugin._load_name = NAME
    return plugin


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(forwarded_port.display, "warning", lambda msg, *a, **k: seen.append(msg))
    return seen


def test_one_element_per_term_every_release(fake, lookup):
    servers = [fake(version=v, ports=[40000 + i]) for i, v in enumerate(("v3.39.0", "v3.40.0", "v3.41.1", "v3.41.3"))]
    servers.append(fake(version="latest", ports=[40004], default_role={"auth": "apikey", "apikey": KEY}))
    terms = [s.url for s in servers]
    assert lookup.run(terms, {}, api_key=KEY) == [40000, 40001, 40002, 40003, 40004]
    # the same term twice is asked once, answered twice
    assert lookup.run([terms[0], terms[1], terms[0]], {}) == [40000, 40001, 40000]
    assert len([p for p in servers[0].paths() if "port" in p]) == 2


def test_all_ports(fake, lookup):
    server = fake(version="v3.41.1", ports=[1001, 1002, 1003])
    assert lookup.run([server.url], {}, all_ports=True) == [[1001, 1002, 1003]]


def test_api_url_with_a_single_term_and_basic_auth(fake, lookup):
    server = fake(version="v3.41.3", roles=[{"name": "m", "auth": "basic", "username": "mon", "password": PASSWORD,
                                             "routes": ["GET /v1/version", "GET /v1/portforward"]}])
    assert lookup.run(["gluetun1"], {}, api_url=server.url, username="mon", password=PASSWORD) == [41234]
    with pytest.raises(AnsibleLookupError, match="api_url applies to a single term"):
        lookup.run(["gluetun1", "gluetun2"], {}, api_url=server.url)


def test_strict_401_names_route_and_fix_without_secret(fake, lookup):
    server = fake(version="latest", roles=[{"name": "a", "auth": "apikey", "apikey": "other", "routes": ["GET /v1/version"]}])
    with pytest.raises(AnsibleLookupError) as err:
        lookup.run(["gluetun1"], {}, api_url=server.url, api_key=KEY)
    text = str(err.value)
    assert text.startswith("Failed to get forwarded port from Gluetun 'gluetun1': Gluetun 'gluetun1' at %s answered "
                           "401 Unauthorized for GET /v1/portforward" % server.url)
    assert "X-API-Key" in text and KEY not in text


def test_no_port_yet_is_an_error_unless_waited_for(fake, lookup, clock):
    server = fake(version="v3.41.3", ports=[])
    with pytest.raises(AnsibleLookupError, match="Failed to get forwarded port from Gluetun .*no port is forwarded"):
        lookup.run([server.url], {})
    assert clock.sleeps == [] and server.paths().count("/v1/portforward") == 1  # asked once, no wait
    clock.at(0.7, lambda: setattr(server, "ports", [43210]))
    assert lookup.run([server.url], {}, wait=5) == [43210]
    # polled every 0.5 s until the port came (at 0.7 s), answered at the first poll after: not the whole 5 s
    assert clock.sleeps == [0.5, 0.5]
    assert server.paths().count("/v1/portforward") == 1 + 3


def test_errors_warn_and_ignore(fake, lookup, warnings):
    good = fake(version="v3.41.3", ports=[5555])
    dead = refused_url()
    assert lookup.run([good.url, dead], {}, term_errors="warn") == [5555, None]
    assert len(warnings) == 1
    assert warnings[0].startswith("Failed to get forwarded port from Gluetun at %s: Cannot access Gluetun API at "
                                  "%s/v1/version: connection refused" % (dead, dead))
    assert lookup.run([good.url, dead], {}, term_errors="ignore", all_ports=True) == [[5555], []]
    assert len(warnings) == 1


def test_strict_unreachable_keeps_the_seed_wording(lookup):
    dead = refused_url()
    with pytest.raises(AnsibleLookupError) as err:
        lookup.run([dead], {})
    text = str(err.value)
    assert "Cannot access Gluetun API at %s/v1/version: connection refused" % dead in text
    assert "api_url must reach the control server" in text


def test_hung_server_bounded(fake, lookup, socket_timeouts):
    server = fake(version="v3.41.3")
    server.fault = "hang"
    with pytest.raises(AnsibleLookupError, match="did not answer GET /v1/version within 0.5s"):
        lookup.run([server.url], {}, timeout=0.5)
    # every socket wait bounded by the timeout option; the client hung up on its own, once
    assert socket_timeouts.bounded_by(0.5), socket_timeouts
    assert [(s["path"], s["ended"]) for s in server.ended_stalls()] == [("/v1/version", "client closed")]


@pytest.mark.parametrize("terms, kwargs, message", [
    ([""], {}, "terms must be Gluetun container names or URLs"),
    ([42], {}, "terms must be Gluetun container names or URLs"),
    (["http://u:%s@127.0.0.1:1" % PASSWORD], {}, "api_url must not carry credentials"),
    (["http://127.0.0.1:1"], {"api_key": KEY, "username": "u", "password": PASSWORD},
     "api_key cannot be used together with username/password"),
    (["http://127.0.0.1:1"], {"api_port": 0}, "api_port must be a TCP port number"),
    (["http://127.0.0.1:1"], {"timeout": 0}, "timeout: 0 is not above 0; use a number of seconds above 0, e.g. 5"),
    (["http://127.0.0.1:1"], {"wait": -1}, "wait: -1 is negative; use 0 \\(do not wait\\) or a number of seconds"),
    (["gluetun1"], {"username": "u", "docker_host": "unix:///nonexistent/d.sock"},
     "username and password must be given together"),  # before any connection to Docker
])
def test_invalid_options_fail_whatever_term_errors_says(lookup, terms, kwargs, message):
    with pytest.raises(AnsibleLookupError, match=message) as err:
        lookup.run(terms, {}, term_errors="ignore", **kwargs)
    assert KEY not in str(err.value) and PASSWORD not in str(err.value)


def test_container_terms_need_docker(lookup, monkeypatch, warnings):
    monkeypatch.setattr(forwarded_port, "HAS_DOCKER", False)
    with pytest.raises(AnsibleLookupError, match="needs the Docker SDK for Python .* on the controller to find the "
                                                 "control server of gluetun1"):
        lookup.run(["gluetun1"], {})
    monkeypatch.setattr(forwarded_port, "HAS_DOCKER", True)
    assert lookup.run(["gluetun1", "gluetun2"], {}, docker_host="unix:///nonexistent/d.sock", term_errors="warn") == [None, None]
    assert warnings and warnings[0].startswith("Failed to get forwarded port from Gluetun: cannot connect to the Docker "
                                               "daemon at unix:///nonexistent/d.sock (it runs on the controller)")


def test_host_address_of_docker_host():
    assert forwarded_port._host_address("unix:///var/run/docker.sock") is None
    assert forwarded_port._host_address("tcp://127.0.0.1:2375") is None
    assert forwarded_port._host_address("tcp://docker1.example.com:2376") == "docker1.example.com"
    assert forwarded_port._host_address("ssh://admin@10.0.0.12") == "10.0.0.12"


def test_errors_is_ansibles_own_keyword_and_documented_as_such():
    """Ansible pops ``errors`` before calling the plugin (whole-call semantics); per term is term_errors."""
    options = yaml.safe_load(forwarded_port.DOCUMENTATION)["options"]
    assert "handled by Ansible before this plugin runs" in options["errors"]["description"][0]
    assert options["term_errors"]["choices"] == ["strict", "warn", "ignore"]


# ------------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("field, value, phrase", HOSTILE)
@pytest.mark.parametrize("term_errors", ["strict", "ignore"])
def test_hostile_credentials_are_refused_by_name_whatever_term_errors_says(
        fake, lookup, monkeypatch, field, value, phrase, term_errors):
    server = fake(version="v3.41.3")
    asked = []
    monkeypatch.setattr(forwarded_port, "docker_client", lambda *args: asked.append(args))
    with pytest.raises(AnsibleLookupError) as err:
        lookup.run([server.url, "gluetun1"], {}, term_errors=term_errors, **hostile_args(field, value))
    assert str(err.value).startswith("forwarded_port: ") and phrase in str(err.value), str(err.value)
    assert_no_secret(value, str(err.value))
    assert server.requests == [] and asked == []


@pytest.mark.parametrize("terms, kwargs, message", [
    (["http://127.0.0.1:1"], {"timeout": float("nan")}, "timeout: nan is not a finite number; use a number of seconds"),
    (["http://127.0.0.1:1"], {"timeout": "inf"}, "timeout: inf is not a finite number"),
    (["http://127.0.0.1:1"], {"wait": float("nan")}, "wait: nan is not a finite number; use 0 (do not wait)"),
    (["http://127.0.0.1:1"], {"wait": "inf"}, "wait: inf is not a finite number"),
    (["gluetun1\n"], {}, "instances[0]: name 'gluetun1\\n' is not a Docker container name"),
    (["http://127.0.0.1:1\n"], {}, "instances[0]: name 'http://127.0.0.1:1\\n' holds a line break or other control"),
])
def test_timeouts_and_terms_of_another_kind_are_refused_by_name(lookup, monkeypatch, terms, kwargs, message):
    asked = []
    monkeypatch.setattr(forwarded_port, "docker_client", lambda *args: asked.append(args))
    with pytest.raises(AnsibleLookupError) as err:
        lookup.run(terms, {}, term_errors="ignore", **kwargs)
    assert message in str(err.value), str(err.value)
    assert asked == []


class _Vaulted(object):
    """Stands for a vaulted string as a lookup receives it: ansible-core 2.19's EncryptedString has ``_decrypt``,
    the AnsibleVaultEncryptedUnicode of 2.17 and 2.18 a ``vault``; neither is a ``str``."""

    def __init__(self, attribute):
        setattr(self, attribute, object())


@pytest.mark.parametrize("attribute", ["_decrypt", "vault"])
def test_vaulted_credentials_pass_the_type_check(attribute):
    forwarded_port._refuse_credentials_of_other_types({"api_key": _Vaulted(attribute), "password": None})
    with pytest.raises(AnsibleLookupError, match="forwarded_port: api_key must be a string"):
        forwarded_port._refuse_credentials_of_other_types({"api_key": object()})
