# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection built from this checkout and installed alone next to community.docker, for the artifact tests:
the ``installed`` fixture (module scope) and how to run ansible's commands against it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import ansible
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WARNING_LINE = re.compile(r"^\[(DEPRECATION WARNING|WARNING)\]", re.M)


def bundled_collections():
    """The ansible_collections folder of the ``ansible`` package installed beside this ansible-core."""
    path = Path(ansible.__file__).resolve().parents[1] / "ansible_collections"
    assert (path / "community" / "docker" / "MANIFEST.json").is_file(), f"no community.docker under {path}"
    return path


def run(cmd, env, cwd, timeout=900):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, check=False)


def warnings_in(proc):
    return [line for line in (proc.stdout + "\n" + proc.stderr).splitlines() if WARNING_LINE.match(line)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The built artifact installed alone (with community.docker) in an empty collections path: its tarball,
    the names it ships, and the environment and working folder to run ansible with it."""
    work = tmp_path_factory.mktemp("artifact")
    config = work / "ansible.cfg"
    config.write_text("[defaults]\nretry_files_enabled = false\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update({
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(work / "collections"),
        # Only the collections path: not the ansible package's collections found on sys.path.
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_DEPRECATION_WARNINGS": "true",
        "ANSIBLE_SYSTEM_WARNINGS": "true",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    })
    build = run([BIN / "ansible-galaxy", "collection", "build", "--force", "--output-path", work, ROOT], env, work)
    assert build.returncode == 0, build.stdout + build.stderr
    assert not warnings_in(build), build.stdout + build.stderr
    tarball = next(work.glob("acestream-orchestrator-*.tar.gz"))
    with tarfile.open(tarball) as tar:
        names = sorted(member.name for member in tar.getmembers())
    if os.environ.get("ACESTREAM_ARTIFACT_LIST"):
        Path(os.environ["ACESTREAM_ARTIFACT_LIST"]).write_text("".join(name + "\n" for name in names))
    install = run([BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps",
                   "-p", work / "collections", tarball], env, work)
    assert install.returncode == 0, install.stdout + install.stderr
    source = bundled_collections()
    for name in ("community/docker", "community/library_inventory_filtering_v1"):
        if (source / name).is_dir():
            shutil.copytree(source / name, work / "collections" / "ansible_collections" / name)
    return {"tarball": tarball, "names": names, "env": env, "work": work}
