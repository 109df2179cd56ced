# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a module's main() in-process, as Ansible would on the target, for the module unit tests.

Works the same on every ansible-core release meta/runtime.yml promises (2.19 and newer): the module arguments
are handed over the way AnsibleModule reads them on every release (``basic._ANSIBLE_ARGS``), and the result
always carries ``invocation`` (2.21 adds it only when the controller asks, with ``_ansible_inject_invocation``).
"""

from __future__ import annotations

import contextlib
import json
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import parameters
from ansible.module_utils.common import warnings as module_warnings


@contextlib.contextmanager
def module_args(args):
    """AnsibleModule instances created in this context read these arguments (what ansible-core's own
    ``ansible.module_utils.testing.patch_module_args`` does on 2.19 and newer, on every release)."""
    args = dict(args)
    if "inject_invocation" in parameters.PASS_VARS:
        args.setdefault("_ansible_inject_invocation", True)
    patches = [mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())]
    if hasattr(basic, "_ANSIBLE_PROFILE"):  # 2.19 and newer: how the arguments are serialized
        patches.append(mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy"))
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def fresh_module_state(monkeypatch):
    """Start an in-process module run with no warning or deprecation left from an earlier one (ansible-core keeps
    them process-wide: a list before 2.19, a dict since), run as on a target even when a controller plugin was
    imported in the process (2.19 and newer would send the module's warnings to the controller's display)."""
    for name in ("_global_warnings", "_global_deprecations"):
        if hasattr(module_warnings, name):
            monkeypatch.setattr(module_warnings, name, type(getattr(module_warnings, name))())
    try:
        from ansible.module_utils import _internal
    except ImportError:  # before 2.19: no controller/target distinction in module_utils
        return
    if hasattr(_internal, "is_controller"):
        monkeypatch.setattr(_internal, "is_controller", False)


def warning_texts(out):
    """The texts of a module result's warnings, whatever their shape (strings, or dicts with the event's msg)."""
    texts = []
    for warning in out.get("warnings", []):
        if isinstance(warning, dict):
            warning = (warning.get("event") or {}).get("msg", warning.get("msg", ""))
        texts.append(warning)
    return texts


def run_module_main(main, capsys, args, check_mode=False, diff=False):
    """main() with these module arguments (and check or diff mode): (exit code, parsed result, raw output)."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with module_args(args):
        with pytest.raises(SystemExit) as exc:
            main()
    raw = capsys.readouterr().out
    return exc.value.code, json.loads(raw), raw
