#!/usr/bin/env bash
# cluster-ready.sh: waits until every expected node is registered and Ready, then prints the admin
# kubeconfig for use from outside the cluster (control plane, after every worker joined).
#
# Settings (environment):
#   EXPECTED_NODES   space-separated node names that must all be Ready.
#   PUBLIC_ENDPOINT  API server URL reachable from outside, e.g. https://203.0.113.7:6443.
#   TIMEOUT_SECONDS  how long to wait in total (default 600).
#
# STDOUT: exactly the admin kubeconfig (/etc/kubernetes/admin.conf) with the cluster's server: rewritten
# to PUBLIC_ENDPOINT; nothing else. On timeout it fails, naming the nodes that are not Ready.
set -euo pipefail
LOG_TAG=cluster-ready
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${EXPECTED_NODES:?EXPECTED_NODES is required (space-separated node names)}"
: "${PUBLIC_ENDPOINT:?PUBLIC_ENDPOINT is required (e.g. https://203.0.113.7:6443)}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-600}"
POLL_INTERVAL_SECONDS="${POLL_INTERVAL_SECONDS:-5}"
require_match PUBLIC_ENDPOINT "$PUBLIC_ENDPOINT" '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$' "an https://host:port URL"
require_seconds TIMEOUT_SECONDS "$TIMEOUT_SECONDS"
require_match POLL_INTERVAL_SECONDS "$POLL_INTERVAL_SECONDS" '^[0-9]+$' "a whole number of seconds"
read -r -a nodes <<<"$EXPECTED_NODES"
((${#nodes[@]})) || die "EXPECTED_NODES names no node"
for node in "${nodes[@]}"; do
    require_node_name "EXPECTED_NODES entry" "$node"
done
require_admin_conf

# Prints why NODE is not Ready yet ("not registered" / "not Ready"), nothing when it is Ready.
node_problem() {
    local node="$1" step="$2"
    if ! kubectl_admin get node "$node" -o name >/dev/null 2>&1; then
        echo "not registered"
    elif ! kubectl_admin wait --for=condition=Ready "node/$node" --timeout="${step}s" >/dev/null 2>&1; then
        echo "not Ready"
    fi
}

deadline=$((SECONDS + TIMEOUT_SECONDS))
pending=("${nodes[@]}")
log "waiting up to ${TIMEOUT_SECONDS}s for ${#nodes[@]} node(s) to be Ready: ${nodes[*]}"
while true; do
    still=()
    problems=()
    for node in "${pending[@]}"; do
        remaining=$((deadline - SECONDS))
        step=$((remaining < 10 ? (remaining < 1 ? 1 : remaining) : 10))
        problem="$(node_problem "$node" "$step")"
        if [[ -n $problem ]]; then
            still+=("$node")
            problems+=("$node ($problem)")
        else
            log "node $node is Ready"
        fi
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]})) || break
    if ((SECONDS >= deadline)); then
        die "timed out after ${TIMEOUT_SECONDS}s; nodes not Ready: ${problems[*]}. To investigate: 'kubectl describe node <name>' and 'kubectl -n kube-flannel get pods -o wide' on the control plane, 'journalctl -u kubelet' and 'crictl ps -a' on the node."
    fi
    log "still waiting for: ${problems[*]}"
    sleep "$POLL_INTERVAL_SECONDS"
done

# Rewrite the server of the (single) cluster entry to the public endpoint.
awk -v endpoint="$PUBLIC_ENDPOINT" '
    /^[[:space:]]*server:[[:space:]]*/ { match($0, /^[[:space:]]*server:/); print substr($0, 1, RLENGTH) " " endpoint; next }
    { print }' "$ADMIN_CONF" >"$WORK/kubeconfig"
grep -qxE "[[:space:]]*server: ${PUBLIC_ENDPOINT//./\\.}" "$WORK/kubeconfig" ||
    die "could not rewrite the server: of $ADMIN_CONF to $PUBLIC_ENDPOINT (no server: line found)"
if grep -E '^[[:space:]]*server:' "$WORK/kubeconfig" | grep -qvF "server: $PUBLIC_ENDPOINT"; then
    die "$ADMIN_CONF has a server: entry that was not rewritten to $PUBLIC_ENDPOINT"
fi
log "all ${#nodes[@]} node(s) are Ready; printing the admin kubeconfig for $PUBLIC_ENDPOINT"
cat "$WORK/kubeconfig"
