# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark engine_pool, gluetun_status and stack_files against their baselines, in one process, on the real Docker
Engine (stack_files: on a temporary directory).

Every number is measured in this run and printed next to the baseline it is compared with, as a ratio.
Nothing here asserts a time: the targets are printed with the verdict, and docs/performance.md is rewritten
with the table and the machine's facts.

    benchmarks/run.sh                 # N = 10, 50 and 100
    benchmarks/run.sh --sizes 10 50 --publish 20 100 500 1000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import docker  # noqa: E402  pylint: disable=wrong-import-position

from conftest import (  # noqa: E402  pylint: disable=wrong-import-position
    ENGINE_IMAGE, GLUETUN_IMAGE, TEST_LABEL, free_port, free_port_range, health_of, run_playbook, wait_for)

RUN = "bench" + uuid.uuid4().hex[:4]
ROWS = []


def row(group, what, seconds, baseline=None, target=None, limit=None, note=""):
    """One measurement; with a baseline, its ratio; with a limit (the highest ratio the target allows), a verdict."""
    ratio = seconds / baseline if baseline else None
    verdict = "" if limit is None or ratio is None else ("met" if ratio <= limit else "MISSED")
    ROWS.append(dict(group=group, what=what, seconds=seconds, ratio=ratio, target=target, verdict=verdict, note=note))
    shown = f"{seconds:8.2f}s" + (f"  x{ratio:6.2f}" if ratio is not None else " " * 9)
    print(f"  {group:<24} {what:<58} {shown}  {target or ''} {verdict} {note}", flush=True)


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    value = fn(*args, **kwargs)
    return time.monotonic() - start, value


def task_seconds(run, name):
    """The task's own time (as ansible-playbook's JSON callback records it), without process start-up."""
    for play in run.data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                duration = task["task"]["duration"]
                start = datetime.datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))
                end = datetime.datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
                return (end - start).total_seconds()
    raise KeyError(name)


def must(run, what):
    if run.rc != 0:
        sys.stderr.write(run.stdout[-4000:] + run.stderr[-4000:])
        raise SystemExit(f"{what} failed (rc={run.rc})")
    return run


# ------------------------------------------------------------------------------------------ fixtures
def start_gluetun(api, name, publish_range=None, env=None):
    # docker-py takes container ports as ints here ("8000/tcp" strings would become "8000/tcp/tcp").
    bindings = {8000: ("127.0.0.1", free_port())}
    if publish_range:
        for port in range(publish_range[0], publish_range[1] + 1):
            bindings[port] = ("127.0.0.1", port)
    environment = {"GLUETUN_SIM_HEALTHY_AFTER": "1", "HTTP_CONTROL_SERVER_ADDRESS": ":8000"}
    environment.update(env or {})
    container = api.create_container(GLUETUN_IMAGE, name=name, environment=environment, ports=list(bindings),
                                     host_config=api.create_host_config(port_bindings=bindings),
                                     labels={TEST_LABEL: RUN})
    api.start(container["Id"])
    return container["Id"], bindings[8000][1]


def remove_all(api, filters):
    containers = api.containers(all=True, filters=filters)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: api.remove_container(c["Id"], force=True), containers))


def engine_env(http_port, https_port):
    conf = f"--http-port={http_port}\n--https-port={https_port}\n--bind-all"
    return {"CONF": conf, "HTTP_PORT": str(http_port), "HTTPS_PORT": str(https_port), "BIND_ALL": "true"}


# ------------------------------------------------------------------------------------------ measures
def bench_pool(api, n):
    group = f"engines N={n}"
    gluetun = f"{RUN}-g{n}"
    rng = free_port_range(n)
    https = free_port_range(n, low=40000, high=50000)
    gid = start_gluetun(api, gluetun, publish_range=rng)[0]
    wait_for(lambda: health_of(api, gluetun) == "healthy", timeout=120, what="gluetun healthy")

    # Baseline 1: the daemon's own limit, raw sequential SDK create + start of identical containers.
    def raw():
        for i in range(n):
            c = api.create_container(ENGINE_IMAGE, name=f"{RUN}-raw{n}-{i}",
                                     environment=engine_env(rng[0] + i, https[0] + i),
                                     host_config=api.create_host_config(network_mode=f"container:{gid}"),
                                     labels={TEST_LABEL: RUN, "bench": f"raw{n}"})
            api.start(c["Id"])
    raw_s = timed(raw)[0]
    row(group, "raw Docker SDK create+start, sequential (daemon limit)", raw_s)
    remove_all(api, {"label": f"bench=raw{n}"})

    # Baseline 2: a playbook looping community.docker.docker_container over the same engines.
    loop_task = {
        "name": "loop", "community.docker.docker_container": {
            "name": "{{ item.name }}", "image": ENGINE_IMAGE, "network_mode": f"container:{gid}",
            "env": "{{ item.env }}", "labels": {TEST_LABEL: RUN, "bench": f"loop{n}"}, "state": "started"},
        "loop": [{"name": f"{RUN}-loop{n}-{i}", "env": engine_env(rng[0] + i, https[0] + i)} for i in range(n)],
        "loop_control": {"label": "{{ item.name }}"},
    }
    apply_run = must(run_playbook([loop_task]), "docker_container loop")
    loop_apply = task_seconds(apply_run, "loop")
    row(group, "docker_container loop: apply", loop_apply, raw_s)
    noop_run = must(run_playbook([loop_task]), "docker_container loop rerun")
    loop_noop = task_seconds(noop_run, "loop")
    row(group, "docker_container loop: no-op rerun", loop_noop)
    remove_all(api, {"label": f"bench=loop{n}"})

    # engine_pool.
    pool = f"{RUN}p{n}"
    args = {"name": pool, "replicas": n, "vpn_containers": [gluetun], "port_range": f"{rng[0]}-{rng[1]}",
            "https_port_range": f"{https[0]}-{https[1]}", "image": ENGINE_IMAGE, "forwarded_port": "off",
            "labels": {TEST_LABEL: RUN}}
    pool_task = {"name": "pool", "acestream.orchestrator.engine_pool": args}
    converge = must(run_playbook([pool_task]), "engine_pool converge")
    converge_s = task_seconds(converge, "pool")
    row(group, "engine_pool converge 0 -> N", converge_s, raw_s, "<= 1.3x raw (N >= 50)", 1.3 if n >= 50 else None)
    engines = [e["name"] for e in converge.result("pool")["engines"]]

    noop = must(run_playbook([pool_task]), "engine_pool no-op")
    noop_s = task_seconds(noop, "pool")
    assert noop.result("pool")["changed"] is False, "no-op rerun reported a change"

    info_task = {"name": "info", "community.docker.docker_container_info": {"name": "{{ item }}"},
                 "loop": engines}
    info_s = task_seconds(must(run_playbook([info_task]), "docker_container_info loop"), "info")
    host_info_task = {"name": "hostinfo", "community.docker.docker_host_info": {
        "containers": True, "containers_all": True, "containers_filters": {"label": f"acestream.pool={pool}"}}}
    host_info_s = task_seconds(must(run_playbook([host_info_task]), "docker_host_info"), "hostinfo")
    ping_s = task_seconds(must(run_playbook([{"name": "ping", "ansible.builtin.ping": {}}]), "ping"), "ping")

    row(group, "docker_container_info loop over the engines", info_s)
    row(group, "one docker_host_info task, containers by label", host_info_s)
    row(group, "ansible.builtin.ping task (floor of any task)", ping_s)
    row(group, "engine_pool no-op rerun vs docker_container_info loop", noop_s, info_s, "<= 0.05x, >= 20x faster (N >= 50)",
        0.05 if n >= 50 else None)
    row(group, "engine_pool no-op rerun vs docker_host_info", noop_s, host_info_s, "<= 1.5x", 1.5)
    row(group, "engine_pool no-op rerun vs docker_container loop no-op", noop_s, loop_noop)

    api.remove_container(engines[-1], force=True)
    check = must(run_playbook([pool_task], check=True), "engine_pool check")
    check_s = task_seconds(check, "pool")
    assert check.result("pool")["changed"] is True, "check with one engine missing reported no change"
    row(group, "engine_pool --check, one engine missing vs info loop", check_s, info_s, "<= 0.05x, >= 20x faster (N >= 50)",
        0.05 if n >= 50 else None)
    row(group, "engine_pool --check, one engine missing vs host_info", check_s, host_info_s, "<= 1.5x", 1.5)
    must(run_playbook([pool_task]), "engine_pool repair")

    half = dict(pool_task, **{"acestream.orchestrator.engine_pool": dict(args, replicas=n // 2)})
    scale_s = task_seconds(must(run_playbook([half]), "engine_pool scale down"), "pool")
    row(group, "engine_pool scale N -> N/2", scale_s)

    absent = dict(pool_task, **{"acestream.orchestrator.engine_pool": dict(args, state="absent")})
    must(run_playbook([absent]), "engine_pool absent")
    api.remove_container(gid, force=True)


def bench_gluetun_status(api, servers=10, timeout=2):
    group = "gluetun_status"
    names = [f"{RUN}-st{i}" for i in range(servers)]
    with concurrent.futures.ThreadPoolExecutor(servers) as pool:
        list(pool.map(lambda name: start_gluetun(api, name), names))
    for name in names:
        wait_for(lambda name=name: health_of(api, name) == "healthy", timeout=120, what=f"{name} healthy")
    task = {"name": "status", "acestream.orchestrator.gluetun_status": {
        "instances": [{"name": name} for name in names], "timeout": timeout, "fail_on_unhealthy": False}}
    all_up = task_seconds(must(run_playbook([task]), "gluetun_status"), "status")
    row(group, f"{servers} control servers, all answering", all_up)
    subprocess.run(["docker", "exec", names[-1], "gluetun-sim", "set-fault", "hang"], check=True)
    one_hung = must(run_playbook([task]), "gluetun_status (one hung)")
    hung_s = task_seconds(one_hung, "status")
    row(group, f"{servers} control servers, one hung (timeout={timeout}s)", hung_s, timeout + 1.0,
        f"<= timeout + 1 s = {timeout + 1}s (ratio <= 1)", 1.0)
    # What the hung server itself costs: the same task with it hung, minus with it answering.
    # About one timeout (not one per request or per server): within a quarter of it.
    row(group, "what the hung one adds (one hung - all answering) vs timeout", hung_s - all_up, timeout,
        "about 1x the timeout (<= 1.25x)", 1.25)
    remove_all(api, {"label": f"{TEST_LABEL}={RUN}"})


def bench_publish(api, sizes):
    group = "publish a range on Gluetun"
    for size in sizes:
        rng = free_port_range(size, low=33000, high=39000)
        name = f"{RUN}-pub{size}"
        create_s = timed(start_gluetun, api, name, publish_range=rng)[0]
        remove_s = timed(api.remove_container, name, force=True)[0]
        row(group, f"{size} ports: create + start", create_s)
        row(group, f"{size} ports: remove", remove_s)


def bench_files(counts):
    """A stack's files written by one stack_files task against the loop of ansible.builtin.copy tasks the roles
    used before (two module calls a file): from nothing, and again with nothing to change."""
    group = "stack_files"
    import tempfile  # pylint: disable=import-outside-toplevel
    for count in counts:
        root = Path(tempfile.mkdtemp(prefix=f"{RUN}-files-"))
        files = [{"path": str(root / "{kind}" / f"f{i}.env"), "content": f"KEY{i}=value-{i}\n" * 20, "mode": "0600"}
                 for i in range(count)]
        copy_args = {"dest": "{{ item.path }}", "content": "{{ item.content }}", "mode": "{{ item.mode }}"}
        copy = {"name": "copy", "ansible.builtin.copy": copy_args,
                "loop": [dict(f, path=f["path"].format(kind="copy")) for f in files]}
        stack = {"name": "stack_files", "acestream.orchestrator.stack_files": {
            "directories": [{"path": str(root / "stack"), "mode": "0700"}],
            "files": [{"path": f["path"].format(kind="stack"), "secret_content": f["content"], "mode": f["mode"]}
                      for f in files]}}
        (root / "copy").mkdir(mode=0o700)
        for what in ("from nothing", "nothing to change"):
            base = task_seconds(must(run_playbook([copy]), "copy loop"), "copy")
            row(group, f"{count} files, {what}: copy loop (baseline)", base)
            ours = task_seconds(must(run_playbook([stack]), "stack_files"), "stack_files")
            row(group, f"{count} files, {what}: one stack_files task", ours, base,
                "<= 0.5x the copy loop (for 4 files or more)" if count >= 4 else None, 0.5 if count >= 4 else None)
        subprocess.run(["rm", "-rf", str(root)], check=True)


def bench_playbooks(api, sizes):
    """The entry points that change nothing against verify (one stack_info observation) on the same stack, and
    verify and status against the engine count: whole ansible-playbook runs, wall time, best of three."""
    import tempfile  # pylint: disable=import-outside-toplevel
    from roles_helpers import remove_stack, run_collection_playbook, stack_vars  # pylint: disable=import-outside-toplevel
    group = "playbooks"
    tmp = Path(tempfile.mkdtemp(prefix=f"{RUN}-playbooks-"))
    variables = stack_vars(RUN, tmp, mode="redundant", replicas=min(sizes), range_size=max(sizes),
                           acestream_engine_forwarded_port_timeout=5)
    best = {}
    names = ("verify", "site", "converge_engines", "status")
    try:
        for n in sizes:
            variables["acestream_engine_replicas"] = n
            must(run_collection_playbook("site", variables, tmp), f"site with {n} engines")
            for name in names:
                times = []
                for _attempt in range(3):
                    seconds, run = timed(run_collection_playbook, name, variables, tmp)
                    must(run, f"{name} with {n} engines")
                    if name in ("site", "converge_engines") and run.changed:
                        raise SystemExit(f"the {name} rerun with {n} engines changed {run.changed} task(s)")
                    times.append(seconds)
                best[name, n] = min(times)
        low, high = min(sizes), max(sizes)
        targets = {"site": 1.3, "converge_engines": 1.0}  # for the stack of the fewest engines
        for n in sizes:
            row(group, f"{n} engines: verify (baseline)", best["verify", n])
            for name in names[1:]:
                what = "nothing to change" if name != "status" else "table"
                limit = targets.get(name) if n == low else None
                row(group, f"{n} engines: {name} ({what}) vs verify", best[name, n], best["verify", n],
                    f"<= {limit}x verify" if limit else None, limit)
        for name in ("verify", "status"):
            row(group, f"{name}: {high} engines vs {low}", best[name, high], best[name, low],
                f"<= 1.3x {low} engines", 1.3)
    finally:
        remove_stack(api, variables)
        subprocess.run(["rm", "-rf", str(tmp)], check=True)


def machine_facts(api):
    version = api.version()
    mem_kib = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
    import ansible.release  # pylint: disable=import-outside-toplevel
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{os.cpu_count()} cores, {platform.machine()}"),
        ("memory", f"{mem_kib / 1024 / 1024:.1f} GiB"),
        ("kernel", platform.release()),
        ("Docker Engine", f"{version['Version']} (API {version['ApiVersion']})"),
        ("Python", platform.python_version()),
        ("ansible-core", ansible.release.__version__),
    ]


def earlier_rows(path, measured):
    """The rows of an earlier report whose groups this run did not measure, with that report's date: a partial run
    (--skip) keeps them instead of dropping them."""
    if not Path(path).exists():
        return [], None
    text = Path(path).read_text()
    date = next((line.split("|")[2].strip() for line in text.splitlines() if line.startswith("| date |")), None)
    kept = []
    for line in text.split("## Results", 1)[-1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] not in ("group", "---") and not cells[0].startswith("---"):
            if cells[0] not in measured:
                kept.append(line.rstrip())
    return kept, date


def foreign_sections(path, guidance):
    """The sections of the earlier report that this script does not write (another benchmark's, such as
    benchmarks/bench_eda.py's), kept as they are."""
    if not Path(path).exists():
        return []
    ours = {"Machine", "Rows kept"}
    if guidance.exists():
        ours |= {line[3:].strip() for line in guidance.read_text().splitlines() if line.startswith("## ")}
    kept = []
    for section in re.split(r"(?m)^(?=## )", Path(path).read_text())[1:]:
        title = section.splitlines()[0][3:].strip()
        if not title.startswith("Results") and title not in ours and not section.startswith("## stack_files"):
            kept += ["", section.strip()]
    return kept


def write_report(facts, args):
    kept, kept_date = earlier_rows(args.report, set(r["group"] for r in ROWS))
    lines = ["# Performance", "",
             "Measured by `benchmarks/run.sh` (`make bench`) against the real Docker Engine and the simulator",
             "images. Each ratio compares a measurement with the baseline named in its row, measured in the same",
             "run. Task times are the tasks' own durations as ansible-playbook records them (no process start-up).",
             "", "## Machine", "", "| fact | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts]
    lines += ["", f"## Results (`{' '.join(sys.argv[1:]) or 'defaults'}`)", "",
              "| group | measurement | seconds | ratio | target | verdict |", "|---|---|---:|---:|---|---|"]
    for r in ROWS:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        lines.append(f"| {r['group']} | {r['what']} | {r['seconds']:.2f} | {ratio} | {r['target'] or ''} "
                     f"| {r['verdict']} |")
    if kept:
        lines += ["", f"Rows kept from the run of {kept_date} (groups this run skipped):", "",
                  "| group | measurement | seconds | ratio | target | verdict |", "|---|---|---:|---:|---|---|"] + kept
    guidance = ROOT / "docs" / "performance-guidance.md"
    if guidance.exists():
        lines += ["", guidance.read_text().strip()]
    lines += foreign_sections(args.report, guidance)
    Path(args.report).write_text("\n".join(lines) + "\n")
    print(f"\nwrote {args.report}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--publish", type=int, nargs="+", default=[20, 100, 500])
    parser.add_argument("--report", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--files", type=int, nargs="+", default=[2, 6, 20],
                        help="stack_files: numbers of files (a redundant stack writes 6: 2 env, 2 auth, key, compose)")
    parser.add_argument("--playbooks", type=int, nargs="+", default=[4, 40],
                        help="verify and status playbooks: engine counts (the first is the baseline)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pool", "status", "publish", "files", "playbooks"])
    args = parser.parse_args()
    api = docker.APIClient(version="auto", timeout=300)
    facts = machine_facts(api)
    print(f"run {RUN}: " + ", ".join(f"{k} {v}" for k, v in facts))
    try:
        if "pool" not in args.skip:
            for n in args.sizes:
                bench_pool(api, n)
        if "status" not in args.skip:
            bench_gluetun_status(api)
        if "publish" not in args.skip:
            bench_publish(api, args.publish)
        if "files" not in args.skip:
            bench_files(args.files)
        if "playbooks" not in args.skip:
            bench_playbooks(api, args.playbooks)
    finally:
        remove_all(api, {"label": f"{TEST_LABEL}={RUN}"})
    write_report(facts, args)
    print("median ratio of the engine_pool rows:",
          f"{statistics.median([r['ratio'] for r in ROWS if r['ratio'] and 'engine_pool' in r['what']] or [0]):.2f}")


if __name__ == "__main__":
    main()
