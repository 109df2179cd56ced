#!/usr/bin/env bash
# Run the benchmark (not part of the test suite): prepares the machine like the tests, then measures.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
"$ROOT/scripts/bootstrap.sh"
activate
exec python "$ROOT/benchmarks/bench_engine_pool.py" "$@"
