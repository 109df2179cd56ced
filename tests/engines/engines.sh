#!/usr/bin/env bash
# Docker hosts of the Docker Engine matrix (tests/engines/test_docker_engines.py, README "Requirements"): each a
# container on this machine's engine running a Debian release's own docker.io, containerd, runc, Python and Docker
# SDK (a root filesystem built by mmdebstrap from Debian's packages), with an SSH server that Ansible and the
# stack_events source reach as they reach a real host.
#   trixie   Debian 13's docker.io (26.x)
#   sid      the newest docker.io in Debian (28.x today; its Release file may have expired: not checked)
#
#   tests/engines/engines.sh build [HOST...]   the host images, built when missing, when their recipe changed or
#                                              when older than ACESTREAM_ENGINES_MAX_AGE_DAYS (default 7: sid moves)
#   tests/engines/engines.sh up [HOST...]      build, start the hosts (kept while running the current image), copy
#                                              the simulator images into each (only when changed) and remove every
#                                              container left on their engines; prints "HOST ADDRESS" lines
#   tests/engines/engines.sh down [HOST...]    remove the host containers (their data roots, with the loaded
#                                              images, stay on volumes)
#   tests/engines/engines.sh purge             down, then remove the volumes and the host images
#   tests/engines/engines.sh exec HOST CMD...  run a command on a host
# HOST defaults to every host (ACESTREAM_ENGINES, default "trixie sid"). The SSH key is
# $ACESTREAM_ENGINES_DIR/ssh/id_ed25519 (default build/engines of this checkout).
#
# A host container gets every capability but SYS_RESOURCE, with seccomp, AppArmor and the system paths unconfined
# (--privileged is refused on some machines: "unable to apply caps"), and /var/lib/docker on a volume (overlay2
# cannot sit on overlay2). tests/engines/host-entry.sh makes /sys and the cgroup hierarchies writable first.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

HERE=$ROOT/tests/engines
ENGINES_DIR=${ACESTREAM_ENGINES_DIR:-$BUILD/engines}
MAX_AGE_DAYS=${ACESTREAM_ENGINES_MAX_AGE_DAYS:-7}
read -r -a DEFAULT_HOSTS <<<"${ACESTREAM_ENGINES:-trixie sid}"
read -r -a IMAGES <<<"${ACESTREAM_ENGINES_IMAGES:-acestream-sim/gluetun-simulator:latest acestream-sim/engine-simulator:latest}"
# What each host runs: Debian's docker.io with its CLI, the Python and Docker SDK the modules use, an SSH server.
PACKAGES=docker.io,docker-cli,containerd,runc,iptables,python3,python3-docker,openssh-server,ca-certificates,procps
LABEL=org.acestream.test.docker-host
UP_TIMEOUT=${ACESTREAM_ENGINES_TIMEOUT:-60}

suite_of() {
  case $1 in
    trixie | sid) echo "$1" ;;
    *) die "unknown Docker host '$1' (hosts: trixie sid)" ;;
  esac
}
apt_options() { [ "$1" != sid ] || echo 'Acquire::Check-Valid-Until "false"'; }
image_of() { echo "acestream-test/docker-host:$1"; }
container_of() { echo "acestream-dockerhost-$1"; }
recipe_of() { printf '%s\n' "$(suite_of "$1")" "$PACKAGES" "$(apt_options "$1")" | sha256sum | cut -c1-16; }
host_docker() { local host=$1; shift; timeout 120 docker exec "$(container_of "$host")" docker "$@"; }
address_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(container_of "$1")"; }

hosts_or_default() { if [ $# -gt 0 ]; then printf '%s\n' "$@"; else printf '%s\n' "${DEFAULT_HOSTS[@]}"; fi; }

image_current() {  # image_current HOST: its image exists, from this recipe, built less than MAX_AGE_DAYS ago
  local host=$1 labels recipe built
  labels=$(docker image inspect -f "{{index .Config.Labels \"$LABEL.recipe\"}} {{index .Config.Labels \"$LABEL.built\"}}" \
    "$(image_of "$host")" 2>/dev/null) || return 1
  read -r recipe built <<<"$labels"
  [ "$recipe" = "$(recipe_of "$host")" ] && [ $(( $(date +%s) - ${built:-0} )) -lt $(( MAX_AGE_DAYS * 86400 )) ]
}

build() {  # build HOST: mmdebstrap's tar straight into docker import (nothing written to disk but the image)
  local host=$1 suite options=() t0
  image_current "$host" && return 0
  command -v mmdebstrap >/dev/null || { log "installing mmdebstrap"; apt_install mmdebstrap; }
  suite=$(suite_of "$host")
  [ -z "$(apt_options "$host")" ] || options=(--aptopt="$(apt_options "$host")")
  log "building $(image_of "$host") (Debian $suite: $PACKAGES)"
  t0=$(date +%s)
  mmdebstrap --quiet --variant=minbase "${options[@]}" --include="$PACKAGES" "$suite" - \
    | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL $LABEL.recipe=$(recipe_of "$host") $LABEL.built=$(date +%s)" \
      --message "Debian $suite with docker.io (mmdebstrap)" - "$(image_of "$host")" >/dev/null
  log "built $(image_of "$host") in $(( $(date +%s) - t0 ))s"
}

build_all() {  # build HOST...: side by side (each mostly waits on downloads and dpkg)
  local host pids=() rc=0 pid
  for host in "$@"; do build "$host" & pids+=("$!"); done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return "$rc"
}

ensure_key() {
  mkdir -p "$ENGINES_DIR/ssh"
  [ -f "$ENGINES_DIR/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C acestream-engines -f "$ENGINES_DIR/ssh/id_ed25519"
}

host_ready() {  # the host's engine answers and its SSH server accepts the key
  host_docker "$1" version >/dev/null 2>&1 || return 1
  ssh -i "$ENGINES_DIR/ssh/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=3 "root@$(address_of "$1")" true 2>/dev/null
}

start() {  # start HOST: a running container of the current image, its engine and SSH server answering
  local host=$1 name image key running
  name=$(container_of "$host") image=$(docker image inspect -f '{{.Id}}' "$(image_of "$host")")
  # A host kept running is reused only with the current image and this checkout's key (another checkout's tests
  # left it up with theirs).
  key=$(sha256sum <"$ENGINES_DIR/ssh/id_ed25519.pub" | cut -c1-16)
  running=$(docker inspect -f "{{.State.Running}} {{.Image}} {{index .Config.Labels \"$LABEL.key\"}}" "$name" \
    2>/dev/null || true)
  if [ "$running" != "true $image $key" ]; then
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --hostname "$name" --label "$LABEL=$host" --label "$LABEL.key=$key" \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
      -v "$name:/var/lib/docker" \
      -v "$HERE/host-entry.sh:/usr/local/sbin/host-entry:ro" \
      -v "$ENGINES_DIR/ssh/id_ed25519.pub:/etc/acestream-test/authorized_keys:ro" \
      "$(image_of "$host")" /usr/local/sbin/host-entry >/dev/null
  fi
  for _ in $(seq 1 "$UP_TIMEOUT"); do
    host_ready "$host" && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
    sleep 1
  done
  docker logs --tail 20 "$name" >&2 2>&1 || true
  die "Docker host $host did not come up"
}

load_images() {  # the simulator images on the host, copied only when the host has another ID under that name
  local host=$1 image missing=()
  for image in "${IMAGES[@]}"; do
    [ "$(host_docker "$host" image inspect -f '{{.Id}}' "$image" 2>/dev/null)" = \
      "$(docker image inspect -f '{{.Id}}' "$image")" ] || missing+=("$image")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "copying ${missing[*]} onto $host"
  docker save "${missing[@]}" | docker exec -i "$(container_of "$host")" docker load -q >/dev/null
}

reset() {  # every container and user-defined network of a test before goes, and the stacks' files
  local host=$1 ids=()
  mapfile -t ids < <(host_docker "$host" ps -aq)
  [ ${#ids[@]} -eq 0 ] || host_docker "$host" rm -f "${ids[@]}" >/dev/null
  host_docker "$host" network prune -f >/dev/null
  docker exec "$(container_of "$host")" rm -rf /opt/acestream
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
  build)
    ensure_docker
    mapfile -t hosts < <(hosts_or_default "$@")
    build_all "${hosts[@]}" ;;
  up)
    ensure_docker
    ensure_key
    mapfile -t hosts < <(hosts_or_default "$@")
    build_all "${hosts[@]}" || die "cannot build the Docker hosts' images"
    for host in "${hosts[@]}"; do start "$host" && load_images "$host" && reset "$host"; done
    for host in "${hosts[@]}"; do echo "$host $(address_of "$host")"; done ;;
  down)
    while read -r host; do docker rm -f "$(container_of "$host")" >/dev/null 2>&1 || true; done < <(hosts_or_default "$@") ;;
  purge)
    for host in trixie sid; do
      docker rm -f "$(container_of "$host")" >/dev/null 2>&1 || true
      docker volume rm "$(container_of "$host")" >/dev/null 2>&1 || true
      docker image rm "$(image_of "$host")" >/dev/null 2>&1 || true
    done ;;
  exec)
    [ $# -ge 2 ] || die "usage: engines.sh exec HOST CMD..."
    host=$1; shift
    docker exec "$(container_of "$host")" "$@" ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
