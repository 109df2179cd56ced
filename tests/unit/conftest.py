# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the unit tests share: the checkout importable as ``ansible_collections.acestream.orchestrator``
(the link build/collections/ansible_collections/acestream/orchestrator made by scripts/bootstrap.sh),
the helper modules of this folder importable by name, and the ``fake`` Gluetun control servers.
"""

from __future__ import annotations

import pathlib
import sys

import pytest

_HERE = pathlib.Path(__file__).resolve().parent
for _path in (str(_HERE.parents[1] / "build" / "collections"), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from gluetun_fake import FakeGluetun  # noqa: E402


@pytest.fixture
def fake():
    """``fake(**kwargs)`` starts a FakeGluetun control server on a local port; all are closed after the test."""
    servers = []

    def start(**kwargs):
        server = FakeGluetun(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
