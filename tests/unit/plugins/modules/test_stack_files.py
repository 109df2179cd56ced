# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_files module, run in-process on a temporary directory: creation with modes, idempotence, updates of
content and of mode only, removal, check mode, diff, secrets kept out of every output, bad input refused before
anything is touched."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest
from module_runner import run_module_main

from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_files
from ansible_collections.acestream.orchestrator.plugins.modules import stack_files

SECRET = "WIREGUARD_PRIVATE_KEY=wg-very-secret-value-0123456789\n"


def run(capsys, args, check_mode=False, diff=False):
    return run_module_main(stack_files.main, capsys, args, check_mode=check_mode, diff=diff)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def tree(root):
    """Every path under root with its kind, mode and content: a snapshot to compare before and after."""
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs:
            path = os.path.join(base, name)
            out[path] = ("directory", mode_of(path))
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                out[path] = ("file", mode_of(path), handle.read())
    return out


def stack_args(root, secret=SECRET, compose="services: {}\n"):
    return {
        "directories": [{"path": f"{root}/stack", "mode": "0755"}, {"path": f"{root}/stack/gluetun", "mode": "0700"}],
        "files": [
            {"path": f"{root}/stack/gluetun/gluetun.env", "secret_content": secret, "mode": "0600"},
            {"path": f"{root}/stack/docker-compose.yml", "content": compose, "mode": "0644"},
        ],
    }


def test_creates_with_modes_then_changes_nothing(capsys, tmp_path):
    code, out, _raw = run(capsys, stack_args(tmp_path))
    assert code == 0 and out["changed"] is True
    assert [(c["path"].rsplit("/", 1)[-1], c["action"]) for c in out["changes"]] == [
        ("stack", "create"), ("gluetun", "create"), ("gluetun.env", "create"), ("docker-compose.yml", "create")]
    assert mode_of(tmp_path / "stack") == 0o755
    assert mode_of(tmp_path / "stack" / "gluetun") == 0o700
    assert mode_of(tmp_path / "stack" / "gluetun" / "gluetun.env") == 0o600
    assert (tmp_path / "stack" / "gluetun" / "gluetun.env").read_text() == SECRET
    assert (tmp_path / "stack" / "docker-compose.yml").read_text() == "services: {}\n"

    before = tree(tmp_path)
    code, out, _raw = run(capsys, stack_args(tmp_path), diff=True)
    assert code == 0 and out["changed"] is False and out["changes"] == [] and out["diff"] == []
    assert tree(tmp_path) == before


def test_content_and_mode_drift_are_repaired(capsys, tmp_path):
    run(capsys, stack_args(tmp_path))
    env = tmp_path / "stack" / "gluetun" / "gluetun.env"
    compose = tmp_path / "stack" / "docker-compose.yml"
    os.chmod(env, 0o644)
    os.chmod(tmp_path / "stack" / "gluetun", 0o755)
    compose.write_text("edited by hand\n")

    code, out, _raw = run(capsys, stack_args(tmp_path), diff=True)
    assert code == 0 and out["changed"] is True
    assert {(c["path"].rsplit("/", 1)[-1], c["action"]) for c in out["changes"]} == {
        ("gluetun", "mode"), ("gluetun.env", "mode"), ("docker-compose.yml", "update")}
    by_path = {d["before_header"]: d for d in out["diff"]}
    assert by_path[str(compose)]["before"] == "edited by hand\n"
    assert by_path[str(compose)]["after"] == "services: {}\n"
    assert by_path[str(env)]["before"] == "mode 0644\n" and by_path[str(env)]["after"] == "mode 0600\n"
    assert mode_of(env) == 0o600 and mode_of(tmp_path / "stack" / "gluetun") == 0o700
    assert compose.read_text() == "services: {}\n"


def test_secret_content_is_never_in_the_output(capsys, tmp_path):
    _code, _out, raw = run(capsys, stack_args(tmp_path), diff=True)
    assert "wg-very-secret-value" not in raw
    changed_secret = SECRET.replace("0123456789", "9876543210")
    code, out, raw = run(capsys, stack_args(tmp_path, secret=changed_secret), diff=True)
    assert code == 0 and out["changed"] is True
    assert "wg-very-secret-value" not in raw
    entry = next(d for d in out["diff"] if d["before_header"].endswith("gluetun.env"))
    assert entry["before"] == _stack_files.SECRET_PLACEHOLDER
    assert entry["after"] == _stack_files.SECRET_CHANGED
    assert (tmp_path / "stack" / "gluetun" / "gluetun.env").read_text() == changed_secret


def test_check_mode_reports_the_same_changes_and_touches_nothing(capsys, tmp_path):
    (tmp_path / "keep").write_text("a file of the user\n")
    before = tree(tmp_path)
    code, checked, _raw = run(capsys, stack_args(tmp_path), check_mode=True, diff=True)
    assert code == 0 and checked["changed"] is True
    assert tree(tmp_path) == before
    _code, done, _raw = run(capsys, stack_args(tmp_path))
    assert checked["changes"] == done["changes"]


def test_absent_removes_files_and_trees_and_is_idempotent(capsys, tmp_path):
    run(capsys, stack_args(tmp_path))
    (tmp_path / "other").write_text("not the stack's\n")
    args = {"absent": [f"{tmp_path}/stack/gluetun", f"{tmp_path}/stack/docker-compose.yml", f"{tmp_path}/nothing"]}
    code, out, _raw = run(capsys, args, check_mode=True)
    assert out["changed"] is True and (tmp_path / "stack" / "gluetun").is_dir()
    code, out, _raw = run(capsys, args)
    assert code == 0 and [(c["kind"], c["action"]) for c in out["changes"]] == [
        ("directory", "remove"), ("file", "remove")]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["other", "stack"]
    code, out, _raw = run(capsys, args)
    assert code == 0 and out["changed"] is False


def test_missing_parents_are_created(capsys, tmp_path):
    target = tmp_path / "a" / "b" / "key"
    code, out, _raw = run(capsys, {"files": [{"path": str(target), "secret_content": "k\n", "mode": "0600"}]})
    assert code == 0 and out["changed"] is True
    assert target.read_text() == "k\n" and mode_of(target) == 0o600


@pytest.mark.parametrize("args, words", [
    ({"files": [{"path": "relative/file", "content": "x"}]}, ["files[0].path", "not an absolute path"]),
    ({"files": [{"path": "/tmp/x", "content": "x", "mode": "0x600"}]}, ["files[0].mode", "'0600'"]),
    ({"files": [{"path": "/tmp/x", "content": "x", "mode": "4755"}]}, ["files[0].mode", "setuid"]),
    ({"directories": [{"path": "/tmp/d", "mode": "rwx"}]}, ["directories[0].mode", "octal"]),
    ({"directories": [{"path": "/"}]}, ["directories[0].path", "'/' cannot be managed"]),
    ({"absent": ["stack"]}, ["absent[0]", "not an absolute path"]),
    ({"files": [{"path": "/tmp/x", "content": "a"}], "absent": ["/tmp/x"]}, ["absent[0]", "files[0]"]),
    ({"files": [{"path": "/tmp/x", "content": "a"}, {"path": "/tmp/x/", "content": "b"}]},
     ["files[1].path", "files[0]", "listed once"]),
])
def test_bad_input_names_the_field_and_touches_nothing(capsys, tmp_path, args, words):
    args = json.loads(json.dumps(args).replace('"/tmp/', f'"{tmp_path}/'))
    before = tree(tmp_path)
    code, out, _raw = run(capsys, args)
    assert code == 1 and out["failed"] is True
    for word in words:
        assert word in out["msg"]
    assert tree(tmp_path) == before


def test_content_and_secret_content_are_exclusive(capsys, tmp_path):
    code, out, _raw = run(capsys, {"files": [{"path": f"{tmp_path}/x", "content": "a", "secret_content": "b"}]})
    assert code == 1 and "content" in out["msg"] and "secret_content" in out["msg"]
    code, out, _raw = run(capsys, {"files": [{"path": f"{tmp_path}/x"}]})
    assert code == 1 and "content" in out["msg"]
    assert not (tmp_path / "x").exists()


def test_a_directory_where_a_file_must_be_fails_before_any_change(capsys, tmp_path):
    (tmp_path / "stack" / "docker-compose.yml").mkdir(parents=True)
    before = tree(tmp_path)
    code, out, _raw = run(capsys, stack_args(tmp_path))
    assert code == 1
    assert "docker-compose.yml is a directory, not a regular file" in out["msg"] and "move it away" in out["msg"]
    assert tree(tmp_path) == before


def test_a_symbolic_link_is_refused_as_a_file_and_only_the_link_is_removed(capsys, tmp_path):
    """A link where a file must be is not followed (no write through it); removing it leaves its target."""
    target = tmp_path / "users-file"
    target.write_text("the user's data\n")
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "docker-compose.yml").symlink_to(target)
    code, out, _raw = run(capsys, stack_args(tmp_path))
    assert code == 1 and "is a symbolic link (to " in out["msg"] and "not a regular file" in out["msg"]
    assert target.read_text() == "the user's data\n" and (tmp_path / "stack" / "docker-compose.yml").is_symlink()
    code, out, _raw = run(capsys, {"absent": [f"{tmp_path}/stack/docker-compose.yml"]})
    assert code == 0 and out["changes"] == [
        {"path": f"{tmp_path}/stack/docker-compose.yml", "kind": "other", "action": "remove"}]
    assert target.read_text() == "the user's data\n"
    assert not (tmp_path / "stack" / "docker-compose.yml").is_symlink()


def test_a_failed_write_midway_reports_what_was_done(capsys, tmp_path, monkeypatch):
    real = _stack_files._write_atomically

    def failing(path, data, mode, replace=True):
        if path.endswith("docker-compose.yml"):
            raise PermissionError(13, "Permission denied", path)
        real(path, data, mode, replace)

    monkeypatch.setattr(_stack_files, "_write_atomically", failing)
    code, out, raw = run(capsys, stack_args(tmp_path))
    assert code == 1 and "docker-compose.yml: permission denied" in out["msg"]
    assert out["changed"] is True
    assert [c["path"].rsplit("/", 1)[-1] for c in out["changes"]] == ["stack", "gluetun", "gluetun.env"]
    assert "wg-very-secret-value" not in raw
    assert not [p for p in (tmp_path / "stack").iterdir() if p.name.startswith(".acestream-")]


def test_atomic_write_leaves_no_temporary_file_and_sets_the_mode_before_the_rename(tmp_path, monkeypatch):
    seen = {}
    real_replace = os.replace

    def spy(source, destination):
        seen["mode"] = mode_of(source)
        real_replace(source, destination)

    monkeypatch.setattr(_stack_files.os, "replace", spy)
    target = tmp_path / "secret"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    _stack_files._write_atomically(str(target), b"new\n", 0o600)
    assert seen["mode"] == 0o600
    assert target.read_text() == "new\n" and mode_of(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


# ------------------------------------------------------------------ existing directories: never loosened
def one_directory(path, mode, existing=None):
    entry = {"path": str(path), "mode": mode}
    if existing:
        entry["existing"] = existing
    return {"directories": [entry]}


def test_a_new_directory_gets_exactly_its_mode_whatever_the_umask(capsys, tmp_path):
    old = os.umask(0o077)
    try:
        code, out, _raw = run(capsys, {"directories": [{"path": f"{tmp_path}/a/b/stack", "mode": "0755"},
                                                       {"path": f"{tmp_path}/a/b/stack/secret", "mode": "0700"}]})
    finally:
        os.umask(old)
    assert code == 0 and [(c["path"][len(str(tmp_path)):], c["action"]) for c in out["changes"]] == [
        ("/a", "create"), ("/a/b", "create"), ("/a/b/stack", "create"), ("/a/b/stack/secret", "create")]
    assert [mode_of(tmp_path / p) for p in ("a", "a/b", "a/b/stack", "a/b/stack/secret")] == [
        0o755, 0o755, 0o755, 0o700]


def test_a_new_directory_does_not_inherit_the_setgid_bit_of_its_parent(capsys, tmp_path):
    os.chmod(tmp_path, 0o2775)
    code, _out, _raw = run(capsys, one_directory(tmp_path / "secret", "0700"))
    assert code == 0 and mode_of(tmp_path / "secret") == 0o700


def test_a_missing_parent_listed_later_gets_its_own_mode(capsys, tmp_path):
    args = {"directories": [{"path": f"{tmp_path}/gluetun/one", "mode": "0700"},
                            {"path": f"{tmp_path}/gluetun", "mode": "0700"}]}
    code, out, _raw = run(capsys, args)
    assert code == 0 and len(out["changes"]) == 2
    assert mode_of(tmp_path / "gluetun") == 0o700 and mode_of(tmp_path / "gluetun" / "one") == 0o700
    code, out, _raw = run(capsys, args)
    assert code == 0 and out["changed"] is False


@pytest.mark.parametrize("existing", ["keep", "tighten"])
def test_an_existing_1777_directory_keeps_its_sticky_bit_and_stays_writable_with_keep(capsys, tmp_path, existing):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    code, out, _raw = run(capsys, one_directory(shared, "0755", existing), diff=True)
    assert code == 0
    if existing == "keep":
        assert out["changed"] is False and out["diff"] == [] and mode_of(shared) == 0o1777
    else:  # tighten removes group and other write, never the sticky bit
        assert out["changes"] == [{"path": str(shared), "kind": "directory", "action": "mode"}]
        assert out["diff"][0]["before"] == "directory, mode 1777\n"
        assert out["diff"][0]["after"] == "directory, mode 1755\n"
        assert mode_of(shared) == 0o1755
    code, out, _raw = run(capsys, one_directory(shared, "0755", existing))
    assert code == 0 and out["changed"] is False


@pytest.mark.parametrize("existing", ["keep", "tighten"])
def test_an_existing_0700_directory_is_not_widened_to_0755(capsys, tmp_path, existing):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    code, out, _raw = run(capsys, one_directory(private, "0755", existing), diff=True)
    assert code == 0 and out["changed"] is False and out["diff"] == []
    assert mode_of(private) == 0o700


def test_a_secret_directory_at_0755_is_tightened_to_0700_keeping_its_setgid_bit(capsys, tmp_path):
    secret = tmp_path / "gluetun"
    secret.mkdir()
    os.chmod(secret, 0o2755)
    code, out, _raw = run(capsys, one_directory(secret, "0700"), diff=True)
    assert code == 0 and out["changes"] == [{"path": str(secret), "kind": "directory", "action": "mode"}]
    assert (out["diff"][0]["before"], out["diff"][0]["after"]) == (
        "directory, mode 2755\n", "directory, mode 2700\n")
    assert mode_of(secret) == 0o2700
    code, out, _raw = run(capsys, one_directory(secret, "0700"))
    assert code == 0 and out["changed"] is False


def test_enforce_sets_the_mode_exactly_when_asked(capsys, tmp_path):
    shared = tmp_path / "mine"
    shared.mkdir()
    os.chmod(shared, 0o1700)
    code, out, _raw = run(capsys, one_directory(shared, "0750", "enforce"), diff=True)
    assert code == 0 and (out["diff"][0]["before"], out["diff"][0]["after"]) == (
        "directory, mode 1700\n", "directory, mode 0750\n")
    assert mode_of(shared) == 0o750


def test_check_mode_and_diff_tell_the_modes_the_real_run_then_sets(capsys, tmp_path):
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", 0o1777)
    (tmp_path / "shared" / "gluetun").mkdir()
    os.chmod(tmp_path / "shared" / "gluetun", 0o775)
    args = {"directories": [{"path": f"{tmp_path}/shared", "mode": "0755", "existing": "keep"},
                            {"path": f"{tmp_path}/shared/gluetun", "mode": "0700"},
                            {"path": f"{tmp_path}/shared/gluetun/one", "mode": "0700"}]}
    before = tree(tmp_path)
    code, checked, _raw = run(capsys, args, check_mode=True, diff=True)
    assert code == 0 and checked["changed"] is True and tree(tmp_path) == before
    assert [(d["before_header"][len(str(tmp_path)):], d["before"], d["after"]) for d in checked["diff"]] == [
        ("/shared/gluetun", "directory, mode 0775\n", "directory, mode 0700\n"),
        ("/shared/gluetun/one", "", "directory, mode 0700\n")]
    code, done, _raw = run(capsys, args, diff=True)
    assert code == 0 and done["changes"] == checked["changes"] and done["diff"] == checked["diff"]
    assert mode_of(tmp_path / "shared") == 0o1777
    assert mode_of(tmp_path / "shared" / "gluetun") == 0o700
    assert mode_of(tmp_path / "shared" / "gluetun" / "one") == 0o700


def test_directory_mode_rules():
    rule = _stack_files.directory_mode
    assert rule(0o1777, 0o755, "keep") == 0o1777
    assert rule(0o1777, 0o755, "tighten") == 0o1755
    assert rule(0o700, 0o755, "tighten") == 0o700
    assert rule(0o2775, 0o700, "tighten") == 0o2700
    assert rule(0o1777, 0o755, "enforce") == 0o755
    assert rule(0o700, 0o755, "enforce") == 0o755


# ------------------------------------------------------------------ paths the module cannot take: refused first
def test_a_path_below_a_regular_file_is_refused_before_any_change(capsys, tmp_path):
    (tmp_path / "file").write_text("the user's file\n")
    cases = [
        ({"directories": [{"path": f"{tmp_path}/ok", "mode": "0755"},
                          {"path": f"{tmp_path}/file/stack", "mode": "0755"}]}, "directories[1].path"),
        ({"directories": [{"path": f"{tmp_path}/file/a/b"}]}, "directories[0].path"),
        ({"directories": [{"path": f"{tmp_path}/ok"}],
          "files": [{"path": f"{tmp_path}/file/stack/env", "secret_content": SECRET}]}, "files[0].path"),
    ]
    for args, field in cases:
        before = tree(tmp_path)
        code, out, raw = run(capsys, args)
        assert code == 1, out
        assert out["msg"].startswith(f"{field}: ") and f"{tmp_path}/file, which is a regular file, not a " \
            f"directory: move it away" in out["msg"], out["msg"]
        assert "Traceback" not in raw and "the user's file" not in raw and "wg-very-secret" not in raw
        assert tree(tmp_path) == before


def test_absent_below_a_regular_file_is_already_absent(capsys, tmp_path):
    (tmp_path / "file").write_text("x\n")
    code, out, _raw = run(capsys, {"absent": [f"{tmp_path}/file/gluetun"]})
    assert code == 0 and out["changed"] is False


@pytest.mark.parametrize("args, field", [
    ({"directories": [{"path": "/tmp/st\0ack"}]}, "directories[0].path"),
    ({"files": [{"path": "/tmp/stack/env\0", "secret_content": SECRET}]}, "files[0].path"),
    ({"absent": ["/tmp/\0"]}, "absent[0]"),
])
def test_a_nul_byte_in_a_path_is_refused_by_name(capsys, tmp_path, args, field):
    args = json.loads(json.dumps(args).replace('"/tmp/', f'"{tmp_path}/'))
    before = tree(tmp_path)
    code, out, raw = run(capsys, args)
    assert code == 1 and out["msg"].startswith(f"{field}: ") and "NUL byte" in out["msg"]
    assert "Traceback" not in raw and "wg-very-secret" not in raw
    assert tree(tmp_path) == before


def test_a_symbolic_link_where_a_directory_must_be_is_refused(capsys, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "stack").symlink_to(tmp_path / "real")
    code, out, _raw = run(capsys, one_directory(tmp_path / "stack", "0755", "keep"))
    assert code == 1 and out["msg"].startswith("directories[0].path: ")
    assert f"is a symbolic link (to {tmp_path}/real), not a directory" in out["msg"]
    assert "give the path it points to" in out["msg"]


def test_a_dangling_link_in_the_way_of_a_parent_is_refused(capsys, tmp_path):
    (tmp_path / "opt").symlink_to(tmp_path / "gone")
    code, out, _raw = run(capsys, one_directory(tmp_path / "opt" / "stack", "0755"))
    assert code == 1 and out["msg"].startswith("directories[0].path: ")
    assert f"below {tmp_path}/opt, a symbolic link to {tmp_path}/gone, which is not a directory" in out["msg"]
    assert not (tmp_path / "gone").exists()


def test_a_directory_the_user_may_not_write_is_refused_before_any_change(capsys, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = _stack_files._writable
    monkeypatch.setattr(_stack_files, "_writable", lambda directory: directory != str(locked) and real(directory))
    args = {"directories": [{"path": f"{tmp_path}/free"}, {"path": f"{locked}/stack"}]}
    code, out, _raw = run(capsys, args)
    assert code == 1 and out["msg"].startswith("directories[1].path: ")
    assert f"cannot be created in {locked}: permission denied" in out["msg"] and "become: true" in out["msg"]
    assert not (tmp_path / "free").exists()


def test_a_mode_only_its_owner_may_change_is_refused_before_any_change(capsys, tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.mkdir()
    os.chmod(secret, 0o755)
    monkeypatch.setattr(_stack_files.os, "geteuid", lambda: os.lstat(secret).st_uid + 4242)
    code, out, _raw = run(capsys, one_directory(secret, "0700"))
    assert code == 1 and out["msg"].startswith("directories[0].path: ")
    assert "needs mode 0700 (existing: tighten), but only its owner may change it" in out["msg"]
    assert mode_of(secret) == 0o755


def test_a_path_that_cannot_be_looked_at_names_it_and_the_fix(capsys, tmp_path, monkeypatch):
    real = os.lstat

    def denied(path, *args, **kwargs):
        if str(path).startswith(f"{tmp_path}/hidden"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(_stack_files.os, "lstat", denied)
    code, out, raw = run(capsys, {"files": [{"path": f"{tmp_path}/hidden/env", "secret_content": SECRET}]})
    assert code == 1 and out["msg"] == (f"files[0].path: {tmp_path}/hidden/env: permission denied: run the task as a "
                                        f"user who may (become: true) or choose another path")
    assert "Traceback" not in raw and "wg-very-secret" not in raw


def test_an_unreadable_file_is_refused_without_its_content(capsys, tmp_path, monkeypatch):
    target = tmp_path / "env"
    target.write_text(SECRET)

    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_stack_files, "_read", denied)
    code, out, raw = run(capsys, {"files": [{"path": str(target), "secret_content": "new\n"}]})
    assert code == 1 and out["msg"].startswith(f"files[0].path: cannot read it to compare: {target}: permission")
    assert "wg-very-secret" not in raw


@pytest.mark.parametrize("args, words", [
    ({"directories": [{"path": "/tmp/d", "existing": "loosen"}]}, ["existing", "keep", "tighten", "enforce"]),
    ({"directories": [{"path": "/tmp/d", "mode": "0700"}, {"path": "/tmp/d", "mode": "0755"}]},
     ["directories[1]", "directories[0]", "list each directory once"]),
    ({"directories": [{"path": "/tmp/x/d"}], "files": [{"path": "/tmp/x", "content": "a"}]},
     ["directories[0].path", "below", "files[0] writes as a regular file"]),
])
def test_bad_directory_options_name_the_field(capsys, tmp_path, args, words):
    args = json.loads(json.dumps(args).replace('"/tmp/', f'"{tmp_path}/'))
    code, out, _raw = run(capsys, args)
    assert code == 1
    for word in words:
        assert word in out["msg"], out["msg"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ absent_if_empty: only what the stack left
def test_absent_if_empty_removes_emptied_directories_deepest_first_and_keeps_the_rest(capsys, tmp_path):
    run(capsys, stack_args(tmp_path))
    (tmp_path / "stack" / "gluetun" / "one").mkdir()
    (tmp_path / "stack" / "gluetun" / "one" / "gluetun.env").write_text(SECRET)
    (tmp_path / "stack" / "gluetun" / "users-notes").write_text("the user's\n")
    args = {"absent": [f"{tmp_path}/stack/gluetun/gluetun.env", f"{tmp_path}/stack/gluetun/one/gluetun.env"],
            "absent_if_empty": [f"{tmp_path}/stack/gluetun", f"{tmp_path}/stack/gluetun/one",
                                f"{tmp_path}/stack/docker-compose.yml"]}
    before = tree(tmp_path)
    code, checked, _raw = run(capsys, args, check_mode=True)
    assert code == 0 and tree(tmp_path) == before
    code, out, raw = run(capsys, args)
    assert code == 0 and out["changes"] == checked["changes"] and out["kept"] == checked["kept"]
    assert [(c["path"][len(str(tmp_path)):], c["action"]) for c in out["changes"]] == [
        ("/stack/gluetun/gluetun.env", "remove"), ("/stack/gluetun/one/gluetun.env", "remove"),
        ("/stack/gluetun/one", "remove")]
    assert out["kept"] == [
        {"path": f"{tmp_path}/stack/gluetun", "reason": "not empty: 1 entries the task does not remove"},
        {"path": f"{tmp_path}/stack/docker-compose.yml", "reason": "a regular file, not a directory"}]
    assert (tmp_path / "stack" / "gluetun" / "users-notes").read_text() == "the user's\n"
    assert (tmp_path / "stack" / "docker-compose.yml").exists() and "wg-very-secret" not in raw
    code, out, _raw = run(capsys, args)
    assert code == 0 and out["changed"] is False

    (tmp_path / "stack" / "gluetun" / "users-notes").unlink()
    code, out, _raw = run(capsys, args)
    assert code == 0 and out["changes"] == [{"path": f"{tmp_path}/stack/gluetun", "kind": "directory",
                                             "action": "remove"}]
    assert not (tmp_path / "stack" / "gluetun").exists() and (tmp_path / "stack").is_dir()


def test_absent_if_empty_below_a_removed_tree_goes_with_it(capsys, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    code, out, _raw = run(capsys, {"absent": [f"{tmp_path}/a"], "absent_if_empty": [f"{tmp_path}/a/b"]})
    assert code == 0 and [c["path"] for c in out["changes"]] == [f"{tmp_path}/a"] and out["kept"] == []
    assert not (tmp_path / "a").exists()


def test_replace_false_creates_once_and_never_changes_the_content(capsys, tmp_path):
    """A generated key: written when missing, its content never replaced, its mode still converged."""
    key = {"path": f"{tmp_path}/stack/key", "secret_content": "first-key\n", "mode": "0600", "replace": False}
    code, out, _raw = run(capsys, {"files": [key]})
    assert code == 0 and out["changed"] is True and (tmp_path / "stack" / "key").read_text() == "first-key\n"
    code, out, _raw = run(capsys, {"files": [dict(key, secret_content="second-key\n")]}, diff=True)
    assert code == 0 and out["changed"] is False and out["diff"] == []
    assert (tmp_path / "stack" / "key").read_text() == "first-key\n"
    os.chmod(tmp_path / "stack" / "key", 0o644)
    code, out, _raw = run(capsys, {"files": [dict(key, secret_content="second-key\n")]})
    assert code == 0 and [c["action"] for c in out["changes"]] == ["mode"]
    assert mode_of(tmp_path / "stack" / "key") == 0o600 and (tmp_path / "stack" / "key").read_text() == "first-key\n"
    assert "second-key" not in json.dumps(out) and "first-key" not in json.dumps(out)


def test_replace_false_leaves_a_file_another_run_created_first(tmp_path):
    """Two runs creating the same key at once: the second finds the first's file at the moment it writes, and
    leaves it (the write is exclusive), whatever it planned."""
    path = str(tmp_path / "key")
    _dirs, files, _absent = _stack_files.validate(files=[{"path": path, "secret_content": "mine\n", "mode": "0600",
                                                          "replace": False}])
    changes, _kept = _stack_files.plan([], files, [])
    assert [c["action"] for c in changes] == ["create"]
    with open(path, "w") as handle:  # the other run, between this run's plan and its write
        handle.write("theirs\n")
    _stack_files.apply(changes)
    assert open(path).read() == "theirs\n"
    assert [name for name in os.listdir(tmp_path) if name.startswith(".acestream-")] == []


def test_replace_must_be_a_boolean(tmp_path):
    with pytest.raises(_stack_files.StackFilesError, match=r"files\[0\].replace: give true or false, not str"):
        _stack_files.validate(files=[{"path": str(tmp_path / "k"), "content": "x", "replace": "no"}])


# ------------------------------------------------------------------------------------ what the OS refuses
class ReadOnly:
    """os.statvfs and os.access as on a file system mounted read-only at ``root``: nothing below it is writable,
    whoever runs the task (access(2) answers EROFS to root too)."""

    def __init__(self, monkeypatch, root):
        self.root = str(root)
        real_statvfs, real_writable = os.statvfs, _stack_files._writable

        class Result:
            f_flag = os.ST_RDONLY

        def statvfs(path):
            return Result() if self.below(path) else real_statvfs(path)

        monkeypatch.setattr(_stack_files.os, "statvfs", statvfs)
        monkeypatch.setattr(_stack_files, "_writable", lambda path: not self.below(path) and real_writable(path))

    def below(self, path):
        return str(path) == self.root or str(path).startswith(self.root + "/")


def test_a_read_only_file_system_is_named_as_such_not_as_permission_denied(capsys, tmp_path, monkeypatch):
    """On a read-only file system stack_files says "read-only file system" and names the path, before any change:
    not "permission denied ... run the task as a user who may (become: true)", which root could not fix either."""
    (tmp_path / "ro" / "stack").mkdir(parents=True)
    (tmp_path / "ro" / "stack" / "gluetun.env").write_text("OLD=1\n")
    os.chmod(tmp_path / "ro" / "stack", 0o755)
    ReadOnly(monkeypatch, tmp_path / "ro")
    before = tree(tmp_path)
    cases = [
        ({"files": [{"path": f"{tmp_path}/ro/stack/new.env", "content": "A=1\n"}]},
         f"files[0].path: {tmp_path}/ro/stack/new.env cannot be created in {tmp_path}/ro/stack: read-only file "
         f"system; the file system is mounted read-only (root cannot write it either): remount it read-write or "
         f"choose a path on a writable one"),
        ({"files": [{"path": f"{tmp_path}/ro/stack/gluetun.env", "secret_content": SECRET}]},
         f"files[0].path: {tmp_path}/ro/stack/gluetun.env cannot be rewritten: {tmp_path}/ro/stack: read-only file "
         f"system; the file system is mounted read-only"),
        ({"files": [{"path": f"{tmp_path}/ro/stack/gluetun.env", "content": "OLD=1\n", "mode": "0600"}]},
         f"files[0].path: {tmp_path}/ro/stack/gluetun.env needs mode 0600, but it is on a read-only file system; "
         f"the file system is mounted read-only"),
        (one_directory(tmp_path / "ro" / "stack", "0700"),
         f"directories[0].path: {tmp_path}/ro/stack needs mode 0700 (existing: tighten), but it is on a read-only "
         f"file system; the file system is mounted read-only"),
        ({"absent": [f"{tmp_path}/ro/stack/gluetun.env"]},
         f"absent[0]: {tmp_path}/ro/stack/gluetun.env cannot be removed: {tmp_path}/ro/stack: read-only file system"),
    ]
    for args, message in cases:
        code, out, raw = run(capsys, args)
        assert code == 1 and out["msg"].startswith(message), out["msg"]
        assert "permission denied" not in out["msg"] and "become" not in out["msg"]
        assert "wg-very-secret" not in raw
    assert tree(tmp_path) == before


@pytest.mark.parametrize("code, words", [
    (errno.EROFS, "read-only file system: the file system is mounted read-only (root cannot write it either): "
                  "remount it read-write or choose a path on a writable one"),
    (errno.ENOSPC, "no space left on device: free some space or choose a path on another file system"),
    (errno.EDQUOT, "disk quota exceeded: free some space, raise the quota"),
    (errno.EACCES, "permission denied: run the task as a user who may (become: true) or choose another path"),
    (errno.EPERM, "operation not permitted: run the task as a user who may (become: true)"),
    (errno.ENAMETOOLONG, "file name too long: choose a shorter path (at most 255 bytes a name, 4095 in all)"),
    (errno.ELOOP, "too many levels of symbolic links: a symbolic link in the path loops; fix or remove it"),
    (errno.EIO, "input/output error: the disk or the file system failed"),
    (errno.EBUSY, "device or resource busy: it is a mount point or in use"),
    (errno.EISDIR, "is a directory: move the directory away (the stack needs a regular file there)"),
    (errno.ENOTEMPTY, "directory not empty: something was added to it meanwhile: run the task again"),
    (errno.EXDEV, "Invalid cross-device link: fix the path or choose another one"),
])
def test_each_os_error_on_a_write_is_named_with_its_fix(capsys, tmp_path, monkeypatch, code, words):
    """An OS error while the files are written (a read-only remount, a full disk ...) names the path, what the
    error is in the module's own words (whatever the OS's text, even none) and its fix; the changes before it are
    reported. Each errno the module maps, and one it does not."""
    real = _stack_files._write_atomically

    def failing(path, data, mode, replace=True):
        if path.endswith("docker-compose.yml"):
            raise OSError(code, None if code != errno.EXDEV else os.strerror(code))
        real(path, data, mode, replace)

    monkeypatch.setattr(_stack_files, "_write_atomically", failing)
    code_, out, raw = run(capsys, stack_args(tmp_path))
    assert code_ == 1 and out["msg"].startswith(f"{tmp_path}/stack/docker-compose.yml: {words}"), out["msg"]
    assert out["msg"].endswith(" (the changes before it were made)")
    assert [c["path"].rsplit("/", 1)[-1] for c in out["changes"]] == ["stack", "gluetun", "gluetun.env"]
    assert "wg-very-secret" not in raw
