#!/usr/bin/env bash
# Build the local stand-in images (test and demo fixtures), idempotently:
#   acestream-sim/debian-base:bookworm   a Debian root filesystem (mmdebstrap) imported into Docker
#   acestream-sim/gluetun-simulator      Gluetun's control server, health server and HEALTHCHECK, simulated
#   acestream-sim/engine-simulator       an AceStream engine's HTTP API, simulated
#   acestream-sim/orchestrator-app-simulator  the AceStream Orchestrator app v1.7.3 (engines through the Docker socket), simulated
# A simulator image is rebuilt only when the files of its folder under images/ (or the base) change.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BASE_IMAGE=acestream-sim/debian-base:bookworm

ensure_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
  command -v mmdebstrap >/dev/null || { log "installing mmdebstrap"; apt_install mmdebstrap; }
  log "building $BASE_IMAGE with mmdebstrap"
  mkdir -p "$BUILD"
  local tar="$BUILD/debian-base.tar"
  as_root mmdebstrap --quiet --variant=essential --include=python3 bookworm "$tar"
  docker import --change 'CMD ["/bin/bash"]' --message "Debian bookworm with python3 (mmdebstrap)" \
    "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
}

build_simulator() {
  local name=$1 dir="$ROOT/images/$1" hash tag
  [ -f "$dir/Dockerfile" ] || { log "skipping $name: $dir/Dockerfile not found"; return; }
  hash=$( (docker image inspect -f '{{.Id}}' "$BASE_IMAGE"; cd "$dir" && find . -type f ! -name '*.pyc' -print0 \
          | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12)
  tag="acestream-sim/$name:$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    docker tag "$tag" "acestream-sim/$name:latest"
    return
  fi
  log "building $tag"
  docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "org.acestream.simulator.source-hash=$hash" \
    -t "$tag" -t "acestream-sim/$name:latest" "$dir" >/dev/null
}

ensure_docker
ensure_base_image
shopt -s nullglob
for dir in "$ROOT"/images/*/; do build_simulator "$(basename "$dir")"; done
