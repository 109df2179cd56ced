# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the unit tests share: the checkout importable as ``ansible_collections.acestream.orchestrator`` (a checkout
at ``<root>/ansible_collections/acestream/orchestrator``, the layout ``ansible-test units`` uses, is importable from
``<root>``; any other through the link build/collections/ansible_collections/acestream/orchestrator that
scripts/bootstrap.sh makes),
the helper modules of this folder importable by name, the ``fake`` Gluetun control servers, a fake
``clock`` for the probe's waits and a record of the ``socket_timeouts`` clients set.

No test asserts on wall-clock time (speed is measured in benchmarks/): waits run on the fake clock, and
timeouts are checked by what the client asked of its sockets and what the fake servers saw.
"""

from __future__ import annotations

import pathlib
import socket
import sys
import threading

import pytest

_HERE = pathlib.Path(__file__).resolve().parent
_CHECKOUT = _HERE.parents[1]
_IN_PLACE = (_CHECKOUT.name, _CHECKOUT.parent.name, _CHECKOUT.parents[1].name) == (
    "orchestrator", "acestream", "ansible_collections")
for _path in (str(_CHECKOUT.parents[2] if _IN_PLACE else _CHECKOUT / "build" / "collections"), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from gluetun_fake import FakeGluetun  # noqa: E402

from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_probe  # noqa: E402


@pytest.fixture
def fake():
    """``fake(**kwargs)`` starts a FakeGluetun control server on a local port; all are closed after the test."""
    servers = []

    def start(**kwargs):
        server = FakeGluetun(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


class FakeClock(object):
    """Stands in for the ``time`` module of the code under test: ``monotonic()`` moves only when ``sleep()``
    is called, by exactly the seconds asked, recorded in ``sleeps``. ``at(seconds, func)`` runs ``func`` in the
    sleeping thread once ``elapsed()`` has reached ``seconds``. Like time.sleep, a negative sleep is a
    ValueError; a wait that does not end fails after MAX_SLEEPS sleeps.
    """

    MAX_SLEEPS = 1000  # no wait in the tests polls more than a few times

    def __init__(self):
        self.start = self.now = 1000.0
        self.sleeps = []
        self._due = []
        self._lock = threading.Lock()

    def monotonic(self):
        return self.now

    def elapsed(self):
        return self.now - self.start

    def at(self, seconds, func):
        with self._lock:
            self._due.append((seconds, func))

    def sleep(self, seconds):
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
            elapsed = self.now - self.start
            due = [item for item in self._due if item[0] <= elapsed]
            self._due = [item for item in self._due if item[0] > elapsed]
        for _seconds, func in sorted(due, key=lambda item: item[0]):
            func()
        if len(self.sleeps) > self.MAX_SLEEPS:
            raise AssertionError("slept %d times on the fake clock: the wait does not end" % len(self.sleeps))


@pytest.fixture
def clock(monkeypatch):
    """A FakeClock for the waits of _gluetun_probe (probe_instances, read_forwarded_ports, the lookup's wait):
    its polls and sleeps, not its HTTP timeouts, which stay real."""
    fake_clock = FakeClock()
    monkeypatch.setattr(_gluetun_probe, "time", fake_clock)
    return fake_clock


class SocketTimeouts(list):
    """The timeouts given to client sockets, in order (None: no timeout)."""

    def bounded_by(self, limit):
        """True when some were given and every one is a number above 0 and at most ``limit`` seconds."""
        return bool(self) and all(t is not None and 0 < t <= limit for t in self)


@pytest.fixture
def socket_timeouts(monkeypatch):
    """Every timeout given to a socket opened by socket.create_connection (http.client's way) during the test,
    in order: the connect timeout, then each settimeout(). A missing connect timeout is recorded as None."""
    seen = SocketTimeouts()
    real_create_connection = socket.create_connection

    class Watched(object):
        def __init__(self, sock):
            self._sock = sock

        def settimeout(self, value):
            seen.append(value)
            self._sock.settimeout(value)

        def __getattr__(self, name):
            return getattr(self._sock, name)

    def create_connection(address, *args, **kwargs):
        timeout = args[0] if args else kwargs.get("timeout")
        seen.append(timeout if isinstance(timeout, (int, float)) else None)
        return Watched(real_create_connection(address, *args, **kwargs))

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen
