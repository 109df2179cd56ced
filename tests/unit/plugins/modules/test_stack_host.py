# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_host module, run in-process: the files and directories it reads, the ports in use read only where the
Docker Engine runs, a Docker Engine that does not answer and a missing Docker SDK reported rather than failed, and
nothing changed."""

from __future__ import annotations

import os

import pytest
from module_runner import run_module_main

from ansible_collections.acestream.orchestrator.plugins.module_utils import _host_read, _stack_files
from ansible_collections.acestream.orchestrator.plugins.modules import stack_host


class FakeClient:
    """The three list calls of the Docker API the module makes, with what they were asked."""

    def __init__(self):
        self.asked = []

    def containers(self, **kwargs):
        self.asked.append(("containers", kwargs))
        return [{"Id": "c1", "Names": ["/gluetun1"], "Labels": {}}]

    def images(self, **kwargs):
        self.asked.append(("images", kwargs))
        return [{"Id": "sha256:1", "RepoTags": ["qmcgaw/gluetun:v3.41.1"], "Labels": {}}]

    def networks(self, **kwargs):
        self.asked.append(("networks", kwargs))
        return [{"Name": "acestream", "Id": "n1"}]


def run(capsys, monkeypatch, args, client=None, error=None):
    def fake_client(docker_host, timeout):
        if error is not None:
            raise error
        return client

    monkeypatch.setattr(stack_host, "docker_client", fake_client)
    return run_module_main(stack_host.main, capsys, args, check_mode=False)


def test_reads_files_directories_and_the_docker_host(capsys, monkeypatch, tmp_path):
    (tmp_path / "key").write_text("k3y\n")
    for name in ("gluetun1", "gluetun2", ".hidden"):
        (tmp_path / "gluetun" / name).mkdir(parents=True)
    (tmp_path / "gluetun" / "config-hash-key").write_text("x")
    os.symlink(tmp_path / "gluetun" / "gluetun1", tmp_path / "gluetun" / "link")
    before = sorted(os.listdir(tmp_path))
    client = FakeClient()
    code, out, _raw = run(capsys, monkeypatch, {
        "files": [str(tmp_path / "key"), str(tmp_path / "missing")], "subdirectories_of": str(tmp_path / "gluetun"),
        "images": ["qmcgaw/gluetun:v3.41.1"], "network": "acestream", "docker_host": "unix:///run/docker.sock"},
        client=client)
    assert code == 0 and out["changed"] is False
    assert out["files"] == {str(tmp_path / "key"): "k3y\n", str(tmp_path / "missing"): None}
    assert out["file_errors"] == []
    # Directories only, as ansible.builtin.find lists them: no file, no symbolic link, no hidden directory.
    assert out["subdirectories"] == [str(tmp_path / "gluetun" / "gluetun1"), str(tmp_path / "gluetun" / "gluetun2")]
    assert out["can_talk_to_docker"] is True and out["sdk"]["present"] is True
    assert [c["Id"] for c in out["containers"]] == ["c1"]
    assert client.asked == [("containers", {"all": True}),
                            ("images", {"filters": {"reference": ["qmcgaw/gluetun:v3.41.1"]}}),
                            ("networks", {"names": ["acestream"]})]
    assert out["listening"] is not None and "local_address" in out["listening"]
    assert sorted(os.listdir(tmp_path)) == before


def test_no_image_nor_network_asked_when_none_is_given(capsys, monkeypatch):
    client = FakeClient()
    code, out, _raw = run(capsys, monkeypatch, {}, client=client)
    assert code == 0 and [call[0] for call in client.asked] == ["containers"]
    assert out["images"] == [] and out["networks"] == [] and out["subdirectories"] == [] and out["files"] == {}


@pytest.mark.parametrize("docker_host", ["tcp://10.0.0.5:2375", "ssh://admin@10.0.0.5"])
def test_ports_in_use_are_not_read_for_a_remote_docker_engine(capsys, monkeypatch, docker_host):
    code, out, _raw = run(capsys, monkeypatch, {"docker_host": docker_host}, client=FakeClient())
    assert code == 0 and out["listening"] is None


def test_a_docker_engine_that_does_not_answer_is_reported_not_failed(capsys, monkeypatch):
    code, out, _raw = run(capsys, monkeypatch, {}, error=stack_host.DockerException("connection refused"))
    assert code == 0 and out["can_talk_to_docker"] is False and out["msg"] == "connection refused"
    assert out["containers"] == []


def test_docker_false_reads_only_files(capsys, monkeypatch, tmp_path):
    client = FakeClient()
    code, out, _raw = run(capsys, monkeypatch, {"docker": False, "images": ["x"]}, client=client)
    assert code == 0 and client.asked == [] and out["can_talk_to_docker"] is False and "msg" not in out


def test_a_missing_docker_sdk_is_reported_with_the_interpreter(capsys, monkeypatch):
    monkeypatch.setattr(stack_host, "HAS_DOCKER", False)
    monkeypatch.setattr(stack_host, "DOCKER_IMPORT_ERROR", "Traceback ...\nModuleNotFoundError: No module named 'docker'\n")
    code, out, _raw = run(capsys, monkeypatch, {}, client=FakeClient())
    assert code == 0 and out["can_talk_to_docker"] is False
    assert out["sdk"]["present"] is False and out["sdk"]["error"] == "ModuleNotFoundError: No module named 'docker'"
    assert out["sdk"]["python"] and "Docker SDK for Python is missing" in out["msg"]


def test_an_unreadable_file_is_named_with_the_fix(tmp_path):
    path = tmp_path / "dir-not-file"
    path.mkdir()
    found, errors = _host_read.read_files([str(path)])
    assert found == {str(path): None}
    assert len(errors) == 1 and errors[0].startswith(str(path) + " cannot be read (Is a directory)")
    assert "remove it and the stack writes a new one" in errors[0]


@pytest.mark.parametrize("docker_host, local", [("unix:///var/run/docker.sock", True), ("unix:///tmp/d.sock", True),
                                                ("tcp://127.0.0.1:2375", False), ("ssh://h", False)])
def test_which_docker_engines_are_local(docker_host, local):
    assert _host_read.docker_engine_is_local(docker_host) is local


def test_file_states_are_read_with_digests_keyed_by_the_stacks_key(capsys, monkeypatch, tmp_path):
    (tmp_path / "gluetun").mkdir(mode=0o700)
    (tmp_path / "gluetun" / "config-hash-key").write_text("the-key\n")
    (tmp_path / "gluetun" / "gluetun.env").write_text("WIREGUARD_PRIVATE_KEY=secret\n")
    os.chmod(tmp_path / "gluetun" / "gluetun.env", 0o600)
    paths = [str(tmp_path / "gluetun"), str(tmp_path / "gluetun" / "gluetun.env"), str(tmp_path / "missing")]
    code, out, raw = run(capsys, monkeypatch, {"docker": False, "file_states": paths,
                                               "file_states_key": str(tmp_path / "gluetun" / "config-hash-key")})
    assert code == 0 and out["changed"] is False
    states = out["file_states"]
    assert states[paths[0]] == {"kind": "directory", "mode": 0o700, "entries": 2}
    assert states[paths[1]]["mode"] == 0o600
    assert states[paths[1]]["digest"] == _stack_files.digest("the-key", b"WIREGUARD_PRIVATE_KEY=secret\n")
    assert states[paths[2]] == {"kind": "absent"}
    assert "secret" not in raw
    # Without the key (a first run): no digest, so nothing is taken as in place.
    code, out, _raw = run(capsys, monkeypatch, {"docker": False, "file_states": paths,
                                                "file_states_key": str(tmp_path / "no-key")})
    assert "digest" not in out["file_states"][paths[1]]
