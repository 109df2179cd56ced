# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine pool's I/O edge: observe Docker and the Gluetun control servers, then carry out the actions.

Private to this collection. Everything here is thin; the decisions live in ``_engine_core``.

Observation cost of a run that changes nothing: one ``containers(all=True, filters=label...)`` call (labels,
state, image and network mode are all in the list output, so no engine is inspected; it returns every pool's
engines, so that another pool on one of this pool's VPNs is seen without another call), one inspect per VPN
container and one image inspect, all in parallel, plus the control-server reads the options ask for
(``_gluetun_probe.read_control``, kept importable from here).
Changes run in a bounded thread pool: removals first (they free ports and names), then creations and starts.
Readiness: each engine brought up is polled until it answers, and inspected (once it answers, and every
``CRASH_CHECK_INTERVAL`` seconds while it does not) so that a crash-looping engine fails the wait at once.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    APIError,
    DockerException,
    NotFound,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._engine_core import (
    crash_problem,
    manager_label_filters,
    observed_engine,
    pool_label_filters,
    same_engine,
    split_pools,
    vpn_state,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import (
    docker_host_address,
    read_control,
)

STATUS_PATH = "/server/api?api_version=3&method=get_status"
# Seconds to wait for a container whose name another run has just reserved (its create is still running).
NAME_RESERVED_WAIT = 10.0
# Seconds between two inspects of an engine that does not answer yet (is it still up, or crash-looping?).
CRASH_CHECK_INTERVAL = 1.0
# Seconds between two asks of an engine's status API while it is starting (the API answers a local request in
# milliseconds: a short interval adds little load and answers sooner).
READY_POLL_INTERVAL = 0.25


class EngineActionError(AcestreamError):
    """One or more Docker actions failed; ``done`` lists the actions that were carried out."""

    def __init__(self, message, done):
        super().__init__(message)
        self.done = done


class DockerEngines:
    """Docker calls of one engine_pool run. ``client`` is a ``docker.APIClient``; worker threads get their own."""

    def __init__(self, client, workers=8, docker_host=None):
        self.client = client
        self.workers = max(1, int(workers))
        self.docker_host = docker_host
        self._local = threading.local()
        self.calls = {"list": 0, "inspect": 0, "inspect_image": 0, "create": 0, "start": 0, "remove": 0}
        self._calls_lock = threading.Lock()

    def _count(self, what):
        with self._calls_lock:
            self.calls[what] = self.calls.get(what, 0) + 1

    # ------------------------------------------------------------------------------ threading
    def _api(self):
        """A client for the current thread (requests sessions are not meant to be shared between threads)."""
        if threading.current_thread() is threading.main_thread():
            return self.client
        api = getattr(self._local, "api", None)
        if api is None:
            import docker as sdk

            api = sdk.APIClient(base_url=self.docker_host, version=self.client.api_version,
                                timeout=self.client.timeout)
            self._local.api = api
        return api

    def parallel(self, func, items):
        """``[func(item) ...]`` in input order, in the bounded pool (inline for one item)."""
        items = list(items)
        if len(items) <= 1 or self.workers == 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(func, items))

    # ------------------------------------------------------------------------------ observing
    def observe(self, plan, pool, image, api_port, credentials, api_timeout, ports=True, port_wait=0.0):
        """The run's observations: one list call, the VPN inspects and the image, in parallel; then the control
        servers, in parallel: each VPN's status (Docker's health alone does not tell a VPN stopped through the control
        server: ``vpn_health``) and, with ``ports`` (forwarded_port auto), the forwarded port, waiting up to
        ``port_wait`` seconds for one (``read_control``).

        Returns ``(engines, states, image_id, others)``: the pool's ``observed_engine()`` list, VPN name ->
        ``vpn_state()``, the image's local ID (None when it is not on the Docker host), and the engines of the other
        pools on the Docker host (the same list call)."""
        names = [vpn.name for vpn in plan.vpns]
        jobs = [("list", None)] + [("vpn", name) for name in names] + [("image", image)]

        def run(job):
            kind, arg = job
            if kind == "list":
                return self.list_managed()
            if kind == "vpn":
                return self.inspect_container(arg)
            return self.image_id(arg)

        results = self.parallel(run, jobs)
        containers, inspects, image_id = results[0], dict(zip(names, results[1:-1])), results[-1]

        def control(name):
            return read_control(inspects[name], name, api_port, credentials, api_timeout, need_ports=ports,
                                port_wait=port_wait, docker_host=self.docker_host)

        controls = dict(zip(names, self.parallel(control, names)))
        states = dict((name, vpn_state(name, inspects[name], controls[name])) for name in names)
        engines, others = split_pools(pool, [observed_engine(c) for c in containers])
        return engines, states, image_id, others

    def list_managed(self):
        """The engines of every pool on the Docker host: ONE list call, filtered by the manager label (list output,
        no inspect)."""
        self._count("list")
        return self.client.containers(all=True, filters={"label": manager_label_filters()})

    def list_labelled(self, label):
        """The containers carrying ``label`` (``key=value``): ONE list call (list output, no inspect)."""
        self._count("list")
        return self.client.containers(all=True, filters={"label": [label]})

    def list_pool(self, pool):
        """The pool's engines: ONE list call, filtered by the pool's labels (list output, no inspect)."""
        self._count("list")
        return self.client.containers(all=True, filters={"label": pool_label_filters(pool)})

    def inspect_container(self, name):
        self._count("inspect")
        try:
            return self._api().inspect_container(name)
        except NotFound:
            return None

    def image_id(self, image):
        """The local ID of ``image``, or None when it is not on the Docker host."""
        self._count("inspect_image")
        try:
            return self._api().inspect_image(image).get("Id")
        except NotFound:
            return None

    def containers_named(self, names):
        """name -> list entry of the containers that carry exactly these names (any owner)."""
        if not names:
            return {}
        self._count("list")
        found = self.client.containers(all=True, filters={"name": ["^/%s$" % name for name in names]})
        wanted, result = set(names), {}
        for container in found:
            for name in container.get("Names") or []:
                if name.lstrip("/") in wanted:
                    result[name.lstrip("/")] = container
        return result

    def pull(self, image):
        repository, _sep, tag = image.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = image, "latest"
        self._api().pull(repository, tag=tag)

    # ------------------------------------------------------------------------------ acting
    def execute(self, actions, desired, pool):
        """Carry out the actions: pull, then removals (remove + the remove half of recreate) in parallel, then
        creations, starts and unpauses in parallel. Returns the created/started engines' IDs by name; raises
        EngineActionError listing what failed (what succeeded stays done: the next run converges the rest)."""
        done, errors, ids = [], [], {}
        lock = threading.Lock()

        def record(action, error=None, container_id=None):
            with lock:
                if error is None:
                    done.append(action)
                    if container_id:
                        ids[action["name"]] = container_id
                else:
                    errors.append("%s %s: %s" % (action["action"], action["name"], error))

        for action in [a for a in actions if a["action"] == "pull"]:
            try:
                self.pull(action["name"])
                record(action)
            except DockerException as exc:
                raise EngineActionError("pull %s: %s" % (action["name"], _docker_message(exc)), done)

        def remove(action):
            try:
                self._count("remove")
                self._api().remove_container(action["id"], force=True, v=True)
            except NotFound:
                pass
            except DockerException as exc:
                record(action, _docker_message(exc))
                return False
            if action["action"] == "remove":
                record(action)
            return True

        first = [a for a in actions if a["action"] in ("remove", "recreate")]
        removed = dict(zip([a["name"] for a in first], self.parallel(remove, first)))

        def bring_up(action):
            try:
                if action["action"] in ("create", "recreate"):
                    if action["action"] == "recreate" and not removed.get(action["name"]):
                        return
                    container_id = self._create(desired[action["name"]], pool)
                    self._start(container_id)
                elif action["action"] == "start":
                    container_id = action["id"]
                    self._start(container_id)
                elif action["action"] == "unpause":
                    container_id = action["id"]
                    self._api().unpause(container_id)
                else:
                    return
                record(action, container_id=container_id)
            except DockerException as exc:
                record(action, _docker_message(exc))
            except NameClash as exc:
                record(action, str(exc))

        self.parallel(bring_up, [a for a in actions if a["action"] in ("create", "recreate", "start", "unpause")])
        if errors:
            raise EngineActionError("; ".join(errors), done)
        return ids, done

    def _start(self, container_id):
        self._count("start")
        self._api().start(container_id)

    def _create(self, spec, pool):
        api = self._api()
        restart = None if spec["restart_policy"] in (None, "no") else {"Name": spec["restart_policy"]}
        host_config = api.create_host_config(network_mode=spec["network_mode"], restart_policy=restart)
        other = None
        for _attempt in range(3):
            self._count("create")
            try:
                created = api.create_container(spec["image"], name=spec["name"], environment=spec["env"],
                                               command=spec["command"], labels=spec["labels"],
                                               host_config=host_config, detach=True)
                return created["Id"]
            except APIError as exc:
                if getattr(exc, "status_code", None) != 409:
                    raise
            # 409: the name is taken. Another run placing the same slot at the same time may be creating it
            # right now (Docker reserves the name before the container can be inspected): look for a while.
            other, deadline = self.inspect_container(spec["name"]), time.monotonic() + NAME_RESERVED_WAIT
            while other is None and time.monotonic() < deadline:
                time.sleep(0.1)
                other = self.inspect_container(spec["name"])
            if other is not None:
                break
            # Still nobody there: that create failed and freed the name; try ours again.
        # The same engine, made by another run: adopt it. Anything else holding the name is a clash.
        labels = ((other or {}).get("Config") or {}).get("Labels") or {}
        if same_engine(labels, pool, spec):
            return other["Id"]
        raise NameClash("container '%s' already exists and is not this pool's engine for that slot (labels %s); "
                        "remove or rename it, or choose another pool name" % (
                            spec["name"], json.dumps(dict((k, v) for k, v in labels.items()
                                                          if k.startswith("acestream.")), sort_keys=True)))

    # ------------------------------------------------------------------------------ readiness
    def engine_url(self, engine, host_ip):
        host = docker_host_address(self.docker_host)
        if host == "127.0.0.1" and host_ip not in ("", "0.0.0.0", "::", None):
            host = host_ip
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        return "http://%s:%d%s" % (host, engine["port"], STATUS_PATH)

    def wait_ready(self, engines, host_ips, timeout, restarts=None):
        """Poll each engine's status API (through its VPN container's published port) until it answers with JSON
        or ``timeout`` seconds pass. An engine with an ``id`` is also inspected, every ``CRASH_CHECK_INTERVAL``
        seconds while it does not answer and once when it does: when it is crash-looping (``crash_problem``, with
        ``restarts``: name -> its RestartCount after this run's action) it fails at once, answer or not.

        Returns ``[(name, detail)]`` for the engines that are not ready, in input order; ``detail`` is
        ``"<url>: <what was last seen>"``."""
        deadline = time.monotonic() + float(timeout)
        restarts = restarts or {}

        def crashed(engine):
            if not engine.get("id"):
                return None
            try:
                inspect = self.inspect_container(engine["id"])
            except DockerException:
                return None  # cannot tell now: the status API decides, or the next inspect
            return crash_problem(inspect, restarts.get(engine["name"]))

        def wait_one(engine):
            url = self.engine_url(engine, host_ips.get(engine["name"]))
            checked = time.monotonic()
            while True:
                ok, last = engine_status(url, 2)
                if ok or time.monotonic() - checked >= CRASH_CHECK_INTERVAL:
                    checked, problem = time.monotonic(), crashed(engine)
                    if problem:
                        return engine["name"], "%s: %s" % (url, problem)
                if ok:
                    return None
                if time.monotonic() + READY_POLL_INTERVAL > deadline:
                    return engine["name"], "%s: %s" % (url, last)
                time.sleep(READY_POLL_INTERVAL)

        return [failure for failure in self.parallel(wait_one, engines) if failure]

    def explain(self, container_id):
        """State and the last log lines of a container, for messages about an engine that did not come up."""
        try:
            inspect = self._api().inspect_container(container_id)
            state = inspect.get("State") or {}
            logs = self._api().logs(container_id, tail=5).decode("utf-8", "replace").strip().replace("\n", " | ")
            return "state %s, exit code %s%s" % (state.get("Status"), state.get("ExitCode"),
                                                 ", last log lines: %s" % logs[-600:] if logs else "")
        except DockerException as exc:
            return "cannot inspect it: %s" % _docker_message(exc)


def engine_status(url, timeout):
    """One ``get_status`` request to an engine: ``(True, None)`` when it answers 200 with JSON, else ``(False, what was
    seen)``. Plain HTTP through the standard library's client: engines speak no TLS here, and a client that builds an
    SSL context per request costs tens of milliseconds of CPU each, which a pool of engines multiplies."""
    parts = urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        resp = connection.getresponse()
        body = resp.read(65536)
        if resp.status != 200:
            return False, "HTTP %d" % resp.status
        json.loads(body.decode("utf-8"))
        return True, None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return False, str(exc) or type(exc).__name__
    finally:
        connection.close()


class NameClash(Exception):
    """A container that is not this pool's engine holds the name of a slot."""


def _docker_message(exc):
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return explanation if isinstance(explanation, str) else explanation.decode("utf-8", "replace")
    return str(exc)
