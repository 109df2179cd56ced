#!/usr/bin/env bash
# Simulated fleet hosts for the fleet tests (docs/fleet-testing.md): fleet1..fleetN, each with its own network
# namespace on a private LAN (10.213.0.0/24, bridge "acefleet" in the machine's namespace, fleetK at
# 10.213.0.<10+K>), its own Docker Engine (socket, data root, containerd, bridge network, engine ID), its own
# hostname, /run, /etc/docker and /opt, and an SSH server that Ansible reaches as it reaches a real host.
#   tests/fleet/fleet.sh up [N]       bring up fleet1..fleetN (default 3); idempotent: healthy hosts are kept
#   tests/fleet/fleet.sh status [N]   one line per host; exit 1 when one is not up
#   tests/fleet/fleet.sh reset [N]    a fresh start for tests: remove every container and user-defined network on
#                                     the hosts' engines and empty their /opt (where the roles keep stack files)
#   tests/fleet/fleet.sh down [N]     stop the hosts (all that exist without N) and remove their namespaces;
#                                     also cleans up after a crash. Data roots (loaded images) are kept.
#   tests/fleet/fleet.sh purge        down, then remove the data roots and the saved images
#   tests/fleet/fleet.sh exec HOST CMD...   run a command on a host (its namespaces), as a console would
#   tests/fleet/fleet.sh reboot HOST        stop the host gracefully (its engine stops its containers) and start
#                                           it again: new namespaces, same data root and /opt, a new dockerd
# From the machine, host K's engine answers on unix://$ACESTREAM_FLEET_RUN/fleetK/docker.sock; on the host
# itself it is the usual /var/run/docker.sock.
# Environment: ACESTREAM_FLEET_RUN (/run/acestream-fleet), ACESTREAM_FLEET_LIB (/var/lib/acestream-fleet),
# ACESTREAM_FLEET_DIR (<checkout>/build/fleet: SSH keys, configs, logs), ACESTREAM_FLEET_IMAGES (images
# copied from the machine's engine onto every host; space-separated).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

HERE=$ROOT/tests/fleet
FLEET_RUN=${ACESTREAM_FLEET_RUN:-/run/acestream-fleet}
FLEET_LIB=${ACESTREAM_FLEET_LIB:-/var/lib/acestream-fleet}
FLEET_DIR=${ACESTREAM_FLEET_DIR:-$BUILD/fleet}
read -r -a IMAGES <<<"${ACESTREAM_FLEET_IMAGES:-acestream-sim/debian-base:bookworm acestream-sim/gluetun-simulator:latest acestream-sim/engine-simulator:latest}"
BRIDGE=acefleet
LAN_PREFIX=10.213.0
GATEWAY=$LAN_PREFIX.1
DEFAULT_HOSTS=3
UP_TIMEOUT=${ACESTREAM_FLEET_TIMEOUT:-60}

host_addr() { echo "$LAN_PREFIX.$((10 + ${1#fleet}))"; }
host_veth() { echo "acef-$1"; }
host_sock() { echo "$FLEET_RUN/$1/docker.sock"; }
host_docker() { local h=$1; shift; timeout 60 docker -H "unix://$(host_sock "$h")" "$@"; }
engine_answers() { [ -S "$(host_sock "$1")" ] && timeout 5 docker -H "unix://$(host_sock "$1")" version >/dev/null 2>&1; }
sshd_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$(host_addr "$1")/22" 2>/dev/null; }
dockerd_pid() {
  local pid
  pid=$(cat "$FLEET_RUN/$1/docker.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

hosts_wanted() {  # fleet1..fleetN
  local n=${1:-$DEFAULT_HOSTS} k
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || [ "$n" -gt 200 ]; then die "number of hosts must be 1..200, not '$n'"; fi
  for ((k = 1; k <= n; k++)); do echo "fleet$k"; done
}

hosts_existing() {  # every host that has something left: state dir, namespace or veth
  {
    [ -d "$FLEET_RUN" ] && find "$FLEET_RUN" -mindepth 1 -maxdepth 1 -type d -name 'fleet*' -printf '%f\n'
    ip -o link show 2>/dev/null | sed -n 's/^[0-9]*: acef-\(fleet[0-9]*\)[@:].*/\1/p'
    [ -d /run/netns ] && find /run/netns -maxdepth 1 -name 'fleet*' -printf '%f\n' | while read -r h; do
      [ -d "$FLEET_RUN/$h" ] && echo "$h"; done
  } | grep -E '^fleet[0-9]+$' | sort -u -V || true
}

# ----------------------------------------------------------------------------------------------- tools
ensure_tools() {
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null || missing+=(openssh-client)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  # The fleet's sshd instances are started by this script: keep the package from starting the machine's own
  # sshd (Debian's policy-rc.d convention), unless a policy is already in place.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
  fi
  apt_install "${missing[@]}" || { [ $own_policy -eq 0 ] || rm -f "$policy"; die "could not install ${missing[*]}"; }
  [ $own_policy -eq 0 ] || rm -f "$policy"
}

# The hosts get their own /run, /var/lib/docker, /etc/docker and /opt: the checkout, its virtualenv and the
# fleet's files must stay visible to them, so none may live there. Under /opt, only /opt/acestream is the
# hosts' own (where the roles keep the stacks' files).
host_opt_dir() {
  local path
  for path in "$ROOT" "$VENV" "$FLEET_DIR" "$FLEET_LIB"; do
    case $path/ in
      /run/* | /var/run/* | /var/lib/docker/* | /etc/docker/*)
        die "$path is where the fleet hosts have their own directories: move it (ACESTREAM_FLEET_DIR, ACESTREAM_FLEET_LIB)" ;;
      /opt/acestream/*) die "$path is under /opt/acestream, which the fleet hosts have for themselves: move it" ;;
      /opt/*) echo /opt/acestream; return ;;
    esac
  done
  echo /opt
}

# --------------------------------------------------------------------------------------------- network
ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  # (No `| grep -q` under pipefail: grep's early exit would fail the pipeline.)
  [[ $(ip -4 addr show dev "$BRIDGE") == *"inet $GATEWAY/24"* ]] || ip addr add "$GATEWAY/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

ensure_host_network() {
  local h=$1 addr veth
  addr=$(host_addr "$h") veth=$(host_veth "$h")
  [ -e "/run/netns/$h" ] || ip netns add "$h"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip netns exec "$h" ip link del eth0 2>/dev/null || true
    ip link add "$veth" type veth peer name eth0 netns "$h"
    # A host made again has a new MAC address: forget the old one at once.
    ip neigh flush to "$addr" dev "$BRIDGE" 2>/dev/null || true
  fi
  ip link set "$veth" master "$BRIDGE" up
  ip netns exec "$h" ip link set lo up
  ip netns exec "$h" ip link set eth0 up
  [[ $(ip netns exec "$h" ip -4 addr show dev eth0) == *"inet $addr/24"* ]] \
    || ip netns exec "$h" ip addr add "$addr/24" dev eth0
  # No default route: nothing on a fleet host reaches beyond the fleet LAN.
}

# ------------------------------------------------------------------------------------------- host files
ensure_client_key() {
  mkdir -p "$FLEET_DIR/ssh"
  chmod 700 "$FLEET_DIR" "$FLEET_DIR/ssh"
  [ -f "$FLEET_DIR/ssh/id_ed25519" ] \
    || ssh-keygen -q -t ed25519 -N '' -C "acestream-fleet-sim" -f "$FLEET_DIR/ssh/id_ed25519"
  cp "$FLEET_DIR/ssh/id_ed25519.pub" "$FLEET_DIR/ssh/authorized_keys"
  chmod 600 "$FLEET_DIR/ssh/authorized_keys"
}

write_host_files() {
  local h=$1 k=${1#fleet} conf=$FLEET_DIR/$1 lib=$FLEET_LIB/$1
  mkdir -p "$conf" "$lib/docker" "$lib/etc-docker" "$lib/opt" "$FLEET_RUN/$h"
  chmod 700 "$conf"
  [ -f "$conf/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$h" -f "$conf/ssh_host_ed25519_key"
  cat >"$conf/sshd_config" <<EOF
# sshd of the simulated fleet host $h (tests/fleet/fleet.sh): root by key only, on the fleet LAN only.
ListenAddress $(host_addr "$h"):22
HostKey $conf/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile $FLEET_DIR/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key files are made by fleet.sh, 0600 in 0700 directories; the checkout's parents are not its to check.
StrictModes no
PrintMotd no
MaxStartups 64:30:128
MaxSessions 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
  # The engine of host K: bridge 10.213.K.0/24 and networks from 10.213.(100+K).0/24 (the machine's engine
  # keeps 172.17.0.0/16 and its own pools); containers' cgroups under /acestream-fleet/<host>.
  cat >"$lib/etc-docker/daemon.json" <<EOF
{
  "bip": "10.213.$k.1/24",
  "default-address-pools": [{"base": "10.213.$((100 + k)).0/24", "size": 26}],
  "cgroup-parent": "/acestream-fleet/$h",
  "log-driver": "json-file",
  "log-opts": {"max-size": "1m", "max-file": "2"}
}
EOF
}

# ------------------------------------------------------------------------------------------------ images
# One `docker save` of the machine's images (kept while their IDs do not change), loaded where missing.
images_archive() {
  local present=() id key
  for image in "${IMAGES[@]}"; do
    if id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null); then present+=("$image=$id"); else
      log "image $image is not on the machine's engine (scripts/build-images.sh builds it): not copied"; fi
  done
  [ ${#present[@]} -gt 0 ] || return 0
  key=$(printf '%s\n' "${present[@]}" | sha256sum | cut -c1-16)
  mkdir -p "$FLEET_LIB/images"
  if [ ! -s "$FLEET_LIB/images/$key.tar" ]; then
    find "$FLEET_LIB/images" -name '*.tar*' -delete
    docker save -o "$FLEET_LIB/images/$key.tar.part" "${present[@]%%=*}"
    mv "$FLEET_LIB/images/$key.tar.part" "$FLEET_LIB/images/$key.tar"
  fi
  echo "$FLEET_LIB/images/$key.tar"
}

host_needs_images() {
  local h=$1 want have
  for image in "${IMAGES[@]}"; do
    want=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null) || continue
    have=$(host_docker "$h" image inspect -f '{{.Id}}' "$image" 2>/dev/null) || return 0
    [ "$want" = "$have" ] || return 0
  done
  return 1
}

# ----------------------------------------------------------------------------------------------- up/down
host_start() {
  local h=$1 deadline
  write_host_files "$h"
  ensure_host_network "$h"
  : >"$FLEET_DIR/$h/dockerd.log"
  unshare --mount --uts --propagation private -- nsenter --net="/run/netns/$h" -- \
    "$HERE/host-init.sh" "$h" "$FLEET_RUN/$h" "$FLEET_LIB/$h" "$FLEET_DIR/$h" "$(host_opt_dir)"
  deadline=$((SECONDS + UP_TIMEOUT))
  until engine_answers "$h"; do
    if [ $SECONDS -ge $deadline ]; then
      tail -15 "$FLEET_DIR/$h/dockerd.log" >&2
      die "$h: no Docker Engine answers on $(host_sock "$h") after ${UP_TIMEOUT}s"
    fi
    sleep 0.2
  done
  until sshd_answers "$h"; do
    [ $SECONDS -lt $deadline ] || { tail -5 "$FLEET_DIR/$h/sshd.log" >&2; die "$h: sshd does not answer"; }
    sleep 0.2
  done
}

host_up() {
  local h=$1
  if engine_answers "$h" && sshd_answers "$h" && [ -e "/run/netns/$h" ]; then
    ensure_host_network "$h"
    return
  fi
  # Half up (a crash, a daemon gone): start from nothing.
  [ -d "$FLEET_RUN/$h" ] || [ -e "/run/netns/$h" ] && host_down "$h"
  host_start "$h"
}

cmd_up() {
  local hosts archive h t0=$SECONDS pids=() failed=0
  mapfile -t hosts < <(hosts_wanted "${1:-}")
  ensure_tools
  ensure_docker
  ensure_client_key
  ensure_bridge
  mkdir -p "$FLEET_RUN/control" && chmod 700 "$FLEET_RUN/control"
  for h in "${hosts[@]}"; do host_up "$h" >"$FLEET_DIR/up-$h.log" 2>&1 & pids+=($!); done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { failed=1; log "${hosts[$i]} failed:"; cat "$FLEET_DIR/up-${hosts[$i]}.log" >&2; }
  done
  [ $failed -eq 0 ] || die "fleet bring-up failed"
  archive=$(images_archive)
  if [ -n "$archive" ]; then
    pids=()
    for h in "${hosts[@]}"; do
      if host_needs_images "$h"; then
        # The images' earlier builds, untagged by the load, go (unless a container still uses them).
        { host_docker "$h" load -q -i "$archive" && host_docker "$h" image prune -f; } >"$FLEET_DIR/load-$h.log" 2>&1 &
        pids+=($!)
      fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ $failed -eq 0 ] || die "loading the images into the fleet failed (see $FLEET_DIR/load-*.log)"
  fi
  log "fleet up: ${hosts[*]} in $((SECONDS - t0))s"
}

kill_and_wait() {  # kill_and_wait SECONDS PID...: TERM, then KILL what is left after SECONDS
  local grace=$1 deadline; shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while [ $SECONDS -lt $deadline ]; do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 1 ] || return 0
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
}

host_down() {
  local h=$1 pid pids
  # The engine first, gracefully (it stops its containers), then whatever is left in the namespace.
  if pid=$(dockerd_pid "$h"); then kill_and_wait 30 "$pid"; fi
  # Container processes of a crashed engine live in their own namespaces: find them by cgroup.
  mapfile -t pids < <(find /sys/fs/cgroup -path "*/acestream-fleet/$h/*" -name cgroup.procs -exec cat {} + 2>/dev/null \
    | sort -u)
  [ ${#pids[@]} -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
  if [ -e "/run/netns/$h" ]; then
    mapfile -t pids < <(ip netns pids "$h" 2>/dev/null)
    kill_and_wait 5 "${pids[@]}"
  fi
  find /sys/fs/cgroup -depth -type d \( -path "*/acestream-fleet/$h" -o -path "*/acestream-fleet/$h/*" \) \
    -exec rmdir {} + 2>/dev/null || true
  ip link del "$(host_veth "$h")" 2>/dev/null || true
  [ -e "/run/netns/$h" ] && ip netns del "$h"
  rm -rf "${FLEET_RUN:?}/$h"
  # SSH connections shared by Ansible (ControlPersist) with the host that was: the next run opens new ones.
  rm -f "$FLEET_RUN/control/$h-"*
}

cmd_down() {
  local hosts h
  if [ -n "${1:-}" ]; then mapfile -t hosts < <(hosts_wanted "$1"); else mapfile -t hosts < <(hosts_existing); fi
  for h in "${hosts[@]}"; do host_down "$h" & done
  wait
  if [ -z "$(hosts_existing)" ]; then
    ip link del "$BRIDGE" 2>/dev/null || true
    rmdir /sys/fs/cgroup/acestream-fleet /sys/fs/cgroup/*/acestream-fleet 2>/dev/null || true
    rm -rf "${FLEET_RUN:?}/control"
    rmdir "$FLEET_RUN" 2>/dev/null || true
  fi
  log "fleet down${hosts[*]:+: ${hosts[*]}}"
}

cmd_purge() {
  cmd_down
  rm -rf "${FLEET_LIB:?}"
}

cmd_reset() {
  local hosts h ids
  mapfile -t hosts < <(hosts_wanted "${1:-}")
  for h in "${hosts[@]}"; do
    engine_answers "$h" || die "$h is not up"
    mapfile -t ids < <(host_docker "$h" ps -aq)
    [ ${#ids[@]} -eq 0 ] || host_docker "$h" rm -f -v "${ids[@]}" >/dev/null
    host_docker "$h" network prune -f >/dev/null
    find "$FLEET_LIB/$h/opt" -mindepth 1 -delete
  done
}

cmd_status() {
  local hosts h ok=0 engine sshd images containers
  if [ -n "${1:-}" ]; then mapfile -t hosts < <(hosts_wanted "$1"); else mapfile -t hosts < <(hosts_existing); fi
  [ ${#hosts[@]} -gt 0 ] || { echo "no fleet host"; return 1; }
  printf '%-8s %-12s %-7s %-5s %-7s %s\n' HOST ADDRESS ENGINE SSH IMAGES CONTAINERS
  for h in "${hosts[@]}"; do
    engine=down sshd=down images=- containers=-
    if engine_answers "$h"; then
      engine=up
      images=$(host_docker "$h" images -q | sort -u | wc -l)
      containers=$(host_docker "$h" ps -aq | wc -l)
    fi
    sshd_answers "$h" && sshd=up
    [ "$engine" = up ] && [ "$sshd" = up ] || ok=1
    printf '%-8s %-12s %-7s %-5s %-7s %s\n' "$h" "$(host_addr "$h")" "$engine" "$sshd" "$images" "$containers"
  done
  return $ok
}

cmd_reboot() {
  local h=${1:?usage: fleet.sh reboot HOST}
  [ -d "$FLEET_RUN/$h" ] || die "$h is not up"
  host_down "$h"
  host_start "$h"
  log "$h rebooted"
}

cmd_exec() {
  local h=${1:?usage: fleet.sh exec HOST CMD...} pid
  shift
  pid=$(dockerd_pid "$h") || die "$h is not up"
  exec nsenter -t "$pid" --mount --uts --net -- "$@"
}

[ "$(id -u)" -eq 0 ] || die "fleet.sh needs root (network namespaces, dockerd)"
cmd=${1:-}
shift || true
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  purge) cmd_purge ;;
  reset) cmd_reset "$@" ;;
  status) cmd_status "$@" ;;
  exec) cmd_exec "$@" ;;
  reboot) cmd_reboot "$@" ;;
  *) die "usage: fleet.sh up|down|status|reset [N] | purge | exec HOST CMD... | reboot HOST" ;;
esac
