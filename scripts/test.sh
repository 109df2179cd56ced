#!/usr/bin/env bash
# The stage_* functions are called indirectly, by name.
# shellcheck disable=SC2317,SC2329
# The whole test suite: unit, ansible-test sanity, ansible-lint (production profile), integration against the
# real Docker Engine, molecule. Prepares the machine first (scripts/bootstrap.sh).
#   scripts/test.sh                 every stage, one after the other
#   scripts/test.sh unit lint       only the named stages
# ACESTREAM_TEST_WORKERS=N: pytest workers of the integration stage (default 2; 1 runs its tests one by one).
# ACESTREAM_TEST_LANES=2 runs a full suite in two lanes side by side (below): for machines with cores to spare.
# On 2 cores the lanes compete for the CPU and a full run takes longer than one stage after the other.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

ALL_STAGES=(unit sanity lint integration eda fleet engines molecule matrix)
# The two lanes of a full run. The main lane keeps the local Docker Engine busy (integration, molecule); the side
# lane spends its time on downloads and pylint (sanity, lint) and on SSH round trips to the fleet hosts, which
# have Docker Engines of their own: little of it competes with the main lane for the CPU.
MAIN_LANE=(unit integration eda engines molecule)
SIDE_LANE=(sanity lint fleet matrix)
STAGES=("$@")
LANES=1
if [ ${#STAGES[@]} -eq 0 ] && [ "${ACESTREAM_TEST_LANES:-1}" = 2 ]; then LANES=2; fi
[ ${#STAGES[@]} -gt 0 ] || STAGES=("${ALL_STAGES[@]}")
REPORTS=$BUILD/test-reports

PLAIN=$BUILD/sanity/ansible_collections/acestream/orchestrator
plain_copy() {  # the tracked and new files in a plain ansible_collections/acestream/orchestrator checkout: $PLAIN
  rm -rf "$PLAIN" && mkdir -p "$PLAIN"
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$PLAIN")
  # The copy sits inside this checkout's ignored build/ folder: make it a repository of its own so that
  # ansible-test lists its files instead of the (ignored) ones of the outer checkout.
  git -C "$PLAIN" init -q
  # What sits next to the checkout (the port guide in ../shared) sits next to the copy too.
  if [ -d "$ROOT/../shared" ]; then ln -sfn "$(cd "$ROOT/../shared" && pwd)" "$(dirname "$PLAIN")/shared"; fi
}

stage_unit() {
  # As a contributor runs them: ansible-test units in a plain checkout at ansible_collections/acestream/orchestrator,
  # with none of the bootstrap's links (its own collection loader; the matrix runs pytest tests/unit from here).
  local rc=0 xml
  plain_copy
  (cd "$PLAIN" && env -u ANSIBLE_COLLECTIONS_PATH ansible-test units --python "$PYTHON_VERSION" --color no) || rc=1
  for xml in "$PLAIN"/tests/output/junit/*-units.xml; do
    [ -e "$xml" ] && cp "$xml" "$REPORTS/unit-$(basename "$xml")"
  done
  return "$rc"
}

stage_sanity() {
  # ansible-test needs the collection at ansible_collections/<namespace>/<name>/: test a copy of the tree.
  plain_copy
  (cd "$PLAIN" && ansible-test sanity --python "$PYTHON_VERSION" --requirements --color no)
}

stage_lint() {
  ansible-lint --offline --profile production
}

stage_integration() {
  # The tests share the Docker Engine (unique names, free ports, their own labels): ACESTREAM_TEST_WORKERS
  # (default 2) pytest workers run them side by side, a test file per worker. Then, one at a time, the tests
  # marked "exclusive", which need the engine to themselves (they compare its whole state before and after).
  local workers=${ACESTREAM_TEST_WORKERS:-2} rc=0
  local parallel=(-n "$workers" --dist loadfile)
  [ "$workers" -gt 1 ] || parallel=()
  pytest -q -p no:cacheprovider tests/integration -m "not exclusive" "${parallel[@]}" \
    --junitxml="$REPORTS/integration.xml" || rc=1
  pytest -q -p no:cacheprovider tests/integration -m exclusive --junitxml="$REPORTS/integration-exclusive.xml" || rc=1
  return "$rc"
}

stage_eda() {
  # Event-Driven Ansible: the keep_converged rulebook with the real ansible-rulebook on a simulator stack
  # (Java 17 and ansible-rulebook installed by scripts/eda-setup.sh; docs/eda.md).
  "$ROOT/scripts/eda-test.sh" "$REPORTS"
}

stage_fleet() {
  # Simulated fleet hosts (network namespaces, one Docker Engine and sshd each): docs/fleet-testing.md. The
  # keep_converged test on the fleet runs ansible-rulebook: Java 17 and ansible-rulebook from scripts/eda-setup.sh.
  local java_line
  java_line=$("$ROOT/scripts/eda-setup.sh" | tail -1) || return 1
  export "${java_line?}"
  pytest -q -p no:cacheprovider tests/fleet --junitxml="$REPORTS/fleet.xml"
}

stage_engines() {
  # The Docker Engine matrix (README, Requirements): Debian's docker.io 26.x (trixie) and the newest (sid), each on
  # a Docker host of its own built from Debian's packages (tests/engines/engines.sh), reached over SSH. Their root
  # filesystems were built in the background since the start of the run (prebuild_engines), when not cached.
  if [ -n "$ENGINES_BUILD_PID" ]; then
    wait "$ENGINES_BUILD_PID" || { cat "$REPORTS/engines-build.log"; return 1; }
    cat "$REPORTS/engines-build.log"
  fi
  pytest -q -p no:cacheprovider tests/engines --junitxml="$REPORTS/engines.xml"
}

ENGINES_BUILD_PID=
prebuild_engines() {  # the Docker hosts' images (downloads, mostly) while the stages before theirs run
  local stage
  for stage in "${STAGES[@]}"; do
    [ "$stage" = engines ] || continue
    [ "${STAGES[0]}" != engines ] || return 0
    command -v mmdebstrap >/dev/null || { log "installing mmdebstrap"; apt_install mmdebstrap; }
    log "building the Docker hosts' images in the background ($REPORTS/engines-build.log)"
    "$ROOT/tests/engines/engines.sh" build >"$REPORTS/engines-build.log" 2>&1 &
    ENGINES_BUILD_PID=$!
  done
}

stage_molecule() {
  # Each scenario has its own names, ports and network: with ACESTREAM_TEST_WORKERS above 1 (the default) they
  # run side by side, each one's output shown whole when it ends.
  local scenarios=() scenario rc=0
  mapfile -t scenarios < <(find "$ROOT/extensions/molecule" -mindepth 2 -maxdepth 2 -name molecule.yml \
    -printf '%h\n' 2>/dev/null | xargs -rn1 basename | grep -vx shared | sort)
  if [ ${#scenarios[@]} -eq 0 ]; then echo "no molecule scenario yet"; return 0; fi
  if [ "${ACESTREAM_TEST_WORKERS:-2}" -le 1 ]; then
    (cd "$ROOT/extensions" && molecule test --all)
    return
  fi
  for scenario in "${scenarios[@]}"; do
    (cd "$ROOT/extensions" && molecule test -s "$scenario" >"$REPORTS/molecule-$scenario.log" 2>&1
     echo $? >"$REPORTS/molecule-$scenario.rc") &
  done
  wait
  for scenario in "${scenarios[@]}"; do
    log "molecule scenario $scenario: rc $(cat "$REPORTS/molecule-$scenario.rc")"
    cat "$REPORTS/molecule-$scenario.log"
    [ "$(cat "$REPORTS/molecule-$scenario.rc")" = 0 ] || rc=1
  done
  return "$rc"
}

stage_matrix() {
  # The support matrix (README, Requirements): ansible-core 2.19 (Python 3.11) and 2.21 (Python 3.13; 2.20 is the
  # whole suite's), each in its own pinned virtualenv (tests/matrix/*.txt, under build/matrix/): unit, sanity, the
  # scripts' shellcheck, the artifact and its smoke cycle; then the execution environment and docs lint checks in
  # the default virtualenv.
  "$ROOT/scripts/matrix.sh" "$REPORTS"
}

run_stage() {  # run_stage NAME: one stage, its row appended to $REPORTS/summary
  local stage=$1 t0 result
  log "stage $stage"
  t0=$(date +%s)
  if "stage_$stage"; then result=ok; else result=FAILED; fi
  echo "$stage $(( $(date +%s) - t0 ))s $result" >>"$REPORTS/summary"
  log "stage $stage: $result"
}

# eda and fleet spend most of their time waiting (for the rulebook's reactions, for SSH round trips to the fleet hosts,
# which have Docker Engines of their own; measured: the CPU half idle during eda) and share nothing but the EDA
# runtime, installed first: asked for together and with ACESTREAM_TEST_WORKERS above 1 (the default 2), they run side
# by side, each one's output shown whole when both have ended.
PAIR=(eda fleet)
run_pair() {
  local stage rc=0 pids=()
  log "stages ${PAIR[*]} side by side (the EDA runtime first)"
  "$ROOT/scripts/eda-setup.sh" >/dev/null || rc=1
  for stage in "${PAIR[@]}"; do
    if [ "$rc" = 0 ]; then run_stage "$stage" >"$REPORTS/stage-$stage.log" 2>&1 & pids+=($!)
    else echo "$stage 0s FAILED" >>"$REPORTS/summary"; echo "the EDA runtime failed to install" >"$REPORTS/stage-$stage.log"; fi
  done
  # Only these two: the engines stage waits for the background build of its hosts' images itself.
  [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
  for stage in "${PAIR[@]}"; do cat "$REPORTS/stage-$stage.log"; done
}

run_lane() {
  local stage paired=0
  if [ "${ACESTREAM_TEST_WORKERS:-2}" -gt 1 ] && [[ " $* " == *" ${PAIR[0]} "* ]] && [[ " $* " == *" ${PAIR[1]} "* ]]; then
    paired=1
  fi
  for stage in "$@"; do
    if [ "$paired" = 1 ] && [ "$stage" = "${PAIR[0]}" ]; then run_pair
    elif [ "$paired" = 1 ] && [ "$stage" = "${PAIR[1]}" ]; then continue
    else run_stage "$stage"; fi
  done
}

cd "$ROOT" || exit 1
start=$(date +%s)
"$ROOT/scripts/bootstrap.sh" || die "bootstrap failed"
activate
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
echo "bootstrap $(( $(date +%s) - start ))s ok" >"$REPORTS/summary"
for stage in "${STAGES[@]}"; do
  declare -F "stage_$stage" >/dev/null || die "unknown stage '$stage' (stages: ${ALL_STAGES[*]})"
done
prebuild_engines

if [ "$LANES" = 2 ]; then
  side_log=$REPORTS/side-lane.log
  log "side lane (${SIDE_LANE[*]}) runs in the background; its output follows the main lane's ($side_log)"
  run_lane "${SIDE_LANE[@]}" >"$side_log" 2>&1 &
  side_pid=$!
  run_lane "${MAIN_LANE[@]}"
  wait "$side_pid"
  log "side lane output (${SIDE_LANE[*]})"
  cat "$side_log"
else
  run_lane "${STAGES[@]}"
fi

mapfile -t SUMMARY <"$REPORTS/summary"
FAILED=$(grep -c ' FAILED$' "$REPORTS/summary")

# The reliability record of this run (docs/reliability.md is a copy of it from a full run: make reliability).
python3 "$ROOT/scripts/reliability_report.py" --reports "$REPORTS" --out "$REPORTS/reliability.md" || true

log "summary (wall time $(( $(date +%s) - start ))s)"
for row in "${SUMMARY[@]}"; do
  read -r name seconds result <<<"$row"
  printf '  %-12s %6s  %s\n' "$name" "$seconds" "$result"
done
# One closing line counting every test case run by pytest, plus each non-pytest stage as one check.
python3 - "$REPORTS" "${SUMMARY[@]}" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
reports, rows = pathlib.Path(sys.argv[1]), sys.argv[2:]
passed = failed = skipped = 0
for xml in reports.glob("*.xml"):
    for suite in ET.parse(xml).getroot().iter("testsuite"):
        total = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        passed += total - bad - skip; failed += bad; skipped += skip
for row in rows:
    name, _, result = row.split()
    if name in ("sanity", "lint", "molecule", "bootstrap"):
        passed += result == "ok"; failed += result != "ok"
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $(( FAILED > 0 ))
