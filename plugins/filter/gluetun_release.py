# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: gluetun_release
short_description: Which Gluetun release an image is, and the control-server routes that follow
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - The release comes from O(override) (C(acestream_gluetun_release)) when given, else from the image's own OCI
    label C(org.opencontainers.image.version) (O(labels), as the target's Docker Engine shows them), else from the
    image's tag.
  - The gluetun role writes the control-server auth file for that release (its routes differ between releases, and
    one unknown route stops Gluetun from starting), so an image that tells nothing, or a release the collection does
    not know, gives RV(_value.problem) naming the ways out.
options:
  _input:
    description: The image reference (C(acestream_gluetun_image)).
    type: str
    required: true
  override:
    description: C(acestream_gluetun_release); empty is not given.
    type: str
  labels:
    description: The image's labels on the target; omitted or null when the image is not there.
    type: dict
  images:
    description:
      - The target's images to find the image's labels in, instead of O(labels) (image summaries as
        C(community.docker.docker_host_info) lists them with C(verbose_output), or inspects as
        C(community.docker.docker_image_pull) returns one), matched by C(RepoTags) and C(RepoDigests).
    type: list
    elements: dict
  pull:
    description: C(acestream_gluetun_pull); RV(_value.pull) then says whether to pull the image to read its label.
    type: str
    choices: [always, missing, never]
  check_mode:
    description: Whether the run is in check mode (an image on the target is then never pulled again).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The release of the Gluetun image
  ansible.builtin.set_fact:
    gluetun: "{{ 'registry.example/gluetun:prod' | acestream.orchestrator.gluetun_release(labels=image_labels) }}"
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    release:
      description: C(vX.Y.Z) or C(latest); empty when nothing tells.
      type: str
    source:
      description: Where it was read (C(acestream_gluetun_release), the image label, the tag of the image).
      type: str
    known:
      description: Whether the collection knows the release's routes (v3.39.0 up to v3.41.x, or latest).
      type: bool
    has_auth:
      description: Whether the release has the control-server auth file (v3.39.1 and later).
      type: bool
    routes:
      description: The auth file's route set, C(v3.41) or C(v3.39).
      type: str
    auth_routes:
      description: The routes the auth file gives the collection's API key (those the release knows).
      type: list
      elements: str
    app_routes:
      description: The routes the auth file opens without a key for the orchestrator app (those the release knows).
      type: list
      elements: str
    label:
      description: The image's C(org.opencontainers.image.version) label, when it has one.
      type: str
    on_target:
      description: Whether the image was found on the target (its labels were looked at).
      type: bool
    reference:
      description: The image reference in Docker's short form (C(qmcgaw/gluetun:latest)), as the Docker Engine lists it.
      type: str
    pull:
      description:
        - Whether to pull the image to read its label - the release is not given (O(override)), O(pull) is not
          V(never), and the image is not on the target, or O(pull) is V(always) outside check mode.
      type: bool
    problem:
      description: Null, or why the role cannot deploy it and how to go on.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_release import ReleaseError, decide


def gluetun_release(image, override=None, labels=None, images=None, pull=None, check_mode=False):
    """The release decision (see RETURN)."""
    try:
        return decide(image, override=override, labels=labels, images=images, pull=pull, check_mode=check_mode)
    except ReleaseError as exc:
        raise AnsibleFilterError("acestream.orchestrator.gluetun_release: %s" % exc)


class FilterModule:
    """The acestream.orchestrator gluetun_release filter."""

    def filters(self):
        return {"gluetun_release": gluetun_release}
