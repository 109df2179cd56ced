# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' decisions about a stack description, in one place: what the Docker host runs, which host ports the
stack publishes and who else holds them, the port plan's errors with the port guide's fix, each Gluetun
container's description (environment, files, published ports), the orchestrator app's environment and a summary
of what docker_container changed.

Private to this collection. Pure: no I/O and no Ansible import; the filter plugins of plugins/filter/ expose these
functions to the roles, and the unit tests call them directly.

* ``containers_by_name(containers)``: docker_host_info's container list as ``name -> {id, state, labels}``.
* ``stack_host_ports(plan, ...)``, ``port_clashes(host_ports)``, ``ports_taken(host_ports, containers, ours)`` and
  ``host_port_conflicts(plan, ...)``: Docker's "port is already allocated", before Docker says it.
* ``port_plan_message(error)``: a PortPlanError as the stack model reports it,
  the fix chosen by the error's ``kind`` and ``field``.
* ``gluetun_env_problems(containers, ...)``: what the Gluetun containers' environments cannot be.
* ``gluetun_instances(containers, plan, ...)``: each Gluetun container to converge, with its stack_files entries.
* ``orchestrator_app_env(plan, ...)``: the orchestrator app's environment, derived from the port plan.
* ``container_changes(results)``: what docker_container changed in each container, environment values left out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import engine_name
from ansible_collections.acestream.orchestrator.plugins.module_utils._env import (
    env_name_problem,
    env_problems,
    env_value_problem,
    variable_problems as env_variable_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import credential_problem
from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import (
    AppError,
    container_label,
    GLUETUN_RESTART_ENV,
    GLUETUN_RESTART_NEVER,
    env_problems as app_env_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._pool_options import (
    POOL_ARGUMENT_SPEC,
    validate_pool,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    PortPlanError,
    ascii_digits,
    ranges_text,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    APP_MANAGER,
    ENGINE_MANAGER,
    GLUETUN_AUTH_DIR,
    GLUETUN_MANAGER,
    LABEL_MANAGED_BY,
    LABEL_POOL,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import (
    binds_meet,
    listening_ports,
    owner,
    ports_held_by_processes,
    vpn_paths,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import CONTROL_CHARACTER_RE, kind_of

# How many conflicts a message lists before it says "...".
MAX_LISTED = 10
DEFAULT_AUTH_DIR = GLUETUN_AUTH_DIR


class StackCheckError(AcestreamError, ValueError):
    """Input these functions cannot use; the message says what to give instead."""


# --------------------------------------------------------------------------------------- helpers
def _mapping(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StackCheckError("%s must be a mapping, not %s" % (what, kind_of(value)))
    return value


def _sequence(value, what):
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise StackCheckError("%s must be a list, not %s" % (what, kind_of(value)))
    return list(value)


def _text(value, what):
    if not isinstance(value, str):
        raise StackCheckError("%s must be a string, not %s" % (what, kind_of(value)))
    return value


def _port(value, what):
    """A TCP port from an int or a string of digits."""
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, bool) or not (isinstance(value, int) or ascii_digits(text)):
        raise StackCheckError("%s must be a port number, not %s" % (what, kind_of(value)))
    port = int(value)
    if not 1 <= port <= 65535:
        raise StackCheckError("%s must be a port number between 1 and 65535, not %d" % (what, port))
    return port


def _unnamed(container):
    """What a container without a usable name is, for messages, without showing it."""
    if not isinstance(container, dict):
        return kind_of(container)
    return "a mapping whose name is %s" % kind_of(container.get("name"))


def _plan_vpns(plan):
    plan = _mapping(plan, "the port plan")
    vpns = _sequence(plan.get("vpns"), "the port plan's vpns")
    if not vpns:
        raise StackCheckError("the port plan has no vpns: give the result of acestream.orchestrator.port_plan")
    for vpn in vpns:
        if not isinstance(vpn, dict) or not {"name", "index", "range", "start", "end"} <= set(vpn):
            raise StackCheckError("the port plan's vpns must be the entries of acestream.orchestrator.port_plan "
                                  "(name, index, range, start, end ...), not %r" % (vpn,))
    return vpns


def _bind_prefix(bind, what):
    bind = _text("" if bind is None else bind, what).strip()
    return bind + ":" if bind else ""


def _ports_text(ports):
    ports = sorted(set(ports))
    return ("host port %s" if len(ports) == 1 else "host ports %s") % ranges_text(ports)


def _listed(items):
    more = len(items) - MAX_LISTED
    return "; ".join(items[:MAX_LISTED]) + ("; ... (%d more)" % more if more > 0 else "")


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


# --------------------------------------------------------------------------------------- the port plan's errors
PLAN_VARIABLES = ("Variables: port_range = acestream_port_range_host (PORT_RANGE_HOST), vpn_port_ranges = "
                  "acestream_vpn_port_ranges (GLUETUN_PORT_RANGE_1/_2), replicas = acestream_engine_replicas "
                  "(MAX_REPLICAS), https_port_range = acestream_engine_https_port_range (ACE_HTTPS_RANGE), api_port = "
                  "acestream_gluetun_api_port (GLUETUN_API_PORT), api_host_ports = the api_host_port of each item of "
                  "acestream_gluetun_containers.")

# The port guide's fix for each kind of PortPlanError (see _portplan.ERROR_KINDS).
PLAN_FIXES = {
    "overlap": ('Fix from the port guide: "Port Range Not Split: Verify each VPN has its own port range. Ensure ranges '
                'don\'t overlap" (and keep ACE_HTTPS_RANGE apart from them).'),
    "capacity": ('Fix from the port guide: "Size: Choose a range that can accommodate your MAX_REPLICAS setting": '
                 'widen acestream_port_range_host (PORT_RANGE_HOST) or the VPN\'s range, or lower '
                 'acestream_engine_replicas.'),
    "outside": ('Fix from the port guide: "Check that PORT_RANGE_HOST matches Gluetun port mappings": keep every '
                'GLUETUN_PORT_RANGE_N inside PORT_RANGE_HOST.'),
    "required": ("Set acestream_port_range_host (PORT_RANGE_HOST), split evenly between the Gluetun containers, or "
                 "give each container its own range in acestream_vpn_port_ranges (GLUETUN_PORT_RANGE_1/_2)."),
    "unknown": "Name only the Gluetun containers of acestream_gluetun_containers.",
    "names": ("Give each Gluetun container of acestream_gluetun_containers its own valid Docker name (the guide's "
              "best practice: gluetun1, gluetun2)."),
    "count": "Give one api_host_port to each item of acestream_gluetun_containers.",
    "namespace": ('Fix from the port guide ("Wrong GLUETUN_API_PORT"): "Use the internal port, not the external '
                  'port": the control server and the engines share each Gluetun container\'s network namespace; '
                  'choose a GLUETUN_API_PORT (acestream_gluetun_api_port) outside the engine and HTTPS ranges (the '
                  'guide uses 8001).'),
    "allocated": ('Fix from the port guide ("Port Already Allocated"): "Ensure no overlap between different '
                  'services": keep every api_host_port of acestream_gluetun_containers outside the engine ranges.'),
    "duplicate": ('Fix from the port guide: "Different External Ports: in redundant mode, use different external HTTP '
                  'control server ports for host access" (e.g. 8001:8001 and 8002:8001).'),
}
# A value that is not what the field takes: the fix depends on the field.
SYNTAX_FIXES = {
    "port_range": "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999.",
    "vpn_port_ranges": "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999.",
    "https_port_range": "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999.",
    "replicas": "Give MAX_REPLICAS (acestream_engine_replicas) as a whole number, 0 or more.",
    "api_port": "Give GLUETUN_API_PORT (acestream_gluetun_api_port) as a port number, e.g. 8001.",
    "api_host_ports": "Give each api_host_port of acestream_gluetun_containers as a port number, e.g. 8001 and 8002.",
}
OTHER_FIX = "Fix the variable named above."


def port_plan_fix(error):
    """The port guide's fix for a PortPlanError, chosen by its ``kind`` and ``field``."""
    if not isinstance(error, PortPlanError):
        raise StackCheckError("port_plan_fix takes a PortPlanError, not %s" % kind_of(error))
    field = str(error.field).split(".", maxsplit=1)[0]
    if error.kind == "syntax":
        return SYNTAX_FIXES.get(field, OTHER_FIX)
    return PLAN_FIXES.get(error.kind, OTHER_FIX)


def port_plan_message(error):
    """A PortPlanError as the roles report it: the error, the roles' variables behind the plan's fields, the fix."""
    return "The port plan is not valid: %s. %s %s" % (str(error).strip().rstrip("."), PLAN_VARIABLES,
                                                      port_plan_fix(error))


# --------------------------------------------------------------------------------------- Gluetun containers
def gluetun_env_value(key, value):
    """One environment value as Gluetun reads it from an env file: booleans on/off, numbers as text.

    Refuses what one ``KEY=value`` line cannot hold (see _env): a bad name, null, a mapping or list, a NUL, a
    multi-line string. The message names the variable, never its value."""
    problem = env_name_problem(key) or env_value_problem(key, value, one_line=True)
    if problem:
        raise StackCheckError(problem)
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


def gluetun_env_text(name, stack_name, env):
    """The content of a Gluetun container's env file (mode 0600): a header, then ``KEY=value`` lines sorted."""
    lines = ["# Gluetun container %s of stack %s: environment written by acestream.orchestrator." % (name, stack_name),
             "# Mode 0600: it holds the provider credentials. One KEY=value per line, taken literally (no quotes)."]
    lines.extend("%s=%s" % (key, env[key]) for key in sorted(env))
    return "\n".join(lines) + "\n"


def _merged_env(container, common_env):
    merged = dict(common_env)
    merged.update(_mapping(container.get("env"), "the env of '%s'" % container.get("name")))
    return merged


def gluetun_env_problems(containers, env=None, api_port=None):
    """What the Gluetun containers' environments (``env`` merged with each container's own) cannot be, one message
    per container and problem, naming the port guide's fix: an ``HTTP_CONTROL_SERVER_ADDRESS`` whose port is not
    ``api_port`` (GLUETUN_API_PORT), variables an env file cannot hold (see gluetun_env_value). ``[]`` when fine."""
    common_env = _mapping(env, "env")
    api_port = _port(api_port, "api_port")
    out = []
    for container in _sequence(containers, "containers"):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            raise StackCheckError("each container must be a mapping with a name, not %s" % _unnamed(container))
        name = container["name"]
        merged = _merged_env(container, common_env)
        address = merged.get("HTTP_CONTROL_SERVER_ADDRESS")
        address_port = str(address).rsplit(":", maxsplit=1)[-1]
        if address is not None and address_port != str(api_port):
            out.append(
                'GLUETUN_API_PORT (acestream_gluetun_api_port) is %d but Gluetun container \'%s\' sets '
                'HTTP_CONTROL_SERVER_ADDRESS=%s. Fix from the port guide ("Wrong GLUETUN_API_PORT"): "Verify '
                'GLUETUN_API_PORT matches HTTP_CONTROL_SERVER_ADDRESS. Use the internal port, not the external port." '
                "Remove HTTP_CONTROL_SERVER_ADDRESS from the container's env (the role writes :%d itself) or set "
                "acestream_gluetun_api_port to %s; the external port is api_host_port (%s)."
                % (api_port, name, address, api_port, address_port, container.get("api_host_port")))
        bad = env_variable_problems(merged, one_line=True)
        if bad:
            out.append("The env of Gluetun container '%s' has %d unusable variable(s): %s. Names are letters, digits "
                       "and '_'; values are single-line strings, numbers or booleans (an env file holds one KEY=value "
                       "per line)." % (name, len(bad), "; ".join(bad)))
    return out


# What the gluetun role writes into each container's environment itself: never secret, whatever their names.
GLUETUN_PUBLIC_ENV = ("HTTP_CONTROL_SERVER_ADDRESS", "HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH")


def split_secrets(env, secret_pattern, public=(), secret=()):
    """``(shown, hidden)``: the variables of ``env`` a record (the compose file) may show, and the sorted names of
    those it may not - those matching ``secret_pattern`` (acestream_secret_env_pattern) or listed in ``secret``,
    unless listed in ``public``."""
    env = _mapping(env, "env")
    try:
        pattern = re.compile(_text(secret_pattern, "secret_pattern"))
    except re.error as error:
        raise StackCheckError("secret_pattern is not a regular expression: %s" % error)
    hidden = sorted(key for key in env if key not in public and (key in secret or pattern.search(key)))
    return {key: env[key] for key in sorted(env) if key not in hidden}, hidden


def gluetun_instances(containers, plan, stack_dir, stack_name, env=None, api_bind="", port_range_bind="",
                      auth_toml=None, auth_dir=DEFAULT_AUTH_DIR, secret_pattern=None):
    """Each Gluetun container to converge, in the order of ``containers``.

    ``containers``: the stack's Gluetun containers (``name``, ``env``); ``plan``: their port plan with the control
    servers (acestream.orchestrator.port_plan with ``api_port``); ``env``: the environment of every container,
    each container's own ``env`` overriding it; ``auth_toml``: the control-server auth file's content, or null
    for a Gluetun release without authentication.

    Each entry: ``name``, ``index``, ``api_host_port``, ``range``, ``dir``, ``env_file``, ``auth_dir``,
    ``state_dir`` (its own, mounted at /gluetun: PIA's port-forwarding data, the servers list), ``env_shown`` and
    ``env_secrets`` (with ``secret_pattern``: what the compose record may show, the names it may not), ``env``
    (every value a string, booleans on/off, ``HTTP_CONTROL_SERVER_ADDRESS`` from the plan, the auth file's path
    when there is one), ``published`` (the control server's mapping from the plan, the engine range) and the
    container's stack_files entries: ``directories``, ``files`` (secrets as ``secret_content``) and ``absent``.
    """
    vpns = {vpn["name"]: vpn for vpn in _plan_vpns(plan)}
    stack_dir = _text(stack_dir, "stack_dir").rstrip("/")
    if not stack_dir:
        raise StackCheckError("stack_dir must be a directory path, not empty")
    stack_name = _text(stack_name, "stack_name")
    common_env = _mapping(env, "env")
    api_prefix = _bind_prefix(api_bind, "api_bind")
    range_prefix = _bind_prefix(port_range_bind, "port_range_bind")
    if auth_toml is not None:
        auth_toml = _text(auth_toml, "auth_toml") or None
    auth_dir = _text(auth_dir, "auth_dir").rstrip("/")
    out = []
    for container in _sequence(containers, "containers"):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str):
            raise StackCheckError("each container must be a mapping with a name, not %s" % _unnamed(container))
        name = container["name"]
        vpn = vpns.get(name)
        if vpn is None:
            raise StackCheckError("container '%s' is not in the port plan (%s): plan the same containers"
                                  % (name, ", ".join(vpns)))
        if not vpn.get("api_port_mapping"):
            raise StackCheckError("the port plan has no control servers: compute it with api_port "
                                  "(acestream.orchestrator.port_plan(..., api_port=...))")
        merged = _merged_env(container, common_env)
        values = {}
        for key, value in merged.items():
            try:
                values[key] = gluetun_env_value(key, value)
            except StackCheckError as error:
                raise StackCheckError("the env of Gluetun container '%s': %s" % (name, error))
        values["HTTP_CONTROL_SERVER_ADDRESS"] = vpn["control_server_address"]
        if auth_toml:
            values["HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH"] = auth_dir + "/config.toml"
        paths = vpn_paths(stack_dir, name)
        entry = {
            "name": name,
            "index": vpn["index"],
            "api_host_port": vpn["api_host_port"],
            "range": vpn["range"],
            "dir": paths["dir"],
            "env_file": paths["env_file"],
            "auth_dir": paths["auth_dir"],
            "state_dir": paths["state_dir"],
            "env": values,
            "published": [api_prefix + vpn["api_port_mapping"], "%s%s:%s" % (range_prefix, vpn["range"], vpn["range"])],
        }
        if secret_pattern is not None:
            entry["env_shown"], entry["env_secrets"] = split_secrets(values, secret_pattern, public=GLUETUN_PUBLIC_ENV)
        entry["directories"] = [{"path": paths["dir"], "mode": "0700"}, {"path": paths["state_dir"], "mode": "0700"}]
        entry["files"] = [{"path": entry["env_file"], "mode": "0600",
                           "secret_content": gluetun_env_text(name, stack_name, values)}]
        entry["absent"] = []
        if auth_toml:
            entry["directories"].append({"path": entry["auth_dir"], "mode": "0700"})
            entry["files"].append({"path": paths["auth_file"], "mode": "0600",
                                   "secret_content": auth_toml})
        else:
            entry["absent"].append(entry["auth_dir"])
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------- the orchestrator app
def _app_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).strip()


def _app_label(pool):
    try:
        return container_label(pool)
    except AppError as exc:
        raise StackCheckError(str(exc))


def orchestrator_app_env(plan, vpn_mode, api_port, port_range_host="", https_port_range="45000-49999", replicas=0,
                         docker_network="", engine_variant=None, env=None, pool=None):
    """The orchestrator app's environment (every value a string; booleans true/false), derived from the port plan:
    APP_PORT, VPN_MODE, GLUETUN_CONTAINER_NAME(_2), GLUETUN_API_PORT, PORT_RANGE_HOST (the plan's span when
    ``port_range_host`` is empty), GLUETUN_PORT_RANGE_1(_2), ACE_HTTPS_RANGE, MIN/MAX_REPLICAS, DOCKER_NETWORK,
    ENGINE_VARIANT when given and, with ``pool``, CONTAINER_LABEL (the stack's own label for the app's engines) and
    VPN_UNHEALTHY_RESTART_TIMEOUT_S out of reach (the app never restarts the stack's Gluetun containers);
    ``env`` overrides any of them but, with ``pool``, what the collection sets (``_orchestrator_app.env_problems``)."""
    vpns = _plan_vpns(plan)
    replicas = _app_value(replicas)
    if not ascii_digits(replicas):
        raise StackCheckError("replicas must be a whole number, 0 or more, not %r" % (replicas,))
    port_range_host = _app_value(port_range_host)
    out = {
        "APP_PORT": "8000",
        "VPN_MODE": _app_value(vpn_mode),
        "GLUETUN_CONTAINER_NAME": vpns[0]["name"],
        "GLUETUN_API_PORT": str(_port(api_port, "api_port")),
        "PORT_RANGE_HOST": port_range_host or "%d-%d" % (min(int(v["start"]) for v in vpns),
                                                         max(int(v["end"]) for v in vpns)),
        "GLUETUN_PORT_RANGE_1": vpns[0]["range"],
        "ACE_HTTPS_RANGE": _app_value(https_port_range),
        "MIN_REPLICAS": replicas,
        "MAX_REPLICAS": str(max(int(replicas), 1)),
        "DOCKER_NETWORK": _app_value(docker_network),
    }
    if len(vpns) > 1:
        out.update({"GLUETUN_CONTAINER_NAME_2": vpns[1]["name"], "GLUETUN_PORT_RANGE_2": vpns[1]["range"]})
    if engine_variant is not None:
        out["ENGINE_VARIANT"] = _app_value(engine_variant)
    if pool is not None:  # the collection's stack: the app never restarts its Gluetun containers
        out[GLUETUN_RESTART_ENV] = GLUETUN_RESTART_NEVER
    env = _mapping(env, "env")
    problems = env_problems(env, "env", one_line=True)
    if pool is not None:
        problems.extend(app_env_problems(env, _app_label(pool)))
    if problems:
        raise StackCheckError("; ".join(problems))
    for key, value in env.items():
        out[key] = _app_value(value)
    if pool is not None:
        out["CONTAINER_LABEL"] = _app_label(pool)
    return out


# --------------------------------------------------------------------------------------- what changed
def _env_items(value):
    if isinstance(value, dict):
        return {"%s=%s" % (key, item) for key, item in value.items()}
    return {str(item) for item in value or []}


def container_changes(results):
    """``[{container, changes}]`` for each changed docker_container result (``results`` of a loop), from its diff:
    ``created``, ``started``, ``env: NAMES (values not shown)``, ``labels: NAME=VALUE, ...`` or ``KEY: BEFORE ->
    AFTER``. No value of the environment ever appears."""
    out = []
    for result in _sequence(results, "results"):
        if not isinstance(result, dict):
            raise StackCheckError("each result must be a mapping as docker_container registers it, not %s"
                                  % kind_of(result))
        if not result.get("changed"):
            continue
        item = result.get("item")
        container = item.get("name") if isinstance(item, dict) else item
        if container is None:
            container = (result.get("container") or {}).get("Name", "?").lstrip("/")
        diff = result.get("diff") or {}
        before, after = diff.get("before") or {}, diff.get("after") or {}
        lines = []
        if "exists" in before and not before["exists"]:
            lines.append("created")
        else:
            for key in sorted(after):
                if key == "env":
                    old, new = _env_items(before.get("env")), _env_items(after.get("env"))
                    names = sorted({entry.split("=", 1)[0] for entry in old ^ new})
                    if names:
                        lines.append("env: %s (values not shown)" % ", ".join(names))
                elif key == "labels":
                    old, new = before.get("labels") or {}, after.get("labels") or {}
                    changed = ["%s=%s" % (name, new[name]) for name in new if old.get(name) != new[name]]
                    if changed:
                        lines.append("labels: %s" % ", ".join(changed))
                elif key not in ("exists", "running"):
                    old, new = json.dumps(before.get(key), default=str), json.dumps(after[key], default=str)
                    lines.append("%s: %s -> %s" % (key, old, new))
            if not lines:
                lines.append("started")
        out.append({"container": str(container), "changes": lines})
    return out


# --------------------------------------------------------------------------------------- the variables as given
# What a variable of each argument-spec type must be, as the roles use it: the roles read the variables themselves
# (validate_argument_spec checks a value but hands the role nothing converted), so a list given as an API key would
# reach Gluetun as "['a', 'b']". Nothing is converted here either: a value that would need converting is refused.
TYPE_WANTED = {
    "str": "a string ('' for none)",
    "path": "a path as a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "dict": "a mapping ({} for none)",
    "list": "a list ([] for none)",
}
INT_RE = re.compile(r"-?[0-9]+\Z")
FLOAT_RE = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
# The variables listing containers the roles create, and the key of each item's container name.
CONTAINER_VARIABLES = {"acestream_gluetun_containers": "name"}
# Docker's rule for the name of a container it creates (daemon/names: ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$, so two
# characters at least; no length limit). \Z, not $: "$" matches before a final newline.
DOCKER_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
# The most bytes one file name may hold (Linux NAME_MAX): the gluetun role keeps a container's files in the
# directory <acestream_stack_dir>/gluetun/<name>.
NAME_MAX = 255


def gluetun_name_problem(name):
    """Why ``name`` cannot be the name of a Gluetun container the gluetun role creates, as words to follow the
    variable's name, with the fix; None when it can (or when it is not a string: the type check names that).
    Docker refuses what does not match ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``; the role's directory
    ``<acestream_stack_dir>/gluetun/<name>`` cannot be longer than NAME_MAX bytes. Checked before anything is
    written: Docker, or the file system, would otherwise refuse it after the stack directory and its keys are."""
    if not isinstance(name, str):
        return None
    fix = "e.g. gluetun1 (the port guide's GLUETUN_CONTAINER_NAME)"
    if not DOCKER_NAME_RE.match(name):
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "..."
        return ("is %s, which Docker refuses as a container name: use letters, digits, '_', '.' and '-', starting with "
                "a letter or digit, two characters at least ([a-zA-Z0-9][a-zA-Z0-9_.-]+), %s" % (shown, fix))
    if len(name.encode("utf-8")) > NAME_MAX:
        return ("is %d characters long: the gluetun role keeps the container's files in <acestream_stack_dir>/gluetun/"
                "<name>, and a file name holds at most %d bytes (NAME_MAX): give it a name of at most %d characters, "
                "%s" % (len(name), NAME_MAX, NAME_MAX, fix))
    return None


def _shown(value, secret):
    """How a message shows a value: never when it is secret; else its repr, shortened."""
    if secret:
        return ""
    text = repr(value)
    return " (%s)" % (text if len(text) <= 60 else text[:57] + "...")


def _type_problem(value, kind, secret):
    """Why ``value`` is not what an option of type ``kind`` takes as the roles use it, or None."""
    if kind not in TYPE_WANTED:
        return None
    wanted = TYPE_WANTED[kind]
    if value is None:
        return "is null (a key with no value): give %s" % wanted
    if isinstance(value, bool) != (kind == "bool"):
        if kind == "bool" and isinstance(value, str):
            return ("is a string, not a boolean: give true or false (on the command line as JSON, e.g. "
                    "-e '{\"acestream_orchestrator_enabled\": true}')")
        return "must be %s, not %s%s" % (wanted, "a boolean" if isinstance(value, bool) else kind_of(value),
                                         _shown(value, secret))
    if kind in ("str", "path"):
        if isinstance(value, (int, float)):
            return "must be %s, not %s%s: quote it" % (wanted, kind_of(value), _shown(value, secret))
        if not isinstance(value, str):
            return "must be %s, not %s%s" % (wanted, kind_of(value), _shown(value, secret))
        if CONTROL_CHARACTER_RE.search(value):
            return ("holds a control character (a newline, tab or NUL): remove it (a YAML '|' block ends in a "
                    "newline: write '|-' or a plain string)")
        return None
    if kind == "int":
        if isinstance(value, int) or (isinstance(value, str) and INT_RE.match(value.strip())):
            return None
        return _number_problem(value, "a whole number", secret)
    if kind == "float":
        if isinstance(value, (int, float)) and math.isfinite(value):
            return None
        if isinstance(value, str) and FLOAT_RE.match(value.strip()):
            return None
        return _number_problem(value, "a number", secret)
    if kind == "dict" and not isinstance(value, dict):
        return "must be %s, not %s%s" % (wanted, kind_of(value), _shown(value, secret))
    if kind == "list" and not isinstance(value, (list, tuple)):
        return "must be %s, not %s%s" % (wanted, kind_of(value), _shown(value, secret))
    return None


def _number_problem(value, wanted, secret):
    if isinstance(value, float) and not math.isfinite(value):
        return "is %s, not a finite number: give %s" % ("NaN" if math.isnan(value) else "infinite", wanted)
    if isinstance(value, str) and any(char.isdigit() and not "0" <= char <= "9" for char in value):
        return "must be %s written with the digits 0-9, not other digits%s" % (wanted, _shown(value, secret))
    return "must be %s, not %s%s" % (wanted, kind_of(value), _shown(value, secret))


def _option_problems(field, value, spec, secret):
    kind = spec.get("type", "str")
    secret = secret or bool(spec.get("no_log"))
    # A value is shown only for a scalar option that is not secret (a mapping or list option may hold an env).
    problem = _type_problem(value, kind, secret or kind in ("dict", "list"))
    if problem:
        return ["%s %s" % (field, problem)]
    out = []
    choices = spec.get("choices")
    if choices and kind not in ("list", "dict") and value not in choices:
        return ["%s must be one of %s, not %s" % (field, ", ".join(str(choice) for choice in choices),
                                                  "this value" if secret else repr(value))]
    if kind == "list":
        element = dict(spec, type=spec.get("elements", "raw"))
        element.pop("elements", None)
        element.pop("default", None)
        for index, item in enumerate(value):
            out.extend(_option_problems("%s[%d]" % (field, index), item, element, secret))
    elif kind == "dict" and isinstance(spec.get("options"), dict):
        options = spec["options"]
        unknown = sorted(str(key) for key in value if key not in options)
        if unknown:
            out.append("%s has %s, which the roles do not read: remove %s (an item takes %s)"
                       % (field, ", ".join(unknown), "it" if len(unknown) == 1 else "them", ", ".join(options)))
        for key, option in options.items():
            if key in value:
                out.extend(_option_problems("%s.%s" % (field, key), value[key], option, secret))
            elif option.get("required"):
                what = str(option.get("description", "")).rstrip(".")
                out.append("%s has no %s: give it%s" % (field, key, ", the " + what[:1].lower() + what[1:] if what else ""))
    return out


def variable_problems(names, values, specs, envs=None, patterns=(), credentials=(), containers=None):
    """What the roles' variables cannot be, one message each naming the variable (values of ``no_log`` options
    never shown). ``names`` and ``values``: the variables set, in the same order; ``specs``: the roles' argument
    specs (name -> option). Each value must be of its option's type as given, without conversion (ints and numbers
    may be strings of the digits 0-9, as ``-e`` gives them; strings hold no control character); ``envs``: variables
    holding an environment (name -> true when it is written to an env file, one line a variable); ``patterns``:
    variables holding a regular expression; ``credentials``: variables holding an API key sent in a request header
    (checked as the Gluetun client checks one, never shown); ``containers``: variables listing Gluetun containers
    the roles create (name -> the key of each item's name, CONTAINER_VARIABLES when None), each name checked by
    ``gluetun_name_problem`` and named as ``<variable>[N].<key>``. ``[]`` when all is well."""
    names, values = _sequence(names, "names"), _sequence(values, "values")
    if len(names) != len(values):
        raise StackCheckError("names and values must be lists of the same length")
    specs = _mapping(specs, "specs")
    envs = _mapping(envs, "envs")
    patterns = set(_sequence(patterns, "patterns"))
    credentials = set(_sequence(credentials, "credentials"))
    containers = CONTAINER_VARIABLES if containers is None else _mapping(containers, "containers")
    out = []
    for name, value in zip(names, values):
        spec = specs.get(name)
        if not isinstance(spec, dict):
            continue
        problems = _option_problems(name, value, spec, False)
        out.extend(problems)
        if problems:
            continue
        if name in envs:
            out.extend(env_problems(value, name, one_line=bool(envs[name])))
        if name in credentials and credential_problem("api_key", value):
            out.append("%s %s" % (name, credential_problem("api_key", value)))
        if name in patterns:
            try:
                re.compile(value)
            except re.error as error:
                out.append("%s is not a regular expression (%s): fix it, e.g. '(?i)(KEY|PASS|SECRET)'" % (name, error))
        if name in containers and isinstance(value, (list, tuple)):
            key = containers[name]
            for index, item in enumerate(value):
                problem = gluetun_name_problem(item.get(key)) if isinstance(item, dict) else None
                if problem:
                    out.append("%s[%d].%s %s" % (name, index, key, problem))
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


# --------------------------------------------------------------------------------------- the engines role's pool
# The engines role's variables behind each engine_pool option, for the preflight's messages.
POOL_VARIABLES = {
    "name": "acestream_pool_name",
    "replicas": "acestream_engine_replicas",
    "vpn_containers": "acestream_gluetun_containers",
    "port_range": "acestream_port_range_host",
    "vpn_port_ranges": "acestream_vpn_port_ranges",
    "https_port_range": "acestream_engine_https_port_range",
    "engine_variant": "acestream_engine_variant",
    "image": "acestream_engine_image",
    "env": "acestream_engine_env",
    "forwarded_port": "acestream_engine_forwarded_port",
    "api_port": "acestream_gluetun_api_port",
    "api_key": "acestream_gluetun_api_key",
    "on_unhealthy_vpn": "acestream_engine_on_unhealthy_vpn",
}


def engine_pool_problems(vpn_names, **options):
    """What engine_pool would refuse in the options the engines role gives it (``options``: engine_pool's, by
    its option names), before the Gluetun containers are touched: the very validation engine_pool makes (the
    reserved ports inside the VPNs' namespaces, the engine environment, the credentials ...). ``[]`` when none;
    else one message naming the role's variable and engine_pool's option."""
    unknown = sorted(set(options) - set(POOL_VARIABLES))
    if unknown:
        raise StackCheckError("engine_pool_problems takes only %s, not %s" % (", ".join(POOL_VARIABLES),
                                                                              ", ".join(unknown)))
    params = {key: spec.get("default") for key, spec in POOL_ARGUMENT_SPEC.items()}
    params.update((key, value) for key, value in options.items() if value not in (None, ""))
    params["vpn_containers"] = vpn_names
    for key in ("replicas", "api_port"):
        try:
            params[key] = int(params[key])
        except (TypeError, ValueError):
            return []  # variable_problems names it
    try:
        validate_pool(params)
    except PortPlanError as error:
        root = str(error.field).split(".", maxsplit=1)[0].split("[", maxsplit=1)[0]
        variable = POOL_VARIABLES.get(root)
        where = "%s (engine_pool's %s)" % (variable, error.field) if variable else str(error.field)
        return ["The engines role cannot converge this pool: %s: %s" % (where, error.message)]
    return []


# --------------------------------------------------------------------------------------- labels that reveal nothing
def config_hash(content, key):
    """A label value that changes with ``content`` (the auth file, which holds the API key, and what else a
    container cannot show by itself) and reveals nothing of it: HMAC-SHA256 keyed with ``key``, a random secret
    kept in the stack's 0600 files, so that no one who reads labels can test guesses offline. 16 hex digits."""
    content, key = _text(content, "content"), _text(key, "key")
    if not key:
        raise StackCheckError("the hash key is empty: generate one (it is kept in the stack directory, mode 0600)")
    return hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
