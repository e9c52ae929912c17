#!/usr/bin/env bash
# cluster-ready.sh: waits until every expected node is registered and Ready (control plane, after
# every worker joined). The Kubernetes provider waits for this step, so nothing is deployed into the
# cluster before its nodes can run it.
#
# Settings (environment):
#   EXPECTED_NODES   space-separated node names that must all be Ready.
#   TIMEOUT_SECONDS  how long to wait in total (default 600).
#
# Prints nothing on stdout. On timeout it fails, naming the nodes that are not Ready.
set -euo pipefail
LOG_TAG=cluster-ready
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${EXPECTED_NODES:?EXPECTED_NODES is required (space-separated node names)}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-600}"
POLL_INTERVAL_SECONDS="${POLL_INTERVAL_SECONDS:-5}"
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

log "all ${#nodes[@]} node(s) are Ready"
