#!/usr/bin/env bash
# The body of the eda test stage: the keep_converged rulebook with the real ansible-rulebook on a stack of the
# simulators (tests/eda). Prepares the EDA runtime first (scripts/eda-setup.sh: Java 17, ansible-rulebook).
#   scripts/eda-test.sh [REPORTS_DIR]     junit XML in REPORTS_DIR/eda.xml when given
set -euo pipefail
. "$(dirname "$0")/lib.sh"

reports=${1:-}
java_line=$("$ROOT/scripts/eda-setup.sh" | tail -1)
export "${java_line?}"
activate
junit=()
if [ -n "$reports" ]; then mkdir -p "$reports"; junit=(--junitxml="$reports/eda.xml"); fi
cd "$ROOT"
exec pytest -q -p no:cacheprovider tests/eda "${junit[@]}"
