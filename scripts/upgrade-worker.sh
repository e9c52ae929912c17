#!/usr/bin/env bash
# upgrade-worker.sh: upgrades a worker's kubeadm, kubelet configuration, kubelet and kubectl to the
# control plane's version (worker; after upgrade-drain.sh drained it, before upgrade-uncordon.sh).
#
# Settings (environment):
#   KUBERNETES_VERSION  the exact version the control plane runs, e.g. v1.37.2 (upgrade-control-plane.sh's
#                       output): the worker installs exactly this patch, so kubelet and API server match.
#   APT_LOCK_WAIT_SECONDS, APT_LOCK_POLL_SECONDS, APT_RETRY_ATTEMPTS: apt's tuning (lib/common.sh); apt
#                       waits while apt-daily or unattended-upgrades hold apt's locks.
#
# The documented worker procedure: point the pkgs.k8s.io source at the minor, upgrade kubeadm,
# `kubeadm upgrade node` (the kubelet configuration of the new minor), upgrade kubelet and kubectl,
# daemon-reload and restart the kubelet. A worker whose kubelet already runs the version changes
# nothing; one whose kubelet is newer (a downgrade) is refused.
#
# STDOUT: one line, KUBERNETES_VERSION, once the kubelet of that version has been started.
set -euo pipefail
LOG_TAG=upgrade-worker
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${KUBERNETES_VERSION:?KUBERNETES_VERSION is required (the version the control plane runs, such as v1.37.2)}"

KUBELET_CONF="$ROOT/etc/kubernetes/kubelet.conf"

validate_settings() {
    require_kube_version KUBERNETES_VERSION "$KUBERNETES_VERSION"
    require_apt_settings
    [[ -f $KUBELET_CONF ]] || die "$KUBELET_CONF not found: this worker has not joined the cluster (did kubeadm-join.sh run here?)"
}

# up_to_date: true when kubeadm, kubelet and kubectl all are KUBERNETES_VERSION.
up_to_date() {
    local pkg
    for pkg in kubeadm kubelet kubectl; do
        [[ "$(installed_version "$pkg")" == "$KUBERNETES_VERSION" ]] || return 1
    done
}

refuse_downgrade() {
    local kubelet
    kubelet="$(installed_version kubelet)"
    if [[ -n $kubelet && "$(version_cmp "$kubelet" "$KUBERNETES_VERSION")" == 1 ]]; then
        die "refusing to downgrade: this worker's kubelet is $kubelet, newer than the control plane's $KUBERNETES_VERSION (a kubelet must not be newer than its API server)"
    fi
}

upgrade() {
    local minor deb
    minor="1.$(minor_of "$KUBERNETES_VERSION")"
    use_kubernetes_minor "$minor" || true
    apt_get update
    deb="$(kube_deb_version "$KUBERNETES_VERSION")" ||
        die "the package repository for v$minor offers no kubeadm $KUBERNETES_VERSION (see 'apt-cache madison kubeadm')"
    [[ "$(installed_version kubeadm)" == "$KUBERNETES_VERSION" ]] || install_kube_packages "$deb" kubeadm
    log "kubeadm upgrade node (kubelet configuration for $KUBERNETES_VERSION)"
    kubeadm upgrade node >&2 || die "'kubeadm upgrade node' failed (its output above says why); re-run 'pulumi up' once fixed"
    upgrade_kubelet_packages "$deb"
}

main() {
    validate_settings
    # A run killed between the kubelet's install and its restart left a restart to do.
    restart_kubelet_if_pending
    if up_to_date; then
        log "kubeadm, kubelet and kubectl already are $KUBERNETES_VERSION; nothing to do"
    else
        refuse_downgrade
        upgrade
        log "worker upgraded to $KUBERNETES_VERSION"
    fi
    printf '%s\n' "$KUBERNETES_VERSION"
}

main "$@"
