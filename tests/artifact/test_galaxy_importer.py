# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""galaxy-importer, the check Galaxy runs on an upload, accepts the built artifact with nothing to say: its
documentation strings read by ansible-doc, its content found, ansible-lint clean, with community.docker (the
collection's dependency) installed beside it as a user would have it.

It runs in its own virtualenv (tests/matrix/tooling/galaxy-importer.txt: it brings its own ansible-core and
ansible-lint), which scripts/matrix.sh makes and names in ACESTREAM_GALAXY_IMPORTER (its Python)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from artifact_install import bundled_collections, installed, run  # pylint: disable=unused-import  # a fixture

IMPORTER = os.environ.get("ACESTREAM_GALAXY_IMPORTER", "")
WARNING = re.compile(r"^(WARNING|ERROR)\b", re.M)


@pytest.mark.skipif(not IMPORTER, reason="ACESTREAM_GALAXY_IMPORTER (galaxy-importer's Python) is set by "
                                         "scripts/matrix.sh, which makes its virtualenv")
def test_galaxy_importer_accepts_the_artifact_without_a_warning(installed, tmp_path):
    python = Path(IMPORTER)
    home = tmp_path / "home"
    deps = home / ".ansible" / "collections" / "ansible_collections" / "community"
    deps.mkdir(parents=True)
    shutil.copytree(bundled_collections() / "community" / "docker", deps / "docker")
    env = {"PATH": f"{python.parent}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    proc = run([python, "-m", "galaxy_importer.main", installed["tarball"]], env, tmp_path, timeout=600)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Importer processing completed successfully" in said, said
    assert not WARNING.findall(said), said
    result = json.loads((tmp_path / "importer_result.json").read_text())
    assert result["metadata"]["namespace"] == "acestream" and result["metadata"]["name"] == "orchestrator"
    assert {c["content_type"] for c in result["contents"]} >= {"module", "filter", "lookup", "role", "playbook"}
