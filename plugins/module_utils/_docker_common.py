# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker access shared by the collection's modules. Private: not an API for other collections."""

from __future__ import annotations

import os
import traceback

DOCKER_IMPORT_ERROR = None
try:
    import docker  # noqa: F401  pylint: disable=unused-import
    from docker.errors import DockerException, NotFound, APIError  # noqa: F401  pylint: disable=unused-import
    HAS_DOCKER = True
except ImportError:  # pragma: no cover - exercised by the sanity import test
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):  # type: ignore[no-redef]
        """Stand-in so that except clauses stay valid without the SDK."""

    class NotFound(DockerException):  # type: ignore[no-redef]
        """Stand-in so that except clauses stay valid without the SDK."""

    class APIError(DockerException):  # type: ignore[no-redef]
        """Stand-in so that except clauses stay valid without the SDK."""

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# Module options shared by every module that talks to Docker (merged into each argument_spec).
DOCKER_ARGUMENT_SPEC = dict(
    docker_host=dict(type="str", aliases=["docker_url"]),
    docker_timeout=dict(type="int", default=60),
)


def docker_host_from(value=None):
    """The daemon address: the option, else DOCKER_HOST, else the local socket (as community.docker does)."""
    return value or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def require_docker_sdk(module):
    """Fail the module with Ansible's standard message when the Docker SDK for Python is missing."""
    if not HAS_DOCKER:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python >= 5.0)"),
                         exception=DOCKER_IMPORT_ERROR)


def docker_client(docker_host=None, timeout=60):
    """A low-level Docker API client (docker.APIClient) with the daemon's API version negotiated."""
    import docker as sdk

    return sdk.APIClient(base_url=docker_host_from(docker_host), version="auto", timeout=timeout)
