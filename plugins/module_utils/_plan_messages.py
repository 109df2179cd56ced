# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A PortPlanError as the stack model reports it: the error, the roles' variables behind the plan's fields, and the port
guide's fix chosen by the error's ``kind`` and ``field``.

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

from ansible_collections.acestream.orchestrator.plugins.module_utils._portplan import PortPlanError
from ansible_collections.acestream.orchestrator.plugins.module_utils._stack_values import StackCheckError
from ansible_collections.acestream.orchestrator.plugins.module_utils._text import kind_of


# --------------------------------------------------------------------------------------- the port plan's errors
PLAN_VARIABLES = ("Variables: port_range = acestream_port_range_host (PORT_RANGE_HOST), vpn_port_ranges = "
                  "acestream_vpn_port_ranges (GLUETUN_PORT_RANGE_1/_2), replicas = acestream_engine_replicas "
                  "(MAX_REPLICAS), https_port_range = acestream_engine_https_port_range (ACE_HTTPS_RANGE), api_port = "
                  "acestream_gluetun_api_port (GLUETUN_API_PORT), api_host_ports = the api_host_port of each item of "
                  "acestream_gluetun_containers.")

# The port guide's fix for each kind of PortPlanError (see _portplan.ERROR_KINDS).
PLAN_FIXES = {
    "overlap": ('Fix from the port guide: "Port Range Not Split: Verify each VPN has its own port range. Ensure ranges '
                'don\'t overlap" (and keep ACE_HTTPS_RANGE apart from them).'),
    "capacity": ('Fix from the port guide: "Size: Choose a range that can accommodate your MAX_REPLICAS setting": '
                 'widen acestream_port_range_host (PORT_RANGE_HOST) or the VPN\'s range, or lower '
                 'acestream_engine_replicas.'),
    "outside": ('Fix from the port guide: "Check that PORT_RANGE_HOST matches Gluetun port mappings": keep every '
                'GLUETUN_PORT_RANGE_N inside PORT_RANGE_HOST.'),
    "required": ("Set acestream_port_range_host (PORT_RANGE_HOST), split evenly between the Gluetun containers, or "
                 "give each container its own range in acestream_vpn_port_ranges (GLUETUN_PORT_RANGE_1/_2)."),
    "unknown": "Name only the Gluetun containers of acestream_gluetun_containers.",
    "names": ("Give each Gluetun container of acestream_gluetun_containers its own valid Docker name (the guide's "
              "best practice: gluetun1, gluetun2)."),
    "count": "Give one api_host_port to each item of acestream_gluetun_containers.",
    "namespace": ('Fix from the port guide ("Wrong GLUETUN_API_PORT"): "Use the internal port, not the external '
                  'port": the control server and the engines share each Gluetun container\'s network namespace; '
                  'choose a GLUETUN_API_PORT (acestream_gluetun_api_port) outside the engine and HTTPS ranges (the '
                  'guide uses 8001).'),
    "allocated": ('Fix from the port guide ("Port Already Allocated"): "Ensure no overlap between different '
                  'services": keep every api_host_port of acestream_gluetun_containers outside the engine ranges.'),
    "duplicate": ('Fix from the port guide: "Different External Ports: in redundant mode, use different external HTTP '
                  'control server ports for host access" (e.g. 8001:8001 and 8002:8001).'),
}
# A value that is not what the field takes: the fix depends on the field.
SYNTAX_FIXES = {
    "port_range": "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999.",
    "vpn_port_ranges": "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999.",
    "https_port_range": "Write ranges as START-END, e.g. PORT_RANGE_HOST=19000-19999.",
    "replicas": "Give MAX_REPLICAS (acestream_engine_replicas) as a whole number, 0 or more.",
    "api_port": "Give GLUETUN_API_PORT (acestream_gluetun_api_port) as a port number, e.g. 8001.",
    "api_host_ports": "Give each api_host_port of acestream_gluetun_containers as a port number, e.g. 8001 and 8002.",
}
OTHER_FIX = "Fix the variable named above."


def port_plan_fix(error):
    """The port guide's fix for a PortPlanError, chosen by its ``kind`` and ``field``."""
    if not isinstance(error, PortPlanError):
        raise StackCheckError("port_plan_fix takes a PortPlanError, not %s" % kind_of(error))
    field = str(error.field).split(".", maxsplit=1)[0]
    if error.kind == "syntax":
        return SYNTAX_FIXES.get(field, OTHER_FIX)
    return PLAN_FIXES.get(error.kind, OTHER_FIX)


def port_plan_message(error):
    """A PortPlanError as the roles report it: the error, the roles' variables behind the plan's fields, the fix."""
    return "The port plan is not valid: %s. %s %s" % (str(error).strip().rstrip("."), PLAN_VARIABLES,
                                                      port_plan_fix(error))
