# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack files module's core: check a set of directories, files and removals, plan what must change on disk,
apply the plan. Private: not an API for other collections.

Pure where it can be: ``validate`` and ``plan`` only read the file system, ``apply`` writes. Every path is checked
before anything is touched: a path below a regular file, a symbolic link where a directory or a file must be, a
directory the user running the task may not write, a file system mounted read-only: each is a StackFilesError naming
the option and the fix, raised by ``plan``, never an OSError halfway through ``apply``. What the OS refuses all the
same (a full disk) is named by ``describe_os_error`` in the module's own words (OS_ERRORS), with its fix.

Directories that already exist are never loosened: by default (``existing: tighten``) only the permission bits the
wanted mode lacks are removed, and their setuid, setgid and sticky bits are kept; ``keep`` leaves them as they are;
only ``enforce`` sets the mode exactly. New directories get exactly their mode (missing parents 0755).

Files are written atomically (a temporary file in the same directory, then a rename), with their mode set before the
rename, so a reader never sees a secret file with a wider mode or a half-written one.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import shutil
import stat
import tempfile

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError

MODE_RE = re.compile(r"0?[0-7]{3}\Z")
PARENT_MODE = 0o755
PERMISSION_BITS = 0o777
SPECIAL_BITS = 0o7000

EXISTING = ("keep", "tighten", "enforce")
DEFAULT_EXISTING = "tighten"

SECRET_PLACEHOLDER = "(secret content, not shown)\n"
SECRET_CHANGED = "(secret content, changed, not shown)\n"
KINDS = {"directory": "a directory", "file": "a regular file", "link": "a symbolic link",
         "other": "a special file (device, socket or pipe)"}
RUN_AS = "run the task as a user who may (become: true) or choose another path"


class StackFilesError(AcestreamError):
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
    if "\0" in path:
        raise StackFilesError(f"{field}: {path!r} contains a NUL byte, which no path can hold; remove it")
    if not os.path.isabs(path):
        raise StackFilesError(f"{field}: {path!r} is not an absolute path; give the full path, e.g. "
                              f"/opt/acestream/<pool>/{path.lstrip('./')}")
    if os.path.normpath(path) == "/":
        raise StackFilesError(f"{field}: '/' cannot be managed; name a directory of the stack")
    return os.path.normpath(path)


def _parse_existing(value, field):
    value = DEFAULT_EXISTING if value is None else value
    if value not in EXISTING:
        raise StackFilesError(f"{field}: {value!r} is not one of {', '.join(EXISTING)} (keep: leave an existing "
                              f"directory's mode as it is; tighten: only remove the bits the mode lacks; enforce: "
                              f"set the mode exactly)")
    return value


def _ancestors(path):
    """The parent directories of an absolute normalised path, nearest first, '/' excluded."""
    parent = os.path.dirname(path)
    while parent != "/":
        yield parent
        parent = os.path.dirname(parent)


def validate(directories=None, files=None, absent=None, absent_if_empty=None):
    """Normalise the options; raise StackFilesError naming the first bad field. Returns (dirs, files, absent) with
    absolute normalised paths, integer modes and each entry's field name (for the messages of plan); absent holds
    the paths of absent, then those of absent_if_empty (``if_empty``), deepest first."""
    dirs_out, files_out, absent_out, seen = [], [], [], {}
    for index, entry in enumerate(directories or []):
        field = f"directories[{index}]"
        path = _check_path(entry.get("path"), field + ".path")
        wanted = {"path": path, "mode": parse_mode(entry.get("mode") or "0755", field + ".mode"),
                  "existing": _parse_existing(entry.get("existing"), field + ".existing"), "field": field}
        earlier = next((d for d in dirs_out if d["path"] == path), None)
        if earlier is None:
            dirs_out.append(wanted)
            seen[path] = field
        elif (earlier["mode"], earlier["existing"]) != (wanted["mode"], wanted["existing"]):
            raise StackFilesError(f"{field}: {path} is also {earlier['field']} with another mode or existing; list "
                                  f"each directory once")
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
        replace = True if entry.get("replace") is None else entry["replace"]
        if not isinstance(replace, bool):
            raise StackFilesError(f"{field}.replace: give true or false, not {type(replace).__name__}")
        files_out.append({"path": path, "mode": parse_mode(entry.get("mode") or "0644", field + ".mode"),
                          "content": content if secret is None else secret, "secret": secret is not None,
                          "replace": replace, "field": field})
    for entry in dirs_out + files_out:
        below = next((parent for parent in _ancestors(entry["path"]) if seen.get(parent, "").startswith("files")),
                     None)
        if below:
            raise StackFilesError(f"{entry['field']}.path: {entry['path']} is below {below}, which {seen[below]} "
                                  f"writes as a regular file; a path cannot be both")
    for index, path in enumerate(absent or []):
        field = f"absent[{index}]"
        path = _check_path(path, field)
        if path in seen:
            raise StackFilesError(f"{field}: {path} is also {seen[path]}; a path cannot be both present and absent")
        absent_out.append({"path": path, "field": field, "if_empty": False})
        seen.setdefault(path, field)
    if_empty = []
    for index, path in enumerate(absent_if_empty or []):
        field = f"absent_if_empty[{index}]"
        path = _check_path(path, field)
        if path in seen:
            raise StackFilesError(f"{field}: {path} is also {seen[path]}; list it once")
        seen[path] = field
        if_empty.append({"path": path, "field": field, "if_empty": True})
    if_empty.sort(key=lambda entry: -entry["path"].count("/"))
    return dirs_out, files_out, absent_out + if_empty


def _kind(info):
    if stat.S_ISDIR(info.st_mode):
        return "directory"
    if stat.S_ISREG(info.st_mode):
        return "file"
    if stat.S_ISLNK(info.st_mode):
        return "link"
    return "other"


def observe(path):
    """What is at path: ('absent'|'directory'|'file'|'link'|'other', mode or None). Symbolic links are not followed.
    An OSError other than a missing path (a component that is a file, permission denied) is raised."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "absent", None
    return _kind(info), stat.S_IMODE(info.st_mode)


def _blocking_component(path):
    """The nearest existing ancestor of path that is not a directory (following links), or None."""
    for parent in _ancestors(path):
        try:
            info = os.stat(parent)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return parent
        if not stat.S_ISDIR(info.st_mode):
            return parent
    return None


# What an errno means for a stack path, and its fix. Said in these words whatever the OS's text (an OSError may come
# without one). Only EACCES and EPERM are a matter of who runs the task: a read-only or full file system stays so
# as root.
READ_ONLY_FIX = "the file system is mounted read-only (root cannot write it either): remount it read-write or " \
                "choose a path on a writable one"
OS_ERRORS = {
    errno.EACCES: ("permission denied", RUN_AS),
    errno.EPERM: ("operation not permitted", RUN_AS),
    errno.EROFS: ("read-only file system", READ_ONLY_FIX),
    errno.ENOSPC: ("no space left on device", "free some space or choose a path on another file system"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, raise the quota or choose a path on another file "
                                          "system"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path (at most 255 bytes a name, 4095 in all)"),
    errno.ELOOP: ("too many levels of symbolic links", "a symbolic link in the path loops; fix or remove it"),
    errno.EIO: ("input/output error", "the disk or the file system failed: check it (dmesg) or choose a path on "
                                      "another one"),
    errno.EISDIR: ("is a directory", "move the directory away (the stack needs a regular file there)"),
    errno.ENOTEMPTY: ("directory not empty", "something was added to it meanwhile: run the task again"),
    errno.EBUSY: ("device or resource busy", "it is a mount point or in use: unmount it or choose another path"),
}


def _describe_os_error(error, path):
    """Why path cannot be looked at or changed, with the fix: a message naming paths, never any content."""
    code = error.errno
    if code == errno.ENOTDIR:
        culprit = _blocking_component(path)
        if culprit:
            kind = "a regular file" if os.path.isfile(culprit) else "a special file or a broken link"
            return (f"{path} is below {culprit}, which is {kind}, not a directory: move it away or choose a path "
                    f"below a directory")
        return f"{path}: a component of the path is not a directory: choose a path below a directory"
    where = error.filename if isinstance(error.filename, str) and error.filename != path else None
    reason, fix = OS_ERRORS.get(code, (None, "fix the path or choose another one"))
    reason = reason or error.strerror or (os.strerror(code) if isinstance(code, int) else str(error))
    return f"{path}: {reason}" + (f" ({where})" if where else "") + f": {fix}"


def describe_os_error(error, path=None):
    """The message for an OSError from apply: the path, the reason and the fix."""
    return _describe_os_error(error, path or error.filename or "a stack path")


def _lstat(path, field):
    """os.lstat, or None when nothing is there; any other OSError becomes a StackFilesError naming the field."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StackFilesError(f"{field}: {_describe_os_error(error, path)}") from None


def _refuse_kind(entry, kind, wanted):
    path, field = entry["path"], entry["field"]
    if kind == "link":
        target = os.readlink(path)
        raise StackFilesError(f"{field}.path: {path} is a symbolic link (to {target}), not {KINDS[wanted]}: links are "
                              f"not followed; give the path it points to, or move the link away")
    raise StackFilesError(f"{field}.path: {path} is {KINDS[kind]}, not {KINDS[wanted]}: move it away (the stack "
                          f"needs {KINDS[wanted]} there)")


def _writable(directory):
    kwargs = {"effective_ids": True} if os.access in os.supports_effective_ids else {}
    return os.access(directory, os.W_OK | os.X_OK, **kwargs)


def _read_only(path):
    """True when ``path`` is on a file system mounted read-only (where even root writes nothing)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _write_problem(directory):
    """Why the user running the task cannot add or remove entries in ``directory``, with the fix; None when it
    can. A read-only file system is said as such: running as root (become) would not help."""
    if _writable(directory):
        return None
    if _read_only(directory):
        return f"read-only file system; {READ_ONLY_FIX}"
    return f"permission denied; {RUN_AS}"


def _mode_problem(path, mode, what):
    """Why the mode of ``path`` cannot be set now (a read-only file system), or None."""
    if _read_only(path):
        return f"{path} needs mode {mode:04o}{what}, but it is on a read-only file system; {READ_ONLY_FIX}"
    return None


def _may_chmod(info):
    return os.geteuid() in (0, info.st_uid)


def directory_mode(current, wanted, existing):
    """The mode an existing directory gets: keep -> current; tighten -> current's permission bits that wanted also
    has, and current's setuid, setgid and sticky bits; enforce -> wanted."""
    if existing == "keep":
        return current
    if existing == "tighten":
        return (current & SPECIAL_BITS) | (current & wanted & PERMISSION_BITS)
    return wanted


def _directory_text(mode):
    return f"directory, mode {mode:04o}\n"


class _Planner:
    """plan()'s state: the changes so far and the directories they create (so later paths may be below them)."""

    def __init__(self):
        self.changes = []
        self.created = {}
        self.removed = set()
        self.kept = []

    def _make_room(self, path, field):
        """Plan the creation of path's missing parents (0755) after checking the nearest existing one: a directory
        (a link to one is followed), writable by the user running the task."""
        missing = []
        for parent in _ancestors(path):
            if parent in self.created:
                break
            info = _lstat(parent, field)
            if info is None:
                missing.append(parent)
                continue
            if stat.S_ISLNK(info.st_mode) and not os.path.isdir(parent):
                raise StackFilesError(f"{field}: {path} is below {parent}, a symbolic link to "
                                      f"{os.readlink(parent)}, which is not a directory: fix or remove the link")
            if not os.path.isdir(parent):
                raise StackFilesError(f"{field}: {path} is below {parent}, which is {KINDS[_kind(info)]}, not a "
                                      f"directory: move it away or choose a path below a directory")
            problem = _write_problem(parent)
            if problem:
                raise StackFilesError(f"{field}: {path} cannot be created in {parent}: {problem}")
            break
        for parent in reversed(missing):
            self._create(parent, PARENT_MODE, "keep")

    def _create(self, path, mode, existing):
        self.created[path] = {"path": path, "kind": "directory", "action": "create", "mode": mode,
                              "existing": existing, "before": "", "after": _directory_text(mode)}
        self.changes.append(self.created[path])

    def _parent_writable(self, path, field, what):
        parent = os.path.dirname(path)
        problem = None if parent in self.created else _write_problem(parent)
        if problem:
            raise StackFilesError(f"{field}: {path} cannot be {what}: {parent}: {problem}")

    def directory(self, entry):
        path, field = entry["path"], entry["field"]
        if path in self.created:  # planned as the missing parent of an earlier path: created with this entry's mode
            self.created[path].update(mode=entry["mode"], existing=entry["existing"],
                                      after=_directory_text(entry["mode"]))
            return
        info = _lstat(path, field + ".path")
        if info is None:
            self._make_room(path, field + ".path")
            self._create(path, entry["mode"], entry["existing"])
            return
        if not stat.S_ISDIR(info.st_mode):
            _refuse_kind(entry, _kind(info), "directory")
        current = stat.S_IMODE(info.st_mode)
        mode = directory_mode(current, entry["mode"], entry["existing"])
        if mode == current:
            return
        problem = _mode_problem(path, mode, f" (existing: {entry['existing']})")
        if problem:
            raise StackFilesError(f"{field}.path: {problem}")
        if not _may_chmod(info):
            raise StackFilesError(f"{field}.path: {path} needs mode {mode:04o} (existing: {entry['existing']}), but "
                                  f"only its owner may change it; {RUN_AS}")
        self.changes.append({"path": path, "kind": "directory", "action": "mode", "mode": mode,
                             "before": _directory_text(current), "after": _directory_text(mode)})

    def file(self, entry):
        path, field = entry["path"], entry["field"]
        wanted = entry["content"].encode("utf-8")
        change = {"path": path, "kind": "file", "mode": entry["mode"], "data": wanted, "secret": entry["secret"],
                  "replace": entry.get("replace", True)}
        info = None if os.path.dirname(path) in self.created else _lstat(path, field + ".path")
        if info is None:
            self._make_room(path, field + ".path")
            change.update(action="create", before="", after=SECRET_PLACEHOLDER if entry["secret"] else entry["content"])
            self.changes.append(change)
            return
        if not stat.S_ISREG(info.st_mode):
            _refuse_kind(entry, _kind(info), "file")
        try:
            current = _read(path)
        except OSError as error:
            raise StackFilesError(f"{field}.path: cannot read it to compare: {_describe_os_error(error, path)}") \
                from None
        mode = stat.S_IMODE(info.st_mode)
        if current != wanted and change["replace"]:
            self._parent_writable(path, field + ".path", "rewritten")
            before = current.decode("utf-8", errors="replace")
            change.update(action="update", before=SECRET_PLACEHOLDER if entry["secret"] else before,
                          after=SECRET_CHANGED if entry["secret"] else entry["content"])
        elif mode != entry["mode"]:
            problem = _mode_problem(path, entry["mode"], "")
            if problem:
                raise StackFilesError(f"{field}.path: {problem}")
            if not _may_chmod(info):
                raise StackFilesError(f"{field}.path: {path} needs mode {entry['mode']:04o}, but only its owner may "
                                      f"change it; {RUN_AS}")
            change.update(action="mode", before=f"mode {mode:04o}\n", after=f"mode {entry['mode']:04o}\n")
        else:
            return
        self.changes.append(change)

    def absent(self, entry):
        path, field = entry["path"], entry["field"]
        if any(parent in self.removed for parent in _ancestors(path)):
            return  # removed with a directory tree listed before it
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing there: below a regular file nothing can be
        except OSError as error:
            raise StackFilesError(f"{field}: {_describe_os_error(error, path)}") from None
        kind = _kind(info)
        if entry["if_empty"]:
            if kind != "directory":
                self.kept.append({"path": path, "reason": f"{KINDS[kind]}, not a directory"})
                return
            try:
                left = [name for name in os.listdir(path) if os.path.join(path, name) not in self.removed]
            except OSError as error:
                raise StackFilesError(f"{field}: {_describe_os_error(error, path)}") from None
            if left:
                self.kept.append({"path": path, "reason": f"not empty: {len(left)} entries the task does not remove"})
                return
        self._parent_writable(path, field, "removed")
        self.removed.add(path)
        self.changes.append({"path": path, "kind": "other" if kind == "link" else kind, "action": "remove",
                             "if_empty": entry["if_empty"], "before": f"{'link' if kind == 'link' else kind}\n",
                             "after": ""})


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def plan(directories, files, absent):
    """The changes that bring the file system to the options, in the order to apply them, and the directories of
    absent_if_empty left in place (path, reason); raises StackFilesError (naming the field, the path and the fix)
    before anything is changed when a path cannot be taken.

    Each change is a dict: path, action (create | update | mode | remove), kind (directory | file | other), mode,
    content/secret for files and before/after texts for the diff (secret contents replaced by a placeholder).
    Missing parents of a path come first, as directories created with mode 0755."""
    planner = _Planner()
    for entry in directories:
        planner.directory(entry)
    for entry in files:
        planner.file(entry)
    for entry in absent:
        planner.absent(entry)
    return planner.changes, planner.kept


def digest(key, data):
    """The keyed digest of a file's bytes (HMAC-SHA256 under the stack's own key, hex): what ``file_states`` returns
    for a file, so that a content can be compared without being read back, nor guessed from a plain hash."""
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()


def file_states(paths, key=None):
    """What is at each path, for ``in_place``: ``{path: {kind, mode, digest (files, with a key), entries
    (directories)}}``; ``kind`` ``absent`` when nothing is there. A path that cannot be read is left out: unknown."""
    states = {}
    for path in paths:
        path = os.path.normpath(path)
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            states[path] = {"kind": "absent"}
            continue
        except OSError:
            continue
        state = {"kind": _kind(info), "mode": stat.S_IMODE(info.st_mode)}
        try:
            if state["kind"] == "file" and key:
                state["digest"] = digest(key, _read(path))
            elif state["kind"] == "directory":
                state["entries"] = len(os.listdir(path))
        except OSError:
            continue
        states[path] = state
    return states


def in_place(states, key, directories=None, files=None, absent=None, absent_if_empty=None):
    """True when ``plan`` would change nothing, as far as ``states`` (``file_states`` of the paths, read with
    ``key``) tell; False when it would, or when they cannot tell (a path not read, no key, an option ``validate``
    refuses: the module then says why). The same decisions as ``plan``, on what was read instead of the disk."""
    try:
        dirs, wanted_files, gone = validate(directories, files, absent, absent_if_empty)
    except StackFilesError:
        return False
    for entry in dirs:
        state = states.get(entry["path"]) or {}
        if state.get("kind") != "directory" or \
                directory_mode(state["mode"], entry["mode"], entry["existing"]) != state["mode"]:
            return False
    for entry in wanted_files:
        state = states.get(entry["path"]) or {}
        if state.get("kind") != "file" or state["mode"] != entry["mode"]:
            return False
        if entry["replace"] and (not key or state.get("digest") != digest(key, entry["content"].encode("utf-8"))):
            return False
    for entry in gone:
        state = states.get(entry["path"])
        if state is None:
            return False
        kept = entry["if_empty"] and (state["kind"] != "directory" or state.get("entries", 0) > 0)
        if state["kind"] != "absent" and not kept:
            return False
    return True


def _write_atomically(path, data, mode, replace=True):
    """Write a temporary file in the same directory, with its mode, then rename it over ``path``; with ``replace``
    false, link it to ``path`` instead, which fails when ``path`` exists: then the file another run created first
    is left as it is."""
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".acestream-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if replace:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        os.unlink(temporary)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _create_directory(change):
    """mkdir with the mode (never wider than it, whatever the umask), then exactly the mode (no setgid inherited).
    A directory that appeared since the plan is treated as an existing one."""
    path = change["path"]
    try:
        os.mkdir(path, change["mode"])
    except FileExistsError:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise
        current = stat.S_IMODE(info.st_mode)
        mode = directory_mode(current, change["mode"], change["existing"])
        if mode != current:
            os.chmod(path, mode)
        return
    os.chmod(path, change["mode"])


def apply(changes):
    """Carry out the changes of plan(), in order; each one carried out is marked done (for a report after a
    failure midway)."""
    for change in changes:
        path, action = change["path"], change["action"]
        if action == "remove":
            if change["kind"] == "directory" and change["if_empty"]:
                os.rmdir(path)
            elif change["kind"] == "directory":
                shutil.rmtree(path)
            else:
                os.unlink(path)
        elif change["kind"] == "directory" and action == "create":
            _create_directory(change)
        elif action == "mode":
            os.chmod(path, change["mode"])
        else:
            _write_atomically(path, change["data"], change["mode"], change.get("replace", True))
        change["done"] = True


def report(changes):
    """What the module returns: the changes without contents, and the diff (one entry a path)."""
    done = [{"path": c["path"], "kind": c["kind"], "action": c["action"]} for c in changes]
    diff = [{"before_header": c["path"], "after_header": c["path"], "before": c["before"], "after": c["after"]}
            for c in changes]
    return done, diff
