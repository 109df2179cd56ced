# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: orchestrator_app
short_description: What the AceStream Orchestrator app needs to run the port guide's setup, and why it cannot
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Decides, for an app image, everything the C(orchestrator_app) role deploys - the app release (from O(override),
    else the image's label C(org.opencontainers.image.version) on the target, else its tag), the app's engine
    variant, the C(CONTAINER_LABEL) of the stack's app engines and the engine settings file that wins over the
    app's C(MIN_REPLICAS), C(MAX_REPLICAS) and C(ENGINE_VARIANT).
  - Says why not to deploy - in RV(_value.release_problem) a release other than v1.7.x (C(latest) and v2 ignore
    C(VPN_MODE) and the Gluetun names); in RV(_value.problems) a variant the app cannot run, an engine image (the
    app runs its own), what O(app_env) may not set, and, when O(gluetun_release) is given, a Gluetun release
    before v3.41.0 with port forwarding on (the app reads the forwarded port only from C(/v1/portforward)) unless
    O(old_gluetun) is V(warn).
  - See the collection's C(docs/orchestrator_app.md) for the facts behind each rule.
options:
  _input:
    description: The app's image reference (C(acestream_orchestrator_image)).
    type: str
    required: true
  pool:
    description: The stack's name (C(acestream_pool_name)); the app's C(CONTAINER_LABEL) is C(acestream.app-pool=<pool>).
    type: str
    required: true
  replicas:
    description: The number of engines (min = max in the settings file).
    type: int
    required: true
  override:
    description: C(acestream_orchestrator_release), the release the image is; empty to read it.
    type: str
    default: ""
  images:
    description: The target's images (docker_host_info's C(images)), to read the image's label; null when not listed.
    type: list
    elements: dict
  engine_variant:
    description: The collection's engine variant, mapped to the app's by platform.
    type: str
  app_variant:
    description: The app's own variant name (C(AceServe-amd64), C(AceServe-arm32), C(AceServe-arm64)); empty to map O(engine_variant).
    type: str
    default: ""
  engine_image:
    description: C(acestream_engine_image); must be empty with the app.
    type: str
    default: ""
  gluetun_release:
    description: The Gluetun release deployed (the P(acestream.orchestrator.gluetun_release#filter) result's C(release)); null to skip the Gluetun check.
    type: str
  gluetun_containers:
    description: C(acestream_gluetun_containers), whose C(env) tells whether port forwarding is on.
    type: list
    elements: dict
    default: []
  gluetun_env:
    description: C(acestream_gluetun_env), the environment of every Gluetun container.
    type: dict
    default: {}
  old_gluetun:
    description: V(fail) refuses a Gluetun release before v3.41.0 with port forwarding on; V(warn) warns.
    type: str
    choices: [fail, warn]
    default: fail
  app_env:
    description:
      - C(acestream_orchestrator_env); it may not set C(CONTAINER_LABEL) (the stack's own),
        C(VPN_UNHEALTHY_RESTART_TIMEOUT_S) (the app never restarts the stack's Gluetun containers), nor C(MIN_REPLICAS),
        C(MAX_REPLICAS) or C(ENGINE_VARIANT), which the engine settings file overrides in the app.
    type: dict
  containers:
    description: The Docker host's containers (docker_host_info's C(containers), with labels); RV(_value.engines) then names the stack's app engines.
    type: list
    elements: dict
  name:
    description: The app container's name (C(acestream_orchestrator_name)); with O(containers), RV(_value.left) says whether it is there.
    type: str
"""

EXAMPLES = r"""
- name: Decide the app's deployment
  ansible.builtin.set_fact:
    app: >-
      {{ 'ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3'
         | acestream.orchestrator.orchestrator_app(pool='acestream', replicas=4, engine_variant='krinkuto11-amd64') }}
  # app.variant: AceServe-amd64, app.label: acestream.app-pool=acestream, app.problems: []
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    release: {description: The app release (C(v1.7.3)); empty when it cannot be told., type: str}
    release_source: {description: Where the release was read., type: str}
    reference: {description: The image reference as Docker lists it (for an image filter)., type: str}
    on_target: {description: Whether the image was found among O(images)., type: bool}
    release_problem: {description: Why the release cannot run the port guide's setup; null when it can., type: str}
    variant: {description: The app's engine variant; null when refused., type: str}
    label: {description: The app's C(CONTAINER_LABEL)., type: str}
    settings: {description: The engine settings file's content; null when the variant is refused., type: dict}
    settings_json: {description: The same as the file's text (sorted JSON)., type: str}
    custom_variant_json:
      description: The app's C(custom_engine_variant.json), turned off (the image ships one that is on and wins over the settings file).
      type: str
    engines: {description: The stack's app engines among O(containers); null without them., type: list, elements: str}
    left:
      description: Whether the app left anything among O(containers) - one of its engines, or a container named O(name); null without O(containers).
      type: bool
    settings_hash: {description: "A hash of both settings files, for a label of the app container.", type: str}
    problems: {description: Why the stack cannot run the app (besides its release); empty when it can., type: list, elements: str}
    warnings: {description: What the user accepted (O(old_gluetun) V(warn))., type: list, elements: str}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_release import ReleaseError
from ansible_collections.acestream.orchestrator.plugins.module_utils._orchestrator_app import AppError, deployment


def orchestrator_app(image, pool=None, replicas=None, override="", images=None, engine_variant=None, app_variant="",
                     engine_image="", gluetun_release=None, gluetun_containers=None, gluetun_env=None,
                     old_gluetun="fail", app_env=None, containers=None, name=None):
    """The app's deployment (see RETURN)."""
    try:
        return deployment(image, pool, replicas, override=override, images=images, engine_variant=engine_variant,
                          app_variant_name=app_variant, engine_image=engine_image, gluetun_release=gluetun_release,
                          gluetun_containers=gluetun_containers, gluetun_env=gluetun_env, old_gluetun=old_gluetun,
                          app_env=app_env, containers=containers, name=name)
    except (AppError, ReleaseError) as exc:
        raise AnsibleFilterError("acestream.orchestrator.orchestrator_app: %s" % exc)


class FilterModule:
    """The acestream.orchestrator orchestrator_app filter."""

    def filters(self):
        return {"orchestrator_app": orchestrator_app}
