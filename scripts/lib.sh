# Shared helpers for the project's scripts. Source it; do not run it.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ACESTREAM_VENV:-$ROOT/.venv}
BUILD=$ROOT/build
COLLECTIONS_DIR=$BUILD/collections
PYTHON=${ACESTREAM_PYTHON:-python3}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "'$*' needs root: run as root or install sudo"; fi
}

apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* with your package manager"
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# A virtualenv with the pinned tooling; reinstalled only when the pins change.
ensure_venv() {
  local stamp="$VENV/.acestream-pins" want
  want=$(cat "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is needed (found $("$PYTHON" --version)); set ACESTREAM_PYTHON"
  log "installing the pinned Python tooling into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "cannot create a virtualenv (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt" -c "$ROOT/constraints.txt"
  echo "$want" >"$stamp"
}

# The checkout importable as acestream.orchestrator (ansible-playbook, ansible-doc, molecule).
ensure_collection_path() {
  mkdir -p "$COLLECTIONS_DIR/ansible_collections/acestream"
  ln -sfn "$ROOT" "$COLLECTIONS_DIR/ansible_collections/acestream/orchestrator"
}

# ansible-test fetches a pip bootstrap script from a host that may be unreachable; give it a stand-in.
ensure_ansible_test_cache() {
  local version target
  version=$("$VENV/bin/python" -c '
from ansible_test._internal.python_requirements import get_venv_packages
class Python: version = "3.11"
print(get_venv_packages(Python())["pip"])' 2>/dev/null) || version=24.2
  target="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
  mkdir -p "$(dirname "$target")"
  [ -e "$target" ] || cp "$ROOT/scripts/get_pip_standin.py" "$target"
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

# A Docker Engine that answers: installed (Debian's docker.io) and started when needed.
ensure_docker() {
  docker_answers && return
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    log "installing Docker Engine (docker.io)"
    apt_install docker.io
  fi
  docker_answers && return
  if pgrep -x dockerd >/dev/null; then
    log "waiting for the running dockerd"
  else
    log "starting dockerd (log: $BUILD/dockerd.log)"
    mkdir -p "$BUILD"
    as_root sh -c "nohup dockerd >'$BUILD/dockerd.log' 2>&1 &"
  fi
  for _ in $(seq 1 60); do docker_answers && return; sleep 1; done
  tail -20 "$BUILD/dockerd.log" >&2 2>/dev/null
  die "no Docker Engine answers on ${DOCKER_HOST:-unix:///var/run/docker.sock}"
}

activate() {
  export PATH="$VENV/bin:$PATH"
  export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR"
  export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
  export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
}
