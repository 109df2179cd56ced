# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to gluetun_status, the forwarded_port lookup and the port_plan filter: each task fails with a message
that names the field and the fix, and the Docker Engine is left exactly as it was (every container's ID, config
and run state). engine_pool's bad input is in test_engine_pool_variants.py, the roles' in test_roles_preflight.py;
docs/reliability.md counts them all."""

from __future__ import annotations

import pytest

from conftest import assert_same_docker_state, docker_state, run_playbook

pytestmark = pytest.mark.exclusive

STATUS = "acestream.orchestrator.gluetun_status"
LOOKUP = "acestream.orchestrator.forwarded_port"
FILTER = "acestream.orchestrator.port_plan"

# Distinctive secrets: no part of them may reach the output, whatever the refusal.
KEY = "Qx9Vw7Zk3Jm2Tb-integration"
PASSWORD = "Pw4Hy8Lr6Nd5Sc-integration"
SECRETS = ["Qx9Vw7Zk3Jm2Tb", "Pw4Hy8Lr6Nd5Sc"]

# (task, phrases the failure message must hold)
CASES = [
    ({STATUS: {"instances": [{"name": "g1", "api_key": "k" * 24, "username": "admin", "password": "pw-0123456789"}]}},
     ["instances[0] (g1): api_key cannot be used together with username/password"]),
    ({STATUS: {"instances": [{"name": "g1", "username": "admin"}]}},
     ["username and password must be given together"]),
    ({STATUS: {"instances": [{"name": "g1"}, {"name": "g1"}]}},
     ["duplicate instance name 'g1'"]),
    ({STATUS: {"instances": []}},
     ["instances is empty: give at least one Gluetun container name"]),
    ({STATUS: {"instances": [{"name": "g1"}], "api_port": 0}},
     ["api_port", "between 1 and 65535"]),
    ({STATUS: {"instances": [{"name": "g1"}], "api_port": 65536}},
     ["api_port", "between 1 and 65535"]),
    ({STATUS: {"instances": [{"name": "g1"}], "timeout": 0}},
     ["timeout: 0 is not above 0; use a number of seconds above 0, e.g. 5"]),
    ({STATUS: {"instances": [{"name": "g1"}], "wait_timeout": -1}},
     ["wait_timeout: -1 is negative; use 0 (do not wait) or a number of seconds"]),
    ({STATUS: {"instances": [{"name": "g1", "api_url": "http://user:secret@127.0.0.1:1"}]}},
     ["api_url must not carry credentials"]),
    ({STATUS: {"instances": [{"name": "g1", "api_url": "ftp://127.0.0.1:1"}]}},
     ["is not an http:// or https:// URL with a host"]),
    ({STATUS: {"instances": [{"name": "g1"}], "vpn_status": "paused"}},
     ["vpn_status", "running", "stopped"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s') }}" % LOOKUP}},
     ["forwarded_port needs at least one Gluetun container name or URL"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', 'g2', api_url='http://127.0.0.1:1') }}" % LOOKUP}},
     ["api_url applies to a single term; for several control servers give URL terms"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'http://u:p@127.0.0.1:1') }}" % LOOKUP}},
     ["a URL term must not carry credentials"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', timeout=-2) }}" % LOOKUP}},
     ["timeout: -2 is negative; use a number of seconds above 0, e.g. 5"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1', 'g2'] | %s(port_range='19999-19000') }}" % FILTER}},
     ["port_range: '19999-19000' is reversed", "write it low-high: '19000-19999'"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1'] | %s(port_range='19000-65536') }}" % FILTER}},
     ["port_range: port 65536 in '19000-65536' is outside 1-65535"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1', 'g2'] | %s(port_range='19000-19009', replicas=11) }}" % FILTER}},
     ["replicas: 11 engines exceed the capacity", "widen the ranges or lower replicas"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1', 'g1'] | %s(port_range='19000-19009') }}" % FILTER}},
     ["vpn_containers: 'g1' is listed twice"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1'] | %s(vpn_port_ranges={'g2': '19000-19009'}) }}" % FILTER}},
     ["vpn_port_ranges: 'g2' is not in vpn_containers"]),
    # credentials that cannot travel in a header, or are not strings: refused by name, never shown
    ({STATUS: {"instances": [{"name": "g1"}], "api_key": KEY + "\n"}},
     ["module options: api_key holds a line break, which cannot be sent in a request header", "use '|-'"]),
    ({STATUS: {"instances": [{"name": "g1", "api_key": KEY + "\u20ac"}]}},
     ["instances[0] (g1): api_key holds a character outside printable ASCII"]),
    ({STATUS: {"instances": [{"name": "g1"}], "api_key": " " + KEY}},
     ["module options: api_key holds a space at its start or end"]),
    ({STATUS: {"instances": [{"name": "g1"}], "api_key": [KEY, "second"]}},
     ["module options: api_key must be a string", "not a list"]),
    ({STATUS: {"instances": [{"name": "g1"}], "username": "monitor", "password": PASSWORD + "\r"}},
     ["module options: password holds a line break"]),
    ({STATUS: {"instances": [{"name": "g1", "username": "mon:itor", "password": PASSWORD}]}},
     ["instances[0] (g1): username holds ':', which ends the username in a basic-auth token"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', api_key=hostile) }}" % LOOKUP},
      "vars": {"hostile": KEY + "\n"}},
     ["forwarded_port: module options: api_key holds a line break"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', api_key=[hostile]) }}" % LOOKUP},
      "vars": {"hostile": KEY}},
     ["forwarded_port: api_key must be a string", "not a list"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', username='monitor', password=hostile) }}" % LOOKUP},
      "vars": {"hostile": PASSWORD + "\u0000"}},
     ["forwarded_port: module options: password holds a control character"]),
    # timeouts, port text and names of another kind
    ({STATUS: {"instances": [{"name": "g1"}], "timeout": "nan"}},
     ["timeout: nan is not a finite number; use a number of seconds above 0, e.g. 5"]),
    ({STATUS: {"instances": [{"name": "g1"}], "timeout": "inf"}},
     ["timeout: inf is not a finite number"]),
    ({STATUS: {"instances": [{"name": "g1"}], "docker_timeout": 0}},
     ["docker_timeout: 0 is not above 0; use a number of seconds above 0, e.g. 60"]),
    ({STATUS: {"instances": [{"name": "g1\n"}]}},
     ["instances[0]: name 'g1\\n' is not a Docker container name"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', wait='nan') }}" % LOOKUP}},
     ["wait: nan is not a finite number"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', 'g1', timeout='-inf') }}" % LOOKUP}},
     ["timeout: -inf is not a finite number"]),
    ({"ansible.builtin.debug": {"msg": "{{ lookup('%s', hostile) }}" % LOOKUP}, "vars": {"hostile": "g1\n"}},
     ["name 'g1\\n' is not a Docker container name"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1'] | %s(port_range='2900\u2074-29010') }}" % FILTER}},
     ["port_range: '2900\u2074-29010' is not a port range"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1'] | %s(port_range='\uff11\uff19\uff10\uff10\uff10-\uff11\uff19"
                                       "\uff10\uff10\uff19') }}" % FILTER}},
     ["port_range: ", "is not a port range"]),
    ({"ansible.builtin.debug": {"msg": "{{ ['g1'] | %s(port_range='19000-19009', replicas='inf' | float) }}" % FILTER}},
     ["replicas: inf is not a number of engines"]),
    ({"ansible.builtin.debug": {"msg": "{{ hostile | %s(port_range='19000-19009') }}" % FILTER},
      "vars": {"hostile": ["g1\n"]}},
     ["vpn_containers: 'g1\\n' is not a valid Docker container name"]),
]


def test_bad_input_to_status_lookup_and_filter_changes_nothing(docker_api):
    tasks = [dict(task, name="bad %d" % index, ignore_errors=True) for index, (task, _phrases) in enumerate(CASES)]
    before = docker_state(docker_api)
    run = run_playbook(tasks=tasks)
    after = docker_state(docker_api)
    assert run.data is not None, run.stdout[-3000:] + run.stderr[-3000:]
    for index, (task, phrases) in enumerate(CASES):
        result = run.result("bad %d" % index)
        assert result.get("failed"), (task, result)
        assert result.get("changed") in (None, False), (task, result)
        for phrase in phrases:
            assert phrase in result["msg"], "%r not in the message of %s:\n%s" % (phrase, task, result["msg"])
        assert "Traceback" not in result["msg"], (task, result)
    for secret in SECRETS:
        assert secret not in run.stdout and secret not in run.stderr, secret
    assert_same_docker_state(before, after)
