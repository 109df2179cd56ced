# Shared helpers for the project's scripts. Source it; do not run it.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${ACESTREAM_VENV:-$ROOT/.venv}
BUILD=$ROOT/build
COLLECTIONS_DIR=$BUILD/collections
# The Python of the project's virtualenv: constraints.txt is pinned for it. ACESTREAM_PYTHON names the interpreter
# (of this version); without it, find_python looks for one.
PYTHON_VERSION=3.12

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

# find_python 3.12: an interpreter of that version (on PATH, else pyenv's); not the project virtualenv's, which
# env.sh puts first on the PATH (a virtualenv is made anew with the interpreter this finds).
find_python() {
  local version=$1 candidate
  for candidate in "$(PATH=${PATH//"$VENV/bin:"/} command -v "python$version" 2>/dev/null)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
    if [ -n "$candidate" ] && "$candidate" -c '' 2>/dev/null; then echo "$candidate"; return 0; fi
  done
  return 1
}

python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }  # python_version PYTHON: 3.12

# The interpreter the virtualenv is made with: ACESTREAM_PYTHON, else a Python $PYTHON_VERSION found by find_python.
venv_python() {
  local python
  if [ -n "${ACESTREAM_PYTHON:-}" ]; then python=$ACESTREAM_PYTHON
  else
    python=$(find_python "$PYTHON_VERSION") || die "no Python $PYTHON_VERSION found (python$PYTHON_VERSION on PATH," \
      "or ${PYENV_ROOT:-$HOME/.pyenv}/versions/$PYTHON_VERSION.*): install one (pyenv install $PYTHON_VERSION;" \
      "Ubuntu 24.04: apt-get install python$PYTHON_VERSION-venv) or set ACESTREAM_PYTHON to one"
  fi
  [ "$(python_version "$python")" = "$PYTHON_VERSION" ] || die "ACESTREAM_PYTHON=$python is not a Python" \
    "$PYTHON_VERSION (the version constraints.txt is pinned for): set it to one, or unset it to have one found"
  echo "$python"
}

# A virtualenv with the pinned tooling; reinstalled only when the pins change, made anew when its Python is not
# $PYTHON_VERSION. ansible (the package) brings community.docker: only its collections are used, and it requires
# a newer ansible-core than the pinned one, so it is installed without its dependencies.
ensure_venv() {
  local stamp="$VENV/.acestream-pins" want python
  want=$(cat "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
    && [ "$(python_version "$VENV/bin/python")" = "$PYTHON_VERSION" ]; then return; fi
  python=$(venv_python) || exit 1
  log "installing the pinned Python tooling into $VENV ($("$python" --version))"
  if [ "$(python_version "$VENV/bin/python")" != "$PYTHON_VERSION" ]; then
    "$python" -m venv --clear "$VENV" \
      || die "cannot create a virtualenv with $python (Debian/Ubuntu: apt-get install python$PYTHON_VERSION-venv)"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt" -c "$ROOT/constraints.txt"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps \
    "ansible==$(sed -n 's/^ansible==//p' "$ROOT/constraints.txt")"
  echo "$want" >"$stamp"
}

# The checkout importable as acestream.orchestrator (ansible-playbook, ansible-doc, molecule).
ensure_collection_path() {
  mkdir -p "$COLLECTIONS_DIR/ansible_collections/acestream"
  ln -sfn "$ROOT" "$COLLECTIONS_DIR/ansible_collections/acestream/orchestrator"
}

# ansible-test fetches a pip bootstrap script from a host that may be unreachable; give it a stand-in.
ensure_ansible_test_cache() {  # ensure_ansible_test_cache [VENV]: for that virtualenv's ansible-test and Python
  local venv=${1:-$VENV} version target
  version=$("$venv/bin/python" -c '
import sys
from ansible_test._internal.python_requirements import get_venv_packages
class Python: version = "%d.%d" % sys.version_info[:2]
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
