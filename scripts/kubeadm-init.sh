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
# STDIN: the cluster's identity, owned by the stack (components/identity.ts renderPkiBundle, a Pulumi
#   secret, so it never appears in the script text): ca.crt/.key, front-proxy-ca.crt/.key, sa.key/.pub,
#   each after a line "# kubeadm-gcp pki file: <name>".
#
# Installs those files into /etc/kubernetes/pki (each atomically, keys 0600) unless they are there
# already; kubeadm init then signs every other certificate with them. A file that is there with other
# contents stops the script: the node was initialised with another identity, which kubeadm cannot
# swap in place. Writes /etc/kubernetes/kubeadm-config.yaml (kubeadm.k8s.io/v1beta4), runs
# `kubeadm init` unless the node already runs a control plane, then applies Flannel with the pod CIDR. The init bootstrap token is
# never printed (--skip-token-print) and lives 15 minutes: workers get their own from join-token.sh.
# kubeadm writes admin.conf long before its last phases, so a control plane whose API answers is only
# taken as initialised once the objects of those phases exist (kubeadm-config, cluster-info,
# kube-proxy, CoreDNS); when some are missing (an init that failed half-way), the phases are run again
# with the same configuration file.
#
# STDOUT: one line, the cluster's UID (the kube-system namespace's uid): which incarnation of the
# cluster this is. A control plane initialised anew has a new one; workers compare it (kubeadm-join.sh).
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
PKI_DIR="$ROOT/etc/kubernetes/pki"
PKI_MARKER="# kubeadm-gcp pki file: "
PKI_FILES=(ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key sa.key sa.pub)
# How long an existing control plane may take to answer before this script gives up on it.
API_WAIT_ATTEMPTS="${API_WAIT_ATTEMPTS:-12}"

# read_pki_bundle: splits the bundle on stdin into $WORK/pki/<name>; names only what is wrong, never a value.
# Reads to the end: pulumi-command hands stdin to the SSH session as a reader, which x/crypto/ssh
# copies and then closes (Session.stdin: CloseWrite), so the end comes.
read_pki_bundle() {
    local line name="" file
    mkdir -p "$WORK/pki"
    chmod 0700 "$WORK/pki"
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line == "$PKI_MARKER"* ]]; then
            name="${line#"$PKI_MARKER"}"
            [[ " ${PKI_FILES[*]} " == *" $name "* ]] || die "the PKI bundle on stdin names an unexpected file '$name' (expected: ${PKI_FILES[*]})"
            [[ ! -e $WORK/pki/$name ]] || die "the PKI bundle on stdin names $name twice"
            : >"$WORK/pki/$name"
        elif [[ -n $name ]]; then
            printf '%s\n' "$line" >>"$WORK/pki/$name"
        elif [[ -n ${line//[[:space:]]/} ]]; then
            die "the data on stdin is not the cluster's PKI bundle (it must start with '${PKI_MARKER}<file>')"
        fi
    done
    for file in "${PKI_FILES[@]}"; do
        [[ -s $WORK/pki/$file ]] || die "the PKI bundle on stdin lacks $file (expected the output of components/identity.ts)"
    done
}

# install_pki: puts the stack's identity where kubeadm init looks for it. Each file is written
# atomically (update_file), so a run killed half-way leaves whole files that the next run finds equal.
install_pki() {
    local file mode installed=()
    for file in "${PKI_FILES[@]}"; do
        if [[ -f $PKI_DIR/$file ]]; then
            cmp -s "$PKI_DIR/$file" "$WORK/pki/$file" ||
                die "$PKI_DIR/$file is not the stack's: this control plane was initialised with another identity (a cluster made before the stack owned its CA, or the stack's identity resources were replaced). kubeadm cannot change a cluster's CA in place: replace the control plane (npm run replace:control-plane), which initialises it with the stack's identity (docs/identity.md)"
            continue
        fi
        mode=0644
        [[ $file == *.key ]] && mode=0600
        update_file "$PKI_DIR/$file" "$mode" "$WORK/pki/$file"
        installed+=("$file")
    done
    if ((${#installed[@]})); then
        log "installed the stack's cluster identity into $PKI_DIR: ${installed[*]}"
    else
        log "the stack's cluster identity is already in $PKI_DIR"
    fi
}

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
    local restored=()
    if [[ -d $ROOT/var/lib/etcd/member ]]; then
        # etcd-backup.sh restored a snapshot here: kubeadm's preflight refuses a non-empty data
        # directory, which is exactly what brings the cluster back (the kubeadm docs' restore).
        restored=(--ignore-preflight-errors=DirAvailable--var-lib-etcd)
        log "running kubeadm init for $NODE_NAME ($ADVERTISE_ADDRESS, public $PUBLIC_ADDRESS) on the restored etcd data"
    else
        log "running kubeadm init for $NODE_NAME ($ADVERTISE_ADDRESS, public $PUBLIC_ADDRESS)"
    fi
    kubeadm init --config "$KUBEADM_CONFIG" --skip-token-print "${restored[@]}" >&2
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

# print_cluster_uid: the one line on stdout.
print_cluster_uid() {
    local uid
    uid="$(retry kubectl_admin get namespace kube-system -o 'jsonpath={.metadata.uid}')" || die "could not read the kube-system namespace's uid"
    [[ $uid =~ $UID_RE ]] || die "the kube-system namespace's uid is not a UUID (got '$uid')"
    printf '%s\n' "$uid"
}

read_pki_bundle
install_pki
init_control_plane
apply_flannel
log "control plane $NODE_NAME is initialised and Flannel is applied"
print_cluster_uid
