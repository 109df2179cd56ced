# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plugin and role documentation lints clean with antsibull-docs (offline), as docs.ansible.com renders it:
markup such as M() for modules and P(...#role) for roles, option references, semantic versions."""

from __future__ import annotations

import os
import subprocess

import pytest
from artifact_install import BIN, ROOT

pytest.importorskip("antsibull_docs")


def test_collection_docs_lint_clean():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "antsibull-docs"), "lint-collection-docs", "--plugin-docs", "."],
                          cwd=ROOT / "build" / "collections" / "ansible_collections" / "acestream" / "orchestrator",
                          capture_output=True, text=True, env=env, check=False, timeout=600)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
