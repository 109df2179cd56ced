# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options that describe an engine pool, and their validation: one copy for every module that reads a pool
(engine_pool converges it, stack_info observes it). Private to this collection. No I/O, except the read of the
API key file (``api_key_file``)."""

from __future__ import annotations

import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import (
    DEFAULT_VARIANT,
    VARIANTS,
    check_reserved_ports,
    default_image,
    validate_env,
    validate_labels,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import (
    GluetunConfigError,
    check_credentials,
    seconds_problem,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._host_read import read_text
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import (
    DEFAULT_HTTPS_PORT_RANGE,
    GLUETUN_DEFAULT_API_PORT,
    PortPlanError,
    build_plan,
)

POOL_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")

# What a pool is: its engines, where they go, how the control servers are reached.
POOL_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    replicas=dict(type="int", default=1),
    vpn_containers=dict(type="list", elements="str"),
    port_range=dict(type="str"),
    vpn_port_ranges=dict(type="dict", default={}),
    https_port_range=dict(type="str", default=DEFAULT_HTTPS_PORT_RANGE),
    engine_variant=dict(type="str", default=DEFAULT_VARIANT, choices=sorted(VARIANTS)),
    image=dict(type="str"),
    env=dict(type="dict", default={}),
    labels=dict(type="dict", default={}),
    restart_policy=dict(type="str", default="unless-stopped", choices=["no", "on-failure", "always", "unless-stopped"]),
    forwarded_port=dict(type="str", default="auto", choices=["auto", "off"]),
    api_port=dict(type="int", default=GLUETUN_DEFAULT_API_PORT),
    # raw: a list or a number must be refused (check_credentials), not turned into its text
    api_key=dict(type="raw", no_log=True),
    api_key_file=dict(type="path", no_log=False),
    username=dict(type="raw"),
    password=dict(type="raw", no_log=True),
    api_timeout=dict(type="float", default=5),
    on_unhealthy_vpn=dict(type="str", default="fail", choices=["fail", "failover"]),
    parallelism=dict(type="int", default=8),
)


def validate_common(params):
    """The checks every pool module makes on the options it shares, before any request or Docker call; raises
    PortPlanError naming the option (never quoting a credential)."""
    if not POOL_NAME_RE.match(params["name"] or ""):
        raise PortPlanError("name", "%r is not usable as a container name prefix; use letters, digits, '_', '.', '-'"
                            % (params["name"],))
    if params["parallelism"] < 1:
        raise PortPlanError("parallelism", "%d is below 1; use 1 or more" % params["parallelism"])
    check_seconds(params, "api_timeout")
    if "docker_timeout" in params:
        check_seconds(params, "docker_timeout", example=60)
    if params.get("api_key_file") and params["api_key"] in (None, ""):
        params["api_key"] = kept_key(params["api_key_file"])
    try:
        check_credentials(params["api_key"], params["username"], params["password"])
    except GluetunConfigError as exc:
        raise PortPlanError(exc.field, exc.detail)
    if not 1 <= params["api_port"] <= 65535:
        raise PortPlanError("api_port", "%d is outside 1-65535; give the INTERNAL port of HTTP_CONTROL_SERVER_ADDRESS"
                            % params["api_port"])


def validate_pool(params):
    """The pool as the core takes it: ``(plan, core params)``; raises PortPlanError naming the option to fix."""
    validate_common(params)
    if not params["vpn_containers"]:
        raise PortPlanError("vpn_containers", "at least one Gluetun container name is required with state=present")
    plan = build_plan(params["vpn_containers"], port_range=params["port_range"],
                      vpn_port_ranges=params["vpn_port_ranges"], replicas=params["replicas"],
                      https_port_range=params["https_port_range"])
    check_reserved_ports(plan, params["api_port"])
    core = {
        "pool": params["name"],
        "variant": params["engine_variant"],
        "image": params["image"] or default_image(params["engine_variant"]),
        "env": validate_env(params["env"]),
        "labels": validate_labels(params["labels"]),
        "restart_policy": params["restart_policy"],
        "on_unhealthy": params["on_unhealthy_vpn"],
        "api_port": params["api_port"],
        "forwarded_port": params["forwarded_port"],
    }
    return plan, core


def kept_key(path):
    """The key kept in ``path`` (its text, stripped), None when the file is missing; raises PortPlanError naming
    api_key_file when it cannot be read."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PortPlanError("api_key_file", "%s cannot be read (%s): run as a user who can read it, or give api_key"
                            % (path, getattr(exc, "strerror", None) or exc))
    return (text or "").strip() or None


def check_seconds(params, field, zero_ok=False, example=None):
    """Raise PortPlanError naming ``field`` unless ``params[field]`` is a finite number of seconds above 0 (or 0
    with ``zero_ok``)."""
    problem = seconds_problem(params[field], zero_ok, example)
    if problem:
        raise PortPlanError(field, problem)


def credentials(params):
    return {"api_key": params["api_key"], "username": params["username"], "password": params["password"]}
