#!/usr/bin/env bash
# kubeadm-init.sh: initialises the control plane with kubeadm and installs Flannel (control plane only).
#
# Settings (environment):
#   NODE_NAME             the control plane's node name.
#   ADVERTISE_ADDRESS     the node's internal IP: API server address and controlPlaneEndpoint.
#   PUBLIC_ADDRESS        the reserved static external IP (a SAN of the API server certificate).
#   POD_CIDR              pod network (kubeadm podSubnet and Flannel's "Network").
#   SERVICE_CIDR          service network.
#   CLUSTER_NAME          cluster name (kubeconfig cluster entry).
#   FLANNEL_MANIFEST_URL  URL of Flannel's kube-flannel.yml (VXLAN backend, the manifest's default).
#
# Writes /etc/kubernetes/kubeadm-config.yaml (kubeadm.k8s.io/v1beta4), runs `kubeadm init` unless the
# node already runs a control plane, then applies Flannel with the pod CIDR. The init bootstrap token is
# never printed (--skip-token-print) and lives 15 minutes: workers get their own from join-token.sh.
# kubeadm writes admin.conf long before its last phases, so a control plane whose API answers is only
# taken as initialised once the objects of those phases exist (kubeadm-config, cluster-info,
# kube-proxy, CoreDNS); when some are missing (an init that failed half-way), the phases are run again
# with the same configuration file. Prints nothing on stdout.
set -euo pipefail
LOG_TAG=kubeadm-init
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${NODE_NAME:?NODE_NAME is required (the control plane node name)}"
: "${ADVERTISE_ADDRESS:?ADVERTISE_ADDRESS is required (the control plane internal IP)}"
: "${PUBLIC_ADDRESS:?PUBLIC_ADDRESS is required (the static external IP of the API server)}"
: "${POD_CIDR:?POD_CIDR is required (pod network, e.g. 10.244.0.0/16)}"
: "${SERVICE_CIDR:?SERVICE_CIDR is required (service network, e.g. 10.96.0.0/12)}"
: "${CLUSTER_NAME:?CLUSTER_NAME is required (the cluster name)}"
: "${FLANNEL_MANIFEST_URL:?FLANNEL_MANIFEST_URL is required (URL of kube-flannel.yml)}"
require_node_name NODE_NAME "$NODE_NAME"
require_match ADVERTISE_ADDRESS "$ADVERTISE_ADDRESS" "$IPV4_RE" "an IPv4 address"
require_match PUBLIC_ADDRESS "$PUBLIC_ADDRESS" "$IPV4_RE" "an IPv4 address"
require_match POD_CIDR "$POD_CIDR" "$CIDR4_RE" "an IPv4 CIDR block"
require_match SERVICE_CIDR "$SERVICE_CIDR" "$CIDR4_RE" "an IPv4 CIDR block"
require_node_name CLUSTER_NAME "$CLUSTER_NAME"
require_match FLANNEL_MANIFEST_URL "$FLANNEL_MANIFEST_URL" '^https://[^[:space:]]+$' "an https:// URL"

KUBEADM_CONFIG="$ROOT/etc/kubernetes/kubeadm-config.yaml"
# How long an existing control plane may take to answer before this script gives up on it.
API_WAIT_ATTEMPTS="${API_WAIT_ATTEMPTS:-12}"

write_kubeadm_config() {
    local version
    version="$(kubeadm version -o short)"
    [[ $version =~ ^v1\.[0-9]+\.[0-9]+ ]] || die "unexpected 'kubeadm version -o short' output: $version"
    # No token is set in bootstrapTokens: kubeadm generates one at init. It expires after 15 minutes;
    # workers join with fresh tokens minted by join-token.sh.
    cat >"$WORK/kubeadm-config.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
  - description: "kubeadm init; short-lived, workers join with their own tokens"
    ttl: 15m0s
    usages:
      - signing
      - authentication
    groups:
      - system:bootstrappers:kubeadm:default-node-token
localAPIEndpoint:
  advertiseAddress: "$ADVERTISE_ADDRESS"
  bindPort: 6443
nodeRegistration:
  name: "$NODE_NAME"
  criSocket: "$CRI_SOCKET"
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: "$version"
clusterName: "$CLUSTER_NAME"
controlPlaneEndpoint: "$ADVERTISE_ADDRESS:6443"
networking:
  podSubnet: "$POD_CIDR"
  serviceSubnet: "$SERVICE_CIDR"
apiServer:
  certSANs:
    - "$PUBLIC_ADDRESS"
    - "$ADVERTISE_ADDRESS"
    - "$NODE_NAME"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
EOF
    update_file "$KUBEADM_CONFIG" 0600 "$WORK/kubeadm-config.yaml"
}

wait_for_api() {
    RETRY_ATTEMPTS="$API_WAIT_ATTEMPTS" retry api_ready
}

# What the phases of kubeadm init after admin.conf leave in the cluster, one object each that workers
# or the cluster need: upload-config (kubeadm join reads kubeadm-config), bootstrap-token (cluster-info
# is what token discovery reads) and addon (kube-proxy, CoreDNS). As "namespace kind name".
INIT_OBJECTS=(
    "kube-system configmap kubeadm-config"
    "kube-public configmap cluster-info"
    "kube-system daemonset kube-proxy"
    "kube-system deployment coredns"
)

# Prints the INIT_OBJECTS that do not exist, one per line.
missing_init_objects() {
    local object ns kind name
    for object in "${INIT_OBJECTS[@]}"; do
        read -r ns kind name <<<"$object"
        kubectl_admin get -n "$ns" "$kind" "$name" -o name >/dev/null 2>&1 || echo "$ns/$kind/$name"
    done
}

# finish_init: runs again, with the same configuration file, every phase of kubeadm init that comes
# after the control plane is up. Each is idempotent (create or update).
finish_init() {
    local phase
    for phase in "upload-config all" "mark-control-plane" "bootstrap-token --skip-token-print" "kubelet-finalize all" "addon all"; do
        # shellcheck disable=SC2086 # the phase and its flags are separate words
        retry kubeadm init phase $phase --config "$KUBEADM_CONFIG" >&2 || die "kubeadm init phase ${phase%% *} failed"
    done
}

# ensure_init_complete: finishes an init that stopped after admin.conf, then insists it is complete.
ensure_init_complete() {
    local missing
    missing="$(missing_init_objects)"
    [[ -n $missing ]] || return 0
    warn "kubeadm init did not finish (missing: ${missing//$'\n'/, }); running its remaining phases again with $KUBEADM_CONFIG"
    finish_init
    missing="$(missing_init_objects)"
    [[ -z $missing ]] ||
        die "the control plane is still incomplete after re-running kubeadm's phases (missing: ${missing//$'\n'/, }); check 'kubectl -n kube-system get pods' and 'journalctl -u kubelet', or start over with 'kubeadm reset -f' on this node and re-run"
}

init_control_plane() {
    local config_changed=0
    if write_kubeadm_config; then
        config_changed=1
    fi
    if [[ -f $ADMIN_CONF ]]; then
        if wait_for_api; then
            log "control plane already initialised (admin.conf present, API ready); not running kubeadm init"
            ((config_changed)) &&
                warn "kubeadm-config.yaml changed on an initialised cluster; kubeadm init is not re-run (new certSANs need 'kubeadm init phase certs apiserver' after removing the old apiserver certificate)"
            ensure_init_complete
            return 0
        fi
        die "$ADMIN_CONF exists but the API server does not answer /readyz: a previous kubeadm init may have failed half-way. Check 'crictl ps -a' and 'journalctl -u kubelet'; to start over run 'kubeadm reset -f' on this node and re-run. Not re-initialising automatically."
    fi
    log "running kubeadm init for $NODE_NAME ($ADVERTISE_ADDRESS, public $PUBLIC_ADDRESS)"
    kubeadm init --config "$KUBEADM_CONFIG" --skip-token-print >&2
    log "waiting for the API server"
    wait_for_api || die "the API server did not become ready after kubeadm init; check 'crictl ps -a' and 'journalctl -u kubelet'"
    ensure_init_complete
}

apply_flannel() {
    local manifest="$WORK/kube-flannel.yml"
    log "downloading $FLANNEL_MANIFEST_URL"
    retry curl -fsSL "$FLANNEL_MANIFEST_URL" -o "$manifest" || die "could not download $FLANNEL_MANIFEST_URL"
    # Flannel's net-conf.json must match the cluster's pod CIDR (kubeadm podSubnet).
    sed -i -E "s#(\"Network\":[[:space:]]*\")10\.244\.0\.0/16(\")#\1${POD_CIDR}\2#" "$manifest"
    grep -qF "\"Network\": \"$POD_CIDR\"" "$manifest" ||
        die "could not set the pod CIDR in Flannel's manifest: no '\"Network\": \"10.244.0.0/16\"' in $FLANNEL_MANIFEST_URL (has its net-conf.json changed?)"
    if [[ $POD_CIDR != "10.244.0.0/16" ]] && grep -qF '"Network": "10.244.0.0/16"' "$manifest"; then
        die "Flannel's manifest still contains the default network 10.244.0.0/16 after setting $POD_CIDR"
    fi
    log "applying Flannel (pod network $POD_CIDR)"
    retry kubectl_admin apply -f "$manifest" >&2 || die "kubectl apply of Flannel's manifest failed"
}

init_control_plane
apply_flannel
log "control plane $NODE_NAME is initialised and Flannel is applied"
