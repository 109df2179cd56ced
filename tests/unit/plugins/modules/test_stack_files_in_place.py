# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_stack_files.in_place against plan on the same temporary trees: what the target read (file_states) says is in place
is exactly what the stack_files module would leave as it is; whatever the read cannot tell is not in place."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.acestream.orchestrator.plugins.module_utils import _stack_files

KEY = "k" * 32
SECRET = "WIREGUARD_PRIVATE_KEY=wg-very-secret-value-0123456789\n"


def options(root, **changes):
    stack, gluetun = f"{root}/stack", f"{root}/stack/gluetun"
    out = {
        "directories": [{"path": stack, "mode": "0755", "existing": "keep"},
                        {"path": gluetun, "mode": "0700", "existing": "tighten"},
                        {"path": f"{gluetun}/vpn1", "mode": "0700"}],
        "files": [{"path": f"{gluetun}/vpn1/gluetun.env", "secret_content": SECRET, "mode": "0600"},
                  {"path": f"{gluetun}/config-hash-key", "secret_content": KEY + "\n", "mode": "0600",
                   "replace": False},
                  {"path": f"{stack}/docker-compose.yml", "content": "services: {}\n", "mode": "0644"}],
        "absent": [f"{gluetun}/vpn1/auth"],
        "absent_if_empty": [f"{gluetun}/old"],
    }
    out.update(changes)
    return out


def every_path(opts):
    return ([d["path"] for d in opts.get("directories") or []] + [f["path"] for f in opts.get("files") or []]
            + list(opts.get("absent") or []) + list(opts.get("absent_if_empty") or []))


def planned(opts):
    dirs, files, absent = _stack_files.validate(opts.get("directories"), opts.get("files"), opts.get("absent"),
                                                opts.get("absent_if_empty"))
    return _stack_files.plan(dirs, files, absent)[0]


def apply(opts):
    _stack_files.apply(planned(opts))


def agrees(opts, key=KEY, paths=None):
    """in_place on what file_states read, checked against plan on the disk; returns in_place's answer."""
    states = _stack_files.file_states(every_path(opts) if paths is None else paths, key)
    answer = _stack_files.in_place(states, key, opts.get("directories"), opts.get("files"), opts.get("absent"),
                                   opts.get("absent_if_empty"))
    if answer:
        assert planned(opts) == [], "in_place said in place, but plan would change something"
    return answer


def test_a_fresh_tree_is_not_in_place_and_an_applied_one_is(tmp_path):
    opts = options(tmp_path)
    assert agrees(opts) is False and planned(opts) != []
    apply(opts)
    assert planned(opts) == []
    assert agrees(opts) is True


@pytest.mark.parametrize("drift", [
    "secret content", "plain content", "file mode", "directory too wide", "enforced mode", "absent path there",
    "empty directory to remove", "file where a directory must be", "link where a file must be", "file missing",
])
def test_each_drift_is_seen_as_plan_sees_it(tmp_path, drift):
    opts = options(tmp_path)
    apply(opts)
    gluetun = tmp_path / "stack" / "gluetun"
    if drift == "secret content":
        (gluetun / "vpn1" / "gluetun.env").write_text(SECRET.replace("secret", "public"))
    elif drift == "plain content":
        (tmp_path / "stack" / "docker-compose.yml").write_text("services: {x: {}}\n")
    elif drift == "file mode":
        os.chmod(gluetun / "vpn1" / "gluetun.env", 0o644)
    elif drift == "directory too wide":
        os.chmod(gluetun, 0o755)
    elif drift == "enforced mode":
        opts["directories"][2]["existing"] = "enforce"
        os.chmod(gluetun / "vpn1", 0o500)
    elif drift == "absent path there":
        (gluetun / "vpn1" / "auth").mkdir()
    elif drift == "empty directory to remove":
        (gluetun / "old").mkdir()
    elif drift == "file where a directory must be":
        opts["directories"].append({"path": str(tmp_path / "stack" / "docker-compose.yml.d"), "mode": "0755"})
        (tmp_path / "stack" / "docker-compose.yml.d").write_text("x")
    elif drift == "link where a file must be":
        target = tmp_path / "elsewhere"
        target.write_text("services: {}\n")
        os.remove(tmp_path / "stack" / "docker-compose.yml")
        os.symlink(target, tmp_path / "stack" / "docker-compose.yml")
    elif drift == "file missing":
        os.remove(tmp_path / "stack" / "docker-compose.yml")
    assert agrees(opts) is False
    if drift not in ("file where a directory must be", "link where a file must be"):
        assert planned(opts) != []  # the module would change it (the other two it refuses, naming the path)


@pytest.mark.parametrize("kept", ["narrower directory", "kept directory mode", "kept key with other content",
                                  "non-empty directory", "absent path missing"])
def test_what_plan_leaves_alone_is_in_place(tmp_path, kept):
    opts = options(tmp_path)
    apply(opts)
    gluetun = tmp_path / "stack" / "gluetun"
    if kept == "narrower directory":
        os.chmod(gluetun, 0o500)  # tighten never widens
    elif kept == "kept directory mode":
        os.chmod(tmp_path / "stack", 0o1777)  # existing: keep
    elif kept == "kept key with other content":
        (gluetun / "config-hash-key").write_text("another run's key\n")  # replace: false
    elif kept == "non-empty directory":
        (gluetun / "old").mkdir()
        (gluetun / "old" / "servers.json").write_text("{}")
    assert agrees(opts) is True


def test_what_the_read_cannot_tell_is_not_in_place(tmp_path):
    opts = options(tmp_path)
    apply(opts)
    assert agrees(opts, paths=every_path(opts)[1:]) is False  # a path not read
    assert agrees(opts, key="") is False  # no key: no digest to compare
    states = _stack_files.file_states(every_path(opts), "another key")
    assert _stack_files.in_place(states, KEY, **opts) is False  # digests made with another key
    bad = options(tmp_path, files=[{"path": "relative/path", "content": "x"}])
    states = _stack_files.file_states(every_path(opts), KEY)
    assert _stack_files.in_place(states, KEY, **bad) is False  # an option the module refuses: it runs and says why


def test_the_read_shows_no_content_and_no_plain_hash(tmp_path):
    opts = options(tmp_path)
    apply(opts)
    env = str(tmp_path / "stack" / "gluetun" / "vpn1" / "gluetun.env")
    states = _stack_files.file_states([env, str(tmp_path / "missing"), str(tmp_path / "stack" / "gluetun")], KEY)
    assert states[str(tmp_path / "missing")] == {"kind": "absent"}
    assert states[str(tmp_path / "stack" / "gluetun")]["kind"] == "directory"
    state = states[env]
    assert state["kind"] == "file" and state["mode"] == 0o600
    assert SECRET.strip() not in repr(states)
    assert state["digest"] != hashlib.sha256(SECRET.encode()).hexdigest()
    assert state["digest"] == _stack_files.digest(KEY, SECRET.encode())
    assert "digest" not in _stack_files.file_states([env], "")[env]


def test_a_path_that_cannot_be_read_is_left_out(tmp_path, monkeypatch):
    opts = options(tmp_path)
    apply(opts)
    env = str(tmp_path / "stack" / "gluetun" / "vpn1" / "gluetun.env")

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(_stack_files, "_read", refuse)
    assert env not in _stack_files.file_states([env], KEY)
