# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What docker_container changed in each container, from its diff: created, started, the names of the environment
variables changed (never a value), labels and other settings before and after.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

import json

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import _sequence, StackCheckError
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of


# --------------------------------------------------------------------------------------- what changed
def _env_items(value):
    if isinstance(value, dict):
        return {"%s=%s" % (key, item) for key, item in value.items()}
    return {str(item) for item in value or []}


def container_changes(results):
    """``[{container, changes}]`` for each changed docker_container result (``results`` of a loop), from its diff:
    ``created``, ``started``, ``env: NAMES (values not shown)``, ``labels: NAME=VALUE, ...`` or ``KEY: BEFORE ->
    AFTER``. No value of the environment ever appears."""
    out = []
    for result in _sequence(results, "results"):
        if not isinstance(result, dict):
            raise StackCheckError("each result must be a mapping as docker_container registers it, not %s"
                                  % kind_of(result))
        if not result.get("changed"):
            continue
        item = result.get("item")
        container = item.get("name") if isinstance(item, dict) else item
        if container is None:
            container = (result.get("container") or {}).get("Name", "?").lstrip("/")
        diff = result.get("diff") or {}
        before, after = diff.get("before") or {}, diff.get("after") or {}
        lines = []
        if "exists" in before and not before["exists"]:
            lines.append("created")
        else:
            for key in sorted(after):
                if key == "env":
                    old, new = _env_items(before.get("env")), _env_items(after.get("env"))
                    names = sorted({entry.split("=", 1)[0] for entry in old ^ new})
                    if names:
                        lines.append("env: %s (values not shown)" % ", ".join(names))
                elif key == "labels":
                    old, new = before.get("labels") or {}, after.get("labels") or {}
                    changed = ["%s=%s" % (name, new[name]) for name in new if old.get(name) != new[name]]
                    if changed:
                        lines.append("labels: %s" % ", ".join(changed))
                elif key not in ("exists", "running"):
                    old, new = json.dumps(before.get(key), default=str), json.dumps(after[key], default=str)
                    lines.append("%s: %s -> %s" % (key, old, new))
            if not lines:
                lines.append("started")
        out.append({"container": str(container), "changes": lines})
    return out
