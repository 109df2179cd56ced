#!/usr/bin/env bash
# Prepare this machine for the collection: the pinned Python tooling in a virtualenv, the checkout importable
# as acestream.orchestrator, a Docker Engine that answers (installed and started when needed) and the
# stand-in images. Safe to run again: every step is skipped when already done.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_venv
ensure_collection_path
ensure_ansible_test_cache
ensure_docker
"$ROOT/scripts/build-images.sh"
log "ready: . scripts/env.sh to use the virtualenv and the collection in this shell"
