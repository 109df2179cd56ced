#!/usr/bin/python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_host
short_description: Read what an AceStream stack needs of its Docker host, in one call, changing nothing
version_added: 0.1.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - Every entry point of the collection starts with this read (role C(common)), so that the checks made before
    anything changes cost one module run - the Docker SDK for Python of the interpreter running it; the Docker
    Engine's containers, the stack's images (their release labels) and its network; the TCP ports processes listen
    on where the Docker Engine runs; the keys the stack keeps in its directory; its VPN directories.
  - Never fails on what it finds - a missing Docker SDK for Python, a Docker Engine that does not answer, an
    unreadable file are returned for the role to word (it may install the SDK and ask again).
  - The files read are the stack's keys - the task that runs it sets C(no_log).
attributes:
  check_mode:
    support: full
    description: Changes nothing in either mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  idempotent:
    support: full
    description: Read-only.
options:
  docker:
    description: Ask the Docker Engine. V(false) reads only the files, the directories and the SDK.
    type: bool
    default: true
  images:
    description: Image references to list (those present on the Docker host), for their labels.
    type: list
    elements: str
    default: []
  network:
    description: The name of a network to look up. Empty - none.
    type: str
    default: ""
  inspect:
    description: Names of containers to inspect (the stack's Gluetun containers).
    type: list
    elements: str
    default: []
  inspect_images:
    description: Image references to inspect (the Gluetun image).
    type: list
    elements: str
    default: []
  files:
    description: Paths of files to read. A missing one reads as null.
    type: list
    elements: path
    default: []
  subdirectories_of:
    description: A directory whose subdirectories are listed. Empty - none.
    type: path
  file_states:
    description:
      - Paths whose kind, mode and content are read, for the gluetun role to tell whether its files are in place
        without a module run to write them - each file's content as a digest keyed by O(file_states_key), never
        as text.
    type: list
    elements: path
    default: []
  file_states_key:
    description: The file whose text (stripped) keys the digests of O(file_states). Missing or empty - no digests.
    type: path
  docker_host:
    description:
      - The Docker daemon, for example V(unix:///var/run/docker.sock). Defaults to E(DOCKER_HOST), then the local
        socket. The ports in use are read only when it is a local (V(unix://)) socket.
    type: str
    aliases: [docker_url]
  docker_timeout:
    description: Timeout of each Docker API call, in seconds.
    type: int
    default: 60
requirements:
  - Docker SDK for Python >= 5.0 on the target to ask the Docker Engine (without it the module reports it missing)
"""

EXAMPLES = r"""
- name: Read the Docker host
  acestream.orchestrator.stack_host:
    images: [qmcgaw/gluetun:v3.41.1]
    network: acestream
    files: [/opt/acestream/gluetun-api-key]
    subdirectories_of: /opt/acestream/gluetun
  register: host
  no_log: true  # the files read are keys
"""

RETURN = r"""
sdk:
  description: The Docker SDK for Python of the interpreter that ran the module.
  returned: always
  type: dict
  contains:
    present:
      description: Whether C(docker) and C(requests) import.
      type: bool
    python:
      description: The interpreter's path.
      type: str
    error:
      description: The import error's last line, null when present.
      type: str
can_talk_to_docker:
  description: Whether the Docker Engine answered (false when O(docker) is false).
  returned: always
  type: bool
msg:
  description: Why the Docker Engine did not answer.
  returned: when the Docker Engine did not answer
  type: str
containers:
  description: Every container of the Docker host, as the Engine's container list gives them.
  returned: always
  type: list
  elements: dict
images:
  description: The images among O(images) present on the Docker host, as the Engine's image list gives them.
  returned: always
  type: list
  elements: dict
networks:
  description: The network O(network), when it exists, as the Engine's network list gives it.
  returned: always
  type: list
  elements: dict
inspects:
  description: Each of O(inspect) with its inspect, null when there is no such container.
  returned: when the Docker Engine answered
  type: dict
image_inspects:
  description: Each of O(inspect_images) with its inspect, null when the image is not on the Docker host.
  returned: when the Docker Engine answered
  type: dict
listening:
  description: The kernel's TCP socket lists (C(/proc/net/tcp) and C(/proc/net/tcp6)), null when the Docker Engine
    is not local.
  returned: always
  type: str
files:
  description: Each of O(files) with its text, null when missing.
  returned: always
  type: dict
file_errors:
  description: The files that exist but could not be read, each with the reason and what to do.
  returned: always
  type: list
  elements: str
file_states:
  description:
    - Each of O(file_states) (normalised) with its C(kind) (V(absent), V(directory), V(file), V(link), V(other)),
      C(mode), the C(digest) of a file's content (HMAC-SHA256 under the key of O(file_states_key)) and the number of
      C(entries) of a directory. A path that cannot be read is left out.
  returned: always
  type: dict
subdirectories:
  description: The directories inside O(subdirectories_of), full paths, sorted.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import (
    DOCKER_ARGUMENT_SPEC,
    DOCKER_IMPORT_ERROR,
    HAS_DOCKER,
    DockerException,
    docker_client,
    docker_host_from,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._host_read import (
    listening_text,
    read_docker,
    read_files,
    sdk_state,
    subdirectories,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_files import file_states


def argument_spec():
    spec = dict(
        docker=dict(type="bool", default=True),
        images=dict(type="list", elements="str", default=[]),
        network=dict(type="str", default=""),
        inspect=dict(type="list", elements="str", default=[]),
        inspect_images=dict(type="list", elements="str", default=[]),
        files=dict(type="list", elements="path", default=[]),
        subdirectories_of=dict(type="path"),
        file_states=dict(type="list", elements="path", default=[]),
        file_states_key=dict(type="path", no_log=False),
    )
    spec.update(DOCKER_ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    docker_host = docker_host_from(params["docker_host"])
    result = dict(changed=False, sdk=sdk_state(HAS_DOCKER, DOCKER_IMPORT_ERROR), can_talk_to_docker=False,
                  containers=[], images=[], networks=[])
    try:
        result["files"], result["file_errors"] = read_files(params["files"])
        result["subdirectories"] = subdirectories(params["subdirectories_of"]) if params["subdirectories_of"] else []
        result["listening"] = listening_text(docker_host)
        key_file = params["file_states_key"]
        key = read_files([key_file])[0][key_file] if key_file else None
        result["file_states"] = file_states(params["file_states"], (key or "").strip())
    except OSError as exc:
        module.fail_json(msg="Reading the stack's files on the Docker host failed: %s" % exc, **result)
    if params["docker"] and HAS_DOCKER:
        try:
            result.update(read_docker(docker_client(docker_host, params["docker_timeout"]), params["images"],
                                      params["network"], params["inspect"], params["inspect_images"]))
            result["can_talk_to_docker"] = True
        except (DockerException, OSError, ValueError) as exc:
            result["msg"] = str(exc)
    elif params["docker"]:
        result["msg"] = "the Docker SDK for Python is missing (%s)" % result["sdk"]["error"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
