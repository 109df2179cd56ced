# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container of the orchestrator app's engines as Docker's container list shows it (labels as v1.7.3 sets them)."""

from __future__ import annotations


def listed_engine(name, vpn, port, forwarded=False, network="container:aaa", created=2_000_000_000, pool="acestream",
                  command=None, state="running"):
    labels = {"acestream.app-pool": pool, "acestream.vpn_container": vpn, "acestream.forwarded": str(forwarded).lower(),
              "host.http_port": str(port)}
    return {"Id": name + "-id", "Names": ["/" + name], "Labels": labels, "State": state, "Status": "Up",
            "Created": created, "HostConfig": {"NetworkMode": network},
            "Command": command or "python main.py --http-port %d --https-port 45000 --api-port %d%s" % (
                port, port + 1, " --port 40001" if forwarded else "")}
