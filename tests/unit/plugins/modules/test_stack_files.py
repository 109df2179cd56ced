# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_files module, run in-process on a temporary directory: creation with modes, idempotence, updates of
content and of mode only, removal, check mode, diff, secrets kept out of every output, bad input refused before
anything is touched."""

from __future__ import annotations

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
    assert code == 1 and "is a symbolic link or special file, not a regular file" in out["msg"]
    assert target.read_text() == "the user's data\n" and (tmp_path / "stack" / "docker-compose.yml").is_symlink()
    code, out, _raw = run(capsys, {"absent": [f"{tmp_path}/stack/docker-compose.yml"]})
    assert code == 0 and out["changes"] == [
        {"path": f"{tmp_path}/stack/docker-compose.yml", "kind": "other", "action": "remove"}]
    assert target.read_text() == "the user's data\n"
    assert not (tmp_path / "stack" / "docker-compose.yml").is_symlink()


def test_a_failed_write_midway_reports_what_was_done(capsys, tmp_path, monkeypatch):
    real = _stack_files._write_atomically

    def failing(path, data, mode):
        if path.endswith("docker-compose.yml"):
            raise PermissionError(13, "Permission denied", path)
        real(path, data, mode)

    monkeypatch.setattr(_stack_files, "_write_atomically", failing)
    code, out, raw = run(capsys, stack_args(tmp_path))
    assert code == 1 and "docker-compose.yml: Permission denied" in out["msg"]
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
