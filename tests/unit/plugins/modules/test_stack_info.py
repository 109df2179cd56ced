# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_info module's shell: bad input is refused by name before any Docker call, credentials never shown.

Its observation runs against the real Docker Engine in tests/integration/test_stack_info.py."""

from __future__ import annotations

import pytest
from module_runner import fresh_module_state, run_module_main
from secret_check import HOSTILE, assert_no_secret, hostile_args

from ansible_collections.acestream.orchestrator.plugins.modules import stack_info


@pytest.fixture(autouse=True)
def no_docker(monkeypatch):
    """Records any Docker client the module would make; none may be made on bad input."""
    fresh_module_state(monkeypatch)
    made = []
    monkeypatch.setattr(stack_info, "docker_client", lambda *args: made.append(args))
    return made


def run(capsys, **extra):
    args = {"name": "ace", "vpn_containers": ["g1", "g2"], "port_range": "19000-19009", "replicas": 2}
    args.update(extra)
    return run_module_main(stack_info.main, capsys, args)


@pytest.mark.parametrize("field, value, phrase", HOSTILE)
def test_hostile_credentials_are_refused_by_name(capsys, no_docker, field, value, phrase):
    code, out, raw = run(capsys, **hostile_args(field, value))
    assert code == 1 and out["field"] == field
    assert out["msg"].startswith("%s: %s" % (field, phrase.split(" ", 1)[1])), out["msg"]
    assert_no_secret(value, out["msg"] if field == "username" else raw)
    assert no_docker == []


@pytest.mark.parametrize("extra, field, message", [
    ({"wait_timeout": "nan"}, "wait_timeout", "wait_timeout: nan is not a finite number; use 0 (do not wait)"),
    ({"wait_timeout": "inf"}, "wait_timeout", "wait_timeout: inf is not a finite number"),
    ({"wait_timeout": -1}, "wait_timeout", "wait_timeout: -1 is negative"),
    ({"api_timeout": "nan"}, "api_timeout", "api_timeout: nan is not a finite number"),
    ({"docker_timeout": 0}, "docker_timeout", "docker_timeout: 0 is not above 0; use a number of seconds above 0, "
                                              "e.g. 60"),
    ({"port_range": "1900\u2070-19009"}, "port_range", "is not a port range"),
    ({"vpn_containers": ["g1", "g2\n"]}, "vpn_containers", "'g2\\n' is not a valid Docker container name"),
])
def test_bad_input_is_refused_by_name_before_docker(capsys, no_docker, extra, field, message):
    code, out, raw = run(capsys, **extra)
    assert code == 1 and out["field"] == field and message in out["msg"], out["msg"]
    assert "Traceback" not in raw and no_docker == []
