# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AceStream Orchestrator app (v1.7.3) as the collection deploys it, in one place: which app release runs the
port guide's static mode, the engine settings file that wins over the app's environment, the variant names the app
knows, the label its engines carry, the Gluetun releases it can read a forwarded port from, and how its engines are
observed (which VPN, which ports, whether they were left in a dead network namespace).

Private to this collection. Pure: no I/O and no Ansible import. The facts behind every rule are in the collection's
docs/orchestrator_app.md.

* ``deployment(image, ...)``: everything the orchestrator_app role and the preflight need, with every problem.
* ``app_engines(containers, pool)``: the app's engines of one pool, from a container list.
* ``stranded(engines, vpns)``: the app's engines left in an old network namespace of their Gluetun container.
* ``vpn_status_problems(answer, vpns)``: the app's own ``/vpn/status`` against what Gluetun answers.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
import shlex
import time

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import forwarding_on
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import (
    APP_LABEL_FORWARDED,
    APP_LABEL_HTTP_PORT,
    APP_LABEL_POOL,
    APP_LABEL_VPN_CONTAINER,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError, replicas_count
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_release import (
    VERSION_LABEL,
    ReleaseError,
    image_labels,
    image_tag,
    read_release,
    release_tuple,
    _familiar,
)

DEFAULT_IMAGE = "ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3"
# The releases that read VPN_MODE and GLUETUN_CONTAINER_NAME(_2): v1.7.x (v2.0.0 ignores the names, v2.1 is a
# rewrite that creates its own Gluetun containers).
FIRST_STATIC_RELEASE = (1, 7, 0)
END_STATIC_RELEASE = (2, 0, 0)
SUPPORTED = "v1.7.0 ... v1.7.3"
# Set in the environment, these are overridden by the engine settings file: the stack's variables set them.
SETTINGS_ENV = {"MIN_REPLICAS": "acestream_engine_replicas", "MAX_REPLICAS": "acestream_engine_replicas",
                "ENGINE_VARIANT": "acestream_orchestrator_engine_variant"}
# The variants v1.7.3 knows, by platform; the collection's engine variants map to them by platform.
APP_VARIANTS = {"AceServe-amd64": "amd64", "AceServe-arm32": "arm32", "AceServe-arm64": "arm64"}
ENGINE_VARIANT_PLATFORMS = {"krinkuto11-amd64": "amd64", "jopsis-amd64": "amd64", "jopsis-arm32": "arm32",
                            "jopsis-arm64": "arm64"}
# Who restarts a Gluetun container: never the app. v1.7.3 restarts a Gluetun container that Docker has called
# unhealthy for VPN_UNHEALTHY_RESTART_TIMEOUT_S (60 s by default), then skips its own engine restart (a grace
# period): every engine is left in the dead network namespace. The collection owns the Gluetun containers; Gluetun
# heals its own tunnel inside the container (HEALTH_RESTART_VPN, the namespace and its engines kept) and Docker's
# restart policy brings back a Gluetun that exited. The app has no switch to turn its restart off: the collection
# gives it a timeout it never reaches (int, as the app reads it; 2**31 - 1 s is 68 years).
GLUETUN_RESTART_ENV = "VPN_UNHEALTHY_RESTART_TIMEOUT_S"
GLUETUN_RESTART_NEVER = str(2 ** 31 - 1)
# Gluetun's /v1/portforward, the only route the app reads the forwarded port from, exists from v3.41.0.
FIRST_PORTFORWARD_RELEASE = (3, 41, 0)
OLD_GLUETUN_POLICIES = ("fail", "warn")
_FLAG_RE = re.compile(r"^--(http-port|https-port|api-port|port)(?:=(.*))?$")


class AppError(AcestreamError, ValueError):
    """Input these rules cannot read; the message names the option."""


def _text(value, name, empty_ok=True):
    if value is None and empty_ok:
        return ""
    if not isinstance(value, str):
        raise AppError("%s must be a string, not %s" % (name, type(value).__name__))
    return value.strip()


# --------------------------------------------------------------------------------------- release
def release(image, override=None, labels=None, images=None):
    """Which app release ``image`` is: ``{release, source, reference, on_target, problem}``.

    The release comes from ``override`` (acestream_orchestrator_release: the user's word), the image's label
    org.opencontainers.image.version on the target (``labels``, or found in ``images``), else the image's tag.
    ``problem`` is None, or why the release cannot run the port guide's static mode and the ways out."""
    image = _text(image, "acestream_orchestrator_image", empty_ok=False)
    if not image:  # refused where the app is deployed; the app's label and engines are still the stack's
        return {"release": "", "source": None, "reference": None, "on_target": False,
                "problem": "acestream_orchestrator_image is empty: give the app's image, e.g. %s." % DEFAULT_IMAGE}
    override = _text(override, "acestream_orchestrator_release")
    if labels is None and images is not None:
        labels = image_labels(image, images)
    try:
        found, source, _label = read_release(image, override, labels, "acestream_orchestrator_release")
    except ReleaseError as exc:
        raise AppError(str(exc))
    tag = image_tag(image)
    result = {"release": found, "source": source, "reference": _familiar(image), "on_target": labels is not None,
              "problem": None}
    parts = release_tuple(found)
    if found and found != "latest" and parts is None:
        result["problem"] = (
            "acestream_orchestrator_release '%s' is not a release: give it as vX.Y.Z (e.g. v1.7.3), the release the "
            "image %s is." % (found, image))
    elif not found:
        what = "a digest" if tag is None else "tag '%s'" % tag
        result["problem"] = (
            "Cannot tell the AceStream Orchestrator release of %s (%s, and %s): set acestream_orchestrator_release to "
            "the release the image is, or pin the image to a release that runs the port guide's setup (%s, e.g. %s)."
            % (image, what, "no %s label" % VERSION_LABEL if labels is not None
               else "the image is not on the target to read its %s label" % VERSION_LABEL, SUPPORTED, DEFAULT_IMAGE))
    elif parts is None or not FIRST_STATIC_RELEASE <= parts < END_STATIC_RELEASE:
        why = ("'latest' is the rewrite (v2.1 on) that creates its own Gluetun containers and ignores VPN_MODE and "
               "GLUETUN_CONTAINER_NAME" if found == "latest" else
               "from v2.0.0 on the app ignores VPN_MODE and GLUETUN_CONTAINER_NAME (v2.1 is a rewrite that creates its "
               "own Gluetun containers)" if parts >= END_STATIC_RELEASE else
               "the collection knows the static mode of %s only" % SUPPORTED)
        result["problem"] = (
            "AceStream Orchestrator release %s (from %s) cannot run the port guide's setup: %s. Use %s (the last "
            "release with VPN_MODE=single|redundant, the default of acestream_orchestrator_image), or leave the "
            "engines to the collection (acestream_orchestrator_enabled: false)." % (found, source, why, DEFAULT_IMAGE))
    return result


# --------------------------------------------------------------------------------------- variant, label, settings
def app_variant(engine_variant=None, app_variant_name=None):
    """The app's ENGINE_VARIANT: ``app_variant_name`` when given (one of APP_VARIANTS), else the collection's
    ``engine_variant`` mapped by platform. Raises AppError naming the variable for a variant the app cannot run."""
    app_variant_name = _text(app_variant_name, "acestream_orchestrator_engine_variant")
    if app_variant_name:
        if app_variant_name not in APP_VARIANTS:
            raise AppError("acestream_orchestrator_engine_variant '%s' is not a variant the app v1.7.3 runs: use one of "
                           "%s" % (app_variant_name, ", ".join(sorted(APP_VARIANTS))))
        return app_variant_name
    engine_variant = _text(engine_variant, "acestream_engine_variant") or "krinkuto11-amd64"
    platform = ENGINE_VARIANT_PLATFORMS.get(engine_variant)
    if platform is None:
        raise AppError("acestream_engine_variant '%s' has no counterpart in the app: use one of %s, or set "
                       "acestream_orchestrator_engine_variant to one of %s" % (
                           engine_variant, ", ".join(sorted(ENGINE_VARIANT_PLATFORMS)), ", ".join(sorted(APP_VARIANTS))))
    return "AceServe-%s" % platform


def container_label(pool):
    """The app's CONTAINER_LABEL for stack ``pool`` (key=value)."""
    pool = _text(pool, "acestream_pool_name")
    if not pool or "=" in pool or any(ch.isspace() for ch in pool):
        raise AppError("acestream_pool_name %r cannot be part of the app's CONTAINER_LABEL: use letters, digits, '.', "
                       "'_' or '-'" % pool)
    return "%s=%s" % (APP_LABEL_POOL, pool)


def engine_settings(replicas, variant):
    """The app's engine_settings.json, as a mapping: the stack's replicas (min = max) and variant; the image's own
    custom variant is turned off so that the variant set here is the one that runs."""
    try:
        replicas = replicas_count(replicas)
    except PortPlanError as exc:
        raise AppError("acestream_engine_replicas: %s" % exc.message)
    if variant not in APP_VARIANTS:
        raise AppError("the app's engine variant must be one of %s, not %r" % (", ".join(sorted(APP_VARIANTS)), variant))
    return {"min_replicas": replicas, "max_replicas": max(replicas, 1), "auto_delete": False,
            "engine_variant": variant, "use_custom_variant": False, "platform": APP_VARIANTS[variant]}


def custom_variant(variant):
    """The app's custom_engine_variant.json, turned off, for the platform of ``variant``."""
    return {"enabled": False, "platform": APP_VARIANTS[variant]}


def env_problems(app_env, label):
    """What acestream_orchestrator_env may not set: CONTAINER_LABEL (the stack's own), VPN_UNHEALTHY_RESTART_TIMEOUT_S
    (the Gluetun containers are the collection's: the app never restarts one), and what the engine settings file
    overrides in the app (MIN_REPLICAS, MAX_REPLICAS, ENGINE_VARIANT: set through the stack's variables)."""
    if not isinstance(app_env, dict):
        return []
    out = []
    if "CONTAINER_LABEL" in app_env:
        out.append("acestream_orchestrator_env sets CONTAINER_LABEL, which the collection derives from the pool name "
                   "(%s) so that the stack's app engines are its own (the app removes every container carrying its "
                   "label when it starts): leave it out." % label)
    if GLUETUN_RESTART_ENV in app_env:
        out.append("acestream_orchestrator_env sets %s, but the app may not restart the stack's Gluetun containers: a "
                   "Gluetun container restarted strands every engine in its old network namespace, and the app then "
                   "skips its own engine restart. Gluetun restarts its tunnel itself (HEALTH_RESTART_VPN, the engines "
                   "kept) and the collection sets %s=%s (never): leave it out."
                   % (GLUETUN_RESTART_ENV, GLUETUN_RESTART_ENV, GLUETUN_RESTART_NEVER))
    for name in sorted(set(app_env) & set(SETTINGS_ENV)):
        out.append("acestream_orchestrator_env sets %s, which the app's engine settings file overrides: set %s "
                   "instead." % (name, SETTINGS_ENV[name]))
    return out


def restart_reasons(drift_actions, file_changes, settings_paths):
    """Why a running app must be restarted, one reason each; ``[]`` when it need not be.

    ``drift_actions``: the ``restart`` actions of the stack_info observation (its engines not whole in a way its
    start-up repairs, or the app crash-looping or paused); ``file_changes``: stack_files' ``changes`` of this run;
    ``settings_paths``: the engine settings files on the host. The app reads those files at start, and a file
    replaced on the host reaches its bind mount only at the next start, so their rewrite is a reason too."""
    for name, value in (("drift_actions", drift_actions), ("file_changes", file_changes),
                        ("settings_paths", settings_paths)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, (dict, str)) for item in value):
            raise AppError("%s must be a list, not %s" % (name, type(value).__name__))
    reasons = [str(action.get("reason", "")) for action in drift_actions
               if isinstance(action, dict) and action.get("action") == "restart"]
    rewritten = [change.get("path") for change in file_changes
                 if isinstance(change, dict) and change.get("action") in ("create", "update")
                 and change.get("path") in settings_paths]
    if rewritten:
        reasons.append("its engine settings files were rewritten: %s" % ", ".join(rewritten))
    return reasons


def settings_text(settings):
    """The settings file's content: JSON, sorted keys, one trailing newline (the same bytes on every run)."""
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"


def gluetun_problem(gluetun_release, forwarding, policy="fail"):
    """``(problem, warning)`` for a Gluetun release under the app: the app reads the forwarded port only from
    /v1/portforward (Gluetun v3.41.0 on); before it, with port forwarding on, it runs without a forwarded port."""
    policy = _text(policy, "acestream_orchestrator_old_gluetun") or "fail"
    if policy not in OLD_GLUETUN_POLICIES:
        raise AppError("acestream_orchestrator_old_gluetun must be fail or warn, not %r" % policy)
    gluetun_release = _text(gluetun_release, "the Gluetun release")
    parts = release_tuple(gluetun_release)
    if not forwarding or gluetun_release == "latest" or parts is None or parts >= FIRST_PORTFORWARD_RELEASE:
        return None, None
    said = ("Gluetun %s has no /v1/portforward, the only route the orchestrator app v1.7.3 reads the forwarded port "
            "from (it logs 'Port forwarding not supported by VPN config' and runs every engine without the forwarded "
            "port)" % gluetun_release)
    if policy == "warn":
        return None, said + "; acestream_orchestrator_old_gluetun is warn: deploying anyway."
    return (said + ". Use Gluetun v3.41.0 or later (acestream_gluetun_image, e.g. qmcgaw/gluetun:v3.41.1), turn port "
                   "forwarding off, or set acestream_orchestrator_old_gluetun: warn to run the app without it."), None


def gluetun_forwarding(containers, env=None):
    """True when a Gluetun container of the stack turns port forwarding on (its env over the common ``env``)."""
    if not isinstance(containers, list):
        raise AppError("acestream_gluetun_containers must be a list, not %s" % type(containers).__name__)
    common = env if isinstance(env, dict) else {}
    for container in containers:
        own = container.get("env") if isinstance(container, dict) else None
        merged = dict(common)
        merged.update(own if isinstance(own, dict) else {})
        if forwarding_on(merged):
            return True
    return False


def deployment(image, pool, replicas, override=None, images=None, engine_variant=None, app_variant_name=None,
               engine_image=None, gluetun_release=None, gluetun_containers=None, gluetun_env=None, old_gluetun="fail",
               app_env=None, containers=None, name=None):
    """What the orchestrator_app role deploys, and every reason not to: ``{release, release_source, reference,
    on_target, release_problem, variant, label, settings, settings_json, custom_variant_json, settings_hash, engines,
    problems, warnings}``. ``release_problem`` (None, or why the release cannot run the guide's setup) comes apart
    from the ``problems`` of the stack, because the release is best read from the image's label on the target, which
    the roles list later. ``gluetun_release`` (None: not known yet) and the Gluetun containers' environments
    (``gluetun_containers`` over ``gluetun_env``: port forwarding on?) give the Gluetun check; ``app_env``
    (acestream_orchestrator_env) may not set what the collection sets (env_problems). ``containers``: the Docker
    host's container list (``engines`` then names the stack's app engines on it, and ``left`` says whether they or a
    container named ``name``, the app's, are there: what the app left when it is turned off). ``settings_hash``: of the two
    settings files, for a label of the app container (the app reads them at start: a change re-creates it)."""
    problems, warnings = [], []
    info = release(image, override=override, images=images)
    variant = None
    try:
        variant = app_variant(engine_variant, app_variant_name)
    except AppError as exc:
        problems.append(str(exc) + ".")
    if _text(engine_image, "acestream_engine_image"):
        problems.append("acestream_engine_image is set, but the orchestrator app starts its engines from its own "
                        "images (ghcr.io/krinkuto11/acestream:latest-<platform>, by variant): leave it empty and choose "
                        "the variant (acestream_orchestrator_engine_variant), or leave the engines to the collection "
                        "(acestream_orchestrator_enabled: false).")
    label = container_label(pool)
    engines = [engine["name"] for engine in app_engines(containers, pool)] if containers is not None else None
    problems.extend(env_problems(app_env, label))
    settings = engine_settings(replicas, variant) if variant else None
    if gluetun_release is not None:
        forwarding = gluetun_forwarding(gluetun_containers or [], gluetun_env)
        problem, warning = gluetun_problem(gluetun_release, forwarding, old_gluetun)
        problems.extend([problem] if problem else [])
        warnings.extend([warning] if warning else [])
    return {"release": info["release"], "release_source": info["source"], "reference": info["reference"],
            "on_target": info["on_target"], "release_problem": info["problem"], "variant": variant, "label": label,
            "settings": settings, "settings_json": settings_text(settings) if settings else None,
            "custom_variant_json": settings_text(custom_variant(variant)) if variant else None,
            "settings_hash": hashlib.sha256((settings_text(settings) + settings_text(custom_variant(variant))).encode(
                "utf-8")).hexdigest()[:16] if settings else None,
            "engines": engines, "left": None if containers is None else bool(engines) or any(
                "/%s" % name in (container.get("Names") or []) for container in containers),
            "problems": problems, "warnings": warnings}


# --------------------------------------------------------------------------------------- observing its engines
def _port(text):
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 65535 else None


def _flags(command):
    """The engine ports in a container's command line (``--http-port P``, ``--port=R`` ...)."""
    try:
        tokens = shlex.split(command or "")
    except ValueError:
        tokens = (command or "").split()
    out = {}
    for index, token in enumerate(tokens):
        match = _FLAG_RE.match(token)
        if not match:
            continue
        value = match.group(2)
        if value is None and index + 1 < len(tokens):
            value = tokens[index + 1]
        out[match.group(1)] = _port(value)
    return out


def app_engines(containers, pool):
    """The app's engines of stack ``pool`` among ``containers`` (a Docker container list, ``all=True``), each as
    ``{id, name, vpn, port, api_port, https_port, forwarded, p2p_port, state, status, network_mode, created,
    started_at}``; ``created`` in seconds since the epoch, ``started_at`` None (a list does not say; an inspect does:
    ``with_started_at``)."""
    if not isinstance(containers, list):
        raise AppError("the containers must be a list as Docker lists them, not %s" % type(containers).__name__)
    key, _sep, value = container_label(pool).partition("=")
    out = []
    for container in containers:
        if not isinstance(container, dict):
            raise AppError("each container must be a mapping as Docker lists it, not %s" % type(container).__name__)
        labels = container.get("Labels") or {}
        if labels.get(key) != value:
            continue
        names = container.get("Names") or []
        flags = _flags(container.get("Command"))
        created = container.get("Created")
        out.append({
            "id": container.get("Id"),
            "name": names[0].lstrip("/") if names else (container.get("Id") or "")[:12],
            "vpn": labels.get(APP_LABEL_VPN_CONTAINER),
            "port": _port(labels.get(APP_LABEL_HTTP_PORT)) or flags.get("http-port"),
            "api_port": flags.get("api-port"),
            "https_port": flags.get("https-port"),
            "forwarded": str(labels.get(APP_LABEL_FORWARDED, "")).lower() == "true",
            "p2p_port": flags.get("port"),
            "state": str(container.get("State") or "unknown").lower(),
            "status": container.get("Status"),
            "network_mode": (container.get("HostConfig") or {}).get("NetworkMode"),
            "created": created if isinstance(created, (int, float)) and not isinstance(created, bool) else None,
            "started_at": None,
        })
    return sorted(out, key=lambda e: (e["vpn"] or "", e["port"] or 0, e["name"]))


def with_started_at(engines, inspects):
    """The engines with ``started_at`` (seconds since the epoch) from their inspects (engine id -> inspect)."""
    out = []
    for engine in engines:
        inspect = inspects.get(engine["id"]) or {}
        out.append(dict(engine, started_at=epoch((inspect.get("State") or {}).get("StartedAt"))))
    return out


def epoch(timestamp):
    """Seconds since the epoch of Docker's RFC 3339 time (``2026-12-05T10:59:01.123456789Z``), None when it is not
    one (a container that never started: ``0001-01-01T00:00:00Z``)."""
    if not isinstance(timestamp, str) or not timestamp or timestamp.startswith("0001-"):
        return None
    match = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", timestamp.strip())
    if not match:
        return None
    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    fraction = float("0" + match.group(2)) if match.group(2) else 0.0
    zone = match.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction


def stranded(engines, vpns):
    """The app's engines left behind by their Gluetun container: ``[{name, vpn, reason}]``.

    ``vpns``: Gluetun name -> ``{id, started_at}`` (None: no such container). An engine is stranded when it joined
    another container than its VPN's current one (Gluetun was re-created), or last started before the VPN's last
    start (Gluetun restarted: a new network namespace; the engine kept the dead one). An engine started again after
    its VPN (a Docker Engine restart starts both, the VPN first) joined the current namespace; without its start
    time, its creation time decides. The app itself replaces only
    its forwarded engine then; a restart of the app (its start-up removes and re-provisions) makes the stack whole."""
    out = []
    for engine in engines:
        vpn = vpns.get(engine["vpn"])
        if not vpn or not vpn.get("id"):
            out.append({"name": engine["name"], "vpn": engine["vpn"],
                        "reason": "its Gluetun container %s is gone" % (engine["vpn"] or "(unnamed)")})
            continue
        if engine["network_mode"] != "container:%s" % vpn["id"]:
            out.append({"name": engine["name"], "vpn": engine["vpn"],
                        "reason": "joined %s, not the current %s container %s (Gluetun was re-created)" % (
                            engine["network_mode"] or "no network", engine["vpn"], vpn["id"][:12])})
            continue
        started = epoch(vpn.get("started_at"))
        joined = engine.get("started_at")
        if joined is None:
            joined = engine["created"]
            started = int(started) if started is not None else None  # Created has whole seconds
        if started is not None and joined is not None and joined < started:
            out.append({"name": engine["name"], "vpn": engine["vpn"],
                        "reason": "started before %s last started (%s): left in its old network namespace" % (
                            engine["vpn"], vpn["started_at"])})
    return out


def reads_forwarded_port(gluetun_version):
    """Whether the app can read a forwarded port from Gluetun ``gluetun_version`` (as its control server answers it;
    unknown: yes): only from /v1/portforward, v3.41.0 on. Before it (acestream_orchestrator_old_gluetun: warn) the app
    runs without the forwarded port: no forwarded engine, ``forwarded_port: null``, and that is no drift."""
    parts = release_tuple(gluetun_version) if isinstance(gluetun_version, str) else None
    return parts is None or parts >= FIRST_PORTFORWARD_RELEASE


def vpn_status_problems(answer, vpns):
    """What the app's ``/vpn/status`` answer gets wrong against Gluetun: ``[text]``. ``vpns``: the observed VPNs
    in order (``name``, ``healthy``, ``forwarded_port``). v1.7.3 reports ``connected`` when any of its VPNs is (one
    in single mode) and the first VPN's forwarded port: it must be enabled, connected exactly when a Gluetun
    container is healthy, and report the port the first one forwards."""
    if not isinstance(answer, dict):
        return ["the app's /vpn/status did not answer a JSON object"]
    out = []
    if answer.get("enabled") is not True:
        out.append("the app reports the VPN not enabled (enabled: %s)" % json.dumps(answer.get("enabled")))
    healthy = [vpn["name"] for vpn in vpns if vpn.get("healthy")]
    if healthy and answer.get("connected") is not True:
        out.append("the app reports the VPN not connected while %s is healthy" % ", ".join(healthy))
    if vpns and not healthy and answer.get("connected") is True:
        out.append("the app reports the VPN connected while no Gluetun container is healthy")
    wanted = vpns[0].get("forwarded_port") if vpns and reads_forwarded_port(vpns[0].get("version")) else None
    seen = answer.get("forwarded_port")
    if wanted and seen != wanted:
        out.append("the app reports forwarded port %s, %s forwards %s" % (json.dumps(seen), vpns[0]["name"], wanted))
    return out
