# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack files module's core: check a set of directories, files and removals, plan what must change on disk,
apply the plan. Private: not an API for other collections.

Pure where it can be: ``validate`` and ``plan`` only read the file system (through ``observe``), ``apply`` writes.
Files are written atomically (a temporary file in the same directory, then a rename), with their mode set before the
rename, so a reader never sees a secret file with a wider mode or a half-written one.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile

MODE_RE = re.compile(r"^0?[0-7]{3}$")

SECRET_PLACEHOLDER = "(secret content, not shown)\n"
SECRET_CHANGED = "(secret content, changed, not shown)\n"
KINDS = {"directory": "a directory", "file": "a regular file", "other": "a symbolic link or special file"}


class StackFilesError(Exception):
    """A bad option, or a path the plan cannot take (an existing directory where a file must be)."""


def parse_mode(value, field):
    """'0600', '600' or an int such as 0o600 -> int. The error names the field and a valid example."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    text = str(value).strip()
    if not MODE_RE.match(text):
        raise StackFilesError(f"{field}: {value!r} is not an octal mode; quote it as a string such as '0600' or "
                              f"'0755' (permission bits only: no setuid, setgid or sticky bit)")
    return int(text, 8)


def _check_path(path, field):
    if not isinstance(path, str) or not path:
        raise StackFilesError(f"{field}: a path is required")
    if not os.path.isabs(path):
        raise StackFilesError(f"{field}: {path!r} is not an absolute path; give the full path, e.g. "
                              f"/opt/acestream/<pool>/{path.lstrip('./')}")
    if os.path.normpath(path) == "/":
        raise StackFilesError(f"{field}: '/' cannot be managed; name a directory of the stack")
    return os.path.normpath(path)


def validate(directories=None, files=None, absent=None):
    """Normalise the options; raise StackFilesError naming the first bad field. Returns (dirs, files, absent) with
    absolute normalised paths and integer modes."""
    dirs_out, files_out, absent_out, seen = [], [], [], {}
    for index, entry in enumerate(directories or []):
        field = f"directories[{index}]"
        path = _check_path(entry.get("path"), field + ".path")
        dirs_out.append({"path": path, "mode": parse_mode(entry.get("mode") or "0755", field + ".mode")})
        seen.setdefault(path, field)
    for index, entry in enumerate(files or []):
        field = f"files[{index}]"
        path = _check_path(entry.get("path"), field + ".path")
        if path in seen:
            raise StackFilesError(f"{field}.path: {path} is also {seen[path]}; each path may be listed once")
        seen[path] = field
        content, secret = entry.get("content"), entry.get("secret_content")
        if (content is None) == (secret is None):
            raise StackFilesError(f"{field}: give exactly one of content and secret_content (secret_content for "
                                  f"files holding keys or credentials: never shown in output or diff)")
        files_out.append({"path": path, "mode": parse_mode(entry.get("mode") or "0644", field + ".mode"),
                          "content": content if secret is None else secret, "secret": secret is not None})
    for index, path in enumerate(absent or []):
        field = f"absent[{index}]"
        path = _check_path(path, field)
        if path in seen:
            raise StackFilesError(f"{field}: {path} is also {seen[path]}; a path cannot be both present and absent")
        absent_out.append(path)
    return dirs_out, files_out, absent_out


def observe(path):
    """What is at path: ('absent'|'directory'|'file'|'other', mode or None). Symbolic links are not followed."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "absent", None
    if stat.S_ISDIR(info.st_mode):
        return "directory", stat.S_IMODE(info.st_mode)
    if stat.S_ISREG(info.st_mode):
        return "file", stat.S_IMODE(info.st_mode)
    return "other", stat.S_IMODE(info.st_mode)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def plan(directories, files, absent):
    """The changes that bring the file system to the options, in the order to apply them. Each change is a dict:
    path, action (create | update | mode | remove), kind (directory | file), mode, content/secret for files and
    before/after texts for the diff (secret contents replaced by a placeholder)."""
    changes = []
    for entry in directories:
        kind, mode = observe(entry["path"])
        if kind == "absent":
            changes.append({"path": entry["path"], "kind": "directory", "action": "create", "mode": entry["mode"],
                            "before": "", "after": f"directory, mode {entry['mode']:04o}\n"})
        elif kind != "directory":
            raise StackFilesError(f"{entry['path']} is {KINDS[kind]}, not a directory: move it away (the stack needs a "
                                  f"directory there)")
        elif mode != entry["mode"]:
            changes.append({"path": entry["path"], "kind": "directory", "action": "mode", "mode": entry["mode"],
                            "before": f"directory, mode {mode:04o}\n",
                            "after": f"directory, mode {entry['mode']:04o}\n"})
    for entry in files:
        wanted = entry["content"].encode("utf-8")
        kind, mode = observe(entry["path"])
        change = {"path": entry["path"], "kind": "file", "mode": entry["mode"], "data": wanted,
                  "secret": entry["secret"]}
        if kind == "absent":
            change.update(action="create", before="",
                          after=SECRET_PLACEHOLDER if entry["secret"] else entry["content"])
        elif kind != "file":
            raise StackFilesError(f"{entry['path']} is {KINDS[kind]}, not a regular file: move it away (the stack writes "
                                  f"a file there)")
        else:
            current = _read(entry["path"])
            if current != wanted:
                before = current.decode("utf-8", errors="replace")
                change.update(action="update",
                              before=SECRET_PLACEHOLDER if entry["secret"] else before,
                              after=SECRET_CHANGED if entry["secret"] else entry["content"])
            elif mode != entry["mode"]:
                change.update(action="mode", before=f"mode {mode:04o}\n", after=f"mode {entry['mode']:04o}\n")
            else:
                continue
        changes.append(change)
    for path in absent:
        kind, _mode = observe(path)
        if kind == "absent":
            continue
        changes.append({"path": path, "kind": kind, "action": "remove",
                        "before": f"{kind}\n", "after": ""})
    return changes


def _write_atomically(path, data, mode):
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".acestream-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def apply(changes):
    """Carry out the changes of plan(), in order; each one carried out is marked done (for a report after a
    failure midway)."""
    for change in changes:
        path, action = change["path"], change["action"]
        if action == "remove":
            if change["kind"] == "directory":
                shutil.rmtree(path)
            else:
                os.unlink(path)
        elif change["kind"] == "directory":
            if action == "create":
                os.makedirs(path, mode=0o755, exist_ok=True)
            os.chmod(path, change["mode"])
        elif action == "mode":
            os.chmod(path, change["mode"])
        else:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            _write_atomically(path, change["data"], change["mode"])
        change["done"] = True


def report(changes):
    """What the module returns: the changes without contents, and the diff (one entry a path)."""
    done = [{"path": c["path"], "kind": c["kind"], "action": c["action"]} for c in changes]
    diff = [{"before_header": c["path"], "after_header": c["path"], "before": c["before"], "after": c["after"]}
            for c in changes]
    return done, diff
