# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a stack owns on its Docker host, and how its Gluetun side changes shape without a collision.

Private to this collection. Pure: no I/O and no Ansible import (the filter ``gluetun_reshape`` and the preflight's
host-port check expose it).

* ``owner(labels, pool)``: which of the stack's kinds a container is, by its labels (None: not this stack's).
* ``vpn_paths(stack_dir, name)``: THE layout of a Gluetun container's files under the stack directory.
* ``gluetun_reshape(containers, pool, instances, stack_dir, ...)``: the stack's Gluetun containers (and their files
  and engines) that the inventory no longer names, and the ones whose host ports move onto another's: what goes
  before any Gluetun container is converged.
* ``listening_ports(proc_net_tcp)``: the TCP sockets listening on the host, from ``/proc/net/tcp`` and ``tcp6``.
* ``engines_readiness(vpn_names, ...)``: whether the engines can be converged in this run, given the Gluetun
  containers found and what the gluetun role did to them.
"""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_in_place import (
    InPlaceError,
    gluetun_to_converge,
    published_ports,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    APP_LABEL_POOL,
    APP_LABEL_VPN_CONTAINER,
    APP_MANAGER,
    ENGINE_MANAGER,
    GLUETUN_MANAGER,
    LABEL_MANAGED_BY,
    LABEL_POOL,
    LABEL_VPN,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of

# Host addresses that stand for every interface: a port published on one of them takes that port on all.
WILDCARDS = ("", "0.0.0.0", "::")
LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp


class ReshapeError(AcestreamError, ValueError):
    """Input these functions cannot use; the message says what to give instead."""


def _sequence(value, what):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ReshapeError("%s must be a list, not %s" % (what, kind_of(value)))
    return list(value)


def _name(container):
    names = container.get("Names") or [container.get("Name") or "?"]
    if isinstance(names, str):
        names = [names]
    return str(names[0]).lstrip("/")


def owner(labels, pool):
    """``gluetun``, ``app``, ``engine`` (engine_pool's) or ``app_engine`` (the orchestrator app's, by the stack's
    CONTAINER_LABEL) when the labels make a container this stack's, else None."""
    labels = labels if isinstance(labels, dict) else {}
    manager = labels.get(LABEL_MANAGED_BY)
    if labels.get(LABEL_POOL) == pool and manager in (GLUETUN_MANAGER, APP_MANAGER, ENGINE_MANAGER):
        return {GLUETUN_MANAGER: "gluetun", APP_MANAGER: "app", ENGINE_MANAGER: "engine"}[manager]
    if labels.get(APP_LABEL_POOL) == pool:
        return "app_engine"
    return None


def vpn_paths(stack_dir, name):
    """Where a Gluetun container's files live: ``dir``, ``env_file``, ``auth_dir``, ``auth_file``, ``state_dir``."""
    directory = "%s/gluetun/%s" % (stack_dir.rstrip("/"), name)
    return {"dir": directory, "env_file": directory + "/gluetun.env", "auth_dir": directory + "/auth",
            "auth_file": directory + "/auth/config.toml", "state_dir": directory + "/state"}


def vpn_files_absent(stack_dir, names, state_keep=True):
    """The stack_files ``absent`` and ``absent_if_empty`` lists that remove these Gluetun containers' files: the
    env and auth files (secrets) always, the state directory unless ``state_keep``; their directories only when
    nothing else is left in them."""
    absent, if_empty = [], []
    for name in names:
        paths = vpn_paths(stack_dir, name)
        absent.extend([paths["env_file"], paths["auth_file"]] + ([] if state_keep else [paths["state_dir"]]))
        if_empty.extend([paths["auth_dir"], paths["dir"]])
    return absent, if_empty


def binds_meet(one, other):
    """Two host addresses that cannot both publish the same port."""
    return one in WILDCARDS or other in WILDCARDS or one == other


def published_now(container):
    """The host ports a running container of docker_host_info's list holds: ``{(ip, port)}`` (TCP and UDP)."""
    if (container.get("State") or "running") != "running":
        return set()
    out = set()
    for port in container.get("Ports") or []:
        if isinstance(port, dict) and port.get("PublicPort"):
            out.add((port.get("IP") or "", int(port["PublicPort"])))
    return out


def gluetun_reshape(containers, pool, instances, stack_dir, vpn_dirs=(), state_keep=True, inspects=None, image=None,
                    converge_options=None):
    """What goes before the stack's Gluetun containers are converged.

    ``containers``: docker_host_info's (verbose) list; ``instances``: the Gluetun containers to converge
    (``gluetun_instances``' entries: ``name``, ``published``), ``[]`` to remove the whole Gluetun side;
    ``vpn_dirs``: the directories found under ``<stack_dir>/gluetun`` (their files are the stack's too).

    Returns ``leftovers`` (the stack's Gluetun containers, by their labels, that ``instances`` no longer names),
    ``engines`` (the stack's engines on them, which go first), ``remove_first`` (kept Gluetun containers that hold,
    now, host ports another one will publish: removed before any is started again, so that a range that moves
    between VPNs converges in one run), the stack_files lists ``absent`` / ``absent_if_empty`` of the files
    of the VPNs no longer named, and ``foreign``: the containers holding a name of ``instances`` or ``vpn_dirs``
    that are not the stack's (left in place).

    Also ``converge``: the Gluetun containers the docker_container task converges - those removed first, and those
    ``_gluetun_in_place`` does not find in place from ``inspects`` (container name -> inspect), ``image`` (the
    Gluetun image's inspect) and ``converge_options`` (the task's other options); every one when ``inspects`` is
    null.
    """
    if not isinstance(pool, str) or not pool:
        raise ReshapeError("pool must be the stack's pool name (acestream_pool_name), not %s" % kind_of(pool))
    if not isinstance(stack_dir, str) or not stack_dir.strip("/"):
        raise ReshapeError("stack_dir must be a directory path, not %s" % kind_of(stack_dir))
    wanted = {}
    for instance in _sequence(instances, "instances"):
        if not isinstance(instance, dict) or not isinstance(instance.get("name"), str):
            raise ReshapeError("each instance must be a mapping with a name (gluetun_instances' entries)")
        wanted[instance["name"]] = set()
        for spec in _sequence(instance.get("published"), "the published ports of %s" % instance["name"]):
            try:
                wanted[instance["name"]].update((ip, port) for ip, port, _inside, _proto in published_ports(spec))
            except InPlaceError as error:
                raise ReshapeError(str(error))
    ours, engines, foreign = {}, [], set()
    for container in _sequence(containers, "containers"):
        if not isinstance(container, dict):
            raise ReshapeError("each container must be a mapping as docker_host_info lists it, not %s"
                               % kind_of(container))
        labels = container.get("Labels") or {}
        kind = owner(labels, pool)
        if kind == "gluetun":
            ours[_name(container)] = container
        elif kind in ("engine", "app_engine"):
            engines.append((_name(container), labels.get(LABEL_VPN) or labels.get(APP_LABEL_VPN_CONTAINER)))
        else:
            foreign.add(_name(container))
    leftovers = sorted(name for name in ours if name not in wanted)
    remove_first = []
    for name in sorted(set(ours) & set(wanted)):
        now = published_now(ours[name])
        if not now or now == wanted[name]:
            continue
        others = [(ip, port) for other, ports in wanted.items() if other != name for ip, port in ports]
        if any(port == theirs and binds_meet(ip, their_ip) for ip, port in now for their_ip, theirs in others):
            remove_first.append(name)
    gone = set(leftovers)
    dirs = set()
    for path in _sequence(vpn_dirs, "vpn_dirs"):
        name = str(path).rstrip("/").rpartition("/")[2]
        if name and name not in wanted:
            dirs.add(name)
    absent, if_empty = vpn_files_absent(stack_dir, sorted(gone | dirs), state_keep)
    try:
        moved = set(gluetun_to_converge(list(_sequence(instances, "instances")), inspects, image,
                                        **dict(converge_options or {})))
    except InPlaceError as error:
        raise ReshapeError(str(error))
    return {
        "converge": [name for name in wanted if name in moved or name in remove_first],
        "leftovers": leftovers,
        "engines": sorted(name for name, vpn in engines if vpn in gone),
        "remove_first": remove_first,
        "absent": absent,
        "absent_if_empty": if_empty,
        "foreign": sorted((set(wanted) | dirs) & foreign),
    }


# --------------------------------------------------------------------------------------- the host's sockets
def _address(hex_address):
    """A /proc/net/tcp address (little-endian hex words) as text: dotted IPv4, ``::`` for the IPv6 wildcard, an
    IPv4-mapped IPv6 address as its IPv4, another IPv6 address as its hex."""
    if len(hex_address) == 8:
        return ".".join(str(int(hex_address[i:i + 2], 16)) for i in (6, 4, 2, 0))
    if set(hex_address) == {"0"}:
        return "::"
    words = [hex_address[i:i + 8] for i in range(0, 32, 8)]
    if words[0] == words[1] == "00000000" and words[2].upper() == "FFFF0000":
        return _address(words[3])
    return hex_address.lower()


def listening_ports(proc_net_tcp):
    """``[(ip, port)]`` of the TCP sockets in state LISTEN in the text of ``/proc/net/tcp`` and ``/proc/net/tcp6``
    (concatenated; header lines and anything unreadable are skipped)."""
    if proc_net_tcp is None:
        return []
    if not isinstance(proc_net_tcp, str):
        raise ReshapeError("the host's sockets must be the text of /proc/net/tcp, not %s" % kind_of(proc_net_tcp))
    out = []
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        address, _colon, port = fields[1].partition(":")
        try:
            out.append((_address(address), int(port, 16)))
        except ValueError:
            continue
    return out


def ports_held_by_processes(host_ports, listening, containers):
    """The stack's host ports (``[{what, bind, start, end}]``) that a process listens on while no container publishes
    them (a port Docker publishes is held by its proxy: another container's is reported as such, the stack's own is
    the stack's). ``{what: {ports}}``."""
    published = set()
    for container in _sequence(containers, "containers"):
        if isinstance(container, dict):
            published.update(port for _ip, port in published_now(container))
    held = {}
    for ip, port in listening:
        if port in published:
            continue
        for mine in host_ports:
            if mine["start"] <= port <= mine["end"] and binds_meet(mine["bind"], ip):
                held.setdefault(mine["what"], set()).add(port)
    return held


def engines_readiness(vpn_names, containers=None, gluetun_results=None, check_mode=False, host="", pool="", replicas=0):
    """Whether the engines role can converge the engines in this run: ``{missing, deferred, message}``.

    ``containers``: the Docker host's containers by name as listed before anything changed (null when the target was
    not asked: gluetun_status and engine_pool then name a missing VPN container themselves). ``gluetun_results``:
    the gluetun role's docker_container results in this play (null when it did not run). The Gluetun containers it
    created since the listing exist, except in check mode; there a Gluetun container still to be created or
    re-created defers the engines, which follow it (``deferred``). Otherwise a missing one fails the run
    (``message``: the port guide's "VPN container ... is not healthy").
    """
    names = [str(name) for name in _sequence(vpn_names, "vpn_names")]
    results = _sequence(gluetun_results, "gluetun_results")
    if containers is not None and not isinstance(containers, dict):
        raise ReshapeError("containers must be a mapping of container name to container, not %s" % kind_of(containers))
    if (gluetun_results is not None and not check_mode) or containers is None:
        missing = []
    else:
        missing = [name for name in names if name not in containers]
    changing = any(isinstance(result, dict) and result.get("changed") for result in results)
    deferred = bool(check_mode and (missing or changing))
    if deferred:
        message = ("The Gluetun containers are yet to be %s (%s): the engines follow them, %s engine(s) in pool %s "
                   "would be (re)created in their network namespaces."
                   % ("created" if missing else "re-created", ", ".join(missing or names), replicas, pool))
    elif missing:
        message = ("Gluetun container(s) %s not found on %s: VPN container '%s' is not healthy - cannot start "
                   "AceStream engine. Deploy the Gluetun containers first (role acestream.orchestrator.gluetun, or "
                   "playbook acestream.orchestrator.site), or fix GLUETUN_CONTAINER_NAME / GLUETUN_CONTAINER_NAME_2 "
                   "(acestream_gluetun_containers)." % (", ".join(missing), host, missing[0]))
    else:
        message = ""
    return {"missing": missing, "deferred": deferred, "message": message}
