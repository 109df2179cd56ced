"""ansible-rulebook with the collection's keep_converged rulebook, run by the tests (stage eda, the fleet) and the
benchmark: its output in a log file, read for the playbook runs it started and the hosts each run touched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
# pylint: disable=wrong-import-position
from conftest import playbook_environment, wait_for  # noqa: E402

JAVA_HOME = os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64"
RULEBOOK = "acestream.orchestrator.keep_converged"
CONVERGE_TIMEOUT = 90
PLAY_START = re.compile(r"^PLAY \[(.+?)\] \*+", re.M)
RECAP = re.compile(r"^PLAY RECAP", re.M)
RECAP_HOST = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Rulebook(object):
    """ansible-rulebook running the collection's rulebook on an inventory; its output in a log file."""

    def __init__(self, inventory, log, env=None):
        self.inventory = inventory
        self.log = log
        self.env = env or {}
        self.proc = None
        self.offset = 0

    def start(self):
        environment = playbook_environment(json_output=False)
        environment.pop("ANSIBLE_STDOUT_CALLBACK", None)
        environment.update({"JAVA_HOME": JAVA_HOME, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                            "PYTHONUNBUFFERED": "1"})
        environment.update(self.env)
        self.offset = self.text_size()
        handle = open(self.log, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(Path(sys.executable).parent / "ansible-rulebook"), "-r", RULEBOOK, "-i", str(self.inventory),
             "-v"], stdout=handle, stderr=subprocess.STDOUT, env=environment, cwd=self.log.parent,
            start_new_session=True)
        handle.close()
        wait_for(lambda: self.alive() and "Waiting for events" in self.text()[self.offset:], timeout=90,
                 interval=0.2, what="ansible-rulebook waiting for events")

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"ansible-rulebook exited with {self.proc.returncode}:\n{self.text()[-4000:]}")
        return True

    def stop(self, sig=signal.SIGINT, cleanup=True):
        """``sig`` to ansible-rulebook's own process (SIGINT: its clean stop; SIGKILL: a crash), then, with
        ``cleanup``, whatever is left of its process group (nothing, when it cleaned up after itself)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if cleanup and self.proc:
            self.cleanup()

    def cleanup(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def text_size(self):
        return len(self.text())

    def runs(self, since=0):
        """The playbook runs (play names) started in the log after ``since`` characters."""
        return PLAY_START.findall(self.text()[since:])

    def idle(self, since=0):
        text = self.text()[since:]
        return len(PLAY_START.findall(text)) == len(RECAP.findall(text))

    def wait_idle(self, since=0, quiet=6.0, timeout=CONVERGE_TIMEOUT):
        """Wait until no run is going on and none started for ``quiet`` seconds (events settled)."""
        deadline = time.monotonic() + timeout
        last, last_change = None, time.monotonic()
        while time.monotonic() < deadline:
            self.alive()
            size = len(self.runs(since))
            if size != last:
                last, last_change = size, time.monotonic()
            if self.idle(since) and time.monotonic() - last_change >= quiet:
                return
            time.sleep(0.3)
        raise AssertionError(f"ansible-rulebook still busy after {timeout}s:\n{self.text()[-4000:]}")

    def recaps(self, since=0):
        """Per host, the recap lines of the runs after ``since`` characters: [(host, changed, unreachable, failed)]."""
        return [(h, int(c), int(u), int(f)) for h, c, u, f in RECAP_HOST.findall(self.text()[since:])]


def task_outcomes(text, task):
    """How each run of a task in the log ended, in order: ok, changed, skipping, failed, fatal."""
    pattern = r"^TASK \[" + re.escape(task) + r"\] \*+\n(?:(?!TASK \[).*\n)*?(ok|changed|skipping|failed|fatal):"
    return re.findall(pattern, text, re.M)


def task_outcome(text, task):
    """How the last run of a task in the log ended: ok, changed, skipping, failed, fatal."""
    found = task_outcomes(text, task)
    return found[-1] if found else None
