#!/usr/bin/env bash
# upgrade-uncordon.sh: waits until an upgraded worker runs the new kubelet and is Ready, then
# uncordons it (control plane; after upgrade-worker.sh, before the next worker is drained).
#
# Settings (environment):
#   NODE_NAME              the worker.
#   KUBERNETES_VERSION     the version its kubelet must report (e.g. v1.37.2).
#   READY_TIMEOUT_SECONDS  how long that may take (default 300).
#
# Only a node that upgrade-drain.sh cordoned (it carries the kubeadm-gcp/drained-for-upgrade
# annotation) is uncordoned, so a node a person cordoned stays cordoned. Idempotent.
#
# STDOUT: one line, KUBERNETES_VERSION (the next worker's drain takes it from here, which serializes
# the workers).
set -euo pipefail
LOG_TAG=upgrade-uncordon
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${NODE_NAME:?NODE_NAME is required (the upgraded worker)}"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (the version its kubelet must report, such as v1.37.2)}"
READY_TIMEOUT_SECONDS="${READY_TIMEOUT_SECONDS:-300}"

main() {
    require_node_name NODE_NAME "$NODE_NAME"
    require_kube_version KUBERNETES_VERSION "$KUBERNETES_VERSION"
    require_seconds READY_TIMEOUT_SECONDS "$READY_TIMEOUT_SECONDS"
    require_admin_conf
    wait_node_upgraded "$NODE_NAME" "$KUBERNETES_VERSION" "$READY_TIMEOUT_SECONDS"
    printf '%s\n' "$KUBERNETES_VERSION"
}

main "$@"
