# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who owns a container on the Docker host, by its labels: the host's containers by name with their owner in the
stack, names of the stack that would take each other's place, and containers holding a name the stack converges that
the stack does not own.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import engine_name
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    APP_MANAGER,
    ENGINE_MANAGER,
    GLUETUN_MANAGER,
    LABEL_MANAGED_BY,
    LABEL_POOL,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import owner
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import (
    StackCheckError,
    _mapping,
    _plan_vpns,
    _sequence,
    _text,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of


# --------------------------------------------------------------------------------------- the Docker host
def _container_name(container):
    names = container.get("Names") or ["?"]
    if isinstance(names, str):
        names = [names]
    return str(names[0]).lstrip("/")


def containers_by_name(containers, pool=None):
    """docker_host_info's ``containers`` (verbose) as ``{name: {id, state, labels, owner}}``; null gives ``{}``.
    ``owner``: what the container is to stack ``pool`` by its labels (``_stack_reshape.owner``: ``gluetun``, ``app``,
    ``engine``, ``app_engine``), null when it is not the stack's (or no pool is given)."""
    out = {}
    for container in _sequence(containers, "the containers"):
        if not isinstance(container, dict):
            raise StackCheckError("each container must be a mapping as docker_host_info lists it, not %s"
                                  % kind_of(container))
        out[_container_name(container)] = {
            "id": container.get("Id"),
            "state": container.get("State") or "unknown",
            "labels": container.get("Labels") or {},
            "owner": owner(container.get("Labels"), pool) if pool is not None else None,
        }
    return out


# --------------------------------------------------------------------------------------- names and owners
def _engine_slots(plan, pool):
    """The container names of every engine slot of the pool: ``{name: (vpn, port)}``."""
    slots = {}
    for vpn in _plan_vpns(plan):
        start = int(vpn["start"])
        for port in range(start, start + int(vpn.get("capacity", int(vpn["end"]) - start + 1))):
            slots[engine_name(pool, vpn["name"], port)] = (vpn["name"], port)
    return slots


def name_collisions(plan, pool, app_name=None):
    """The stack's own container names that would take each other's place: a Gluetun container named like an
    engine slot of the pool (``<pool>-<vpn>-<port>``), the orchestrator app (``app_name``, null when it is off;
    the engines role then leaves the engines to it) named like a Gluetun container. One message each; ``[]`` when
    every name is its own."""
    slots = _engine_slots(plan, _text(pool, "pool"))
    gluetun = [vpn["name"] for vpn in _plan_vpns(plan)]
    out = []
    for name in gluetun:
        if name in slots:
            out.append("Gluetun container '%s' (acestream_gluetun_containers) has the name of the engine of pool '%s' "
                       "on VPN '%s', port %d: one would replace the other. Rename the Gluetun container or the pool "
                       "(acestream_pool_name)." % ((name, pool) + slots[name]))
    if app_name and _text(app_name, "app_name") in gluetun:
        out.append("The orchestrator app (acestream_orchestrator_name) is named '%s', like a Gluetun container of "
                   "acestream_gluetun_containers: one would replace the other. Give the app its own name, e.g. "
                   "acestream-orchestrator." % app_name)
    return out


def _owner(labels):
    """Who a container belongs to, by its labels, as a message says it."""
    manager, pool = labels.get(LABEL_MANAGED_BY), labels.get(LABEL_POOL)
    if not manager:
        return "it carries no %s label: it was not created by this collection" % LABEL_MANAGED_BY
    what = {GLUETUN_MANAGER: "the Gluetun container", APP_MANAGER: "the orchestrator app",
            ENGINE_MANAGER: "an engine"}.get(manager, "a container (%s=%s)" % (LABEL_MANAGED_BY, manager))
    return "it is %s of stack '%s' (%s=%s, %s=%s)" % (what, pool, LABEL_MANAGED_BY, manager, LABEL_POOL, pool)


def ownership_problems(containers, pool, gluetun=(), app_name=None, plan=None):
    """The containers of the Docker host (``containers_by_name``'s mapping) that hold a name this stack would
    converge but are not this stack's own: a Gluetun container name (``gluetun``) without the labels
    ``acestream.managed-by=acestream.orchestrator.gluetun`` and ``acestream.pool=<pool>``, the app's name
    (``app_name``, null when the app is off) without the app's, an engine slot of ``plan`` (null when the engines
    are not the pool's to converge) without the pool's engine labels. The collection never replaces or removes
    what it did not create for this stack: one message each, naming the container and its owner. ``[]`` when
    none."""
    containers = _mapping(containers, "containers")
    pool = _text(pool, "pool")
    wanted = [(name, GLUETUN_MANAGER, "acestream_gluetun_containers") for name in _sequence(gluetun, "gluetun")]
    if app_name:
        wanted.append((_text(app_name, "app_name"), APP_MANAGER, "acestream_orchestrator_name"))
    if plan:
        slots = _engine_slots(plan, pool)
        wanted.extend((name, ENGINE_MANAGER, "an engine slot of acestream_pool_name") for name in sorted(slots)
                      if name in containers)
    out = []
    for name, manager, variable in wanted:
        found = containers.get(name)
        if found is None:
            continue
        labels = _mapping(found.get("labels") if isinstance(found, dict) else None, "the labels of %s" % name)
        if labels.get(LABEL_MANAGED_BY) == manager and labels.get(LABEL_POOL) == pool:
            continue
        fix = ("rename the pool (acestream_pool_name)" if manager == ENGINE_MANAGER
               else "rename this stack's container in %s" % variable)
        out.append("Container '%s' (%s) is not this stack's: %s. Nothing without this stack's labels is changed or "
                   "removed: %s, or remove or rename that container yourself." % (name, variable, _owner(labels), fix))
    return out
