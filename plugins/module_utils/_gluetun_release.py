# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Gluetun release an image is, and what the collection does for it. Private: not an API for other
collections.

The control server's routes and authentication differ between releases (docs/gluetun_status.md): the gluetun
role writes an auth file that may list only the routes of the release it deploys, or Gluetun refuses to start.
The release comes from, in this order: ``acestream_gluetun_release`` (the user's word always wins), the image's
own OCI label ``org.opencontainers.image.version`` (set by Gluetun's release workflow: ``v3.41.1`` for a
release, ``latest`` for master builds), the image's tag. An image that tells nothing (a private mirror's
``registry.example/gluetun:prod``, a digest, a local build without the label) is refused with the three ways out.
"""

from __future__ import annotations

import re

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._names import IMAGE_VERSION_LABEL, LABEL_GLUETUN_RELEASE

VERSION_LABEL = IMAGE_VERSION_LABEL
# The gluetun role labels each Gluetun container with the release its auth file was written for.
RELEASE_LABEL = LABEL_GLUETUN_RELEASE
# Control-server routes the collection calls (modules gluetun_status and engine_pool, the forwarded_port lookup),
# by route set. Each release refuses to start on a route it does not know, so the auth file lists only these.
AUTH_ROUTES = {
    "v3.39": ["GET /v1/version", "GET /v1/vpn/status", "PUT /v1/vpn/status", "GET /v1/openvpn/status",
              "GET /v1/publicip/ip", "GET /v1/openvpn/portforwarded"],
}
AUTH_ROUTES["v3.41"] = AUTH_ROUTES["v3.39"] + ["GET /v1/portforward"]
# What the orchestrator app calls: it sends no credentials, so these get a role without authentication when the
# app is on (only the ones the release knows).
APP_ROUTES = {"v3.39": ["GET /v1/publicip/ip"]}
APP_ROUTES["v3.41"] = APP_ROUTES["v3.39"] + ["GET /v1/portforward"]
FIRST_RELEASE = (3, 39, 0)
FIRST_AUTH_RELEASE = (3, 39, 1)
FIRST_V3_41_RELEASE = (3, 41, 0)
NEXT_UNKNOWN_RELEASE = (3, 42, 0)
SUPPORTED = "v3.39.0 ... v3.41.x or latest"
_RELEASE_RE = re.compile(r"^v?([0-9]+)\.([0-9]+)\.([0-9]+)$")


class ReleaseError(AcestreamError, ValueError):
    """The input of the release rule is not of a kind it can read (names the option)."""


def normalize(text):
    """``3.41.1`` / ``v3.41.1`` -> ``v3.41.1``; ``latest`` stays; anything else is returned trimmed."""
    text = text.strip() if isinstance(text, str) else ""
    match = _RELEASE_RE.match(text)
    return "v%s.%s.%s" % match.groups() if match else text


def release_tuple(release):
    match = _RELEASE_RE.match(release or "")
    return tuple(int(part) for part in match.groups()) if match else None


def is_known(release):
    """A release whose routes the collection knows: v3.39.0 up to v3.41.x, or latest."""
    if release == "latest":
        return True
    parts = release_tuple(release)
    return parts is not None and FIRST_RELEASE <= parts < NEXT_UNKNOWN_RELEASE


def image_tag(image):
    """The tag of an image reference (``latest`` when it has none), None for a digest reference."""
    if "@" in image:
        return None
    last = image.split("/")[-1]
    return last.split(":")[-1] if ":" in last else "latest"


def _familiar(reference):
    """Docker's short form of a reference: without docker.io/ and library/, with :latest when it has no tag."""
    name, sep, digest = reference.partition("@")
    if sep and ":" in name.split("/")[-1]:
        name = name.rsplit(":", 1)[0]  # repo:tag@digest: Docker lists it as repo@digest
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/"):]
    if not sep and ":" not in name.split("/")[-1]:
        name += ":latest"
    return name + sep + digest


def image_labels(image, images):
    """The labels of ``image`` among ``images`` (the target's image list, or inspects), or None when it is not
    there. Each item is a Docker image summary (``RepoTags``, ``RepoDigests``, ``Labels``) or an inspect
    (``Config.Labels``)."""
    if images is None:
        return None
    if not isinstance(images, list):
        raise ReleaseError("the target's images must be a list, not %s" % type(images).__name__)
    wanted = _familiar(image)
    for item in images:
        if not isinstance(item, dict):
            continue
        references = [_familiar(r) for r in (item.get("RepoTags") or []) + (item.get("RepoDigests") or [])
                      if isinstance(r, str)]
        if wanted in references:
            if "Labels" in item:  # an image summary (null: no labels)
                labels = item["Labels"]
            elif isinstance(item.get("Config"), dict):  # an inspect
                labels = item["Config"].get("Labels")
            else:  # a summary without its labels (some image stores): not known, look again
                return None
            return labels if isinstance(labels, dict) else {}
    return None


def _string(value, name):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReleaseError("%s must be a string, not %s" % (name, type(value).__name__))
    return value


def read_release(image, override, labels, override_name):
    """Where an image's release comes from, the same rule for every image the roles deploy: ``override`` (the user's
    word, variable ``override_name``), else the image's label org.opencontainers.image.version (``labels``: None when
    the image is not on the target), else its tag. Returns ``(release, source, label)``: ``release`` normalized
    (``v3.41.1``, ``latest``) or the override as given, ``""`` when nothing tells; ``source`` says where it was read."""
    if labels is not None and not isinstance(labels, dict):
        raise ReleaseError("the image labels must be a mapping, not %s" % type(labels).__name__)
    label = normalize((labels or {}).get(VERSION_LABEL))
    tag = image_tag(image)
    if override:
        return normalize(override), override_name, label
    if label and (label == "latest" or release_tuple(label)):
        return label, "the image label %s" % VERSION_LABEL, label
    if tag and (tag == "latest" or release_tuple(normalize(tag))):
        return normalize(tag), "the tag of %s" % image, label
    return "", None, label


def decide(image, override=None, labels=None, images=None, pull=None, check_mode=False):
    """The release of ``image`` and what follows from it.

    ``override``: acestream_gluetun_release ('' or None: not given). ``labels``: the image's labels on the target
    (None: the image is not there to look at); or ``images``, the target's images to find it in (image_labels).
    ``pull``: acestream_gluetun_pull (None: not asked). Returns ``{release, source, known, has_auth, routes,
    auth_routes, app_routes, label, on_target, pull, problem}``; ``pull``: whether to pull the image to read its label
    (the release is not given, the policy may pull, and the image is missing or the policy pulls always outside
    check mode).
    ``source`` says where the release was read, ``routes`` is ``"v3.41"`` or ``"v3.39"`` (the route set of the auth
    file: ``auth_routes`` with the API key, ``app_routes`` without, for the orchestrator app), ``problem`` is
    None or the refusal, naming the ways out.
    """
    if not isinstance(image, str):
        raise ReleaseError("acestream_gluetun_image must be a string, not %s" % type(image).__name__)
    override = _string(override, "acestream_gluetun_release").strip()
    if labels is None and images is not None:
        labels = image_labels(image, images)
    release, source, label = read_release(image, override, labels, "acestream_gluetun_release")
    tag = image_tag(image)
    result = {"release": release, "source": source, "known": is_known(release), "label": label or None,
              "on_target": labels is not None, "reference": _familiar(image)}
    result["pull"] = (not override and pull not in (None, "never")
                      and (labels is None or (pull == "always" and not check_mode)))
    parts = release_tuple(release)
    result["has_auth"] = release == "latest" or (parts is not None and parts >= FIRST_AUTH_RELEASE)
    result["routes"] = "v3.41" if release == "latest" or (parts and parts >= FIRST_V3_41_RELEASE) else "v3.39"
    result["auth_routes"] = list(AUTH_ROUTES[result["routes"]])
    result["app_routes"] = list(APP_ROUTES[result["routes"]])
    result["problem"] = None
    if not release:
        what = "a digest" if tag is None else "tag '%s'" % tag
        result["problem"] = (
            "Cannot tell the Gluetun release of %s (%s, and %s): set acestream_gluetun_release to the release "
            "the image is (%s), pin the image to a release tag (e.g. qmcgaw/gluetun:v3.41.1), or use an image "
            "that carries the label %s (Gluetun's own images do). The control-server auth file may list only "
            "routes that release knows, or Gluetun refuses to start." % (
                image, what, "no %s label" % VERSION_LABEL if labels is not None
                else "the image is not on the target to read its %s label" % VERSION_LABEL, SUPPORTED,
                VERSION_LABEL))
    elif not result["known"]:
        result["problem"] = (
            "Gluetun release '%s' (from %s) is not one this collection knows: set acestream_gluetun_release to "
            "%s (the release the image really is), or pin the image to such a release tag, e.g. "
            "qmcgaw/gluetun:v3.41.1. The control-server auth file may list only routes that release knows, or "
            "Gluetun refuses to start." % (release, source, SUPPORTED))
    return result


def contradiction(assumed, answered):
    """What to say when the release a running Gluetun answers (/v1/version) is not the one its auth file was
    written for (None when they agree, or when either is unknown)."""
    answered = normalize(answered) if isinstance(answered, str) else ""
    if not assumed or not answered or answered == assumed:
        return None
    if not (answered == "latest" or release_tuple(answered)):
        return None
    if decide("", override=assumed)["routes"] == decide("", override=answered)["routes"] \
            and decide("", override=assumed)["has_auth"] == decide("", override=answered)["has_auth"]:
        return None
    return ("answers release %s, but its control-server auth file was written for %s: set "
            "acestream_gluetun_release to %s (or fix the image) and run site" % (answered, assumed, answered))
