# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker's "port is already allocated" (and "address already in use"), before Docker says it: every host port the stack
publishes, the ports it would publish twice, and those another container or a process on the Docker host holds, each
with the port guide's fix.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.module_utils._ownership import _container_name
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import (
    binds_meet,
    listening_ports,
    owner,
    ports_held_by_processes,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import (
    StackCheckError,
    _bind_prefix,
    _listed,
    _mapping,
    _plan_vpns,
    _port,
    _ports_text,
    _sequence,
    _text,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of


# --------------------------------------------------------------------------------------- host ports
def stack_host_ports(plan, api_bind="", port_range_bind="", orchestrator=None):
    """Every host port the stack publishes, as ``[{what, bind, start, end}]``: each Gluetun container's control
    server (when the plan has its ``api_host_port``), each VPN's engine range and the orchestrator app's port
    (``orchestrator``: ``{name, port, bind}``; null, empty text or an empty mapping when the app is off: ansible-core
    2.17 renders a template's ``none`` as ``''``)."""
    orchestrator = orchestrator or None
    vpns = _plan_vpns(plan)
    api_bind = _bind_prefix(api_bind, "api_bind")[:-1]
    port_range_bind = _bind_prefix(port_range_bind, "port_range_bind")[:-1]
    out = []
    for vpn in vpns:
        if vpn.get("api_host_port") is not None:
            port = _port(vpn["api_host_port"], "the api_host_port of %s" % vpn["name"])
            out.append({"what": "the control server of %s (api_host_port)" % vpn["name"], "bind": api_bind,
                        "start": port, "end": port})
    for vpn in vpns:
        out.append({"what": "the engine ports of %s (%s)" % (vpn["name"], vpn["range"]), "bind": port_range_bind,
                    "start": int(vpn["start"]), "end": int(vpn["end"])})
    if orchestrator is not None:
        orchestrator = _mapping(orchestrator, "orchestrator")
        port = _port(orchestrator.get("port"), "the orchestrator app's port")
        out.append({"what": "the orchestrator app (acestream_orchestrator_port)",
                    "bind": _bind_prefix(orchestrator.get("bind"), "the orchestrator app's bind")[:-1],
                    "start": port, "end": port})
    return out


def port_clashes(host_ports):
    """The pairs of the stack's own host port bindings that Docker would refuse, one text each."""
    host_ports = _sequence(host_ports, "host_ports")
    out = []
    for index, one in enumerate(host_ports):
        for other in host_ports[index + 1:]:
            if one["start"] <= other["end"] and other["start"] <= one["end"] and binds_meet(one["bind"], other["bind"]):
                low, high = max(one["start"], other["start"]), min(one["end"], other["end"])
                out.append("%s and %s both publish host port %s"
                           % (one["what"], other["what"], low if low == high else "%d-%d" % (low, high)))
    return out


def ports_taken(host_ports, containers, ours=(), pool=None):
    """The stack's host ports already published by running containers not named in ``ours`` and, with ``pool``, not
    carrying the labels of that stack (its own containers, the ones the inventory no longer names included: the
    gluetun role removes those first), one text per container and binding (its ports compressed to ranges)."""
    host_ports = _sequence(host_ports, "host_ports")
    ours = set(_sequence(ours, "the stack's container names"))
    taken = {}
    for container in _sequence(containers, "the containers"):
        if not isinstance(container, dict):
            raise StackCheckError("each container must be a mapping as docker_host_info lists it, not %s"
                                  % kind_of(container))
        name = _container_name(container)
        if name in ours or (container.get("State") or "running") != "running":
            continue
        if pool is not None and owner(container.get("Labels"), pool) is not None:
            continue
        for published in container.get("Ports") or []:
            port = published.get("PublicPort") if isinstance(published, dict) else None
            if port is None or (published.get("Type") or "tcp") != "tcp":
                continue
            for mine in host_ports:
                if mine["start"] <= int(port) <= mine["end"] and binds_meet(mine["bind"], published.get("IP") or ""):
                    taken.setdefault((name, mine["what"]), set()).add(int(port))
    return ["%s (%s) %s already published by container %s"
            % (_ports_text(ports), what, "is" if len(ports) == 1 else "are", name)
            for (name, what), ports in taken.items()]


CLASH_FIX = ('Fix from the port guide ("Port Already Allocated"): "Ensure no overlap between different services" and '
             '"Verify Gluetun port mappings match PORT_RANGE_HOST" (the orchestrator app takes 8000: keep '
             'GLUETUN_API_PORT and api_host_port off it, e.g. 8001/8002 as in the guide).')
HELD_FIX = ("Nothing was changed: stop that process, or move acestream_port_range_host / api_host_port / "
            "acestream_orchestrator_port off its port.")
TAKEN_FIX = ('Fix from the port guide: "Check if another container is using the same ports" and "Ensure no overlap '
             'between different services": stop that container or move acestream_port_range_host / api_host_port / '
             'acestream_orchestrator_port.')


def host_port_conflicts(plan, api_bind="", port_range_bind="", orchestrator=None, containers=None, pool=None,
                        listening=None):
    """The stack's host ports that Docker would refuse with "port is already allocated", as messages naming the
    guide's fix: one for the ports the stack itself publishes twice, one for the ports that other running
    ``containers`` (docker_host_info's list; null: not checked) already publish (with ``pool``, the containers
    carrying that stack's labels are its own, whatever their names), one for the ports a process on the Docker host
    listens on (``listening``: the text of ``/proc/net/tcp`` and ``/proc/net/tcp6``; null: not checked). ``[]``
    when there is none."""
    orchestrator = orchestrator or None
    host_ports = stack_host_ports(plan, api_bind, port_range_bind, orchestrator)
    out = []
    clashes = port_clashes(host_ports)
    if clashes:
        out.append('Docker would refuse with "port is already allocated": %s. %s' % (_listed(clashes), CLASH_FIX))
    if containers is not None:
        ours = [vpn["name"] for vpn in _plan_vpns(plan)]
        if orchestrator is not None:
            ours.append(_text(orchestrator.get("name"), "the orchestrator app's name"))
        if pool is not None:
            pool = _text(pool, "pool")
        taken = ports_taken(host_ports, containers, ours, pool)
        if taken:
            out.append('Docker would refuse with "port is already allocated": %s. %s' % (_listed(taken), TAKEN_FIX))
    if listening is not None:
        held = ports_held_by_processes(host_ports, listening_ports(listening), containers or [])
        if held:
            texts = ["%s (%s) %s held by a process on the Docker host, not a container (find it with: ss -ltnp "
                     "'sport = :%d')" % (_ports_text(ports), what, "is" if len(ports) == 1 else "are", min(ports))
                     for what, ports in held.items()]
            out.append('Docker would refuse with "address already in use": %s. %s' % (_listed(texts), HELD_FIX))
    return out
