"""Gluetun control server SIMULATOR (a test and demo fixture, not a VPN): the server side.

Simulates what a client of Gluetun sees: the HTTP control server (routes, JSON shapes, authentication and
their differences between releases), the health server behind the image's HEALTHCHECK, the VPN loop status
and forwarded ports that change on every VPN restart. Nothing is tunnelled, no firewall is set up.

The command line (serve, healthcheck, set-health, set-fault, status, genkey) is in cli.py.

Environment: see docs/simulators.md in the acestream.orchestrator collection.
Standard library only (python3 >= 3.11 for tomllib).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import random
import signal
import socket
import socketserver
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATE_DIR = os.environ.get("GLUETUN_SIM_STATE_DIR", "/run/gluetun-sim")
HEALTH_FILE = os.path.join(STATE_DIR, "health")
FAULT_FILE = os.path.join(STATE_DIR, "fault")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
FAULTS = ("none", "hang", "500", "nonjson")
HANG_LIMIT = 3600.0  # a hanging request is released after this many seconds at most

LATEST = (3, 1000, 0)  # sorts after every numbered release
KNOWN_BUILDS = {  # version -> (commit, created) reported by /v1/version
    (3, 39, 0): ("4e5f2ca", "2024-08-09T13:51:23.000Z"),
    (3, 39, 1): ("8b4ad4b", "2024-09-07T09:56:49.000Z"),
    (3, 40, 0): ("4a2e7a8", "2024-12-24T17:56:19.000Z"),
    (3, 41, 0): ("d0a6d02", "2025-08-30T10:25:46.000Z"),
    (3, 41, 1): ("d7e4b64", "2025-09-08T08:44:02.000Z"),
    (3, 41, 2): ("6c6a1d7", "2025-10-18T12:03:51.000Z"),
    (3, 41, 3): ("9a3c0f2", "2025-11-02T15:20:07.000Z"),
}

PUBLIC_ROLE_ROUTES = (  # the built-in public role (v3.39.1 .. v3.41.3, only when the file defines no role)
    "GET /openvpn/actions/restart", "GET /unbound/actions/restart", "GET /updater/restart",
    "GET /v1/version", "GET /v1/vpn/status", "PUT /v1/vpn/status",
    "GET /v1/openvpn/status", "PUT /v1/openvpn/status", "GET /v1/openvpn/portforwarded",
    "GET /v1/dns/status", "PUT /v1/dns/status", "GET /v1/updater/status", "PUT /v1/updater/status",
    "GET /v1/publicip/ip",
)
ROLE_KEYS = {"name", "auth", "apikey", "username", "password", "routes"}
DEFAULT_ROLE_KEYS = ROLE_KEYS - {"routes"}
BASIC_CHALLENGE = 'Basic realm="restricted", charset="UTF-8"'


# ------------------------------------------------------------------------------------------------ helpers
def log(level, component, message):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {level} [{component}] {message}", flush=True)


class ConfigError(Exception):
    """A setting Gluetun would refuse at start-up."""


def env(name, default=None):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_float(name, default):
    try:
        return float(env(name, default))
    except ValueError as exc:
        raise ConfigError(f"{name}={os.environ.get(name)!r} is not a number") from exc


def env_int(name, default):
    try:
        return int(env(name, default))
    except ValueError as exc:
        raise ConfigError(f"{name}={os.environ.get(name)!r} is not an integer") from exc


def parse_version(text):
    text = text.strip()
    if text == "latest":
        return LATEST
    parts = text.lstrip("v").split(".")
    try:
        version = tuple(int(p) for p in parts)
    except ValueError:
        version = ()
    if len(version) != 3:
        raise ConfigError(f"GLUETUN_SIM_VERSION={text!r}: expected vX.Y.Z (e.g. v3.40.0) or latest")
    if version < (3, 39, 0):
        raise ConfigError(f"GLUETUN_SIM_VERSION={text}: releases before v3.39.0 are not simulated")
    return version


def version_text(version):
    return "latest" if version == LATEST else "v%d.%d.%d" % version


def parse_address(name, value):
    """A Go host:port (':8000', '0.0.0.0:8000', '[::]:8000', 'localhost:8000') -> (family, host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name}={value!r} is not a valid listening address (host:port, e.g. :8000)")
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, host[1:-1], int(port)
    if ":" in host:
        raise ConfigError(f"{name}={value!r}: IPv6 hosts must be bracketed, e.g. [::]:8000")
    return socket.AF_INET, host or "0.0.0.0", int(port)


def write_atomic(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_text(path, default=""):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return default


def go_json(value):
    """Like Go's json.Encoder: compact, HTML characters escaped, trailing newline."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


# --------------------------------------------------------------------------------------------- settings
class Settings:
    def __init__(self, environ=None):
        e = environ if environ is not None else os.environ
        self.version_raw = env("GLUETUN_SIM_VERSION", "latest")
        self.version = parse_version(self.version_raw)
        self.control_address = env("HTTP_CONTROL_SERVER_ADDRESS", ":8000")
        self.control = parse_address("HTTP_CONTROL_SERVER_ADDRESS", self.control_address)
        self.health_address = env("HEALTH_SERVER_ADDRESS", "127.0.0.1:9999")
        self.health = parse_address("HEALTH_SERVER_ADDRESS", self.health_address)
        self.auth_file = env("HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH", "/gluetun/auth/config.toml")
        self.default_role_json = e.get("HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE", "")
        self.request_log = env("HTTP_CONTROL_SERVER_LOG", "on").lower() in ("on", "yes", "true")
        self.vpn_type = env("VPN_TYPE", "wireguard").lower()
        if self.vpn_type not in ("wireguard", "openvpn"):
            raise ConfigError(f"VPN_TYPE={self.vpn_type!r}: must be one of wireguard, openvpn")
        self.provider = env("VPN_SERVICE_PROVIDER", "protonvpn").lower()
        self.healthy_after = env_float("GLUETUN_SIM_HEALTHY_AFTER", 3)
        self.start_delay = env_float("GLUETUN_SIM_VPN_START_DELAY", 0.3)
        self.pf_enabled = env("VPN_PORT_FORWARDING", "off").lower() in ("on", "yes", "true")
        self.pf_delay = env_float("GLUETUN_SIM_PORT_FORWARD_DELAY", 1)
        count = env("GLUETUN_SIM_FORWARDED_PORTS_COUNT")
        if count is None and self.version == LATEST:
            count = env("VPN_PORT_FORWARDING_PORTS_COUNT")  # a latest-only Gluetun variable
        try:
            self.pf_count = int(count or 1)
        except ValueError as exc:
            raise ConfigError(f"forwarded ports count {count!r} is not an integer") from exc
        if not 1 <= self.pf_count <= 10:
            raise ConfigError(f"forwarded ports count {self.pf_count} must be between 1 and 10")
        pins = env("GLUETUN_SIM_FORWARDED_PORT", "")
        try:
            # One item per VPN connection; an item may give several ports of that connection: "a+b+c".
            self.pf_pins = [[int(p) for p in item.split("+") if p] for item in pins.replace(" ", "").split(",")
                            if item]
        except ValueError as exc:
            raise ConfigError(f"GLUETUN_SIM_FORWARDED_PORT={pins!r}: expected port[+port...][,port...]") from exc
        low, _dash, high = env("GLUETUN_SIM_PORT_FORWARD_RANGE", "40000-49999").partition("-")
        try:
            self.pf_range = (int(low), int(high))
        except ValueError as exc:
            raise ConfigError("GLUETUN_SIM_PORT_FORWARD_RANGE must look like 40000-49999") from exc
        if not 1024 <= self.pf_range[0] < self.pf_range[1] <= 65535:
            raise ConfigError(f"GLUETUN_SIM_PORT_FORWARD_RANGE {self.pf_range} is not a valid range")
        self.pf_keep = env("GLUETUN_SIM_PORT_FORWARD_MODE", "new").lower() == "keep"
        self.pf_file = env("VPN_PORT_FORWARDING_STATUS_FILE", "/tmp/gluetun/forwarded_port")
        self.public_ip = env("GLUETUN_SIM_PUBLIC_IP", "203.0.113.10")
        self.public_ip_extra = {}
        for field in ("region", "country", "city", "hostname", "location", "organization", "postal_code",
                      "timezone"):
            value = env(f"GLUETUN_SIM_{field.upper()}")
            if value is not None:
                self.public_ip_extra[field] = value
        self.dot = env("DOT", "on").lower() in ("on", "yes", "true")

    # Release differences (see reference/gluetun-control-server.md).
    @property
    def has_auth(self):
        return self.version >= (3, 39, 1)

    @property
    def has_public_role(self):
        return (3, 39, 1) <= self.version <= (3, 41, 3)

    @property
    def has_default_role(self):
        return self.version >= (3, 41, 0)

    @property
    def has_portforward_route(self):
        return self.version >= (3, 41, 0)

    @property
    def portforwarded_redirects(self):
        return self.version >= (3, 41, 0)

    @property
    def portforward_always_both(self):
        return self.version >= (3, 41, 2)

    @property
    def strict_routing(self):  # 404 / 405 before authentication
        return self.version >= (3, 41, 2)

    def routes(self):
        """path -> allowed methods, for this release."""
        table = {
            "/v1/version": ("GET",),
            "/v1/vpn/status": ("GET", "PUT"),
            "/v1/vpn/settings": ("GET", "PUT"),
            "/v1/openvpn/status": ("GET", "PUT"),
            "/v1/openvpn/portforwarded": ("GET",),
            "/v1/openvpn/settings": ("GET",),
            "/v1/dns/status": ("GET", "PUT"),
            "/v1/updater/status": ("GET", "PUT"),
            "/v1/publicip/ip": ("GET",),
            "/openvpn/actions/restart": ("GET",),
            "/unbound/actions/restart": ("GET",),
            "/updater/restart": ("GET",),
            "/openvpn/portforwarded": ("GET",),
            "/openvpn/settings": ("GET",),
        }
        if self.has_portforward_route:
            table["/v1/portforward"] = ("GET",)
        return table

    def valid_auth_routes(self):
        return {f"{method} {path}" for path, methods in self.routes().items() for method in methods}


# ------------------------------------------------------------------------------------------ authentication
class Role:
    def __init__(self, name, auth, routes, apikey="", username="", password=""):
        self.name, self.auth, self.routes = name, auth, list(routes)
        self.apikey, self.username, self.password = apikey, username, password

    def validate(self, valid_routes):
        if self.auth not in ("none", "apikey", "basic"):
            raise ConfigError(f"authentication method not supported: {self.auth!r}")
        if self.auth == "apikey" and not self.apikey:
            raise ConfigError(f"for role {self.name}: api key is empty")
        if self.auth == "basic" and not self.username:
            raise ConfigError(f"for role {self.name}: username is empty")
        if self.auth == "basic" and not self.password:
            raise ConfigError(f"for role {self.name}: password is empty")
        for i, route in enumerate(self.routes):
            if route not in valid_routes:
                raise ConfigError(f"route {i + 1} of {len(self.routes)}: route not supported by the control "
                                  f"server: {route}")

    def authorized(self, headers, query, challenge):
        if self.auth == "none":
            return True
        if self.auth == "apikey":
            given = headers.get("X-API-Key") or (query.get("api_key") or [""])[0]
            return bool(given) and hmac.compare_digest(given.encode(), self.apikey.encode())
        header = headers.get("Authorization", "")
        ok = False
        if header[:6].lower() == "basic ":
            try:
                user, _colon, password = base64.b64decode(header[6:].strip()).decode().partition(":")
                ok = (hmac.compare_digest(user.encode(), self.username.encode())
                      and hmac.compare_digest(password.encode(), self.password.encode()))
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            challenge.append(BASIC_CHALLENGE)
        return ok


def load_roles(settings):
    """The roles in effect, as Gluetun builds them at start-up. Raises ConfigError where Gluetun exits."""
    if not settings.has_auth:
        return []
    valid = settings.valid_auth_routes()
    roles = []
    path = settings.auth_file
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        document = {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"reading auth settings: toml decoding file {path}: {exc}") from exc
    unknown = sorted(set(document) - {"roles"})
    if unknown:
        raise ConfigError(f"reading auth settings: toml decoding file {path}: strict mode: fields in the "
                          f"document are missing in the target struct: {', '.join(unknown)}")
    raw_roles = document.get("roles", [])
    if not isinstance(raw_roles, list) or not all(isinstance(r, dict) for r in raw_roles):
        raise ConfigError(f"reading auth settings: toml decoding file {path}: roles must be [[roles]] tables")
    for i, raw in enumerate(raw_roles):
        unknown = sorted(set(raw) - ROLE_KEYS)
        if unknown:
            raise ConfigError(f"reading auth settings: toml decoding file {path}: strict mode: fields in the "
                              f"document are missing in the target struct: roles[{i}].{', '.join(unknown)}")
        for key in ROLE_KEYS - {"routes"}:
            if key in raw and not isinstance(raw[key], str):
                raise ConfigError(f"reading auth settings: toml decoding file {path}: roles[{i}].{key} must "
                                  f"be a string")
        routes = raw.get("routes", [])
        if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
            raise ConfigError(f"reading auth settings: toml decoding file {path}: roles[{i}].routes must be "
                              f"a list of strings")
        role = Role(raw.get("name", ""), raw.get("auth", ""), routes, raw.get("apikey", ""),
                    raw.get("username", ""), raw.get("password", ""))
        try:
            role.validate(valid)
        except ConfigError as exc:
            raise ConfigError(f"validating auth settings: role {role.name} ({i + 1} of {len(raw_roles)}): "
                              f"{exc}") from exc
        roles.append(role)

    if settings.has_default_role and settings.default_role_json.strip():
        try:
            raw = json.loads(settings.default_role_json)
        except ValueError as exc:
            raise ConfigError(f"decoding default role: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError("decoding default role: json: cannot unmarshal into Go value of type auth.Role")
        unknown = sorted(set(raw) - DEFAULT_ROLE_KEYS)
        if unknown:
            raise ConfigError(f'decoding default role: json: unknown field "{unknown[0]}"')
        if raw.get("auth"):
            covered = {route for role in roles for route in role.routes}
            role = Role(raw.get("name", "default"), raw.get("auth", ""), sorted(valid - covered),
                        raw.get("apikey", ""), raw.get("username", ""), raw.get("password", ""))
            try:
                role.validate(valid)
            except ConfigError as exc:
                raise ConfigError(f"validating default role: {exc}") from exc
            if role.routes:
                roles.append(role)

    if not roles and settings.has_public_role:
        routes = list(PUBLIC_ROLE_ROUTES)
        if settings.has_portforward_route:
            routes.append("GET /v1/portforward")
        roles.append(Role("public", "none", routes))
    return roles


# ---------------------------------------------------------------------------------------------- VPN loop
class InvalidStatus(Exception):
    pass


class Loop:
    """A Gluetun loop (dns, updater): status plus ApplyStatus semantics."""

    def __init__(self, name, status):
        self.name, self.status, self.lock = name, status, threading.Lock()

    def get(self):
        with self.lock:
            return self.status

    def apply(self, requested):
        with self.lock:
            current = self.status
            if requested == current:
                return f"already {current}"
            if requested == "running" and current not in ("stopped", "completed", "crashed"):
                raise InvalidStatus(f"cannot set status to running: current status is {current}")
            if requested == "stopped" and current not in ("running", "crashed"):
                raise InvalidStatus(f"cannot set status to stopped: current status is {current}")
            self.status = requested
            return requested


class VPN:
    def __init__(self, settings, state_changed):
        self.settings = settings
        self.lock = threading.RLock()
        self.status = "starting"
        self.ever_running = False
        self.ports = []
        self.used_ports = set()
        self.last_ports = []
        self.connections = 0
        self.generation = 0
        self.state_changed = state_changed
        self.dns = Loop("dns", "running" if settings.dot else "stopped")
        self.updater = Loop("updater", "stopped")

    def boot(self):
        try:
            os.remove(self.settings.pf_file)  # left by an earlier run of this container
        except OSError:
            pass
        self.generation += 1
        self._later(self.settings.healthy_after, self._connected, self.generation)

    def _later(self, delay, func, *args):
        timer = threading.Timer(max(delay, 0), func, args)
        timer.daemon = True
        timer.start()

    def get_status(self):
        with self.lock:
            return self.status

    def get_ports(self):
        with self.lock:
            return list(self.ports)

    def _connected(self, generation):
        with self.lock:
            if generation != self.generation or self.status != "starting":
                return
            self.status = "running"
            self.ever_running = True
            self.connections += 1
            log("INFO", "vpn", f"simulated {self.settings.vpn_type} tunnel up (connection {self.connections})")
            if self.settings.pf_enabled:
                self._later(self.settings.pf_delay, self._forward, generation)
        self.state_changed()

    def _pick_ports(self):
        settings = self.settings
        if settings.pf_keep and self.last_ports:
            return list(self.last_ports)
        ports = []
        if len(settings.pf_pins) >= self.connections:
            ports.extend(settings.pf_pins[self.connections - 1][:settings.pf_count])
        low, high = settings.pf_range
        attempts = 0
        while len(ports) < settings.pf_count:
            candidate = random.randint(low, high)
            attempts += 1
            if candidate in ports or (candidate in self.used_ports and attempts < 10000):
                continue
            ports.append(candidate)
        return ports

    def _forward(self, generation):
        with self.lock:
            if generation != self.generation or self.status != "running":
                return
            self.ports = self._pick_ports()
            self.last_ports = list(self.ports)
            self.used_ports.update(self.ports)
            try:
                write_atomic(self.settings.pf_file, "\n".join(str(p) for p in self.ports) + "\n")
            except OSError as exc:
                log("WARN", "port forwarding", f"writing {self.settings.pf_file}: {exc}")
            word = "port" if len(self.ports) == 1 else "ports"
            log("INFO", "port forwarding", f"{word} forwarded is {', '.join(map(str, self.ports))}")
        self.state_changed()

    def _clear_ports(self):
        if self.ports:
            log("INFO", "port forwarding", "removing port forwarded " + ", ".join(map(str, self.ports)))
        self.ports = []
        try:
            os.remove(self.settings.pf_file)
        except OSError:
            pass

    def apply(self, requested):
        """PUT /v1/vpn/status: returns the outcome text, raises InvalidStatus (400)."""
        with self.lock:
            current = self.status
            if requested == current:
                return f"already {current}"
            if requested == "stopped":
                if current not in ("running", "crashed"):
                    raise InvalidStatus(f"cannot set status to stopped: current status is {current}")
                self.generation += 1
                self.status = "stopping"
                self._clear_ports()
                log("INFO", "vpn", "stopping")
                self.status = "stopped"
                self.state_changed()
                return "stopped"
            if current not in ("stopped", "crashed", "completed"):
                raise InvalidStatus(f"cannot set status to running: current status is {current}")
            self.generation += 1
            generation = self.generation
            self.status = "starting"
            log("INFO", "vpn", "starting")
        time.sleep(self.settings.start_delay)
        self._connected(generation)
        with self.lock:
            return "running" if self.status == "running" else self.status

    def restart(self):
        with self.lock:
            if self.status == "running":
                self.apply("stopped")
        try:
            self.apply("running")
        except InvalidStatus:
            pass

    def health_error(self):
        """None when healthy, else the health server's error text."""
        forced = read_text(HEALTH_FILE, "healthy")
        with self.lock:
            if not self.ever_running:
                return "healthcheck did not run yet"
            if forced == "unhealthy":
                return "simulated failure: gluetun-sim set-health unhealthy"
            if self.status != "running":
                return f"VPN is not running (status {self.status}): dialing cloudflare.com:443 failed"
        return None

    def snapshot(self):
        with self.lock:
            return {
                "vpn_status": self.status, "forwarded_ports": list(self.ports), "connections": self.connections,
                "dns_status": self.dns.get(), "updater_status": self.updater.get(),
            }


# ------------------------------------------------------------------------------------------------ servers
class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, family, app):
        self.address_family = family
        self.app = app
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would resolve the host name (socket.getfqdn): slow without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "gluetun", self.server_address[1]


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass

    def send_response(self, code, message=None):
        # Go's net/http sends Date but no Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def answer(self, code, body, content_type="text/plain; charset=utf-8", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        for key, value in headers:
            self.send_header(key, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.status_sent, self.bytes_sent = code, len(data)

    def http_error(self, code, text, headers=()):
        """Go's http.Error."""
        self.answer(code, text + "\n", headers=(("X-Content-Type-Options", "nosniff"), *headers))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)


class HealthHandler(BaseHandler):
    def handle_any(self):
        error = self.server.app.vpn.health_error()
        if error is None:
            self.answer(200, b"", content_type=None)
        else:
            self.http_error(500, error)


class ControlHandler(BaseHandler):
    def handle_any(self):
        app = self.server.app
        self.status_sent, self.bytes_sent, started = 0, 0, time.monotonic()
        try:
            self._serve(app)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if app.settings.request_log and self.status_sent:
                elapsed = (time.monotonic() - started) * 1000
                log("INFO", "http server", f"{self.status_sent} {self.command} {self.path} wrote "
                    f"{self.bytes_sent}B to {self.client_address[0]}:{self.client_address[1]} in "
                    f"{elapsed:.1f}ms")

    # The request's life: faults, routing (404/405 from v3.41.2), authentication, then the v1 handlers.
    def _serve(self, app):
        settings = app.settings
        body = self.read_body()
        fault = app.fault()
        if fault == "hang":
            deadline = time.monotonic() + HANG_LIMIT
            while app.fault() == "hang" and time.monotonic() < deadline and not app.stopping.is_set():
                time.sleep(0.1)
            fault = app.fault()
        if fault == "500":
            self.http_error(500, "Internal Server Error")
            return
        if fault == "nonjson":
            self.answer(200, "<html><body>gluetun simulator: non-JSON answer (fault nonjson)</body></html>\n")
            return

        split = urlsplit(self.path)
        path, method = split.path, self.command
        routes = settings.routes()
        if settings.strict_routing:
            if path not in routes:
                self.http_error(404, "404 page not found")
                return
            if method not in routes[path] and not (method == "HEAD" and "GET" in routes[path]):
                self.http_error(405, "Method Not Allowed", headers=(("Allow", ", ".join(routes[path])),))
                return
        if settings.has_auth:
            route = f"{method} {path}"
            allowed = [role for role in app.roles if route in role.routes]
            challenge = []
            query = parse_qs(split.query)
            granted = next((r for r in allowed if r.authorized(self.headers, query, challenge)), None)
            if granted is None:
                headers = [("WWW-Authenticate", challenge[0])] if challenge else []
                self.http_error(401, "Unauthorized", headers=headers)
                return
            if granted.name == "public" and route not in app.public_warned:
                app.public_warned.add(route)
                log("WARN", "http server", f"route {route} is unprotected by default, please set up "
                    "authentication following the documentation at https://github.com/qdm12/gluetun-wiki/"
                    "blob/main/setup/advanced/control-server.md#authentication since this will become no "
                    "longer publicly accessible after release v3.40.")
        self._dispatch(app, method, self.path, body)

    def _json(self, value):
        # Gluetun encodes without setting a content type: Go sniffs text/plain for JSON.
        self.answer(200, go_json(value))

    def _redirect(self, code, location):
        self.answer(code, f'<a href="{location}">{"Moved Permanently" if code == 301 else "Permanent Redirect"}'
                    "</a>.\n\n", content_type="text/html; charset=utf-8", headers=(("Location", location),))

    def _dispatch(self, app, method, uri, body):
        """Gluetun's handlers match the raw request URI (query string included), like the real ones do."""
        settings, vpn = app.settings, app.vpn
        if not uri.startswith("/v1/") and uri != "/v1":
            if uri == "/openvpn/portforwarded" and method == "GET":
                self._redirect(308, "/v1/openvpn/portforwarded")
            elif uri == "/openvpn/settings" and method == "GET":
                self._redirect(308, "/v1/openvpn/settings")
            elif uri == "/openvpn/actions/restart" and method == "GET":
                threading.Thread(target=vpn.restart, daemon=True).start()
                self.answer(200, "openvpn restart requested\n")
            elif uri == "/unbound/actions/restart" and method == "GET":
                self.answer(200, "dns restart requested\n")
            elif uri == "/updater/restart" and method == "GET":
                self.answer(200, "updater restart requested\n")
            else:
                self.http_error(400, f"{method} {uri} not found")
            return
        rest = uri[3:]
        if rest == "/version" and method == "GET":
            commit, created = KNOWN_BUILDS.get(settings.version, ("simulator", "2025-11-20T00:00:00.000Z"))
            self._json({"version": version_text(settings.version), "commit": commit, "created": created})
        elif rest.startswith("/vpn"):
            self._sub(rest[4:], method, {
                "/status": {"GET": lambda: self._json({"status": vpn.get_status()}),
                            "PUT": lambda: self._put_status(body, vpn.apply)},
                "/settings": {"GET": lambda: self._json(app.vpn_settings()),
                              "PUT": lambda: self._put_settings(body)},
            })
        elif rest.startswith("/openvpn"):
            self._sub(rest[8:], method, {
                "/status": {"GET": lambda: self._json({"status": app.openvpn_status()}),
                            "PUT": lambda: self._put_status(body, vpn.apply)},
                "/portforwarded": {"GET": self._portforwarded},
                "/settings": {"GET": lambda: self._json(app.openvpn_settings())},
            })
        elif rest.startswith("/dns"):
            self._sub(rest[4:], method, {"/status": {
                "GET": lambda: self._json({"status": vpn.dns.get()}),
                "PUT": lambda: self._put_status(body, vpn.dns.apply)}})
        elif rest.startswith("/updater"):
            self._sub(rest[8:], method, {"/status": {
                "GET": lambda: self._json({"status": vpn.updater.get()}),
                "PUT": lambda: self._put_status(body, app.apply_updater)}})
        elif rest.startswith("/publicip"):
            self._sub(rest[9:], method, {"/ip": {"GET": lambda: self._json(app.public_ip())}})
        elif rest.startswith("/portforward") and settings.has_portforward_route:
            if method == "GET":
                self._portforward()
            else:
                self.http_error(400, f"method {method} not supported")
        else:
            self.http_error(400, f"{method} {rest} not found")

    def _sub(self, sub, method, table):
        if sub not in table:
            self.http_error(400, f"route {sub} not supported")
        elif method not in table[sub]:
            self.http_error(400, f"method {method} not supported")
        else:
            table[sub][method]()

    def _put_status(self, body, apply):
        text = body.decode("utf-8", "replace").strip()
        if not text:
            self.http_error(400, "EOF")
            return
        try:
            data, _end = json.JSONDecoder().raw_decode(text)
        except ValueError as exc:
            self.http_error(400, f"invalid character: {exc}")
            return
        if not isinstance(data, dict):
            self.http_error(400, f"json: cannot unmarshal {type(data).__name__} into Go value of type "
                            "server.statusWrapper")
            return
        status = data.get("status", "")
        if not isinstance(status, str):
            self.http_error(400, "json: cannot unmarshal into Go struct field statusWrapper.status of type "
                            "string")
            return
        if status not in ("stopped", "running"):
            self.http_error(400, f"invalid status: {status}: possible values are: stopped, running")
            return
        try:
            outcome = apply(status)
        except InvalidStatus as exc:
            self.http_error(400, f"invalid status: {exc}")
            return
        self._json({"outcome": outcome})

    def _put_settings(self, body):
        try:
            data = json.loads(body or b"null")
        except ValueError as exc:
            self.http_error(400, str(exc))
            return
        if not isinstance(data, dict):
            self.http_error(400, "json: cannot unmarshal into Go value of type settings.VPN")
            return
        self.answer(200, "settings left unchanged (simulator)")

    def _portforwarded(self):
        app = self.server.app
        if app.settings.portforwarded_redirects:
            self._redirect(301, "/v1/portforward")
            return
        ports = app.vpn.get_ports()
        self._json({"port": ports[0] if ports else 0})

    def _portforward(self):
        app = self.server.app
        ports = app.vpn.get_ports()
        if app.settings.portforward_always_both:
            self._json({"port": ports[0] if ports else 0, "ports": ports or None})
        elif len(ports) > 1:
            self._json({"ports": ports})
        else:
            self._json({"port": ports[0] if ports else 0})


class App:
    def __init__(self, settings, roles):
        self.settings = settings
        self.roles = roles
        self.public_warned = set()
        self.stopping = threading.Event()
        self._state_lock = threading.Lock()
        self.vpn = VPN(settings, self.write_state)

    def fault(self):
        value = read_text(FAULT_FILE, "none")
        return value if value in FAULTS else "none"

    def write_state(self):
        state = {"version": version_text(self.settings.version), **self.vpn.snapshot(),
                 "health_error": self.vpn.health_error(), "fault": self.fault()}
        with self._state_lock:
            try:
                write_atomic(STATE_FILE, json.dumps(state) + "\n")
            except OSError:
                pass

    def openvpn_status(self):
        return self.vpn.get_status() if self.settings.vpn_type == "openvpn" else "stopped"

    def apply_updater(self, status):
        outcome = self.vpn.updater.apply(status)
        if status == "running" and outcome == "running":
            def complete():
                with self.vpn.updater.lock:
                    if self.vpn.updater.status == "running":
                        self.vpn.updater.status = "completed"
            timer = threading.Timer(0.5, complete)
            timer.daemon = True
            timer.start()
        return outcome

    def public_ip(self):
        if self.vpn.get_status() != "running":
            return {"public_ip": ""}
        return {"public_ip": self.settings.public_ip, **self.settings.public_ip_extra}

    def openvpn_settings(self):
        return {
            "version": env("OPENVPN_VERSION", "2.6"),
            "user": env("OPENVPN_USER"),
            "password": env("OPENVPN_PASSWORD"),
            "confFile": env("OPENVPN_CUSTOM_CONFIG"),
            "ciphers": [c for c in env("OPENVPN_CIPHERS", "").split(",") if c],
            "key": env("OPENVPN_KEY"),
            "encrypted_key": env("OPENVPN_ENCRYPTED_KEY"),
            "key_passphrase": env("OPENVPN_KEY_PASSPHRASE"),
            "interface": "tun0",
            "process_user": "root",
            "verbosity": 1,
        }

    def vpn_settings(self):
        s = self.settings
        return {
            "type": s.vpn_type,
            "provider": {
                "name": s.provider,
                "server_selection": {
                    "vpn": s.vpn_type,
                    "countries": [c for c in env("SERVER_COUNTRIES", "").split(",") if c],
                    "cities": [c for c in env("SERVER_CITIES", "").split(",") if c],
                    "hostnames": [c for c in env("SERVER_HOSTNAMES", "").split(",") if c],
                },
                "port_forwarding": {
                    "enabled": s.pf_enabled,
                    "provider": None,
                    "status_file_path": s.pf_file,
                    "ports_count": s.pf_count,
                },
            },
            "openvpn": self.openvpn_settings(),
            "wireguard": {
                "private_key": env("WIREGUARD_PRIVATE_KEY"),
                "pre_shared_key": env("WIREGUARD_PRESHARED_KEY"),
                "addresses": [a for a in env("WIREGUARD_ADDRESSES", "").split(",") if a],
                "interface": "wg0",
                "mtu": 1320,
                "implementation": "auto",
            },
        }


# -------------------------------------------------------------------------------------------- subcommands
def serve():
    started = time.monotonic()
    try:
        settings = Settings()
        roles = load_roles(settings)
    except ConfigError as exc:
        log("ERROR", "http server", str(exc))
        log("INFO", "main", "Shutdown successful")
        return 1
    os.makedirs(STATE_DIR, exist_ok=True)
    for path in (HEALTH_FILE, FAULT_FILE):
        try:
            os.remove(path)
        except OSError:
            pass
    app = App(settings, roles)
    log("INFO", "main", f"Gluetun control server SIMULATOR, profile {version_text(settings.version)} "
        "(a test fixture: no VPN tunnel, no firewall)")
    if any(role.name == "public" and role.auth == "none" for role in roles):
        log("WARN", "http server", "no role defined in the authentication file "
            f"{settings.auth_file}: the built-in public role (no authentication) covers the classic routes; "
            "this is deprecated, define roles")
    for role in roles:
        log("INFO", "http server", f"role {role.name}: authentication {role.auth}, "
            f"{len(role.routes)} route(s)")
    servers = []
    try:
        for (family, host, port), handler, what in (
                (settings.control, ControlHandler, "http server"),
                (settings.health, HealthHandler, "healthcheck")):
            server = Server((host, port), handler, family, app)
            servers.append(server)
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
            shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            log("INFO", what, f"{'http server' if what == 'http server' else 'health server'} listening on "
                f"{shown}")
    except OSError as exc:
        log("ERROR", "main", f"listening: {exc}")
        return 1

    def stop(signum, _frame):
        log("INFO", "main", f"caught OS signal {signal.Signals(signum).name}, shutting down")
        app.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.vpn.boot()
    app.write_state()
    log("INFO", "main", f"simulator ready in {time.monotonic() - started:.3f}s; VPN up in "
        f"{settings.healthy_after:g}s")
    while not app.stopping.wait(0.5):
        app.write_state()
    for server in servers:
        server.server_close()
    log("INFO", "main", "Shutdown successful")
    return 0
