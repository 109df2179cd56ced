# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""engines_readiness: whether the engines can be converged in this run, given the Gluetun containers."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.filter.engines_readiness import FilterModule, engines_readiness

NAMES = ["g1", "g2"]
CHANGED = {"changed": True}
KEPT = {"changed": False}


def test_filter_name():
    assert list(FilterModule().filters()) == ["engines_readiness"]


def test_every_vpn_there_or_converged_in_this_run():
    ready = {"missing": [], "deferred": False, "message": ""}
    assert engines_readiness(NAMES, containers={"g1": {}, "g2": {}}) == ready
    # The gluetun role ran in this play: what was missing exists now.
    assert engines_readiness(NAMES, containers={}, gluetun_results=[CHANGED, CHANGED]) == ready
    # The target was not asked: gluetun_status and engine_pool name a missing container themselves.
    assert engines_readiness(NAMES, containers=None) == ready


def test_a_missing_vpn_fails_the_run_with_the_guide_s_words():
    found = engines_readiness(NAMES, containers={"g1": {}}, host="h1")
    assert found["missing"] == ["g2"] and not found["deferred"]
    assert found["message"].startswith("Gluetun container(s) g2 not found on h1: VPN container 'g2' is not healthy - "
                                       "cannot start AceStream engine. Deploy the Gluetun containers first")
    assert found["message"].endswith("(acestream_gluetun_containers).")


def test_check_mode_defers_the_engines_behind_gluetun_containers_to_come():
    created = engines_readiness(NAMES, containers={"g1": {}}, gluetun_results=[KEPT, CHANGED], check_mode=True,
                                pool="p", replicas=4)
    assert created == {"missing": ["g2"], "deferred": True, "message": (
        "The Gluetun containers are yet to be created (g2): the engines follow them, 4 engine(s) in pool p would be "
        "(re)created in their network namespaces.")}
    recreated = engines_readiness(NAMES, containers={"g1": {}, "g2": {}}, gluetun_results=[KEPT, CHANGED],
                                  check_mode=True, pool="p", replicas=4)
    assert recreated["deferred"] and recreated["message"].startswith("The Gluetun containers are yet to be re-created "
                                                                     "(g1, g2)")
    unchanged = engines_readiness(NAMES, containers={"g1": {}, "g2": {}}, gluetun_results=[KEPT, KEPT], check_mode=True)
    assert unchanged == {"missing": [], "deferred": False, "message": ""}
    # Check mode without the gluetun role (verify, drift of the engines alone): a missing VPN fails.
    alone = engines_readiness(NAMES, containers={}, check_mode=True)
    assert alone["missing"] == NAMES and alone["deferred"]


@pytest.mark.parametrize("args, kwargs, message", [
    ("g1", {}, "vpn_names must be a list, not a string"),
    (NAMES, {"containers": ["g1"]}, "containers must be a mapping of container name to container, not a list"),
    (NAMES, {"gluetun_results": {"changed": True}}, "gluetun_results must be a list, not a mapping"),
])
def test_bad_input(args, kwargs, message):
    with pytest.raises(AnsibleFilterError, match="acestream.orchestrator.engines_readiness: " + message):
        engines_readiness(args, **kwargs)
