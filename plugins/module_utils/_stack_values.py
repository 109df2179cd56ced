# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's checks share these: the error they raise on input they cannot use, and the readers of a mapping,
a list, a string, a port, the port plan's VPNs and a bind address, each naming what it read in its message.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.module_utils._errors import AcestreamError
from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import ascii_digits, ranges_text
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of


# How many conflicts a message lists before it says "...".
MAX_LISTED = 10


class StackCheckError(AcestreamError, ValueError):
    """Input these functions cannot use; the message says what to give instead."""


# --------------------------------------------------------------------------------------- helpers
def _mapping(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StackCheckError("%s must be a mapping, not %s" % (what, kind_of(value)))
    return value


def _sequence(value, what):
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise StackCheckError("%s must be a list, not %s" % (what, kind_of(value)))
    return list(value)


def _text(value, what):
    if not isinstance(value, str):
        raise StackCheckError("%s must be a string, not %s" % (what, kind_of(value)))
    return value


def _port(value, what):
    """A TCP port from an int or a string of digits."""
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, bool) or not (isinstance(value, int) or ascii_digits(text)):
        raise StackCheckError("%s must be a port number, not %s" % (what, kind_of(value)))
    port = int(value)
    if not 1 <= port <= 65535:
        raise StackCheckError("%s must be a port number between 1 and 65535, not %d" % (what, port))
    return port


def _unnamed(container):
    """What a container without a usable name is, for messages, without showing it."""
    if not isinstance(container, dict):
        return kind_of(container)
    return "a mapping whose name is %s" % kind_of(container.get("name"))


def _plan_vpns(plan):
    plan = _mapping(plan, "the port plan")
    vpns = _sequence(plan.get("vpns"), "the port plan's vpns")
    if not vpns:
        raise StackCheckError("the port plan has no vpns: give the result of acestream.orchestrator.port_plan")
    for vpn in vpns:
        if not isinstance(vpn, dict) or not {"name", "index", "range", "start", "end"} <= set(vpn):
            raise StackCheckError("the port plan's vpns must be the entries of acestream.orchestrator.port_plan "
                                  "(name, index, range, start, end ...), not %r" % (vpn,))
    return vpns


def _bind_prefix(bind, what):
    bind = _text("" if bind is None else bind, what).strip()
    return bind + ":" if bind else ""


def _ports_text(ports):
    ports = sorted(set(ports))
    return ("host port %s" if len(ports) == 1 else "host ports %s") % ranges_text(ports)


def _listed(items):
    more = len(items) - MAX_LISTED
    return "; ".join(items[:MAX_LISTED]) + ("; ... (%d more)" % more if more > 0 else "")
