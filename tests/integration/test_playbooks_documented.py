# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The minimal stack (no variable set), every stack style the documentation describes and every play the READMEs and docs/ show, through every entry
point: site, site again (nothing changed), verify, status in its three outputs, drift, converge_engines (the
keep_converged rulebook's action) and absent.

The stacks are the hosts of one inventory, all on the local Docker Engine, so each entry point runs once for all of
them. Each host keeps its style's shape as written (where the environment is given, whether the range is split or
given per VPN, the mode, the app, the replicas, every other variable it sets) and takes from the test only what a
shared Docker Engine needs: its own names, directory and free ports, and the stand-in images."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import time

import yaml

from app_helpers import remove_app
from conftest import ROOT, free_port, free_port_range, report_line, run_playbook
from roles_helpers import failure_message, remove_stack, stack_vars, task_result, with_app


def _stack_inventories():
    spec = importlib.util.spec_from_file_location("stack_inventories_it", ROOT / "tests" / "unit" / "stack_inventories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INVENTORIES = _stack_inventories()
# What only a shared Docker Engine needs, taken from the test's own stack whatever the style says.
SHARED_ENGINE = ("acestream_pool_name", "acestream_stack_dir", "acestream_docker_network", "acestream_gluetun_image",
                 "acestream_gluetun_release", "acestream_gluetun_pull", "acestream_gluetun_capabilities",
                 "acestream_gluetun_devices", "acestream_engine_image", "acestream_gluetun_healthcheck",
                 "acestream_port_range_bind", "acestream_engine_vpn_wait_timeout", "acestream_engine_wait_ready",
                 "acestream_engine_forwarded_port_timeout")


def _free_range(size, taken):
    for _attempt in range(50):
        start, end = free_port_range(size)
        if not taken & set(range(start, end + 1)):
            taken.update(range(start, end + 1))
            return start, end
    raise RuntimeError("no free range apart from the other hosts'")


def on_a_shared_engine(style, run_id, tmp_path, taken):
    """The style's variables as written, with the test's names, ports, directory and stand-in images."""
    style = copy.deepcopy(style)
    mode = style.get("acestream_vpn_mode", "single")
    written = style.get("acestream_gluetun_containers") or [{"name": "gluetun", "api_host_port": 8001}]
    base = stack_vars(run_id, tmp_path, mode=mode)
    if style.get("acestream_orchestrator_enabled"):
        base = with_app(base)
    simulator_env = base.pop("acestream_gluetun_env")
    names = ["%s-gluetun%d" % (base["acestream_pool_name"], index + 1) for index in range(len(written))]
    containers = []
    for name, item in zip(names, written):
        api_port = free_port()
        taken.add(api_port)
        containers.append({**item, "name": name, "api_host_port": api_port})
    # The simulator's settings go where the style gives the environment: for every container, or in each one.
    if "acestream_gluetun_env" in style:
        style["acestream_gluetun_env"] = {**style["acestream_gluetun_env"], **simulator_env}
    else:
        containers = [{**item, "env": {**item.get("env", {}), **simulator_env}} for item in containers]
    style["acestream_gluetun_containers"] = containers
    replicas = style.get("acestream_engine_replicas", 2)
    per_engine = 2 if style.get("acestream_orchestrator_enabled") else 1  # the app's engines take two host ports
    if style.get("acestream_vpn_port_ranges"):
        style["acestream_vpn_port_ranges"] = {
            name: "%d-%d" % _free_range(per_engine * replicas + 2, taken) for name in names}
    else:
        style["acestream_port_range_host"] = "%d-%d" % _free_range(per_engine * replicas * len(names) + 2, taken)
    for name in SHARED_ENGINE:
        style[name] = base[name]
    if style.get("acestream_orchestrator_enabled"):
        for name in ("acestream_orchestrator_name", "acestream_orchestrator_image", "acestream_orchestrator_release",
                     "acestream_orchestrator_env"):
            style[name] = {**base[name], **style.get(name, {})} if name.endswith("_env") else base[name]
        style["acestream_orchestrator_port"] = base["acestream_orchestrator_port"]
        taken.add(style["acestream_orchestrator_port"])
        style["acestream_engine_image"] = ""
    return style


def _shape(stack):
    """What a stack is on the shared engine, where every Gluetun container gets the test's names and ports: the
    variables it sets, where the environment is given, its mode, its engine count and whether the app runs."""
    return (tuple(sorted(set(stack) | {"acestream_gluetun_containers"})), "acestream_gluetun_env" in stack,
            stack.get("acestream_vpn_mode", "single"), stack.get("acestream_engine_replicas", 2),
            bool(stack.get("acestream_orchestrator_enabled")))


def hosts_of(run_id, tmp_path):
    """``{host: variables}``: each documented style and each documented play, on the shared engine."""
    documented = {"minimal (every variable at its default)": INVENTORIES.minimal()}
    documented.update({"example %s" % where: stack for where, stack in INVENTORIES.documented_examples()})
    # A style whose shape a documented play or the minimal inventory already has (on the shared engine: the same
    # mode, the same variables set, the same engine count) would run the same stack twice: left out.
    shapes = {_shape(stack) for stack in documented.values()}
    documented.update({"style %s" % name: style for name, style in INVENTORIES.DOCUMENTED_STYLES.items()
                       if _shape(style) not in shapes})
    taken, hosts = set(), {}
    for index, (what, style) in enumerate(sorted(documented.items())):
        host = "stack%d" % index
        variables = on_a_shared_engine(style, run_id, tmp_path / host, taken)
        hosts[host] = {"description": what, **variables}
    return hosts


def run_everywhere(playbook, hosts, tmp_path, config=None, **extra):
    """One playbook of the collection on every host at once (a fork each)."""
    started = time.monotonic()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": {host: {k: v for k, v in variables.items() if k != "description"} for host, variables in hosts.items()},
    }}))
    run = run_playbook(playbook=ROOT / "playbooks" / f"{playbook}.yml", inventory=inventory, extra_vars=extra or None,
                       env={"ANSIBLE_FORKS": str(len(hosts))})
    if config is not None:
        report_line(config, "documented stacks: %s %s on %d hosts: %.0f s" % (
            playbook, " ".join("%s=%s" % item for item in extra.items() if "file" not in item[0]), len(hosts),
            time.monotonic() - started))
    return run


def stats(run, hosts):
    return {host: (run.data or {}).get("stats", {}).get(host, {}) for host in hosts}


def engines_of(docker_api, variables):
    pool = variables["acestream_pool_name"]
    if variables.get("acestream_orchestrator_enabled"):  # the app's engines carry its CONTAINER_LABEL
        return docker_api.containers(all=True, filters={"label": [f"acestream.app-pool={pool}"]})
    return docker_api.containers(all=True, filters={"label": [
        "acestream.managed-by=acestream.orchestrator.engine_pool", f"acestream.pool={pool}"]})


def test_every_documented_stack_through_every_entry_point(run_id, docker_api, tmp_path, request):
    hosts = hosts_of(run_id, tmp_path)
    assert len(hosts) >= 8, sorted(v["description"] for v in hosts.values())
    try:
        _every_entry_point(hosts, docker_api, tmp_path, request.config)
    finally:
        for variables in hosts.values():
            if variables.get("acestream_orchestrator_enabled"):
                remove_app(docker_api, variables)
            remove_stack(docker_api, variables)


def _every_entry_point(hosts, docker_api, tmp_path, config):
    def described(counts):
        return {hosts[host]["description"]: count for host, count in counts.items()}

    site = run_everywhere("site", hosts, tmp_path, config)
    assert site.rc == 0, failure_message(site)
    assert described({h: s.get("failures", 0) + s.get("unreachable", 0) for h, s in stats(site, hosts).items()}) == \
        described({h: 0 for h in hosts})
    for variables in hosts.values():
        assert len(engines_of(docker_api, variables)) == variables.get("acestream_engine_replicas", 2), \
            variables["description"]
    again = run_everywhere("site", hosts, tmp_path, config)
    assert again.rc == 0, failure_message(again)
    assert described({h: s.get("changed") for h, s in stats(again, hosts).items()}) == described({h: 0 for h in hosts})

    verify = run_everywhere("verify", hosts, tmp_path, config)
    assert verify.rc == 0, failure_message(verify)
    for host, variables in hosts.items():
        failed = [c for c in task_result(verify, "Observe the stack", host)["checks"] if not c["ok"]]
        assert failed == [], (variables["description"], failed)

    table = run_everywhere("status", hosts, tmp_path, config, acestream_status_file=str(tmp_path / "status.txt"))
    assert table.rc == 0, failure_message(table)
    json_out = run_everywhere("status", hosts, tmp_path, config, acestream_status_format="json",
                              acestream_status_file=str(tmp_path / "status.json"),
                              acestream_status_textfile=str(tmp_path / "{{ inventory_hostname }}.prom"))
    assert json_out.rc == 0, failure_message(json_out)
    # One file on the controller with every host's table (each ending with its drift), then every host's document.
    assert (tmp_path / "status.txt").read_text().count("drift: none") == len(hosts)
    documents = json.loads((tmp_path / "status.json").read_text())
    assert [doc["checks"]["failed"] for doc in documents] == [0] * len(hosts)
    for host, variables in hosts.items():
        assert "acestream_vpn_healthy" in (tmp_path / f"{host}.prom").read_text(), variables["description"]

    drift = run_everywhere("drift", hosts, tmp_path, config, acestream_drift_fail=True)
    assert drift.rc == 0, failure_message(drift)

    # The rulebook's action: an engine the collection runs is gone (the app replaces its own engines itself).
    pools = {host: v for host, v in hosts.items() if not v.get("acestream_orchestrator_enabled")}
    for variables in pools.values():
        docker_api.remove_container(engines_of(docker_api, variables)[0]["Id"], force=True)
    converge = run_everywhere("converge_engines", hosts, tmp_path, config)
    assert converge.rc == 0, failure_message(converge)
    assert described({h: s.get("changed", 0) > 0 for h, s in stats(converge, pools).items()}) == \
        described({h: True for h in pools})
    for variables in pools.values():
        assert len(engines_of(docker_api, variables)) == variables.get("acestream_engine_replicas", 2)
    converge = run_everywhere("converge_engines", hosts, tmp_path, config)
    assert converge.rc == 0, failure_message(converge)
    assert described({h: s.get("changed") for h, s in stats(converge, hosts).items()}) == \
        described({h: 0 for h in hosts})

    absent = run_everywhere("site", hosts, tmp_path, config, acestream_state="absent")
    assert absent.rc == 0, failure_message(absent)
    for variables in hosts.values():
        assert engines_of(docker_api, variables) == [], variables["description"]
        for item in variables["acestream_gluetun_containers"]:
            assert docker_api.containers(all=True, filters={"name": f"^/{item['name']}$"}) == []
