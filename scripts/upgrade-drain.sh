#!/usr/bin/env bash
# upgrade-drain.sh: drains a worker before upgrade-worker.sh upgrades it (control plane; one worker at
# a time, after the control plane's upgrade).
#
# Settings (environment):
#   NODE_NAME              the worker to drain.
#   KUBERNETES_VERSION     the version the worker is upgraded to (the control plane's, e.g. v1.37.2).
#   DRAIN_TIMEOUT_SECONDS  how long draining may take (default 300).
#
# A worker whose kubelet already runs KUBERNETES_VERSION is left alone (so a re-run, or a new cluster,
# drains nothing). Otherwise it is cordoned and drained through the eviction API: PodDisruptionBudgets
# are respected, so the app keeps serving; a drain they block fails instead of forcing pods off.
# The only worker of a cluster is the exception: an evicted pod's replacement has no other node to run
# on, so the budget could never allow the next eviction and the drain would fail on every `up`. Its
# pods are deleted instead (--disable-eviction), and the step says that the app is down until the
# worker is back. A kubelet newer than the control plane is refused.
#
# STDOUT: one line, KUBERNETES_VERSION (the worker's upgrade step takes it from here).
set -euo pipefail
LOG_TAG=upgrade-drain
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${NODE_NAME:?NODE_NAME is required (the worker to drain)}"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (the version the worker is upgraded to, such as v1.37.2)}"
DRAIN_TIMEOUT_SECONDS="${DRAIN_TIMEOUT_SECONDS:-300}"

# only_worker: true when NODE_NAME is the one node of the cluster that is not a control plane.
only_worker() {
    local workers
    workers="$(retry kubectl_admin get nodes -l '!node-role.kubernetes.io/control-plane' -o name)" || die "could not list the cluster's nodes"
    [[ $workers == "node/$NODE_NAME" ]]
}

main() {
    require_node_name NODE_NAME "$NODE_NAME"
    require_kube_version KUBERNETES_VERSION "$KUBERNETES_VERSION"
    require_seconds DRAIN_TIMEOUT_SECONDS "$DRAIN_TIMEOUT_SECONDS"
    require_admin_conf

    local running
    running="$(node_kubelet_version "$NODE_NAME")" || die "could not read node $NODE_NAME from the API server (is it registered? 'kubectl get nodes')"
    [[ $running =~ $KUBE_VERSION_RE ]] || die "node $NODE_NAME reports no kubelet version (got '$running')"
    case "$(version_cmp "$running" "$KUBERNETES_VERSION")" in
        0) log "node $NODE_NAME already runs kubelet $KUBERNETES_VERSION; not draining it" ;;
        1) die "refusing to downgrade: node $NODE_NAME runs kubelet $running, newer than the control plane's $KUBERNETES_VERSION" ;;
        *) if only_worker; then
               warn "$NODE_NAME is the cluster's only worker: its pods have nowhere else to run, so they are deleted without their PodDisruptionBudget and the app is down until the upgraded worker is Ready again (about 2-4 minutes)"
               drain_for_upgrade "$NODE_NAME" "$KUBERNETES_VERSION" "$DRAIN_TIMEOUT_SECONDS" --disable-eviction
           else
               drain_for_upgrade "$NODE_NAME" "$KUBERNETES_VERSION" "$DRAIN_TIMEOUT_SECONDS"
           fi
           log "node $NODE_NAME (kubelet $running) is drained for its upgrade to $KUBERNETES_VERSION" ;;
    esac
    printf '%s\n' "$KUBERNETES_VERSION"
}

main "$@"
