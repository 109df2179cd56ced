# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stacks the stack_events source watches, read from an Ansible inventory through the stack model: each host's
variables (group_vars, host_vars, vault through ANSIBLE_VAULT_PASSWORD_FILE), templated, resolved with the declared
defaults exactly as every playbook resolves them (``_stack_model.resolve``). A host whose stack has problems is
refused with the model's words (never a secret); an absent stack is not watched.

Private to this collection; imports Ansible (the source runs it in a child process of its own).
"""

from __future__ import annotations

import shlex

from ansible_collections.acestream.orchestrator.plugins.plugin_utils._stack_model import resolve
from ansible_collections.acestream.orchestrator.plugins.plugin_utils._stack_variables import VARIABLES


def _ansible():
    # pylint: disable=import-outside-toplevel
    from ansible import constants
    from ansible.cli import CLI
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar, trust_as_template
    from ansible.vars.manager import VariableManager

    init_plugin_loader()
    loader = DataLoader()
    files = [constants.DEFAULT_VAULT_PASSWORD_FILE] if constants.DEFAULT_VAULT_PASSWORD_FILE else []
    loader.set_vault_secrets(CLI.setup_vault_secrets(loader, constants.DEFAULT_VAULT_IDENTITY_LIST,
                                                     vault_password_files=files, auto_prompt=False))
    return loader, InventoryManager, VariableManager, Templar, trust_as_template


def _ssh(host, templar, merged, docker_host):
    """How Ansible reaches a remote host: its Docker socket (and control servers) go through that SSH connection."""
    def var(*names):
        for name in names:
            value = templar.template(merged.get(name))
            if value not in (None, ""):
                return value
        return None

    return {"destination": var("ansible_host", "ansible_ssh_host") or host.name,
            "user": var("ansible_user", "ansible_ssh_user"), "port": var("ansible_port", "ansible_ssh_port"),
            "private_key_file": var("ansible_ssh_private_key_file", "ansible_private_key_file"),
            "args": shlex.split(var("ansible_ssh_common_args") or "") + shlex.split(var("ansible_ssh_extra_args") or ""),
            "docker_socket": docker_host[len("unix://"):] if docker_host else "/var/run/docker.sock"}


def stacks_from_inventory(sources, limit=None):
    """The stacks of an inventory (a list of stack dicts as the source takes them, secrets included)."""
    loader, inventory_manager, variable_manager, templar_class, trust_as_template = _ansible()
    inventory = inventory_manager(loader=loader, sources=sources)
    variables = variable_manager(loader=loader, inventory=inventory)
    # The declared defaults under the host's variables, so that a value naming one ("{{ acestream_pool_name }}")
    # templates as in a play.
    defaults = {name: trust_as_template(spec["default"]) if isinstance(spec["default"], str) else spec["default"]
                for name, spec in VARIABLES.items()}
    stacks = []
    for host in inventory.list_hosts(limit or "all"):
        given = variables.get_vars(host=host, include_hostvars=False)
        merged = dict(defaults, **given)
        templar = templar_class(loader=loader, variables=merged)
        model = resolve({name: templar.template(given[name]) for name in VARIABLES if name in given})
        if model["state"] == "absent":
            continue
        if model["problems"]:
            raise ValueError("the stack of inventory host %s cannot be watched: %s" % (
                host.name, " ".join(model["problems"])))
        values = model["vars"]
        connection = templar.template(merged.get("ansible_connection")) or ""
        docker_host = values["acestream_docker_host"] or None
        local = connection == "local" or host.name in ("localhost", "127.0.0.1")
        ssh = None
        if not local and (not docker_host or docker_host.startswith("unix://")):
            ssh = _ssh(host, templar, merged, docker_host)
            docker_host = None
        stacks.append({
            "host": host.name, "pool": values["acestream_pool_name"], "docker_host": docker_host,
            "gluetun": model["gluetun_instances"], "api_port": values["acestream_gluetun_api_port"],
            "api_key": values["acestream_gluetun_api_key"] or None,
            "api_key_file": None if values["acestream_gluetun_api_key"] else model["paths"]["gluetun_api_key"],
            "replicas": int(values["acestream_engine_replicas"]),
            "ssh": ssh,
        })
    return stacks
