# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment: meta/execution-environment.yml read by ansible-builder as it reads it from every
collection it puts in an image (``ansible-builder introspect`` on the installed artifact), and the EE definition
of the README turned into a build context by ``ansible-builder create`` (no image is built: no registry is
reachable). Needs ansible-builder (requirements-dev.txt): the default virtualenv only.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from artifact_install import BIN, ROOT, installed  # pylint: disable=unused-import  # a fixture

pytest.importorskip("ansible_builder")


def readme_ee_definition():
    """The execution-environment.yml shown in the README's section on execution environments."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"```yaml\n(# execution-environment\.yml\n.*?)```", text, re.S)
    assert found, "README: no ```yaml block starting with '# execution-environment.yml'"
    return yaml.safe_load(found.group(1))


def builder(*args, cwd):
    proc = subprocess.run([str(BIN / "ansible-builder"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_the_collection_meta_file_is_what_ansible_builder_reads(installed):
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 3
    assert set(meta["dependencies"]) == {"python", "system"}  # files, relative to the collection root
    out = builder("introspect", installed["work"] / "collections", cwd=installed["work"]).stdout
    data = yaml.safe_load(out[out.index("python:"):]) if "python:" in out else yaml.safe_load(out)
    python = [line for line in data["python"] if "acestream.orchestrator" in line]
    system = [line for line in data["system"] if "acestream.orchestrator" in line]
    assert any(line.startswith("docker>=") for line in python), out
    assert any(line.startswith("requests>=") for line in python), out
    assert any(line.startswith("openssh-client") for line in system), out
    assert not any("ansible-rulebook" in line for line in data["python"]), out


def test_ansible_builder_create_makes_the_build_context(installed, tmp_path):
    definition = readme_ee_definition()
    assert definition["version"] == 3
    galaxy = {c["name"] for c in definition["dependencies"]["galaxy"]["collections"]}
    assert {"acestream.orchestrator", "community.docker"} <= galaxy
    assert "ansible-rulebook" not in yaml.safe_dump(definition)
    (tmp_path / "execution-environment.yml").write_text(yaml.safe_dump(definition, sort_keys=False))
    builder("create", "--file", "execution-environment.yml", "--context", "context", "--output-filename",
            "Containerfile", cwd=tmp_path)
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "install-from-bindep" in containerfile
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert {c["name"] for c in requirements["collections"]} == galaxy
    assert "ansible-core>=2.19,<2.22" in containerfile
    assert (context / "_build" / "scripts" / "assemble").is_file()
    assert (context / "_build" / "scripts" / "introspect.py").is_file()
