# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The options that describe an engine pool, shared by the modules that converge it and that observe it."""

    DOCUMENTATION = r"""
options:
  name:
    description:
      - Pool name. Prefix of the engines' container names and value of their C(acestream.pool) label.
      - Several pools may share VPN containers if their port ranges do not overlap.
    type: str
    required: true
  replicas:
    description: Number of engines, shared evenly between the VPNs in order (remainder to the first ones).
    type: int
    default: 1
  port_range:
    description:
      - The engine port range published by the VPN containers together (the seed's C(PORT_RANGE_HOST)), C(START-END).
        Split evenly between the VPNs that have no entry in O(vpn_port_ranges), in order; the remainder goes to the
        first VPNs.
      - When every VPN has an explicit range, only checked to contain them.
    type: str
  vpn_port_ranges:
    description:
      - Explicit engine port ranges, VPN container name to C(START-END) (the orchestrator's C(GLUETUN_PORT_RANGE_1),
        C(GLUETUN_PORT_RANGE_2)).
    type: dict
    default: {}
  https_port_range:
    description:
      - Engine HTTPS ports (not published; unique inside each VPN's namespace). An engine's HTTPS port is the start of
        this range plus its HTTP port's offset in its VPN's range.
    type: str
    default: 45000-49999
  engine_variant:
    description:
      - The engine image family, which also decides how ports reach the engine.
      - V(krinkuto11-amd64) - C(ghcr.io/krinkuto11/acestream-http-proxy:latest), env C(CONF), C(HTTP_PORT),
        C(HTTPS_PORT), C(BIND_ALL), and C(P2P_PORT) for the forwarded engine.
      - V(jopsis-amd64) - C(jopsis/acestream:x64), env C(ACESTREAM_ARGS).
      - V(jopsis-arm32), V(jopsis-arm64) - C(jopsis/acestream:arm32-v3.2.13) / C(arm64-v3.2.13), flags appended to
        the command C(python main.py --bind-all).
    type: str
    choices: [krinkuto11-amd64, jopsis-amd64, jopsis-arm32, jopsis-arm64]
    default: krinkuto11-amd64
  image:
    description: Image to run instead of the variant's (the variant still decides how ports are passed).
    type: str
  env:
    description:
      - Extra environment variables for every engine. The variables that carry the ports (C(CONF), C(HTTP_PORT),
        C(HTTPS_PORT), C(BIND_ALL), C(P2P_PORT), C(ACESTREAM_ARGS)) are set by the pool and refused here.
      - Part of the spec hash. Do not put secrets here; they would be visible to anyone who can inspect containers.
    type: dict
    default: {}
  labels:
    description: Extra labels for every engine (part of the spec hash). The C(acestream.*) labels of the pool are refused.
    type: dict
    default: {}
  restart_policy:
    description: Docker restart policy of the engines.
    type: str
    choices: ['no', on-failure, always, unless-stopped]
    default: unless-stopped
  api_port:
    description:
      - The INTERNAL control-server port of the Gluetun containers (C(HTTP_CONTROL_SERVER_ADDRESS), the seed's
        C(GLUETUN_API_PORT)). Reached through the port the container publishes for it.
      - No engine port may be this port or Gluetun's health port 9999 (they share the namespace).
    type: int
    default: 8000
  api_key:
    description:
      - Control-server API key (sent as C(X-API-Key)). Not with O(username).
      - A string of printable ASCII characters (letters, digits, punctuation; spaces only between them). A line
        break (a YAML C(|) block ends with one), another control character, a space at either end, a non-ASCII
        character, or a value that is not a string (a list, a number) is refused before anything is touched, by
        name; the value is never shown.
    type: raw
  api_key_file:
    description:
      - A file on the target holding the API key (its text, without the line break it ends with), read when
        O(api_key) is empty or not given - the key the collection generates and keeps in the stack's directory. A
        missing file means no key; one that cannot be read fails the task, naming the file.
    type: path
  username:
    description:
      - Control-server user for C(auth = "basic") roles. Requires O(password).
      - A string without C(:) and without control characters (line breaks, tabs, NUL).
    type: raw
  password:
    description:
      - Password of O(username).
      - A string without control characters (line breaks, tabs, NUL); never shown.
    type: raw
  api_timeout:
    description:
      - Seconds for each control-server request, from the connect to the last byte of the answer (and each engine
        API request where the module asks the engines).
      - A finite number above 0; 0, a negative number, C(nan) or C(inf) is refused.
    type: float
    default: 5
  parallelism:
    description:
      - Docker and HTTP requests under way at once at most (inspects, control servers, engine APIs, removals,
        creations, starts).
    type: int
    default: 8
  docker_host:
    description: Docker daemon address; defaults to E(DOCKER_HOST), then C(unix:///var/run/docker.sock).
    type: str
    aliases: [docker_url]
  docker_timeout:
    description: Seconds for each Docker API call; above 0.
    type: int
    default: 60
"""
