# shellcheck shell=bash
# Source this file to use the project's virtualenv and the checkout as acestream.orchestrator.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate
