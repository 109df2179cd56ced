# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: config_hash
short_description: A label value that follows a secret configuration and reveals nothing of it
version_added: 0.2.0
author: acestream.orchestrator maintainers (@acestream-orchestrator)
description:
  - HMAC-SHA256 of the input keyed with O(key), 16 hexadecimal digits. The gluetun role labels each Gluetun
    container with it (C(acestream.config-hash)) so that a change of what the container cannot show by itself (the
    control-server auth file, which holds the API key) re-creates it; keyed with a random secret kept in the
    stack's 0600 files, the label lets no one who can read labels test guesses of the API key offline.
options:
  _input:
    description: The content to follow.
    type: str
    required: true
  key:
    description: The secret key (kept by the role in C(<acestream_stack_dir>/gluetun/config-hash-key), mode 0600).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Label value of the auth file
  ansible.builtin.debug:
    msg: "{{ auth_toml | acestream.orchestrator.config_hash(key=hash_key) }}"
"""

RETURN = r"""
_value:
  description: 16 hexadecimal digits.
  type: str
  sample: 3c1f0a9b2d4e5f60
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.acestream.orchestrator.plugins.module_utils._gluetun_stack import config_hash as _config_hash
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError


def config_hash(content, key):
    """The keyed hash (see RETURN)."""
    try:
        return _config_hash(content, key)
    except StackCheckError as exc:
        raise AnsibleFilterError("acestream.orchestrator.config_hash: %s" % exc)


class FilterModule:
    """The acestream.orchestrator config_hash filter."""

    def filters(self):
        return {"config_hash": config_hash}
