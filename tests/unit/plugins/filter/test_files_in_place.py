# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files_in_place filter: stack_files options and the read's file_states in, _stack_files.in_place's answer out."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.files_in_place import files_in_place
from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_files

KEY = "k" * 32


def test_in_place_after_the_files_were_written_and_not_before(tmp_path):
    options = {"directories": [{"path": str(tmp_path / "stack"), "mode": "0700"}],
               "files": [{"path": str(tmp_path / "stack" / "gluetun.env"), "secret_content": "A=1\n", "mode": "0600"}]}
    paths = [str(tmp_path / "stack"), str(tmp_path / "stack" / "gluetun.env")]
    assert files_in_place(options, states=_stack_files.file_states(paths, KEY), key=KEY) is False
    dirs, files, absent = _stack_files.validate(options["directories"], options["files"])
    _stack_files.apply(_stack_files.plan(dirs, files, absent)[0])
    assert files_in_place(options, states=_stack_files.file_states(paths, KEY), key=KEY) is True
    assert files_in_place(options, states=_stack_files.file_states(paths, KEY), key="") is False


@pytest.mark.parametrize("options, states", [([], {}), ({}, None), ("files", {})])
def test_input_of_another_kind_is_refused_by_name(options, states):
    with pytest.raises(AnsibleFilterError, match="files_in_place: give the stack_files options"):
        files_in_place(options, states=states, key=KEY)
