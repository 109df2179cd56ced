# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator_app role: the app's environment derived from the port plan, its secrets kept in 0600 files, the
control-server role it needs (it sends no credentials), and the engines left to it.

No registry is reachable here, so a long-running stand-in (the Gluetun simulator image, which listens on 8000 like
the app) plays the app's container; what is tested is what the role gives it."""

from __future__ import annotations

from conftest import GLUETUN_IMAGE, free_port
from roles_helpers import failure_message, file_mode, remove_stack, run_roles, stack_vars


def test_app_environment_comes_from_the_plan(run_id, tmp_path, docker_api):
    variables = stack_vars(run_id, tmp_path, mode="redundant", replicas=2, range_size=6)
    app_name = f"{variables['acestream_pool_name']}-app"
    app_port = free_port()
    variables.update({
        "acestream_orchestrator_enabled": True,
        "acestream_orchestrator_name": app_name,
        "acestream_orchestrator_image": GLUETUN_IMAGE,
        "acestream_orchestrator_port": app_port,
        "acestream_orchestrator_env": {"TZ": "UTC", "GLUETUN_SIM_VERSION": "latest"},
    })
    first, second = (c["name"] for c in variables["acestream_gluetun_containers"])
    try:
        run = run_roles(tmp_path, variables)
        assert run.rc == 0, failure_message(run)
        env = dict(item.split("=", 1) for item in docker_api.inspect_container(app_name)["Config"]["Env"])
        start, end = (int(p) for p in variables["acestream_port_range_host"].split("-"))
        assert env["VPN_MODE"] == "redundant"
        assert env["GLUETUN_CONTAINER_NAME"] == first and env["GLUETUN_CONTAINER_NAME_2"] == second
        assert env["GLUETUN_API_PORT"] == "8001"
        assert env["PORT_RANGE_HOST"] == f"{start}-{end}"
        assert env["GLUETUN_PORT_RANGE_1"] == f"{start}-{start + 2}"
        assert env["GLUETUN_PORT_RANGE_2"] == f"{start + 3}-{end}"
        assert env["MIN_REPLICAS"] == env["MAX_REPLICAS"] == "2"
        assert env["ENGINE_VARIANT"] == "krinkuto11-amd64"
        assert env["DOCKER_NETWORK"] == variables["acestream_docker_network"]
        assert env["TZ"] == "UTC"
        stack_dir = tmp_path / "stack"
        kept_key = (stack_dir / "orchestrator-api-key").read_text().strip()
        assert env["API_KEY"] == kept_key and len(kept_key) >= 32
        assert file_mode(stack_dir / "orchestrator-api-key") == "0o600"
        assert file_mode(stack_dir / "orchestrator.env") == "0o600"
        bindings = docker_api.inspect_container(app_name)["HostConfig"]["PortBindings"]["8000/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(app_port)}]

        # The app sends no credentials: a role without authentication covers the read-only routes it calls.
        auth = (stack_dir / "gluetun" / first / "auth" / "config.toml").read_text()
        assert 'name = "orchestrator-app"' in auth and 'auth = "none"' in auth
        compose = (stack_dir / "docker-compose.yml").read_text()
        assert app_name in compose and kept_key not in compose

        # The app provisions the engines: the collection runs none.
        engines = docker_api.containers(all=True, filters={"label": [
            "acestream.managed-by=acestream.orchestrator.engine_pool",
            f"acestream.pool={variables['acestream_pool_name']}"]})
        assert engines == []

        again = run_roles(tmp_path, variables)
        assert again.rc == 0 and again.changed == 0, failure_message(again)

        # Disabled again: the role removes the app container it created.
        variables["acestream_orchestrator_enabled"] = False
        off = run_roles(tmp_path, variables)
        assert off.rc == 0, failure_message(off)
        assert docker_api.containers(all=True, filters={"name": [f"^/{app_name}$"]}) == []
        assert not (stack_dir / "orchestrator.env").exists()
    finally:
        for container in docker_api.containers(all=True, filters={"name": [f"^/{app_name}$"]}):
            docker_api.remove_container(container["Id"], force=True)
        remove_stack(docker_api, variables)
