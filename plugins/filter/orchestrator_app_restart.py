# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: orchestrator_app_restart
short_description: Why the running AceStream Orchestrator app must be restarted
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - The app's start-up removes every engine carrying the stack's label and provisions them again, so a restart
    repairs engines that are not whole (left in an old network namespace by a Gluetun container re-created or
    restarted, beyond the replicas or missing, two on one port, crash-looping, the forwarded engine wrong) and an
    app that is crash-looping or paused. P(acestream.orchestrator.orchestrator_app#role) restarts the app when this
    filter gives a reason.
  - The app reads its engine settings files at start, and a file replaced on the host reaches its bind mount only
    at the next start, so a rewrite of those files (by the app's own settings API or by a hand, the stack's settings
    unchanged) is a reason too.
options:
  _input:
    description:
      - The drift actions of M(acestream.orchestrator.stack_info)
        (RV(acestream.orchestrator.stack_info#module:drift.actions)); those with C(action=restart) count.
    type: list
    elements: dict
    required: true
  file_changes:
    description: The RV(acestream.orchestrator.stack_files#module:changes) of this run.
    type: list
    elements: dict
    default: []
  settings_paths:
    description: The engine settings files on the host.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Tell whether the app needs a restart
  ansible.builtin.set_fact:
    restart_reasons: >-
      {{ stack.drift.actions | acestream.orchestrator.orchestrator_app_restart(
           file_changes=files.changes, settings_paths=[settings_file, custom_variant_file]) }}
"""

RETURN = r"""
_value:
  description: Why the app must be restarted, one reason each; empty when it need not be.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import (
    AppError,
    restart_reasons,
)


def orchestrator_app_restart(drift_actions, file_changes=None, settings_paths=None):
    """The reasons (see RETURN)."""
    try:
        return restart_reasons(drift_actions, file_changes or [], settings_paths or [])
    except AppError as exc:
        raise AnsibleFilterError("acestream.orchestrator.orchestrator_app_restart: %s" % exc)


class FilterModule:
    """The acestream.orchestrator orchestrator_app_restart filter."""

    def filters(self):
        return {"orchestrator_app_restart": orchestrator_app_restart}
