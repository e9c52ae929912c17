#!/usr/bin/env bash
# upgrade-control-plane.sh: upgrades the control plane to the newest patch of the next Kubernetes minor
# by kubeadm's documented procedure (control plane; before any worker is upgraded). Within the minor it
# runs, it only completes an interrupted upgrade; it never moves to a newer patch by itself.
#
# Settings (environment):
#   K8S_MINOR              the minor to run, e.g. 1.37: the same minor as now, or the next one.
#   NODE_NAME              the control plane's node name (drained for its kubelet's restart).
#   READY_TIMEOUT_SECONDS  how long the node may take to run the new kubelet and be Ready (default 300).
#   DRAIN_TIMEOUT_SECONDS  how long draining may take (default 300).
#   APT_LOCK_WAIT_SECONDS, APT_LOCK_POLL_SECONDS, APT_RETRY_ATTEMPTS: apt's tuning (lib/common.sh); apt
#                          waits while apt-daily or unattended-upgrades hold apt's locks.
#
# The running version comes from the cluster (`kubectl version`). Skipping a minor (1.36 -> 1.38) and
# going back (1.37 -> 1.36) are refused before anything changes, naming both versions. Otherwise:
# the pkgs.k8s.io source moves to K8S_MINOR, kubeadm is upgraded, `kubeadm upgrade plan` and
# `kubeadm upgrade apply` move the control plane to the newest patch (renewing its certificates), then
# the node is drained, kubelet and kubectl are upgraded, the kubelet restarts, and the node is Ready and
# uncordoned again. Each phase checks first, so a re-run after success changes nothing.
#
# STDOUT: one line, the version the control plane runs afterwards (e.g. v1.37.2); the workers'
# upgrade steps take it as their target.
set -euo pipefail
LOG_TAG=upgrade-control-plane
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${K8S_MINOR:?K8S_MINOR is required (Kubernetes minor version such as 1.37)}"
: "${NODE_NAME:?NODE_NAME is required (the control plane node name)}"
READY_TIMEOUT_SECONDS="${READY_TIMEOUT_SECONDS:-300}"
DRAIN_TIMEOUT_SECONDS="${DRAIN_TIMEOUT_SECONDS:-300}"
# kubeadm waits up to 5 minutes per static Pod; the bound only keeps a hung apply from hanging `pulumi up`.
APPLY_TIMEOUT_SECONDS="${APPLY_TIMEOUT_SECONDS:-1800}"

validate_settings() {
    require_match K8S_MINOR "$K8S_MINOR" '^1\.[0-9]+$' "a Kubernetes minor such as 1.37"
    require_node_name NODE_NAME "$NODE_NAME"
    require_seconds READY_TIMEOUT_SECONDS "$READY_TIMEOUT_SECONDS"
    require_seconds DRAIN_TIMEOUT_SECONDS "$DRAIN_TIMEOUT_SECONDS"
    require_seconds APPLY_TIMEOUT_SECONDS "$APPLY_TIMEOUT_SECONDS"
    require_apt_settings
    require_admin_conf
}

# refuse_unsupported_step CURRENT: kubeadm upgrades one minor at a time and never downgrades.
refuse_unsupported_step() {
    local current="$1" have want
    have="$(minor_of "$current")"
    want="$(minor_of "$K8S_MINOR")"
    if ((want < have)); then
        die "refusing to downgrade: the cluster runs $current and kubernetesVersion asks for $K8S_MINOR; kubeadm cannot downgrade a cluster (set kubernetesVersion back to 1.$have)"
    fi
    if ((want > have + 1)); then
        die "refusing to skip a minor: the cluster runs $current and kubernetesVersion asks for $K8S_MINOR; kubeadm upgrades one minor at a time (set kubernetesVersion to 1.$((have + 1)), run 'pulumi up', then continue)"
    fi
}

upgrade_kubeadm() {
    local deb="$1" target="$2"
    if [[ "$(installed_version kubeadm)" != "$target" ]]; then
        install_kube_packages "$deb" kubeadm
    fi
    [[ "$(installed_version kubeadm)" == "$target" ]] || die "kubeadm $(installed_version kubeadm) is installed after upgrading it, expected $target"
}

# recorded_version: the version in kubeadm's ClusterConfiguration (kube-system/kubeadm-config), which
# `kubeadm init` and `kubeadm upgrade apply` upload only after the control-plane Pods run it: an apply
# that stopped after its control-plane phase leaves the older version there (and the kubelet
# configuration, CoreDNS and kube-proxy with it).
recorded_version() {
    local config
    config="$(retry kubectl_admin get -n kube-system configmap kubeadm-config -o 'jsonpath={.data.ClusterConfiguration}')" ||
        die "could not read kube-system/kubeadm-config (kubeadm's ClusterConfiguration)"
    sed -n 's/^kubernetesVersion:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' <<<"$config" | head -n 1
}

# snapshot_before_upgrade TARGET: an etcd snapshot in the stack's bucket before kubeadm touches the
# control plane (etcd-backup.sh, installed by the etcd-snapshots step), as Kubespray backs etcd up
# before each upgrade. A failed snapshot stops the upgrade.
snapshot_before_upgrade() {
    local snapshot="$ROOT/usr/local/sbin/kubeadm-gcp-etcd-backup"
    if [[ ! -x $snapshot ]]; then
        warn "no etcd snapshot before the upgrade: $snapshot is not installed (the etcd-snapshots step has not run here)"
        return 0
    fi
    "$snapshot" snapshot "pre-upgrade-$1" >/dev/null || die "the etcd snapshot before upgrading to $1 failed (its error is above); not upgrading without one. Re-run 'pulumi up' once the bucket is reachable"
}

apply_upgrade() {
    local current="$1" target="$2" recorded
    if [[ $current == "$target" ]]; then
        recorded="$(recorded_version)"
        # kubeadm writes the version as given, with or without its "v" (its defaults print 1.36.0).
        if [[ -n $recorded && ${recorded#v} == "${target#v}" ]]; then
            log "the control plane already runs $target"
            return 0
        fi
        # kubeadm supports applying the version a cluster runs again (kubernetes/kubeadm#2752).
        warn "the API server runs $target but kubeadm's configuration records ${recorded:-no version}: an earlier 'kubeadm upgrade apply' stopped after its control-plane phase; applying $target again to finish it"
    fi
    log "kubeadm upgrade plan $target (checks the cluster's health and the upgrade)"
    kubeadm upgrade plan "$target" >&2 || die "'kubeadm upgrade plan $target' failed: the cluster cannot be upgraded as it is (its output above says why)"
    snapshot_before_upgrade "$target"
    log "kubeadm upgrade apply $target (control-plane static Pods, certificates, CoreDNS, kube-proxy)"
    timeout "$APPLY_TIMEOUT_SECONDS" kubeadm upgrade apply -y "$target" >&2 ||
        die "'kubeadm upgrade apply $target' failed; kubeadm rolls back a static Pod that does not come up. Check 'kubectl -n kube-system get pods' and 'crictl ps -a', then re-run 'pulumi up'"
}

upgrade_kubelet() {
    local deb="$1" target="$2"
    # A run killed between the kubelet's install and its restart left a restart to do.
    restart_kubelet_if_pending
    if [[ "$(installed_version kubelet)" != "$target" ]]; then
        drain_for_upgrade "$NODE_NAME" "$target" "$DRAIN_TIMEOUT_SECONDS"
        upgrade_kubelet_packages "$deb"
    elif [[ "$(installed_version kubectl)" != "$target" ]]; then
        install_kube_packages "$deb" kubectl
    fi
    wait_node_upgraded "$NODE_NAME" "$target" "$READY_TIMEOUT_SECONDS"
}

main() {
    validate_settings
    local current deb target
    # A renewal interrupted with a manifest parked would leave that component stopped for the upgrade.
    if restore_parked_manifests; then
        RETRY_ATTEMPTS=12 retry api_ready || die "the API server does not answer after its manifest was put back (check 'crictl ps -a' and 'journalctl -u kubelet')"
    fi
    current="$(cluster_version)"
    log "the cluster runs $current; kubernetesVersion is $K8S_MINOR"
    refuse_unsupported_step "$current"
    use_kubernetes_minor "$K8S_MINOR" || true
    apt_get update
    if [[ "$(minor_of "$current")" == "$(minor_of "$K8S_MINOR")" ]]; then
        # Same minor: only finish what an interrupted run left undone, at the running patch. A newer
        # patch is never applied implicitly: this step also re-runs when its script text changes, and
        # such a re-run must not roll the cluster to another release.
        target="$current"
        deb="$(kube_deb_version "$target")" || die "the package repository for v$K8S_MINOR no longer offers kubeadm $target (see 'apt-cache madison kubeadm')"
    else
        deb="$(kube_deb_version "$K8S_MINOR")" || die "the package repository for v$K8S_MINOR offers no kubeadm (see 'apt-cache madison kubeadm')"
        target="v${deb%%-*}"
    fi
    upgrade_kubeadm "$deb" "$target"
    apply_upgrade "$current" "$target"
    upgrade_kubelet "$deb" "$target"
    log "control plane $NODE_NAME runs $target"
    printf '%s\n' "$target"
}

main "$@"
