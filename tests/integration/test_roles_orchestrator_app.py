# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator_app role with a stand-in that behaves like the AceStream Orchestrator app v1.7.3 (the
orchestrator-app simulator image: it reads its env and engine settings file, finds Gluetun by name, provisions
engines through the Docker socket with its labels and two host ports each, and removes its labelled containers when
it starts). Redundant and single, each check -> apply -> apply (unchanged): the environment and engine settings
file that take effect, the stack's own CONTAINER_LABEL, verify / status / drift counting the app's engines, the
compose record against what runs, the wait for the app's answer. The faults seen on the real v1.7.3 - a Gluetun
container restarted or re-created, an engine removed (the replacement pile-up), its settings file changed, the app
stopped - are drift exactly when verify fails, and one site run repairs each. The stack is removed with nothing of
the app left. The refusals (app release, Gluetun before v3.41 with forwarding, two host ports per engine, what the
app's env may not set) come before anything changes."""

from __future__ import annotations

import json

import docker
import yaml

from conftest import ENGINE_IMAGE, TEST_LABEL, http_request, wait_for
from roles_helpers import (
    failure_message,
    file_mode,
    remove_stack,
    run_collection_playbook,
    run_roles,
    stack_containers,
    stack_vars,
    task_result,
    with_app,
)


def app_label(variables):
    return f"acestream.app-pool={variables['acestream_pool_name']}"


def app_engines(docker_api, variables):
    return docker_api.containers(all=True, filters={"label": [app_label(variables)]})


def vpn_ids(docker_api, variables):
    return dict((c["name"], docker_api.inspect_container(c["name"])["Id"])
                for c in variables["acestream_gluetun_containers"])


def seconds(timestamp):
    """Docker's RFC 3339 time in UTC (``2026-12-05T10:59:01.12Z``) as comparable seconds of the day and fraction."""
    whole, _dot, fraction = timestamp.rstrip("Z").partition(".")
    return whole, float("0." + (fraction or "0"))


def wait_engines_placed(docker_api, variables, timeout=90):
    """Wait until the app runs the replicas, every engine running in its VPN's current network namespace, created
    after that VPN's last start, placed as check_placement says; return them."""
    replicas = variables["acestream_engine_replicas"]

    def placed():
        ids = vpn_ids(docker_api, variables)
        engines = app_engines(docker_api, variables)
        if len(engines) != replicas:
            return None
        for engine in engines:
            vpn = engine["Labels"].get("acestream.vpn_container")
            started = docker_api.inspect_container(vpn)["State"]["StartedAt"] if vpn in ids else None
            if engine["State"] != "running" or engine["HostConfig"]["NetworkMode"] != f"container:{ids.get(vpn)}":
                return None
            try:
                created = docker_api.inspect_container(engine["Id"])["Created"]
            except docker.errors.NotFound:  # the app removed it meanwhile: look again
                return None
            if started is None or seconds(created) < seconds(started):
                return None
        try:  # and the forwarded engines in place (the app replaces one when a port comes late or moves)
            check_placement(docker_api, variables, engines)
        except AssertionError:
            return None
        return engines

    return wait_for(placed, timeout=timeout, what=f"{replicas} app engines placed")


def check_placement(docker_api, variables, engines):
    """Two ports per engine inside its VPN's slice, one forwarded engine per VPN with Gluetun's forwarded port."""
    start, end = (int(p) for p in variables["acestream_port_range_host"].split("-"))
    names = [c["name"] for c in variables["acestream_gluetun_containers"]]
    size = (end - start + 1) // len(names)
    slices = dict((name, (start + i * size, start + (i + 1) * size - 1)) for i, name in enumerate(names))
    for engine in engines:
        labels = engine["Labels"]
        low, high = slices[labels["acestream.vpn_container"]]
        http_port, api_port = int(labels["host.http_port"]), int(labels["host.api_port"])
        assert low <= http_port <= high and low <= api_port <= high and http_port != api_port, (labels, low, high)
    for name in names:
        forwarded = [e for e in engines if e["Labels"]["acestream.vpn_container"] == name
                     and e["Labels"]["acestream.forwarded"] == "true"]
        if any(e["Labels"]["acestream.vpn_container"] == name for e in engines):
            assert len(forwarded) == 1, (name, [e["Labels"] for e in engines])
            assert "--port " in forwarded[0]["Command"]


def verify_passes(variables, tmp_path):
    """verify until it passes (the app answers /vpn/status from its last round), then its checks."""
    runs = []

    def passed():
        run = run_collection_playbook("verify", variables, tmp_path)
        runs.append(run)
        return run if run.rc == 0 else None

    try:
        return wait_for(passed, timeout=60, interval=1, what="verify to pass")
    except AssertionError as exc:
        raise AssertionError(failure_message(runs[-1])) from exc


def remove_app(docker_api, variables):
    for container in docker_api.containers(all=True, filters={"name": [f"^/{variables['acestream_orchestrator_name']}$"]}):
        docker_api.remove_container(container["Id"], force=True)
    for container in app_engines(docker_api, variables):
        docker_api.remove_container(container["Id"], force=True)


def test_redundant_app_stack(run_id, tmp_path, docker_api):
    variables = with_app(stack_vars(run_id, tmp_path, mode="redundant", replicas=3, range_size=8))
    app = variables["acestream_orchestrator_name"]
    stack_dir = tmp_path / "stack"
    try:
        # check: nothing is created
        check = run_roles(tmp_path, variables, check=True)
        assert check.rc == 0 and check.changed > 0, failure_message(check)
        assert docker_api.containers(all=True, filters={"name": [f"^/{app}$"]}) == []
        assert stack_containers(docker_api, variables) == {} and not stack_dir.exists()

        first = run_roles(tmp_path, variables)
        assert first.rc == 0, failure_message(first)
        env = dict(item.split("=", 1) for item in docker_api.inspect_container(app)["Config"]["Env"])
        assert env["CONTAINER_LABEL"] == app_label(variables) and env["VPN_MODE"] == "redundant"
        assert env["ENGINE_VARIANT"] == "AceServe-amd64" and env["MIN_REPLICAS"] == "3"
        assert env["VPN_UNHEALTHY_RESTART_TIMEOUT_S"] == "2147483647", "the app never restarts a Gluetun container"
        settings = stack_dir / "orchestrator" / "engine_settings.json"
        assert json.loads(settings.read_text()) == {
            "min_replicas": 3, "max_replicas": 3, "auto_delete": False, "engine_variant": "AceServe-amd64",
            "use_custom_variant": False, "platform": "amd64"}
        assert file_mode(settings) == "0o644" and file_mode(stack_dir / "orchestrator.env") == "0o600"
        mounts = dict((m["Destination"], m["Source"]) for m in docker_api.inspect_container(app)["Mounts"])
        assert mounts["/app/app/config/engine_settings.json"] == str(settings)
        compose = (stack_dir / "docker-compose.yml").read_text()
        assert "engine_settings.json:/app/app/config/engine_settings.json" in compose
        assert "an HTTP and an API port" in compose and "v1.7.3" in compose

        engines = wait_engines_placed(docker_api, variables)
        check_placement(docker_api, variables, engines)
        assert sorted(e["Labels"]["acestream.vpn_container"] for e in engines) == sorted(
            [variables["acestream_gluetun_containers"][0]["name"]] * 2
            + [variables["acestream_gluetun_containers"][1]["name"]])
        # The collection's own engines: none (the app provisions them).
        assert docker_api.containers(all=True, filters={"label": [
            "acestream.managed-by=acestream.orchestrator.engine_pool",
            f"acestream.pool={variables['acestream_pool_name']}"]}) == []

        again = run_roles(tmp_path, variables)
        assert again.rc == 0 and again.changed == 0, failure_message(again)
        check = run_roles(tmp_path, variables, check=True)
        assert check.rc == 0 and check.changed == 0, failure_message(check)

        verify = verify_passes(variables, tmp_path)
        report = "\n".join(task_result(verify, "Show the checks")["msg"])
        assert "3 engine(s) in pool" in report and "/vpn/status" in report and "forwarded engine" in report
        status = run_collection_playbook("status", dict(variables, acestream_status_format="json"), tmp_path)
        assert status.rc == 0, failure_message(status)
        document = task_result(status, "Show the status")["msg"]
        assert document["engines_total"] == 3 and document["app"]["state"] == "running"
        assert all(e["api_ok"] for e in document["engines"]), document["engines"]

        # The API key guards the app's provisioning API.
        url = f"http://127.0.0.1:{variables['acestream_orchestrator_port']}"
        assert http_request("POST", url + "/provision/acestream", body=b"{}").status == 401

        # A Gluetun container restarted while the app runs: its engines are left in the old network namespace.
        # drift names the app; site restarts it (its start-up re-provisions them); the next run changes nothing.
        first_vpn = variables["acestream_gluetun_containers"][0]["name"]
        docker_api.restart(first_vpn, timeout=1)
        wait_for(lambda: docker_api.inspect_container(first_vpn)["State"].get("Health", {}).get("Status") == "healthy",
                 timeout=60, what=f"{first_vpn} healthy again")
        named, failed, said = drift_and_verify(variables, tmp_path)
        assert named and failed, said
        repaired_by_one_site_run(docker_api, variables, tmp_path)

        # A Gluetun container removed by hand: drift names it and the app (its engines' namespace is gone) exactly
        # when verify fails; site creates it again with a new ID and restarts the app.
        second_vpn = variables["acestream_gluetun_containers"][1]["name"]
        docker_api.remove_container(second_vpn, force=True)
        named, failed, said = drift_and_verify(variables, tmp_path, also="gluetun")
        assert named and failed and second_vpn in said, said
        repaired_by_one_site_run(docker_api, variables, tmp_path)

        # absent: check changes nothing; then the app, every container with its label, the VPNs; nothing left.
        gone = dict(variables, acestream_state="absent")
        check = run_roles(tmp_path, gone, check=True)
        assert check.rc == 0 and check.changed > 0, failure_message(check)
        assert len(app_engines(docker_api, variables)) == 3
        removed = run_roles(tmp_path, gone)
        assert removed.rc == 0, failure_message(removed)
        assert docker_api.containers(all=True, filters={"name": [f"^/{app}$"]}) == []
        assert app_engines(docker_api, variables) == [] and stack_containers(docker_api, variables) == {}
        assert not (stack_dir / "orchestrator").exists() and not (stack_dir / "orchestrator.env").exists()
        again = run_roles(tmp_path, gone)
        assert again.rc == 0 and again.changed == 0, failure_message(again)
    finally:
        remove_app(docker_api, variables)
        remove_stack(docker_api, variables)


def test_refusals_before_anything_changes(run_id, tmp_path, docker_api):
    base = with_app(stack_vars(run_id, tmp_path, mode="redundant", replicas=2, range_size=8))
    cases = [
        (dict(base, acestream_orchestrator_image="ghcr.io/krinkuto11/acestream-orchestrator:latest",
              acestream_orchestrator_release=""),
         "'latest' is the rewrite"),
        (dict(base, acestream_orchestrator_release="v2.1.0"), "from v2.0.0 on the app ignores VPN_MODE"),
        # Gluetun v3.40.0 with forwarding: the app could never read the forwarded port.
        (dict(base, acestream_gluetun_release="v3.40.0",
              acestream_gluetun_env=dict(base["acestream_gluetun_env"], GLUETUN_SIM_VERSION="v3.40.0")),
         "has no /v1/portforward"),
        # 8 ports for 2 VPNs hold 4 app engines (two host ports each), not 5.
        (dict(base, acestream_engine_replicas=5), "engines at 2 host ports each - HTTP and API"),
        (dict(base, acestream_engine_image="my/engine:1"), "acestream_engine_image is set"),
        (dict(base, acestream_orchestrator_env=dict(
            base["acestream_orchestrator_env"], CONTAINER_LABEL="a=b", VPN_UNHEALTHY_RESTART_TIMEOUT_S=60)),
         ("acestream_orchestrator_env sets CONTAINER_LABEL", "the app may not restart the stack's Gluetun containers")),
        (dict(base, acestream_orchestrator_env=dict(base["acestream_orchestrator_env"], MIN_REPLICAS="3")),
         "acestream_orchestrator_env sets MIN_REPLICAS, which the app's engine settings file overrides"),
        (dict(base, acestream_orchestrator_release="1.7"), "is not a release: give it as vX.Y.Z"),
    ]
    try:
        for variables, said in cases:
            run = run_roles(tmp_path, variables)
            assert run.rc != 0 and all(text in failure_message(run) for text in (
                said if isinstance(said, tuple) else (said,))), (said, failure_message(run))
            assert stack_containers(docker_api, variables) == {}, said
            assert docker_api.containers(all=True, filters={"name": [f"^/{base['acestream_orchestrator_name']}$"]}) == []
            assert not (tmp_path / "stack").exists(), said
        # warn: deployed, with the warning.
        warned = dict(cases[2][0], acestream_orchestrator_old_gluetun="warn")
        run = run_roles(tmp_path, warned, check=True)
        assert run.rc == 0, failure_message(run)
        assert "runs every engine without the forwarded port" in json.dumps(
            task_result(run, "Warn that the orchestrator app runs without the forwarded port"))
    finally:
        remove_app(docker_api, base)
        remove_stack(docker_api, base)


def compose_record_matches(docker_api, variables, tmp_path):
    """The docker-compose.yml record of the app is what runs: every mount, env file entry, port, label, restart
    policy, stop timeout and network that docker inspect shows for it."""
    app = variables["acestream_orchestrator_name"]
    stack_dir = tmp_path / "stack"
    service = yaml.safe_load((stack_dir / "docker-compose.yml").read_text())["services"][app]
    inspect = docker_api.inspect_container(app)
    assert service["image"] == inspect["Config"]["Image"] and service["container_name"] == app
    assert sorted(service["volumes"]) == sorted("%s:%s" % (m["Source"], m["Destination"]) for m in inspect["Mounts"])
    env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
    written = dict(line.split("=", 1) for line in (stack_dir / service["env_file"][0]).read_text().splitlines()
                   if line and not line.startswith("#"))
    own = dict((k, v) for k, v in env.items() if k in written or k in service["environment"])
    assert own == written, "the env file holds the app's whole environment"
    assert all(env[k] == str(v) for k, v in service["environment"].items())
    binding = inspect["HostConfig"]["PortBindings"]["8000/tcp"][0]
    assert service["ports"] == ["%s:%s:8000" % (binding["HostIp"], binding["HostPort"])]
    assert service["restart"] == inspect["HostConfig"]["RestartPolicy"]["Name"]
    assert service["stop_grace_period"] == "%ss" % inspect["Config"]["StopTimeout"]
    labels = dict((k, v) for k, v in inspect["Config"]["Labels"].items() if k.startswith("acestream."))
    assert service["labels"] == labels
    assert service["networks"] == list(inspect["NetworkSettings"]["Networks"])


def drift_and_verify(variables, tmp_path, also=None):
    """``(drift names the app (and the component ``also``), verify failed, verify's failure)`` from one drift and one
    verify run."""
    drift = run_collection_playbook("drift", variables, tmp_path)
    assert drift.rc == 0, failure_message(drift)
    report = task_result(drift, "Report the drift")["msg"]
    named = "orchestrator_app" in report and (also is None or also in report)
    verify = run_collection_playbook("verify", variables, tmp_path)
    return named, verify.rc != 0, failure_message(verify) if verify.rc != 0 else ""


def repaired_by_one_site_run(docker_api, variables, tmp_path):
    """One site run repairs the stack: verify passes, and the next site run changes nothing."""
    fixed = run_roles(tmp_path, variables)
    assert fixed.rc == 0 and fixed.changed > 0, failure_message(fixed)
    check_placement(docker_api, variables, wait_engines_placed(docker_api, variables, timeout=30))
    verify_passes(variables, tmp_path)
    settled = run_roles(tmp_path, variables)
    assert settled.rc == 0 and settled.changed == 0, failure_message(settled)


def test_single_app_stack_faults_settings_and_other_stacks_are_kept(run_id, tmp_path, docker_api):
    """A single app stack: the wait for the app's answer (and its failure), the compose record, then the faults seen
    on the real v1.7.3 - an engine removed by hand (the health manager's replacement takes another engine's API port
    and crash-loops, another follows: engines beyond the replicas), its settings file changed by its own API, the app
    stopped. For each, drift names the app exactly when verify fails; one site run repairs it; the next changes
    nothing. Another stack's app engine on the host is never touched; the app turned off hands the slice over."""
    variables = with_app(stack_vars(run_id, tmp_path, mode="single", replicas=2, range_size=8))
    app = variables["acestream_orchestrator_name"]
    # Another stack's app engine on the same host: this stack's app must not remove it when it starts.
    other = docker_api.create_container(
        ENGINE_IMAGE, name=f"{variables['acestream_pool_name']}-other-engine",
        labels={"acestream.app-pool": f"{variables['acestream_pool_name']}-other", TEST_LABEL: run_id})
    docker_api.start(other)
    try:
        check = run_roles(tmp_path, variables, check=True)
        assert check.rc == 0, failure_message(check)
        # An app that cannot start its engines (their image is missing): site waits, bounded, for its answer listing
        # them, and fails with the app's last log lines.
        stuck = dict(variables, acestream_orchestrator_wait_timeout=4, acestream_orchestrator_env=dict(
            variables["acestream_orchestrator_env"], APP_SIM_ENGINE_IMAGE="acestream-sim/no-such-engine:missing"))
        failed = run_roles(tmp_path, stuck)
        said = failure_message(failed)
        assert failed.rc != 0 and "did not answer GET http://127.0.0.1:" in said and "within 4 s" in said, said
        assert "Its last log lines:" in said and "cannot provision an engine" in said, said

        first = run_roles(tmp_path, variables)
        assert first.rc == 0, failure_message(first)
        # The role waited for the app's answer with its engines, not for its port.
        assert len(app_engines(docker_api, variables)) == 2
        inspect = docker_api.inspect_container(app)
        env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
        assert env["MIN_REPLICAS"] == "2" and env["VPN_MODE"] == "single" and inspect["Config"]["StopTimeout"] == 30
        compose_record_matches(docker_api, variables, tmp_path)
        check_placement(docker_api, variables, wait_engines_placed(docker_api, variables))
        again = run_roles(tmp_path, variables)
        assert again.rc == 0 and again.changed == 0, failure_message(again)
        verify_passes(variables, tmp_path)
        assert drift_and_verify(variables, tmp_path)[:2] == (False, False)
        url = f"http://127.0.0.1:{variables['acestream_orchestrator_port']}"
        assert json.loads(http_request("GET", url + "/settings/engine").body)["min_replicas"] == 2

        # An engine removed by hand: the replacement pile-up.
        engines = sorted(app_engines(docker_api, variables), key=lambda e: int(e["Labels"]["host.http_port"]))
        docker_api.remove_container(engines[-1]["Id"], force=True)
        wait_for(lambda: len(app_engines(docker_api, variables)) >= 3 or None, timeout=30,
                 what="the health manager's replacements piling up")
        named, failed, said = drift_and_verify(variables, tmp_path)
        assert named and failed, said
        assert "own ports" in said or "engines" in said, said
        repaired_by_one_site_run(docker_api, variables, tmp_path)

        # The app's own settings API writes the file in place (min_replicas 3): drift names the app exactly when
        # verify fails; the role writes the file back and restarts the app, which reads it only at start.
        settings = tmp_path / "stack" / "orchestrator" / "engine_settings.json"
        started = docker_api.inspect_container(app)["State"]["StartedAt"]
        with open(settings, "r+", encoding="utf-8") as handle:  # the same file, as a bind mount sees it
            text = handle.read().replace('"min_replicas": 2', '"min_replicas": 3')
            handle.seek(0)
            handle.write(text)
            handle.truncate()
        named, failed, said = drift_and_verify(variables, tmp_path)
        assert named and failed and "settings files" in said, said
        rewritten = run_roles(tmp_path, variables)
        assert rewritten.rc == 0 and rewritten.changed > 0, failure_message(rewritten)
        assert "engine settings files were rewritten" in json.dumps(task_result(rewritten, "Say why the app was restarted"))
        assert docker_api.inspect_container(app)["State"]["StartedAt"] != started
        assert json.loads(http_request("GET", url + "/settings/engine").body)["min_replicas"] == 2
        wait_engines_placed(docker_api, variables)
        again = run_roles(tmp_path, variables)
        assert again.rc == 0 and again.changed == 0, failure_message(again)
        assert docker_api.containers(all=True, filters={"id": [other["Id"]]})  # not removed

        # The app stopped (its shutdown, given the stop timeout, removes its engines): site starts it again.
        docker_api.stop(app)
        assert docker_api.inspect_container(app)["State"]["ExitCode"] == 0
        named, failed, said = drift_and_verify(variables, tmp_path)
        assert named and failed, said
        repaired_by_one_site_run(docker_api, variables, tmp_path)

        # The app turned off: it and its engines go before the collection's engines take the slice.
        off = dict(variables, acestream_orchestrator_enabled=False, acestream_engine_image=ENGINE_IMAGE)
        switched = run_roles(tmp_path, off)
        assert switched.rc == 0, failure_message(switched)
        assert docker_api.containers(all=True, filters={"name": [f"^/{app}$"]}) == []
        assert app_engines(docker_api, variables) == []
        pool = docker_api.containers(filters={"label": [
            "acestream.managed-by=acestream.orchestrator.engine_pool", f"acestream.pool={variables['acestream_pool_name']}"]})
        assert len(pool) == 2
        assert docker_api.containers(all=True, filters={"id": [other["Id"]]})  # not removed
        again = run_roles(tmp_path, off)
        assert again.rc == 0 and again.changed == 0, failure_message(again)
    finally:
        docker_api.remove_container(other["Id"], force=True)
        remove_app(docker_api, variables)
        remove_stack(docker_api, variables)
