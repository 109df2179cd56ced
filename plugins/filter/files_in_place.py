# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: files_in_place
short_description: Tell whether a stack_files call would change nothing, from what the target read
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Takes the options of a M(acestream.orchestrator.stack_files) call and the C(file_states) that
    M(acestream.orchestrator.stack_host) read of its paths, and says whether the call would change nothing - so a
    run with nothing to change leaves that module run out.
  - Makes the same decisions as M(acestream.orchestrator.stack_files) (a directory's mode after its C(existing),
    a file's mode and content, what is to be removed), on what was read instead of the disk. Contents are compared by
    their digests keyed with O(key), never as text.
  - V(false) whenever it cannot tell - a path that was not read, no O(key), an option the module would refuse - the
    module then runs and decides, or says why not.
options:
  _input:
    description: The options of the M(acestream.orchestrator.stack_files) call.
    type: dict
    required: true
  states:
    description: The C(file_states) M(acestream.orchestrator.stack_host) returned.
    type: dict
    required: true
  key:
    description: The key those digests were made with (the text of the read's O(acestream.orchestrator.stack_host#module:file_states_key), stripped).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Write the stack's files, unless they are in place already
  acestream.orchestrator.stack_files: "{{ files }}"
  when: not (files | acestream.orchestrator.files_in_place(states=host.file_states, key=hash_key))
  vars:
    files:
      directories: [{path: /opt/acestream, mode: "0755", existing: keep}]
      files: [{path: /opt/acestream/docker-compose.yml, mode: "0644", content: "{{ compose }}"}]
"""

RETURN = r"""
_value:
  description: Whether the M(acestream.orchestrator.stack_files) call would change nothing.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_files import in_place


def files_in_place(options, states=None, key=""):
    """Whether the stack_files call would change nothing (see RETURN)."""
    if not isinstance(options, dict) or not isinstance(states, dict):
        raise AnsibleFilterError("acestream.orchestrator.files_in_place: give the stack_files options (a mapping) and "
                                 "states=<the file_states of acestream.orchestrator.stack_host>")
    return in_place(states, key or "", options.get("directories"), options.get("files"), options.get("absent"),
                    options.get("absent_if_empty"))


class FilterModule:
    """The acestream.orchestrator files_in_place filter."""

    def filters(self):
        return {"files_in_place": files_in_place}
