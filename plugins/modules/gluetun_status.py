#!/usr/bin/python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gluetun_status
short_description: Health, VPN status, public IP and forwarded port of Gluetun VPN containers
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Answers, for each Gluetun container, whether it is healthy and its VPN C(running), its public IP and the port
    its VPN provider forwards, on every Gluetun release from v3.39.0 to C(latest), with the control server
    protected by an API key or basic auth.
  - Runs on the Docker host. It finds each control server from the container (see O(instances[].api_url)),
    asks every instance in parallel, and can wait until they are ready (O(wait_timeout)).
  - Health follows Docker, C(State.Health.Status=healthy) (C(starting) is not healthy), and the control
    server's VPN status must be C(running). A container without a healthcheck counts as healthy only when its
    control server answers C(running).
  - "Release differences handled: C(GET /v1/portforward) (v3.41.0+) first, C(GET /v1/openvpn/portforwarded) where
    it is absent; its 301 (v3.41+) is followed with the same credentials; every answer shape (C(port), C(ports),
    both, C(null)); C(GET /v1/vpn/status) with C(GET /v1/openvpn/status) where the former is absent."
  - "Routes used (list them in a role of the auth file C(/gluetun/auth/config.toml), or use
    E(HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE) on v3.41.0+): C(GET /v1/vpn/status), C(GET /v1/portforward)
    (v3.41.0+) or C(GET /v1/openvpn/portforwarded) (up to v3.40.x), C(GET /v1/publicip/ip), C(GET /v1/version)
    (optional), and C(PUT /v1/vpn/status) with O(vpn_status)."
  - A 401 answer names the route, the container and the fix. A control server that cannot be reached gives
    C(Cannot access Gluetun API) with the URL tried and the likely causes. A required forwarded port that is
    missing gives C(Failed to get forwarded port from Gluetun).
  - Credentials are never returned or logged.
options:
  instances:
    description:
      - The Gluetun containers to ask, in the order the results come back.
      - Per-instance values override the module-level O(api_port), O(api_key), O(username) and O(password). An
        instance that sets any of O(instances[].api_key), O(instances[].username), O(instances[].password) uses
        only its own credentials.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The Gluetun container name (the seed's E(GLUETUN_CONTAINER_NAME)). Must be unique in the list.
          - A Docker container name (letters, digits, C(_), C(.), C(-)); with O(instances[].api_url), any label
            without control characters.
        type: str
        required: true
      api_port:
        description: The INTERNAL control-server port of this container; defaults to O(api_port).
        type: int
      api_url:
        description:
          - Base URL of the control server, for example V(http://127.0.0.1:8001). No credentials in it.
          - Without it, the URL is the host binding of C(<api_port>/tcp) published by the container (the seed's
            external port; C(0.0.0.0) means C(127.0.0.1)), else the container's bridge IP and the internal port.
          - With it, the container is still inspected for its health when Docker knows it; otherwise health is
            judged from the control server alone.
        type: str
      api_key:
        description:
          - API key for this container (sent as the C(X-API-Key) header). Not with O(instances[].username).
          - A string, with the characters of O(api_key).
        type: raw
      username:
        description:
          - Basic-auth user for this container (a role with C(auth = "basic")).
          - A string, with the characters of O(username).
        type: raw
      password:
        description:
          - Basic-auth password for this container.
          - A string, with the characters of O(password).
        type: raw
  api_port:
    description:
      - The INTERNAL control-server port, as the seed's E(GLUETUN_API_PORT); it must match the port of the
        container's E(HTTP_CONTROL_SERVER_ADDRESS). Not the external (published) port.
    type: int
    default: 8000
  api_key:
    description:
      - API key of a Gluetun role with C(auth = "apikey"), sent as the C(X-API-Key) header.
      - Mutually exclusive with O(username) and O(password).
      - A string of printable ASCII characters (letters, digits, punctuation; spaces only between them). A line
        break (a YAML C(|) block ends with one), another control character, a space at either end, a non-ASCII
        character, or a value that is not a string (a list, a number) is refused before any request, by name; the
        value is never shown.
    type: raw
  username:
    description:
      - User of a Gluetun role with C(auth = "basic"). Requires O(password).
      - A string without C(:) and without control characters (line breaks, tabs, NUL); refused by name otherwise.
    type: raw
  password:
    description:
      - Password of a Gluetun role with C(auth = "basic"). Requires O(username).
      - A string without control characters (line breaks, tabs, NUL); refused by name otherwise, never shown.
    type: raw
  wait_timeout:
    description:
      - Seconds to wait until every instance is healthy with its VPN C(running) (and, with
        O(require_forwarded_port), a non-zero forwarded port; with O(vpn_status=stopped), its VPN C(stopped)).
      - V(0) answers at once. A 401 ends the wait at once (waiting cannot fix it). The run can take up to
        O(wait_timeout) plus O(timeout). Below 0 is refused.
    type: int
    default: 0
  require_forwarded_port:
    description:
      - Also wait for, and require, a non-zero forwarded port on every instance.
    type: bool
    default: false
  vpn_status:
    description:
      - Converge the VPN state with C(PUT /v1/vpn/status). The module reports C(changed) only when a PUT was sent
        (or, in check mode, would be).
      - C(starting) counts as V(running) and C(stopping) as V(stopped) for the decision to send the PUT; use
        O(wait_timeout) to wait for the final state.
      - Not set, the VPN state is only read.
    type: str
    choices: [running, stopped]
  fail_on_unhealthy:
    description:
      - Fail when an instance has an C(error) (unhealthy, VPN not running, unreachable, 401, missing required port).
      - V(false) turns the failures into a report in RV(vpns).
    type: bool
    default: true
  timeout:
    description:
      - Seconds allowed for each control-server request, from the connect to the last byte of the answer (status
        line and headers included, so a server sending one byte at a time is given up at it). Instances are asked in
        parallel, and a control server that times out is not asked again in the same round, so one hung server
        delays the answer by O(timeout) once.
      - A finite number above 0; 0, a negative number, C(nan) or C(inf) is refused.
    type: float
    default: 5
  docker_host:
    description:
      - The Docker daemon, like community.docker's option, for example V(unix:///var/run/docker.sock) or
        V(tcp://127.0.0.1:2375). Defaults to E(DOCKER_HOST), else the local socket.
      - Needed unless every instance has O(instances[].api_url).
    type: str
    aliases: [docker_url]
  docker_timeout:
    description: Seconds allowed for each Docker API call; above 0.
    type: int
    default: 60
requirements:
  - Docker SDK for Python >= 5.0 (C(docker)) on the Docker host, unless every instance has O(instances[].api_url).
attributes:
  check_mode:
    support: full
    description: In check mode no PUT is sent; C(changed) tells whether O(vpn_status) would send one.
  diff_mode:
    support: none
    description: The module reads state and at most converges the VPN status; it returns no diff.
  idempotent:
    support: full
    description: A second run with the same O(vpn_status) sends no PUT and reports no change.
notes:
  - "Give Gluetun an API key: C([[roles]]) with C(name = \"acestream\"), C(auth = \"apikey\"), C(apikey = \"...\") and the
    routes listed above in C(/gluetun/auth/config.toml), or on v3.41.0+ set E(HTTP_CONTROL_SERVER_AUTH_DEFAULT_ROLE)
    to C({\"auth\":\"apikey\",\"apikey\":\"...\"}). Listing
    C(GET /v1/portforward) in the file stops Gluetun v3.40.x from starting; list C(GET /v1/openvpn/portforwarded)
    there instead."
  - The forwarded port changes after every VPN reconnect with some providers (ProtonVPN); read it again rather
    than storing it.
seealso:
  - plugin: acestream.orchestrator.forwarded_port
    plugin_type: lookup
  - name: Gluetun control server
    description: The upstream documentation of the control server and its authentication.
    link: https://github.com/qdm12/gluetun-wiki/blob/main/setup/advanced/control-server.md
"""

EXAMPLES = r"""
- name: Wait until both VPNs of the seed's redundant mode are up, with a forwarded port each
  acestream.orchestrator.gluetun_status:
    instances:
      - name: gluetun1
      - name: gluetun2
    api_port: 8001                       # GLUETUN_API_PORT: the INTERNAL port of HTTP_CONTROL_SERVER_ADDRESS
    api_key: "{{ vault_gluetun_api_key }}"
    wait_timeout: 180
    require_forwarded_port: true
  register: vpn

- name: Use the forwarded port of gluetun1
  ansible.builtin.debug:
    msg: "gluetun1 forwards {{ vpn.forwarded_ports.gluetun1 }} from {{ vpn.vpns[0].public_ip }}"

- name: Report only, never fail (e.g. a monitoring play)
  acestream.orchestrator.gluetun_status:
    instances:
      - name: gluetun1
      - name: gluetun-remote
        api_url: http://10.0.0.12:8001
        username: monitor
        password: "{{ vault_gluetun_monitor_password }}"
    fail_on_unhealthy: false
  register: report

- name: Stop the VPN of gluetun2 (changed only when a PUT is sent)
  acestream.orchestrator.gluetun_status:
    instances:
      - name: gluetun2
    api_key: "{{ vault_gluetun_api_key }}"
    vpn_status: stopped
    wait_timeout: 30
"""

RETURN = r"""
vpns:
  description: One entry per instance, in the order of O(instances).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The container name.
      type: str
      sample: gluetun1
    api_url:
      description: The control-server URL used (or V(null) when none could be found).
      type: str
      sample: http://127.0.0.1:8001
    api_port:
      description: The internal control-server port used for this instance.
      type: int
      sample: 8001
    container:
      description: What Docker says about the container; V(null) when it was not inspected (no Docker access, or an
        O(instances[].api_url) with no such container on this host).
      type: dict
      contains:
        id:
          description: Container ID.
          type: str
        status:
          description: Docker state, for example C(running) or C(exited).
          type: str
        health:
          description: C(healthy), C(unhealthy), C(starting), or C(none) when the container has no healthcheck.
          type: str
    reachable:
      description: Whether the control server answered HTTP (any status, including 401).
      type: bool
    version:
      description: The release from C(GET /v1/version), for example C(v3.41.1) or C(latest); V(null) when unknown.
      type: str
    vpn_status:
      description: The VPN status (C(starting), C(running), C(stopping), C(stopped), C(crashed), C(completed)), or
        V(null) when it could not be read.
      type: str
      sample: running
    healthy:
      description: Docker health is C(healthy) (or there is no healthcheck) and the VPN is C(running).
      type: bool
    connected:
      description: The control server reports the VPN C(running).
      type: bool
    public_ip:
      description: The VPN's public IP address, or V(null) (not known yet, VPN down, or the route is not allowed).
      type: str
      sample: 203.0.113.7
    country:
      description: Country of the public IP, when Gluetun gives it.
      type: str
    region:
      description: Region of the public IP, when Gluetun gives it.
      type: str
    city:
      description: City of the public IP, when Gluetun gives it.
      type: str
    forwarded_port:
      description: The first forwarded port, or V(null) when none is forwarded (yet) or it could not be read.
      type: int
      sample: 41234
    forwarded_ports:
      description: Every forwarded port (several with some providers); empty when none.
      type: list
      elements: int
      sample: [41234]
    port_route:
      description: The control-server route that gave the forwarded port, after redirects.
      type: str
      sample: /v1/portforward
    changed:
      description: Whether a C(PUT /v1/vpn/status) was sent to this instance (in check mode, would be).
      type: bool
    error:
      description: Why this instance is not ready, in words a user can act on; V(null) when it is.
      type: str
    warnings:
      description: Problems that did not make the instance fail (for example a 401 on C(GET /v1/publicip/ip)).
      type: list
      elements: str
all_healthy:
  description: Every instance is healthy with no error (with O(require_forwarded_port), each has a forwarded port).
  returned: always
  type: bool
forwarded_ports:
  description: Container name to its first forwarded port (V(null) when none).
  returned: always
  type: dict
  sample: {gluetun1: 41234, gluetun2: 51820}
"""

from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import fail
from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    DockerException,
    HAS_DOCKER,
    docker_client,
    docker_host_from,
    require_docker_sdk,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import (
    GluetunConfigError,
    check_seconds,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import (
    check_timeouts,
    needs_docker,
    normalize_instances,
    probe_instances,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import GLUETUN_DEFAULT_API_PORT


def argument_spec():
    return dict(
        instances=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            api_port=dict(type="int"),
            api_url=dict(type="str"),
            api_key=dict(type="raw", no_log=True),
            username=dict(type="raw"),
            password=dict(type="raw", no_log=True),
        )),
        api_port=dict(type="int", default=GLUETUN_DEFAULT_API_PORT),
        # raw: a list or a number is refused by name (check_credentials), not turned into its text
        api_key=dict(type="raw", no_log=True),
        username=dict(type="raw"),
        password=dict(type="raw", no_log=True),
        wait_timeout=dict(type="int", default=0),
        require_forwarded_port=dict(type="bool", default=False),
        vpn_status=dict(type="str", choices=["running", "stopped"]),
        fail_on_unhealthy=dict(type="bool", default=True),
        timeout=dict(type="float", default=5),
        docker_host=dict(type="str", aliases=["docker_url"]),
        docker_timeout=dict(type="int", default=60),
    )


def _docker_api(module, instances):
    """The Docker client, or None when none is needed and none answers."""
    where = docker_host_from(module.params["docker_host"])
    required = needs_docker(instances)
    if required:
        require_docker_sdk(module)
    elif not HAS_DOCKER:
        return None
    try:
        return docker_client(module.params["docker_host"], module.params["docker_timeout"])
    except DockerException as exc:
        if required:
            module.fail_json(msg="Cannot connect to the Docker daemon at %s to find the Gluetun containers: %s" % (
                where, exc))
        module.warn("Docker at %s does not answer (%s): health is judged from the control servers alone" % (
            where, exc))
        return None


def _mask_url_passwords(module):
    """A password put in an api_url by mistake is refused, and must not be echoed back either."""
    for item in module.params["instances"] or []:
        url = item.get("api_url") or ""
        try:
            secret = urlsplit(url).password
        except ValueError:
            secret = None
        if secret:
            module.no_log_values.add(secret)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    _mask_url_passwords(module)
    try:
        instances = normalize_instances(params["instances"], params["api_port"], params["api_key"],
                                        params["username"], params["password"])
        check_timeouts(params["timeout"], params["wait_timeout"])
        check_seconds(params["docker_timeout"], "docker_timeout", example=60)
    except GluetunConfigError as exc:
        fail(module, exc)

    docker_api = _docker_api(module, instances)
    try:
        vpns = probe_instances(
            docker_api, instances, api_port=params["api_port"], timeout=params["timeout"],
            wait_timeout=params["wait_timeout"], require_forwarded_port=params["require_forwarded_port"],
            vpn_status=params["vpn_status"], check_mode=module.check_mode,
            docker_where=" (%s)" % docker_host_from(params["docker_host"]))
    except GluetunConfigError as exc:
        fail(module, exc)

    for vpn in vpns:
        for warning in vpn["warnings"]:
            module.warn("%s: %s" % (vpn["name"], warning))
    result = dict(
        changed=any(vpn["changed"] for vpn in vpns),
        vpns=vpns,
        all_healthy=all(vpn["healthy"] and vpn["error"] is None for vpn in vpns),
        forwarded_ports=dict((vpn["name"], vpn["forwarded_port"]) for vpn in vpns),
    )
    failed = [vpn for vpn in vpns if vpn["error"]]
    if failed and params["fail_on_unhealthy"]:
        details = " | ".join(vpn["error"] for vpn in failed)
        module.fail_json(msg="%d of %d Gluetun instance(s) not ready: %s" % (len(failed), len(vpns), details), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
