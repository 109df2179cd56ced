# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_gluetun_release: the release of a Gluetun image (the user's word, the image label, the tag, in that order),
what follows from it, and what verify says when a running Gluetun answers another release."""

from __future__ import annotations

import math

import pytest

from ansible_collections.acestream.orchestrator.plugins.module_utils import _gluetun_release as gr

LABEL = "org.opencontainers.image.version"


@pytest.mark.parametrize("image, override, labels, release, source", [
    ("qmcgaw/gluetun:v3.41.1", "", None, "v3.41.1", "the tag of qmcgaw/gluetun:v3.41.1"),
    ("qmcgaw/gluetun:3.40.0", None, None, "v3.40.0", "the tag of qmcgaw/gluetun:3.40.0"),
    ("qmcgaw/gluetun", "", None, "latest", "the tag of qmcgaw/gluetun"),
    ("localhost:5000/gluetun", "", None, "latest", "the tag of localhost:5000/gluetun"),
    # the label comes before the tag: a private mirror's tag tells nothing, the label does
    ("registry.example/gluetun:prod", "", {LABEL: "v3.40.3"}, "v3.40.3", "the image label " + LABEL),
    ("qmcgaw/gluetun@sha256:" + "a" * 64, "", {LABEL: "latest"}, "latest", "the image label " + LABEL),
    ("qmcgaw/gluetun:v3.41.1", "", {LABEL: "v3.40.0"}, "v3.40.0", "the image label " + LABEL),
    # a label that is not a release (a local build's "dev") leaves the tag to tell
    ("qmcgaw/gluetun:v3.41.1", "", {LABEL: "dev"}, "v3.41.1", "the tag of qmcgaw/gluetun:v3.41.1"),
    # the user's word always wins
    ("registry.example/gluetun:prod", " 3.39.1 ", {LABEL: "v3.41.1"}, "v3.39.1", "acestream_gluetun_release"),
])
def test_where_the_release_comes_from(image, override, labels, release, source):
    decided = gr.decide(image, override=override, labels=labels)
    assert (decided["release"], decided["source"], decided["problem"]) == (release, source, None)
    assert decided["known"]


@pytest.mark.parametrize("release, has_auth, routes", [
    ("v3.39.0", False, "v3.39"), ("v3.39.1", True, "v3.39"), ("v3.40.9", True, "v3.39"),
    ("v3.41.0", True, "v3.41"), ("v3.41.7", True, "v3.41"), ("latest", True, "v3.41"),
])
def test_routes_and_auth_follow_the_release(release, has_auth, routes):
    decided = gr.decide("qmcgaw/gluetun", override=release)
    assert (decided["has_auth"], decided["routes"]) == (has_auth, routes)


def test_an_image_that_tells_nothing_is_refused_with_the_three_ways_out():
    problem = gr.decide("registry.example/gluetun:prod", labels={})["problem"]
    assert problem.startswith("Cannot tell the Gluetun release of registry.example/gluetun:prod (tag 'prod', and no "
                              "org.opencontainers.image.version label)")
    for way in ("set acestream_gluetun_release", "pin the image to a release tag", "carries the label"):
        assert way in problem
    absent = gr.decide("registry.example/gluetun@sha256:" + "b" * 64, labels=None)["problem"]
    assert "(a digest, and the image is not on the target to read its org.opencontainers.image.version label)" \
        in absent


@pytest.mark.parametrize("image, override, labels", [
    ("qmcgaw/gluetun:v3.38.0", "", None), ("qmcgaw/gluetun:v3.42.0", "", None), ("x/g:prod", "v4.0.0", None),
    ("x/g:prod", "", {LABEL: "v3.42.1"}), ("x/g", "pr-1234", None),
])
def test_a_release_the_collection_does_not_know_is_refused(image, override, labels):
    decided = gr.decide(image, override=override, labels=labels)
    assert not decided["known"]
    assert "is not one this collection knows: set acestream_gluetun_release to v3.39.0 ... v3.41.x or latest" \
        in decided["problem"]


@pytest.mark.parametrize("image, override, labels", [
    (None, "", None), (["qmcgaw/gluetun"], "", None), ("qmcgaw/gluetun", 3.41, None),
    ("qmcgaw/gluetun", math.nan, None), ("qmcgaw/gluetun", "", ["v3.41.1"]),
])
def test_input_of_a_kind_the_rule_cannot_read(image, override, labels):
    with pytest.raises(gr.ReleaseError) as raised:
        gr.decide(image, override=override, labels=labels)
    assert "must be" in str(raised.value)


@pytest.mark.parametrize("assumed, answered, says", [
    ("v3.41.1", "v3.41.1", False), ("v3.41.1", "v3.41.0", False), ("latest", "v3.41.1", False),
    ("v3.41.1", "v3.40.0", True), ("v3.40.0", "latest", True), ("v3.39.1", "v3.39.0", True),
    ("v3.41.1", None, False), ("v3.41.1", "", False), ("", "v3.40.0", False), ("v3.41.1", "abcdef0", False),
])
def test_a_running_gluetun_answering_another_release(assumed, answered, says):
    said = gr.contradiction(assumed, answered)
    assert bool(said) == says
    if says:
        assert said == ("answers release %s, but its control-server auth file was written for %s: set "
                        "acestream_gluetun_release to %s (or fix the image) and run site"
                        % (gr.normalize(answered), assumed, gr.normalize(answered)))


def test_the_image_is_found_among_the_targets_images_by_its_references():
    images = [
        {"RepoTags": ["qmcgaw/gluetun:v3.40.0"], "RepoDigests": [], "Labels": {LABEL: "v3.40.0"}},
        {"RepoTags": ["qmcgaw/gluetun:latest"], "RepoDigests": ["qmcgaw/gluetun@sha256:" + "c" * 64],
         "Labels": {LABEL: "latest"}},
        {"RepoTags": ["registry.example/gluetun:prod"],
         "Config": {"Labels": {LABEL: "v3.41.1"}}},  # an inspect, as docker_image_pull returns it
        "not an image",
    ]
    assert gr.image_labels("qmcgaw/gluetun", images) == {LABEL: "latest"}
    assert gr.image_labels("docker.io/qmcgaw/gluetun:latest", images) == {LABEL: "latest"}
    assert gr.image_labels("qmcgaw/gluetun@sha256:" + "c" * 64, images) == {LABEL: "latest"}
    assert gr.image_labels("qmcgaw/gluetun:v3.40.0", images) == {LABEL: "v3.40.0"}
    assert gr.decide("registry.example/gluetun:prod", images=images)["release"] == "v3.41.1"
    assert gr.image_labels("qmcgaw/gluetun:v3.39.1", images) is None  # not on the target
    assert gr.image_labels("qmcgaw/gluetun", None) is None
    assert gr.image_labels("library/debian", [{"RepoTags": ["debian:latest"], "Labels": {}}]) == {}
    with pytest.raises(gr.ReleaseError, match="must be a list"):
        gr.image_labels("x", {"RepoTags": []})


def test_references_in_dockers_short_form():
    assert gr.decide("docker.io/qmcgaw/gluetun")["reference"] == "qmcgaw/gluetun:latest"
    assert gr.decide("index.docker.io/library/alpine:3")["reference"] == "alpine:3"
    assert gr.decide("ghcr.io/x/gluetun:v3.41.1")["reference"] == "ghcr.io/x/gluetun:v3.41.1"
    digest = "sha256:" + "d" * 64
    # repo:tag@digest is listed by Docker as repo@digest
    assert gr.decide("qmcgaw/gluetun:v3.41.1@" + digest)["reference"] == "qmcgaw/gluetun@" + digest
    images = [{"RepoTags": [], "RepoDigests": ["qmcgaw/gluetun@" + digest], "Labels": {LABEL: "v3.41.1"}}]
    assert gr.image_labels("docker.io/qmcgaw/gluetun:v3.41.1@" + digest, images) == {LABEL: "v3.41.1"}


def test_an_image_summary_without_its_labels_is_not_known():
    """Some image stores list images without their labels: not "no label", so the role looks again (a pull or an
    inspect) instead of refusing."""
    images = [{"RepoTags": ["qmcgaw/gluetun:latest"]}]
    assert gr.image_labels("qmcgaw/gluetun", images) is None
    assert gr.decide("qmcgaw/gluetun", images=images)["on_target"] is False
    assert gr.image_labels("qmcgaw/gluetun", [{"RepoTags": ["qmcgaw/gluetun:latest"], "Labels": None}]) == {}


@pytest.mark.parametrize("override, labels, pull, check_mode, pulled", [
    ("", None, "missing", False, True),  # missing: pulled to read its label
    ("", None, "missing", True, True),  # check mode too (docker_image_pull then only says it would)
    ("", {}, "missing", False, False),  # on the target: its labels are read
    ("", {}, "always", False, True),  # always: pulled again
    ("", {}, "always", True, False),  # but not in check mode
    ("", None, "never", False, False),
    ("v3.41.1", None, "missing", False, False),  # the release is given: nothing to read
    ("", None, None, False, False),  # not asked
])
def test_when_the_image_is_pulled_to_read_its_release(override, labels, pull, check_mode, pulled):
    assert gr.decide("qmcgaw/gluetun:v3.41.1", override=override, labels=labels, pull=pull,
                     check_mode=check_mode)["pull"] is pulled
