# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_orchestrator_app: the app release that runs the port guide's setup, its engine settings file and variant names,
its CONTAINER_LABEL, the Gluetun releases it reads a forwarded port from, and its engines as observed (which VPN,
which ports, left in an old network namespace or not); with the stack view's app mode (the filter:
tests/unit/plugins/filter/test_orchestrator_app_filter.py)."""

from __future__ import annotations

import json
import math

import pytest
from app_listing import listed_engine as _listed

from ansible_collections.acestream.orchestrator.plugins.module_utils import _orchestrator_app as app
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_view import app_drift, app_engines_joined

LABEL = "org.opencontainers.image.version"


# --------------------------------------------------------------------------------------- release
@pytest.mark.parametrize("image, override, labels, release, source", [
    ("ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3", "", None, "v1.7.3",
     "the tag of ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3"),
    ("ghcr.io/krinkuto11/acestream-orchestrator:1.7.0", None, None, "v1.7.0",
     "the tag of ghcr.io/krinkuto11/acestream-orchestrator:1.7.0"),
    # the label before the tag: a mirror's own tag tells nothing, the label does
    ("registry.example/orchestrator:prod", "", {LABEL: "v1.7.3"}, "v1.7.3", "the image label " + LABEL),
    ("acestream-sim/orchestrator-app-simulator:latest", "", {LABEL: "v1.7.3"}, "v1.7.3", "the image label " + LABEL),
    # the user's word wins
    ("registry.example/orchestrator:prod", " 1.7.2 ", None, "v1.7.2", "acestream_orchestrator_release"),
])
def test_releases_that_run_the_guide(image, override, labels, release, source):
    decided = app.release(image, override=override, labels=labels)
    assert (decided["release"], decided["source"], decided["problem"]) == (release, source, None)


@pytest.mark.parametrize("image, labels, said", [
    ("ghcr.io/krinkuto11/acestream-orchestrator:latest", None, "'latest' is the rewrite (v2.1 on)"),
    ("ghcr.io/krinkuto11/acestream-orchestrator", None, "'latest' is the rewrite"),
    ("ghcr.io/krinkuto11/acestream-orchestrator:v2.0.0", None, "from v2.0.0 on the app ignores VPN_MODE"),
    ("ghcr.io/krinkuto11/acestream-orchestrator:v2.1.4", None, "v2.1 is a rewrite"),
    ("ghcr.io/krinkuto11/acestream-orchestrator:v1.6.9", None, "knows the static mode of v1.7.0 ... v1.7.3 only"),
    # a v1.7.3 tag whose image says otherwise: the label is what the image is
    ("ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3", {LABEL: "v2.1.0"}, "from v2.0.0 on"),
])
def test_releases_that_cannot_are_refused_with_the_way_out(image, labels, said):
    problem = app.release(image, labels=labels)["problem"]
    assert said in problem and app.DEFAULT_IMAGE in problem and "acestream_orchestrator_enabled: false" in problem


@pytest.mark.parametrize("override", ["1.7", "v1.7.3-custom", "\uff11.7.3", "seven"])
def test_a_release_given_that_is_not_one(override):
    problem = app.release(app.DEFAULT_IMAGE, override=override)["problem"]
    assert "acestream_orchestrator_release" in problem and "vX.Y.Z" in problem


def test_an_image_that_tells_nothing():
    problem = app.release("registry.example/orchestrator:prod")["problem"]
    assert "Cannot tell the AceStream Orchestrator release" in problem and "not on the target" in problem
    assert "acestream_orchestrator_release" in problem
    problem = app.release("registry.example/orchestrator@sha256:" + "b" * 64, labels={})["problem"]
    assert "a digest" in problem and "no %s label" % LABEL in problem


def test_release_from_the_targets_images():
    images = [{"RepoTags": ["registry.example/orchestrator:prod"], "Labels": {LABEL: "v1.7.3"}}]
    decided = app.release("registry.example/orchestrator:prod", images=images)
    assert decided["release"] == "v1.7.3" and decided["on_target"] and decided["problem"] is None
    assert app.release("registry.example/other:prod", images=images)["on_target"] is False


@pytest.mark.parametrize("image", [None, 3, ["a"]])
def test_release_bad_image(image):
    with pytest.raises(app.AppError) as caught:
        app.release(image)
    assert "acestream_orchestrator_image" in str(caught.value)


# --------------------------------------------------------------------------------------- variant, label, settings
@pytest.mark.parametrize("engine_variant, app_variant, wanted", [
    ("krinkuto11-amd64", "", "AceServe-amd64"),
    ("jopsis-amd64", None, "AceServe-amd64"),
    ("jopsis-arm32", "", "AceServe-arm32"),
    ("jopsis-arm64", "", "AceServe-arm64"),
    (None, "", "AceServe-amd64"),
    ("jopsis-arm64", "AceServe-amd64", "AceServe-amd64"),
])
def test_variants_map_to_the_apps(engine_variant, app_variant, wanted):
    assert app.app_variant(engine_variant, app_variant) == wanted


@pytest.mark.parametrize("engine_variant, app_variant, named", [
    ("krinkuto11-amd64", "krinkuto11-amd64", "acestream_orchestrator_engine_variant"),
    ("krinkuto11-amd64", "AceServe-riscv", "acestream_orchestrator_engine_variant"),
    ("custom-x86", "", "acestream_engine_variant"),
    ("krinkuto11-amd64", ["AceServe-amd64"], "acestream_orchestrator_engine_variant"),
])
def test_variants_the_app_cannot_run(engine_variant, app_variant, named):
    with pytest.raises(app.AppError) as caught:
        app.app_variant(engine_variant, app_variant)
    assert named in str(caught.value)


def test_container_label_is_the_stacks_own():
    assert app.container_label("acestream") == "acestream.app-pool=acestream"
    assert app.container_label("acestream") != app.container_label("acestream-b")
    for bad in ("", "a=b", "two words", None, 7):
        with pytest.raises(app.AppError):
            app.container_label(bad)


def test_engine_settings_file():
    settings = app.engine_settings(4, "AceServe-arm64")
    assert settings == {"min_replicas": 4, "max_replicas": 4, "auto_delete": False, "engine_variant": "AceServe-arm64",
                        "use_custom_variant": False, "platform": "arm64"}
    assert app.engine_settings(0, "AceServe-amd64")["max_replicas"] == 1
    text = app.settings_text(settings)
    assert text.endswith("}\n") and json.loads(text) == settings and text == app.settings_text(dict(settings))
    # The port plan's rule: what -e gives (digits, a whole float) is a number of engines too.
    assert app.engine_settings("2", "AceServe-amd64")["min_replicas"] == app.engine_settings(2.0, "AceServe-amd64")[
        "max_replicas"] == 2
    for replicas in (-1, True, 2.5, "\uff12", None, math.nan, [2], "two"):
        with pytest.raises(app.AppError) as caught:
            app.engine_settings(replicas, "AceServe-amd64")
        assert str(caught.value).startswith("acestream_engine_replicas: ")
    assert app.custom_variant("AceServe-arm32") == {"enabled": False, "platform": "arm32"}
    with pytest.raises(app.AppError):
        app.engine_settings(2, "krinkuto11-amd64")


# --------------------------------------------------------------------------------------- Gluetun releases
@pytest.mark.parametrize("release, forwarding, policy, refused, warned", [
    ("v3.40.0", True, "fail", True, False),
    ("v3.39.1", True, "warn", False, True),
    ("v3.40.0", False, "fail", False, False),
    ("v3.41.0", True, "fail", False, False),
    ("latest", True, "fail", False, False),
    ("", True, "fail", False, False),
])
def test_gluetun_before_v3_41_with_forwarding(release, forwarding, policy, refused, warned):
    problem, warning = app.gluetun_problem(release, forwarding, policy)
    assert (problem is not None, warning is not None) == (refused, warned)
    if refused:
        assert "/v1/portforward" in problem and "acestream_orchestrator_old_gluetun: warn" in problem
        assert "v3.41.0" in problem


def test_gluetun_policy_is_checked():
    with pytest.raises(app.AppError) as caught:
        app.gluetun_problem("v3.40.0", True, "ignore")
    assert "acestream_orchestrator_old_gluetun" in str(caught.value)


def test_forwarding_from_the_containers_env():
    assert app.gluetun_forwarding([{"name": "g", "env": {"VPN_PORT_FORWARDING": "on"}}])
    assert app.gluetun_forwarding([{"name": "g"}], {"VPN_PORT_FORWARDING": True})
    assert not app.gluetun_forwarding([{"name": "g", "env": {"VPN_PORT_FORWARDING": "off"}}],
                                      {"VPN_PORT_FORWARDING": "on"})
    assert not app.gluetun_forwarding([{"name": "g", "env": None}])
    with pytest.raises(app.AppError):
        app.gluetun_forwarding({"name": "g"})


# --------------------------------------------------------------------------------------- the filter
def test_what_the_apps_env_may_not_set():
    label = app.container_label("acestream")
    assert app.env_problems({"TZ": "UTC", "DEBUG_MODE": True}, label) == []
    said = app.env_problems({"CONTAINER_LABEL": "x=y", "MIN_REPLICAS": 3, "ENGINE_VARIANT": "AceServe-arm64"}, label)
    assert len(said) == 3 and "acestream.app-pool=acestream" in said[0]
    assert "set acestream_orchestrator_engine_variant instead" in said[1] and "acestream_engine_replicas" in said[2]
    assert app.env_problems(None, label) == [] and app.env_problems(["MIN_REPLICAS"], label) == []
    # One controller per container: the stack's Gluetun containers are never restarted by the app.
    said = app.env_problems({"VPN_UNHEALTHY_RESTART_TIMEOUT_S": "60"}, label)
    assert len(said) == 1 and "may not restart the stack's Gluetun containers" in said[0]
    assert "HEALTH_RESTART_VPN" in said[0] and said[0].endswith("=2147483647 (never): leave it out.")


# --------------------------------------------------------------------------------------- its engines
def test_app_engines_of_one_stack():
    listed = [_listed("acestream-2", "g2", 19010), _listed("acestream-1", "g1", 19000, forwarded=True),
              _listed("other-1", "g1", 19002, pool="other"), {"Id": "x", "Labels": None}]
    engines = app.app_engines(listed, "acestream")
    assert [e["name"] for e in engines] == ["acestream-1", "acestream-2"]
    first = engines[0]
    assert (first["vpn"], first["port"], first["api_port"], first["https_port"], first["forwarded"],
            first["p2p_port"]) == ("g1", 19000, 19001, 45000, True, 40001)
    assert engines[1]["p2p_port"] is None and engines[1]["created"] == 2_000_000_000
    bad = _listed("acestream-3", "g1", 19004, command="--http-port=notaport --port=0 --api-port 'unclosed")
    bad["Labels"]["host.http_port"] = "x"
    seen = app.app_engines([bad], "acestream")[0]
    assert (seen["port"], seen["p2p_port"]) == (None, None)
    for wrong in ({"Id": "x"}, ["not a mapping"]):
        with pytest.raises(app.AppError):
            app.app_engines(wrong, "acestream")


def test_epoch():
    assert app.epoch("2033-05-18T03:33:20Z") == 2_000_000_000
    assert app.epoch("2033-05-18T03:33:20.5+00:00") == 2_000_000_000.5
    assert app.epoch("2033-05-18T05:33:20+02:00") == 2_000_000_000
    for none in ("0001-01-01T00:00:00Z", "", None, "yesterday", 5):
        assert app.epoch(none) is None


def test_stranded_engines():
    vpns = {"g1": {"id": "aaa", "started_at": "2033-05-18T03:33:20.7Z"}, "g2": {"id": "bbb", "started_at": None}}
    engines = app.app_engines([
        _listed("acestream-1", "g1", 19000, created=2_000_000_001),               # joined after the start: fine
        _listed("acestream-2", "g1", 19002, created=2_000_000_000),               # the same second: fine
        _listed("acestream-3", "g1", 19004, created=1_999_999_000),               # before a restart: stranded
        _listed("acestream-4", "g1", 19006, network="container:old"),             # Gluetun re-created: stranded
        _listed("acestream-5", "g2", 19010, network="container:bbb"),             # start unknown: fine
        _listed("acestream-6", "g3", 19020),                                      # its Gluetun gone: stranded
    ], "acestream")
    left = app.stranded(engines, vpns)
    assert [(item["name"], item["vpn"]) for item in left] == [
        ("acestream-3", "g1"), ("acestream-4", "g1"), ("acestream-6", "g3")]
    assert "old network namespace" in left[0]["reason"] and "re-created" in left[1]["reason"]
    assert "gone" in left[2]["reason"]


def test_an_engine_started_again_after_its_vpn_is_in_its_namespace():
    # A Docker Engine restart starts the VPN, then its engines: created long before, started after.
    vpns = {"g1": {"id": "aaa", "started_at": "2033-05-18T03:33:20.5Z"}}
    engines = app.app_engines([_listed("acestream-1", "g1", 19000, created=1_000_000_000),
                               _listed("acestream-2", "g1", 19002, created=1_000_000_000)], "acestream")
    inspects = {"acestream-1-id": {"State": {"StartedAt": "2033-05-18T03:33:21.1Z"}},
                "acestream-2-id": {"State": {"StartedAt": "2033-05-18T03:33:20.2Z"}}}
    engines = app.with_started_at(engines, inspects)
    assert engines[0]["started_at"] == 2_000_000_001.1
    assert [item["name"] for item in app.stranded(engines, vpns)] == ["acestream-2"]
    assert app.with_started_at(engines, {})[0]["started_at"] is None


def test_app_drift_and_namespace_view():
    states = {"g1": {"id": "aaa", "started_at": "2033-05-18T03:33:20Z"}}
    engines = app.app_engines([_listed("acestream-1", "g1", 19000),
                               _listed("acestream-2", "g1", 19002, created=1_000_000_000)], "acestream")
    running = {"name": "app", "state": "running", "engines": engines}
    decided = app_drift(running, states, [])
    assert [a["action"] for a in decided["actions"]] == ["restart"]
    assert "acestream-2" in decided["actions"][0]["reason"] and "acestream-1" not in decided["actions"][0]["reason"]
    joined = app_engines_joined(engines, states)
    assert joined[0]["vpn_started_at"] == "2033-05-18T03:33:20Z"
    assert joined[1]["vpn_started_at"].startswith("started 2001-09-09")
    pool_engine = {"name": "acestream-g1-19004", "vpn": "g1", "port": 19004}
    stopped = app_drift(dict(running, state=None, engines=engines[:1]), states, [pool_engine])
    assert [(a["action"], a["name"]) for a in stopped["actions"]] == [("start", "app"), ("remove", "acestream-g1-19004")]
    assert app_drift(dict(running, engines=engines[:1]), states, [])["actions"] == []


G1 = {"name": "g1", "healthy": True, "forwarded_port": 40001}
G2 = {"name": "g2", "healthy": True, "forwarded_port": 40002}


@pytest.mark.parametrize("answer, vpns, said", [
    ({"enabled": True, "connected": True, "forwarded_port": 40001}, [G1], []),
    # redundant: the first VPN's port, connected while any VPN is
    ({"enabled": True, "connected": True, "forwarded_port": 40001}, [G1, G2], []),
    ({"enabled": True, "connected": True, "forwarded_port": 40002}, [G1, G2], ["reports forwarded port 40002, g1 forwards 40001"]),
    ({"enabled": True, "connected": True, "forwarded_port": None}, [dict(G1, forwarded_port=None), G2], []),
    ({"enabled": True, "connected": True, "forwarded_port": 40001}, [G1, dict(G2, healthy=False)], []),
    ({"enabled": True, "connected": False, "forwarded_port": 40001}, [G1, dict(G2, healthy=False)],
     ["not connected while g1 is healthy"]),
    ({"enabled": True, "connected": True, "forwarded_port": None}, [G1], ["reports forwarded port null, g1 forwards 40001"]),
    ({"enabled": True, "connected": True, "forwarded_port": None}, [dict(G1, healthy=False, forwarded_port=None)],
     ["connected while no Gluetun container is healthy"]),
    ({"enabled": False, "connected": False}, [dict(G1, forwarded_port=None)], ["not enabled", "not connected while g1"]),
    (None, [], ["did not answer a JSON object"]),
    (["a"], [], ["did not answer a JSON object"]),
])
def test_vpn_status_against_gluetun(answer, vpns, said):
    problems = app.vpn_status_problems(answer, vpns)
    assert len(problems) == len(said) and all(part in text for part, text in zip(said, problems))


@pytest.mark.parametrize("containers, left", [
    ([], False),
    ([{"Names": ["/other"], "Labels": {}}], False),
    ([{"Names": ["/acestream-orchestrator"], "Labels": {}}], True),  # the app's name, whoever made it
    ([{"Names": ["/acestream-orchestrator-b"], "Labels": {}}], False),
    ([{"Names": ["/engine1"], "Labels": {"acestream.app-pool": "acestream"}}], True),  # one of its engines
    ([{"Names": ["/engine1"], "Labels": {"acestream.app-pool": "acestream-b"}}], False),  # another stack's
])
def test_what_the_app_left_on_the_docker_host(containers, left):
    decided = app.deployment("ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3", "acestream", 0,
                             containers=containers, name="acestream-orchestrator")
    assert decided["left"] is left
    assert app.deployment("ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3", "acestream", 0)["left"] is None
