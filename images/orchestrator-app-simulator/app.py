"""AceStream Orchestrator app v1.7.3 SIMULATOR (a test and demo fixture, not the app).

It does, on a real Docker Engine, what the real app v1.7.3 does with a static Gluetun topology
(VPN_MODE=single|redundant) and nothing more: it cleans up the containers carrying its CONTAINER_LABEL at
start-up, finds the Gluetun containers by name, reads their forwarded port and public IP from the control
server (GET /v1/portforward and GET /v1/publicip/ip only, without credentials), provisions AceStream engines in
the Gluetun network namespaces (two host ports each, from each VPN's range), replaces missing engines and the
forwarded engine of a VPN whose forwarded port changed, and answers the part of the HTTP API a deployment
checks (/vpn/status, /engines, the API_KEY protected provisioning routes). Docker is reached only through its
unix socket. Standard library only; see docs/simulators.md.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

APP_VERSION = "1.7.3"
COMPONENT = "orchestrator-app-simulator"
CONFIG_DIR = "/app/app/config"  # the real app's config directory (app/config/ inside the app)
ENGINE_SETTINGS_FILE = os.path.join(CONFIG_DIR, "engine_settings.json")
DEFAULT_SOCKET = "/var/run/docker.sock"

# The engine variants v1.7.3 knows, and their images.
VARIANT_IMAGES = {
    "AceServe-amd64": "ghcr.io/krinkuto11/acestream:latest-amd64",
    "AceServe-arm32": "ghcr.io/krinkuto11/acestream:latest-arm32",
    "AceServe-arm64": "ghcr.io/krinkuto11/acestream:latest-arm64",
}

# The labels the app puts on its engines (besides CONTAINER_LABEL).
LABEL_HTTP = "acestream.http_port"
LABEL_HTTPS = "acestream.https_port"
LABEL_API = "acestream.api_port"
LABEL_HOST_HTTP = "host.http_port"
LABEL_HOST_API = "host.api_port"
LABEL_FORWARDED = "acestream.forwarded"
LABEL_VPN = "acestream.vpn_container"
LABEL_VARIANT = "acestream.engine_variant"

PUBLIC_IP_TTL = 30  # seconds a public IP answer is reused while the VPN stays healthy
CONNECTIVITY_PATH = "/server/api?api_version=3&method=get_network_connection_status"

# Mutating (and a few reading) routes of the real app that need the API key; the simulator implements two.
PROTECTED_ROUTES = [(method, re.compile(pattern)) for method, pattern in (
    ("POST", r"/provision"), ("POST", r"/provision/acestream"), ("POST", r"/scale/[^/]+"), ("POST", r"/gc"),
    ("DELETE", r"/containers/[^/]+"), ("GET", r"/containers/[^/]+/logs"), ("POST", r"/events/stream_started"),
    ("POST", r"/events/stream_ended"), ("DELETE", r"/streams/[^/]+"), ("POST", r"/streams/batch-stop"),
    ("GET", r"/by-label"), ("POST", r"/health/circuit-breaker/reset"), ("POST", r"/custom-variant/config"),
    ("POST", r"/custom-variant/reprovision"), ("POST", r"/events/cleanup"), ("POST", r"/cache/clear"),
    ("POST", r"/proxy/config"), ("POST", r"/settings/orchestrator"), ("POST", r"/settings/vpn"),
    ("POST", r"/settings/engine"), ("GET", r"/settings/export"), ("POST", r"/settings/import"),
    ("POST", r"/engine-cache/purge"), ("GET", r"/engine-cache/stats"),
)]


def log(level, message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    print(f"{stamp}|{level}|{COMPONENT}|{message}", flush=True)


def now_iso():
    return datetime.now(timezone.utc).isoformat()


class ConfigError(Exception):
    pass


class ProvisionError(Exception):
    pass


# --------------------------------------------------------------------------------------------- configuration
def parse_range(name, value):
    try:
        low, high = (int(part) for part in value.strip().split("-"))
    except ValueError as exc:
        raise ConfigError(f'{name}: invalid port range format: {value!r}. Expected format: "start-end"') from exc
    if not (1 <= low <= 65535 and 1 <= high <= 65535) or low > high:
        raise ConfigError(f"{name}: {value!r} is not a port range (1-65535, start <= end)")
    return low, high


def parse_int(environ, name, default):
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {value!r} is not an integer") from exc


def parse_seconds(environ, name, default):
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {value!r} is not a number of seconds") from exc
    if seconds < 0:
        raise ConfigError(f"{name} must be >= 0")
    return seconds


def default_variant():
    machine = platform.machine().lower()
    if "aarch64" in machine or "arm64" in machine:
        return "AceServe-arm64"
    if "arm" in machine:
        return "AceServe-arm32"
    return "AceServe-amd64"


def platform_name():
    return {"AceServe-arm64": "arm64", "AceServe-arm32": "arm32"}.get(default_variant(), "amd64")


class Vpn:
    """One Gluetun container as the app sees it: configuration, and what the last look found."""

    def __init__(self, index, name, port_range):
        self.index, self.name, self.port_range = index, name, port_range
        self.id = None
        self.found = False
        self.status = "unknown"
        self.health = "unknown"
        self.forwarded_port = None
        self.port_reason = None
        self.public_ip = {}
        self.public_ip_at = None  # monotonic time of the last /v1/publicip/ip answer
        self.provider = None
        self.engines_checked = {}  # engine container id -> True / False / None (no answer)
        self.connected = False
        self.last_stable_port = None
        self.last_check = None
        self.unhealthy_since = None  # monotonic time Docker's health was first seen not healthy
        self.force_restart_attempted = False
        self.logged = {}

    @property
    def healthy(self):
        return self.health == "healthy"

    def once(self, key, value, level, message):
        """Log a decision once, when its value changes."""
        if self.logged.get(key, object()) != value:
            self.logged[key] = value
            log(level, message)

    def status_dict(self):
        ip = self.public_ip or {}
        return {
            "enabled": True,
            "status": self.status,
            "container_name": self.name,
            "container": self.name,
            "health": self.health,
            "connected": self.connected,
            "forwarded_port": self.forwarded_port,
            "public_ip": ip.get("public_ip") or None,
            "provider": self.provider,
            "country": ip.get("country"),
            "city": ip.get("city"),
            "region": ip.get("region"),
            "last_check": self.last_check,
            "last_check_at": self.last_check,
        }


class Config:
    def __init__(self, environ):
        self.app_port = parse_int(environ, "APP_PORT", 8000)
        self.vpn_mode = environ.get("VPN_MODE", "single").strip() or "single"
        if self.vpn_mode not in ("single", "redundant"):
            raise ConfigError(f"VPN_MODE: {self.vpn_mode!r} is not single or redundant")
        self.gluetun_1 = environ.get("GLUETUN_CONTAINER_NAME", "").strip()
        self.gluetun_2 = environ.get("GLUETUN_CONTAINER_NAME_2", "").strip()
        if not self.gluetun_1:
            raise ConfigError("GLUETUN_CONTAINER_NAME is not set: this simulator simulates the app with Gluetun only "
                              "(static VPN_MODE=single|redundant)")
        self.gluetun_api_port = parse_int(environ, "GLUETUN_API_PORT", 8001)
        self.port_range_host = parse_range("PORT_RANGE_HOST", environ.get("PORT_RANGE_HOST", "") or "19000-19999")
        self.ranges = {}
        for index, name in ((1, "GLUETUN_PORT_RANGE_1"), (2, "GLUETUN_PORT_RANGE_2")):
            value = environ.get(name, "").strip()
            self.ranges[index] = parse_range(name, value) if value else None
        self.https_range = parse_range("ACE_HTTPS_RANGE", environ.get("ACE_HTTPS_RANGE", "") or "45000-49999")
        self.min_replicas = parse_int(environ, "MIN_REPLICAS", 2)
        self.max_replicas = parse_int(environ, "MAX_REPLICAS", 6)
        if self.min_replicas < 0:
            raise ConfigError("MIN_REPLICAS must be >= 0")
        if self.max_replicas <= 0:
            raise ConfigError("MAX_REPLICAS must be > 0")
        if self.max_replicas < self.min_replicas:
            raise ConfigError("MAX_REPLICAS must be >= MIN_REPLICAS")
        self.engine_variant = environ.get("ENGINE_VARIANT", "").strip() or default_variant()
        self.auto_delete = environ.get("AUTO_DELETE", "true").strip().lower() == "true"
        self.docker_network = environ.get("DOCKER_NETWORK", "").strip() or None
        self.api_key = environ.get("API_KEY") or None
        self.container_label = environ.get("CONTAINER_LABEL", "ondemand.app=myservice")
        if "=" not in self.container_label:
            raise ConfigError(f'CONTAINER_LABEL must contain "=" (key=value format), got {self.container_label!r}')
        self.label_key, _eq, self.label_value = self.container_label.partition("=")
        if not self.label_key:
            raise ConfigError(f"CONTAINER_LABEL {self.container_label!r} has an empty key")
        self.image_override = environ.get("APP_SIM_ENGINE_IMAGE", "").strip() or None
        try:
            self.interval = float(environ.get("APP_SIM_INTERVAL", "") or 1)
        except ValueError as exc:
            raise ConfigError("APP_SIM_INTERVAL must be a number of seconds") from exc
        if self.interval <= 0:
            raise ConfigError("APP_SIM_INTERVAL must be > 0")
        # The real app's health manager after a fault (an engine removed, a Gluetun restart): its first replacement
        # came 18-57 s later, then one every 20 s while the pool is short of healthy engines; its shutdown never
        # finished within Docker's 10 s stop timeout. Seconds, configurable so that tests stay fast.
        self.replace_delay = parse_seconds(environ, "APP_SIM_REPLACE_DELAY_S", 18.0)
        self.replace_interval = parse_seconds(environ, "APP_SIM_REPLACE_INTERVAL_S", 20.0)
        self.shutdown_seconds = parse_seconds(environ, "APP_SIM_SHUTDOWN_S", 12.0)
        # v1.7.3 restarts a Gluetun container unhealthy this long (once per unhealthy spell; int seconds in the app).
        self.unhealthy_restart = parse_seconds(environ, "VPN_UNHEALTHY_RESTART_TIMEOUT_S", 60.0)
        # An engine younger than this counts as healthy (it is starting).
        self.engine_grace = parse_seconds(environ, "APP_SIM_ENGINE_GRACE_S", 10.0)
        docker_host = environ.get("DOCKER_HOST", "").strip()
        if docker_host and not docker_host.startswith("unix://"):
            raise ConfigError(f"DOCKER_HOST={docker_host}: the simulator reaches Docker through a unix socket only")
        self.socket_path = docker_host[len("unix://"):] if docker_host else DEFAULT_SOCKET
        self.persisted = None

    def load_engine_settings(self, path=ENGINE_SETTINGS_FILE):
        """The persisted engine settings file wins over MIN_REPLICAS, MAX_REPLICAS and ENGINE_VARIANT."""
        if not os.path.exists(path):
            log("INFO", f"no persisted engine settings ({path}): MIN_REPLICAS={self.min_replicas}, "
                f"MAX_REPLICAS={self.max_replicas}, ENGINE_VARIANT={self.engine_variant} from the environment")
            return
        try:
            with open(path, encoding="utf-8") as handle:
                settings = json.load(handle)
            if not isinstance(settings, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            log("ERROR", f"cannot load persisted engine settings {path}: {exc}; the environment applies")
            return
        self.persisted = settings
        if "min_replicas" in settings:
            self.min_replicas = int(settings["min_replicas"])
        if "max_replicas" in settings:
            self.max_replicas = int(settings["max_replicas"])
        if "auto_delete" in settings:
            self.auto_delete = bool(settings["auto_delete"])
        if "engine_variant" in settings:
            self.engine_variant = str(settings["engine_variant"])
        log("INFO", f"Loading persisted engine settings from {path}: min_replicas={self.min_replicas}, "
            f"max_replicas={self.max_replicas}, engine_variant={self.engine_variant} (they replace MIN_REPLICAS, "
            "MAX_REPLICAS and ENGINE_VARIANT)")

    def engine_image(self):
        """The image of the configured variant (an unknown variant falls back, as the app does)."""
        variant = self.engine_variant
        current = platform_name()
        if variant not in VARIANT_IMAGES or (current in ("arm64", "arm32") and "amd64" in variant):
            fallback = default_variant()
            log("WARNING", f"Engine variant '{variant}' not found" if variant not in VARIANT_IMAGES else
                f"Engine variant '{variant}' is incompatible with platform '{current}'")
            log("INFO", f"Falling back to engine variant '{fallback}' (platform: {current})")
            variant = fallback
        image = VARIANT_IMAGES[variant]
        if self.image_override:
            log("INFO", f"engine image {self.image_override} (APP_SIM_ENGINE_IMAGE) instead of {image} ({variant})")
            return self.image_override
        return image

    def vpns(self):
        first = self.ranges[1] or self.port_range_host
        if not self.ranges[1]:
            log("WARNING", f"GLUETUN_PORT_RANGE_1 not set: engines of '{self.gluetun_1}' take their ports from "
                f"PORT_RANGE_HOST {first[0]}-{first[1]}")
        vpns = [Vpn(1, self.gluetun_1, first)]
        if self.vpn_mode == "redundant":
            if not self.gluetun_2:
                log("WARNING", "VPN_MODE=redundant without GLUETUN_CONTAINER_NAME_2: one VPN only")
            else:
                second = self.ranges[2] or self.port_range_host
                if not self.ranges[2]:
                    log("WARNING", f"GLUETUN_PORT_RANGE_2 not set: engines of '{self.gluetun_2}' take their ports "
                        f"from PORT_RANGE_HOST {second[0]}-{second[1]}")
                vpns.append(Vpn(2, self.gluetun_2, second))
        return vpns

    def engine_settings(self):
        """GET /settings/engine: the persisted file when there is one, else the running configuration."""
        if self.persisted is not None:
            return {**self.persisted, "platform": platform_name()}
        return {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas, "auto_delete": self.auto_delete,
                "engine_variant": self.engine_variant, "use_custom_variant": False, "platform": platform_name()}


# -------------------------------------------------------------------------------------------- Docker Engine API
class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("docker", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class DockerError(Exception):
    pass


class Docker:
    """The few Docker Engine API calls the simulator needs, over the unix socket."""

    def __init__(self, path):
        self.path = path

    def call(self, method, path, body=None, timeout=60):
        conn = UnixConnection(self.path, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DockerError(f"Docker Engine at {self.path}: {method} {path}: {exc}") from exc
        finally:
            conn.close()
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = raw.decode(errors="replace")
        return response.status, value

    def expect(self, method, path, ok, body=None, timeout=60):
        status, value = self.call(method, path, body, timeout)
        if status not in ok:
            message = value.get("message") if isinstance(value, dict) else value
            raise DockerError(f"{method} {path}: {status} {message}")
        return status, value

    def ping(self):
        return self.call("GET", "/_ping", timeout=5)[0] == 200

    def inspect(self, name):
        status, value = self.expect("GET", f"/containers/{quote(name, safe='')}/json", (200, 404))
        return value if status == 200 else None

    def containers(self, label=None):
        path = "/containers/json?all=1"
        if label:
            path += "&filters=" + quote(json.dumps({"label": [label]}), safe="")
        return self.expect("GET", path, (200,))[1]

    def create(self, name, config):
        return self.call("POST", f"/containers/create?name={quote(name, safe='')}", config)

    def start(self, cid):
        self.expect("POST", f"/containers/{cid}/start", (204, 304))

    def restart(self, name, timeout=10):
        self.expect("POST", f"/containers/{quote(name, safe='')}/restart?t={timeout}", (204,), timeout=timeout + 60)

    def remove(self, cid, stop_timeout=None):
        if stop_timeout is not None:
            self.expect("POST", f"/containers/{cid}/stop?t={stop_timeout}", (204, 304, 404),
                        timeout=stop_timeout + 60)
        self.expect("DELETE", f"/containers/{cid}?force=1&v=1", (204, 404))


def http_get_json(url, timeout=3.0):
    """GET without credentials: (status, JSON value or None); raises OSError when nothing answers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        path = parts.path + ("?" + parts.query if parts.query else "")
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        raw = response.read()
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, None


# ------------------------------------------------------------------------------------------------- the app
def engine_label(container, key, default=None):
    return (container.get("Labels") or {}).get(key, default)


def engine_port(container, key):
    try:
        return int(engine_label(container, key))
    except (TypeError, ValueError):
        return None


def short(cid):
    return (cid or "")[:12]


def container_name(container):
    names = container.get("Names") or ["/?"]
    return names[0].lstrip("/")


class App:
    def __init__(self, config, docker):
        self.config = config
        self.docker = docker
        self.vpns = config.vpns()
        self.image = config.engine_image()
        self.lock = threading.RLock()  # one provisioning decision at a time (reconcile loop and API)
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.engine_health = {}  # engine container id -> "healthy" / "unhealthy" from the last connectivity ask
        # After its first full provisioning the app has re-indexed its engines: from then on its health manager
        # replaces unhealthy or missing engines, late and reserving only their HTTP ports (v1.7.3's bug).
        self.reindexed = False
        self.next_replacement = None  # monotonic time of the health manager's next replacement
        self.logged = {}

    # -- logging helpers
    def once(self, key, value, level, message):
        if self.logged.get(key, object()) != value:
            self.logged[key] = value
            log(level, message)

    # -- engines
    def label_filter(self):
        return f"{self.config.label_key}={self.config.label_value}"

    def engines(self):
        """Every container carrying CONTAINER_LABEL, whatever its state."""
        return self.docker.containers(self.label_filter())

    @staticmethod
    def running(containers):
        return [c for c in containers if c.get("State") in ("running", "paused")]

    def vpn_of(self, container):
        return engine_label(container, LABEL_VPN) or self.vpns[0].name

    def cleanup_on_start(self):
        found = self.engines()
        if not found:
            log("INFO", f"start-up clean-up: no container carries {self.label_filter()}")
            return

        def remove(container):
            self.docker.remove(container["Id"], stop_timeout=3)
            log("INFO", f"start-up clean-up: stopped and removed {container_name(container)} ({short(container['Id'])}), "
                f"it carries {self.label_filter()}")

        list(self.pool.map(remove, found))

    # -- VPNs
    def observe(self, vpn):
        vpn.last_check = now_iso()
        try:
            container = self.docker.inspect(vpn.name)
        except DockerError as exc:
            vpn.found, vpn.status, vpn.health = False, "error", "unknown"
            vpn.once("found", "error", "ERROR", f"Error checking VPN health for '{vpn.name}': {exc}")
            return
        if container is None:
            vpn.found, vpn.id, vpn.status, vpn.health = False, None, "not_found", "unhealthy"
            vpn.forwarded_port, vpn.public_ip, vpn.public_ip_at = None, {}, None
            vpn.once("found", None, "ERROR", f"VPN container '{vpn.name}' not found")
            return
        state = container.get("State") or {}
        if vpn.id != container["Id"]:
            vpn.public_ip_at = None  # another container (re-created): ask again
        vpn.found, vpn.id, vpn.status = True, container["Id"], state.get("Status", "unknown")
        running = bool(state.get("Running"))
        docker_health = (state.get("Health") or {}).get("Status")
        if docker_health:
            vpn.health = docker_health if running else "unhealthy"
        else:
            vpn.health = "healthy" if running else "unhealthy"
        seen = "found" if vpn.logged.get("found") in (None, "error") or vpn.logged["found"][0] != vpn.id else "now"
        vpn.once("found", (vpn.id, vpn.health), "INFO",
                 f"VPN '{vpn.name}' {seen}: container {short(vpn.id)}, {vpn.status}, Docker health {vpn.health}")
        networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
        if self.config.docker_network and self.config.docker_network not in networks:
            vpn.once("network", vpn.id, "WARNING", f"VPN container '{vpn.name}' is not on DOCKER_NETWORK "
                     f"'{self.config.docker_network}' (networks: {', '.join(sorted(networks)) or 'none'})")
        env = dict(item.partition("=")[::2] for item in (container.get("Config") or {}).get("Env") or [])
        vpn.provider = env.get("VPN_SERVICE_PROVIDER")
        vpn.forwarded_port = self.read_forwarded_port(vpn) if running else None
        if not vpn.healthy:
            vpn.public_ip, vpn.public_ip_at = {}, None
        elif vpn.public_ip_at is None or time.monotonic() - vpn.public_ip_at > PUBLIC_IP_TTL:
            vpn.public_ip = self.read_public_ip(vpn)
            vpn.public_ip_at = time.monotonic() if vpn.public_ip else None

    def force_restart(self, vpn):
        """v1.7.3's VPN monitor: a Gluetun container that Docker has called unhealthy for
        VPN_UNHEALTHY_RESTART_TIMEOUT_S is restarted through the Docker socket, once per unhealthy spell. The app
        then skips its own engine restart (a grace period): its engines stay in the old network namespace."""
        if vpn.healthy or not vpn.found:
            if vpn.healthy:
                vpn.unhealthy_since, vpn.force_restart_attempted = None, False
            return
        now = time.monotonic()
        if vpn.unhealthy_since is None:
            vpn.unhealthy_since = now
            log("WARNING", f"VPN '{vpn.name}' became unhealthy")
        if vpn.force_restart_attempted or now - vpn.unhealthy_since < self.config.unhealthy_restart:
            return
        log("WARNING", f"Force restarting VPN container '{vpn.name}' after {self.config.unhealthy_restart:g}s timeout")
        try:
            self.docker.restart(vpn.name)
        except DockerError as exc:
            log("ERROR", f"Failed to force restart VPN container '{vpn.name}': {exc}")
            return
        vpn.force_restart_attempted = True
        log("INFO", f"VPN container '{vpn.name}' restart initiated")

    def control_url(self, vpn, path):
        return f"http://{vpn.name}:{self.config.gluetun_api_port}{path}"

    def read_forwarded_port(self, vpn):
        try:
            status, value = http_get_json(self.control_url(vpn, "/v1/portforward"))
        except OSError as exc:
            vpn.once("port", ("error", str(exc)), "ERROR", f"Failed to get forwarded port from '{vpn.name}': {exc}")
            return None
        if status == 401:
            vpn.once("port", 401, "INFO", f"Port forwarding not supported by VPN config for '{vpn.name}' (401 Unauthorized)")
            return None
        if status != 200:
            vpn.once("port", status, "ERROR", f"Failed to get forwarded port from '{vpn.name}': HTTP {status}")
            return None
        port = value.get("port") if isinstance(value, dict) else None
        try:
            port = int(port) if port else None
        except (TypeError, ValueError):
            port = None
        if port is None:
            vpn.once("port", 0, "WARNING", f"No port forwarding info from '{vpn.name}'")
            return None
        vpn.once("port", port, "INFO", f"Retrieved VPN forwarded port for '{vpn.name}': {port}")
        return port

    def read_public_ip(self, vpn):
        try:
            status, value = http_get_json(self.control_url(vpn, "/v1/publicip/ip"))
        except OSError as exc:
            vpn.once("ip", str(exc), "ERROR", f"Failed to get public IP info from '{vpn.name}': {exc}")
            return {}
        if status != 200 or not isinstance(value, dict) or not value.get("public_ip"):
            vpn.once("ip", status, "WARNING", f"No public IP information available from '{vpn.name}' (HTTP {status})")
            return {}
        vpn.once("ip", value.get("public_ip"), "INFO", f"VPN '{vpn.name}' public IP {value.get('public_ip')}")
        return value

    def ask_engine(self, vpn_name, container):
        """The engine's own view of its connectivity, through its HTTP port on the Gluetun container's name."""
        port = engine_port(container, LABEL_HOST_HTTP)
        if not port:
            return None
        try:
            status, value = http_get_json(f"http://{vpn_name}:{port}{CONNECTIVITY_PATH}", timeout=2.0)
        except OSError:
            return None
        if status != 200 or not isinstance(value, dict):
            return False
        return (value.get("result") or {}).get("connected") is True

    def check_connectivity(self, containers):
        running = self.running(containers)
        answers = dict(zip([c["Id"] for c in running],
                           self.pool.map(lambda c: self.ask_engine(self.vpn_of(c), c), running)))
        self.engine_health = {cid: ("unhealthy" if answer is None else "healthy") for cid, answer in answers.items()}
        for vpn in self.vpns:
            mine = {c["Id"]: answers[c["Id"]] for c in running if self.vpn_of(c) == vpn.name}
            vpn.engines_checked = mine
            answered = [a for a in mine.values() if a is not None]
            # Docker health first; the engines that answer have the last word (a tunnel that is down is seen by
            # them before Docker's three failed checks).
            connected = vpn.healthy and (not answered or any(answered))
            vpn.once("connected", connected, "INFO" if connected else "WARNING",
                     f"VPN '{vpn.name}' connected: {str(connected).lower()} (Docker health {vpn.health}, engines "
                     f"reporting connectivity {sum(1 for a in answered if a)}/{len(answered)} of {len(mine)})")
            vpn.connected = connected
        if len(self.vpns) == 2 and all(v.healthy for v in self.vpns):
            self.once("both", True, "INFO", "Both Gluetun containers are healthy")
        elif len(self.vpns) == 2:
            self.once("both", False, "INFO", "Not both Gluetun containers are healthy: "
                      + ", ".join(f"'{v.name}' {v.health}" for v in self.vpns))

    def vpn_status(self):
        vpn1 = self.vpns[0].status_dict()
        emergency = {"active": False, "failed_vpn": None, "healthy_vpn": None, "duration_seconds": 0}
        if self.config.vpn_mode == "single":
            return {**vpn1, "mode": "single", "vpn1": vpn1, "vpn2": {}, "emergency_mode": emergency}
        vpn2 = self.vpns[1].status_dict() if len(self.vpns) > 1 else {}
        any_connected = vpn1["connected"] or bool(vpn2 and vpn2["connected"])
        return {
            "mode": "redundant",
            "enabled": True,
            "status": "running" if any_connected else "unhealthy",
            "container_name": vpn1["container_name"],
            "container": vpn1["container_name"],
            "health": "healthy" if any_connected else "unhealthy",
            "connected": any_connected,
            "forwarded_port": vpn1["forwarded_port"],
            "last_check": now_iso(),
            "last_check_at": now_iso(),
            "vpn1": vpn1,
            "vpn2": vpn2,
            "emergency_mode": emergency,
        }

    def engine_list(self):
        listed = []
        vpns = {v.name: v for v in self.vpns}
        for container in self.running(self.engines()):
            labels = container.get("Labels") or {}
            vpn_name = self.vpn_of(container)
            forwarded = labels.get(LABEL_FORWARDED, "false").lower() == "true"
            vpn = vpns.get(vpn_name)
            created = datetime.fromtimestamp(container.get("Created", 0), timezone.utc).isoformat()
            listed.append({
                "container_id": container["Id"],
                "container_name": container_name(container),
                "host": vpn_name,
                "port": engine_port(container, LABEL_HOST_HTTP) or 0,
                "api_port": engine_port(container, LABEL_HOST_API),
                "labels": labels,
                "forwarded": forwarded,
                "first_seen": created,
                "last_seen": now_iso(),
                "streams": [],
                "health_status": self.engine_health.get(container["Id"], "unknown"),
                "last_health_check": None,
                "last_stream_usage": None,
                "vpn_container": vpn_name,
                "engine_variant": labels.get(LABEL_VARIANT),
                "platform": None,
                "version": None,
                "forwarded_port": vpn.forwarded_port if forwarded and vpn else None,
            })
        listed.sort(key=lambda e: e["port"])
        return listed

    # -- provisioning
    @staticmethod
    def free_pair(vpn, containers, http_only=False):
        """The two lowest free host ports of the VPN's range (HTTP port, API port), both ports of every engine
        of that VPN counted as taken; ``http_only``: only their HTTP ports (the real app after re-indexing, so
        that a replacement may take another engine's API port and crash-loop)."""
        used = set()
        for container in containers:
            if engine_label(container, LABEL_VPN) == vpn.name:
                held = (engine_port(container, LABEL_HOST_HTTP),) if http_only else (
                    engine_port(container, LABEL_HOST_HTTP), engine_port(container, LABEL_HOST_API))
                used.update(p for p in held if p)
        free = [p for p in range(vpn.port_range[0], vpn.port_range[1] + 1) if p not in used]
        return tuple(free[:2]) if len(free) >= 2 else None

    def free_https(self, containers, avoid):
        used = {engine_port(c, LABEL_HTTPS) for c in containers} | set(avoid)
        for port in range(self.config.https_range[0], self.config.https_range[1] + 1):
            if port not in used:
                return port
        raise ProvisionError(f"no free port in ACE_HTTPS_RANGE {self.config.https_range[0]}-{self.config.https_range[1]}")

    def taken_names(self):
        return {name.lstrip("/") for c in self.docker.containers() for name in c.get("Names") or []}

    def provision(self, reason, extra_labels=None, vpn=None, http_only=False):
        """Start one engine on the healthy VPN with the fewest engines (or on this VPN); returns the provisioning
        answer."""
        with self.lock:
            containers = self.engines()
            running = self.running(containers)
            healthy = [v for v in self.vpns if v.healthy and v.id and vpn in (None, v)]
            if not healthy:
                raise ProvisionError("no healthy VPN container: cannot start an AceStream engine")
            counts = {v.name: sum(1 for c in running if self.vpn_of(c) == v.name) for v in self.vpns}
            chosen, ports = None, None
            for candidate in sorted(healthy, key=lambda v: (counts[v.name], v.index)):
                ports = self.free_pair(candidate, containers, http_only=http_only)
                if ports:
                    chosen = candidate
                    break
            if chosen is None:
                raise ProvisionError("no free pair of ports in the range of "
                                     + ", ".join(f"'{v.name}' {v.port_range[0]}-{v.port_range[1]}" for v in healthy))
            http_port, api_port = ports
            https_port = self.free_https(containers, avoid=ports)
            has_forwarded = any(self.vpn_of(c) == chosen.name and engine_label(c, LABEL_FORWARDED) == "true"
                                for c in running)
            p2p = chosen.forwarded_port if not has_forwarded else None
            forwarded = bool(p2p)
            # v1.7.3 gives AceServe engines no --https-port: ACE_HTTPS_RANGE lands only in the label.
            command = ["python", "main.py", "--bind-all", "--http-port", str(http_port), "--api-port", str(api_port)]
            if forwarded:
                command += ["--port", str(p2p)]
            labels = {**(extra_labels or {}), self.config.label_key: self.config.label_value,
                      LABEL_HTTP: str(http_port), LABEL_HTTPS: str(https_port), LABEL_API: str(api_port),
                      LABEL_HOST_HTTP: str(http_port), LABEL_HOST_API: str(api_port),
                      LABEL_VARIANT: self.config.engine_variant, LABEL_VPN: chosen.name,
                      LABEL_FORWARDED: "true" if forwarded else "false"}
            body = {"Image": self.image, "Cmd": command, "Labels": labels,
                    "HostConfig": {"NetworkMode": f"container:{chosen.id}", "RestartPolicy": {"Name": "unless-stopped"}}}
            taken = self.taken_names()
            number, created = 1, None
            for _attempt in range(10):
                while f"acestream-{number}" in taken:
                    number += 1
                name = f"acestream-{number}"
                status, value = self.docker.create(name, body)
                if status == 201:
                    created = value["Id"]
                    break
                if status == 409:  # the name was taken meanwhile
                    taken.add(name)
                    continue
                message = value.get("message") if isinstance(value, dict) else value
                raise ProvisionError(f"creating {name} ({self.image}): {status} {message}")
            if created is None:
                raise ProvisionError("no free acestream-N name after 10 attempts")
            try:
                self.docker.start(created)
            except DockerError as exc:
                self.docker.remove(created)
                raise ProvisionError(f"starting {name}: {exc}") from exc
            log("INFO", f"engine {name} ({short(created)}) started on VPN '{chosen.name}' (network container:"
                f"{short(chosen.id)}): http {http_port}, api {api_port}, https {https_port}, "
                + (f"forwarded port {p2p}" if forwarded else "not forwarded") + f" [{reason}]")
            return {"container_id": created, "container_name": name, "host_http_port": http_port,
                    "container_http_port": http_port, "container_https_port": https_port,
                    "host_api_port": api_port, "container_api_port": api_port}

    def remove_engine(self, container, why):
        self.docker.remove(container["Id"], stop_timeout=3)
        log("INFO", f"engine {container_name(container)} ({short(container['Id'])}) removed: {why}")

    def replace_with_forwarded(self, vpn, container, why):
        """Remove ``container`` and start the forwarded engine of ``vpn`` in its place."""
        self.remove_engine(container, why)
        try:
            self.provision(f"forwarded engine of '{vpn.name}'", vpn=vpn)
        except (ProvisionError, DockerError) as exc:
            log("ERROR", f"cannot start the forwarded engine of '{vpn.name}': {exc}")

    def reconcile(self):
        for vpn in self.vpns:
            self.observe(vpn)
            self.force_restart(vpn)
        containers = self.engines()
        self.check_connectivity(containers)
        with self.lock:
            containers = self.engines()
            for container in containers:
                # A crash-looping engine (restart policy unless-stopped) is left to Docker, as the real app does.
                if container.get("State") not in ("running", "paused", "restarting"):
                    self.remove_engine(container, f"{container.get('State')} ({container.get('Status')})")
            running = self.running(self.engines())
            # A VPN's forwarded port changed: its forwarded engine goes, a new one comes with the new port.
            for vpn in self.vpns:
                if not vpn.healthy or not vpn.forwarded_port:
                    continue
                if vpn.last_stable_port is None:
                    vpn.last_stable_port = vpn.forwarded_port
                    continue
                if vpn.forwarded_port == vpn.last_stable_port:
                    continue
                log("WARNING", f"VPN '{vpn.name}' port changed from {vpn.last_stable_port} to {vpn.forwarded_port} - "
                    "replacing forwarded engine")
                vpn.last_stable_port = vpn.forwarded_port
                for container in running:
                    if self.vpn_of(container) == vpn.name and engine_label(container, LABEL_FORWARDED) == "true":
                        self.replace_with_forwarded(vpn, container, f"forwarded port of '{vpn.name}' changed")
            # A VPN whose forwarded port came after its engines were placed (Gluetun answers port 0 until its VPN
            # has one): one of them gives way to a forwarded engine, so that each VPN with a port has one.
            running = self.running(self.engines())
            for vpn in self.vpns:
                own = [c for c in running if self.vpn_of(c) == vpn.name]
                if not vpn.healthy or not vpn.forwarded_port or not own:
                    continue
                if any(engine_label(c, LABEL_FORWARDED) == "true" for c in own):
                    continue
                last = max(own, key=lambda c: engine_port(c, LABEL_HTTP) or 0)
                self.replace_with_forwarded(vpn, last, f"'{vpn.name}' forwards port {vpn.forwarded_port} and none of "
                                                       "its engines has it")
            running = self.running(self.engines())
            target = self.config.min_replicas
            if self.reindexed:
                self.health_manager(running, target)
                return
            while len(running) < target and not self.stopping.is_set():
                try:
                    self.provision(f"{len(running)} of MIN_REPLICAS {target} running")
                except (ProvisionError, DockerError) as exc:
                    self.once("provision", str(exc), "ERROR", f"cannot provision an engine: {exc}")
                    break
                self.logged.pop("provision", None)
                running = self.running(self.engines())
            if len(running) >= target:
                self.reindexed = True

    def health_manager(self, running, target):
        """After re-indexing: engines short of MIN_REPLICAS healthy ones are replaced late (APP_SIM_REPLACE_DELAY_S
        after the fault is seen, then one every APP_SIM_REPLACE_INTERVAL_S), each on the lowest free HTTP port with
        only the HTTP ports reserved: a replacement may take another engine's API port and crash-loop (exit 3), and
        another follows. Engines left in a dead network namespace stay (they answer nothing: unhealthy)."""
        young = time.time() - self.config.engine_grace
        healthy = [c for c in running if self.engine_health.get(c["Id"]) == "healthy" or (c.get("Created") or 0) > young]
        if len(healthy) >= target:
            if self.next_replacement is not None:
                log("INFO", f"health manager: {len(healthy)} healthy engine(s) of MIN_REPLICAS {target}")
            self.next_replacement = None
            return
        now = time.monotonic()
        if self.next_replacement is None:
            self.next_replacement = now + self.config.replace_delay
            log("WARNING", f"health manager: {len(healthy)} healthy engine(s) of MIN_REPLICAS {target}; replacing in "
                f"{self.config.replace_delay:g}s")
            return
        if now < self.next_replacement:
            return
        self.next_replacement = now + self.config.replace_interval
        try:
            self.provision(f"health manager: {len(healthy)} healthy of MIN_REPLICAS {target}", http_only=True)
        except (ProvisionError, DockerError) as exc:
            self.once("provision", str(exc), "ERROR", f"cannot provision an engine: {exc}")

    def run(self):
        while not self.stopping.is_set():
            try:
                self.reconcile()
            except DockerError as exc:
                self.once("loop", str(exc), "ERROR", f"reconcile: {exc}")
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.once("loop", repr(exc), "ERROR", f"reconcile failed: {exc!r}")
            self.stopping.wait(self.config.interval)


# ------------------------------------------------------------------------------------------------ HTTP API
class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup of the host name
        self.server_name, self.server_port = "orchestrator", self.server_address[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass

    def reply(self, code, value, headers=()):
        data = json.dumps(value).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, header in headers:
            self.send_header(key, header)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def authorized(self):
        """The app's check: no API_KEY, no check; else 'Authorization: Bearer <key>' (401 without, 403 wrong)."""
        key = self.server.app.config.api_key
        if not key:
            return True
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            self.reply(401, {"detail": "missing bearer token"})
            return False
        if header.split(" ", 1)[1] != key:
            self.reply(403, {"detail": "invalid token"})
            return False
        return True

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return None

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.route("GET")

    def do_HEAD(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.route("GET")

    def do_POST(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.route("POST")

    def do_DELETE(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.route("DELETE")

    def do_PUT(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.route("PUT")

    def do_PATCH(self):  # noqa: N802 - BaseHTTPRequestHandler's naming
        self.route("PATCH")

    def route(self, method):
        app = self.server.app
        path = urlsplit(self.path).path.rstrip("/") or "/"
        body = self.body() if method in ("POST", "PUT", "PATCH") else {}
        try:
            if method == "GET" and path == "/health":
                self.reply(200, {"status": "ok", "simulator": "acestream-orchestrator", "version": APP_VERSION})
            elif method == "GET" and path == "/version":
                self.reply(200, {"version": APP_VERSION, "title": "AceStream Orchestrator"})
            elif method == "GET" and path == "/vpn/status":
                self.reply(200, app.vpn_status())
            elif method == "GET" and path == "/engines":
                self.reply(200, app.engine_list())
            elif method == "GET" and path == "/settings/engine":
                self.reply(200, app.config.engine_settings())
            elif any(m == method and pattern.fullmatch(path) for m, pattern in PROTECTED_ROUTES):
                if self.authorized():
                    self.protected(method, path, body)
            else:
                self.reply(404, {"detail": "Not Found"})
        except DockerError as exc:
            self.reply(500, {"detail": f"Docker Engine: {exc}"})

    def protected(self, method, path, body):
        app = self.server.app
        if method == "POST" and path == "/provision/acestream":
            if body is None:
                self.reply(422, {"detail": "request body is not JSON"})
                return
            status = app.vpn_status()
            if not status["connected"]:
                self.reply(503, {"detail": {"error": "provisioning_blocked", "code": "vpn_disconnected",
                                            "message": "VPN connection is required but currently disconnected"}})
                return
            labels = body.get("labels") if isinstance(body.get("labels"), dict) else {}
            try:
                self.reply(200, app.provision("POST /provision/acestream", {str(k): str(v) for k, v in labels.items()}))
            except ProvisionError as exc:
                self.reply(503, {"detail": {"error": "provisioning_failed", "code": "vpn_error", "message": str(exc)}})
        elif method == "DELETE" and path.startswith("/containers/"):
            wanted = path.split("/")[2]
            for container in app.engines():
                if container["Id"].startswith(wanted) or container_name(container) == wanted:
                    app.remove_engine(container, "DELETE /containers")
                    self.reply(200, {"deleted": wanted})
                    return
            self.reply(404, {"detail": "container not found"})
        else:
            self.reply(501, {"detail": f"{method} {path} is not simulated by the orchestrator app simulator"})


# ------------------------------------------------------------------------------------------------------ main
def main():
    started = time.monotonic()
    try:
        config = Config(os.environ)
        config.load_engine_settings()
    except (ConfigError, ValueError, TypeError) as exc:
        log("ERROR", f"configuration: {exc}")
        return 1
    log("INFO", f"AceStream Orchestrator app v{APP_VERSION} SIMULATOR (test fixture): VPN_MODE={config.vpn_mode}, "
        f"Gluetun {config.gluetun_1}" + (f" and {config.gluetun_2}" if config.vpn_mode == "redundant" else "")
        + f" on port {config.gluetun_api_port}, CONTAINER_LABEL={config.container_label}, "
        f"replicas {config.min_replicas} (max {config.max_replicas}), variant {config.engine_variant}")
    docker = Docker(config.socket_path)
    deadline = time.monotonic() + 20
    while True:
        try:
            if docker.ping():
                break
        except DockerError as exc:
            if time.monotonic() > deadline:
                log("ERROR", f"no Docker Engine answers on {config.socket_path} (mount /var/run/docker.sock): {exc}")
                return 1
        time.sleep(1)
    app = App(config, docker)
    try:
        app.cleanup_on_start()
    except DockerError as exc:
        log("ERROR", f"start-up clean-up: {exc}")
        return 1
    try:
        server = Server(("0.0.0.0", config.app_port), Handler)
    except OSError as exc:
        log("ERROR", f"cannot listen on port {config.app_port} (APP_PORT): {exc.strerror}")
        return 1
    server.app = app
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def stop(signum, _frame):
        log("INFO", f"caught {signal.Signals(signum).name}, shutting down (takes {config.shutdown_seconds:g}s, then its "
            "engines are removed; killed before, it leaves them running)")
        app.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=app.run, daemon=True).start()
    log("INFO", f"listening on port {config.app_port}; ready in {time.monotonic() - started:.3f}s")
    app.stopping.wait()
    # v1.7.3's shutdown outlasts Docker's 10 s stop timeout (killed: exit 137, its engines left behind); given the
    # time (a longer stop timeout), it removes its engines before it exits.
    time.sleep(config.shutdown_seconds)
    try:
        with app.lock:
            for container in app.engines():
                app.remove_engine(container, "the app shuts down")
    except DockerError as exc:
        log("ERROR", f"shutdown: {exc}")
    server.server_close()
    app.pool.shutdown(wait=False, cancel_futures=True)
    log("INFO", "shut down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
