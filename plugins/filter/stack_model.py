# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: stack_model
short_description: One host's stack resolved from its variables, as every playbook of the collection reads it
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Applies the declared defaults of every stack variable (whichever roles a playbook loads), checks every value as
    the roles use it, and resolves the stack - the port plan, the Gluetun containers, the engine pool's options, the
    orchestrator app's deployment and environment, the names the stack owns and the paths of its files.
  - Every problem is returned in RV(_value.problems), each naming the variable and the fix (the port guide's, where
    it has one); values of secret variables are never shown. The same variables always give the same result.
  - Role P(acestream.orchestrator.common#role) resolves it first on every entry point (site, verify, drift, status,
    converge_engines) and fails on the problems before anything changes.
options:
  _input:
    description: The names of the host's variables, in the order of O(values); names the stack does not declare are ignored.
    type: list
    elements: str
    required: true
  values:
    description: The values of those variables, templated (P(ansible.builtin.vars#lookup) gives them in order).
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Resolve the stack of this host
  ansible.builtin.set_fact:
    stack: "{{ _names | acestream.orchestrator.stack_model(query('ansible.builtin.vars', *_names)) }}"
  vars:
    _names: "{{ query('ansible.builtin.varnames', '^acestream_') }}"
  no_log: true  # vars holds the API keys and the VPN credentials

- name: Fail on the stack's problems
  ansible.builtin.assert:
    that: stack.problems | length == 0
    fail_msg: "{{ stack.problems | join(' ') }}"
    quiet: true
"""

RETURN = r"""
_value:
  description: The resolved stack.
  type: dict
  contains:
    vars:
      description: Every stack variable, given or defaulted (secrets included).
      type: dict
    problems:
      description: Why the stack cannot be deployed as described; empty when it can.
      type: list
      elements: str
    state:
      description: "C(acestream_state)."
      type: str
    vpn_names:
      description: The Gluetun container names in order.
      type: list
      elements: str
    containers:
      description: The Gluetun containers with their defaults (C(env)).
      type: list
      elements: dict
    gluetun_instances:
      description: The control servers as P(acestream.orchestrator.gluetun_status#module) takes them.
      type: list
      elements: dict
    plan:
      description: The port plan (P(acestream.orchestrator.port_plan#filter)); null for an absent stack or a refused plan.
      type: dict
    pool:
      description: The options of P(acestream.orchestrator.engine_pool#module) (empty strings for the module's defaults).
      type: dict
    app:
      description: The orchestrator app's deployment (P(acestream.orchestrator.orchestrator_app#filter)); null when it is off.
      type: dict
    app_env:
      description: The orchestrator app's environment derived from the port plan; null when it is off.
      type: dict
    app_env_shown:
      description: The app's environment the compose record may show (the secret variables left out); null when it is off.
      type: dict
    app_env_secrets:
      description: The names of the app's secret environment variables; null when it is off.
      type: list
      elements: str
    app_paths:
      description: Where the app reads its engine settings inside its container.
      type: dict
    app_url:
      description: Where the app's published port answers.
      type: str
    labels:
      description: The label keys the stack writes on its containers and reads back.
      type: dict
    owned:
      description: The names the stack owns (C(pool), C(gluetun), C(app)) - by their labels on the host.
      type: dict
    paths:
      description: The stack's files and directories on the host.
      type: dict
    compose:
      description:
        - What the compose record names - the project (C(project)), each Gluetun container's env file and volumes
          relative to the stack directory (C(vpns)), the app's env file (C(app_env_file)) and published port
          (C(app_port), also the app container's).
      type: dict
    release_images:
      description: The images whose release label the roles read on the target.
      type: list
      elements: str
    orchestrator_host_port:
      description: The app's published port (C(name), C(port), C(bind)); empty when it is off.
      type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.plugin_utils._stack_model import StackModelError, resolve


def stack_model(names, values):
    """The resolved stack (see RETURN)."""
    if not isinstance(names, (list, tuple)) or not isinstance(values, (list, tuple)) or len(names) != len(values):
        raise AnsibleFilterError("acestream.orchestrator.stack_model takes a list of variable names and a list of "
                                 "their values, of the same length")
    try:
        return resolve(dict(zip(names, values)))
    except StackModelError as exc:
        raise AnsibleFilterError("acestream.orchestrator.stack_model: %s" % exc)


class FilterModule:
    """The acestream.orchestrator stack_model filter."""

    def filters(self):
        return {"stack_model": stack_model}
