#!/usr/bin/python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_files
short_description: Write a stack's directories and files, with their modes, and remove its old ones, in one call
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Brings a set of directories and files on the target to the given contents and modes, and removes the paths
    listed in O(absent), in one module call. The collection's roles use it for a stack's env files, control-server
    auth files, generated keys and C(docker-compose.yml) record, in one call instead of two per file with
    M(ansible.builtin.copy), which is what a run that changes nothing spends most of its time on.
  - Files are written atomically (a temporary file in the same directory renamed over the old one) and get their
    mode before the rename, so a secret file is never readable with a wider mode, nor half-written.
  - Contents given as O(files[].secret_content) never appear in the output, in the diff or at C(-vvv); the diff
    says only that such a file is created or changed.
  - Everything is checked before anything is touched. A bad option, or a path the module cannot take (a directory
    where a file must be, a symbolic link where a directory or a file must be, a path below a regular file, a NUL
    byte, a directory the user running the task may not write, a file system mounted read-only) fails the task
    with a message naming the option, the path and the fix, and nothing is changed. An error of the file system
    while writing (no space left on device, a read-only remount, ...) names the path, the error and its fix, and
    the changes made before it.
  - A directory that already exists is never loosened. By default (O(directories[].existing=tighten)) it only
    loses the permission bits its O(directories[].mode) lacks and keeps its setuid, setgid and sticky bits, so a
    shared V(1777) directory stays shared and a V(0700) one stays private. New directories get exactly their mode.
  - Ownership is left as the target's user creates it (root when the play uses C(become)).
attributes:
  check_mode:
    support: full
    description: Reports the same RV(changes) and C(changed) that the real run then makes, without any change.
  diff_mode:
    support: full
    description: One entry a changed path; contents of non-secret files before and after.
  idempotent:
    support: full
    description: A second run with the same options reports C(changed=false).
options:
  directories:
    description:
      - Directories that must exist, created in the order given with exactly their O(directories[].mode)
        (missing parents are created with mode C(0755)). What happens to the mode of a directory that already
        exists is O(directories[].existing).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      mode:
        description:
          - Octal permission bits, quoted, such as V('0700'). The mode of a directory this task creates, and the
            most an existing one keeps with O(directories[].existing=tighten).
        type: raw
        default: '0755'
      existing:
        description:
          - What to do with the mode of a directory that already exists. None of them ever adds a permission bit
            the directory lacks, except V(enforce).
          - V(tighten) removes the permission bits that O(directories[].mode) lacks and keeps every other bit,
            setuid, setgid and sticky included (V(1777) with mode V('0755') becomes V(1755); V(0700) stays
            V(0700)). For directories that hold secrets, which must never be wider than their mode.
          - V(keep) leaves the mode as it is. For directories the user may have made before, with a mode of
            their own (the roles' C(acestream_stack_dir)).
          - V(enforce) sets exactly O(directories[].mode), adding bits and dropping setuid, setgid and sticky
            bits. Only when the directory is the stack's alone.
        type: str
        choices: [keep, tighten, enforce]
        default: tighten
  files:
    description:
      - Regular files that must hold exactly this content with this mode (missing parent directories are created
        with mode C(0755)).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      content:
        description:
          - The content, shown in the diff. Give exactly one of O(files[].content) and O(files[].secret_content).
        type: str
      secret_content:
        description:
          - The content of a file holding keys or credentials, never shown in output or diff.
        type: str
      mode:
        description: Octal permission bits, quoted, such as V('0600').
        type: raw
        default: '0644'
      replace:
        description:
          - V(false) writes the file only when it does not exist, and never changes the content of an existing
            one (its mode is still converged). The creation is atomic and exclusive - of two runs creating the
            file at once, the first wins and the other leaves it - so that a key generated by one run and read
            back is the key every run uses.
        type: bool
        default: true
  absent:
    description:
      - Paths to remove, files or whole directory trees. A path already absent is not a change. A path may not be in
        O(absent) and in O(directories) or O(files) at once.
    type: list
    elements: path
    default: []
  absent_if_empty:
    description:
      - Directories to remove only when nothing is left in them once O(absent) and the other directories of this
        list are removed (deepest first, whatever the order given). A directory with anything else in it, or a
        path that is not a directory, is left as it is and listed in RV(kept). For directories the user may have
        had before the stack, or may share with it.
    type: list
    elements: path
    default: []
notes:
  - Removing a directory in O(absent) removes everything under it; O(absent_if_empty) removes only empty ones. The
    roles list only paths they create; with C(acestream_state=absent) they remove their files by name and their
    directories with O(absent_if_empty), never the stack directory.
  - Check mode and C(--diff) show each change with the mode before and after, the creation of missing parents
    included; a directory left as it is (O(directories[].existing=keep), or already within its mode) is not a
    change.
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Write a Gluetun container's files
  acestream.orchestrator.stack_files:
    directories:
      # Created 0755; left as it is when it exists (a shared 1777 or a private 0700 directory stays so).
      - path: /opt/acestream/pool1
        mode: "0755"
        existing: keep
      # Created 0700; an existing one loses any group or other bit (existing: tighten, the default).
      - path: /opt/acestream/pool1/gluetun/gluetun1
        mode: "0700"
    files:
      - path: /opt/acestream/pool1/gluetun/gluetun1/gluetun.env
        secret_content: "WIREGUARD_PRIVATE_KEY={{ wireguard_private_key }}\n"
        mode: "0600"
      - path: /opt/acestream/pool1/docker-compose.yml
        content: "{{ lookup('ansible.builtin.template', 'docker-compose.yml.j2') }}"
        mode: "0644"

- name: Remove them again, and their directories unless something else is in them
  acestream.orchestrator.stack_files:
    absent:
      - /opt/acestream/pool1/gluetun/gluetun1/gluetun.env
      - /opt/acestream/pool1/docker-compose.yml
    absent_if_empty:
      - /opt/acestream/pool1/gluetun
      - /opt/acestream/pool1/gluetun/gluetun1
"""

RETURN = r"""
changes:
  description: What was changed (or, in check mode, would be), in order. Contents are not included.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
    kind:
      description: V(directory), V(file) (or V(other) for a removed symbolic link or special file).
      type: str
    action:
      description: V(create), V(update) (content), V(mode) (mode only) or V(remove).
      type: str
  sample: [{"path": "/opt/acestream/pool1/gluetun/gluetun1/gluetun.env", "kind": "file", "action": "update"}]
kept:
  description: The paths of O(absent_if_empty) left in place, and why.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
    reason:
      description: Why it was left, for example that something the task does not remove is in it.
      type: str
  sample: [{"path": "/opt/acestream/pool1/gluetun", "reason": "not empty: 1 entries the task does not remove"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import fail
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_files import (
    StackFilesError,
    apply,
    describe_os_error,
    plan,
    report,
    validate,
)


def argument_spec():
    return dict(
        directories=dict(type="list", elements="dict", default=[], options=dict(
            path=dict(type="path", required=True),
            mode=dict(type="raw", default="0755"),
            existing=dict(type="str", default="tighten", choices=["keep", "tighten", "enforce"]),
        )),
        files=dict(type="list", elements="dict", default=[], options=dict(
            path=dict(type="path", required=True),
            content=dict(type="str"),
            secret_content=dict(type="str", no_log=True),
            mode=dict(type="raw", default="0644"),
            replace=dict(type="bool", default=True),
        ), mutually_exclusive=[("content", "secret_content")], required_one_of=[("content", "secret_content")]),
        absent=dict(type="list", elements="path", default=[]),
        absent_if_empty=dict(type="list", elements="path", default=[]),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        directories, files, absent = validate(params["directories"], params["files"], params["absent"],
                                              params["absent_if_empty"])
        changes, kept = plan(directories, files, absent)
    except StackFilesError as exc:
        fail(module, exc)
    if changes and not module.check_mode:
        try:
            apply(changes)
        except OSError as exc:
            done = report([change for change in changes if change.get("done")])[0]
            failed = next(change["path"] for change in changes if not change.get("done"))
            module.fail_json(msg=f"{describe_os_error(exc, failed)} (the changes before it were made)",
                             changes=done, changed=bool(done), kept=kept)
    done, diff = report(changes)
    module.exit_json(changed=bool(changes), changes=done, diff=diff, kept=kept)


if __name__ == "__main__":
    main()
