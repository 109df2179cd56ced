#!/usr/bin/env python
# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render each role's meta/argument_specs.yml and defaults/main.yml from the one declaration of the stack's variables
(plugins/plugin_utils/_stack_variables.py).

  scripts/render_variables.py           write the files that differ
  scripts/render_variables.py --check   exit 1, naming them, when a file differs (tests/unit does the same)
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# What a declaration holds beyond an argument spec's keys: read by the stack model, not rendered.
MODEL_KEYS = ("role", "environment", "pattern", "credential", "container_name", "example", "example_with")


def declaration():
    path = ROOT / "plugins" / "plugin_utils" / "_stack_variables.py"
    spec = importlib.util.spec_from_file_location("_stack_variables_render", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, as the rest of the collection's YAML."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _str(dumper, value):
    # Long texts folded (">-"): PyYAML leaves some long plain scalars unbroken, past the 120 columns yamllint allows.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=">" if len(value) > 90 else None)


_Dumper.add_representer(str, _str)


def _dump(data):
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=76, allow_unicode=True, default_flow_style=False)


def role_options(module, role):
    return {name: {key: value for key, value in spec.items() if key not in MODEL_KEYS}
            for name, spec in module.VARIABLES.items() if spec["role"] == role}


def argument_specs(module, role):
    main = dict(module.ROLES[role])
    main["options"] = role_options(module, role)
    return ("---\n# Rendered from plugins/plugin_utils/_stack_variables.py by scripts/render_variables.py: edit it there.\n"
            + _dump({"argument_specs": {"main": main}}))


# Ansible's documentation markup, C(name), P(plugin#type) ..., as plain text for a comment.
MARKUP_RE = re.compile(r"\b[CVIOEMLPU]\(([^()#]*)(?:#[a-z]+)?\)")


def _comment(text, width=116):
    lines = []
    for paragraph in [text] if isinstance(text, str) else text:
        paragraph = MARKUP_RE.sub(r"\1", paragraph)
        lines.extend(textwrap.wrap(paragraph, width - 2, break_long_words=False, break_on_hyphens=False))
    return "".join("# %s\n" % line for line in lines)


def defaults(module, role):
    out = ["---\n",
           "# Rendered from plugins/plugin_utils/_stack_variables.py by scripts/render_variables.py: edit it there.\n",
           _comment(module.ROLES[role]["short_description"] + "."),
           "# The documentation of each variable: meta/argument_specs.yml and the role's README.\n"]
    for name, spec in role_options(module, role).items():
        out.append("\n" + _comment(spec["description"]) + _dump({name: spec["default"]}))
    return "".join(out)


def rendered():
    """{path: content} of every rendered file."""
    module = declaration()
    files = {}
    for role in module.ROLES:
        files[ROOT / "roles" / role / "meta" / "argument_specs.yml"] = argument_specs(module, role)
        files[ROOT / "roles" / role / "defaults" / "main.yml"] = defaults(module, role)
    return files


def stale():
    return sorted(str(path.relative_to(ROOT)) for path, content in rendered().items()
                  if not path.exists() or path.read_text(encoding="utf-8") != content)


def main(argv):
    if "--check" in argv:
        paths = stale()
        for path in paths:
            print("%s differs from the declaration: run scripts/render_variables.py" % path)
        return 1 if paths else 0
    for path, content in rendered().items():
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            print("wrote %s" % path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
