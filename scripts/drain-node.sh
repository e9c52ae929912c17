#!/usr/bin/env bash
# drain-node.sh: drains a worker and removes it from the cluster (control plane; when a worker is
# removed by scale-in or destroy).
#
# Settings (environment):
#   NODE_NAME  the node to remove.
#
# Deletes the node's join tokens (join-token.sh). Not registered: exits 0. Otherwise drains it with the
# admin kubeconfig, i.e.
#   kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force --timeout=180s
# (a failed or timed-out drain only warns), then deletes the Node object. Idempotent; prints nothing on
# stdout. If the control plane is gone or its API does not answer, it warns and exits 0 so that
# removing the cluster is never blocked by the cluster being down.
set -euo pipefail
LOG_TAG=drain-node
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${NODE_NAME:?NODE_NAME is required (the node to drain and remove)}"
require_node_name NODE_NAME "$NODE_NAME"
DRAIN_TIMEOUT_SECONDS="${DRAIN_TIMEOUT_SECONDS:-180}"
require_seconds DRAIN_TIMEOUT_SECONDS "$DRAIN_TIMEOUT_SECONDS"

if [[ ! -f $ADMIN_CONF ]]; then
    warn "$ADMIN_CONF not found (control plane not initialised); nothing to drain for $NODE_NAME"
    exit 0
fi

if ! registered="$(retry kubectl_admin get node "$NODE_NAME" --ignore-not-found -o name)"; then
    warn "the API server does not answer; cannot drain or delete $NODE_NAME (remove it later with 'kubectl delete node $NODE_NAME')"
    exit 0
fi
# A worker removed before it joined may still have its (non-expiring) join token.
retry delete_join_tokens "$NODE_NAME" || warn "could not delete the bootstrap tokens of $NODE_NAME; delete them with 'kubeadm token delete <id>'"
if [[ -z $registered ]]; then
    log "node $NODE_NAME is not registered; nothing to do"
    exit 0
fi

log "draining $NODE_NAME (timeout ${DRAIN_TIMEOUT_SECONDS}s)"
if ! kubectl_admin drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --force \
    --timeout="${DRAIN_TIMEOUT_SECONDS}s" >&2; then
    warn "draining $NODE_NAME failed or timed out; deleting the node anyway (its pods are rescheduled once it is gone)"
fi
log "deleting node $NODE_NAME"
retry kubectl_admin delete node "$NODE_NAME" --ignore-not-found >&2 || die "could not delete node $NODE_NAME"
log "node $NODE_NAME removed from the cluster"
