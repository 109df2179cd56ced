# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each Gluetun container of the stack as the gluetun role converges it: what its environment cannot be, its env file
and auth file, its published ports, the variables the compose record may show, and the keyed hash that labels what
the container cannot show by itself.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._env import (
    env_name_problem,
    env_value_problem,
    variable_problems as env_variable_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    GLUETUN_AUTH_DIR,
    GLUETUN_MANAGER,
    GLUETUN_STATE_PATH,
    LABEL_CONFIG_HASH,
    LABEL_GLUETUN_INDEX,
    LABEL_GLUETUN_RELEASE,
    LABEL_MANAGED_BY,
    LABEL_POOL,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import vpn_paths
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import (
    StackCheckError,
    _bind_prefix,
    _mapping,
    _plan_vpns,
    _port,
    _sequence,
    _text,
    _unnamed,
)


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
    # Sorted regardless of case, as the compose record always listed them (Jinja's sort).
    keys = sorted(env, key=lambda key: str(key).lower())
    hidden = [key for key in keys if key not in public and (key in secret or pattern.search(key))]
    return {key: env[key] for key in keys if key not in hidden}, hidden


def gluetun_instances(containers, plan, stack_dir, stack_name, env=None, api_bind="", port_range_bind="",
                      auth_toml=None, auth_dir=GLUETUN_AUTH_DIR, secret_pattern=None, release=None, healthcheck=None,
                      config_hash_key=None):
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

    With ``config_hash_key`` (the kept key of the config-hash label), ``release`` (the Gluetun release the auth file
    is written for) and ``healthcheck`` (acestream_gluetun_healthcheck), also the container's ``labels`` and
    ``mounts`` as docker_container takes them: its state directory at /gluetun, the auth file's directory read-only
    inside it, and the labels that make it the stack's, with the keyed hash of what it cannot show by itself (the
    auth file's content, which Gluetun reads only at start, the healthcheck given, the release).
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
        if config_hash_key is not None:
            entry["mounts"] = [{"type": "bind", "source": paths["state_dir"], "target": GLUETUN_STATE_PATH}]
            if auth_toml:
                entry["mounts"].append({"type": "bind", "source": paths["auth_dir"], "target": auth_dir,
                                        "read_only": True})
            hashed = (auth_toml or "") + json.dumps(healthcheck or {}) + _text(release, "release")
            entry["labels"] = {LABEL_MANAGED_BY: GLUETUN_MANAGER, LABEL_POOL: stack_name,
                               LABEL_GLUETUN_RELEASE: release, LABEL_GLUETUN_INDEX: str(vpn["index"]),
                               LABEL_CONFIG_HASH: config_hash(hashed, config_hash_key)}
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------- labels that reveal nothing
def config_hash(content, key):
    """A label value that changes with ``content`` (the auth file, which holds the API key, and what else a
    container cannot show by itself) and reveals nothing of it: HMAC-SHA256 keyed with ``key``, a random secret
    kept in the stack's 0600 files, so that no one who reads labels can test guesses offline. 16 hex digits."""
    content, key = _text(content, "content"), _text(key, "key")
    if not key:
        raise StackCheckError("the hash key is empty: generate one (it is kept in the stack directory, mode 0600)")
    return hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
