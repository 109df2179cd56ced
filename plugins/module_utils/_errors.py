# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of every error the collection's core raises, and the one place a module turns one into a failure.

Each error's message says what is wrong and what to give instead, and never holds a secret; some carry fields a
module's failure reports too (a port plan error names the option to fix: ``field``).

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations


class AcestreamError(Exception):
    """What the collection's core refuses, or could not do, in words a user acts on."""

    def fail_fields(self):
        """Fields a module's failure reports besides the message."""
        return {}


def fail(module, error, **result):
    """Fail ``module`` (an AnsibleModule) with ``error``: its message, its fields, and ``result``."""
    fields = dict(result)
    fields.update(error.fail_fields())
    module.fail_json(msg=str(error), **fields)
