#!/usr/bin/env bash
# join-token.sh: mints a bootstrap token for one worker and prints its join command (control plane;
# once per worker, after that worker is prepared and right before it joins).
#
# Settings (environment):
#   WORKER_NAME  the worker the token is for (recorded in the token's description, "join WORKER_NAME").
#
# STDOUT: exactly one line, the join command
#   kubeadm join <host:port> --token <[a-z0-9]{6}.[a-z0-9]{16}> --discovery-token-ca-cert-hash sha256:<64 hex>
# It is a secret (Pulumi marks it so and passes it to kubeadm-join.sh on stdin). Earlier tokens of the
# same worker are deleted first. The token has no expiry: it lives exactly until the worker has
# joined (revoke-join-token.sh) or is removed (drain-node.sh). Pulumi keeps this line in its state and
# feeds it to the join again on a re-run after a failed join, however much later (a failed create
# leaves nothing in the state, so only the join runs again): a token with a TTL would be dead by
# then. Everything else goes to stderr.
set -euo pipefail
LOG_TAG=join-token
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${WORKER_NAME:?WORKER_NAME is required (the worker node this token is for)}"
require_node_name WORKER_NAME "$WORKER_NAME"
require_admin_conf

JOIN_RE='^kubeadm join [^[:space:]]+:[0-9]+ --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[a-f0-9]{64}$'

retry delete_join_tokens "$WORKER_NAME" || die "could not delete the earlier bootstrap tokens of $WORKER_NAME"
log "creating a bootstrap token for $WORKER_NAME, valid until it has joined"
output="$(retry kubeadm token create --kubeconfig "$ADMIN_CONF" --ttl 0 \
    --description "join ${WORKER_NAME}" --print-join-command)" ||
    die "kubeadm token create failed"

join_line=""
count=0
while IFS= read -r line; do
    # kubeadm ends the line with a space; normalise whitespace before checking the shape.
    line="$(tr -s '[:space:]' ' ' <<<"$line")"
    line="${line# }"
    line="${line% }"
    if [[ $line =~ $JOIN_RE ]]; then
        join_line="$line"
        count=$((count + 1))
    fi
done <<<"$output"

# The output is not echoed in these messages: it may contain the token.
((count > 0)) || die "kubeadm token create --print-join-command printed no valid join command (expected 'kubeadm join <host:port> --token <token> --discovery-token-ca-cert-hash sha256:<hash>'; output withheld)"
((count == 1)) || die "kubeadm token create --print-join-command printed $count join commands, expected one (output withheld)"

log "join command ready for $WORKER_NAME (token valid until it has joined)"
printf '%s\n' "$join_line"
