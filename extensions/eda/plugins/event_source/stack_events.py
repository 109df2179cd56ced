# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stack_events: an Event-Driven Ansible source that watches AceStream stacks and says when one needs a converge.

Docker changes come from the Docker events stream of each Docker host (filtered by the pool's labels and by the
Gluetun container names), the VPN side from the Gluetun control servers, polled with the collection's client.
Every trigger leads to one observation of the stack (one list call, one inspect per Gluetun container), and
events are derived from what the stack's own labels say against what is observed, so a change the converge has
already repaired, or the converge's own re-creations, never give an event. Each stack is watched on its own, each
control server polled on its own schedule, every blocking call bounded in time: one host that hangs, fails or
answers nonsense gives a watch_lost for its stack and holds no other. See docs/eda.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

DOCUMENTATION = r"""
---
short_description: Events of AceStream stacks (forwarded port moved, Gluetun restarted, engine gone) for EDA
description:
  - Watches the Docker hosts and the Gluetun control servers of one or more stacks deployed by
    acestream.orchestrator and emits typed, de-duplicated events, each with C(meta.hosts) set to the inventory
    host it happened on and never a secret.
  - Docker changes come from the Docker events stream (no Docker polling); the control servers are polled every
    O(poll_interval) seconds with the collection's Gluetun client (API key or basic auth, every release).
  - Each stack is watched on its own and each control server is polled on its own schedule, in threads (at most 32
    calls at once, one per control server at a time), each read bounded in time. A control server that hangs,
    fails or answers what the client cannot take gives C(watch_lost) for its stack only (C(watch_reconnected)
    when it answers again); no other stack's polls or events wait for it and the source does not end.
  - Events are derived from the stack's own labels against the observation, after the Docker events settle, so
    the converge's own re-creations give no event and a stack that is converged gives none.
  - Event types C(forwarded_port_changed), C(vpn_health_changed), C(vpn_restarted), C(vpn_recreated),
    C(vpn_missing), C(engine_died), C(engine_missing), C(watch_lost), C(watch_reconnected).
  - What to watch comes from O(stacks), or from the inventory (the variables C(site) uses), found in
    O(inventory), else C(ANSIBLE_INVENTORY), else the C(-i) of the running ansible-rulebook.
options:
  stacks:
    description:
      - The stacks to watch, instead of the inventory. Each item has C(host) (the inventory host, for
        C(meta.hosts)), C(pool), C(gluetun) (names, or dicts with C(name), C(api_port), C(api_url)),
        optionally C(docker_host), C(api_port), C(api_key), C(api_key_file), C(username), C(password),
        C(replicas), C(ssh).
      - C(ssh) reaches a remote host as Ansible does (C(destination), C(user), C(port), C(private_key_file),
        C(args), C(docker_socket) on that host, default C(/var/run/docker.sock)): one OpenSSH master connection
        forwards the host's Docker socket, each control server (at its address on that host, its loopback by
        default) and reads C(api_key_file) there. From an inventory, every host that is not local (and has no
        C(tcp://) or C(ssh://) C(acestream_docker_host)) gets it from
        C(ansible_host), C(ansible_user), C(ansible_port), C(ansible_ssh_private_key_file),
        C(ansible_ssh_common_args) and C(ansible_ssh_extra_args).
    type: list
    elements: dict
  inventory:
    description: Inventory path(s) to read the stacks from (comma separated, or a list).
    type: str
  limit:
    description: Host pattern of the inventory to watch (default all).
    type: str
  poll_interval:
    description: Seconds between two reads of each control server.
    type: float
    default: 2
  settle:
    description: Quiet seconds after the last Docker event of a stack before it is observed.
    type: float
    default: 1.5
  max_settle:
    description: At most this many seconds between a trigger and the observation, even while events go on.
    type: float
    default: 8
  reconnect_min:
    description: First delay before reconnecting to a Docker Engine or polling a failed control server again.
    type: float
    default: 1
  reconnect_max:
    description: Longest delay between two reconnection attempts.
    type: float
    default: 30
  request_timeout:
    description:
      - Timeout of each control-server request and Docker call, in seconds.
      - A control server's read (VPN status and forwarded ports) is given at most 3 times this, a stack's Docker
        observation (2 + its number of Gluetun containers) times this; one that overruns gives C(watch_lost) and
        the next read of that control server (or Docker Engine) is skipped until the one still running returns.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Keep the stacks of the inventory converged
  hosts: all
  sources:
    - acestream.orchestrator.stack_events:
        poll_interval: 2
  rules:
    - name: Forwarded port moved
      condition: event.type == "forwarded_port_changed"
      action:
        run_playbook:
          name: acestream.orchestrator.converge_engines

- name: Explicit stacks (an EDA controller activation without the inventory's variables)
  hosts: all
  sources:
    - acestream.orchestrator.stack_events:
        stacks:
          - host: stream-a
            docker_host: tcp://10.0.0.5:2375
            pool: acestream
            gluetun: [gluetun1, gluetun2]
            api_port: 8001
            api_key_file: /etc/acestream/gluetun-api-key
          - host: stream-b
            ssh:
              destination: 10.0.0.6
              user: root
              private_key_file: /etc/acestream/id_ed25519
            pool: acestream
            gluetun: [gluetun1]
            api_key_file: /opt/acestream/acestream/gluetun-api-key
  rules:
    - name: Print
      condition: event.type is defined
      action:
        print_event:
"""


# ------------------------------------------------------------------------------- the collection's module_utils
def _collections_roots():
    """Directories holding ``ansible_collections/`` that may contain this collection, this file's first.

    ansible-rulebook finds the source through ``ansible-galaxy collection list`` and runs it with runpy, from
    ``<root>/ansible_collections/acestream/orchestrator/extensions/eda/plugins/event_source/``: the root is
    seven levels up (the path is not resolved: the collection is often a symbolic link to a checkout).
    """
    here = os.path.abspath(__file__)
    parts = here.split(os.sep)
    roots = []
    if len(parts) > 8 and parts[-8] == "ansible_collections":
        roots.append(os.sep.join(parts[:-8]) or os.sep)
    for entry in (os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS")
                  or "").split(os.pathsep):
        if entry:
            roots.append(entry[:-len("/ansible_collections")] if entry.endswith("/ansible_collections") else entry)
    roots += [os.path.expanduser("~/.ansible/collections"), "/usr/share/ansible/collections"]
    return roots


def _import_module_utils():
    """Make ``ansible_collections.acestream.orchestrator.plugins.module_utils`` importable and import it."""
    for root in _collections_roots():
        if os.path.isdir(os.path.join(root, "ansible_collections", "acestream", "orchestrator", "plugins")):
            if root not in sys.path:
                sys.path.append(root)
            break
    # pylint: disable=import-outside-toplevel
    from ansible_collections.acestream.orchestrator.plugins.module_utils import _engine_core as core
    from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_api as api
    from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_probe as probe
    from ansible_collections.acestream.orchestrator.plugins.plugin_utils import _ssh_tunnel as tunnel
    return core, api, probe, tunnel


_core, _api, _probe, _tunnel = _import_module_utils()
SshTunnel = _tunnel.SshTunnel
read_key_file = _tunnel.read_key_file
GluetunClient = _api.GluetunClient
GluetunError = _api.GluetunError

# Docker events that may change what a stack needs (exec_* of health checks and attach/resize never do).
DOCKER_EVENTS = ("create", "start", "restart", "die", "destroy", "kill", "stop", "pause", "unpause",
                 "health_status", "rename", "oom")
ENGINE_GONE_STATES = ("exited", "dead")
MAX_CALLS = 32    # blocking calls (control-server reads, Docker observations) running at once, each in its own thread
MAX_ERROR = 2000  # characters of an error carried by a watch_lost event
LOG = logging.getLogger("acestream.orchestrator.stack_events")


# ------------------------------------------------------------------------------------------------ helpers
def safe_url(url):
    """A URL without user name or password (for events and messages)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = "%s:%d" % (host, parts.port)
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def describe(exc):
    """An exception as one line: the collection's client errors as they are, anything else with its type (the
    client may raise what a control server's answer makes it raise: RecursionError, ValueError, ...)."""
    try:
        text = str(exc)
    except Exception:  # pylint: disable=broad-exception-caught
        text = ""
    if isinstance(exc, GluetunError) and text:
        return text
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


def poll_problem(result):
    """Why a control server's read cannot be used (its error, or an answer that is not Gluetun's), or None."""
    if not isinstance(result, dict):
        return "unexpected read: %s" % type(result).__name__
    if result.get("error"):
        return str(result["error"])
    ports = result.get("ports")
    if ports is not None and (not isinstance(ports, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p <= 65535 for p in ports)):
        return "the control server answered forwarded ports that are not port numbers"
    status = result.get("vpn_status")
    if status is not None and (not isinstance(status, str) or len(status) > 64):
        return "the control server answered a VPN status that is not one"
    return None


def _short_id(value):
    if not value:
        return value
    value = value.split(":", 1)[1] if value.startswith("sha256:") else value
    return value[:12]


def vpn_summary(inspect):
    """What the source needs of a Gluetun container's inspect (None: no such container)."""
    if inspect is None:
        return None
    state = inspect.get("State") or {}
    return {
        "id": inspect.get("Id"),
        "status": state.get("Status"),
        "health": (state.get("Health") or {}).get("Status") or "none",
        "started_at": state.get("StartedAt"),
        "forwarding": _core.forwarding_enabled(inspect),
    }


def normalize_stack(item, index=0):
    """One stack to watch, validated: ``{host, pool, docker_host, vpns: [{name, api_port, api_url}], creds...}``."""
    if not isinstance(item, dict):
        raise ValueError("stacks[%d] must be a dict" % index)
    where = "stacks[%d]" % index
    pool = item.get("pool")
    if not isinstance(pool, str) or not pool:
        raise ValueError("%s has no pool (the pool name, acestream_pool_name)" % where)
    gluetun = item.get("gluetun") or []
    api_port = int(item.get("api_port") or 8001)
    instances = []
    for entry in gluetun:
        if isinstance(entry, str):
            entry = {"name": entry}
        instances.append({k: entry.get(k) for k in ("name", "api_port", "api_url") if entry.get(k) is not None})
    try:
        vpns = _probe.normalize_instances(instances, api_port=api_port)
    except GluetunError as exc:
        raise ValueError("%s: %s" % (where, exc))
    host = item.get("host") or "localhost"
    docker_host = item.get("docker_host") or None
    ssh = normalize_ssh(item.get("ssh"), where)
    if ssh and docker_host:
        raise ValueError("%s: give docker_host or ssh, not both (with ssh, the host's Docker socket is reached "
                         "through the SSH connection: ssh.docker_socket)" % where)
    if ssh:
        docker_host = "ssh://%s%s%s" % (ssh["user"] + "@" if ssh.get("user") else "", ssh["destination"],
                                        ":%s" % ssh["port"] if ssh.get("port") else "")
    return {
        "key": "%s/%s" % (host, pool),
        "host": host,
        "pool": pool,
        "docker_host": docker_host,
        "vpns": [{"name": v["name"], "api_port": v["api_port"], "api_url": v.get("api_url")} for v in vpns],
        "api_key": item.get("api_key") or None,
        "api_key_file": item.get("api_key_file") or None,
        "username": item.get("username") or None,
        "password": item.get("password") or None,
        "replicas": item.get("replicas"),
        "ssh": ssh,
    }


def normalize_ssh(value, where):
    """The SSH connection of a remote stack: ``{destination, user, port, private_key_file, args, docker_socket}``."""
    if not value:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("destination"), str) or not value["destination"]:
        raise ValueError("%s.ssh must be a dict with a destination (the host's address)" % where)
    args = value.get("args") or []
    if isinstance(args, str):
        args = shlex.split(args)
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError("%s.ssh.args must be a list of strings (or one string of ssh options)" % where)
    port = value.get("port")
    if port is not None and not str(port).isdigit():
        raise ValueError("%s.ssh.port must be a port number" % where)
    return {"destination": value["destination"], "user": value.get("user") or None,
            "port": int(port) if port is not None else None,
            "private_key_file": value.get("private_key_file") or None, "args": args,
            "docker_socket": value.get("docker_socket") or "/var/run/docker.sock"}


def base_event(stack, kind, **fields):
    """An event of ``kind`` for ``stack``: the host it happened on (``meta.hosts``), no secret."""
    event = {"type": kind, "host": stack["host"], "pool": stack["pool"],
             "docker_host": safe_url(stack.get("docker_host")) or "local", "time": time.time()}
    event.update(fields)
    event["meta"] = {"hosts": stack["host"]}
    return event


# ----------------------------------------------------------------------------- the decision (no I/O)
class StackMemory(object):
    """What one stack's evaluations remember: events already sent, Gluetun and engines last seen."""

    def __init__(self):
        self.sent = set()
        self.vpns = {}      # name -> vpn_summary (+ "vpn_status")
        self.engines = {}   # engine name -> {"id", "vpn", "port"}
        self.first = True


def _once(memory, key, events, event):
    if key in memory.sent:
        return
    memory.sent.add(key)
    events.append(event)


def evaluate(stack, observation, memory):
    """The events one observation of ``stack`` calls for, given what ``memory`` holds; updates ``memory``.

    ``observation``: ``{"engines": [observed_engine(...)], "vpns": {name: vpn_summary or None},
    "control": {name: {"ports": [..] or None, "vpn_status": str or None, "error": str or None}}}``.
    """
    events = []
    engines = observation.get("engines") or []
    control = observation.get("control") or {}
    first = memory.first
    stale_vpns = set()
    for vpn in stack["vpns"]:
        name = vpn["name"]
        seen = observation["vpns"].get(name)
        before = memory.vpns.get(name)
        if seen is None:
            _once(memory, ("vpn_missing", name, (before or {}).get("id")), events,
                  base_event(stack, "vpn_missing", vpn=name))
            stale_vpns.add(name)
            memory.vpns[name] = None
            continue
        own = [e for e in engines if e["vpn"] == name]
        status = (control.get(name) or {}).get("vpn_status")
        if status is None and before:
            status = before.get("vpn_status")
        current = dict(seen, vpn_status=status)
        if seen["status"] != "running":
            stale_vpns.add(name)  # between a stop and a start: the start is the change to act on
        else:
            moved = [e["name"] for e in own if e["network_mode"] and e["network_mode"] != "container:" + seen["id"]]
            restarted = [e["name"] for e in own if e["name"] not in moved and e["vpn_started_at"]
                         and e["vpn_started_at"] != seen["started_at"]]
            if moved:
                stale_vpns.add(name)
                _once(memory, ("vpn_recreated", name, seen["id"]), events, base_event(
                    stack, "vpn_recreated", vpn=name, container_id=_short_id(seen["id"]),
                    previous_id=_short_id((before or {}).get("id")), engines=sorted(moved)))
            elif restarted:
                stale_vpns.add(name)
                _once(memory, ("vpn_restarted", name, seen["id"], seen["started_at"]), events, base_event(
                    stack, "vpn_restarted", vpn=name, started_at=seen["started_at"],
                    previous_started_at=(before or {}).get("started_at"), engines=sorted(restarted)))
        if before and not first:
            old = (before.get("health"), before.get("vpn_status"))
            new = (current["health"], current["vpn_status"])
            # A VPN status not read yet (or not readable now) is no change.
            if old[0] != new[0] or (old[1] is not None and new[1] is not None and old[1] != new[1]):
                events.append(base_event(
                    stack, "vpn_health_changed", vpn=name, old_health=old[0], new_health=new[0],
                    old_vpn_status=old[1], new_vpn_status=new[1],
                    was_healthy=_core.vpn_health(before.get("status"), old[0], old[1])[0],
                    healthy=_core.vpn_health(seen["status"], new[0], new[1])[0]))
        memory.vpns[name] = current
        ports = (control.get(name) or {}).get("ports")
        if name in stale_vpns or not own or not ports or not seen.get("forwarding", True):
            continue
        # engine_pool's own assignment of the ports to the engines, against what the engines' labels hold.
        holding = dict((e["port"], e["p2p_port"]) for e in own if e["forwarded"] and e["p2p_port"] and e["port"])
        wanted = _core.forwarded_slots([e["port"] for e in own if e["port"]],
                                       _core.usable_forwarded_ports(name, ports, vpn.get("api_port")), holding)
        slots = sorted(set(holding) | set(wanted))
        changed = [slot for slot in slots if holding.get(slot) != wanted.get(slot)]
        if not changed:
            continue
        by_slot = dict((e["port"], e) for e in own)
        lead = changed[0]
        engine = by_slot.get(lead)
        _once(memory, ("forwarded_port_changed", name, tuple(ports),
                       tuple(by_slot[s]["id"] for s in changed if s in by_slot)), events, base_event(
            stack, "forwarded_port_changed", vpn=name, old_port=holding.get(lead), new_port=wanted.get(lead),
            engine=engine and engine["name"], old_ports=sorted(set(holding.values())), new_ports=list(ports),
            engines=sorted(by_slot[s]["name"] for s in changed if s in by_slot)))
    by_name = {e["name"]: e for e in engines}
    for engine in engines:
        if engine["vpn"] in stale_vpns:
            continue
        if engine["state"] in ENGINE_GONE_STATES:
            _once(memory, ("engine_died", engine["id"]), events, base_event(
                stack, "engine_died", engine=engine["name"], vpn=engine["vpn"], state=engine["state"],
                status=engine.get("status")))
    for name, known in sorted(memory.engines.items()):
        if name not in by_name and known["vpn"] not in stale_vpns:
            _once(memory, ("engine_missing", name, known["id"]), events, base_event(
                stack, "engine_missing", engine=name, vpn=known["vpn"], http_port=known["port"]))
    replicas = stack.get("replicas")
    if first and isinstance(replicas, int) and len(engines) < replicas and not stale_vpns:
        _once(memory, ("engine_missing", "count", len(engines)), events, base_event(
            stack, "engine_missing", engine=None, vpn=None, found=len(engines), replicas=replicas))
    memory.engines = {e["name"]: {"id": e["id"], "vpn": e["vpn"], "port": e["port"]} for e in engines}
    memory.first = False
    return events


# ------------------------------------------------------------------------------------------ Docker and HTTP
def docker_client(docker_host, timeout):
    """A low-level Docker client for one host (unix://, tcp://, ssh:// through the ssh binary)."""
    import docker  # pylint: disable=import-outside-toplevel

    base_url = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    kwargs = {"base_url": base_url, "version": "auto", "timeout": timeout}
    if base_url.startswith("ssh://"):
        kwargs["use_ssh_client"] = True
    return docker.APIClient(**kwargs)


class StackWatch(object):
    """One stack: its Docker observation, its control-server clients, its memory."""

    def __init__(self, stack, options):
        self.stack = stack
        self.options = options
        self.memory = StackMemory()
        self.client = None
        self.inspects = {}
        self.control = {}
        self.clients = {}
        self.control_down = {}
        self.failures = {}  # control server name -> reads failed in a row
        self.calls = {}     # "docker" or "control_server NAME" -> (future, start) of its last blocking call
        self.triggers = None  # asyncio.Queue of this stack's triggers (made in the event loop)
        self.dirty = None   # (first, last) monotonic times of the triggers not observed yet
        self.polling = self.streaming = False
        self.lock = asyncio.Lock()
        self.tunnel = SshTunnel(stack["ssh"], options["request_timeout"]) if stack.get("ssh") else None
        self.key = None
        self.key_error = None
        self.key_retry = 0.0

    def scrub(self, text):
        """``text`` (an error, for an event or the log) without this stack's secrets, at most MAX_ERROR characters:
        a control server may put anything in its answers, even the credentials it was sent."""
        if text is None:
            return None
        text = str(text)
        stack = self.stack
        secrets = [stack.get("api_key"), stack.get("password"), self.key]
        if stack.get("username"):
            secrets.append(base64.b64encode(("%s:%s" % (stack["username"], stack.get("password"))).encode(
                "utf-8")).decode("ascii"))
        for secret in secrets:
            if secret:
                text = text.replace(secret, "********")
        return text if len(text) <= MAX_ERROR else text[:MAX_ERROR] + "..."

    # Docker -------------------------------------------------------------------------------------------
    def docker_url(self):
        """Where this stack's Docker Engine answers from here (through the SSH tunnel for a remote host)."""
        return self.tunnel.docker_host() if self.tunnel else self.stack["docker_host"]

    def docker(self):
        if self.client is None or (self.tunnel and not self.tunnel.alive()):
            self.client = docker_client(self.docker_url(), self.options["request_timeout"])
        return self.client

    def observe_docker(self):
        """One list call and one inspect per Gluetun container (blocking: run in a thread)."""
        import docker  # pylint: disable=import-outside-toplevel

        client = self.docker()
        listed = client.containers(all=True, filters={"label": _core.pool_label_filters(self.stack["pool"])})
        engines = [_core.observed_engine(c) for c in listed]
        vpns = {}
        for vpn in self.stack["vpns"]:
            try:
                inspect = client.inspect_container(vpn["name"])
            except docker.errors.NotFound:
                inspect = None
            self.inspects[vpn["name"]] = inspect
            vpns[vpn["name"]] = vpn_summary(inspect)
        return {"engines": engines, "vpns": vpns}

    # control servers ----------------------------------------------------------------------------------
    def credentials(self):
        stack = self.stack
        if stack.get("username"):
            return {"username": stack["username"], "password": stack.get("password")}
        key = stack.get("api_key")
        if not key and stack.get("api_key_file"):
            if self.tunnel:  # the key kept on the remote host: read once, again after a 401 (or 30 s after a failure)
                if not self.key and time.monotonic() >= self.key_retry:
                    self.key, self.key_error = self.tunnel.read_file(stack["api_key_file"])
                    if not self.key:
                        self.key_retry = time.monotonic() + 30
                key = self.key
            else:
                key = read_key_file(stack["api_key_file"])
        return {"api_key": key} if key else {}

    def gluetun_client(self, vpn):
        inspect = self.inspects.get(vpn["name"])
        url = vpn.get("api_url")
        if not url and inspect and self.tunnel:
            # The address as the remote host reaches it (its loopback by default), forwarded to a local port.
            there = urlsplit(_probe.resolve_api_url(inspect, vpn["api_port"]) or "")
            if there.hostname and there.port:
                url = "http://127.0.0.1:%d" % self.tunnel.forward(there.hostname, there.port)
        elif not url and inspect:
            host_address = _probe.docker_host_address(self.stack["docker_host"]) if self.stack["docker_host"] \
                else None
            url = _probe.resolve_api_url(inspect, vpn["api_port"], host_address=host_address)
        if not url:
            return None
        creds = self.credentials()
        cached = self.clients.get(vpn["name"])
        if cached is not None and cached[0] == (url, tuple(sorted(creds.items()))):
            return cached[1]
        client = GluetunClient(url, timeout=self.options["request_timeout"], name=vpn["name"],
                               api_port=vpn["api_port"], **creds)
        self.clients[vpn["name"]] = ((url, tuple(sorted(creds.items()))), client)
        return client

    def poll_one(self, vpn):
        """``{"ports", "vpn_status", "error"}`` of one control server (blocking)."""
        try:
            client = self.gluetun_client(vpn)
        except (OSError, subprocess.SubprocessError) as exc:
            return {"ports": None, "vpn_status": None, "error": str(exc)}
        if client is None:
            return {"ports": None, "vpn_status": None, "error": "no address for the control server yet"}
        inspect = self.inspects.get(vpn["name"]) or {}
        try:
            status = client.vpn_status()
            ports = client.forwarded_ports() if _core.forwarding_enabled(inspect) else None
        except GluetunError as exc:
            error = str(exc)
            if exc.kind == "unauthorized":
                self.clients.pop(vpn["name"], None)  # the key may have been rotated: read it again next time
                if self.key:  # a key that was read and refused: read it again at the next poll
                    self.key, self.key_retry = None, 0.0
                elif self.key_error:  # none could be read: say why (read again 30 s after the failure)
                    error += " (the kept API key: %s)" % self.key_error
            return {"ports": None, "vpn_status": None, "error": error}
        return {"ports": list(ports) if ports is not None else None, "vpn_status": status, "error": None}


class StackEvents(object):
    """The source. Each stack lives in a task of its own (its first look, its triggers, its observations) and each
    of its control servers is polled by a task of its own, on its own schedule. The Docker events streams run in
    threads (two per stack). Every blocking call, a control server's read or a stack's Docker observation, runs in a
    daemon thread of its own (``call``): at most ``max_calls`` at once, one per control server (and one Docker
    observation per stack) at a time, each awaited for a bounded time. A host that hangs, fails or answers what the
    client cannot take costs its own stack a ``watch_lost``; no other stack waits for it, and the source goes on."""

    def __init__(self, queue, stacks, options):
        self.queue = queue
        self.options = options
        self.watches = [StackWatch(stack, options) for stack in stacks]
        self.loop = None
        self.slots = None
        # One thread per control server and one per stack's Docker Engine is the most the rule "one call at a
        # time for each" lets run: the bound only matters for large inventories.
        self.max_calls = max(1, min(MAX_CALLS, sum(len(w.stack["vpns"]) + 1 for w in self.watches)))
        self.stop = threading.Event()
        self.streams = []
        self.threads = []
        self.tasks = []
        # A read: the VPN status and the forwarded ports, each one request bounded by request_timeout, and room for
        # the SSH forward of a remote host's control server.
        self.poll_timeout = 3 * options["request_timeout"]

    def observe_timeout(self, watch):
        """A stack's Docker observation: one list call and one inspect per Gluetun container (and an SSH connection)."""
        return (2 + len(watch.stack["vpns"])) * self.options["request_timeout"]

    # emitting ----------------------------------------------------------------------------------------
    async def emit(self, event):
        await self.queue.put(event)
        await asyncio.sleep(0)

    def trigger(self, watch, reason):
        """From any thread: the stack changed (or may have), observe it once things settle."""
        self.loop.call_soon_threadsafe(watch.triggers.put_nowait, reason)

    # blocking calls (threads) ------------------------------------------------------------------------
    async def call(self, watch, what, func, *args, timeout):
        """``(value, None)`` of ``func(*args)``, run in a daemon thread, or ``(None, why)`` when it raised (whatever
        the exception), did not return within ``timeout`` seconds of its start, or when the previous call for
        ``what`` of this stack has not returned yet: then no thread is started (a call that hangs holds one thread,
        not one per attempt). At most ``max_calls`` threads run at once; a thread frees its slot when it returns,
        not when the wait for it ends. Daemon threads: a call that hangs never holds the source's exit."""
        running = watch.calls.get(what)
        if running is not None and not running[0].done():
            return None, "no answer for %.0fs (the previous request has not returned: none sent meanwhile)" % (
                time.monotonic() - running[1])
        # Wait for a free slot, as long as for the call itself: with max_calls calls to hosts that hang, the others
        # are reported, not held.
        acquire = asyncio.ensure_future(self.slots.acquire())
        try:
            await asyncio.wait({acquire}, timeout=timeout)
        except BaseException:
            if not acquire.cancel() and not acquire.cancelled():  # acquired meanwhile: give it back
                self.slots.release()
            raise
        if not acquire.done():
            acquire.cancel()
            return None, "not asked: all %d threads held for %gs by calls to hosts that have not answered" % (
                self.max_calls, timeout)
        loop = self.loop
        future = loop.create_future()

        def finish(outcome):
            self.slots.release()
            if not future.done():
                future.set_result(outcome)

        def work():
            try:
                outcome = (func(*args), None)
            except BaseException as exc:  # pylint: disable=broad-exception-caught
                outcome = (None, exc)  # e.g. RecursionError from a deeply nested body: the caller's error
            try:
                loop.call_soon_threadsafe(finish, outcome)
            except RuntimeError:  # the event loop is closed: the source has ended meanwhile
                pass

        try:
            threading.Thread(target=work, daemon=True,
                             name="stack_events-%s-%s" % (watch.stack["key"], what)).start()
        except RuntimeError as exc:  # no thread can be started now: as if the host did not answer
            self.slots.release()
            return None, "cannot start a thread: %s" % exc
        watch.calls[what] = (future, time.monotonic())
        # asyncio.wait, not wait_for: it leaves the call running on timeout, and never swallows a cancellation.
        done, _pending = await asyncio.wait({future}, timeout=timeout)
        if not done:
            return None, "no answer within %gs" % timeout
        value, error = future.result()
        if error is not None:
            return None, describe(error)
        return value, None

    def contained_sync(self, watch, func, *args):
        """``func(*args)`` of one stack's handling; what it raises is logged (see ``contained``)."""
        try:
            return func(*args)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            LOG.error("stack %s: %s (the source goes on)", watch.stack["key"], watch.scrub(describe(exc)))
            return None

    async def contained(self, watch, step, fallback=None):
        """Await ``step`` of one stack's handling. What it raises (a defect: the hosts' answers are contained in
        ``call`` already) is logged and ends that step only: the stack, the other stacks and the source go on."""
        try:
            return await step
        except Exception as exc:  # pylint: disable=broad-exception-caught
            LOG.error("stack %s: %s (the source goes on)", watch.stack["key"], watch.scrub(describe(exc)))
            LOG.debug("stack %s", watch.stack["key"], exc_info=True)
            return fallback

    # Docker streams (threads) ------------------------------------------------------------------------
    def stream_filters(self, watch):
        base = {"type": "container", "event": list(DOCKER_EVENTS)}
        pool = dict(base, label=_core.pool_label_filters(watch.stack["pool"]))
        names = dict(base, container=[v["name"] for v in watch.stack["vpns"]])
        return [pool, names]

    def run_stream(self, watch, filters):
        delay = self.options["reconnect_min"]
        lost = False
        names = set(v["name"] for v in watch.stack["vpns"])
        while not self.stop.is_set():
            stream = None
            try:
                client = docker_client(watch.docker_url(), None)
                client.ping()
                stream = client.events(decode=True, filters=filters)
                self.streams.append(stream)
                if lost:
                    self.trigger(watch, ("docker_back", None))
                    lost = False
                delay = self.options["reconnect_min"]
                for item in stream:
                    if self.stop.is_set():
                        break
                    attributes = (item.get("Actor") or {}).get("Attributes") or {}
                    if "container" in filters and attributes.get("name") not in names:
                        continue  # the name filter also matches names that start with a Gluetun name
                    self.trigger(watch, ("docker", item.get("Action") or item.get("status")))
                if self.stop.is_set():
                    break
                raise OSError("the Docker events stream ended")
            except Exception as exc:  # pylint: disable=broad-exception-caught
                if self.stop.is_set():
                    break
                if not lost:
                    lost = True
                    try:
                        self.trigger(watch, ("docker_lost", str(exc)))
                    except RuntimeError:  # the event loop is closed
                        break
                self.stop.wait(delay)
                delay = min(delay * 2, self.options["reconnect_max"])
            finally:
                if stream is not None:
                    try:
                        self.streams.remove(stream)
                        stream.close()
                    except Exception:  # pylint: disable=broad-exception-caught
                        pass

    def start_streams(self, watch):
        watch.streaming = True
        for filters in self.stream_filters(watch):
            thread = threading.Thread(target=self.run_stream, args=(watch, filters), daemon=True,
                                      name="stack_events-%s" % watch.stack["key"])
            thread.start()
            self.threads.append(thread)

    def close_streams(self):
        self.stop.set()
        for stream in list(self.streams):
            try:
                stream.close()
            except Exception:  # pylint: disable=broad-exception-caught
                pass
        for watch in self.watches:
            if watch.tunnel:
                watch.tunnel.close()

    # evaluation ---------------------------------------------------------------------------------------
    async def observe(self, watch):
        """Observe one stack (within its bound) and emit what it needs; False when Docker did not answer."""
        async with watch.lock:
            observation, error = await self.call(watch, "docker", watch.observe_docker,
                                                 timeout=self.observe_timeout(watch))
            if error is not None:
                watch.client = None
                await self.watch_state(watch, "docker", None, False, error)
                return False
            await self.watch_state(watch, "docker", None, True)
            observation["control"] = dict(watch.control)
            try:
                events = evaluate(watch.stack, observation, watch.memory)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # A defect, or something observed that the decision cannot take: this stack's watch is lost (once),
                # not the source. Observed again at the next trigger.
                LOG.debug("stack %s: evaluation", watch.stack["key"], exc_info=True)
                await self.watch_state(watch, "evaluation", None, False, describe(exc))
                return True
            await self.watch_state(watch, "evaluation", None, True)
            for event in events:
                await self.emit(event)
            return True

    async def watch_state(self, watch, what, vpn, ok, error=None):
        """watch_lost once when a Docker Engine or control server stops answering (or a stack's observation cannot
        be evaluated), watch_reconnected when it is back. The error is the stack's own, without its secrets."""
        key = (what, vpn)
        was_down = watch.control_down.get(key)
        if ok and was_down:
            watch.control_down[key] = False
            await self.emit(base_event(watch.stack, "watch_reconnected", what=what, vpn=vpn))
        elif not ok and not was_down:
            watch.control_down[key] = True
            await self.emit(base_event(watch.stack, "watch_lost", what=what, vpn=vpn, error=watch.scrub(error)))

    async def poll(self, watch, vpn):
        """Read one control server (within poll_timeout); trigger an observation of its stack when what it says
        moved. Returns the seconds until its next read: poll_interval, longer (doubling) after failures."""
        name = vpn["name"]
        result, error = await self.call(watch, "control_server " + name, watch.poll_one, vpn,
                                        timeout=self.poll_timeout)
        if error is None:
            error = poll_problem(result)
        failures = watch.failures.get(name, 0)
        if error:
            failures += 1
            watch.failures[name] = failures
            if watch.inspects.get(name) is not None:
                await self.watch_state(watch, "control_server", name, False, error)
            delay = self.options["reconnect_min"] * (2 ** min(failures - 1, 30))
            return max(min(delay, self.options["reconnect_max"]), self.options["poll_interval"])
        watch.failures[name] = 0
        await self.watch_state(watch, "control_server", name, True)
        before = watch.control.get(name) or {}
        watch.control[name] = result
        if failures or before.get("ports") != result["ports"] or before.get("vpn_status") != result["vpn_status"]:
            watch.triggers.put_nowait(("control", None))
        return self.options["poll_interval"]

    async def poll_forever(self, watch, vpn, first):
        """One control server's reads, on its own schedule, until the source ends (``first``: its first read). The
        delay runs from the start of a read, as the source has always counted it: every poll_interval seconds."""
        started = time.monotonic()
        delay = await first
        while True:
            await asyncio.sleep(max(0.0, started + delay - time.monotonic()))
            started = time.monotonic()
            delay = await self.contained(watch, self.poll(watch, vpn), self.options["reconnect_max"])

    def start_polls(self, watch):
        """A task per control server of the stack, reading it on its own schedule; the tasks of the first reads."""
        first = [asyncio.create_task(self.contained(watch, self.poll(watch, vpn), self.options["poll_interval"]))
                 for vpn in watch.stack["vpns"]]
        self.tasks.extend(first)
        self.tasks.extend(asyncio.create_task(self.poll_forever(watch, vpn, read))
                          for vpn, read in zip(watch.stack["vpns"], first))
        watch.polling = True
        return first

    async def first_look(self, watch):
        """The stack's first observation (its control servers read first, unless one hangs), then its streams."""
        # The inspects give the control servers' addresses: read them before the first reads.
        _value, error = await self.call(watch, "docker", watch.observe_docker, timeout=self.observe_timeout(watch))
        if error is not None:
            watch.client = None  # the first observation below reports it
        first = self.start_polls(watch)
        if first:  # what the first reads say goes into the first observation; it waits for no hung one
            await asyncio.wait(first, timeout=self.options["request_timeout"])
        while not watch.triggers.empty():  # what the first reads said is in the first observation
            watch.triggers.get_nowait()
        if not await self.observe(watch):
            self.mark(watch, time.monotonic() + self.options["reconnect_min"])
        self.start_streams(watch)
        return True

    async def watch_stack(self, watch):
        """One stack until the source ends: its first look, then its triggers and observations (its control
        servers are read by tasks of their own). Nothing it meets ends it, or holds another stack."""
        if not await self.contained(watch, self.first_look(watch), False):
            self.mark(watch)  # a defect in the first look: observe again, poll, watch the events all the same
            if not watch.polling:
                self.contained_sync(watch, self.start_polls, watch)
            if not watch.streaming:
                self.contained_sync(watch, self.start_streams, watch)
        while True:
            if not await self.contained(watch, self.step(watch), False):
                await asyncio.sleep(self.options["reconnect_min"])

    async def step(self, watch):
        """Wait for the stack's next trigger, or for its triggers to settle; observe it when they have."""
        settle, max_settle = self.options["settle"], self.options["max_settle"]
        timeout = None
        if watch.dirty:
            first, last = watch.dirty
            timeout = max(0.0, min(last + settle, first + max_settle) - time.monotonic())
        getter = asyncio.ensure_future(watch.triggers.get())
        try:
            await asyncio.wait({getter}, timeout=timeout)
        finally:
            if not getter.done():
                getter.cancel()  # the trigger, if one comes meanwhile, stays in the queue
        if getter.done() and not getter.cancelled():
            await self.on_trigger(watch, getter.result())
        if watch.dirty:
            first, last = watch.dirty
            now = time.monotonic()
            if now - last >= settle or now - first >= max_settle:
                watch.dirty = None
                if not await self.observe(watch):
                    self.mark(watch, time.monotonic() + self.options["reconnect_min"])
        return True

    async def run(self):
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(self.max_calls)
        for watch in self.watches:
            watch.triggers = asyncio.Queue()
        stacks = [asyncio.create_task(self.watch_stack(watch)) for watch in self.watches]
        self.tasks.extend(stacks)
        try:
            # The stacks' tasks never end: this waits until the source is cancelled, then cancels them.
            await asyncio.wait(stacks)
        finally:
            for task in self.tasks:
                task.cancel()
            self.close_streams()

    def mark(self, watch, now=None):
        now = time.monotonic() if now is None else now
        first, _last = watch.dirty or (now, now)
        watch.dirty = (first, now)

    async def on_trigger(self, watch, reason):
        kind, detail = reason
        if kind == "docker_lost":
            await self.watch_state(watch, "docker", None, False, detail)
            return
        if kind == "docker_back":
            await self.watch_state(watch, "docker", None, True)
        if kind == "control":
            # A control-server change needs no Docker event to settle: observe at once.
            if watch.dirty is None:
                watch.dirty = (time.monotonic() - self.options["max_settle"],) * 2
            return
        self.mark(watch)


# ------------------------------------------------------------------------------------ reading the inventory
def rulebook_inventory(argv=None):
    """The ``-i`` / ``--inventory`` of the running ansible-rulebook, or None."""
    argv = list(sys.argv if argv is None else argv)
    for index, arg in enumerate(argv):
        if arg in ("-i", "--inventory") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--inventory="):
            return arg.split("=", 1)[1]
    return None


def read_inventory(sources, limit=None):
    """stacks_from_inventory in a child process (Ansible's plugin loader stays out of ansible-rulebook's
    process); the stacks travel on a pipe, never in arguments or the environment."""
    command = [sys.executable, os.path.abspath(__file__), "--stacks-from-inventory", ",".join(sources)]
    if limit:
        command += ["--limit", limit]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise ValueError("cannot read the inventory %s: %s" % (",".join(sources), proc.stderr.strip()[-2000:]))
    return json.loads(proc.stdout)


def options_from(args):
    def number(name, default):
        value = args.get(name, default)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError("%s must be a number, not %r" % (name, value))
        if value <= 0:
            raise ValueError("%s must be above 0" % name)
        return value

    return {"poll_interval": number("poll_interval", 2), "settle": number("settle", 1.5),
            "max_settle": number("max_settle", 8), "reconnect_min": number("reconnect_min", 1),
            "reconnect_max": number("reconnect_max", 30), "request_timeout": number("request_timeout", 5)}


def stacks_from_args(args):
    stacks = args.get("stacks")
    if not stacks:
        sources = args.get("inventory") or os.environ.get("ANSIBLE_INVENTORY") or rulebook_inventory()
        if not sources:
            raise ValueError("nothing to watch: give stacks, or an inventory (the source's inventory argument, "
                             "ANSIBLE_INVENTORY, or ansible-rulebook -i)")
        if isinstance(sources, str):
            sources = [s for s in sources.split(",") if s]
        stacks = read_inventory(sources, args.get("limit"))
    result = [normalize_stack(item, index) for index, item in enumerate(stacks)]
    if not result:
        raise ValueError("the inventory has no host to watch")
    return result


async def main(queue, args):
    """ansible-rulebook's entry point: watch until cancelled."""
    options = options_from(args or {})
    stacks = await asyncio.to_thread(stacks_from_args, args or {})
    source = StackEvents(queue, stacks, options)
    try:
        await source.run()
    except asyncio.CancelledError:
        source.close_streams()
        raise


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--stacks-from-inventory":
        LIMIT = sys.argv[sys.argv.index("--limit") + 1] if "--limit" in sys.argv else None
        # pylint: disable-next=import-outside-toplevel
        from ansible_collections.acestream.orchestrator.plugins.plugin_utils._eda_inventory import (
            stacks_from_inventory,
        )

        try:
            json.dump(stacks_from_inventory([s for s in sys.argv[2].split(",") if s], LIMIT), sys.stdout)
        except ValueError as error:  # the stack model's problems: said as they are (they never show a secret)
            print(error, file=sys.stderr)
            sys.exit(1)
        sys.exit(0)

    class MockQueue(asyncio.Queue):
        """Prints each event (try the source by hand: python stack_events.py INVENTORY)."""

        async def put(self, item):
            print(json.dumps(item, sort_keys=True), flush=True)

    try:
        asyncio.run(main(MockQueue(), {"inventory": sys.argv[1] if len(sys.argv) > 1 else None}))
    except KeyboardInterrupt:
        pass
