# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's variables as given: each value of the type its declaration says, as the roles use it (nothing is
converted), environments, patterns and credentials checked, and what engine_pool would refuse in the engines role's
options, each message naming the variable and never showing a secret value.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

import math
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._env import env_problems
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import credential_problem
from ansible_collections.acestream.orchestrator.plugins.module_utils._pool_options import (
    POOL_ARGUMENT_SPEC,
    validate_pool,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import (
    StackCheckError,
    _mapping,
    _sequence,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import CONTROL_CHARACTER_RE, kind_of


# --------------------------------------------------------------------------------------- the playbooks' hosts
def host_pattern(value):
    """acestream_hosts, the hosts a playbook of the collection runs on, checked: a non-empty host pattern (a string,
    or a list of them) without control characters, returned as given; raises StackCheckError naming the variable."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise StackCheckError("acestream_hosts must be a host pattern such as 'all', 'acestream' or "
                                  "'acestream:&prod' (or a list of them), not %s: set it to the inventory group or "
                                  "hosts to run on" % ("an empty string" if isinstance(item, str) else kind_of(item)))
        if CONTROL_CHARACTER_RE.search(item):
            raise StackCheckError("acestream_hosts contains a control character (a line break or tab pasted with "
                                  "it?): give the host pattern alone, e.g. 'acestream'")
    if not items:
        raise StackCheckError("acestream_hosts is an empty list: give a host pattern such as 'all' or 'acestream'")
    return value


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
