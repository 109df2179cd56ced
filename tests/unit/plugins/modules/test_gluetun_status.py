# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gluetun_status module's shell: arguments, validation, results, failures, check mode, secrets.

The module runs in-process with real local control servers; instances are given by api_url so that no Docker
daemon is needed (the Docker paths are covered by the probe tests and the integration suite).
"""

from __future__ import annotations

import pytest
from module_runner import fresh_module_state, run_module_main, warning_texts
from secret_check import HOSTILE, assert_no_secret, hostile_args

from ansible_collections.acestream.orchestrator.plugins.modules import gluetun_status

KEY = "S3cretKeyValue22chars0"
PASSWORD = "hunter2-very-secret"
NO_DOCKER = "unix:///nonexistent/acestream-test-docker.sock"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Ansible keeps module warnings process-wide: start each in-process run with none, as on a target (once a
    controller module is imported in the process, the lookup tests, module warnings would go to its display)."""
    fresh_module_state(monkeypatch)


def run(capsys, args, check_mode=False):
    args = dict(args)
    args.setdefault("docker_host", NO_DOCKER)
    return run_module_main(gluetun_status.main, capsys, args, check_mode=check_mode)


def test_report_for_two_instances(fake, capsys):
    s1 = fake(version="v3.40.0", ports=[40001])
    s2 = fake(version="latest", default_role={"auth": "apikey", "apikey": KEY}, ports=[40002, 40003])
    code, out, raw = run(capsys, {"instances": [{"name": "gluetun1", "api_url": s1.url},
                                                {"name": "gluetun2", "api_url": s2.url}], "api_key": KEY})
    assert code == 0 and not out.get("failed") and out["changed"] is False
    assert out["all_healthy"] is True
    assert out["forwarded_ports"] == {"gluetun1": 40001, "gluetun2": 40002}
    assert [v["name"] for v in out["vpns"]] == ["gluetun1", "gluetun2"]
    assert out["vpns"][1]["forwarded_ports"] == [40002, 40003] and out["vpns"][1]["version"] == "latest"
    assert any("does not answer" in w and "health is judged from the control servers alone" in w
               for w in warning_texts(out))
    assert KEY not in raw
    assert out["invocation"]["module_args"]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_instance_secrets_are_masked_in_the_invocation(fake, capsys):
    server = fake(version="v3.41.3")
    code, out, raw = run(capsys, {"instances": [
        {"name": "g1", "api_url": server.url, "username": "u", "password": PASSWORD},
        {"name": "g2", "api_url": server.url, "api_key": KEY}]})
    assert code == 0
    assert KEY not in raw and PASSWORD not in raw
    invocation = out["invocation"]["module_args"]["instances"]
    assert invocation[0]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert invocation[1]["api_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_failure_names_the_instance_and_keeps_the_report(fake, capsys):
    good = fake(version="v3.41.3")
    bad = fake(version="latest")
    code, out, raw = run(capsys, {"instances": [{"name": "good", "api_url": good.url},
                                                {"name": "bad", "api_url": bad.url}], "api_key": KEY})
    assert code == 1 and out["failed"]
    assert out["msg"].startswith("1 of 2 Gluetun instance(s) not ready: Gluetun 'bad' at %s answered 401 "
                                 "Unauthorized for GET /v1/vpn/status" % bad.url)
    assert out["vpns"][0]["error"] is None and out["vpns"][1]["error"] and out["all_healthy"] is False
    assert KEY not in raw


def test_fail_on_unhealthy_false_reports(fake, capsys):
    server = fake(version="v3.41.3", ports=[])
    code, out, _raw = run(capsys, {"instances": [{"name": "g", "api_url": server.url}],
                                   "require_forwarded_port": True, "fail_on_unhealthy": False})
    assert code == 0 and not out.get("failed")
    assert out["all_healthy"] is False and out["forwarded_ports"] == {"g": None}
    assert out["vpns"][0]["error"].startswith("Failed to get forwarded port from Gluetun 'g': no port is forwarded")


@pytest.mark.parametrize("args, message", [
    ({"instances": []}, "instances is empty: give at least one Gluetun container name"),
    ({"instances": [{"name": "g"}, {"name": "g"}]}, "duplicate instance name 'g' in instances[0] and instances[1]"),
    ({"instances": [{"name": "g"}], "api_key": KEY, "username": "admin", "password": PASSWORD},
     "module options: api_key cannot be used together with username/password"),
    ({"instances": [{"name": "g", "api_key": KEY, "username": "admin"}]},
     "instances[0] (g): api_key cannot be used together with username/password"),
    ({"instances": [{"name": "g"}], "username": "admin"}, "username and password must be given together"),
    ({"instances": [{"name": "g"}], "api_port": 0}, "api_port must be a TCP port number between 1 and 65535"),
    ({"instances": [{"name": "g", "api_port": 65536}]}, "instances[0] (g) api_port must be a TCP port number"),
    ({"instances": [{"name": "g"}], "wait_timeout": -1}, "wait_timeout: -1 is negative; use 0 (do not wait) or a number of seconds"),
    ({"instances": [{"name": "g"}], "timeout": 0}, "timeout: 0 is not above 0; use a number of seconds above 0, e.g. 5"),
    ({"instances": [{"name": "g", "api_url": "http://admin:%s@127.0.0.1:8001" % PASSWORD}]},
     "instances[0] (g): api_url must not carry credentials"),
])
def test_invalid_input_fails_before_any_request(capsys, args, message):
    code, out, raw = run(capsys, args)
    assert code == 1 and out["failed"]
    assert message in out["msg"]
    assert KEY not in raw and PASSWORD not in raw
    assert "Docker" not in out["msg"]


def test_check_mode_reports_the_put_without_sending_it(fake, capsys):
    server = fake(version="v3.41.3", vpn_status="running")
    code, out, _raw = run(capsys, {"instances": [{"name": "g", "api_url": server.url}], "vpn_status": "stopped"},
                          check_mode=True)
    assert code == 0 and out["changed"] is True and out["vpns"][0]["changed"] is True
    assert "PUT" not in [r["method"] for r in server.requests]


def test_vpn_status_put_then_idempotent(fake, capsys):
    server = fake(version="v3.41.3", vpn_status="stopped")
    args = {"instances": [{"name": "g", "api_url": server.url}], "vpn_status": "running"}
    code, out, _raw = run(capsys, args)
    assert code == 0 and out["changed"] is True and out["vpns"][0]["vpn_status"] == "running"
    code, out, _raw = run(capsys, args)
    assert code == 0 and out["changed"] is False
    assert [r["method"] for r in server.requests].count("PUT") == 1


def test_docker_needed_but_unreachable(capsys):
    code, out, _raw = run(capsys, {"instances": [{"name": "gluetun1"}]})
    assert code == 1
    assert out["msg"].startswith("Cannot connect to the Docker daemon at %s to find the Gluetun containers" % NO_DOCKER)


def test_missing_docker_sdk_uses_missing_required_lib(capsys, monkeypatch):
    from ansible_collections.acestream.orchestrator.plugins.module_utils import _docker_common

    monkeypatch.setattr(_docker_common, "HAS_DOCKER", False)
    monkeypatch.setattr(_docker_common, "DOCKER_IMPORT_ERROR", "Traceback: ImportError: No module named docker")
    code, out, _raw = run(capsys, {"instances": [{"name": "gluetun1"}]})
    assert code == 1
    assert "Failed to import the required Python library (docker (Docker SDK for Python >= 5.0))" in out["msg"]


def test_missing_docker_sdk_is_fine_with_api_urls(fake, capsys, monkeypatch):
    monkeypatch.setattr(gluetun_status, "HAS_DOCKER", False)
    server = fake(version="v3.41.3")
    code, out, _raw = run(capsys, {"instances": [{"name": "g", "api_url": server.url}]})
    assert code == 0 and out["vpns"][0]["healthy"] and "warnings" not in out


def test_argument_spec_matches_the_documentation():
    import yaml

    doc = yaml.safe_load(gluetun_status.DOCUMENTATION)["options"]
    spec = gluetun_status.argument_spec()
    assert set(doc) == set(spec)
    assert set(doc["instances"]["suboptions"]) == set(spec["instances"]["options"])
    for name in ("api_key", "password"):
        assert spec[name]["no_log"] is True and spec["instances"]["options"][name]["no_log"] is True


# ------------------------------------------------------------------------------------------ hostile input
@pytest.mark.parametrize("field, value, phrase", HOSTILE)
@pytest.mark.parametrize("level", ["module", "instance"])
def test_hostile_credentials_are_refused_by_name_and_never_shown(fake, capsys, field, value, phrase, level):
    server = fake(version="v3.41.3")
    instance = {"name": "g1", "api_url": server.url}
    args = {"instances": [instance]}
    if level == "module":
        args.update(hostile_args(field, value))
        where = "module options: "
    else:
        instance.update(hostile_args(field, value))
        where = "instances[0] (g1): "
    code, out, raw = run(capsys, args)
    assert code == 1 and out["failed"]
    assert out["msg"].startswith(where + phrase), out["msg"]
    # the username is no secret to Ansible: the invocation shows it, as it shows every option without no_log
    assert_no_secret(value, out["msg"] if field == "username" else raw)
    assert server.requests == [] and "vpns" not in out


@pytest.mark.parametrize("args, message", [
    ({"timeout": "nan"}, "timeout: nan is not a finite number; use a number of seconds above 0, e.g. 5"),
    ({"timeout": "inf"}, "timeout: inf is not a finite number"),
    ({"timeout": "-inf"}, "timeout: -inf is not a finite number"),
    ({"docker_timeout": 0}, "docker_timeout: 0 is not above 0; use a number of seconds above 0, e.g. 60"),
    ({"docker_timeout": -5}, "docker_timeout: -5 is negative"),
    ({"api_port": "800\u00b2"}, "api_port"),
])
def test_timeouts_and_ports_of_another_kind_are_refused_by_name(fake, capsys, args, message):
    server = fake(version="v3.41.3")
    code, out, _raw = run(capsys, dict(args, instances=[{"name": "g1", "api_url": server.url}]))
    assert code == 1 and message in out["msg"], out["msg"]
    assert "Traceback" not in out["msg"] and server.requests == []


def test_docker_timeout_is_refused_before_docker_is_asked(capsys, monkeypatch):
    asked = []
    monkeypatch.setattr(gluetun_status, "docker_client", lambda *args: asked.append(args))
    code, out, _raw = run(capsys, {"instances": [{"name": "gluetun1"}], "docker_timeout": 0})
    assert code == 1 and out["msg"].startswith("docker_timeout: 0 is not above 0")
    assert asked == []


def test_instance_name_ending_in_a_newline_is_refused(capsys):
    code, out, _raw = run(capsys, {"instances": [{"name": "gluetun1\n"}]})
    assert code == 1 and out["msg"] == ("instances[0]: name 'gluetun1\\n' is not a Docker container name (letters, "
                                        "digits, '_', '.', '-', starting with a letter or digit)")
