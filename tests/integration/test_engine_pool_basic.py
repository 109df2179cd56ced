# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""engine_pool on the real Docker Engine with the simulators: placement for 1, 2 and 3 VPNs, every variant."""

from __future__ import annotations

from engine_pool_helpers import (  # noqa: F401 pylint: disable=unused-import
    converge_discipline,
    engine_info,
    pool_args,
    vpn_sim,
)


def test_single_vpn_converges(docker_api, run_id, vpn_sim):
    vpn = vpn_sim(size=6)
    low, high = vpn.engine_range
    args = pool_args(run_id, "t%s-single" % run_id, [vpn], port_range=vpn.engine_range_text, replicas=2,
                     wait_ready=30)
    names = ["t%s-single-%s-%d" % (run_id, vpn.name, low + i) for i in range(2)]
    applied = converge_discipline(args, [("create", n) for n in names])["apply"]
    assert [e["port"] for e in applied["engines"]] == [low, low + 1]
    assert all(e["host"] == vpn.name and e["status"] == "running" for e in applied["engines"])
    info = engine_info(low)
    assert info["http_port"] == low
