# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How messages speak of values they must not show, and what counts as a control character: one definition for
every check of this collection. Private. Pure: no I/O, no Ansible import."""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL, and surrogates (not text: they cannot be encoded).
CONTROL_CHARACTER_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def kind_of(value):
    """What a value is, for messages, without showing it: 'a list', 'a mapping', 'a number', 'a boolean'..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    return "a %s" % type(value).__name__
