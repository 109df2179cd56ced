# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gluetun_instances
short_description: Describe each Gluetun container of a stack - environment, files, published ports
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Turns the stack's Gluetun containers and their port plan into what converging them takes - one entry per
    container with its environment, its published ports and the entries of M(acestream.orchestrator.stack_files)
    for its directories and its 0600 env and auth files.
  - The environment is O(env) merged with the container's own C(env) (which wins), every value a string -
    booleans V(on)/V(off) as Gluetun spells them, V(null) empty - plus C(HTTP_CONTROL_SERVER_ADDRESS) from the
    plan and, with O(auth_toml), C(HTTP_CONTROL_SERVER_AUTH_CONFIG_FILEPATH).
  - The container publishes its control server with the plan's C(api_port_mapping) (on O(api_bind)) and its
    engine range, host port = container port (on O(port_range_bind)).
  - The result holds secrets (the environment, the auth file), so use it in C(no_log) tasks only.
  - Fails on a bad variable name, a mapping, list or multi-line value in the environment, a container not in the
    plan, or a plan without control servers.
options:
  _input:
    description: The Gluetun containers, in order - each with C(name) and optionally C(env).
    type: list
    elements: dict
    required: true
  plan:
    description:
      - Their port plan, from P(acestream.orchestrator.port_plan#filter) with O(acestream.orchestrator.port_plan#filter:api_port)
        (the control servers planned).
    type: dict
    required: true
  stack_dir:
    description: The stack's directory on the host; each container's files go under C(STACK_DIR/gluetun/NAME).
    type: str
    required: true
  stack_name:
    description: The stack's name, written in the env files' header.
    type: str
    required: true
  env:
    description: Environment for every container; each container's own C(env) overrides it.
    type: dict
    default: {}
  api_bind:
    description: The host address of the published control servers (empty for every interface).
    type: str
    default: ""
  port_range_bind:
    description: The host address of the published engine ranges (empty for every interface).
    type: str
    default: ""
  auth_toml:
    description:
      - The control-server auth file's content, written to C(auth/config.toml) of each container (mode 0600) and
        mounted at O(auth_dir). V(null) or empty for a Gluetun release without authentication (the auth
        directories are then to be removed).
    type: str
  auth_dir:
    description: Where the auth directory is mounted inside the Gluetun containers.
    type: str
    default: /gluetun/auth
  secret_pattern:
    description:
      - C(acestream_secret_env_pattern); each entry then says which variables the compose record may show
        (RV(_value[].env_shown)) and which it may not (RV(_value[].env_secrets)).
    type: str
  config_hash_key:
    description:
      - The kept key of the config-hash label. Given, each entry also has the container's RV(_value[].labels) and
        RV(_value[].mounts).
    type: str
  release:
    description: The Gluetun release the auth file is written for (its label). Required with O(config_hash_key).
    type: str
  healthcheck:
    description: C(acestream_gluetun_healthcheck), part of the config-hash label (a healthcheck dropped shows there).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Describe each Gluetun container
  ansible.builtin.set_fact:
    gluetun: >-
      {{ gluetun_containers | acestream.orchestrator.gluetun_instances(
           plan=plan, stack_dir='/opt/acestream/acestream', stack_name='acestream',
           env={'VPN_SERVICE_PROVIDER': 'protonvpn', 'VPN_PORT_FORWARDING': true},
           api_bind='127.0.0.1', auth_toml=auth_toml) }}
  no_log: true

- name: Write their files
  acestream.orchestrator.stack_files:
    directories: "{{ gluetun | map(attribute='directories') | flatten(levels=1) }}"
    files: "{{ gluetun | map(attribute='files') | flatten(levels=1) }}"
    absent: "{{ gluetun | map(attribute='absent') | flatten(levels=1) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: One entry per Gluetun container, in the input order.
  type: list
  elements: dict
  contains:
    name: {description: The container name., type: str}
    index: {description: Its position in the plan (0-based)., type: int}
    api_host_port: {description: The external host port of its control server., type: int}
    range: {description: "Its engine range, C(START-END).", type: str}
    dir: {description: "Its directory, C(STACK_DIR/gluetun/NAME).", type: str}
    env_file: {description: Its env file's path., type: str}
    auth_dir: {description: Its auth directory's path on the host., type: str}
    state_dir:
      description: "Its state directory on the host (C(DIR/state)), mounted at C(/gluetun): never shared between VPNs."
      type: str
    env: {description: Its environment (secrets included)., type: dict}
    env_shown: {description: "With O(secret_pattern): the variables the compose record shows (no secret).", type: dict}
    env_secrets: {description: "With O(secret_pattern): the names of the variables it hides.", type: list, elements: str}
    published:
      description: Its published ports - the control server's mapping, then the engine range.
      type: list
      elements: str
      sample: ["127.0.0.1:8002:8001", "19050-19099:19050-19099"]
    labels:
      description:
        - "With O(config_hash_key): its labels - the manager, the pool, the release, its index and the config hash,
          a keyed hash of what the container cannot show by itself (the auth file, the healthcheck given, the
          release) that reveals nothing of it."
      type: dict
    mounts:
      description: "With O(config_hash_key): its state directory at C(/gluetun), its auth directory read-only at O(auth_dir)."
      type: list
      elements: dict
    directories:
      description: Its directories (mode 0700) as M(acestream.orchestrator.stack_files) takes them.
      type: list
      elements: dict
    files:
      description: Its env file and auth file (mode 0600, as C(secret_content)) as M(acestream.orchestrator.stack_files) takes them.
      type: list
      elements: dict
    absent:
      description: Paths to remove - the auth directory when there is no auth file.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_stack import (
    gluetun_instances as _gluetun_instances,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import GLUETUN_AUTH_DIR
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def gluetun_instances(containers, plan=None, stack_dir=None, stack_name=None, env=None, api_bind="",
                      port_range_bind="", auth_toml=None, auth_dir=GLUETUN_AUTH_DIR, secret_pattern=None,
                      config_hash_key=None, release=None, healthcheck=None):
    """The container descriptions (see RETURN)."""
    try:
        return _gluetun_instances(containers, plan, stack_dir, stack_name, env=env, api_bind=api_bind,
                                  port_range_bind=port_range_bind, auth_toml=auth_toml, auth_dir=auth_dir,
                                  secret_pattern=secret_pattern, config_hash_key=config_hash_key, release=release,
                                  healthcheck=healthcheck)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.gluetun_instances: %s" % exc)


class FilterModule:
    """The acestream.orchestrator gluetun_instances filter."""

    def filters(self):
        return {"gluetun_instances": gluetun_instances}
