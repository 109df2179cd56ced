# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH connection through which the stack_events source watches a remote Docker host, as Ansible reaches it: one
OpenSSH master connection forwarding the host's Docker socket and its control servers, and reading the kept API key.

Private to this collection (the EDA source imports it); standard library only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time


def read_key_file(path):
    """The text of a local file (a kept API key), or None when it is empty or cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


class SshTunnel(object):
    """One OpenSSH master connection to a remote host, made with the settings the inventory gives Ansible (user,
    port, private key, ssh arguments): the host's Docker socket is forwarded to a local socket, each control server
    to a local port once its address on the host is known (control servers listen on the host's loopback by
    default), and the kept API key is read through it. A dead connection is made again by the next use."""

    def __init__(self, settings, timeout):
        self.settings = settings
        self.timeout = timeout
        self.dir = None
        self.proc = None
        self.forwards = {}
        self.lock = threading.RLock()
        self.closed = False

    @property
    def socket(self):
        return os.path.join(self.dir, "docker.sock")

    @property
    def control_path(self):
        return os.path.join(self.dir, "ctl")

    def command(self, *options, remote=None, master=False):
        """The ssh command line for this host: ``options`` before the destination, the ``remote`` command after;
        ``master``: the connection the others go through (ControlMaster=yes; never -M as well: twice is "ask")."""
        settings = self.settings
        # ssh keeps the first value of an option: the user's ssh arguments cannot move this master into the
        # background (ControlPersist) nor make another command a master of its own.
        cmd = ["ssh", "-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
               "-o", "ConnectTimeout=%d" % max(1, int(self.timeout)), "-o", "ControlPersist=no",
               "-o", "ControlMaster=%s" % ("yes" if master else "no"), "-S", self.control_path]
        if settings.get("user"):
            cmd += ["-l", settings["user"]]
        if settings.get("port"):
            cmd += ["-p", str(settings["port"])]
        if settings.get("private_key_file"):
            cmd += ["-i", settings["private_key_file"]]
        cmd += list(settings.get("args") or []) + list(options) + [settings["destination"]]
        return cmd + [remote] if remote else cmd

    def alive(self):
        proc, directory = self.proc, self.dir  # read once: another thread may stop the connection meanwhile
        return proc is not None and directory is not None and proc.poll() is None \
            and os.path.exists(os.path.join(directory, "docker.sock"))

    def ensure(self):
        """Connect (again) unless connected; raises OSError with ssh's own words when it cannot."""
        with self.lock:
            if self.closed:
                raise OSError("the source is closing")
            if self.alive():
                return
            self._stop()
            if self.dir is None:
                self.dir = tempfile.mkdtemp(prefix="acestream-eda-")  # 0700: the sockets are the host's Docker
            for path in (self.socket, self.control_path):
                if os.path.lexists(path):
                    os.unlink(path)
            self.forwards = {}
            log = os.path.join(self.dir, "ssh.log")
            # The master's own session reads this process's pipe: when the source ends, even killed, the pipe
            # closes, the remote `cat` ends and so does the connection (no ssh left behind).
            with open(log, "wb") as errors:
                self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                    self.command("-o", "ExitOnForwardFailure=yes",
                                 "-L", "%s:%s" % (self.socket, self.settings["docker_socket"]), remote="cat",
                                 master=True),
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
            deadline = time.monotonic() + self.timeout + 5
            while not os.path.exists(self.socket):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._stop()
                    with open(log, "rb") as handle:
                        said = handle.read().decode(errors="replace").strip().splitlines()
                    raise OSError("ssh to %s: %s" % (self.settings["destination"],
                                                     said[-1] if said else "no connection"))
                time.sleep(0.05)

    def docker_host(self):
        self.ensure()
        return "unix://" + self.socket

    def forward(self, host, port):
        """A local port forwarded to ``host:port`` as the remote host reaches it."""
        with self.lock:
            self.ensure()
            key = (host, int(port))
            if key not in self.forwards:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", 0))
                    local = probe.getsockname()[1]
                target = "[%s]" % host if ":" in host else host
                proc = subprocess.run(self.command("-O", "forward", "-L", "127.0.0.1:%d:%s:%d" % (local, target, key[1])),
                                      capture_output=True, timeout=self.timeout + 5, check=False)
                if proc.returncode != 0:
                    raise OSError("ssh to %s: cannot forward to %s:%d: %s" % (
                        self.settings["destination"], host, key[1], proc.stderr.decode(errors="replace").strip()))
                self.forwards[key] = local
            return self.forwards[key]

    def read_file(self, path):
        """``(text, None)`` of a file on the remote host, or ``(None, why)`` (the text goes through a pipe, never
        into a log or an argument)."""
        try:
            self.ensure()
            proc = subprocess.run(self.command(remote="cat -- %s" % shlex.quote(path)), capture_output=True,
                                  timeout=self.timeout + 5, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, str(exc)
        if proc.returncode != 0:
            said = proc.stderr.decode(errors="replace").strip().splitlines()
            return None, "cannot read %s on %s: %s" % (path, self.settings["destination"],
                                                       said[-1] if said else "exit %d" % proc.returncode)
        return proc.stdout.decode(errors="replace").strip() or None, None

    def _stop(self):
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc = None

    def close(self):
        with self.lock:
            self.closed = True
            self._stop()
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
