# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names the stack shares with Docker and the images, each declared once: the labels on the containers (the
collection's own, and those the orchestrator app puts on its engines), the paths inside the containers, and the
ports each engine takes. Every other module, filter and role takes them from here (the roles through the stack
model's ``labels``).

Private to this collection. Pure: no I/O and no Ansible import.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------------ who created a container
# The value of LABEL_MANAGED_BY on the containers each part of the collection creates.
ENGINE_MANAGER = "acestream.orchestrator.engine_pool"
GLUETUN_MANAGER = "acestream.orchestrator.gluetun"
APP_MANAGER = "acestream.orchestrator.orchestrator_app"

# ------------------------------------------------------------------------------------------ the collection's labels
LABEL_MANAGED_BY = "acestream.managed-by"
LABEL_POOL = "acestream.pool"
# On engine_pool's engines.
LABEL_VPN = "acestream.vpn"
LABEL_HTTP_PORT = "acestream.http-port"
LABEL_HTTPS_PORT = "acestream.https-port"
LABEL_FORWARDED = "acestream.forwarded"
LABEL_P2P_PORT = "acestream.p2p-port"
LABEL_VARIANT = "acestream.variant"
LABEL_SPEC_HASH = "acestream.spec-hash"
LABEL_VPN_ID = "acestream.vpn-id"
LABEL_VPN_STARTED_AT = "acestream.vpn-started-at"
# On the Gluetun containers: the release their auth file was written for, their place in the inventory, and a
# keyed hash of what they cannot show by themselves (the auth file, a healthcheck dropped, the release).
LABEL_GLUETUN_RELEASE = "acestream.gluetun.release"
LABEL_GLUETUN_INDEX = "acestream.gluetun.index"
LABEL_CONFIG_HASH = "acestream.config-hash"
# On the orchestrator app's container: a hash of its settings files (it reads them at start).
LABEL_APP_SETTINGS_HASH = "acestream.app.settings-hash"

# ------------------------------------------------------------------------------------------ the app's labels
# The key of the app's CONTAINER_LABEL (key=value): the stack's own, so that two app stacks on one host never
# remove each other's engines (the app removes every container carrying it when it starts).
APP_LABEL_POOL = "acestream.app-pool"
# The labels the app (v1.7.3) puts on each engine it starts.
APP_LABEL_VPN_CONTAINER = "acestream.vpn_container"
APP_LABEL_FORWARDED = "acestream.forwarded"
APP_LABEL_HTTP_PORT = "host.http_port"

# ------------------------------------------------------------------------------------------ image labels
IMAGE_VERSION_LABEL = "org.opencontainers.image.version"

# ------------------------------------------------------------------------------------------ paths in the containers
# Gluetun's state directory (each VPN's own host directory is mounted there) and its auth file's directory.
GLUETUN_STATE_PATH = "/gluetun"
GLUETUN_AUTH_DIR = "/gluetun/auth"
# Where v1.7.3 keeps its engine settings inside its image; the file wins over MIN/MAX_REPLICAS and ENGINE_VARIANT.
APP_SETTINGS_PATH = "/app/app/config/engine_settings.json"
# Its image ships a custom variant, enabled, which the app prefers to any variant the engine settings name (and
# engine_settings.json's use_custom_variant does not turn it off): the collection mounts one that is off.
APP_CUSTOM_VARIANT_PATH = "/app/app/config/custom_engine_variant.json"

# ------------------------------------------------------------------------------------------ ports
# Host ports each engine takes from its VPN's slice: engine_pool's its HTTP port, the app's its HTTP and API ports.
ENGINE_HOST_PORTS = 1
APP_ENGINE_HOST_PORTS = 2
# Ports Gluetun itself listens on inside its network namespace (besides the control server's api_port).
GLUETUN_HEALTH_PORT = 9999
# The port the orchestrator app's API listens on inside its container (its APP_PORT).
APP_API_PORT = 8000

# The labels the roles write, by the key the stack model gives them under (``labels``).
ROLE_LABELS = {
    "managed_by": LABEL_MANAGED_BY,
    "pool": LABEL_POOL,
    "release": LABEL_GLUETUN_RELEASE,
    "index": LABEL_GLUETUN_INDEX,
    "config_hash": LABEL_CONFIG_HASH,
    "app_settings_hash": LABEL_APP_SETTINGS_HASH,
    "gluetun_manager": GLUETUN_MANAGER,
    "app_manager": APP_MANAGER,
}
