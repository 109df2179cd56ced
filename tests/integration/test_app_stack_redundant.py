# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator_app role with a stand-in that behaves like the AceStream Orchestrator app v1.7.3 (the
orchestrator-app simulator image: it reads its env and engine settings file, finds Gluetun by name, provisions
engines through the Docker socket with its labels and two host ports each, and removes its labelled containers when
it starts). Redundant here and single in test_app_stack_single.py, each check -> apply -> apply (unchanged): the
environment and engine settings file that take effect, the stack's own CONTAINER_LABEL, verify / status / drift
counting the app's engines, the compose record against what runs, the wait for the app's answer. The faults seen on
the real v1.7.3 - a Gluetun container restarted or re-created, an engine removed (the replacement pile-up), its
settings file changed, the app stopped - are drift exactly when verify fails, and one site run repairs each. The
stack is removed with nothing of the app left. The refusals (app release, Gluetun before v3.41 with forwarding, two
host ports per engine, what the app's env may not set) come before anything changes."""

from __future__ import annotations

import json

from app_helpers import (
    app_engines,
    app_label,
    check_placement,
    drift_and_verify,
    remove_app,
    repaired_by_one_site_run,
    verify_passes,
    wait_engines_placed,
)
from conftest import http_request, wait_for
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
