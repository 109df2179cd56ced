"""Gluetun control server SIMULATOR (a test and demo fixture, not a VPN): the server side.

Simulates what a client of Gluetun sees: the HTTP control server (routes, JSON shapes, authentication and
their differences between releases), the health server behind the image's HEALTHCHECK, the VPN loop status
and forwarded ports that change on every VPN restart. Nothing is tunnelled, no firewall is set up.

As in Gluetun from v3.41, the health server reports the health checks run at each tunnel up, not the VPN
loop status: a VPN stopped through the control server leaves it answering OK. What a tunnel would tell the
programs in the namespace (no tunnel, no connectivity) is answered by the "tunnel stand-in", a simulator-only
and unauthenticated endpoint (default http://127.0.0.2:<health port>/simulator/tunnel) that engine
simulators ask: 200 {"status":"running"} while the VPN runs, 503 {"status":"<status>"} otherwise.

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
import ssl
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATE_DIR = os.environ.get("GLUETUN_SIM_STATE_DIR", "/run/gluetun-sim")
HEALTH_FILE = os.path.join(STATE_DIR, "health")
FAULT_FILE = os.path.join(STATE_DIR, "fault")
STATE_FILE = os.path.join(STATE_DIR, "state.json")
FAULTS = ("none", "hang", "500", "nonjson")
HANG_LIMIT = 3600.0  # a hanging request is released after this many seconds at most

LATEST = (3, 1000, 0)  # sorts after every numbered release
KNOWN_BUILDS = {  # version -> (commit, created) reported by /v1/version: the release tags' commits
    (3, 39, 0): ("09c47c7", "2024-08-09T07:43:48.000Z"),
    (3, 39, 1): ("67ae5f5", "2024-09-29T17:53:17.000Z"),
    (3, 40, 0): ("e890c50", "2024-12-25T20:05:55.000Z"),
    (3, 41, 0): ("a10349e", "2025-12-24T20:29:05.000Z"),
    (3, 41, 1): ("7f22fb3", "2026-02-11T14:13:34.000Z"),
    (3, 41, 2): ("44143aa", "2026-07-29T11:18:09.000Z"),
    (3, 41, 3): ("3d1e20c", "2026-07-30T11:49:18.000Z"),
    LATEST: ("b119325", "2026-05-19T03:03:30.000Z"),
}

PUBLIC_ROLE_ROUTES = (  # the built-in public role (v3.39.1 .. v3.41.3, only when the file defines no role)
    "GET /openvpn/actions/restart", "GET /unbound/actions/restart", "GET /updater/restart",
    "GET /v1/version", "GET /v1/vpn/status", "PUT /v1/vpn/status",
    "GET /v1/openvpn/status", "PUT /v1/openvpn/status", "GET /v1/openvpn/portforwarded",
    "GET /v1/dns/status", "PUT /v1/dns/status", "GET /v1/updater/status", "PUT /v1/updater/status",
    "GET /v1/publicip/ip",
)
PUBLIC_ROLE_ROUTES_V341 = ("GET /openvpn/portforwarded", "GET /v1/portforward")  # added by v3.41.0
ROLE_KEYS = {"name", "auth", "apikey", "username", "password", "routes"}
DEFAULT_ROLE_KEYS = ROLE_KEYS - {"routes"}
BASIC_CHALLENGE = 'Basic realm="restricted", charset="UTF-8"'
NOT_YET = "healthcheck did not run yet"  # the health server's answer until the first check at tunnel up
FORCED_FAILURE = "simulated failure (gluetun-sim set-health unhealthy)"
TUNNEL_PATH = "/simulator/tunnel"
STARTUP_CHECK_TIMEOUT = 6.0  # Gluetun's startup check: every target dialled in parallel for 6 s at most


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


def is_wildcard(host):
    return host in ("", "0.0.0.0", "::")


def env_switch(name, default):
    return env(name, default).lower() in ("on", "yes", "true")


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
        self.health_targets = self._health_targets()
        self.health_dial = env_switch("GLUETUN_SIM_HEALTH_DIAL", "off")
        self.health_restart_vpn = env_switch("HEALTH_RESTART_VPN", "on")
        self.tunnel_address = env("GLUETUN_SIM_TUNNEL_ADDRESS", f"127.0.0.2:{self.health[2]}")
        self.tunnel = (None if self.tunnel_address.lower() == "off"
                       else parse_address("GLUETUN_SIM_TUNNEL_ADDRESS", self.tunnel_address))
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

    def _health_targets(self):
        """The addresses the health check dials: HEALTH_TARGET_ADDRESSES (a comma list, v3.41+, with the older
        names as aliases) or, before v3.41, the single HEALTH_TARGET_ADDRESS."""
        if self.version < (3, 41, 0):
            return [env("HEALTH_TARGET_ADDRESS") or env("HEALTH_ADDRESS_TO_PING") or "cloudflare.com:443"]
        text = (env("HEALTH_TARGET_ADDRESSES") or env("HEALTH_TARGET_ADDRESS") or env("HEALTH_ADDRESS_TO_PING")
                or "cloudflare.com:443,github.com:443")
        return [item.strip() for item in text.split(",") if item.strip()]

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

    @property
    def portforward_settable(self):  # PUT /v1/portforward sets the ports (latest); a known route from v3.41.2
        return self.version == LATEST

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
            table["/v1/portforward"] = ("GET", "PUT") if self.strict_routing else ("GET",)
        return table

    def public_routes(self):
        """The routes of the built-in public role of this release (those that are unprotected by default)."""
        return list(PUBLIC_ROLE_ROUTES) + (list(PUBLIC_ROLE_ROUTES_V341) if self.has_portforward_route else [])

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
        """Does the request pass this role? A basic role adds its challenge only when the request carries no
        Basic credentials at all (Go's Request.BasicAuth fails): wrong credentials get a bare 401."""
        if self.auth == "none":
            return True
        if self.auth == "apikey":
            given = headers.get("X-API-Key") or (query.get("api_key") or [""])[0]
            return hmac.compare_digest(given.encode(), self.apikey.encode())
        credentials = basic_credentials(headers.get("Authorization", ""))
        if credentials is None:
            challenge.append(BASIC_CHALLENGE)
            return False
        # Gluetun compares the digest of username + password, concatenated.
        return hmac.compare_digest("".join(credentials).encode(), (self.username + self.password).encode())


def basic_credentials(header):
    """(username, password) from an Authorization header, or None where Go's Request.BasicAuth finds none."""
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


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
        roles.append(Role("public", "none", settings.public_routes()))
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
    """The VPN loop: its status, the simulated tunnel coming up, the forwarded ports of each connection.

    ``tunnel_up(generation)`` is called in a thread of its own each time a connection comes up, as Gluetun starts
    its health checker then."""

    def __init__(self, settings, state_changed, tunnel_up):
        self.settings = settings
        self.lock = threading.RLock()
        self.status = "starting"
        self.ever_running = False  # Gluetun's port forwarding service exists from the first tunnel up
        self.ports = []
        self.used_ports = set()
        self.last_ports = []
        self.connections = 0
        self.generation = 0
        self.state_changed = state_changed
        self.tunnel_up = tunnel_up
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

    def get_ports_or_none(self):
        """Gluetun's GetPortsForwarded: nil before its port forwarding service first started, else a list."""
        with self.lock:
            return list(self.ports) if self.ever_running else None

    def set_ports(self, ports):
        """PUT /v1/portforward (latest): False when the port forwarding service has not started yet."""
        with self.lock:
            if not self.ever_running:
                return False
            self.ports = sorted(ports)
            self._write_ports()
            log("INFO", "port forwarding", "ports set through the control server: " + ", ".join(map(str, ports)))
        self.state_changed()
        return True

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
        self._later(0, self.tunnel_up, generation)  # in its own thread, like Gluetun's onTunnelUp goroutine

    def is_current(self, generation):
        with self.lock:
            return generation == self.generation and self.status == "running"

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
            self._write_ports()
            word = "port" if len(self.ports) == 1 else "ports"
            log("INFO", "port forwarding", f"{word} forwarded is {', '.join(map(str, self.ports))}")
        self.state_changed()

    def _write_ports(self):
        try:
            write_atomic(self.settings.pf_file, "\n".join(str(p) for p in self.ports) + "\n")
        except OSError as exc:
            log("WARN", "port forwarding", f"writing {self.settings.pf_file}: {exc}")

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

    def snapshot(self):
        with self.lock:
            return {
                "vpn_status": self.status, "forwarded_ports": list(self.ports), "connections": self.connections,
                "dns_status": self.dns.get(), "updater_status": self.updater.get(),
            }


# ------------------------------------------------------------------------------------------------- health
def dial_address(target):
    """Gluetun's makeAddressToDial: (host, port) of "host:port", or of a bare host with port 443."""
    host, colon, port = target.rpartition(":")
    if not colon or "]" in port:
        host, port = target, "443"
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or ":" in host or not port.isdigit():
        raise ValueError(f"splitting host and port from address: address {target}: invalid address")
    return host, int(port)


def check_kind(target):
    """What the check does with a target: a TCP dial, plus a TLS handshake only when the port is 443."""
    try:
        port = dial_address(target)[1]
    except ValueError:
        return "TCP dial"
    return "TCP+TLS dial" if port == 443 else "TCP dial"


def tcp_tls_check(target, timeout):
    """Gluetun's tcpTLSCheck: dial tcp4, then a TLS handshake (TLS 1.2+) only for port 443. None or the error."""
    try:
        host, port = dial_address(target)
    except ValueError as exc:
        return str(exc)
    where = f"{host}:{port}"
    try:
        address = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
    except socket.gaierror:
        return f"dialing: dial tcp4: lookup {host}: no such host"
    try:
        conn = socket.create_connection(address, timeout=timeout)
    except socket.timeout:
        return f"dialing: dial tcp4 {where}: i/o timeout"
    except OSError as exc:
        return f"dialing: dial tcp4 {where}: connect: {(exc.strerror or str(exc)).lower()}"
    try:
        if port == 443:
            context = ssl.create_default_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                with context.wrap_socket(conn, server_hostname=host):
                    pass
            except OSError as exc:  # ssl.SSLError included
                return f"running TLS handshake: {exc}"
    finally:
        conn.close()
    return None


class Health:
    """The health server's answer: None (200) or an error text (500).

    "healthcheck did not run yet" until the first tunnel up; then the result of the startup check run at each
    tunnel up, kept while the VPN is stopped (Gluetun stops its checker with the VPN, the answer stays). The
    check passes without any traffic unless GLUETUN_SIM_HEALTH_DIAL=on, which dials HEALTH_TARGET_ADDRESSES
    for real. ``gluetun-sim set-health unhealthy`` forces a failure whatever the check said."""

    def __init__(self, settings):
        self.settings = settings
        self.lock = threading.Lock()
        self.error = NOT_YET

    def current(self):
        if read_text(HEALTH_FILE, "healthy") == "unhealthy":
            target = self.settings.health_targets[0]
            return f"full periodic check: {check_kind(target)} to {target}: {FORCED_FAILURE}"
        with self.lock:
            return self.error

    def startup_check(self):
        """Run at each tunnel up; returns the new answer (None or the error)."""
        error = startup_check(self.settings.health_targets) if self.settings.health_dial else None
        with self.lock:
            self.error = error
        return error


def startup_check(targets):
    """Gluetun's startup check: every target dialled in parallel, passing when one of them passes."""
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        errors = list(pool.map(lambda target: tcp_tls_check(target, STARTUP_CHECK_TIMEOUT), targets))
    if None in errors:
        return None
    return "startup check: all check tries failed: " + ", ".join(
        f"parallel attempt {i}/{len(errors)} failed: {error}" for i, error in enumerate(errors, 1))


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
    """Gluetun's health server; it also answers the tunnel stand-in's path when the stand-in shares its socket."""

    def handle_any(self):
        app = self.server.app
        if app.tunnel_on_health_server and urlsplit(self.path).path == TUNNEL_PATH:
            answer_tunnel(self)
            return
        if self.command != "GET":
            self.http_error(400, "method not supported for healthcheck")
            return
        error = app.health.current()
        if error is None:
            self.answer(200, b"", content_type=None)
        else:
            self.http_error(500, error)


class TunnelHandler(BaseHandler):
    """The tunnel stand-in's own server (simulator only, no authentication)."""

    def handle_any(self):
        if urlsplit(self.path).path == TUNNEL_PATH:
            answer_tunnel(self)
        else:
            self.answer(404, json.dumps({"error": f"the tunnel stand-in answers {TUNNEL_PATH} only"}) + "\n",
                        content_type="application/json")


def answer_tunnel(handler):
    """What a tunnel would tell the programs in the namespace: the VPN loop status (the value /v1/vpn/status
    reports), 200 while it runs, 503 otherwise."""
    status = handler.server.app.vpn.get_status()
    handler.answer(200 if status == "running" else 503, json.dumps({"status": status}) + "\n",
                   content_type="application/json")


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
        if settings.strict_routing:  # Go's http.Error(w, http.StatusText(code), code): no Allow header
            if path not in routes:
                self.http_error(404, "Not Found")
                return
            if method not in routes[path]:
                self.http_error(405, "Method Not Allowed")
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
            unprotected_by_default = settings.has_public_role and route in settings.public_routes()
            if unprotected_by_default and (granted.name, granted.auth) == ("public", "none"):  # every time
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
        """Gluetun's handlers match the raw request URI (query string included, one trailing slash removed)."""
        settings, vpn = app.settings, app.vpn
        uri = uri[:-1] if uri.endswith("/") else uri
        if not uri.startswith("/v1/") and uri != "/v1":
            self._unversioned(app, method, uri)
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
            elif method == "PUT" and settings.portforward_settable:
                self._put_portforward(body)
            else:
                self.http_error(400, f"method {method} not supported")
        else:
            self.http_error(400, f"{method} {rest} not found")

    def _unversioned(self, app, method, uri):
        """The old routes (Gluetun's handlerV0); the restarts are done before answering, like Gluetun's."""
        advice = "restarted, please consider using the /v1/ API in the future."
        if method != "GET":
            self.http_error(400, "unversioned API: only supports GET method")
        elif uri == "/version":
            self._redirect(308, "/v1/version")
        elif uri == "/openvpn/portforwarded":  # one hop to the route that holds the ports in this release
            self._redirect(308, "/v1/portforward" if app.settings.has_portforward_route
                           else "/v1/openvpn/portforwarded")
        elif uri == "/openvpn/settings":
            self._redirect(308, "/v1/openvpn/settings")
        elif uri == "/openvpn/actions/restart":
            app.vpn.restart()
            self.answer(200, "openvpn " + advice)
        elif uri == "/unbound/actions/restart":
            self.answer(200, "dns " + advice)
        elif uri == "/updater/restart":
            self.answer(200, "updater " + advice)
        else:
            self.http_error(400, "unversioned API: requested URI not found")

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
        if app.settings.portforward_always_both:  # "ports" null only before the first tunnel up, else a list
            ports = app.vpn.get_ports_or_none()
            self._json({"port": ports[0] if ports else 0, "ports": ports})
            return
        ports = app.vpn.get_ports()
        if len(ports) > 1:
            self._json({"ports": ports})
        else:
            self._json({"port": ports[0] if ports else 0})

    def _put_portforward(self, body):
        """latest: {"ports": [...]} replaces the forwarded ports; 200 with no body."""
        try:
            data = json.loads(body or b"null")
            ports = data.get("ports") or []
            if not all(isinstance(p, int) and 0 <= p <= 65535 for p in ports):
                raise ValueError(ports)
        except (ValueError, AttributeError, TypeError):
            self.http_error(400, "failed setting forwarded ports")
            return
        if not self.server.app.vpn.set_ports(ports):
            self.http_error(500, "failed setting forwarded ports")
            return
        self.answer(200, b"", content_type=None)


class App:
    def __init__(self, settings, roles):
        self.settings = settings
        self.roles = roles
        self.stopping = threading.Event()
        self._state_lock = threading.Lock()
        self.health = Health(settings)
        self.vpn = VPN(settings, self.write_state, self.on_tunnel_up)
        self.tunnel_on_health_server = False  # set by serve() when the stand-in cannot have a socket of its own

    def fault(self):
        value = read_text(FAULT_FILE, "none")
        return value if value in FAULTS else "none"

    def on_tunnel_up(self, generation):
        """Gluetun's onTunnelUp: the health checker's startup check sets the health server's answer; a failure
        restarts the VPN (HEALTH_RESTART_VPN=on, the default) or is only logged."""
        error = self.health.startup_check()
        self.write_state()
        if error is None or not self.vpn.is_current(generation):
            return
        if self.settings.health_restart_vpn:
            log("WARN", "vpn", f"restarting VPN because it failed to pass the healthcheck: {error}")
            self.vpn.restart()
        else:
            log("WARN", "vpn", f"(ignored) healthchecker start failed: {error}")

    def write_state(self):
        state = {"version": version_text(self.settings.version), **self.vpn.snapshot(),
                 "health_error": self.health.current(), "fault": self.fault()}
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
def start_server(address, handler, app, component, what):
    family, host, port = address
    server = Server((host, port), handler, family, app)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    log("INFO", component, f"{what} listening on {shown}")
    return server


def start_tunnel(settings, app):
    """The tunnel stand-in on a socket of its own, or on the health server's when that one already holds the
    address (a wildcard health address on the same port, or the very same address). Returns its server or None."""
    if settings.tunnel is None:
        log("INFO", "tunnel stand-in", "off (GLUETUN_SIM_TUNNEL_ADDRESS=off)")
        return None
    host, port = settings.tunnel[1:]
    health_host, health_port = settings.health[1:]
    if port == health_port and (is_wildcard(health_host) or host == health_host):
        app.tunnel_on_health_server = True
        log("INFO", "tunnel stand-in", f"served by the health server ({settings.health_address}, which holds "
            f"{settings.tunnel_address}) at {TUNNEL_PATH}")
        return None
    try:
        return start_server(settings.tunnel, TunnelHandler, app, "tunnel stand-in",
                            f"tunnel stand-in (simulator only, {TUNNEL_PATH})")
    except OSError as exc:
        log("WARN", "tunnel stand-in", f"cannot listen on {settings.tunnel_address}: {exc.strerror or exc}; "
            "engine simulators will find no tunnel and count themselves connected (set GLUETUN_SIM_TUNNEL_ADDRESS)")
        return None


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
        servers.append(start_server(settings.control, ControlHandler, app, "http server", "http server"))
        servers.append(start_server(settings.health, HealthHandler, app, "healthcheck", "health server"))
    except OSError as exc:
        log("ERROR", "main", f"listening: {exc}")
        return 1
    servers.append(start_tunnel(settings, app))

    def stop(signum, _frame):
        log("INFO", "main", f"caught OS signal {signal.Signals(signum).name}, shutting down")
        app.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.vpn.boot()
    app.write_state()
    log("INFO", "main", f"simulator ready in {time.monotonic() - started:.3f}s; VPN up in "
        f"{settings.healthy_after:g}s; health check: {', '.join(settings.health_targets)} "
        f"({'dialled' if settings.health_dial else 'not dialled: GLUETUN_SIM_HEALTH_DIAL=off'})")
    while not app.stopping.wait(0.5):
        app.write_state()
    for server in filter(None, servers):
        server.server_close()
    log("INFO", "main", "Shutdown successful")
    return 0
