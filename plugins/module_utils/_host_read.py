# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the stack reads of its Docker host before anything changes, in one module run (module stack_host): the
Docker SDK for Python of the interpreter, the Docker Engine's containers, the stack's images and network, the TCP
ports listening where the engine runs, the keys the stack keeps and its VPN directories.

Private to this collection. The Docker calls take a client; the rest reads the local file system only.
"""

from __future__ import annotations

import errno
import os
import sys

from ansible_collections.acestream.orchestrator.plugins.module_utils._docker_common import NotFound

# The kernel's lists of TCP sockets: the ports a process listens on (parsed by _host_ports.listening_ports).
PROC_NET_TCP = ("/proc/net/tcp", "/proc/net/tcp6")


def docker_engine_is_local(docker_host):
    """Whether the Docker Engine at ``docker_host`` (the address, as docker_host_from gives it) runs on this machine:
    its ports in use are this machine's. A tcp:// or ssh:// engine is elsewhere."""
    return str(docker_host).startswith("unix://")


def sdk_state(has_docker, import_error):
    """The Docker SDK for Python of the interpreter running the module: present or not, and why not (the last line
    of the import error, as a user reads it)."""
    lines = [line for line in (import_error or "").strip().splitlines() if line.strip()]
    return {"present": bool(has_docker), "python": sys.executable,
            "error": None if has_docker else (lines[-1].strip() if lines else "import failed")}


def read_text(path):
    """A file's text, None when it does not exist. Any other failure raises OSError."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def read_files(paths):
    """Each path's text (None when missing), and the paths that could not be read, with the reason."""
    found, errors = {}, []
    for path in paths:
        try:
            found[path] = read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            found[path] = None
            errors.append("%s cannot be read (%s): run as a user who can read it, or remove it and the stack "
                          "writes a new one" % (path, getattr(exc, "strerror", None) or exc))
    return found, errors


def subdirectories(path):
    """The directories directly inside ``path`` (full paths, sorted; symbolic links and hidden ones left out, as
    ansible.builtin.find lists them), [] when it is missing."""
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise
    return sorted(entry.path for entry in entries
                  if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."))


def listening_text(docker_host):
    """The kernel's TCP socket lists (IPv4, then IPv6 when the host has it), joined, when the Docker Engine runs here;
    None when it runs elsewhere (its host's ports cannot be read from here)."""
    if not docker_engine_is_local(docker_host):
        return None
    return "".join(read_text(path) or "" for path in PROC_NET_TCP)


def _inspected(inspect, what):
    """``inspect(what)``, None when Docker has no such object."""
    try:
        return inspect(what)
    except NotFound:
        return None


def read_docker(client, images=(), network="", inspect=(), inspect_images=()):
    """The Docker Engine's containers (all of them), the images among ``images`` (references) that are present and
    the network named ``network`` (when given), each as the Engine's list API gives them: the shapes
    community.docker.docker_host_info returns with verbose_output. Also the inspect of each container named in
    ``inspect`` and of each image in ``inspect_images`` (null when there is none)."""
    found = {"containers": client.containers(all=True), "images": [], "networks": []}
    if images:
        found["images"] = client.images(filters={"reference": list(images)})
    if network:
        found["networks"] = client.networks(names=[network])
    found["inspects"] = dict((name, _inspected(client.inspect_container, name)) for name in inspect)
    found["image_inspects"] = dict((ref, _inspected(client.inspect_image, ref)) for ref in inspect_images)
    return found
