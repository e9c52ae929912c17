#!/usr/bin/env bash
# renew-certs.sh: reports when the admin credentials expire and renews kubeadm's certificates when
# that is near (control plane; after every upgrade, and when the program finds renewal due).
#
# Settings (environment):
#   RENEW_WITHIN_DAYS           renew when admin.conf's client certificate expires within this many
#                               days (the program passes components/upgrade.ts's window, 30 days;
#                               kubeadm's certificates live one year).
#   STATIC_POD_TIMEOUT_SECONDS  how long each control-plane static Pod may take to stop and to start
#                               again after its manifest moves (default 120).
#
# Within the window: `kubeadm certs renew all` (every certificate kubeadm manages, and the ones
# embedded in admin.conf, super-admin.conf, controller-manager.conf and scheduler.conf; SANs are kept
# from the existing certificates), then each control-plane static Pod is restarted the way kubeadm's
# certificate guide says, by moving its manifest out of /etc/kubernetes/manifests until the kubelet
# has stopped it and back, since not every component reloads certificates. Outside the window it
# changes nothing. A manifest left parked by an interrupted run is put back first.
#
# STDOUT: one line, the expiry of admin.conf's client certificate afterwards, RFC 3339 in UTC
# (e.g. 2027-11-26T09:03:58Z). It is not a secret.
set -euo pipefail
LOG_TAG=renew-certs
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${RENEW_WITHIN_DAYS:?RENEW_WITHIN_DAYS is required (renew when the admin credentials expire within this many days)}"
STATIC_POD_TIMEOUT_SECONDS="${STATIC_POD_TIMEOUT_SECONDS:-120}"
# etcd first: the API server's certificates for etcd are checked against the restarted etcd.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
RFC3339_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

validate_settings() {
    require_match RENEW_WITHIN_DAYS "$RENEW_WITHIN_DAYS" '^[0-9]+$' "a whole number of days"
    require_seconds STATIC_POD_TIMEOUT_SECONDS "$STATIC_POD_TIMEOUT_SECONDS"
    require_admin_conf
}

# kubeadm reads /etc/kubernetes itself; --rootfs makes it read "$ROOT/etc/kubernetes" instead when
# ROOT is set (tests run the real kubeadm against a PKI in a temporary directory).
kubeadm_here() {
    if [[ -n $ROOT ]]; then
        kubeadm "$@" --rootfs "$ROOT"
    else
        kubeadm "$@"
    fi
}

admin_expiry() {
    local expiry
    expiry="$(retry kubeadm_here certs check-expiration -o 'jsonpath={.certificates[?(@.name=="admin.conf")].expirationDate}')" ||
        die "'kubeadm certs check-expiration' failed"
    [[ $expiry =~ $RFC3339_RE ]] || die "'kubeadm certs check-expiration' reports no expiry for admin.conf (got '$expiry'); is $ADMIN_CONF a kubeadm kubeconfig?"
    printf '%s\n' "$expiry"
}

# component_running NAME: true when the kubelet runs a container of the static Pod NAME.
component_running() {
    [[ -n "$(crictl ps -q --state running --name "^$1\$" 2>/dev/null)" ]]
}

# wait_until TIMEOUT WHAT CMD...: polls CMD every 2 seconds until it succeeds or TIMEOUT passes.
wait_until() {
    local timeout="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || die "$what did not happen within ${timeout}s (check 'crictl ps -a' and 'journalctl -u kubelet')"
        sleep "${POLL_INTERVAL_SECONDS:-2}"
    done
}

not_running() { ! component_running "$1"; }

# restart_static_pods: for each control-plane manifest present, moves it out until its container has
# stopped, then back until it runs again (kubeadm's certificate guide: remove the manifest, wait for the
# kubelet's fileCheckFrequency, put it back).
restart_static_pods() {
    local component manifest restarted=0
    mkdir -p "$PARKED_MANIFESTS"
    for component in "${COMPONENTS[@]}"; do
        manifest="$MANIFESTS/$component.yaml"
        [[ -f $manifest ]] || continue
        log "restarting $component to load the renewed certificates"
        mv -f "$manifest" "$PARKED_MANIFESTS/"
        wait_until "$STATIC_POD_TIMEOUT_SECONDS" "the kubelet stopping $component" not_running "$component"
        mv -f "$PARKED_MANIFESTS/$component.yaml" "$manifest"
        wait_until "$STATIC_POD_TIMEOUT_SECONDS" "the kubelet starting $component again" component_running "$component"
        restarted=1
    done
    rm -rf "$PARKED_MANIFESTS"
    if ((restarted)); then
        wait_until "$STATIC_POD_TIMEOUT_SECONDS" "the API server answering /readyz" api_ready
    fi
}

main() {
    validate_settings
    restore_parked_manifests || true
    local expiry expires_at now window
    expiry="$(admin_expiry)"
    expires_at="$(date -u -d "$expiry" +%s)"
    now="$(date -u +%s)"
    window=$((RENEW_WITHIN_DAYS * 86400))
    if ((expires_at - now > window)); then
        log "the admin credentials expire at $expiry, more than $RENEW_WITHIN_DAYS days away; nothing to renew"
    else
        log "the admin credentials expire at $expiry, within $RENEW_WITHIN_DAYS days: renewing kubeadm's certificates"
        kubeadm_here certs renew all >&2 || die "'kubeadm certs renew all' failed (its output above says why)"
        restart_static_pods
        local renewed
        renewed="$(admin_expiry)"
        (($(date -u -d "$renewed" +%s) > expires_at)) || die "admin.conf still expires at $renewed after 'kubeadm certs renew all'"
        log "renewed: the admin credentials now expire at $renewed"
        expiry="$renewed"
    fi
    printf '%s\n' "$expiry"
}

main "$@"
