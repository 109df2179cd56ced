# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: forwarded_port
short_description: The port a Gluetun VPN container forwards
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Returns, for each term, the port forwarded by the VPN provider of that Gluetun container (one element per
    term), on every Gluetun release from v3.39.0 to C(latest), with or without control-server authentication.
  - "Asks C(GET /v1/portforward) (v3.41.0+) and, where it is absent, C(GET /v1/openvpn/portforwarded), following its
    301 with the same credentials; reads every answer shape (C(port), C(ports), both, C(null))."
  - "B(Runs on the Ansible controller), not on the target host. It reaches: the Docker daemon of O(docker_host)
    (default E(DOCKER_HOST), else the controller's own socket), to find the container's published control-server
    port; and the control server at that port. A port published on C(127.0.0.1) and a container's bridge IP
    are reachable only when that Docker daemon runs on the controller. For a container on another host, either
    give a URL term (or O(api_url)) reachable from the controller, set O(docker_host) to that host's daemon and
    publish the port on an interface the controller can reach, or run M(acestream.orchestrator.gluetun_status) on
    that host and read its RV(acestream.orchestrator.gluetun_status#module:forwarded_ports)."
  - Instances are asked in parallel. A port of 0 (none forwarded yet, for example just after a VPN reconnect) is
    not returned as a port; it is an error, C(Failed to get forwarded port from Gluetun), unless O(wait) lets it
    arrive.
options:
  _terms:
    description:
      - Gluetun container names (letters, digits, C(_), C(.), C(-)), or control-server base URLs such as
        V(http://127.0.0.1:8001) (no credentials in them).
    type: list
    elements: str
    required: true
  api_port:
    description:
      - The INTERNAL control-server port, as the seed's E(GLUETUN_API_PORT), that is the port of the container's
        E(HTTP_CONTROL_SERVER_ADDRESS). The published (external) port is found from Docker.
    type: int
    default: 8000
  api_url:
    description:
      - Base URL of the control server, when it cannot be found from Docker. Only with a single term (the term is
        then just a label); for several, give URL terms.
    type: str
  api_key:
    description:
      - API key of a Gluetun role with C(auth = "apikey"), sent as C(X-API-Key). Not with O(username).
      - Printable ASCII characters only (letters, digits, punctuation; spaces only between them). A line break (a
        YAML C(|) block ends with one), another control character, a space at either end, a non-ASCII character
        or a value that is not a string (a list, a number) is refused before any request, by name; the value is
        never shown.
    type: str
  username:
    description:
      - User of a Gluetun role with C(auth = "basic"). Requires O(password).
      - A string without C(:) and without control characters (line breaks, tabs, NUL).
    type: str
  password:
    description:
      - Password of a Gluetun role with C(auth = "basic").
      - A string without control characters (line breaks, tabs, NUL); never shown.
    type: str
  timeout:
    description: Seconds allowed for each control-server request, from the connect to the last byte of the answer; a
      finite number above 0.
    type: float
    default: 5
  wait:
    description:
      - Seconds to wait for a non-zero forwarded port (V(0) asks once). A 401 ends the wait at once.
      - A finite number, 0 or more; C(nan) or C(inf) is refused.
    type: float
    default: 0
  docker_host:
    description:
      - The Docker daemon that knows the containers, for example V(unix:///var/run/docker.sock),
        V(tcp://docker1.example.com:2376) or V(ssh://admin@docker1.example.com).
      - Not needed for URL terms or with O(api_url).
    type: str
    env:
      - name: DOCKER_HOST
  all_ports:
    description: Return the list of every forwarded port of each term instead of the first one.
    type: bool
    default: false
  term_errors:
    description:
      - What to do, term by term, when a term's port cannot be read (unreachable, 401, no port forwarded).
      - V(strict) fails the lookup; V(warn) shows a warning and returns V(null) (V([]) with O(all_ports)) for that
        term while the other terms keep their ports; V(ignore) does the same silently.
      - Invalid options fail the lookup whatever this says.
    type: str
    choices: [strict, warn, ignore]
    default: strict
  errors:
    description:
      - "Ansible's own keyword for every lookup, handled by Ansible before this plugin runs, for the whole call:
        V(strict) fails the task, V(warn) shows the error as a warning and makes the whole result V(null)
        (V([]) with C(query) or C(wantlist=true)), V(ignore) does the same silently."
      - To keep the ports of the terms that answered, use O(term_errors) instead.
    type: str
    choices: [strict, warn, ignore]
    default: strict
notes:
  - Credentials are never shown, in results, errors or at any verbosity. Keep them in a vault.
  - The forwarded port changes after every reconnect with some providers (ProtonVPN). A lookup is evaluated each time
    the expression is templated; store it with M(ansible.builtin.set_fact) when one value must be used throughout.
seealso:
  - module: acestream.orchestrator.gluetun_status
"""

EXAMPLES = r"""
- name: The forwarded port of gluetun1 (its control server listens on :8001 inside the container)
  ansible.builtin.debug:
    msg: >-
      {{ lookup('acestream.orchestrator.forwarded_port', 'gluetun1',
                api_port=8001, api_key=vault_gluetun_api_key) }}

- name: Both VPNs of the seed's redundant mode, waiting up to a minute for their ports
  ansible.builtin.set_fact:
    vpn_ports: >-
      {{ query('acestream.orchestrator.forwarded_port', 'gluetun1', 'gluetun2', api_port=8001,
               api_key=vault_gluetun_api_key, wait=60) }}

- name: A control server reached by URL, every port (multi-port providers), no failure when none yet
  ansible.builtin.set_fact:
    remote_ports: >-
      {{ lookup('acestream.orchestrator.forwarded_port', 'http://10.0.0.12:8001', all_ports=true,
                username='monitor', password=vault_gluetun_monitor_password, errors='warn') }}

- name: Several VPNs; one that does not answer gives null, the others their port
  ansible.builtin.set_fact:
    vpn_ports: >-
      {{ query('acestream.orchestrator.forwarded_port', 'gluetun1', 'gluetun2', api_port=8001,
               api_key=vault_gluetun_api_key, term_errors='warn') }}
"""

RETURN = r"""
_list:
  description:
    - One element per term, in order. The first forwarded port (an integer), or with O(all_ports) the list of
      every forwarded port.
    - With O(term_errors=warn) or O(term_errors=ignore), V(null) (or V([])) for a term whose port could not be read.
  type: list
  elements: raw
"""

from urllib.parse import urlsplit

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    DockerException,
    HAS_DOCKER,
    docker_client,
    docker_host_from,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_api import (
    GluetunConfigError,
    credential_problem,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_probe import (
    check_timeouts,
    normalize_instances,
    read_forwarded_ports,
)

display = Display()


def _host_address(docker_host):
    """The address of the Docker host as the controller sees it; None when it is the controller itself."""
    parts = urlsplit(docker_host)
    if parts.scheme in ("unix", "npipe", "") or not parts.hostname:
        return None
    host = parts.hostname
    if host in ("localhost", "127.0.0.1", "::1"):
        return None
    return host


def _refuse_credentials_of_other_types(kwargs):
    """A credential that is not text (a list, a mapping, a number) is refused by name before Ansible's option
    handling, whose own error would quote it. A vaulted string is text (ansible-core 2.19's EncryptedString, or the
    AnsibleVaultEncryptedUnicode of earlier releases): it is checked once decrypted."""
    for field in ("api_key", "username", "password"):
        value = kwargs.get(field)
        vaulted = hasattr(value, "_decrypt") or hasattr(value, "vault")
        if value is not None and not isinstance(value, str) and not vaulted:
            raise AnsibleLookupError("forwarded_port: %s %s" % (field, credential_problem(field, value)))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        _refuse_credentials_of_other_types(kwargs)
        self.set_options(var_options=variables, direct=kwargs)
        errors = self.get_option("term_errors")
        all_ports = self.get_option("all_ports")
        api_url = self.get_option("api_url")
        if not terms:
            raise AnsibleLookupError("forwarded_port needs at least one Gluetun container name or URL")
        instances, order = [], []
        for term in terms:
            if not isinstance(term, str) or not term.strip(" "):
                raise AnsibleLookupError("forwarded_port terms must be Gluetun container names or URLs, not %r" % (term,))
            term = term.strip(" ")
            if term.startswith(("http://", "https://")):
                try:
                    has_credentials = urlsplit(term).password is not None or urlsplit(term).username is not None
                except ValueError:
                    has_credentials = False
                if has_credentials:
                    raise AnsibleLookupError("forwarded_port: a URL term must not carry credentials (api_url must not "
                                             "carry credentials): give them as api_key, or username and password")
            if term not in order:
                order.append(term)
                if term.startswith(("http://", "https://")):
                    instances.append({"name": term, "api_url": term})
                elif api_url:
                    instances.append({"name": term, "api_url": api_url})
                else:
                    instances.append({"name": term})
        if api_url and len(order) > 1:
            raise AnsibleLookupError("api_url applies to a single term; for several control servers give URL terms")

        try:  # bad options fail before any request, whatever term_errors says
            normalize_instances(instances, self.get_option("api_port"), self.get_option("api_key"),
                                self.get_option("username"), self.get_option("password"))
            check_timeouts(self.get_option("timeout"), self.get_option("wait"), wait_name="wait")
        except GluetunConfigError as exc:
            raise AnsibleLookupError("forwarded_port: %s" % exc)

        docker_api, docker_host = None, docker_host_from(self.get_option("docker_host"))
        if any(not inst.get("api_url") for inst in instances):
            names = ", ".join(inst["name"] for inst in instances if not inst.get("api_url"))
            if not HAS_DOCKER:
                raise AnsibleLookupError(
                    "forwarded_port needs the Docker SDK for Python (pip install docker) on the controller to find "
                    "the control server of %s; or give URL terms / api_url" % names)
            try:
                docker_api = docker_client(docker_host, 60)
            except DockerException as exc:
                return self._fail_all(terms, errors, all_ports, "%s: cannot connect to the Docker daemon at %s "
                                      "(it runs on the controller) to find %s: %s" % (
                                          "Failed to get forwarded port from Gluetun", docker_host, names, exc))
        try:
            results = read_forwarded_ports(
                docker_api, instances, api_port=self.get_option("api_port"), api_key=self.get_option("api_key"),
                username=self.get_option("username"), password=self.get_option("password"),
                timeout=self.get_option("timeout"), wait_timeout=self.get_option("wait"),
                host_address=_host_address(docker_host), docker_where=" (%s)" % docker_host)
        except GluetunConfigError as exc:
            raise AnsibleLookupError("forwarded_port: %s" % exc)
        finally:
            if docker_api is not None:
                docker_api.close()
        by_name = dict((result["name"], result) for result in results)

        failures = [by_name[term]["error"] for term in order if by_name[term]["error"]]
        if failures and errors == "strict":
            raise AnsibleLookupError(" | ".join(failures))
        if errors == "warn":
            for failure in failures:
                display.warning(failure)
        values = []
        for term in terms:
            result = by_name[term.strip(" ")]
            if result["error"]:
                values.append([] if all_ports else None)
            else:
                values.append(list(result["forwarded_ports"]) if all_ports else result["forwarded_port"])
        return values

    @staticmethod
    def _fail_all(terms, errors, all_ports, message):
        if errors == "strict":
            raise AnsibleLookupError(message)
        if errors == "warn":
            display.warning(message)
        return [[] if all_ports else None for _term in terms]
