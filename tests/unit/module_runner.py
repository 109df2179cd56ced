# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs a module's main() in-process, as Ansible would on the target, for the module unit tests."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module_main(main, capsys, args, check_mode=False, diff=False):
    """main() with these module arguments (and check or diff mode): (exit code, parsed result, raw output)."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            main()
    raw = capsys.readouterr().out
    return exc.value.code, json.loads(raw), raw
