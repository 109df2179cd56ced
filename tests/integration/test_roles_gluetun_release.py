# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Gluetun release from the image itself: a private mirror's tag that tells nothing, with Gluetun's own label
org.opencontainers.image.version, deploys that release; an image that tells nothing is refused before anything
changes; verify says when a running Gluetun answers another release than its auth file was written for."""

from __future__ import annotations

import io
import uuid

import pytest

from conftest import GLUETUN_IMAGE, assert_same_docker_state, docker_state
from roles_helpers import (  # noqa: F401 pylint: disable=unused-import
    failure_message,
    run_collection_playbook,
    run_roles,
    stack,
)

LABEL = "org.opencontainers.image.version"


@pytest.fixture
def mirror(docker_api):
    """Factory: the simulator re-tagged as a private mirror's image (registry.example/gluetun:<tag>) whose label
    and simulated release are the given ones; removed at the end."""
    made = []

    def build(label, sim_version=None):
        tag = f"prod-{uuid.uuid4().hex[:6]}"
        reference = f"registry.example/gluetun:{tag}"
        lines = [f"FROM {GLUETUN_IMAGE}", f'LABEL {LABEL}="{label}"']
        if sim_version:
            lines.append(f"ENV GLUETUN_SIM_VERSION={sim_version}")
        for _line in docker_api.build(fileobj=io.BytesIO("\n".join(lines).encode()), tag=reference, rm=True,
                                      forcerm=True, decode=True):
            pass
        made.append(reference)
        return reference, tag

    yield build
    for reference in made:
        docker_api.remove_image(reference, force=True)


def gluetun_labels(docker_api, variables):
    name = variables["acestream_gluetun_containers"][0]["name"]
    return docker_api.inspect_container(name)["Config"]["Labels"]


def test_a_mirrors_tag_tells_nothing_the_image_label_gives_the_release(stack, docker_api, tmp_path, mirror):
    image, _tag = mirror("v3.40.0", sim_version="v3.40.0")
    variables = stack(mode="single", release="", acestream_gluetun_image=image)
    variables["acestream_gluetun_env"].pop("GLUETUN_SIM_VERSION")  # the image says which release it is
    first = run_roles(tmp_path, variables)
    assert first.rc == 0, failure_message(first)
    assert gluetun_labels(docker_api, variables)["acestream.gluetun.release"] == "v3.40.0"
    # the v3.40 route set: the port route of v3.41 would stop this release from starting
    auth = (tmp_path / "stack" / "gluetun" / variables["acestream_gluetun_containers"][0]["name"] / "auth"
            / "config.toml").read_text()
    assert '"GET /v1/portforward"' not in auth and '"GET /v1/openvpn/portforwarded"' in auth
    again = run_roles(tmp_path, variables)
    assert again.rc == 0 and again.changed == 0, failure_message(again)
    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc == 0, failure_message(verify)


@pytest.mark.exclusive
def test_an_image_that_tells_nothing_is_refused_before_anything_changes(stack, docker_api, tmp_path, mirror):
    image, tag = mirror("")
    variables = stack(mode="single", release="", acestream_gluetun_image=image)
    before = docker_state(docker_api)
    run = run_roles(tmp_path, variables)
    message = failure_message(run)
    assert run.rc != 0 and run.changed == 0, message
    for phrase in (f"Cannot tell the Gluetun release of {image} (tag '{tag}', and no {LABEL} label)",
                   "set acestream_gluetun_release", "pin the image to a release tag", f"carries the label {LABEL}"):
        assert phrase in message, message
    assert_same_docker_state(before, docker_state(docker_api))
    assert not (tmp_path / "stack").exists()


def test_verify_says_when_gluetun_answers_another_release(stack, docker_api, tmp_path):
    """The auth file written for v3.40.0 (acestream_gluetun_release), the image running v3.41.1: its port route is
    not in the file (the client, seeing v3.41.1, would be refused with 401), so the engines leave the port alone."""
    variables = stack(mode="single", release="v3.40.0", acestream_engine_forwarded_port="off")
    variables["acestream_gluetun_env"].update({"GLUETUN_SIM_VERSION": "v3.41.1", "VPN_PORT_FORWARDING": False})
    deployed = run_roles(tmp_path, variables)
    assert deployed.rc == 0, failure_message(deployed)
    verify = run_collection_playbook("verify", variables, tmp_path)
    assert verify.rc != 0
    name = variables["acestream_gluetun_containers"][0]["name"]
    assert (f"Gluetun {name} answers release v3.41.1, but its control-server auth file was written for v3.40.0: "
            "set acestream_gluetun_release to v3.41.1 (or fix the image) and run site") in verify.stdout, \
        verify.stdout[-3000:]


def test_a_missing_image_is_not_pulled_when_the_policy_says_never(stack, docker_api, tmp_path):
    """pull never: the image is not there to read its label, nothing is pulled, the tag tells nothing: refused."""
    tag = f"prod-{uuid.uuid4().hex[:6]}"
    image = f"registry.example/gluetun:{tag}"
    variables = stack(mode="single", release="", acestream_gluetun_image=image)  # the helpers pull never
    run = run_roles(tmp_path, variables)
    message = failure_message(run)
    assert run.rc != 0 and run.changed == 0, message
    assert (f"Cannot tell the Gluetun release of {image} (tag '{tag}', and the image is not on the target to read "
            f"its {LABEL} label)") in message
    pulls = [hosts["localhost"] for task, hosts in run.results.items()
             if task.endswith("Pull the Gluetun image to read its release label")]
    assert pulls and all(p.get("skipped") for p in pulls), f"a pull was attempted: {pulls}"
    assert not any(image in (i.get("RepoTags") or []) for i in docker_api.images())
    assert not (tmp_path / "stack").exists()
