#!/usr/bin/env bash
# The support matrix (README, Requirements): for each tests/matrix/<name>.txt, a virtualenv with exactly those
# pins (ansible-core, the Python named in the file, community.docker from an ansible package, shellcheck) under
# build/matrix/<name>/, reused while its pins do not change; in it, the unit tests, ansible-test sanity and the
# artifact tests (tests/artifact/test_artifact.py: the built collection installed alone, ansible-doc, a site,
# site again with nothing changed, verify cycle by FQCN on the simulators, no warning or deprecation printed).
# Then, in the default virtualenv, the execution environment and docs lint checks of tests/artifact, and
# galaxy-importer (tests/matrix/tooling/galaxy-importer.txt, its own virtualenv) on the built artifact.
#   scripts/matrix.sh [REPORTS_DIR]      junit xml per entry into REPORTS_DIR (matrix-<name>*.xml)
# ACESTREAM_MATRIX="core219 core221" runs only those entries. Needs scripts/bootstrap.sh done (the default
# virtualenv, the collection path, the simulator images, a Docker Engine).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

REPORTS=${1:-}
MATRIX_DIR=$BUILD/matrix
BASE_PATH=$PATH
if [ -n "${ACESTREAM_MATRIX:-}" ]; then read -r -a ENTRIES <<<"$ACESTREAM_MATRIX"; else
  mapfile -t ENTRIES < <(find "$ROOT/tests/matrix" -maxdepth 1 -name '*.txt' -printf '%f\n' | sed 's/\.txt$//' | sort)
fi

pin() { sed -n "s/^$2==//p" "$1"; }  # pin FILE PACKAGE: its pinned version

ensure_matrix_venv() {  # ensure_matrix_venv NAME [PINS]: build/matrix/NAME/venv with exactly PINS (tests/matrix/NAME.txt)
  local name=$1 pins=${2:-$ROOT/tests/matrix/$1.txt} venv=$MATRIX_DIR/$1/venv version python want
  version=$(sed -n 's/^# python: *//p' "$pins")
  python=$(find_python "$version") || { echo "no Python $version for $name (pyenv install $version)" >&2; return 1; }
  want=$( (cat "$pins"; "$python" --version) | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.acestream-pins" 2>/dev/null)" = "$want" ]; then return 0; fi
  log "matrix $name: installing ${pins#"$ROOT"/} with $python into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv" || return 1
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$pins" || return 1
  echo "$want" >"$venv/.acestream-pins"
}

sanity() {  # sanity NAME PYTHON_VERSION: ansible-test sanity of a copy of the tree (as stage_sanity does)
  local dest=$MATRIX_DIR/$1/sanity/ansible_collections/acestream/orchestrator
  rm -rf "$dest" && mkdir -p "$dest"
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dest")
  git -C "$dest" init -q
  (cd "$dest" && ansible-test sanity --python "$2" --requirements --color no)
}

run_entry() {  # run_entry NAME: the unit tests, sanity, shellcheck and the artifact tests in its virtualenv
  local name=$1 venv=$MATRIX_DIR/$1/venv version rc=0 scripts=() unit_xml=() artifact_xml=()
  if [ -n "$REPORTS" ]; then
    unit_xml=(--junitxml="$REPORTS/matrix-$name.xml") artifact_xml=(--junitxml="$REPORTS/matrix-$name-artifact.xml")
  fi
  version=$(sed -n 's/^# python: *//p' "$ROOT/tests/matrix/$name.txt")
  ensure_matrix_venv "$name" || return 1
  ensure_ansible_test_cache "$venv"
  export PATH="$venv/bin:$BASE_PATH"
  log "matrix $name: $(ansible --version | sed -n 1p), $("$venv/bin/python" --version)," \
    "shellcheck $(shellcheck --version | sed -n 's/^version: //p')"
  (cd "$ROOT" && python -m pytest -q -p no:cacheprovider tests/unit "${unit_xml[@]}") || rc=1
  sanity "$name" "$version" || rc=1
  mapfile -t scripts < <(cd "$ROOT" && git ls-files -co --exclude-standard '*.sh')
  (cd "$ROOT" && shellcheck -x -e SC1091 "${scripts[@]}") || rc=1
  (cd "$ROOT" && ACESTREAM_ARTIFACT_LIST="$MATRIX_DIR/$name/artifact-files.txt" \
    python -m pytest -q -p no:cacheprovider tests/artifact/test_artifact.py "${artifact_xml[@]}") || rc=1
  export PATH=$BASE_PATH
  return "$rc"
}

cd "$ROOT" || exit 1
activate
BASE_PATH=$PATH
mkdir -p "$MATRIX_DIR" ${REPORTS:+"$REPORTS"}
entry_row() {  # entry_row NAME: run_entry NAME, then its summary row on the last line of the output
  local name=$1 t0 result pins=$ROOT/tests/matrix/$1.txt
  t0=$(date +%s)
  if run_entry "$name"; then result=ok; else result=FAILED; fi
  printf '%-8s ansible-core %-8s Python %-5s ansible %-7s %5ss  %s\n' "$name" "$(pin "$pins" ansible-core)" \
    "$(sed -n 's/^# python: *//p' "$pins")" "$(pin "$pins" ansible)" "$(( $(date +%s) - t0 ))" "$result"
}

ROWS=() FAILED=0
for name in "${ENTRIES[@]}"; do
  [ -f "$ROOT/tests/matrix/$name.txt" ] || die "no matrix entry tests/matrix/$name.txt"
done
# The entries share nothing (their own virtualenvs, sanity copies, artifact directories, stack names and ports): with
# ACESTREAM_TEST_WORKERS above 1 (the default 2) they run side by side, each one's output shown whole when it ends.
# Each is mostly one process at a time (pytest, ansible-test, ansible-playbook): two of them fill the two cores.
LOGS=$MATRIX_DIR/logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
if [ "${ACESTREAM_TEST_WORKERS:-2}" -le 1 ]; then
  for name in "${ENTRIES[@]}"; do entry_row "$name" 2>&1 | tee "$LOGS/$name.log"; done
else
  for name in "${ENTRIES[@]}"; do entry_row "$name" >"$LOGS/$name.log" 2>&1 & done
  wait
  for name in "${ENTRIES[@]}"; do log "matrix $name: its output"; sed '$d' "$LOGS/$name.log"; done
fi
for name in "${ENTRIES[@]}"; do
  row=$(tail -1 "$LOGS/$name.log")
  case "$row" in "$name "*" ok") ;; *) FAILED=1 ;; esac
  ROWS+=("$row")
  log "matrix $name: ${row##* }"
done
# The execution environment and the docs lint need ansible-builder and antsibull-docs: the default virtualenv.
# galaxy-importer brings its own ansible-core and ansible-lint: a virtualenv of its own, named to its test.
t0=$(date +%s) tooling_xml=() result=ok
[ -z "$REPORTS" ] || tooling_xml=(--junitxml="$REPORTS/matrix-tooling.xml")
if ensure_matrix_venv galaxy-importer "$ROOT/tests/matrix/tooling/galaxy-importer.txt"; then
  export ACESTREAM_GALAXY_IMPORTER=$MATRIX_DIR/galaxy-importer/venv/bin/python
else result=FAILED FAILED=1; fi
if ! python -m pytest -q -p no:cacheprovider tests/artifact/test_execution_environment.py \
  tests/artifact/test_docs_lint.py tests/artifact/test_galaxy_importer.py "${tooling_xml[@]}"; then
  result=FAILED FAILED=1
fi
ROWS+=("$(printf '%-8s %-52s %5ss  %s' tooling "execution environment, docs lint, galaxy-importer" \
  "$(( $(date +%s) - t0 ))" "$result")")
log "matrix summary"
printf '  %s\n' "${ROWS[@]}"
exit "$FAILED"
