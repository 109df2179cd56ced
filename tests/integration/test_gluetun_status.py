# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gluetun_status and forwarded_port through ansible-playbook, against the Gluetun simulator containers.

Every release profile (v3.39.0, v3.40.0, v3.41.1, v3.41.3, latest), with and without an auth file; the 401
and route-fallback paths; waiting; Docker health; faults (hang, 500, non-JSON); the VPN status PUT in check
mode and for real; secrets at -vvv. Containers start in parallel and become healthy within about a second.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from conftest import docker_exec, health_of, run_playbook  # pylint: disable=import-error

KEY = "AceStreamIntegrationK22"
OTHER_KEY = "WrongKeyWrongKeyWrong22"
PASSWORD = "integration-pass-9f3c"
RELEASES = ("v3.39.0", "v3.40.0", "v3.41.1", "v3.41.3", "latest")
OLD_RELEASES = ("v3.39.0", "v3.40.0")
API_PORT = 8001  # the seed's HTTP_CONTROL_SERVER_ADDRESS=:8001 / GLUETUN_API_PORT=8001
MODULE = "acestream.orchestrator.gluetun_status"
LOOKUP = "acestream.orchestrator.forwarded_port"
# Plays that expect ready VPNs wait for them, as users do: a loaded machine can make Docker's health flap.
WAIT = 90


def port_routes(version):
    if version in OLD_RELEASES:
        return ["GET /v1/openvpn/portforwarded"]  # listing /v1/portforward would stop v3.40.x from starting
    return ["GET /v1/portforward", "GET /v1/openvpn/portforwarded"]


def auth_toml(routes, key=KEY):
    quoted = ", ".join('"%s"' % route for route in routes)
    return '[[roles]]\nname = "acestream"\nauth = "apikey"\napikey = "%s"\nroutes = [%s]\n' % (key, quoted)


def full_auth(version):
    return auth_toml(["GET /v1/version", "GET /v1/vpn/status", "PUT /v1/vpn/status", "GET /v1/publicip/ip"]
                     + port_routes(version))


def sim_env(index, **extra):
    env = {"VPN_PORT_FORWARDING": "on", "GLUETUN_SIM_FORWARDED_PORT": str(41000 + index),
           "GLUETUN_SIM_PORT_FORWARD_DELAY": "0.2", "GLUETUN_SIM_PUBLIC_IP": "203.0.113.%d" % (10 + index),
           "GLUETUN_SIM_COUNTRY": "Netherlands", "GLUETUN_SIM_CITY": "Amsterdam"}
    env.update(extra)
    return env


def task(name, module_args, **extra):
    """A gluetun_status task that never stops the play, so every result can be asserted."""
    return dict({"name": name, MODULE: module_args, "ignore_errors": True}, **extra)


def lookup_task(name, expression):
    return {"name": name, "ansible.builtin.set_fact": {"value": "{{ %s }}" % expression}, "ignore_errors": True}


def result(run, name):
    return run.result(name)


def duration(run, name):
    for play in run.data["plays"]:
        for item in play["tasks"]:
            if item["task"]["name"] == name:
                times = item["task"]["duration"]
                start = datetime.fromisoformat(times["start"].rstrip("Z"))
                end = datetime.fromisoformat(times["end"].rstrip("Z"))
                return (end - start).total_seconds()
    raise KeyError(name)


def sim_cmd(docker_api, sim, *args):
    code, output = docker_exec(docker_api, sim.name, ["gluetun-sim"] + list(args))
    assert code == 0, output


def check_ran(run):
    assert run.data is not None, run.stdout[-3000:] + run.stderr[-3000:]


# ------------------------------------------------------------------------------------------------ the fleet
@pytest.fixture(scope="module")
def fleet(gluetun_sims_module):
    """Ten simulators: every release without an auth file (open-*) and with one (auth-*), API on :8001."""
    specs = {}
    for index, version in enumerate(RELEASES):
        specs["open-" + version] = dict(version=version, api_port=API_PORT, env=sim_env(index), healthy_after=0.3)
        specs["auth-" + version] = dict(version=version, api_port=API_PORT, env=sim_env(index + 5),
                                        healthy_after=0.3, auth_toml=full_auth(version))
    return gluetun_sims_module(specs)


def test_every_release_with_and_without_auth_file(fleet):
    open_names = [fleet["open-" + v].name for v in RELEASES]
    auth_names = [fleet["auth-" + v].name for v in RELEASES]
    tasks = [
        task("open", {"instances": [{"name": n} for n in open_names], "api_port": API_PORT, "wait_timeout": WAIT,
                      "require_forwarded_port": True, "fail_on_unhealthy": False}),
        task("auth with key", {"instances": [{"name": n} for n in auth_names], "api_port": API_PORT,
                               "api_key": KEY, "require_forwarded_port": True, "wait_timeout": WAIT}),
        task("auth without key", {"instances": [{"name": n} for n in auth_names], "api_port": API_PORT,
                                  "fail_on_unhealthy": False, "wait_timeout": WAIT}),
        lookup_task("lookup names", "query('%s', *names, api_port=%d, api_key=key)" % (LOOKUP, API_PORT)),
        lookup_task("lookup urls", "query('%s', *urls)" % LOOKUP),
        lookup_task("lookup strict 401", "lookup('%s', names[3], api_port=%d)" % (LOOKUP, API_PORT)),
        lookup_task("lookup term_errors", "query('%s', open_latest, names[1], api_port=%d, term_errors='warn', "
                    "api_key=key)" % (LOOKUP, API_PORT)),
        lookup_task("lookup errors", "lookup('%s', open_latest, names[1], api_port=%d, errors='ignore', api_key=key)"
                    % (LOOKUP, API_PORT)),
    ]
    run = run_playbook(tasks, extra_vars={
        "names": auth_names, "key": KEY, "open_latest": fleet["open-latest"].name,
        "urls": [fleet["open-" + v].api_url for v in RELEASES[:4]]})
    check_ran(run)

    # Without an auth file: the public role (v3.39.1 .. v3.41.3) or no auth at all (v3.39.0); latest: 401.
    opened = result(run, "open")
    assert opened["changed"] is False and opened["all_healthy"] is False
    by_version = dict(zip(RELEASES, opened["vpns"]))
    for index, version in enumerate(RELEASES[:4]):
        vpn = by_version[version]
        assert vpn["error"] is None, vpn
        assert vpn["healthy"] and vpn["connected"] and vpn["container"]["health"] == "healthy"
        assert vpn["version"] == version and vpn["vpn_status"] == "running"
        assert vpn["forwarded_port"] == 41000 + index and vpn["forwarded_ports"] == [41000 + index]
        assert vpn["port_route"] == ("/v1/openvpn/portforwarded" if version in OLD_RELEASES else "/v1/portforward")
        assert vpn["public_ip"] == "203.0.113.%d" % (10 + index) and vpn["country"] == "Netherlands"
        assert vpn["api_url"] == fleet["open-" + version].api_url  # the published (external) port
    latest = by_version["latest"]
    assert latest["reachable"] and not latest["healthy"] and latest["container"]["health"] == "healthy"
    assert "answered 401 Unauthorized for GET /v1/vpn/status: no credentials were sent" in latest["error"]
    assert "HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE" in latest["error"]
    assert "Failed to get forwarded port from Gluetun '%s'" % latest["name"] in latest["error"]

    # With an auth file and the key: every release answers.
    keyed = result(run, "auth with key")
    assert not keyed.get("failed") and keyed["all_healthy"] is True
    assert keyed["forwarded_ports"] == dict((n, 41005 + i) for i, n in enumerate(auth_names))
    assert [v["version"] for v in keyed["vpns"]] == list(RELEASES)

    # With an auth file and no key: any role drops the public role (v3.39.0 has no auth layer at all).
    unkeyed = result(run, "auth without key")
    assert unkeyed["vpns"][0]["error"] is None and unkeyed["vpns"][0]["healthy"]
    for vpn in unkeyed["vpns"][1:]:
        assert "answered 401 Unauthorized for GET /v1/vpn/status: no credentials were sent" in vpn["error"], vpn

    assert result(run, "lookup names")["ansible_facts"]["value"] == [41005 + i for i in range(5)]
    assert result(run, "lookup urls")["ansible_facts"]["value"] == [41000 + i for i in range(4)]
    strict = result(run, "lookup strict 401")
    assert strict.get("failed")
    assert ("Failed to get forwarded port from Gluetun '%s': Gluetun '%s' at %s answered 401 Unauthorized for GET "
            "/v1/portforward" % (auth_names[3], auth_names[3], fleet["auth-v3.41.3"].api_url)) in strict["msg"]
    assert result(run, "lookup term_errors")["ansible_facts"]["value"] == [None, 41006]
    assert result(run, "lookup errors")["ansible_facts"]["value"] is None  # Ansible's keyword: the whole call


def test_route_fallbacks_and_401_paths(gluetun_sims_module):
    sims = gluetun_sims_module({
        # v3.40.0 whose auth file allows neither /v1/version nor (unknown to it) /v1/portforward: the client
        # cannot know the release, gets 401 on the new route, and falls back to the old one.
        "v340-no-version": dict(version="v3.40.0", api_port=API_PORT, env=sim_env(20), healthy_after=0.3,
                                auth_toml=auth_toml(["GET /v1/vpn/status", "GET /v1/openvpn/portforwarded"])),
        # latest allowing the old route only: its 301 leads to /v1/portforward, which needs its own entry.
        "latest-old-route-only": dict(version="latest", api_port=API_PORT, env=sim_env(21), healthy_after=0.3,
                                      auth_toml=auth_toml(["GET /v1/version", "GET /v1/vpn/status",
                                                           "GET /v1/openvpn/portforwarded"])),
        # latest with a basic-auth default role and several forwarded ports.
        "latest-basic": dict(version="latest", api_port=API_PORT, healthy_after=0.3,
                             env=sim_env(22, HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE=json.dumps(
                                 {"auth": "basic", "username": "ace", "password": PASSWORD}),
                                 GLUETUN_SIM_FORWARDED_PORTS_COUNT="3")),
        # v3.41.1: several ports answer {"ports": [...]} without "port".
        "v3411-multi": dict(version="v3.41.1", api_port=API_PORT, healthy_after=0.3,
                            env=sim_env(23, GLUETUN_SIM_FORWARDED_PORTS_COUNT="3")),
        # listens on :8001 but the play says 8000; 8000 is not published, so the bridge IP is tried.
        "mismatch": dict(version="v3.41.3", api_port=API_PORT, env=sim_env(24), healthy_after=0.3),
        # nothing published: the module reaches the control server on the container's bridge IP.
        "unpublished": dict(version="v3.41.3", api_port=8000, publish_api=False, env=sim_env(25), healthy_after=0.3),
    })
    name = dict((key, sim.name) for key, sim in sims.items())
    tasks = [
        task("v340", {"instances": [{"name": name["v340-no-version"]}], "api_port": API_PORT, "api_key": KEY,
                      "require_forwarded_port": True, "wait_timeout": WAIT}),
        task("301 target refused", {"instances": [{"name": name["latest-old-route-only"]}], "api_port": API_PORT,
                                    "api_key": KEY, "require_forwarded_port": True}),
        task("basic", {"instances": [{"name": name["latest-basic"], "username": "ace", "password": PASSWORD},
                                     {"name": name["v3411-multi"]}], "api_port": API_PORT, "wait_timeout": WAIT}),
        lookup_task("lookup all ports", "query('%s', multi, api_port=%d, all_ports=true)" % (LOOKUP, API_PORT)),
        task("mismatch", {"instances": [{"name": name["mismatch"]}], "api_port": 8000, "timeout": 2}),
        task("unpublished", {"instances": [{"name": name["unpublished"]}], "require_forwarded_port": True,
                             "wait_timeout": WAIT}),
        task("key and password", {"instances": [{"name": name["mismatch"]}], "api_key": KEY, "username": "ace",
                                  "password": PASSWORD}),
        task("duplicate", {"instances": [{"name": name["mismatch"]}, {"name": name["mismatch"]}]}),
    ]
    run = run_playbook(tasks, extra_vars={"multi": name["v3411-multi"]})
    check_ran(run)

    v340 = result(run, "v340")
    assert not v340.get("failed"), v340.get("msg")
    vpn = v340["vpns"][0]
    assert vpn["port_route"] == "/v1/openvpn/portforwarded" and vpn["forwarded_port"] == 41020
    assert vpn["version"] is None and any("401 Unauthorized for GET /v1/version" in w for w in vpn["warnings"])
    logs = docker_api_logs(sims["v340-no-version"])
    assert "401 GET /v1/portforward " in logs and "200 GET /v1/openvpn/portforwarded " in logs

    refused = result(run, "301 target refused")
    assert refused.get("failed")
    assert "Failed to get forwarded port from Gluetun '%s'" % name["latest-old-route-only"] in refused["msg"]
    assert "answered 401 Unauthorized for GET /v1/portforward:" in refused["msg"]
    assert "GET /v1/openvpn/portforwarded redirects here: this route needs its own entry" in refused["msg"]
    assert "301 GET /v1/openvpn/portforwarded " in docker_api_logs(sims["latest-old-route-only"])

    basic = result(run, "basic")
    assert not basic.get("failed"), basic.get("msg")
    assert basic["vpns"][0]["forwarded_port"] == 41022 and len(basic["vpns"][0]["forwarded_ports"]) == 3
    assert basic["vpns"][1]["forwarded_ports"][0] == 41023 and len(basic["vpns"][1]["forwarded_ports"]) == 3
    assert result(run, "lookup all ports")["ansible_facts"]["value"] == [basic["vpns"][1]["forwarded_ports"]]

    mismatch = result(run, "mismatch")
    assert mismatch.get("failed")
    assert "Cannot access Gluetun API of '%s' at http://172." % name["mismatch"] in mismatch["msg"]
    assert "the container listens on HTTP_CONTROL_SERVER_ADDRESS port 8001 but api_port is 8000: set api_port: 8001" \
        in mismatch["msg"]
    assert "port 8000/tcp is not published, so the container's bridge address was tried" in mismatch["msg"]

    unpublished = result(run, "unpublished")
    assert not unpublished.get("failed"), unpublished.get("msg")
    assert unpublished["vpns"][0]["api_url"].startswith("http://172.") and unpublished["forwarded_ports"] == {
        name["unpublished"]: 41025}

    both = result(run, "key and password")
    assert both["msg"] == ("module options: api_key cannot be used together with username/password: a Gluetun role "
                           "authenticates with either an API key (auth = \"apikey\") or basic auth (auth = \"basic\"); "
                           "give only one of them")
    assert "duplicate instance name '%s'" % name["mismatch"] in result(run, "duplicate")["msg"]


def docker_api_logs(sim):
    import docker

    return docker.APIClient(version="auto").logs(sim.name).decode(errors="replace")


def test_waits_for_health_and_port_and_reports_docker_health(docker_api, gluetun_sims_module):
    sims = gluetun_sims_module({
        "slow": dict(version="v3.41.3", api_port=API_PORT, healthy_after=3, wait_healthy=False,
                     env=sim_env(30, GLUETUN_SIM_PORT_FORWARD_DELAY="1.5")),
        "faulty": dict(version="v3.40.0", api_port=API_PORT, env=sim_env(31), healthy_after=0.3),
        "never": dict(version="v3.41.3", api_port=API_PORT, healthy_after=3600, wait_healthy=False, env=sim_env(32)),
    })
    slow, faulty, never = sims["slow"].name, sims["faulty"].name, sims["never"].name
    cmd = ["docker", "exec", faulty, "gluetun-sim"]
    tasks = [
        task("not up", {"instances": [{"name": never}], "api_port": API_PORT}),
        task("wait", {"instances": [{"name": slow}], "api_port": API_PORT, "wait_timeout": WAIT,
                      "require_forwarded_port": True}),
        {"name": "make unhealthy", "ansible.builtin.command": {"argv": cmd + ["set-health", "unhealthy"]}},
        dict(task("until unhealthy", {"instances": [{"name": faulty}], "api_port": API_PORT,
                                      "fail_on_unhealthy": False}),
             register="health", until="health.vpns[0].container.health == 'unhealthy'", retries=30, delay=0.5),
        task("unhealthy", {"instances": [{"name": faulty}], "api_port": API_PORT}),
        {"name": "heal", "ansible.builtin.command": {"argv": cmd + ["set-health", "healthy"]}},
        {"name": "nonjson", "ansible.builtin.command": {"argv": cmd + ["set-fault", "nonjson"]}},
        task("non-JSON answer", {"instances": [{"name": faulty}], "api_port": API_PORT}),
        {"name": "500", "ansible.builtin.command": {"argv": cmd + ["set-fault", "500"]}},
        task("HTTP 500", {"instances": [{"name": faulty}], "api_port": API_PORT, "require_forwarded_port": True}),
        {"name": "no fault", "ansible.builtin.command": {"argv": cmd + ["set-fault", "none"]}},
    ]
    run = run_playbook(tasks)
    check_ran(run)

    # Docker says "starting" for the image's 30 s start period, then "unhealthy": never healthy either way.
    not_up = result(run, "not up")
    health = not_up["vpns"][0]["container"]["health"]
    assert not_up.get("failed") and health in ("starting", "unhealthy") and not_up["vpns"][0]["healthy"] is False
    if health == "starting":
        assert "VPN container '%s' is not healthy yet: Docker health is 'starting'" % never in not_up["msg"]
    else:
        assert "VPN container '%s' is not healthy: Docker health is 'unhealthy'" % never in not_up["msg"]
    assert not_up["vpns"][0]["vpn_status"] == "starting"
    waited = result(run, "wait")
    assert not waited.get("failed"), waited.get("msg")
    assert waited["vpns"][0]["healthy"] and waited["forwarded_ports"] == {slow: 41030}

    unhealthy = result(run, "unhealthy")
    assert unhealthy.get("failed")
    # The last check's output: the simulated failure, or Docker's own words when the machine is too loaded.
    assert "VPN container '%s' is not healthy: Docker health is 'unhealthy' (last check: " % faulty in unhealthy["msg"]
    nonjson = result(run, "non-JSON answer")
    assert "answered GET /v1/version with a body that is not JSON (HTTP 200" not in nonjson["msg"]  # optional route
    assert "answered GET /v1/vpn/status with a body that is not JSON (HTTP 200" in nonjson["msg"]
    assert "non-JSON answer (fault nonjson)" in nonjson["msg"]
    http500 = result(run, "HTTP 500")
    assert "answered HTTP 500 Internal Server Error for GET /v1/vpn/status: Internal Server Error" in http500["msg"]
    assert ("Failed to get forwarded port from Gluetun '%s': Gluetun '%s' at %s answered HTTP 500" % (
        faulty, faulty, sims["faulty"].api_url)) in http500["msg"]
    assert health_of(docker_api, faulty) in ("healthy", "unhealthy")  # still there; fault cleared by the play


def test_vpn_status_put_check_mode_and_idempotence(gluetun_sims_module):
    sim = gluetun_sims_module({"put": dict(version="latest", api_port=API_PORT, env=sim_env(40), healthy_after=0.3,
                                           auth_toml=full_auth("latest"))})["put"]
    base = {"instances": [{"name": sim.name}], "api_port": API_PORT, "api_key": KEY}
    tasks = [
        task("check stop", dict(base, vpn_status="stopped"), check_mode=True),
        task("still running", dict(base, wait_timeout=WAIT)),
        task("stop", dict(base, vpn_status="stopped", wait_timeout=WAIT)),
        task("stop again", dict(base, vpn_status="stopped")),
        task("start", dict(base, vpn_status="running", wait_timeout=WAIT, require_forwarded_port=True)),
        task("start again", dict(base, vpn_status="running", wait_timeout=WAIT)),
    ]
    run = run_playbook(tasks)
    check_ran(run)
    check = result(run, "check stop")
    assert check["changed"] is True and check["vpns"][0]["vpn_status"] == "running" and not check.get("failed")
    assert result(run, "still running")["vpns"][0]["vpn_status"] == "running"
    stop = result(run, "stop")
    assert stop["changed"] is True and not stop.get("failed") and stop["vpns"][0]["vpn_status"] == "stopped"
    assert stop["vpns"][0]["healthy"] is False and stop["vpns"][0]["forwarded_port"] is None
    again = result(run, "stop again")
    assert again["changed"] is False and not again.get("failed")
    start = result(run, "start")
    assert not start.get("failed"), start.get("msg")
    assert start["changed"] is True and start["vpns"][0]["healthy"]
    new_port = start["forwarded_ports"][sim.name]
    assert new_port and new_port != 41040  # a reconnect forwards a new port: read it again, never store it
    assert result(run, "start again")["changed"] is False
    assert docker_api_logs(sim).count("200 PUT /v1/vpn/status ") == 2  # stop and start; none in check mode


def test_ten_instances_three_hung_report_the_timeout(docker_api, fleet):
    """Ten control servers, three hung: the hung ones are reported with the timeout that ended the request, the
    others answer as before, and the lookup gives None for the hung ones (term_errors=ignore). That they are asked
    in parallel is pinned by the unit tests; what a hung one costs is measured by benchmarks/run.sh."""
    hung = [fleet["open-" + v] for v in ("v3.40.0", "v3.41.1", "v3.41.3")]
    instances = [{"name": fleet["open-" + v].name} for v in RELEASES[:4]]
    instances += [{"name": fleet["auth-" + v].name, "api_key": KEY} for v in RELEASES]
    instances.append({"name": fleet["open-latest"].name, "api_key": KEY})
    args = {"instances": instances, "api_port": API_PORT, "timeout": 2, "fail_on_unhealthy": False}
    lookup = "query('%s', *names, api_port=%d, timeout=2, term_errors='ignore')" % (LOOKUP, API_PORT)
    names = {"names": [s.name for s in hung] + [fleet["open-v3.39.0"].name]}
    for sim in hung:
        sim_cmd(docker_api, sim, "set-fault", "none")
    try:
        run = run_playbook([task("baseline", args), lookup_task("lookup baseline", lookup)], extra_vars=names)
        check_ran(run)
        for sim in hung:
            sim_cmd(docker_api, sim, "set-fault", "hang")
        hung_run = run_playbook([task("hung", args), lookup_task("lookup hung", lookup)], extra_vars=names)
        check_ran(hung_run)
    finally:
        for sim in hung:
            sim_cmd(docker_api, sim, "set-fault", "none")
    baseline, slow = duration(run, "baseline"), duration(hung_run, "hung")
    report = result(hung_run, "hung")
    errors = [v["error"] for v in report["vpns"]]
    assert all("did not answer GET /v1/version within 2s (timeout)" in e for e in errors[1:4]), errors
    assert errors[0] is None and all(e is None for e in errors[4:9]) and "401" in errors[9]
    assert result(run, "lookup baseline")["ansible_facts"]["value"] == [41001, 41002, 41003, 41000]
    assert result(hung_run, "lookup hung")["ansible_facts"]["value"] == [None, None, None, 41000]
    lookup_baseline, lookup_slow = duration(run, "lookup baseline"), duration(hung_run, "lookup hung")
    print("\ngluetun_status, 10 instances: %.2fs, with 3 hung (timeout 2s): %.2fs; forwarded_port, 4 terms: %.2fs, "
          "with 3 hung: %.2fs" % (baseline, slow, lookup_baseline, lookup_slow))


def test_no_secret_at_vvv(fleet, gluetun_sims_module):
    basic_role = json.dumps({"auth": "basic", "username": "ace", "password": PASSWORD})
    basic = gluetun_sims_module({"basic": dict(version="latest", api_port=API_PORT, healthy_after=0.3,
                                               env=sim_env(50, HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE=basic_role))})
    auth = fleet["auth-v3.41.3"].name
    tasks = [
        task("ok", {"instances": [{"name": auth}], "api_port": API_PORT, "api_key": "{{ key }}", "wait_timeout": WAIT}),
        task("wrong key", {"instances": [{"name": auth, "api_key": "{{ other }}"}], "api_port": API_PORT}),
        task("basic", {"instances": [{"name": basic["basic"].name, "username": "ace", "password": "{{ password }}"}],
                       "api_port": API_PORT, "vpn_status": "running", "wait_timeout": WAIT}),
        task("basic wrong", {"instances": [{"name": basic["basic"].name}], "api_port": API_PORT, "username": "ace",
                             "password": "{{ other }}"}),
        {"name": "lookup", "ansible.builtin.debug": {
            "msg": "{{ lookup('%s', '%s', api_port=%d, api_key=key) }}" % (LOOKUP, auth, API_PORT)}},
        {"name": "lookup refused", "ansible.builtin.debug": {
            "msg": "{{ lookup('%s', '%s', api_port=%d, api_key=other) }}" % (LOOKUP, auth, API_PORT)},
         "ignore_errors": True},
    ]
    run = run_playbook(tasks, extra_vars={"key": KEY, "other": OTHER_KEY, "password": PASSWORD}, verbosity=3,
                       json_output=False)
    text = run.stdout + run.stderr
    assert "ok: [localhost]" in text and "41008" in text  # the runs did happen
    assert "the api_key sent was refused" in text and "the username/password sent was refused" in text
    for secret in (KEY, OTHER_KEY, PASSWORD):
        assert secret not in text
