# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a Gluetun container already is what the gluetun role's community.docker.docker_container task would make
it, told from its inspect and its image's: the containers found in place are left out of that task's loop (one
module run each), the others go to docker_container, which converges them.

The rule is one-sided on purpose. Every option the task gives docker_container is compared here at least as strictly
as docker_container compares it (environment, labels, published ports, capabilities, devices and mounts strictly,
with the image's own environment and labels as docker_container counts them; the image, the restart policy, the
network, the state); what cannot be told from the inspects (a healthcheck given, an image pulled every run, an
inspect missing) sends the container to docker_container. A container found in place is one docker_container would
leave as it is; a difference found here that docker_container would not act on costs one module run, nothing more.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of

# Host addresses Docker reads as "every interface".
ANY_ADDRESS = ("", "0.0.0.0")


class InPlaceError(AcestreamError):
    """The inputs of the in-place decision are not what the gluetun role passes."""


def _pairs(entries):
    """``KEY=value`` entries (an inspect's Config.Env) as a mapping (the last one wins, as Docker reads them)."""
    out = {}
    for entry in entries or []:
        key, _sep, value = str(entry).partition("=")
        out[key] = value
    return out


def _port_numbers(text):
    low, _dash, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def published_ports(spec):
    """One docker_container ``published_ports`` item (``[ip:]host[-end]:container[-end][/proto]``, as
    gluetun_instances writes them) as ``[(host address as given, host port, container port, proto)]``, one per
    port. The one parser of the items: the reshape's host ports come from it too."""
    spec, _slash, proto = str(spec).partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) != 3:
        parts = [""] + parts
    ip, host, container = parts[0].strip("[]"), parts[1], parts[2] if len(parts) > 2 else parts[1]
    try:
        hosts, containers = _port_numbers(host), _port_numbers(container)
    except ValueError:
        raise InPlaceError("published port %r is not [ip:]host:container with port numbers" % spec)
    if len(hosts) != len(containers):
        raise InPlaceError("published port %r maps %d host ports onto %d container ports" % (
            spec, len(hosts), len(containers)))
    return [(ip, host_port, container_port, proto or "tcp") for host_port, container_port in zip(hosts, containers)]


def published_bindings(specs):
    """docker_container ``published_ports`` items as the set of ``(container port/proto, host address, host port)``
    Docker records in HostConfig.PortBindings, one per port."""
    return set(("%d/%s" % (container_port, proto), "" if ip in ANY_ADDRESS else ip, str(host_port))
               for spec in specs for ip, host_port, container_port, proto in published_ports(spec))


def recorded_bindings(host_config):
    """HostConfig.PortBindings of an inspect in the shape of published_bindings()."""
    out = set()
    for port, bindings in ((host_config or {}).get("PortBindings") or {}).items():
        for binding in bindings or []:
            ip = binding.get("HostIp") or ""
            out.add((port, "" if ip in ANY_ADDRESS else ip, str(binding.get("HostPort") or "")))
    return out


def _capabilities(values):
    return set(str(value).upper()[4:] if str(value).upper().startswith("CAP_") else str(value).upper()
               for value in values or [])


def _devices(values):
    """docker_container ``devices`` items (``host[:container[:permissions]]``) as (host, container, permissions)."""
    out = set()
    for value in values or []:
        parts = str(value).split(":")
        host = parts[0]
        container = parts[1] if len(parts) > 1 and parts[1] else host
        permissions = parts[2] if len(parts) > 2 and parts[2] else "rwm"
        out.add((host, container, permissions))
    return out


def _recorded_devices(host_config):
    return set((d.get("PathOnHost"), d.get("PathInContainer"), d.get("CgroupPermissions") or "rwm")
               for d in (host_config or {}).get("Devices") or [])


def _mounts(values):
    return set((m.get("type", "volume"), m.get("source"), m.get("target"), bool(m.get("read_only")))
               for m in values or [])


def _recorded_mounts(host_config):
    return set((m.get("Type"), m.get("Source"), m.get("Target"), bool(m.get("ReadOnly")))
               for m in (host_config or {}).get("Mounts") or [])


# docker_container's healthcheck durations ("1m30s", "500ms", "10s") in nanoseconds, as Docker records them.
DURATION_UNITS = {"ns": 1, "us": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
HEALTHCHECK_FIELDS = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "retries": "Retries",
                      "start_period": "StartPeriod", "start_interval": "StartInterval"}


def _nanoseconds(value):
    """A duration as docker_container reads it, in nanoseconds; None when it is not one this rule knows."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 10 ** 9
    text = str(value).strip()
    if not text or DURATION_RE.sub("", text):
        return None
    return int(sum(float(number) * DURATION_UNITS[unit] for number, unit in DURATION_RE.findall(text)))


def healthcheck_in_place(given, recorded):
    """Whether the container's Config.Healthcheck (``recorded``) is the healthcheck docker_container is ``given``:
    each given field equal (durations in nanoseconds, a test string as CMD-SHELL), every other field unset. False
    for anything this rule does not know (docker_container then decides)."""
    recorded = dict(recorded or {})
    expected = {}
    for key, value in given.items():
        if key not in HEALTHCHECK_FIELDS or value is None:
            return False
        if key == "test":
            value = ["CMD-SHELL", value] if isinstance(value, str) else [str(part) for part in value]
        elif key == "retries":
            if isinstance(value, bool) or not isinstance(value, int):
                return False
        else:
            value = _nanoseconds(value)
            if value is None:
                return False
        expected[HEALTHCHECK_FIELDS[key]] = value
    return all(recorded.get(field) == expected[field] if field in expected else not recorded.get(field)
               for field in set(HEALTHCHECK_FIELDS.values()) | set(recorded))


def gluetun_differences(instance, inspect, image, pull="missing", restart_policy="unless-stopped", capabilities=(),
                        devices=(), healthcheck=None, network=""):
    """What keeps a Gluetun container from being in place: [] when docker_container would leave it as it is.

    ``instance``: a gluetun_instances entry with ``labels`` and ``mounts``; ``inspect``: the container's inspect
    (None: it does not exist); ``image``: the inspect of the image the task names (None: not on the Docker host).
    The other arguments are the task's options. Each difference is named (``env``, ``labels``, ...), values left out:
    the environment holds the VPN credentials."""
    if inspect is None:
        return ["missing"]
    if pull == "always":
        return ["image pulled every run"]
    if image is None:
        return ["image not on the Docker host"]
    config = inspect.get("Config") or {}
    host_config = inspect.get("HostConfig") or {}
    image_config = image.get("Config") or {}
    state = inspect.get("State") or {}
    found = []
    if state.get("Status") != "running" or state.get("Paused") or state.get("Restarting"):
        found.append("state %s" % (state.get("Status") or "unknown"))
    if inspect.get("Image") != image.get("Id"):
        found.append("image")
    expected_env = _pairs(image_config.get("Env"))
    expected_env.update((str(key), str(value)) for key, value in instance["env"].items())
    if _pairs(config.get("Env")) != expected_env or len(config.get("Env") or []) != len(expected_env):
        found.append("env")
    labels, image_labels = config.get("Labels") or {}, image_config.get("Labels") or {}
    wanted = instance["labels"]
    if any(labels.get(key) != value for key, value in wanted.items()) or any(
            key not in wanted and image_labels.get(key) != value for key, value in labels.items()):
        found.append("labels")
    if recorded_bindings(host_config) != published_bindings(instance["published"]):
        found.append("published ports")
    if _capabilities(host_config.get("CapAdd")) != _capabilities(capabilities):
        found.append("capabilities")
    if _recorded_devices(host_config) != _devices(devices):
        found.append("devices")
    if _recorded_mounts(host_config) != _mounts(instance["mounts"]):
        found.append("mounts")
    policy = ((host_config.get("RestartPolicy") or {}).get("Name") or "no")
    if policy != (restart_policy or "no"):
        found.append("restart policy")
    if healthcheck and not (isinstance(healthcheck, dict) and healthcheck_in_place(healthcheck, config.get("Healthcheck"))):
        found.append("healthcheck")
    if network and network not in ((inspect.get("NetworkSettings") or {}).get("Networks") or {}):
        found.append("network")
    return found


def gluetun_to_converge(instances, inspects, image, **options):
    """The names of the Gluetun containers the docker_container task must converge, in the order of ``instances``;
    the others are in place (gluetun_differences). ``inspects``: container name -> inspect or None (null: not
    read, every container goes to docker_container)."""
    if not isinstance(instances, list):
        raise InPlaceError("instances must be the gluetun_instances list, not %s" % kind_of(instances))
    if inspects is None:
        return [instance["name"] for instance in instances]
    if not isinstance(inspects, dict):
        raise InPlaceError("inspects must map container names to their inspect, not %s" % kind_of(inspects))
    return [instance["name"] for instance in instances
            if gluetun_differences(instance, inspects.get(instance["name"]), image, **options)]
