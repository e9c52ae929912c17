#!/usr/bin/env bash
# revoke-join-token.sh: deletes the bootstrap token(s) of a worker once it has joined (control plane;
# after each successful join).
#
# Settings (environment):
#   WORKER_NAME  the worker whose tokens (description "join WORKER_NAME", see join-token.sh) go.
#
# The token join-token.sh mints has no expiry, so that a re-run of a failed join can still use it;
# this is what ends its life. Idempotent (no token left: nothing to do); prints nothing on stdout.
set -euo pipefail
LOG_TAG=revoke-join-token
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
    : "${WORKER_NAME:?WORKER_NAME is required (the worker whose join tokens are deleted)}"
    require_node_name WORKER_NAME "$WORKER_NAME"
    require_admin_conf
    retry delete_join_tokens "$WORKER_NAME" ||
        die "could not delete the bootstrap tokens of $WORKER_NAME; list them with 'kubeadm token list' and delete them with 'kubeadm token delete <id>'"
    log "no bootstrap token of $WORKER_NAME is left"
}

main "$@"
