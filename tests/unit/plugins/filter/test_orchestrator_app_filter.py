# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The orchestrator_app filter: what the roles get of the app's rules (plugins/module_utils/_orchestrator_app.py,
tested in tests/unit/plugins/module_utils/test_orchestrator_app.py), and its errors."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from app_listing import listed_engine as _listed

from ansible_collections.acestream.orchestrator.plugins.filter.orchestrator_app import FilterModule, orchestrator_app
from ansible_collections.acestream.orchestrator.plugins.filter.orchestrator_app_restart import (
    FilterModule as RestartFilters,
    orchestrator_app_restart,
)
from ansible_collections.acestream.orchestrator.plugins.module_utils import _orchestrator_app as app


def test_filter_registered_and_roles_call():
    assert FilterModule().filters() == {"orchestrator_app": orchestrator_app}
    decided = orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=2, engine_variant="krinkuto11-amd64")
    assert decided["release"] == "v1.7.3" and decided["release_problem"] is None and decided["problems"] == []
    assert decided["variant"] == "AceServe-amd64" and decided["label"] == "acestream.app-pool=acestream"
    assert json.loads(decided["settings_json"])["min_replicas"] == 2


def test_filter_lists_every_problem():
    decided = orchestrator_app("ghcr.io/krinkuto11/acestream-orchestrator:latest", pool="acestream", replicas=2,
                               engine_variant="custom", engine_image="my/engine:1", gluetun_release="v3.40.0",
                               gluetun_containers=[{"name": "g", "env": {"VPN_PORT_FORWARDING": "on"}}],
                               app_env={"CONTAINER_LABEL": "ondemand.app=myservice"})
    assert "'latest' is the rewrite" in decided["release_problem"]
    assert len(decided["problems"]) == 4 and "sets CONTAINER_LABEL" in decided["problems"][2] and decided["variant"] is None and decided["settings"] is None
    warned = orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=2, gluetun_release="v3.40.0",
                              gluetun_containers=[{"name": "g"}], gluetun_env={"VPN_PORT_FORWARDING": "on"},
                              old_gluetun="warn")
    assert warned["problems"] == [] and "deploying anyway" in warned["warnings"][0]


def test_the_stacks_app_engines_on_the_host():
    listed = [_listed("acestream-1", "g1", 19000), _listed("acestream-9", "g1", 19002, pool="other")]
    decided = orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=1, containers=listed)
    assert decided["engines"] == ["acestream-1"]
    assert orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=1)["engines"] is None
    assert json.loads(decided["custom_variant_json"]) == {"enabled": False, "platform": "amd64"}


@pytest.mark.parametrize("kwargs", [
    {"pool": "a=b", "replicas": 1}, {"pool": "acestream", "replicas": -1}, {"pool": "acestream", "replicas": None},
    {"pool": "acestream", "replicas": 1, "old_gluetun": "never", "gluetun_release": "v3.41.0"},
])
def test_filter_bad_input(kwargs):
    with pytest.raises(AnsibleFilterError) as caught:
        orchestrator_app(app.DEFAULT_IMAGE, **kwargs)
    assert str(caught.value).startswith("acestream.orchestrator.orchestrator_app: ")


def test_an_empty_image_is_a_release_problem_not_an_error():
    # A stack with the app off may leave the image empty: its label and engines are still found.
    decided = orchestrator_app("", pool="acestream", replicas=0, containers=[_listed("acestream-1", "g1", 19000)])
    assert "acestream_orchestrator_image is empty" in decided["release_problem"]
    assert decided["label"] == "acestream.app-pool=acestream" and decided["engines"] == ["acestream-1"]


def test_settings_hash_follows_both_files():
    one = orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=2)["settings_hash"]
    assert one == orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas="2")["settings_hash"]
    assert one != orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=3)["settings_hash"]
    assert one != orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=2,
                                   app_variant="AceServe-arm64")["settings_hash"]
    assert len(one) == 16 and orchestrator_app(app.DEFAULT_IMAGE, pool="acestream", replicas=2,
                                               engine_variant="custom")["settings_hash"] is None


# ------------------------------------------------------------------------------------------- restart
SETTINGS = ["/s/orchestrator/engine_settings.json", "/s/orchestrator/custom_engine_variant.json"]


def test_restart_reasons():
    assert list(RestartFilters().filters()) == ["orchestrator_app_restart"]
    assert orchestrator_app_restart([]) == []
    actions = [{"action": "restart", "reason": "engine e1 sits in an old network namespace"},
               {"action": "create", "reason": "missing"}]
    assert orchestrator_app_restart(actions) == ["engine e1 sits in an old network namespace"]
    changes = [{"action": "update", "path": SETTINGS[0]}, {"action": "keep", "path": SETTINGS[1]},
               {"action": "update", "path": "/s/orchestrator.env"}]
    assert orchestrator_app_restart(actions, file_changes=changes, settings_paths=SETTINGS) == [
        "engine e1 sits in an old network namespace",
        "its engine settings files were rewritten: /s/orchestrator/engine_settings.json"]
    # Files rewritten that the app does not read at start are no reason.
    assert orchestrator_app_restart([], file_changes=changes[2:], settings_paths=SETTINGS) == []
    assert app.restart_reasons([], [{"action": "create", "path": SETTINGS[1]}], SETTINGS) == [
        "its engine settings files were rewritten: /s/orchestrator/custom_engine_variant.json"]
    with pytest.raises(AnsibleFilterError, match="orchestrator_app_restart: drift_actions must be a list, not str"):
        orchestrator_app_restart("restart")
    with pytest.raises(AnsibleFilterError, match="file_changes must be a list, not dict"):
        orchestrator_app_restart([], file_changes={"a": 1})
