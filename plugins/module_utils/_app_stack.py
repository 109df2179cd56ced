# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator app's environment, derived from the port plan and the stack's variables (the port guide's
``.env`` for the app).

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.module_utils._env import env_problems
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import APP_API_PORT
from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import (
    AppError,
    GLUETUN_RESTART_ENV,
    GLUETUN_RESTART_NEVER,
    container_label,
    env_problems as app_env_problems,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import ascii_digits
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import (
    StackCheckError,
    _mapping,
    _plan_vpns,
    _port,
)


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
        "APP_PORT": str(APP_API_PORT),
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
