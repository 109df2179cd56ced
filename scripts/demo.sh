#!/usr/bin/env bash
# The demo: the port guide's redundant mode on this machine, with the local simulators standing in for Gluetun
# and the AceStream engines (inventories/demo: two VPNs splitting 19000-19009, four engines, control servers on
# 127.0.0.1:18001/18002). Prepares the machine (scripts/bootstrap.sh: virtualenv, Docker Engine, simulator
# images), then runs the playbooks site, verify and status. Run it again: it changes nothing.
#   scripts/demo.sh          deploy (or converge), verify, print the status table
#   scripts/demo.sh down     remove the demo's containers and files (acestream_state=absent)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

INVENTORY=$ROOT/inventories/demo
STATUS_FILE=$BUILD/demo-status.txt
LOG_DIR=$BUILD/demo-logs

"$ROOT/scripts/bootstrap.sh"
activate
cd "$ROOT"
mkdir -p "$LOG_DIR"

# Show what changes and what fails; the full output of each run is kept in $LOG_DIR.
playbook() {
  local name=$1; shift
  local logfile="$LOG_DIR/$name.log" rc=0 start=$SECONDS
  ANSIBLE_DISPLAY_OK_HOSTS=${DEMO_SHOW_OK:-false} ANSIBLE_DISPLAY_SKIPPED_HOSTS=false \
    ansible-playbook -i "$INVENTORY" "acestream.orchestrator.$name" "$@" 2>&1 | tee "$logfile" || rc=$?
  [ "$rc" -eq 0 ] || die "playbook $name failed (rc=$rc); full output in $logfile"
  log "$name: $(grep -Eo 'changed=[0-9]+' "$logfile" | tail -1) in $((SECONDS - start))s"
}

if [ "${1:-}" = down ]; then
  log "removing the demo stack"
  playbook site -e acestream_state=absent
  exit 0
fi

log "site: deploy and converge the demo stack"
playbook site
log "verify: the port guide's Verification section"
DEMO_SHOW_OK=true playbook verify
log "status"
playbook status -e "acestream_status_file=$STATUS_FILE"
cat "$STATUS_FILE"
