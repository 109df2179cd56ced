# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Gluetun control server on a real local socket, per release, for the unit tests.

Implements what docs/gluetun_status.md and the control-server reference describe: the routes of each
release, the answer shapes of the port routes, the 301 of the old port route (v3.41+), the auth layer
(roles with apikey / basic / none, the built-in public role up to v3.41.3, the default role from v3.41.0),
the status codes for unknown routes (400 / 401 / 404), JSON sent as text/plain, and faults (hang, 500,
non-JSON, a body that never ends). Every request is recorded with its headers.

No test asserts on wall-clock time: a request that hangs or trickles is held until the client hangs up
(recorded in ``stalls``: which request, and whether the client gave up on its own), and every request and stall
carries a number of one sequence shared by all servers (``next_seq``), which orders events across servers, so
that a test can tell which requests were open at the same moment. HANG_GUARD only keeps a broken client from
holding a test forever: no passing test gets near it.

Tests get servers from the ``fake`` fixture (tests/unit/conftest.py), which closes them afterwards.
"""

from __future__ import annotations

import base64
import itertools
import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASES = ("v3.39.0", "v3.40.0", "v3.41.1", "v3.41.3", "latest")

PUBLIC_ROUTES = {
    "GET /v1/version", "GET /v1/vpn/status", "PUT /v1/vpn/status", "GET /v1/openvpn/status",
    "PUT /v1/openvpn/status", "GET /v1/openvpn/portforwarded", "GET /v1/dns/status", "PUT /v1/dns/status",
    "GET /v1/updater/status", "PUT /v1/updater/status", "GET /v1/publicip/ip",
}


HANG_GUARD = 30.0  # seconds a stalled request is held at most; a hang guard, not a performance bound

_SEQUENCE = itertools.count(1)
_SEQUENCE_LOCK = threading.Lock()


def next_seq():
    """The next number of one sequence shared by every fake server: which event came first, without a clock."""
    with _SEQUENCE_LOCK:
        return next(_SEQUENCE)


def _client_closed(connection, wait):
    """True once the client has closed its end of ``connection`` (end of file or reset), waiting up to ``wait``."""
    try:
        readable, _writable, _failed = select.select([connection], [], [], wait)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def release_tuple(version):
    if version == "latest":
        return (99, 0, 0)
    major, minor, patch = version.lstrip("v").split(".")
    return int(major), int(minor), int(patch)


class FakeGluetun(object):
    """One simulated control server. Mutate the attributes between requests to change its answers."""

    def __init__(self, version="latest", roles=None, default_role=None, ports=(41234,), vpn_status="running",
                 public_ip="203.0.113.7", country="Netherlands", region="North Holland", city="Amsterdam"):
        self.version = version
        self.roles = roles            # None: no auth file; list of dicts like the TOML [[roles]]
        self.default_role = default_role
        self.ports = list(ports)
        self.vpn_status = vpn_status
        self.public_ip = public_ip
        self.country, self.region, self.city = country, region, city
        self.fault = None             # None | "hang" | "500" | "nonjson" | "trickle" | "offsite" | "garbage"
        self.fault_routes = None      # None = every route, else a set of paths
        self.after_put = None         # status to report after a PUT (default: the requested one)
        self.absent = set()           # paths this server answers 404 to, as if the release lacked them
        self.put_hangs = False        # a PUT of the VPN status applies at once, but its answer hangs
        self.hold = None              # an Event: every request waits for it before being answered
        self.requests = []            # method, path, headers, body; seq on arrival, done once answered
        self.stalls = []              # fault, path; seq at start and end; ended: client closed | released | guard
        self.stalled = threading.Event()  # set once a request stalls (hangs or trickles)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.release_hang = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake.handle(self, "GET")

            def do_PUT(self):
                fake.handle(self, "PUT")

            def do_POST(self):
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def close(self):
        self.release_hang.set()
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------------------------------------
    def paths(self):
        return [r["path"] for r in self.requests]

    def ended_stalls(self, count=1, guard=HANG_GUARD):
        """The stalls, once there are ``count`` and all have ended (the server notices a client hanging up
        within a tick of it); ``guard`` only keeps a broken client from holding the test forever."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.stalls) >= count and all(s["ended"] for s in self.stalls), guard)
            return [dict(stall) for stall in self.stalls]

    def known_routes(self):
        routes = set(PUBLIC_ROUTES) | {"GET /v1/vpn/settings", "GET /v1/openvpn/settings"}
        if release_tuple(self.version) >= (3, 41, 0):
            routes.add("GET /v1/portforward")
        return routes

    def _auth_ok(self, handler, route):
        """None when allowed, else the status code to answer (401)."""
        release = release_tuple(self.version)
        if release <= (3, 39, 0):
            return None
        roles = list(self.roles or [])
        matching = [role for role in roles if route in role.get("routes", [])]
        if not matching and self.default_role and release >= (3, 41, 0):
            matching = [self.default_role]
        if not matching and not roles and release <= (3, 41, 3) and route in PUBLIC_ROUTES | {"GET /v1/portforward"}:
            return None
        for role in matching:
            auth = role.get("auth", "none")
            if auth == "none":
                return None
            if auth == "apikey" and handler.headers.get("X-API-Key") == role.get("apikey"):
                return None
            if auth == "basic":
                expected = "Basic " + base64.b64encode(
                    ("%s:%s" % (role.get("username"), role.get("password"))).encode()).decode()
                if handler.headers.get("Authorization") == expected:
                    return None
        return 401

    def _send(self, handler, status, body, location=None, content_type="text/plain; charset=utf-8"):
        data = body.encode() if isinstance(body, str) else body
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        if location:
            handler.send_header("Location", location)
        if status == 401:
            handler.send_header("WWW-Authenticate", 'Basic realm="gluetun"')
        handler.end_headers()
        handler.wfile.write(data)

    def _json(self, handler, value):
        self._send(handler, 200, json.dumps(value) + "\n")

    def handle(self, handler, method):
        path = handler.path.split("?")[0]
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = {"method": method, "path": path, "headers": dict(handler.headers.items()),
                  "body": body.decode("utf-8", "replace"), "seq": next_seq(), "done": None}
        with self.lock:
            self.requests.append(record)
        if self.hold is not None:
            self.hold.wait(HANG_GUARD)
        self.answer(handler, method, path, body)
        record["done"] = next_seq()

    def stall(self, handler, fault, path):
        """Hold a request: ``hang`` answers nothing, ``trickle`` sends headers then a byte every 0.1 s of a body
        that never ends; until the client hangs up, the server is closed, or HANG_GUARD. Recorded in stalls."""
        stall = {"fault": fault, "path": path, "start": next_seq(), "end": None, "ended": None}
        with self.lock:
            self.stalls.append(stall)
        self.stalled.set()
        ended = "guard"
        deadline = time.monotonic() + HANG_GUARD
        try:
            if fault == "trickle":
                handler.send_response(200)
                handler.send_header("Content-Length", "100000")
                handler.end_headers()
            while time.monotonic() < deadline:
                if self.release_hang.is_set():
                    ended = "released"
                    break
                if fault == "trickle":
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                if _client_closed(handler.connection, 0.1 if fault == "trickle" else 0.05):
                    ended = "client closed"
                    break
        except OSError:
            ended = "client closed"
        handler.close_connection = True
        with self.changed:
            stall["end"], stall["ended"] = next_seq(), ended
            self.changed.notify_all()

    def answer(self, handler, method, path, body):
        release = release_tuple(self.version)
        route = "%s %s" % (method, path)
        if self.fault and (self.fault_routes is None or path in self.fault_routes):
            if self.fault in ("hang", "trickle"):
                return self.stall(handler, self.fault, path)
            if self.fault == "500":
                return self._send(handler, 500, "internal error: simulated\n")
            if self.fault == "nonjson":
                return self._send(handler, 200, "<html>not gluetun</html>", content_type="text/html")
            if self.fault == "offsite":
                return self._send(handler, 301, "", location="http://127.0.0.2:%d%s" % (self.port, path))
            if self.fault == "garbage":
                handler.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n")
                handler.close_connection = True
                return
        if path in self.absent:
            return self._send(handler, 404, "404 page not found\n")
        known = route in self.known_routes()
        if release <= (3, 39, 0):
            if not known:
                return self._send(handler, 400, "bad request: route not found\n")
        else:
            if not known and release >= (3, 41, 2):  # routing before authentication from v3.41.2
                return self._send(handler, 404, "404 page not found\n")
            status = self._auth_ok(handler, route)
            if status is not None:
                return self._send(handler, status, "Unauthorized\n")
            if not known:  # v3.39.1 .. v3.41.1: an unknown route is 401 whatever the credentials
                return self._send(handler, 401, "Unauthorized\n")
        return self.route(handler, method, path, body, release)

    def route(self, handler, method, path, body, release):
        if path == "/v1/version":
            return self._json(handler, {"version": self.version, "commit": "abcdef0", "created": "2025-01-01"})
        if path in ("/v1/vpn/status", "/v1/openvpn/status"):
            if method == "PUT":
                try:
                    wanted = json.loads(body.decode())["status"]
                except (ValueError, KeyError, TypeError):
                    return self._send(handler, 400, "bad body\n")
                if wanted not in ("running", "stopped"):
                    return self._send(handler, 400, "invalid status %r\n" % wanted)
                if wanted == self.vpn_status:
                    return self._json(handler, {"outcome": "already %s" % wanted})
                self.vpn_status = self.after_put or wanted
                if wanted == "stopped":
                    self.ports = []
                if self.put_hangs:
                    return self.stall(handler, "hang", path)
                return self._json(handler, {"outcome": wanted})
            return self._json(handler, {"status": self.vpn_status})
        if path == "/v1/publicip/ip":
            if self.vpn_status != "running":
                return self._json(handler, {"public_ip": ""})
            return self._json(handler, {"public_ip": self.public_ip, "country": self.country,
                                        "region": self.region, "city": self.city, "hostname": "",
                                        "organization": "Example VPN"})
        if path == "/v1/openvpn/portforwarded":
            if release >= (3, 41, 0):
                return self._send(handler, 301, "", location="/v1/portforward")
            return self._json(handler, {"port": self.ports[0] if self.ports else 0})
        if path == "/v1/portforward":
            if release <= (3, 41, 1):
                if len(self.ports) > 1:
                    return self._json(handler, {"ports": self.ports})
                return self._json(handler, {"port": self.ports[0] if self.ports else 0})
            return self._json(handler, {"port": self.ports[0] if self.ports else 0, "ports": self.ports or None})
        if path.endswith("/settings"):
            return self._json(handler, {"secret": "do-not-log"})
        return self._send(handler, 404, "404 page not found\n")


def free_port():
    """A local TCP port nothing listens on (just released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused_url():
    """The URL of a control server that is not there: connection refused."""
    return "http://127.0.0.1:%d" % free_port()
