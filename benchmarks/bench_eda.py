"""Reaction time of the keep_converged rulebook: from a change behind Ansible's back to the stack converged.

One simulator stack (two VPNs, four engines), ``site`` once, then the real ``ansible-rulebook`` on it. For each
kind of change, N times (default 10): the forwarded port moves (VPN stopped then running through the control
server: converged = the forwarded engine runs with the new P2P port and answers), an engine is removed
(converged = a new container of that name answers), a Gluetun container is restarted (converged = its engines
carry its new start time and answer). Reports the median and p95 per kind, the converge runs per change, and the
runs during an idle period (none expected). Appends a section to docs/performance.md with --write.

Baseline, measured in the same run before the rulebook starts: the same changes answered by hand, an
``ansible-playbook converge_engines`` (as a user runs it: with the target probes) started the moment the change
is made (for a port move, the moment the new port is forwarded). The ratio is the rulebook's reaction over that.
  python benchmarks/bench_eda.py [--count 10] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "eda"))
# pylint: disable=wrong-import-position
import docker  # noqa: E402
import yaml  # noqa: E402
from rulebook import Rulebook  # noqa: E402  (puts tests/integration on the path)
from conftest import run_playbook  # noqa: E402
from test_keep_converged import (all_answer, answers, control, engines, gluetun_names, remove_stack,  # noqa: E402
                                 site, stack_vars, wait_for)

HEADING = "## Event-driven reaction (benchmarks/bench_eda.py)"


def p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def by_hand(stack):
    """The baseline's answer: the engine converge run by hand on the stack's inventory."""
    run = run_playbook(playbook=ROOT / "playbooks" / "converge_engines.yml", inventory=stack["inventory"])
    assert run.rc == 0, run.stdout[-3000:]


def port_move(api, stack, answer=None):
    vpn = gluetun_names(stack)[0]
    now = engines(api, stack)
    name = [n for n, c in now.items() if c["Labels"]["acestream.vpn"] == vpn
            and c["Labels"]["acestream.forwarded"] == "true"][0]
    client = control(stack, 0)
    start = time.monotonic()
    client.set_vpn_status("stopped")
    client.set_vpn_status("running")
    port = wait_for(lambda: (client.forwarded_ports() or [None])[0], timeout=30, interval=0.05, what="new port")
    if answer:
        answer(stack)

    def done():
        engine = engines(api, stack).get(name)
        return engine and engine["Labels"]["acestream.p2p-port"] == str(port) and engine["State"] == "running" \
            and answers(int(engine["Labels"]["acestream.http-port"]))

    wait_for(done, timeout=120, interval=0.1, what="forwarded engine re-created")
    return time.monotonic() - start


def engine_removed(api, stack, answer=None):
    now = engines(api, stack)
    name = sorted(n for n, c in now.items() if c["Labels"]["acestream.forwarded"] != "true")[0]
    old = now[name]["Id"]
    start = time.monotonic()
    api.remove_container(name, force=True)
    if answer:
        answer(stack)

    def done():
        engine = engines(api, stack).get(name)
        return engine and engine["Id"] != old and engine["State"] == "running" \
            and answers(int(engine["Labels"]["acestream.http-port"]))

    wait_for(done, timeout=120, interval=0.1, what="engine re-created")
    return time.monotonic() - start


def gluetun_restarted(api, stack, answer=None):
    vpn = gluetun_names(stack)[1]
    own = [n for n, c in engines(api, stack).items() if c["Labels"]["acestream.vpn"] == vpn]
    start = time.monotonic()
    api.restart(vpn, timeout=5)
    started = api.inspect_container(vpn)["State"]["StartedAt"]
    if answer:
        answer(stack)

    def done():
        now = engines(api, stack)
        return all(n in now and now[n]["Labels"]["acestream.vpn-started-at"] == started for n in own) \
            and all_answer(api, stack)

    wait_for(done, timeout=180, interval=0.1, what="engines repaired")
    return time.monotonic() - start


KINDS = (("forwarded port moved", port_move), ("engine removed", engine_removed),
         ("Gluetun restarted", gluetun_restarted))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="append the section to docs/performance.md")
    args = parser.parse_args()
    api = docker.APIClient(version="auto", timeout=120)
    tmp = Path(tempfile.mkdtemp(prefix="bench-eda-"))
    variables = stack_vars("be" + str(int(time.time()) % 10000), tmp, mode="redundant", replicas=4, range_size=6)
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, **variables}}}},
        sort_keys=False))
    stack = {"vars": variables, "inventory": inventory}
    rulebook = Rulebook(inventory, tmp / "ansible-rulebook.log")
    rows, baseline = [], {}
    try:
        assert site(inventory).rc == 0
        for label, change in KINDS:
            baseline[label] = [change(api, stack, answer=by_hand) for _round in range(args.count)]
            print(f"{label}, by hand: median {statistics.median(baseline[label]):.1f} s", flush=True)
        rulebook.start()
        rulebook.wait_idle()
        since = rulebook.text_size()
        time.sleep(30)
        idle_runs = len(rulebook.runs(since))
        for label, change in KINDS:
            times, runs = [], []
            for _round in range(args.count):
                rulebook.wait_idle(quiet=4)
                since = rulebook.text_size()
                times.append(change(api, stack))
                rulebook.wait_idle(since, quiet=4)
                runs.append(len(rulebook.runs(since)))
            rows.append((label, times, runs))
            print(f"{label}: median {statistics.median(times):.1f} s, p95 {p95(times):.1f} s, runs {runs}, "
                  f"{statistics.median(times) / statistics.median(baseline[label]):.2f}x by hand", flush=True)
        noop = site(inventory)
        print(f"idle 30 s: {idle_runs} runs; site afterwards: changed={noop.changed}")
    finally:
        rulebook.stop()
        remove_stack(api, variables)
    lines = ["", HEADING, "",
             f"The real ansible-rulebook 1.3.2 with `keep_converged` on one simulator stack (2 VPNs, 4 engines), "
             f"{args.count} changes of each kind, one after the other, on this machine (2 cores; other test "
             f"suites may share it). Time from the change to the stack converged (the engine running with the new "
             f"P2P port, the re-created or repaired engines answering through their VPN's published port); "
             f"`runs` counts the converge playbook runs each change caused. Baseline, measured first in the same "
             f"run: the same changes answered by hand, `ansible-playbook converge_engines` (with the target "
             f"probes) started the moment of the change (for a port move, the moment the new port is "
             f"forwarded); the ratio is the rulebook's median over it.", "",
             "| change | median | p95 | max | converge runs per change | by hand (median) | ratio |",
             "|---|---|---|---|---|---|---|"]
    for label, times, runs in rows:
        hand = statistics.median(baseline[label])
        lines.append(f"| {label} | {statistics.median(times):.1f} s | {p95(times):.1f} s | {max(times):.1f} s | "
                     f"{min(runs)}-{max(runs)} | {hand:.1f} s | {statistics.median(times) / hand:.2f}x |")
    lines += ["", f"With the stack converged, 30 s of watching gave {idle_runs} converge runs; `site` after all "
              f"the changes reported changed={noop.changed}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(ROOT / "docs" / "performance.md", "a", encoding="utf-8") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
