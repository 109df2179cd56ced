# Copyright (c) acestream.orchestrator contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack's variables, declared once: for each, the role that documents it, its type, default and documentation
(the keys of an argument spec), and what the stack model checks beyond its type (``environment``: ``file`` when
it is written to an env file, one line a variable, ``container`` when it is given to a container as is;
``pattern``: a regular expression; ``credential``: an API key sent in a request header; ``container_name``: the
key of each item that names a container the roles create), and ``example``: a value other than the default that the
stack takes (with the variables of ``example_with``), for the tests' generated inventories.

Each role's ``meta/argument_specs.yml`` and ``defaults/main.yml`` are rendered from here
(``scripts/render_variables.py``; a unit test fails when they differ). The stack model (``_stack_model``) applies
these defaults itself, so every entry point sees every variable, whichever roles it loads.

Private to this collection: no Ansible import.
"""

from __future__ import annotations

# The roles, in the order the stack uses them, with their own documentation.
ROLES = {
    "common": {
        "short_description": "The stack model every entry point reads, and its checks",
        "description": [
            ("Holds the variables every role of the collection reads, named after the port guide's "
             "settings (C(VPN_MODE), C(GLUETUN_CONTAINER_NAME), C(GLUETUN_API_PORT), "
             "C(PORT_RANGE_HOST) ...)."),
            ("Resolves them first on every entry point with P(acestream.orchestrator.stack_model#filter) - "
             "the declared defaults of every role's variables, the port plan, the Gluetun containers, the "
             "engine pool's options, the orchestrator app, the names the stack owns and the paths of its "
             "files - and fails on every problem at once, before anything changes (the guide's "
             "Troubleshooting section as checks)."),
            ("A dependency of P(acestream.orchestrator.gluetun#role), "
             "P(acestream.orchestrator.engines#role) and "
             "P(acestream.orchestrator.orchestrator_app#role); it runs once per play."),
        ],
        "author": "acestream.orchestrator maintainers",
    },
    "gluetun": {
        "short_description": "Gluetun VPN containers publishing the engine port ranges",
        "description": [
            ("One Gluetun container per item of C(acestream_gluetun_containers) (C(VPN_MODE=single) "
             "takes one, C(redundant) two or more), converged with "
             "M(community.docker.docker_container)."),
            ("Each container gets a 0600 env file (provider credentials, "
             "C(HTTP_CONTROL_SERVER_ADDRESS=:<GLUETUN_API_PORT>)), a 0600 control-server auth file "
             "with one API-key role listing exactly the routes the collection uses for the release "
             "deployed, its slice of C(PORT_RANGE_HOST) published, and its control server published on"
             " its own external port (127.0.0.1 by default)."),
            ("A C(docker-compose.yml) record of the host's stack (no secrets in it) is written to the "
             "stack directory."),
            "The stack variables live in P(acestream.orchestrator.common#role), a dependency of this role.",
        ],
        "author": "acestream.orchestrator maintainers",
    },
    "engines": {
        "short_description": "AceStream engines behind the Gluetun containers",
        "description": [
            ("Converges C(acestream_engine_replicas) engines with "
             "M(acestream.orchestrator.engine_pool), fed from the same stack variables as "
             "P(acestream.orchestrator.gluetun#role), so that each engine sits in its VPN's network "
             "namespace on a port of the slice that VPN publishes."),
            ("Checks first that every Gluetun container exists and publishes its slice (the port "
             "guide's \"Port Range Mismatch\"), then waits for the VPNs to be healthy."),
            ("When the orchestrator app is enabled it provisions the engines itself, and this role "
             "removes the collection's engines from the pool instead."),
            "The stack variables live in P(acestream.orchestrator.common#role), a dependency of this role.",
        ],
        "author": "acestream.orchestrator maintainers",
    },
    "orchestrator_app": {
        "short_description": "The AceStream Orchestrator app (optional, off by default)",
        "description": [
            ("Runs C(ghcr.io/krinkuto11/acestream-orchestrator) (v1.7.3 by default; releases that "
             "ignore the port guide's static mode are refused) when C(acestream_orchestrator_enabled) "
             "is true, with its environment derived from the stack's port plan - C(VPN_MODE), "
             "C(GLUETUN_CONTAINER_NAME), C(GLUETUN_CONTAINER_NAME_2), C(GLUETUN_API_PORT) (the "
             "internal port), C(PORT_RANGE_HOST), C(GLUETUN_PORT_RANGE_1/_2), "
             "C(MIN_REPLICAS)/C(MAX_REPLICAS), C(ACE_HTTPS_RANGE), C(CONTAINER_LABEL) (the stack's "
             "own) and C(API_KEY) - and its engine settings file (replicas, variant), which wins over "
             "that environment, written and mounted."),
            ("Restarts the app when a check of its engines fails that its start-up repairs (engines "
             "left in an old network namespace by a Gluetun container re-created or restarted, engines"
             " beyond the replicas or missing, two engines on one port, a crash-looping engine) or its"
             " settings files were changed - the app's drift, as "
             "P(acestream.orchestrator.stack_info#module) decides it."),
            ("Waits, bounded, for the app's answer on C(GET /engines) listing the replicas, not for "
             "its published port."),
            ("Its settings are stack variables of P(acestream.orchestrator.common#role) (a dependency "
             "of this role)."),
            ("When disabled or absent, removes the app's container if the collection created it, then "
             "the containers carrying the stack's C(CONTAINER_LABEL) (its engines)."),
        ],
        "author": "acestream.orchestrator maintainers",
    },
}

VARIABLES = {
    "acestream_vpn_mode": {
        "role": "common",
        "example": "redundant",
        "example_with": {
            "acestream_gluetun_containers": [
                {"name": "gluetun1", "api_host_port": 8001},
                {"name": "gluetun2", "api_host_port": 8002},
            ],
        },
        "description": "C(VPN_MODE). C(single) takes one Gluetun container, C(redundant) two or more.",
        "type": "str",
        "choices": ["single", "redundant"],
        "default": "single",
    },
    "acestream_gluetun_containers": {
        "role": "common",
        "example": [{"name": "gluetun1", "api_host_port": 8011, "env": {"TZ": "UTC"}}],
        "container_name": "name",
        "description": [
            ("The Gluetun containers in order; the first is C(GLUETUN_CONTAINER_NAME), the second "
             "C(GLUETUN_CONTAINER_NAME_2)."),
        ],
        "type": "list",
        "elements": "dict",
        "default": [
            {
                "name": "gluetun",
                "api_host_port": 8001,
                "env": {},
            },
        ],
        "options": {
            "name": {
                "description": "Container name.",
                "type": "str",
                "required": True,
            },
            "api_host_port": {
                "description": "Host port publishing the control server (the external port, one per container).",
                "type": "int",
                "required": True,
            },
            "env": {
                "description": "This container's provider settings (secrets included; never printed).",
                "type": "dict",
                "default": {},
            },
        },
    },
    "acestream_gluetun_env": {
        "role": "common",
        "example": {"TZ": "Europe/Madrid", "VPN_SERVICE_PROVIDER": "custom"},
        "description": "Environment for every Gluetun container; each container's own C(env) overrides it.",
        "type": "dict",
        "default": {},
        "environment": "file",
    },
    "acestream_gluetun_api_port": {
        "role": "common",
        "example": 8002,
        "description": [
            ("C(GLUETUN_API_PORT), the internal control-server port, written into "
             "C(HTTP_CONTROL_SERVER_ADDRESS) of every Gluetun container."),
        ],
        "type": "int",
        "default": 8001,
    },
    "acestream_gluetun_api_bind": {
        "role": "common",
        "example": "0.0.0.0",
        "description": "Host address the control servers are published on.",
        "type": "str",
        "default": "127.0.0.1",
    },
    "acestream_gluetun_api_key": {
        "role": "common",
        "example": "example-api-key-0123456789",
        "description": [
            ("Control-server API key (C(X-API-Key)). Empty to generate one once and keep it on the "
             "host in C(<acestream_stack_dir>/gluetun-api-key), mode 0600."),
        ],
        "type": "str",
        "default": "",
        "no_log": True,
        "credential": True,
    },
    "acestream_port_range_host": {
        "role": "common",
        "example": "19000-19009",
        "description": [
            "C(PORT_RANGE_HOST), the engine port range, split evenly between the Gluetun containers.",
            ("Every published port costs Docker a userland-proxy process and Gluetun create/remove "
             "time; size it to the engines plus headroom (docs/performance.md)."),
        ],
        "type": "str",
        "default": "19000-19099",
    },
    "acestream_vpn_port_ranges": {
        "role": "common",
        "example": {"gluetun": "19000-19049"},
        "description": "C(GLUETUN_PORT_RANGE_1), C(GLUETUN_PORT_RANGE_2) ... explicit ranges by container name.",
        "type": "dict",
        "default": {},
    },
    "acestream_port_range_bind": {
        "role": "common",
        "example": "127.0.0.1",
        "description": "Host address the engine ports are published on; empty for every interface.",
        "type": "str",
        "default": "",
    },
    "acestream_engine_https_port_range": {
        "role": "common",
        "example": "46000-46999",
        "description": "C(ACE_HTTPS_RANGE), the engines' HTTPS ports inside the VPN namespaces (not published).",
        "type": "str",
        "default": "45000-49999",
    },
    "acestream_engine_replicas": {
        "role": "common",
        "example": 1,
        "description": "Number of engines (C(MIN_REPLICAS) = C(MAX_REPLICAS)).",
        "type": "int",
        "default": 2,
    },
    "acestream_pool_name": {
        "role": "common",
        "example": "acestream-example",
        "description": "Name of the stack on the host (engine pool, compose project, stack directory).",
        "type": "str",
        "default": "acestream",
    },
    "acestream_state": {
        "role": "common",
        "example": "absent",
        "description": "C(present) deploys and converges; C(absent) removes what the collection created.",
        "type": "str",
        "choices": ["present", "absent"],
        "default": "present",
    },
    "acestream_stack_dir": {
        "role": "common",
        "example": "/srv/acestream",
        "description": "Directory on the host for env files, auth files, generated keys and the compose record.",
        "type": "path",
        "default": "/opt/acestream/{{ acestream_pool_name }}",
    },
    "acestream_docker_network": {
        "role": "common",
        "example": "",
        "description": "User-defined network for the Gluetun containers and the app; empty for the default bridge.",
        "type": "str",
        "default": "aceserver",
    },
    "acestream_secret_env_pattern": {
        "role": "common",
        "example": "(?i)(KEY|PASS|SECRET)",
        "description": [
            ("Names of environment variables kept out of the C(docker-compose.yml) record (a regular "
             "expression); their values are only in the 0600 env files."),
        ],
        "type": "str",
        "default": "(?i)(KEY|PASS|SECRET|TOKEN|USER|PSK|CERT|CREDENTIAL|AUTH)",
        "pattern": True,
    },
    "acestream_docker_host": {
        "role": "common",
        "example": "unix:///var/run/docker.sock",
        "description": "Docker daemon address; empty for C(DOCKER_HOST) or the local socket.",
        "type": "str",
        "default": "",
    },
    "acestream_docker_sdk_install": {
        "role": "common",
        "example": True,
        "description": "Install the Docker SDK for Python on the target when it is missing (else fail and say how).",
        "type": "bool",
        "default": False,
    },
    "acestream_target_checks": {
        "role": "common",
        "example": False,
        "description": [
            ("Check the target's Docker Engine, the Docker SDK of its Python and the host ports in use before "
             "converging."),
            ("V(false) leaves those checks out where only the engines are converged (playbook "
             "C(converge_engines), as the C(keep_converged) rulebook runs it): nothing is read on the target "
             "first, engine_pool and stack_info read the stack's kept API key themselves and refuse a missing SDK, "
             "Docker Engine or VPN; the gluetun and orchestrator_app roles refuse V(false)."),
        ],
        "type": "bool",
        "default": True,
    },
    "acestream_orchestrator_enabled": {
        "role": "common",
        "example": True,
        "description": "Deploy the AceStream Orchestrator app; it then provisions the engines itself.",
        "type": "bool",
        "default": False,
    },
    "acestream_orchestrator_name": {
        "role": "common",
        "example": "acestream-app",
        "description": "The app's container name.",
        "type": "str",
        "default": "acestream-orchestrator",
    },
    "acestream_orchestrator_image": {
        "role": "common",
        "example": "ghcr.io/krinkuto11/acestream-orchestrator:v1.7.2",
        "description": [
            ("The app's image. Its release must run the port guide's static mode (v1.7.x); C(latest) "
             "and v2 are refused."),
        ],
        "type": "str",
        "default": "ghcr.io/krinkuto11/acestream-orchestrator:v1.7.3",
    },
    "acestream_orchestrator_release": {
        "role": "common",
        "example": "v1.7.3",
        "description": [
            ("The app release the image is (C(v1.7.3)); empty to read the image's label "
             "C(org.opencontainers.image.version), else its tag."),
        ],
        "type": "str",
        "default": "",
    },
    "acestream_orchestrator_engine_variant": {
        "role": "common",
        "example": "AceServe-amd64",
        "description": "The app's engine variant; empty for the platform of C(acestream_engine_variant).",
        "type": "str",
        "choices": ["", "AceServe-amd64", "AceServe-arm32", "AceServe-arm64"],
        "default": "",
    },
    "acestream_orchestrator_old_gluetun": {
        "role": "common",
        "example": "warn",
        "description": [
            ("With the app and port forwarding on, a Gluetun release before v3.41.0 (no "
             "C(/v1/portforward)) is refused (V(fail)) or deployed with a warning that the app runs "
             "without a forwarded port (V(warn))."),
        ],
        "type": "str",
        "choices": ["fail", "warn"],
        "default": "fail",
    },
    "acestream_orchestrator_port": {
        "role": "common",
        "example": 8080,
        "description": "Host port of the app's API (C(APP_PORT) 8000 inside the container).",
        "type": "int",
        "default": 8000,
    },
    "acestream_orchestrator_bind": {
        "role": "common",
        "example": "0.0.0.0",
        "description": "Host address the app's API is published on.",
        "type": "str",
        "default": "127.0.0.1",
    },
    "acestream_orchestrator_api_key": {
        "role": "common",
        "example": "example-app-key-0123456789",
        "description": "The app's C(API_KEY); empty to generate one once and keep it on the host (0600).",
        "type": "str",
        "default": "",
        "no_log": True,
    },
    "acestream_orchestrator_env": {
        "role": "common",
        "example": {"TZ": "UTC"},
        "description": [
            "More environment for the app; overrides the derived values.",
            ("It may not set C(CONTAINER_LABEL), C(VPN_UNHEALTHY_RESTART_TIMEOUT_S) (the app never "
             "restarts the stack's Gluetun containers), C(MIN_REPLICAS), C(MAX_REPLICAS) or "
             "C(ENGINE_VARIANT)."),
        ],
        "type": "dict",
        "default": {},
        "environment": "file",
    },
    "acestream_orchestrator_docker_socket": {
        "role": "common",
        "example": "/run/docker.sock",
        "description": "Docker socket mounted into the app (it starts engine containers).",
        "type": "path",
        "default": "/var/run/docker.sock",
    },
    "acestream_orchestrator_restart_policy": {
        "role": "common",
        "example": "unless-stopped",
        "description": "The app's restart policy.",
        "type": "str",
        "choices": ["no", "on-failure", "always", "unless-stopped"],
        "default": "on-failure",
    },
    "acestream_orchestrator_stop_timeout": {
        "role": "common",
        "example": 10,
        "description": [
            ("Seconds Docker waits for the app to stop (C(SIGTERM)) before it kills it, on every stop "
             "and restart. The app v1.7.3's shutdown does not finish within Docker's default 10 s "
             "(killed, exit 137)."),
        ],
        "type": "int",
        "default": 30,
    },
    "acestream_gluetun_image": {
        "role": "gluetun",
        "example": "qmcgaw/gluetun:v3.40.0",
        "description": "The Gluetun image, pinned to a release.",
        "type": "str",
        "default": "qmcgaw/gluetun:v3.41.1",
    },
    "acestream_gluetun_release": {
        "role": "gluetun",
        "example": "v3.41.1",
        "description": [
            ("The Gluetun release (C(v3.39.0) to C(v3.41.x), or C(latest)); empty to read it from the "
             "image's label C(org.opencontainers.image.version) on the target (pulled first when "
             "missing and the pull policy allows), else from the image tag."),
            "Decides the routes written into the control-server auth file; an unknown release fails.",
        ],
        "type": "str",
        "default": "",
    },
    "acestream_gluetun_capabilities": {
        "role": "gluetun",
        "example": ["NET_ADMIN", "NET_RAW"],
        "description": "Capabilities added to the Gluetun containers.",
        "type": "list",
        "elements": "str",
        "default": ["NET_ADMIN"],
    },
    "acestream_gluetun_devices": {
        "role": "gluetun",
        "example": [],
        "description": "Devices given to the Gluetun containers.",
        "type": "list",
        "elements": "str",
        "default": ["/dev/net/tun"],
    },
    "acestream_gluetun_healthcheck": {
        "role": "gluetun",
        "example": {"test": ["CMD", "/gluetun-entrypoint", "healthcheck"], "interval": "10s"},
        "description": [
            ("Empty to keep the image's own HEALTHCHECK; else a M(community.docker.docker_container) "
             "healthcheck."),
        ],
        "type": "dict",
        "default": {},
    },
    "acestream_gluetun_restart_policy": {
        "role": "gluetun",
        "example": "always",
        "description": "Restart policy of the Gluetun containers.",
        "type": "str",
        "choices": ["no", "on-failure", "always", "unless-stopped"],
        "default": "unless-stopped",
    },
    "acestream_gluetun_pull": {
        "role": "gluetun",
        "example": "never",
        "description": "When to pull the image.",
        "type": "str",
        "choices": ["missing", "always", "never"],
        "default": "missing",
    },
    "acestream_gluetun_state_keep": {
        "role": "gluetun",
        "example": False,
        "description": [
            ("With C(acestream_state=absent), keep each Gluetun container's state directory "
             "(C(<acestream_stack_dir>/gluetun/<name>/state), mounted at C(/gluetun)) - PIA's "
             "port-forwarding data, the servers list - so that a stack deployed again starts from it. "
             "V(false) removes it with the rest."),
        ],
        "type": "bool",
        "default": True,
    },
    "acestream_engine_variant": {
        "role": "engines",
        "example": "jopsis-amd64",
        "description": "C(ENGINE_VARIANT).",
        "type": "str",
        "choices": ["krinkuto11-amd64", "jopsis-amd64", "jopsis-arm32", "jopsis-arm64"],
        "default": "krinkuto11-amd64",
    },
    "acestream_engine_image": {
        "role": "engines",
        "example": "example/acestream-engine:1",
        "description": "Engine image; empty for the variant's image.",
        "type": "str",
        "default": "",
    },
    "acestream_engine_env": {
        "role": "engines",
        "example": {"TZ": "UTC"},
        "description": "More environment for every engine.",
        "type": "dict",
        "default": {},
        "environment": "container",
    },
    "acestream_engine_forwarded_port": {
        "role": "engines",
        "example": "off",
        "description": "C(auto) gives one engine per VPN that VPN's forwarded port as its P2P port; C(off) none.",
        "type": "str",
        "choices": ["auto", "off"],
        "default": "auto",
    },
    "acestream_engine_on_unhealthy_vpn": {
        "role": "engines",
        "example": "failover",
        "description": "C(fail) on an unhealthy VPN, or C(failover) its engines to the healthy VPNs.",
        "type": "str",
        "choices": ["fail", "failover"],
        "default": "fail",
    },
    "acestream_engine_vpn_wait_timeout": {
        "role": "engines",
        "example": 90,
        "description": "Seconds to wait for the Gluetun containers to be healthy before placing engines.",
        "type": "int",
        "default": 180,
    },
    "acestream_engine_wait_ready": {
        "role": "engines",
        "example": 30,
        "description": "Seconds to wait for new or re-created engines to answer their API; 0 to not wait.",
        "type": "int",
        "default": 60,
    },
    "acestream_engine_forwarded_port_timeout": {
        "role": "engines",
        "example": 30,
        "description": [
            ("Seconds to wait for a VPN with port forwarding on to report its port (cleared on every "
             "reconnection), so that its forwarded engine gets the port in this run."),
        ],
        "type": "int",
        "default": 60,
    },
    "acestream_verify_api_timeout": {
        "role": "engines",
        "example": 5,
        "description": "Seconds for each control-server and engine API request of the verify and status playbooks.",
        "type": "int",
        "default": 10,
    },
    "acestream_verify_vpn_wait_timeout": {
        "role": "engines",
        "example": 10,
        "description": "Seconds the verify and status playbooks wait for VPNs that are not healthy yet before reporting.",
        "type": "int",
        "default": 30,
    },
    "acestream_verify_egress_url": {
        "role": "engines",
        "example": "http://127.0.0.1:9/ip",
        "description": [
            ("A URL answering the caller's public IP as text (e.g. C(https://ifconfig.me/ip)). The "
             "verify playbook fetches it from inside one engine per VPN and expects the VPN's public "
             "IP, not the host's."),
            "Empty to skip that check (the playbook says so).",
        ],
        "type": "str",
        "default": "",
    },
    "acestream_status_format": {
        "role": "engines",
        "example": "json",
        "description": "What the status playbook shows, the status table or the same observation as one JSON document.",
        "type": "str",
        "choices": ["table", "json"],
        "default": "table",
    },
    "acestream_status_textfile": {
        "role": "engines",
        "example": "/tmp/acestream.prom",
        "description": [
            ("A path on the Docker host where the status playbook writes the stack's Prometheus "
             "metrics for node_exporter's textfile collector (for example "
             "C(/var/lib/node_exporter/textfile/acestream.prom))."),
            "Empty to write none.",
        ],
        "type": "str",
        "default": "",
    },
    "acestream_orchestrator_wait_timeout": {
        "role": "orchestrator_app",
        "example": 0,
        "description": [
            ("Seconds to wait, after the app was created, started or restarted, for its answer on "
             "C(GET /engines) listing the replicas; the run fails with the app's last log lines when "
             "it does not come. 0 to not wait."),
        ],
        "type": "int",
        "default": 60,
    },

}
