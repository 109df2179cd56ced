# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator_app role on a single-VPN stack with the app simulator, through the faults seen on the real
v1.7.3 (see test_app_stack_redundant.py): each is drift exactly when verify fails and one site run repairs it; the
settings file rewritten, the app stopped, the app turned off; other stacks on the same engine are kept."""

from __future__ import annotations

import json

from app_helpers import (
    app_engines,
    check_placement,
    compose_record_matches,
    drift_and_verify,
    remove_app,
    repaired_by_one_site_run,
    verify_passes,
    wait_engines_placed,
)
from conftest import ENGINE_IMAGE, TEST_LABEL, http_request, wait_for
from roles_helpers import (
    failure_message,
    remove_stack,
    run_roles,
    stack_vars,
    task_result,
    with_app,
)


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
