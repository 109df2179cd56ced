#!/usr/bin/env bash
# The Event-Driven Ansible runtime for the keep_converged rulebook and the eda test stage, idempotently:
#   - Java 17 (Debian's openjdk-17-jre-headless), which ansible-rulebook's Drools engine runs on;
#   - ansible-rulebook 1.3.2 and its dependencies (drools_jpy, ansible-runner, ...) in the project virtualenv,
#     pinned by tests/eda/constraints.txt on top of constraints.txt (nothing the main pins hold is changed);
#     reinstalled only when those pins change.
# Prints JAVA_HOME=... on its last line (eval-able): ansible-rulebook needs it in its environment.
#   scripts/eda-setup.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

EDA_CONSTRAINTS=$ROOT/tests/eda/constraints.txt
JAVA_PACKAGE=openjdk-17-jre-headless

java_home() {
  local candidate
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 \
                   /usr/lib/jvm/java-17-openjdk-*; do
    if [ -z "$candidate" ] || [ ! -x "$candidate/bin/java" ]; then continue; fi
    "$candidate/bin/java" -version 2>&1 | grep -q 'version "17' || continue
    echo "$candidate"
    return 0
  done
  return 1
}

ensure_java() {
  java_home >/dev/null && return
  if command -v dpkg-query >/dev/null && dpkg-query -W -f='${Status}' "$JAVA_PACKAGE" 2>/dev/null \
      | grep -q 'install ok installed'; then
    die "$JAVA_PACKAGE is installed but no Java 17 was found under /usr/lib/jvm: set JAVA_HOME"
  fi
  log "installing Java 17 ($JAVA_PACKAGE) for ansible-rulebook"
  apt_install "$JAVA_PACKAGE"
  java_home >/dev/null || die "no Java 17 under /usr/lib/jvm after installing $JAVA_PACKAGE: set JAVA_HOME"
}

ensure_rulebook() {
  local stamp="$VENV/.acestream-eda-pins" want
  [ -x "$VENV/bin/python" ] || die "no virtualenv at $VENV: run scripts/bootstrap.sh first"
  want=$(cat "$ROOT/constraints.txt" "$EDA_CONSTRAINTS" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$VENV/bin/ansible-rulebook" ]; then return; fi
  log "installing ansible-rulebook (pins: tests/eda/constraints.txt) into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check ansible-rulebook \
    -c "$ROOT/constraints.txt" -c "$EDA_CONSTRAINTS"
  echo "$want" >"$stamp"
}

ensure_java
ensure_rulebook
JAVA_HOME=$(java_home)
export JAVA_HOME
"$VENV/bin/ansible-rulebook" --version >/dev/null || die "ansible-rulebook does not start (JAVA_HOME=$JAVA_HOME)"
echo "JAVA_HOME=$JAVA_HOME"
