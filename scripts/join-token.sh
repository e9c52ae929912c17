#!/usr/bin/env bash
# join-token.sh: mints a fresh bootstrap token for one worker and prints its join command
# (control plane; once per worker, right before that worker joins).
#
# Settings (environment):
#   WORKER_NAME  the worker the token is for (recorded in the token's description).
#
# STDOUT: exactly one line, the join command
#   kubeadm join <host:port> --token <[a-z0-9]{6}.[a-z0-9]{16}> --discovery-token-ca-cert-hash sha256:<64 hex>
# It is a secret (Pulumi marks it so and passes it to kubeadm-join.sh on stdin). The token expires
# after 30 minutes, so a worker added weeks later still gets a valid one. Everything else goes to stderr.
set -euo pipefail
LOG_TAG=join-token
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${WORKER_NAME:?WORKER_NAME is required (the worker node this token is for)}"
require_match WORKER_NAME "$WORKER_NAME" "$NODE_NAME_RE" "a lower-case DNS name"
require_admin_conf

JOIN_RE='^kubeadm join [^[:space:]]+:[0-9]+ --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[a-f0-9]{64}$'

log "creating a 30-minute bootstrap token for $WORKER_NAME"
output="$(retry kubeadm token create --kubeconfig "$ADMIN_CONF" --ttl 30m \
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

log "join command ready for $WORKER_NAME (token valid for 30 minutes)"
printf '%s\n' "$join_line"
