# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker-aware probing of Gluetun containers: health, VPN status, public IP, forwarded ports.

Private to this collection: not an API for other collections. Used by the gluetun_status module, the
forwarded_port lookup, engine_pool and stack_info.

* ``resolve_api_url(container_inspect, api_port)``: where the control server of an inspected container is
  reachable from the Docker host (pure).
* ``normalize_instances(...)``: validates and merges the per-instance options, before any request.
* ``probe_instances(docker_api, instances, ...)``: one result per instance (input order), probed in parallel,
  optionally waiting until each is healthy with its VPN running (and a forwarded port).
* ``read_forwarded_ports(docker_api, instances, ...)``: only the forwarded ports (the lookup).
* ``read_control(inspect, name, api_port, ...)``: what engine_pool and stack_info need from one inspected
  container's control server (VPN status, forwarded port).
* ``read_ports(client, ...)``: THE way forwarded ports are read; every reader above goes through it.

Health: ``_engine_core.vpn_health``: Docker ``State.Health.Status == "healthy"`` (``starting`` is not) or no
healthcheck, AND the control server answers ``running`` (a VPN stopped through the control server stays
``healthy`` to Docker).
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from urllib.parse import urlsplit

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import (
    DEFAULT_TIMEOUT,
    GluetunClient,
    GluetunConfigError,
    GluetunError,
    GluetunTimeout,
    GluetunUnauthorized,
    GluetunUnreachable,
    PUBLIC_IP_FIELDS,
    check_credentials,
    seconds_problem,
    validate_api_url,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    DockerException,
    NotFound,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import forwarding_enabled, vpn_health
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    CONTAINER_NAME_RE,
    GLUETUN_DEFAULT_API_PORT,
    ascii_digits,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import CONTROL_CHARACTER_RE, kind_of

POLL_INTERVAL = 0.5
MAX_WORKERS = 64
REPORTED_IP_FIELDS = ("country", "region", "city")
CREDENTIAL_FIELDS = ("api_key", "username", "password")
INSTANCE_FIELDS = ("name", "api_port", "api_url") + CREDENTIAL_FIELDS
FORWARDED_PORT_FAILURE = "Failed to get forwarded port from Gluetun"


# ----------------------------------------------------------------------------------------- input
def normalize_instances(instances, api_port=GLUETUN_DEFAULT_API_PORT, api_key=None, username=None, password=None):
    """Validate the instance list and merge the defaults into each; raises GluetunConfigError.

    An element is a container name or a dict with ``name`` and optional ``api_port``, ``api_url``,
    ``api_key``, ``username``, ``password``. An instance that sets any credential uses only its own ones.
    """
    if not instances:
        raise GluetunConfigError("instances is empty: give at least one Gluetun container name")
    if not isinstance(instances, (list, tuple)):
        raise GluetunConfigError("instances must be a list of Gluetun container names or dicts with a name")
    default_port = _check_port(api_port, "api_port")
    check_credentials(api_key, username, password, where="module options")
    result, seen = [], {}
    for index, item in enumerate(instances):
        where = "instances[%d]" % index
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise GluetunConfigError("%s must be a container name or a dict with a name, not %r" % (
                where, type(item).__name__))
        unknown = sorted(str(field) for field in set(item) - set(INSTANCE_FIELDS))
        if unknown:
            raise GluetunConfigError("%s has unknown fields: %s (allowed: %s)" % (
                where, ", ".join(unknown), ", ".join(INSTANCE_FIELDS)))
        name = _instance_name(item.get("name"), item.get("api_url"), where)
        where = "%s (%s)" % (where, name)
        if name in seen:
            raise GluetunConfigError("duplicate instance name '%s' in instances[%d] and instances[%d]: each "
                                     "Gluetun container may be listed once" % (name, seen[name], index))
        seen[name] = index
        port = default_port if item.get("api_port") is None else _check_port(item["api_port"], where + " api_port")
        url = item.get("api_url")
        if url not in (None, ""):
            try:
                url = validate_api_url(url)
            except GluetunConfigError as exc:
                raise GluetunConfigError("%s: %s" % (where, exc))
        else:
            url = None
        if any(item.get(field) not in (None, "") for field in CREDENTIAL_FIELDS):
            check_credentials(where=where, **dict((field, item.get(field)) for field in CREDENTIAL_FIELDS))
            creds = dict((field, item.get(field) or None) for field in CREDENTIAL_FIELDS)
        else:
            creds = {"api_key": api_key or None, "username": username or None, "password": password or None}
        entry = {"name": name, "api_port": port, "api_url": url}
        entry.update(creds)
        result.append(entry)
    return result


def _instance_name(name, api_url, where):
    """The instance's name, stripped of spaces: a Docker container name, or with an api_url any label without
    control characters (the lookup's URL terms are their own names)."""
    if not isinstance(name, str) or not name.strip(" "):
        raise GluetunConfigError("%s has no name: give the Gluetun container name (a string), not %s" % (
            where, kind_of(name) if not isinstance(name, str) else "an empty string"))
    name = name.strip(" ")
    if api_url in (None, ""):
        if not CONTAINER_NAME_RE.match(name):
            raise GluetunConfigError("%s: name %r is not a Docker container name (letters, digits, '_', '.', '-', "
                                     "starting with a letter or digit)" % (where, name))
    elif CONTROL_CHARACTER_RE.search(name):
        raise GluetunConfigError("%s: name %r holds a line break or other control character; give the Gluetun "
                                 "container name" % (where, name))
    return name


def _check_port(value, what):
    if isinstance(value, str) and ascii_digits(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise GluetunConfigError("%s must be a TCP port number between 1 and 65535 (the INTERNAL port of "
                                 "HTTP_CONTROL_SERVER_ADDRESS), not %r" % (what, value))
    return value


# ------------------------------------------------------------------------------------ pure Docker
def _is_loopback(host):
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _url(host, port):
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "http://%s:%d" % (host, int(port))


def resolve_api_url(container_inspect, api_port, host_address=None):
    """Where the Docker host reaches the control server of this container, or None.

    1. the host binding of ``<api_port>/tcp`` (0.0.0.0 / :: mean the host itself: 127.0.0.1);
    2. ``network_mode: host``: the host itself;
    3. the container's bridge IP address and the internal port.

    ``host_address`` is the Docker host's address as seen by the caller when the caller is not on it (a
    lookup on the controller with a remote docker_host): loopback bindings and bridge IPs are then
    unreachable, and wildcard bindings mean that address.
    """
    remote = host_address is not None and not _is_loopback(host_address)
    host = host_address if remote else "127.0.0.1"
    settings = container_inspect.get("NetworkSettings") or {}
    bindings = (settings.get("Ports") or {}).get("%d/tcp" % int(api_port)) or []
    candidates = []
    for binding in bindings:
        host_ip, host_port = (binding.get("HostIp") or ""), binding.get("HostPort")
        if not host_port:
            continue
        if host_ip in ("", "0.0.0.0"):
            candidates.append((0 if remote else 1, host, host_port))
        elif host_ip == "::":
            candidates.append((2, host if remote else "::1", host_port))
        elif _is_loopback(host_ip):
            if not remote:
                candidates.append((0 if ":" not in host_ip else 3, host_ip, host_port))
        else:
            candidates.append((1 if remote else 2 + (":" in host_ip), host_ip, host_port))
    if candidates:
        candidates.sort(key=lambda c: c[0])
        return _url(candidates[0][1], candidates[0][2])
    mode = ((container_inspect.get("HostConfig") or {}).get("NetworkMode") or "")
    if mode == "host":
        return _url(host, api_port)
    if remote:
        return None
    address = settings.get("IPAddress")
    if not address:
        networks = settings.get("Networks") or {}
        for net_name in sorted(networks, key=lambda n: (n != "bridge", n)):
            address = (networks[net_name] or {}).get("IPAddress")
            if address:
                break
    return _url(address, api_port) if address else None


def container_summary(container_inspect):
    """``{"id", "status", "health"}``; health is ``none`` for a container without a healthcheck."""
    state = container_inspect.get("State") or {}
    health = (state.get("Health") or {}).get("Status") or "none"
    return {"id": container_inspect.get("Id"), "status": state.get("Status"), "health": health}


def _last_health_output(container_inspect):
    log = ((container_inspect.get("State") or {}).get("Health") or {}).get("Log") or []
    if not log:
        return None
    output = " | ".join(line.strip() for line in (log[-1].get("Output") or "").splitlines() if line.strip())
    return output[:300] or None


def configured_control_port(container_inspect):
    """The port of HTTP_CONTROL_SERVER_ADDRESS in the container's environment (8000 when unset), or None."""
    for item in ((container_inspect.get("Config") or {}).get("Env") or []):
        key, _sep, value = item.partition("=")
        if key == "HTTP_CONTROL_SERVER_ADDRESS":
            port = value.rpartition(":")[2]
            return int(port) if ascii_digits(port) else None
    return GLUETUN_DEFAULT_API_PORT


def _address_hints(container_inspect, api_port, url):
    hints = []
    configured = configured_control_port(container_inspect)
    if configured is not None and configured != api_port:
        hints.append("the container listens on HTTP_CONTROL_SERVER_ADDRESS port %d but api_port is %d: set "
                     "api_port: %d" % (configured, api_port, configured))
    bindings = ((container_inspect.get("NetworkSettings") or {}).get("Ports") or {}).get("%d/tcp" % api_port)
    if not bindings and url:
        hints.append("port %d/tcp is not published, so the container's bridge address was tried" % api_port)
    return hints


# ---------------------------------------------------------------------------------------- probing
def _blank(instance):
    result = {
        "name": instance["name"], "api_url": instance.get("api_url"), "api_port": instance["api_port"],
        "container": None, "reachable": False, "version": None, "vpn_status": None, "healthy": False,
        "connected": False, "public_ip": None, "forwarded_port": None, "forwarded_ports": [],
        "port_route": None, "changed": False, "error": None, "warnings": [],
    }
    for field in REPORTED_IP_FIELDS:
        result[field] = None
    return result


class _InstanceProbe(object):
    """Observes one instance, round after round, until satisfied, out of time, or facing a fatal error."""

    def __init__(self, docker_api, docker_lock, instance, options):
        self.docker_api = docker_api
        self.docker_lock = docker_lock
        self.instance = instance
        self.options = options
        self.put_sent = False
        self.would_change = False
        self.client = None
        self.client_url = None

    # one round ------------------------------------------------------------------------------
    def observe(self):
        """Returns (result, satisfied, fatal)."""
        inst, opts = self.instance, self.options
        result = _blank(inst)
        result["changed"] = self.put_sent or self.would_change
        inspect = None
        if self.docker_api is not None:
            try:
                with self.docker_lock:
                    inspect = self.docker_api.inspect_container(inst["name"])
            except NotFound:
                if not inst.get("api_url"):
                    result["error"] = "No Gluetun container named '%s' on the Docker host%s" % (
                        inst["name"], opts.get("docker_where", ""))
                    return result, False, False
                result["warnings"].append("no container named '%s' on the Docker host: its health is judged "
                                          "from the control server alone" % inst["name"])
            except DockerException as exc:
                result["error"] = "Cannot inspect Gluetun container '%s': %s" % (inst["name"], exc)
                return result, False, False
        if inspect is not None:
            result["container"] = container_summary(inspect)
            if result["container"]["status"] != "running":
                result["error"] = "Gluetun container '%s' is not running (status %s): start it first" % (
                    inst["name"], result["container"]["status"])
                return result, False, False
        url = inst.get("api_url")
        hints = []
        if url is None:
            if inspect is None:
                result["error"] = "Cannot access Gluetun API of '%s': no api_url and no Docker access to find " \
                                  "its published port" % inst["name"]
                return result, False, True
            url = resolve_api_url(inspect, inst["api_port"], opts.get("host_address"))
            if url is None:
                result["error"] = (
                    "Cannot access Gluetun API of '%s': port %d/tcp is not published%s and no other address of the "
                    "container is reachable from here; publish it (e.g. \"127.0.0.1:%d:%d\") or give api_url" % (
                        inst["name"], inst["api_port"], "" if opts.get("host_address") is None
                        else " on a reachable host interface", inst["api_port"], inst["api_port"]))
                return result, False, False
            hints = _address_hints(inspect, inst["api_port"], url)
        result["api_url"] = url
        if self.client is None or self.client_url != url:
            self.client = GluetunClient(url, api_key=inst.get("api_key"), username=inst.get("username"),
                                        password=inst.get("password"), timeout=opts["timeout"], name=inst["name"],
                                        api_port=None if inst.get("api_url") else inst["api_port"], hints=hints)
            self.client_url = url
        if opts["mode"] == "ports":
            return self._observe_ports(result)
        return self._observe_status(result, inspect)

    def _call(self, result, func):
        """Run one query; (value, error). Unreachable/timeout errors end the round (re-raised)."""
        try:
            value = func()
            result["reachable"] = True
            return value, None
        except (GluetunUnreachable, GluetunTimeout):
            raise
        except GluetunError as exc:
            result["reachable"] = result["reachable"] or exc.status is not None or exc.kind == "invalid"
            return None, exc

    def _read_version(self, result, notes):
        if self.client.release is None:
            _data, error = self._call(result, self.client.version)
            if error is not None:
                notes.append(("version unknown: ", error))
        result["version"] = (self.client.release or {}).get("version")

    def _read_ports(self, result):
        ports, error = self._call(result, lambda: read_ports(self.client))
        result["port_route"] = self.client.port_route
        if error is not None:
            return error
        result["forwarded_ports"] = ports
        result["forwarded_port"] = ports[0] if ports else None
        return None

    def _observe_ports(self, result):
        name = self.instance["name"]
        try:
            self._read_version(result, [])
            error = self._read_ports(result)
        except (GluetunUnreachable, GluetunTimeout) as exc:
            result["error"] = "%s %s: %s" % (FORWARDED_PORT_FAILURE, _label(name), exc)
            return result, False, False
        if error is not None:
            result["error"] = "%s %s: %s" % (FORWARDED_PORT_FAILURE, _label(name), error)
            return result, False, not error.retriable
        if not result["forwarded_ports"]:
            result["error"] = _no_port_message(name)
            return result, False, False
        return result, True, False

    def _converge(self, result, status):
        """PUT the wanted VPN status once when it differs; returns (status, error)."""
        target = self.options.get("vpn_status")
        if not target or self.put_sent or self.would_change or _satisfies(status, target):
            return status, None
        if self.options.get("check_mode"):
            self.would_change = True
            return status, None
        try:
            _outcome, error = self._call(result, lambda: self.client.set_vpn_status(target))
        except GluetunTimeout:
            # Sent, but unanswered in time (Gluetun answers once the loop has moved): it may well apply.
            self.put_sent = True
            result["changed"] = True
            raise
        if error is not None:
            return status, error
        self.put_sent = True
        return self._call(result, self.client.vpn_status)

    def _observe_status(self, result, inspect):
        inst, opts = self.instance, self.options
        name, target, require_port = inst["name"], opts.get("vpn_status"), opts["require_forwarded_port"]
        # Problems as (prefix, exception or text): rendered at the end, so that the full 401 explanation is
        # given once and the other refused routes are named briefly.
        errors, notes = [], []
        port_error = None
        try:
            self._read_version(result, notes)
            status, status_error = self._call(result, self.client.vpn_status)
            if status_error is None:
                result["vpn_status"] = status
                status, status_error = self._converge(result, status)
                if status_error is None:
                    result["vpn_status"] = status
            result["changed"] = self.put_sent or self.would_change
            port_error = self._read_ports(result)
            if opts.get("public_ip", True):
                info, ip_error = self._call(result, self.client.public_ip)
                if ip_error is not None:
                    notes.append(("public IP unknown: ", ip_error))
                else:
                    result["public_ip"] = info["public_ip"]
                    for field in REPORTED_IP_FIELDS:
                        result[field] = info.get(field)
        except (GluetunUnreachable, GluetunTimeout) as exc:
            prefix = "%s %s: " % (FORWARDED_PORT_FAILURE, _label(name)) if require_port else ""
            result["error"] = prefix + str(exc)
            return result, False, False

        result["connected"] = result["vpn_status"] == "running"
        container = result["container"] or {"status": "running", "health": "none"}  # an api_url without Docker
        result["healthy"] = vpn_health(container["status"], container["health"], result["vpn_status"])[0]
        container = result["container"]

        fatal = False
        if status_error is not None:
            errors.append(("", status_error))
            fatal = not status_error.retriable
        wants_stopped = target == "stopped" and not self.would_change
        if self.would_change:
            pass  # check mode: the PUT that would be sent decides; no state to judge
        elif wants_stopped:
            if status_error is None and result["vpn_status"] != "stopped":
                errors.append(("", "VPN of '%s' is '%s', not 'stopped' yet" % (name, result["vpn_status"])))
        else:
            if status_error is None and not result["healthy"]:
                errors.append(("", _unhealthy_message(name, container, result["vpn_status"], inspect)))
            if require_port and port_error is None and not result["forwarded_ports"]:
                errors.append(("", _no_port_message(name)))
        if port_error is not None:
            if require_port and not wants_stopped and not self.would_change:
                errors.append(("%s %s: " % (FORWARDED_PORT_FAILURE, _label(name)), port_error))
                fatal = fatal or not port_error.retriable
            else:
                notes.append(("forwarded port unknown: ", port_error))
        explained = [False]
        result["error"] = "; ".join(self._render(item, explained).rstrip(".") for item in errors) or None
        result["warnings"].extend(self._render(item, explained) for item in notes)
        return result, not errors, fatal

    def _render(self, item, explained):
        prefix, problem = item
        if isinstance(problem, GluetunUnauthorized):
            if explained[0]:
                return "%s%s answered 401 Unauthorized for %s as well (same fix)" % (prefix, self.client.who, problem.entry)
            explained[0] = True
        return prefix + str(problem)

    # the loop -----------------------------------------------------------------------------------
    def run(self):
        deadline = time.monotonic() + max(0.0, float(self.options.get("wait_timeout") or 0))
        waited = False
        while True:
            try:
                result, satisfied, fatal = self.observe()
            except GluetunConfigError as exc:
                result, satisfied, fatal = _blank(self.instance), False, True
                result["error"] = str(exc)
            except Exception as exc:  # pylint: disable=broad-except
                # One instance's surprise must not lose the others' results, nor show its credentials.
                result, satisfied, fatal = _blank(self.instance), False, True
                result["error"] = "Unexpected error probing Gluetun '%s': %s: %s" % (
                    self.instance["name"], type(exc).__name__, scrub_secrets(str(exc), self.instance))
            left = deadline - time.monotonic()
            if satisfied or fatal or left <= 0:
                if not satisfied and waited and result["error"]:
                    result["error"] = "after waiting %gs: %s" % (self.options["wait_timeout"], result["error"])
                return result
            waited = True
            time.sleep(min(POLL_INTERVAL, left))


def read_ports(client, wait=0.0, retry_empty=False):
    """The forwarded ports of one control server, ``[]`` when none is forwarded (yet): the one way this collection
    reads them (gluetun_status, the forwarded_port lookup, engine_pool and stack_info all come here).

    The release is asked first unless it was already (a hint only: before v3.41.0 the port route is
    /v1/openvpn/portforwarded; where it is unknown the client tries /v1/portforward, then the old route). The
    client sends the API key or basic auth, follows the old route's 301 (v3.41+) with the same credentials and
    reads every answer shape, 0 meaning no port. With ``retry_empty``, an empty answer is asked again once a
    second for up to ``wait`` seconds. Raises GluetunError.
    """
    if not client.release_asked:
        try:
            client.version()
        except GluetunError:
            pass  # the release is only a hint for the port route
    deadline = time.monotonic() + float(wait or 0)
    while True:
        ports = client.forwarded_ports()
        if ports or not retry_empty or time.monotonic() + 1 > deadline:
            return ports
        time.sleep(1)


def docker_host_address(docker_host):
    """The address a Docker host's published ports are reached at from here: the daemon's host for tcp://,
    http(s):// and ssh://, else loopback (a local socket)."""
    if docker_host and docker_host.startswith(("tcp://", "http://", "https://", "ssh://")):
        host = urlsplit(docker_host).hostname
        if host:
            return host
    return "127.0.0.1"


def read_control(inspect, name, api_port, credentials, timeout, need_ports, port_wait=0.0, docker_host=None):
    """Ask one running Gluetun container's control server what a pool needs, at the address its inspect shows.

    Returns ``{"vpn_status", "forwarded_port", "forwarded_ports", "error", "refused"}`` (the first port, and every
    port the VPN forwards, in Gluetun's order; ``refused``: the control server answered 401, which waiting does not
    fix). The VPN status is always read: Docker's health does not tell a VPN stopped
    through the control server (``vpn_health``). ``need_ports``: forwarded_port is auto. ``port_wait``: when the container turns
    port forwarding on and reports no port yet, ask again for up to that many seconds. ``credentials``:
    ``api_key``, ``username``, ``password``. ``docker_host``: where the Docker daemon is (its published ports).
    """
    result = {"vpn_status": None, "forwarded_port": None, "forwarded_ports": [], "error": None, "refused": False}
    if inspect is None or (inspect.get("State") or {}).get("Status") != "running":
        return result
    host = docker_host_address(docker_host)
    url = resolve_api_url(inspect, api_port, None if host == "127.0.0.1" else host)
    if url is None:
        result["error"] = ("Cannot access Gluetun API of '%s': port %d/tcp is not published and the container has no "
                           "address reachable from here; publish it (e.g. \"127.0.0.1:%d:%d\") or check api_port"
                           % (name, api_port, api_port, api_port))
        return result
    client = GluetunClient(url, timeout=timeout, name=name, api_port=api_port, **credentials)
    try:
        result["vpn_status"] = client.vpn_status()
        if need_ports:
            ports = read_ports(client, wait=port_wait, retry_empty=forwarding_enabled(inspect))
            result["forwarded_port"] = ports[0] if ports else None
            result["forwarded_ports"] = list(ports or [])
    except GluetunError as exc:
        result["error"] = str(exc)
        result["refused"] = isinstance(exc, GluetunUnauthorized)
    return result


def _label(name):
    """How messages name an instance: 'gluetun1', or "at <url>" for a URL term of the lookup."""
    return "at %s" % name if name.startswith(("http://", "https://")) else "'%s'" % name


def _satisfies(status, target):
    if target == "running":
        return status in ("running", "starting")
    return status in ("stopped", "stopping")


def _no_port_message(name):
    return ("%s %s: no port is forwarded (yet): the answer was port 0 / no ports. Check that VPN_PORT_FORWARDING=on "
            "and that the provider supports port forwarding (PIA, ProtonVPN, PrivateVPN, Perfect Privacy); the port is "
            "cleared on every VPN restart, so wait_timeout can wait for the new one" % (FORWARDED_PORT_FAILURE, _label(name)))


def _unhealthy_message(name, container, vpn_status, inspect):
    if container is not None and container["health"] == "starting":
        return "VPN container '%s' is not healthy yet: Docker health is 'starting' (the tunnel may not exist yet)" % name
    if container is not None and container["health"] not in ("healthy", "none"):
        output = _last_health_output(inspect) if inspect else None
        return "VPN container '%s' is not healthy: Docker health is '%s'%s" % (
            name, container["health"], " (last check: %s)" % output if output else "")
    if container is not None:
        return "VPN container '%s' is not healthy: %s" % (
            name, vpn_health(container["status"], container["health"], vpn_status)[1])
    return "VPN of '%s' is '%s', not 'running'" % (name, vpn_status)


def _checked_instances(docker_api, instances, api_port, api_key, username, password, timeout, wait_timeout):
    """The instances normalized, once the timeouts are checked and each has a way to its control server.

    Raises GluetunConfigError on bad input, or when there is no Docker access (``docker_api`` None) and an
    instance has no api_url.
    """
    check_timeouts(timeout, wait_timeout)
    normalized = normalize_instances(instances, api_port, api_key, username, password)
    if docker_api is None:
        missing = [inst["name"] for inst in normalized if not inst["api_url"]]
        if missing:
            raise GluetunConfigError("no Docker access and no api_url for: %s" % ", ".join(missing))
    return normalized


def _run(docker_api, instances, options):
    probes = []
    lock = threading.Lock()
    for instance in instances:
        probes.append(_InstanceProbe(docker_api, lock, instance, options))
    if len(probes) == 1:
        return [probes[0].run()]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(probes))) as pool:
        futures = [pool.submit(probe.run) for probe in probes]
        return [future.result() for future in futures]


def probe_instances(docker_api, instances, *, api_port=GLUETUN_DEFAULT_API_PORT, api_key=None, username=None,
                    password=None, timeout=DEFAULT_TIMEOUT, wait_timeout=0, require_forwarded_port=False, vpn_status=None,
                    check_mode=False, public_ip=True, host_address=None, docker_where=""):
    """Probe every instance in parallel; one result dict per instance, in input order.

    ``docker_api``: a low-level ``docker.APIClient``, or None when every instance has an api_url (health is
    then judged from the control server alone). ``wait_timeout`` > 0 polls each instance until it is healthy
    with its VPN running (and, with ``require_forwarded_port``, a non-zero forwarded port), or until the time
    is out; a 401 ends the wait at once. ``vpn_status`` (``running`` / ``stopped``) is converged by a PUT
    (not sent in ``check_mode``; ``changed`` tells). Raises GluetunConfigError on bad input, before any
    request; every other problem is reported in the instance's ``error``.
    """
    if vpn_status not in (None, "running", "stopped"):
        raise GluetunConfigError("vpn_status must be 'running' or 'stopped', not %r" % (vpn_status,))
    normalized = _checked_instances(docker_api, instances, api_port, api_key, username, password, timeout,
                                    wait_timeout)
    options = {"mode": "status", "timeout": float(timeout), "wait_timeout": float(wait_timeout or 0),
               "require_forwarded_port": bool(require_forwarded_port), "vpn_status": vpn_status,
               "check_mode": bool(check_mode), "public_ip": public_ip, "host_address": host_address,
               "docker_where": docker_where}
    return _run(docker_api, normalized, options)


def read_forwarded_ports(docker_api, instances, *, api_port=GLUETUN_DEFAULT_API_PORT, api_key=None, username=None,
                         password=None, timeout=DEFAULT_TIMEOUT, wait_timeout=0, host_address=None, docker_where=""):
    """Only the forwarded ports: one result per instance (``name``, ``api_url``, ``forwarded_port``,
    ``forwarded_ports``, ``port_route``, ``version``, ``error``), waiting up to ``wait_timeout`` for a
    non-zero port. A missing port is an ``error`` starting with "Failed to get forwarded port from Gluetun".
    """
    normalized = _checked_instances(docker_api, instances, api_port, api_key, username, password, timeout,
                                    wait_timeout)
    options = {"mode": "ports", "timeout": float(timeout), "wait_timeout": float(wait_timeout or 0),
               "require_forwarded_port": True, "host_address": host_address, "docker_where": docker_where}
    return _run(docker_api, normalized, options)


def check_timeouts(timeout, wait_timeout, wait_name="wait_timeout"):
    """Raise GluetunConfigError naming the option unless ``timeout`` > 0 and ``wait_timeout`` >= 0 are finite
    numbers of seconds."""
    for name, value, zero_ok in (("timeout", timeout, False), (wait_name, wait_timeout or 0, True)):
        problem = seconds_problem(value, zero_ok)
        if problem:
            raise GluetunConfigError("%s: %s" % (name, problem))


def scrub_secrets(text, instance):
    """``text`` with every form of the instance's credentials an exception may quote (as they are, escaped as in
    a repr, encoded, or as the basic-auth token) replaced by ********. For messages that quote an exception."""
    secrets = [instance.get(field) for field in CREDENTIAL_FIELDS]
    forms = set()
    for secret in secrets:
        if not isinstance(secret, str) or not secret:
            continue
        forms.update([secret, repr(secret)[1:-1], ascii(secret)[1:-1],
                      repr(secret.encode("utf-8", "surrogatepass"))[2:-1],
                      repr(secret.encode("latin-1", "backslashreplace"))[2:-1]])
    if instance.get("username") and instance.get("password"):
        token = ("%s:%s" % (instance["username"], instance["password"])).encode("utf-8", "surrogatepass")
        forms.add(base64.b64encode(token).decode("ascii"))
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, "********")
    return text


def needs_docker(instances):
    """True when some instance (a name or a dict) has no api_url, so Docker must find its address."""
    for item in instances or []:
        if isinstance(item, str) or not (isinstance(item, dict) and item.get("api_url")):
            return True
    return False


__all__ = ["normalize_instances", "check_timeouts", "resolve_api_url", "container_summary", "configured_control_port",
           "probe_instances", "read_forwarded_ports", "read_ports", "read_control", "docker_host_address",
           "needs_docker", "PUBLIC_IP_FIELDS", "FORWARDED_PORT_FAILURE"]
