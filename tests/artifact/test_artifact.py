# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The artifact users install, tested as they use it, with the ansible-core of the interpreter running pytest.

``ansible-galaxy collection build`` from this checkout (a tree the test suite has just used: caches, virtualenvs,
build output lie in it), installed with ``ansible-galaxy collection install`` into an empty collections path next
to community.docker (copied from the ``ansible`` package of this virtualenv: Galaxy is not reachable). Then: what
it ships (the list is written to $ACESTREAM_ARTIFACT_LIST when set), ``ansible-doc`` on it, and the collection's
playbooks by FQCN on the simulators: ``site``, ``site`` again (nothing changed), ``verify``. None of these runs
may print a warning or a deprecation warning: a clean run is silent on every release of the support matrix.

scripts/matrix.sh runs this file in each matrix virtualenv (tests/matrix/*.txt).
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import tarfile

import docker
from artifact_install import BIN, ROOT, installed, run, warnings_in  # pylint: disable=unused-import  # a fixture

sys.path.insert(0, str(ROOT / "tests" / "integration"))
import roles_helpers  # noqa: E402  # tests/integration: a stack of simulators with unique names and free ports

MODULES = {"engine_pool", "gluetun_status", "stack_files", "stack_host", "stack_info"}
ROLES = {"common", "engines", "gluetun", "orchestrator_app"}
PLAYBOOKS = {"site", "verify", "drift", "status", "converge_engines"}
# What a user needs: the metadata, the plugins, roles, playbooks and their documentation.
SHIPPED = ["MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "meta/execution-environment.yml",
           "plugins/modules/engine_pool.py", "plugins/module_utils/_portplan.py", "plugins/lookup/forwarded_port.py",
           "plugins/filter/port_plan.py", "roles/engines/meta/argument_specs.yml", "playbooks/site.yml",
           "docs/engine_pool.md", "changelogs/changelog.yaml", "requirements.yml"]
# What development leaves in the tree (caches, virtualenvs, build output, test runners and fixtures).
NOT_SHIPPED = [".git", ".git/*", ".venv", ".hypothesis", ".pytest_cache", "build", "tests", "scripts",
               "benchmarks", "images", "extensions/molecule", "inventories/demo", "inventories/fleet-sim",
               ".venv/*", ".cache/*", ".hypothesis/*", ".pytest_cache/*", "*/.pytest_cache/*",
               "build/*", "tests/*", "scripts/*", "benchmarks/*", "images/*", "extensions/molecule/*",
               "*__pycache__*", "*.pyc", "*.tar.gz", "constraints.txt", "requirements-dev.txt", "Makefile",
               ".gitignore", ".ansible-lint", ".yamllint", "changelogs/.plugin-cache.yaml", "ansible.cfg",
               "inventories/fleet-sim/*", "*.retry", "*.orig", "*.rej", "*.swp", ".coverage"]
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def test_the_tree_was_used_and_its_leftovers_are_not_shipped(installed):
    """Every dev leftover pattern matches nothing in the artifact, while the tree it was built from has some."""
    names = installed["names"]
    shipped_dev = sorted({name for name in names for pattern in NOT_SHIPPED if fnmatch.fnmatch(name, pattern)})
    assert not shipped_dev, f"development files in the artifact: {shipped_dev}"
    for name in SHIPPED:
        assert name in names, f"{name} missing from the artifact: {names}"
    assert {n.split("/")[2][:-3] for n in names if re.fullmatch(r"plugins/modules/[a-z_]+\.py", n)} == MODULES
    assert {n.split("/")[1] for n in names if re.fullmatch(r"roles/[a-z_]+/tasks/main\.yml", n)} == ROLES
    assert {n.split("/")[1][:-4] for n in names if re.fullmatch(r"playbooks/[a-z_]+\.yml", n)} == PLAYBOOKS
    assert (ROOT / "build").is_dir()  # the tree had build output at least: the exclusion was exercised
    manifest = json.loads(tarfile.open(installed["tarball"]).extractfile("MANIFEST.json").read())
    assert manifest["collection_info"]["dependencies"] == {"community.docker": ">=4.0.0"}


def test_ansible_doc_lists_and_documents_the_plugins(installed):
    env, work = installed["env"], installed["work"]
    for kind, expected in (("module", MODULES), ("lookup", {"forwarded_port"}), ("filter", {"port_plan"}),
                           ("role", ROLES)):
        listed = run([BIN / "ansible-doc", "-t", kind, "-l", "acestream.orchestrator", "--json"], env, work)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert not warnings_in(listed), listed.stderr
        names = {name.rsplit(".", 1)[-1] for name in json.loads(listed.stdout)}
        assert expected <= names, f"{kind}: {names}"
    text = run([BIN / "ansible-doc", "-l", "acestream.orchestrator"], env, work)
    assert text.returncode == 0 and "acestream.orchestrator.engine_pool" in text.stdout, text.stdout + text.stderr
    doc = run([BIN / "ansible-doc", "acestream.orchestrator.engine_pool"], env, work)
    assert doc.returncode == 0 and "vpn_containers" in doc.stdout, doc.stderr
    assert not warnings_in(doc), doc.stderr


def play(installed, playbook, variables, tmp_path):
    """ansible-playbook <FQCN> on localhost with these variables, from the installed artifact; its recap too."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    extra = tmp_path / "extra_vars.json"
    extra.write_text(json.dumps(variables))
    proc = run([BIN / "ansible-playbook", "-i", inventory, "-e", f"@{extra}", playbook], installed["env"],
               installed["work"])
    recap = RECAP.search(proc.stdout)
    output = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0 and recap, f"{playbook} rc={proc.returncode}:\n{output}"
    assert not warnings_in(proc), f"{playbook} printed warnings on a clean run: {warnings_in(proc)}\n{output}"
    return {"changed": int(recap.group(2)), "failed": int(recap.group(4)), "output": output}


def test_site_rerun_verify_by_fqcn_on_the_simulators(installed, tmp_path):
    """The collection's playbooks by FQCN from the artifact: deploy, nothing changes on a rerun, verify passes."""
    variables = roles_helpers.stack_vars("mx", tmp_path, mode="redundant", replicas=2, range_size=6)
    client = docker.APIClient(version="auto", timeout=120)
    try:
        site = play(installed, "acestream.orchestrator.site", variables, tmp_path)
        assert site["changed"] > 0, site["output"]
        again = play(installed, "acestream.orchestrator.site", variables, tmp_path)
        assert again["changed"] == 0, f"second site run changed {again['changed']} task(s):\n{again['output']}"
        verify = play(installed, "acestream.orchestrator.verify", variables, tmp_path)
        assert verify["failed"] == 0, verify["output"]
        pool = client.containers(filters={"label": [f"acestream.pool={variables['acestream_pool_name']}"]})
        assert len([c for c in pool if "acestream.vpn" in (c.get("Labels") or {})]) == 2
    finally:
        roles_helpers.remove_stack(client, variables)
