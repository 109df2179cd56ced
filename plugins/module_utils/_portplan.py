# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port plan: parse and validate port ranges, split the host range between the VPNs, share replicas.

Private to this collection. Pure: no I/O, no Ansible import, so the module, the filter plugin, the roles'
templates and the unit tests all compute the very same plan.

Rules (see docs/port-planning.md):
- A range is ``"START-END"`` (or one port ``"P"``, an int, a two-item list or a ``{start, end}`` mapping),
  inside 1-65535, low to high.
- ``port_range`` (the seed's ``PORT_RANGE_HOST``) is split evenly between the VPNs without an explicit range,
  in order; the remainder goes to the first VPNs (1000 ports, 2 VPNs: 500 + 500; 10 ports, 3 VPNs: 4 + 3 + 3).
- ``vpn_port_ranges`` gives a VPN its own range. When every VPN has one, ``port_range`` (if given) is only
  the envelope that must contain them all.
- No two engine ranges overlap, and the HTTPS range (not published, but in the same network namespace)
  overlaps none of them.
- A VPN's capacity is the number of engines it can hold: its range size, bounded by the HTTPS range size
  (an engine's HTTPS port is ``https_start + (port - range_start)``, unique inside its VPN's namespace).
- ``replicas`` is shared evenly between the VPNs in order (remainder to the first), as the seed's round
  robin does, and each share must fit its VPN's capacity.
- The control server (planned only when ``api_port`` or ``api_host_ports`` is given): ``api_port`` (the seed's
  ``GLUETUN_API_PORT``, default 8001) is the internal port of every VPN's ``HTTP_CONTROL_SERVER_ADDRESS``; it
  shares each VPN's namespace with the engines, so it lies outside every engine range and the HTTPS range.
  ``api_host_ports`` are the external ports, one per VPN (default ``api_port + index``: 8001, 8002); they
  share the host with the published engine ranges, so they lie outside them and differ from each other.
"""

from __future__ import annotations

import math
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError

MIN_PORT = 1
MAX_PORT = 65535
DEFAULT_HTTPS_PORT_RANGE = "45000-49999"
# The port guide's control-server port (GLUETUN_API_PORT), used when planning the control servers.
DEFAULT_API_PORT = 8001
# Host ports an engine takes from its VPN's range: 1 for the collection's engines, 2 for the orchestrator app's
# (HTTP and API).
PORTS_PER_ENGINE_CHOICES = (1, 2)
# Gluetun's own control-server port when HTTP_CONTROL_SERVER_ADDRESS is unset (the modules' api_port default).
GLUETUN_DEFAULT_API_PORT = 8000

_RANGE_RE = re.compile(r"\s*(\S+?)\s*(?:-\s*(\S+)\s*)?\Z")
_DIGITS_RE = re.compile(r"[0-9]+\Z")
# A Docker container name (a leading '/' is Docker's own notation). \Z, not $: "$" matches before a final newline.
CONTAINER_NAME_RE = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")


# What a PortPlanError is about (its ``kind``), so that callers pick the fix by kind and field, not by wording:
#   syntax    a value that is not a port, a range, a number or a mapping (or a reversed range)
#   names     the VPN container names: not a list, not valid Docker names, one listed twice, none
#   unknown   a range or control port given for a VPN that is not in the list
#   required  no range for some VPN: port_range missing
#   outside   an explicit range outside port_range
#   overlap   two engine ranges overlap, or the HTTPS range overlaps one
#   capacity  too few ports: a range too small to split, or the replicas beyond what the ranges hold
#   count     a list of api_host_ports of the wrong length
#   namespace api_port inside an engine range or the HTTPS range (they share each VPN's network namespace)
#   allocated an external control port inside a published engine range ("port is already allocated")
#   duplicate an external control port given to two VPNs ("port is already allocated")
ERROR_KINDS = ("syntax", "names", "unknown", "required", "outside", "overlap", "capacity", "count", "namespace",
               "allocated", "duplicate")


class PortPlanError(AcestreamError, ValueError):
    """Bad input for the port plan. ``field`` names the option to fix; the message says how; ``kind`` (one of
    ERROR_KINDS, or None when raised outside this module) says what is wrong."""

    def __init__(self, field, message, kind=None):
        self.field = field
        self.message = message
        self.kind = kind
        super().__init__("%s: %s" % (field, message))

    def fail_fields(self):
        return {"field": self.field}


class PortRange:
    """An inclusive range of TCP ports."""

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        self.start = start
        self.end = end

    @property
    def size(self):
        return self.end - self.start + 1

    def __contains__(self, port):
        return self.start <= port <= self.end

    def __iter__(self):
        return iter(range(self.start, self.end + 1))

    def __eq__(self, other):
        return isinstance(other, PortRange) and (self.start, self.end) == (other.start, other.end)

    def __hash__(self):
        return hash((self.start, self.end))

    def __repr__(self):
        return "PortRange(%d, %d)" % (self.start, self.end)

    def __str__(self):
        return "%d-%d" % (self.start, self.end)

    def overlaps(self, other):
        return self.start <= other.end and other.start <= self.end

    def contains_range(self, other):
        return self.start <= other.start and other.end <= self.end

    def to_dict(self):
        return {"start": self.start, "end": self.end, "size": self.size}


def ascii_digits(text):
    """True for a string of the digits 0-9 and nothing else (no sign, space or underscore). The one test of "a
    whole number written as text" in this collection: ``str.isdigit()`` also takes '²' (int() refuses it) and
    '１' (int() converts it)."""
    return isinstance(text, str) and _DIGITS_RE.match(text) is not None


def _port(text, field, original):
    if isinstance(text, bool):
        raise PortPlanError(field, "%r is not a port range; write 'START-END' with whole numbers, e.g. '19000-19999'"
                            % (original,), kind="syntax")
    if isinstance(text, int):
        value = text
    else:
        text = str(text).strip()
        if not ascii_digits(text):
            raise PortPlanError(field, "%r is not a port range; write 'START-END' with whole numbers, e.g. '19000-19999'"
                                % (original,), kind="syntax")
        value = int(text)
    if not MIN_PORT <= value <= MAX_PORT:
        raise PortPlanError(field, "port %d in %r is outside %d-%d; choose ports between %d and %d"
                            % (value, original, MIN_PORT, MAX_PORT, MIN_PORT, MAX_PORT), kind="syntax")
    return value


def parse_range(value, field="port_range"):
    """A PortRange from ``"a-b"``, ``"p"``, ``p``, ``[a, b]`` or ``{"start": a, "end": b}``.

    Raises PortPlanError naming ``field`` for anything else, ports outside 1-65535 or a reversed range.
    """
    if isinstance(value, PortRange):
        return value
    if isinstance(value, dict):
        if set(value) - {"start", "end", "size"} or "start" not in value or "end" not in value:
            raise PortPlanError(field, "%r is not a port range; give {start: N, end: M} or 'N-M'" % (value,), kind="syntax")
        start, end = _port(value["start"], field, value), _port(value["end"], field, value)
    elif isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise PortPlanError(field, "%r is not a port range; give [START, END] or 'START-END'" % (value,), kind="syntax")
        start, end = _port(value[0], field, value), _port(value[1], field, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        start = end = _port(value, field, value)
    elif isinstance(value, str):
        match = _RANGE_RE.match(value)
        if not match:
            raise PortPlanError(field, "%r is not a port range; write 'START-END' with whole numbers, e.g. '19000-19999'"
                                % (value,), kind="syntax")
        start = _port(match.group(1), field, value)
        end = _port(match.group(2), field, value) if match.group(2) is not None else start
    else:
        raise PortPlanError(field, "%r is not a port range; write 'START-END' with whole numbers, e.g. '19000-19999'"
                            % (value,), kind="syntax")
    if start > end:
        raise PortPlanError(field, "%r is reversed (start %d > end %d); write it low-high: '%d-%d'"
                            % (value, start, end, end, start), kind="syntax")
    return PortRange(start, end)


def split_range(port_range, count, field="port_range"):
    """Split ``port_range`` into ``count`` consecutive sub-ranges, sizes differing by at most one, the larger first."""
    if count < 1:
        return []
    if port_range.size < count:
        raise PortPlanError(field, "%s holds %d port(s), too few to split between %d VPNs; widen it to at least %d ports"
                            % (port_range, port_range.size, count, count), kind="capacity")
    base, extra = divmod(port_range.size, count)
    parts = []
    start = port_range.start
    for index in range(count):
        size = base + (1 if index < extra else 0)
        parts.append(PortRange(start, start + size - 1))
        start += size
    return parts


def share_replicas(replicas, count):
    """``replicas`` shared evenly between ``count`` VPNs in order, remainder to the first ones (round robin)."""
    if count < 1:
        return []
    base, extra = divmod(replicas, count)
    return [base + (1 if index < extra else 0) for index in range(count)]


def validate_vpn_names(vpn_names, field="vpn_containers"):
    """The VPN container names as a list of non-empty, unique strings."""
    if not isinstance(vpn_names, (list, tuple)):
        raise PortPlanError(field, "give a list of Gluetun container names, e.g. ['gluetun1', 'gluetun2']", kind="names")
    names = []
    for index, item in enumerate(vpn_names):
        if not isinstance(item, str) or not item.strip():
            raise PortPlanError(field, "%r is not a container name; every item must be a non-empty string" % (item,), kind="names")
        if not CONTAINER_NAME_RE.match(item.strip(" ")):
            shown = repr(item) if len(item) <= 60 else repr(item[:57]) + "..."
            raise PortPlanError(field, "%s is not a valid Docker container name (item %d): use letters, digits, "
                                       "'_', '.' and '-', starting with a letter or digit, e.g. gluetun1 (the engines "
                                       "are named <pool>-<vpn>-<port>, a Docker name too)" % (shown, index + 1),
                                kind="names")
        name = item.strip(" ").lstrip("/")
        if name in names:
            raise PortPlanError(field, "'%s' is listed twice; list each Gluetun container once" % name, kind="names")
        names.append(name)
    if not names:
        raise PortPlanError(field, "at least one Gluetun container name is required", kind="names")
    return names


def replicas_count(value):
    """A number of engines as the roles may give it (an int, a whole float, digits): the int, or PortPlanError."""
    if isinstance(value, str) and ascii_digits(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PortPlanError("replicas", "%r is not a number of engines; use a whole number, 0 or more" % (value,), kind="syntax")
    number = int(value)
    if isinstance(value, float) and number != value:
        raise PortPlanError("replicas", "%r is not a whole number; use a whole number, 0 or more" % (value,), kind="syntax")
    if number < 0:
        raise PortPlanError("replicas", "%d is negative; use 0 or more engines" % number, kind="syntax")
    return number


class VpnPlan:
    """One VPN's slice of the plan."""

    __slots__ = ("name", "index", "range", "range_field", "capacity", "share", "api_port", "api_host_port")

    def __init__(self, name, index, port_range, range_field, capacity, share, api_port=None, api_host_port=None):
        self.name = name
        self.index = index
        self.range = port_range
        self.range_field = range_field
        self.capacity = capacity
        self.share = share
        self.api_port = api_port
        self.api_host_port = api_host_port

    def https_port(self, port, https_range):
        """The HTTPS port paired with HTTP ``port`` of this VPN (unique inside the VPN's namespace)."""
        return https_range.start + (port - self.range.start)

    def slot_ports(self):
        """The HTTP ports an engine of this VPN may take, lowest first (the range bounded by the capacity)."""
        return range(self.range.start, self.range.start + self.capacity)

    def to_dict(self):
        result = {
            "name": self.name,
            "index": self.index,
            "range": str(self.range),
            "start": self.range.start,
            "end": self.range.end,
            "size": self.range.size,
            "capacity": self.capacity,
            "share": self.share,
        }
        if self.api_port is not None:
            result.update({
                "control_server_address": ":%d" % self.api_port,
                "api_port": self.api_port,
                "api_host_port": self.api_host_port,
                "api_port_mapping": "%d:%d" % (self.api_host_port, self.api_port),
            })
        return result


class PortPlan:
    """The whole plan: the ranges given, and one VpnPlan per VPN in order."""

    def __init__(self, port_range, https_range, replicas, vpns, ports_per_engine=1):
        self.port_range = port_range
        self.https_range = https_range
        self.replicas = replicas
        self.vpns = vpns
        self.ports_per_engine = ports_per_engine

    @property
    def total_capacity(self):
        return sum(vpn.capacity for vpn in self.vpns)

    def vpn(self, name):
        for vpn in self.vpns:
            if vpn.name == name:
                return vpn
        raise KeyError(name)

    def to_dict(self):
        return {
            "port_range": self.port_range.to_dict() if self.port_range else None,
            "https_port_range": self.https_range.to_dict(),
            "replicas": self.replicas,
            "total_capacity": self.total_capacity,
            "ports_per_engine": self.ports_per_engine,
            "vpns": [vpn.to_dict() for vpn in self.vpns],
        }


def _ports_per_engine(value):
    if isinstance(value, str) and ascii_digits(value.strip()):  # a templated value (ansible-core 2.17 keeps "2")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in PORTS_PER_ENGINE_CHOICES:
        raise PortPlanError("ports_per_engine", "%r is not a number of host ports per engine; use 1 (the collection's "
                                                "engines) or 2 (the orchestrator app's: HTTP and API)" % (value,),
                            kind="syntax")
    return value


def build_plan(vpn_names, port_range=None, vpn_port_ranges=None, replicas=0, https_port_range=None, api_port=None,
               api_host_ports=None, ports_per_engine=1):
    """Validate the inputs and return the PortPlan. Raises PortPlanError naming the field to fix.

    The control server is planned (and checked) only when ``api_port`` or ``api_host_ports`` is given.
    ``ports_per_engine``: host ports each engine takes from its VPN's range (2 for the orchestrator app's engines:
    HTTP and API), which divides each VPN's capacity.
    """
    names = validate_vpn_names(vpn_names)
    replicas = replicas_count(replicas)
    per_engine = _ports_per_engine(ports_per_engine)
    https_range = parse_range(DEFAULT_HTTPS_PORT_RANGE if https_port_range in (None, "") else https_port_range,
                              "https_port_range")
    total = parse_range(port_range, "port_range") if port_range not in (None, "") else None

    explicit = {}
    if vpn_port_ranges:
        if not isinstance(vpn_port_ranges, dict):
            raise PortPlanError("vpn_port_ranges", "give a mapping of VPN container name to range, e.g. "
                                                   "{gluetun1: '19000-19499', gluetun2: '19500-19999'}", kind="syntax")
        for key, value in vpn_port_ranges.items():
            name = str(key).strip().lstrip("/")
            if name not in names:
                raise PortPlanError("vpn_port_ranges", "'%s' is not in vpn_containers %s; add it there or remove its range"
                                    % (key, names), kind="unknown")
            explicit[name] = parse_range(value, "vpn_port_ranges.%s" % name)

    others = [name for name in names if name not in explicit]
    ranges, fields = dict(explicit), {name: "vpn_port_ranges.%s" % name for name in explicit}
    if others:
        if total is None:
            raise PortPlanError("port_range", "required: no range for VPN(s) %s; set port_range (split evenly) or give "
                                              "each VPN a range in vpn_port_ranges" % ", ".join(others), kind="required")
        for name, part in zip(others, split_range(total, len(others))):
            ranges[name], fields[name] = part, "port_range"
    elif total is not None:
        for name in names:
            if not total.contains_range(ranges[name]):
                raise PortPlanError(fields[name], "%s lies outside port_range %s; move it inside or widen port_range"
                                    % (ranges[name], total), kind="outside")

    ordered = [(name, ranges[name], fields[name]) for name in names]
    for index, (name, rng, field) in enumerate(ordered):
        for other, other_rng, other_field in ordered[index + 1:]:
            if rng.overlaps(other_rng):
                raise PortPlanError(other_field if other_field != "port_range" else field,
                                    "the ranges of '%s' (%s) and '%s' (%s) overlap; give each VPN its own ports"
                                    % (name, rng, other, other_rng), kind="overlap")
        if https_range.overlaps(rng):
            raise PortPlanError("https_port_range", "%s overlaps the engine ports of '%s' (%s); HTTPS ports share the "
                                                    "VPN's namespace with them: choose a range apart, e.g. '45000-49999'"
                                % (https_range, name, rng), kind="overlap")

    shares = share_replicas(replicas, len(names))
    vpns = [VpnPlan(name, index, rng, field, min(rng.size // per_engine, https_range.size), shares[index])
            for index, (name, rng, field) in enumerate(ordered)]
    plan = PortPlan(total, https_range, replicas, vpns, per_engine)
    two = " engines at 2 host ports each - HTTP and API, as the orchestrator app runs them" if per_engine == 2 else ""
    if replicas > plan.total_capacity:
        raise PortPlanError("replicas", "%d engines exceed the capacity of the port ranges (%d%s: %s); widen the ranges "
                                        "or lower replicas"
                            % (replicas, plan.total_capacity, two, ", ".join("%s %s" % (v.name, v.range) for v in vpns)),
                            kind="capacity")
    for vpn in vpns:
        if vpn.share > vpn.capacity:
            raise PortPlanError("replicas", "VPN '%s' must hold %d of the %d engines but its range %s (%s) has room for %d%s; "
                                            "widen %s or lower replicas"
                                % (vpn.name, vpn.share, replicas, vpn.range, vpn.range_field, vpn.capacity, two,
                                   vpn.range_field), kind="capacity")
    if _given(api_port) or _given(api_host_ports):
        plan_control_servers(plan, api_port if _given(api_port) else DEFAULT_API_PORT, api_host_ports)
    return plan


def parse_port(value, field, fix):
    """One TCP port from an int or a string of digits, inside 1-65535; else PortPlanError naming ``field``, ``fix``
    telling what to give instead."""
    digits = ascii_digits(value.strip()) if isinstance(value, str) else False
    if not digits and (isinstance(value, bool) or not isinstance(value, int)):
        raise PortPlanError(field, "%r is not a port; %s" % (value, fix), kind="syntax")
    port = int(value)
    if not MIN_PORT <= port <= MAX_PORT:
        raise PortPlanError(field, "port %d is outside %d-%d; %s" % (port, MIN_PORT, MAX_PORT, fix), kind="syntax")
    return port


def free_port(start, taken, ranges):
    """The lowest port from ``start`` up that is neither in ``taken`` nor in any of ``ranges`` (None if none)."""
    port = max(start, MIN_PORT)
    while port <= MAX_PORT:
        blocking = [rng for rng in ranges if port in rng]
        if blocking:
            port = max(rng.end for rng in blocking) + 1
        elif port in taken:
            port += 1
        else:
            return port
    return None


def _given(value):
    """False for an option left out: None, "" or an empty list or mapping."""
    return value not in (None, "") and not (isinstance(value, (list, tuple, dict)) and not value)


def _example(port):
    return ", e.g. %d" % port if port is not None else ""


def _api_host_ports(value, names, api_port):
    """The external control-server port given for each VPN (None where ``api_port + index`` applies)."""
    if not _given(value):
        return [None] * len(names)
    defaults = [api_port + index for index in range(len(names))]
    if isinstance(value, dict):
        given = {}
        for key, port in value.items():
            name = str(key).strip().lstrip("/")
            if name not in names:
                raise PortPlanError("api_host_ports", "'%s' is not in vpn_containers %s; add it there or remove its port"
                                    % (key, names), kind="unknown")
            given[name] = port
        return [given.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise PortPlanError("api_host_ports", "%r gives %d port(s) for %d VPN(s) (%s); give one external port per "
                                                  "VPN, in the order of vpn_containers, e.g. %r"
                                % (list(value), len(value), len(names), ", ".join(names), defaults), kind="count")
        return list(value)
    raise PortPlanError("api_host_ports", "%r is neither a list nor a mapping; give the external ports in the order "
                                          "of vpn_containers, e.g. %r, or by name, e.g. %r"
                        % (value, defaults, dict(zip(names, defaults))), kind="syntax")


def plan_control_servers(plan, api_port, api_host_ports=None):
    """Give every VPN of ``plan`` its control server: internal ``api_port`` and one external port each.

    ``api_host_ports``: a list in VPN order or a mapping VPN name -> port; a VPN without one gets
    ``api_port + index``. Raises PortPlanError naming the field to fix.
    """
    engine_ranges = [vpn.range for vpn in plan.vpns]
    port = parse_port(api_port, "api_port", "give GLUETUN_API_PORT, the internal port of HTTP_CONTROL_SERVER_ADDRESS "
                                            "(the same for every VPN), as a whole number, e.g. %d" % DEFAULT_API_PORT)
    suggestion = _example(free_port(DEFAULT_API_PORT, (), engine_ranges + [plan.https_range]))
    for vpn in plan.vpns:
        if port in vpn.range:
            raise PortPlanError("api_port", "%d lies inside the engine ports of '%s' (%s): the control server listens "
                                            "in the VPN's network namespace, where an engine would find the port taken; "
                                            "choose an api_port outside the engine ranges and the HTTPS range%s"
                                % (port, vpn.name, vpn.range, suggestion), kind="namespace")
    if port in plan.https_range:
        raise PortPlanError("api_port", "%d lies inside https_port_range %s: the engines' HTTPS ports share the VPN's "
                                        "network namespace with the control server; choose an api_port outside the "
                                        "engine ranges and the HTTPS range%s" % (port, plan.https_range, suggestion), kind="namespace")

    names = [vpn.name for vpn in plan.vpns]
    given = _api_host_ports(api_host_ports, names, port)
    host_ports = []
    for vpn, value in zip(plan.vpns, given):
        field = "api_host_ports.%s" % vpn.name
        if value is None:
            host_ports.append(parse_port(port + vpn.index, field, "it defaults to api_port + the VPN's index (%d + %d): "
                                                                  "give api_host_ports explicitly" % (port, vpn.index)))
        else:
            host_ports.append(parse_port(value, field, "give the external host port of the VPN's control server as a "
                                                       "whole number, e.g. %d" % (port + vpn.index)))

    for vpn, host_port in zip(plan.vpns, host_ports):
        field = "api_host_ports.%s" % vpn.name
        others = set(host_ports[:vpn.index] + host_ports[vpn.index + 1:])
        suggestion = _example(free_port(host_port, others, engine_ranges))
        for other in plan.vpns:
            if host_port in other.range:
                raise PortPlanError(field, "host port %d of '%s' lies inside the engine range %s that '%s' publishes on "
                                           "the host: Docker would refuse with \"port is already allocated\"; choose an "
                                           "external control port outside every engine range%s"
                                    % (host_port, vpn.name, other.range, other.name, suggestion), kind="allocated")
        for other in plan.vpns[:vpn.index]:
            if host_ports[other.index] == host_port:
                raise PortPlanError(field, "host port %d of '%s' is already given to '%s': Docker would refuse with "
                                           "\"port is already allocated\"; each control server needs its own external "
                                           "port%s" % (host_port, vpn.name, other.name, suggestion), kind="duplicate")
    for vpn, host_port in zip(plan.vpns, host_ports):
        vpn.api_port, vpn.api_host_port = port, host_port


def ranges_text(ports):
    """Compact text for a set of ports: ``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (``"none"`` when empty)."""
    ports = sorted(set(ports))
    if not ports:
        return "none"
    parts = []
    start = prev = ports[0]
    for port in ports[1:]:
        if port == prev + 1:
            prev = port
            continue
        parts.append(str(start) if start == prev else "%d-%d" % (start, prev))
        start = prev = port
    parts.append(str(start) if start == prev else "%d-%d" % (start, prev))
    return ", ".join(parts)
