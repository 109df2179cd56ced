# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack model: one host's inventory variables, resolved once, as every entry point reads them.

``resolve(given)`` takes the ``acestream_*`` variables a host sets (templated; the undeclared ones are ignored),
applies the defaults of the one declaration (``_stack_variables``) whichever roles a playbook loads, and returns
the resolved stack: every variable, the port plan, the Gluetun containers, the engine pool's options, the
orchestrator app's deployment and environment, the names the stack owns, the paths of its files and every problem,
worded as the preflight has always worded it. The same inputs always give the same result; nothing here reads
the target (what only the target can tell, the images' releases, the containers that exist, the kept keys, is
added by the roles).

The acestream.orchestrator.stack_model filter hands it to the roles (role common resolves it first on every entry
point); the keep_converged rulebook's event source resolves its stacks with it too. Private to this collection.
"""

from __future__ import annotations

import copy
import posixpath
import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_release import (
    ReleaseError,
    decide as gluetun_release,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import (
    AppError,
    deployment,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    APP_API_PORT,
    APP_CUSTOM_VARIANT_PATH,
    APP_ENGINE_HOST_PORTS,
    APP_SETTINGS_PATH,
    ENGINE_HOST_PORTS,
    GLUETUN_AUTH_DIR,
    GLUETUN_STATE_PATH,
    ROLE_LABELS,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError, build_plan
from ansible_collections.acestream.orchestrator.plugins.module_utils._app_stack import orchestrator_app_env
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_stack import (
    gluetun_env_problems,
    split_secrets,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._host_ports import host_port_conflicts
from ansible_collections.acestream.orchestrator.plugins.module_utils._ownership import name_collisions
from ansible_collections.acestream.orchestrator.plugins.module_utils._plan_messages import port_plan_message
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_input import (
    engine_pool_problems,
    variable_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_reshape import vpn_paths
from ansible_collections.acestream.orchestrator.plugins.plugin_utils._stack_variables import VARIABLES

# A default naming another variable ("/opt/acestream/{{ acestream_pool_name }}"), resolved with that variable.
_REFERENCE_RE = re.compile(r"\{\{\s*(acestream_[a-z0-9_]+)\s*\}\}")
# The app's API key variable, which the role adds to its environment.
APP_API_KEY_ENV = "API_KEY"


class StackModelError(AcestreamError, ValueError):
    """Input the model cannot read at all (not a mapping of variables)."""


def declared(kind):
    """The declared variables with the model key ``kind`` (``environment``, ``pattern``, ``credential``,
    ``container_name``): name -> its value."""
    return {name: spec[kind] for name, spec in VARIABLES.items() if kind in spec}


def with_defaults(given):
    """Every declared variable: the given value, else its declared default (a default naming another variable
    resolved with that variable's value). Copies: the result can be changed without touching either."""
    values = {name: copy.deepcopy(given[name] if name in given else spec.get("default"))
              for name, spec in VARIABLES.items()}
    for name in VARIABLES:
        if name not in given and isinstance(values[name], str):
            values[name] = _REFERENCE_RE.sub(lambda match: str(values.get(match.group(1), "")), values[name])
    return values


def _variable_problems(given, values):
    names = [name for name in VARIABLES if name in given]
    envs = {name: kind == "file" for name, kind in declared("environment").items()}
    problems = variable_problems(names, [values[name] for name in names], VARIABLES, envs=envs,
                                 patterns=list(declared("pattern")), credentials=list(declared("credential")),
                                 containers=declared("container_name"))
    return ["%s." % problem.rstrip(".") for problem in problems]


def _containers(values):
    """acestream_gluetun_containers with each item's declared defaults (``env``: {})."""
    options = VARIABLES["acestream_gluetun_containers"]["options"]
    out = []
    for item in values["acestream_gluetun_containers"]:
        container = {key: copy.deepcopy(option["default"]) for key, option in options.items() if "default" in option}
        container.update(item)
        out.append(container)
    return out


def _mode_problems(values, names):
    mode, count = values["acestream_vpn_mode"], len(names)
    out = []
    if mode == "single" and count != 1:
        out.append("VPN_MODE=single (acestream_vpn_mode) takes exactly one Gluetun container (GLUETUN_CONTAINER_NAME), "
                   "but acestream_gluetun_containers lists %d: %s. Keep one, or set acestream_vpn_mode: redundant to "
                   "split PORT_RANGE_HOST between them." % (count, ", ".join(names)))
    if mode == "redundant" and count < 2:
        out.append('VPN_MODE=redundant (acestream_vpn_mode) needs a second Gluetun container, but only %s is '
                   'configured. Fix from the port guide: "Configuration Missing: Verify GLUETUN_CONTAINER_NAME_2 is '
                   'configured": add a second item (name, api_host_port, env) to acestream_gluetun_containers, or set '
                   'acestream_vpn_mode: single.' % (", ".join(names) or "none"))
    for name in sorted(set(names), key=names.index):
        if names.count(name) > 1:
            out.append("The Gluetun container name '%s' is given more than once in acestream_gluetun_containers%s. "
                       "Each VPN is its own container: give it its own name (the guide's best practice: gluetun1, "
                       "gluetun2)." % (name, " (GLUETUN_CONTAINER_NAME_2 repeats GLUETUN_CONTAINER_NAME)"
                                       if name == names[0] else ""))
    return out


def _pool(values, names):
    """engine_pool's options, by its option names, from the stack's variables (empty strings: the module's own
    default)."""
    return {
        "name": values["acestream_pool_name"],
        "replicas": values["acestream_engine_replicas"],
        "vpn_containers": names,
        "port_range": values["acestream_port_range_host"],
        "vpn_port_ranges": values["acestream_vpn_port_ranges"],
        "https_port_range": values["acestream_engine_https_port_range"],
        "engine_variant": values["acestream_engine_variant"],
        "image": values["acestream_engine_image"],
        "env": values["acestream_engine_env"],
        "forwarded_port": values["acestream_engine_forwarded_port"],
        "api_port": values["acestream_gluetun_api_port"],
        "on_unhealthy_vpn": values["acestream_engine_on_unhealthy_vpn"],
    }


def _paths(values, names):
    stack_dir = str(values["acestream_stack_dir"]).rstrip("/") or "/"
    app_dir = stack_dir + "/orchestrator"
    return {
        "stack_dir": stack_dir,
        "gluetun_dir": stack_dir + "/gluetun",
        "gluetun_api_key": stack_dir + "/gluetun-api-key",
        "config_hash_key": stack_dir + "/gluetun/config-hash-key",
        "compose": stack_dir + "/docker-compose.yml",
        "vpns": {name: vpn_paths(stack_dir, name) for name in names},
        # Inside each Gluetun container: its state directory and the auth file's directory, mounted read-only.
        "gluetun_state_mount": GLUETUN_STATE_PATH,
        "gluetun_auth_mount": GLUETUN_AUTH_DIR,
        "app_dir": app_dir,
        "app_env_file": stack_dir + "/orchestrator.env",
        "app_api_key": stack_dir + "/orchestrator-api-key",
        "app_settings": app_dir + "/engine_settings.json",
        "app_custom_variant": app_dir + "/custom_engine_variant.json",
        # The files each side of the stack writes besides each VPN's, removed by name with the stack.
        # The keys the stack generates and keeps, read on the target by every entry point (role common).
        "kept_keys": [stack_dir + "/gluetun-api-key", stack_dir + "/gluetun/config-hash-key",
                      stack_dir + "/orchestrator-api-key"],
        "gluetun_files": [stack_dir + "/gluetun/config-hash-key", stack_dir + "/gluetun-api-key",
                          stack_dir + "/docker-compose.yml"],
        # Every path the gluetun role's files are written to when the stack is as declared, read (kind, mode, keyed
        # digest) by every entry point: the role writes its files only when one of them is not in place.
        "gluetun_states": [stack_dir, stack_dir + "/gluetun", stack_dir + "/gluetun/config-hash-key",
                           stack_dir + "/gluetun-api-key", stack_dir + "/docker-compose.yml"]
        + [vpn[key] for vpn in (vpn_paths(stack_dir, name) for name in names)
           for key in ("dir", "state_dir", "env_file", "auth_dir", "auth_file")],
        "app_files": [stack_dir + "/orchestrator.env", stack_dir + "/orchestrator-api-key",
                      app_dir + "/engine_settings.json", app_dir + "/custom_engine_variant.json"],
    }


def _compose(values, names, paths):
    """What the compose record names: the project (Compose's rule: lower-case letters, digits, '-' and '_'), each
    Gluetun container's env file and volumes relative to the stack directory where the record lies, and the app's
    published port."""
    stack_dir = paths["stack_dir"]

    def relative(path):
        return posixpath.relpath(path, stack_dir)

    bind = values["acestream_orchestrator_bind"]
    return {
        "project": re.sub(r"[^a-z0-9_-]", "-", str(values["acestream_pool_name"]).lower()),
        "vpns": {name: {
            "env_file": relative(paths["vpns"][name]["env_file"]),
            "state_volume": "./%s:%s" % (relative(paths["vpns"][name]["state_dir"]), GLUETUN_STATE_PATH),
            "auth_volume": "./%s:%s:ro" % (relative(paths["vpns"][name]["auth_dir"]), GLUETUN_AUTH_DIR),
        } for name in names},
        "app_env_file": relative(paths["app_env_file"]),
        "app_port": "%s%s:%d" % (bind + ":" if bind else "", values["acestream_orchestrator_port"], APP_API_PORT),
    }


def _app_host(bind):
    """Where the controller's and the target's requests reach the app's published port."""
    if bind in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return "[%s]" % bind if ":" in bind else bind


def resolve(given):
    """The resolved stack of one host from the ``acestream_*`` variables it sets (see the module's text)."""
    if not isinstance(given, dict):
        raise StackModelError("the stack model takes a mapping of variable name to value, not %s"
                              % type(given).__name__)
    given = {name: value for name, value in given.items() if name in VARIABLES}
    values = with_defaults(given)
    problems = _variable_problems(given, values)
    model = {"vars": values, "problems": problems, "labels": dict(ROLE_LABELS), "state": values["acestream_state"], "vpn_names": [],
             "gluetun_instances": [], "containers": [], "plan": None, "pool": None, "app": None, "app_env": None,
             "owned": None, "paths": None, "app_env_shown": None, "app_env_secrets": None, "app_paths": None, "app_url": None, "release_images": [],
             "orchestrator_host_port": {}, "compose": None}
    if problems:  # the rest reads the variables as their types say
        return model
    containers = _containers(values)
    names = [container["name"] for container in containers]
    app_on = values["acestream_orchestrator_enabled"]
    pool = _pool(values, names)
    model.update({
        "vpn_names": names,
        "containers": containers,
        # The control servers as gluetun_status takes them (each found from its container).
        "gluetun_instances": [{"name": name} for name in names],
        "pool": pool,
        "paths": _paths(values, names),
        # What the stack owns, by its labels: its Gluetun containers, the app when on, and the engine slots of
        # the plan when the engines are the pool's (null while the app provisions them).
        "owned": {"pool": values["acestream_pool_name"], "gluetun": names,
                  "app": values["acestream_orchestrator_name"] if app_on else None, "engines_plan": None},
        "orchestrator_host_port": {"name": values["acestream_orchestrator_name"],
                                   "port": values["acestream_orchestrator_port"],
                                   "bind": values["acestream_orchestrator_bind"]} if app_on else {},
        # The app's settings files inside its container, where the host's are mounted.
        "app_paths": {"settings": APP_SETTINGS_PATH, "custom_variant": APP_CUSTOM_VARIANT_PATH},
        "app_url": "http://%s:%s" % (_app_host(values["acestream_orchestrator_bind"]),
                                     values["acestream_orchestrator_port"]),
    })
    model["compose"] = _compose(values, names, model["paths"])
    if values["acestream_state"] != "present":
        return model
    model["release_images"] = _release_images(values, problems)
    problems.extend(_mode_problems(values, names))
    try:
        problems.extend(gluetun_env_problems(containers, env=values["acestream_gluetun_env"],
                                             api_port=values["acestream_gluetun_api_port"]))
    except StackCheckError as error:
        problems.append("acestream_gluetun_containers: %s." % error)
    plan = _plan(values, names, app_on, problems)
    model["plan"] = plan
    model["owned"]["engines_plan"] = None if app_on else plan
    if plan is not None:
        problems.extend(name_collisions(plan, values["acestream_pool_name"],
                                        app_name=values["acestream_orchestrator_name"] if app_on else None))
    if plan is not None:  # a refused plan is refused by the pool too: one message for it
        problems.extend(engine_pool_problems(names, api_key=values["acestream_gluetun_api_key"],
                                             **{key: value for key, value in pool.items() if key != "vpn_containers"}))
        try:
            problems.extend(host_port_conflicts(plan, api_bind=values["acestream_gluetun_api_bind"],
                                                port_range_bind=values["acestream_port_range_bind"],
                                                orchestrator=model["orchestrator_host_port"]))
        except StackCheckError as error:  # the app's port: the control servers' and engines' are the plan's
            problems.append("acestream_orchestrator_port: %s." % str(error).rstrip("."))
    if app_on:
        _app(values, names, plan, model, problems)
    return model


def _release_images(values, problems):
    """The images whose release the roles read from their labels on the target: Gluetun's, the app's when on."""
    images = []
    try:
        images.append(gluetun_release(values["acestream_gluetun_image"])["reference"])
    except ReleaseError as error:
        problems.append("%s." % error)
    if values["acestream_orchestrator_enabled"]:
        try:
            images.append(deployment(values["acestream_orchestrator_image"], values["acestream_pool_name"],
                                     0)["reference"])
        except AppError as error:
            problems.append("%s." % error)
    return images


def _plan(values, names, app_on, problems):
    try:
        return build_plan(names, port_range=values["acestream_port_range_host"],
                          vpn_port_ranges=values["acestream_vpn_port_ranges"],
                          replicas=values["acestream_engine_replicas"],
                          https_port_range=values["acestream_engine_https_port_range"],
                          api_port=values["acestream_gluetun_api_port"],
                          api_host_ports=[container["api_host_port"] for container in values[
                              "acestream_gluetun_containers"]],
                          ports_per_engine=APP_ENGINE_HOST_PORTS if app_on else ENGINE_HOST_PORTS).to_dict()
    except PortPlanError as error:
        problems.append(port_plan_message(error))
        return None


def _app(values, names, plan, model, problems):
    if len(names) > 2:
        problems.append("The orchestrator app (acestream_orchestrator_enabled) knows one Gluetun container "
                        "(VPN_MODE=single) or two (VPN_MODE=redundant: GLUETUN_CONTAINER_NAME and "
                        "GLUETUN_CONTAINER_NAME_2), but acestream_gluetun_containers lists %d. Keep two, or leave the "
                        "engines to the engines role (acestream_orchestrator_enabled: false)." % len(names))
    try:
        app = deployment(values["acestream_orchestrator_image"], values["acestream_pool_name"],
                         values["acestream_engine_replicas"], override=values["acestream_orchestrator_release"],
                         engine_variant=values["acestream_engine_variant"],
                         app_variant_name=values["acestream_orchestrator_engine_variant"],
                         engine_image=values["acestream_engine_image"], app_env=values["acestream_orchestrator_env"])
    except (AppError, ReleaseError) as error:
        problems.append("%s." % str(error).rstrip("."))
        return
    model["app"] = app
    problems.extend(app["problems"])
    if plan is None or not app["variant"]:
        return
    try:
        model["app_env"] = orchestrator_app_env(
            plan, values["acestream_vpn_mode"], values["acestream_gluetun_api_port"],
            port_range_host=values["acestream_port_range_host"],
            https_port_range=values["acestream_engine_https_port_range"],
            replicas=values["acestream_engine_replicas"], docker_network=values["acestream_docker_network"],
            engine_variant=app["variant"], env=values["acestream_orchestrator_env"],
            pool=values["acestream_pool_name"])
    except StackCheckError as error:
        problems.append("acestream_orchestrator_env: %s." % error)
        return
    # What the compose record may show of it; API_KEY, added by the role, is always hidden.
    model["app_env_shown"], model["app_env_secrets"] = split_secrets(
        model["app_env"], values["acestream_secret_env_pattern"], secret=(APP_API_KEY_ENV,))
    model["app_env_secrets"] = [APP_API_KEY_ENV] + [key for key in model["app_env_secrets"] if key != APP_API_KEY_ENV]
