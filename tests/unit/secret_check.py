# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile credentials for the tests, and the assertion that no part of one reaches an output."""

from __future__ import annotations

# Distinctive cores: no window of them occurs in any message of the collection.
KEY_CORE = "Qx9Vw7Zk3Jm2Tb"
PASSWORD_CORE = "Pw4Hy8Lr6Nd5Sc"
USER_CORE = "Us3Gq7Rt9Fk2Wx"

# (field, value, phrase of the refusal): a value that cannot travel in a header, or is not a string.
HOSTILE = [
    ("api_key", KEY_CORE + "\n", "api_key holds a line break"),
    ("api_key", KEY_CORE + "\r\n", "api_key holds a line break"),
    ("api_key", KEY_CORE + "\x00end", "api_key holds a control character"),
    ("api_key", " " + KEY_CORE, "api_key holds a space at its start or end"),
    ("api_key", KEY_CORE + "\u20ac", "api_key holds a character outside printable ASCII"),
    ("api_key", KEY_CORE + "\u00e9", "api_key holds a character outside printable ASCII"),
    ("api_key", [KEY_CORE, "two"], "api_key must be a string"),
    ("api_key", {"key": KEY_CORE}, "api_key must be a string"),
    ("api_key", 7391584026, "api_key must be a string"),
    ("password", PASSWORD_CORE + "\r", "password holds a line break"),
    ("password", PASSWORD_CORE + "\t", "password holds a control character"),
    ("password", [PASSWORD_CORE], "password must be a string"),
    ("username", USER_CORE + ":x", "username holds ':'"),
    ("username", USER_CORE + "\n", "username holds a line break"),
]


def hostile_args(field, value):
    """Module or lookup options with ``value`` as ``field`` and, for basic auth, a valid other half."""
    if field == "api_key":
        return {"api_key": value}
    if field == "password":
        return {"username": "monitor", "password": value}
    return {"username": value, "password": "valid-password"}


def cores(value):
    """The distinctive texts a hostile value holds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    text = repr(value)
    return [core for core in (KEY_CORE, PASSWORD_CORE, USER_CORE) if core in text]


def assert_no_secret(value, text, window=5):
    """No ``window`` characters in a row of the hostile ``value``'s distinctive part appear in ``text``."""
    for core in cores(value):
        for start in range(len(core) - window + 1):
            part = core[start:start + window]
            assert part not in text, "%r (part of a secret) found in: %s" % (part, text)
