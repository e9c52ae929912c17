#!/usr/bin/env bash
# kubeadm-join.sh: joins this worker to the cluster (workers, in parallel).
#
# Settings (environment):
#   NODE_NAME     this worker's node name.
#   CA_CERT_HASH  the stack's pin of the cluster CA (components/identity.ts caCertHash,
#                 sha256:<hex>): the join line must pin exactly this CA.
#   CLUSTER_UID   the cluster's UID as kubeadm-init.sh printed it: which incarnation of the cluster
#                 the node must be in (the CA stays the stack's across a control-plane replacement).
# STDIN: the join command printed by join-token.sh (a Pulumi secret, so it never appears in the
#   script text): kubeadm join <host:port> --token <token> --discovery-token-ca-cert-hash sha256:<hex>
#
# Validates the line (never echoing the token) and runs kubeadm join with --node-name. A node that
# has already joined (/etc/kubernetes/kubelet.conf exists) is left alone when it joined the cluster
# CLUSTER_UID names (recorded in /etc/kubernetes/kubeadm-gcp-cluster-uid before its join) and its CA
# (/etc/kubernetes/pki/ca.crt) is the stack's. Otherwise it belongs to a cluster that is gone (the
# control plane was replaced and initialised anew): it is reset (kubeadm reset -f) and joined to the
# new one. Prints nothing on stdout.
set -euo pipefail
LOG_TAG=kubeadm-join
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBELET_CONF="$ROOT/etc/kubernetes/kubelet.conf"
CLUSTER_CA="$ROOT/etc/kubernetes/pki/ca.crt"
# Which cluster incarnation this node joined; written before the join, so a join that stopped
# half-way still names the cluster it was joining.
JOINED_UID_FILE="$ROOT/etc/kubernetes/kubeadm-gcp-cluster-uid"

# parse_join_command LINE: sets endpoint, token and ca_hash; error messages name the faulty part,
# never its value.
parse_join_command() {
    local line="$1" word i
    local -a words
    read -r -a words <<<"$line"
    [[ ${#words[@]} -ge 2 && ${words[0]} == kubeadm && ${words[1]} == join ]] ||
        die "malformed join command on stdin: it must start with 'kubeadm join' (value not shown)"
    endpoint="" token="" ca_hash=""
    i=2
    while ((i < ${#words[@]})); do
        word="${words[i]}"
        case "$word" in
            --token | --discovery-token-ca-cert-hash)
                ((i + 1 < ${#words[@]})) || die "malformed join command on stdin: $word has no value"
                if [[ $word == --token ]]; then token="${words[i + 1]}"; else ca_hash="${words[i + 1]}"; fi
                i=$((i + 2))
                ;;
            --*)
                die "malformed join command on stdin: unexpected flag ${word%%=*}"
                ;;
            *)
                [[ -z $endpoint ]] || die "malformed join command on stdin: more than one API server endpoint"
                endpoint="$word"
                i=$((i + 1))
                ;;
        esac
    done
    [[ $endpoint =~ ^[A-Za-z0-9.-]+:[0-9]{1,5}$ ]] ||
        die "malformed join command on stdin: the API server endpoint is missing or not host:port"
    [[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] ||
        die "malformed join command on stdin: --token is missing or not of the form [a-z0-9]{6}.[a-z0-9]{16} (value not shown)"
    [[ $ca_hash =~ ^sha256:[a-f0-9]{64}$ ]] ||
        die "malformed join command on stdin: --discovery-token-ca-cert-hash is missing or not sha256:<64 hex digits>"
}

# local_ca_hash: prints this node's cluster CA pin in kubeadm's format (sha256 of the CA's
# DER-encoded SubjectPublicKeyInfo), nothing when there is no readable CA.
local_ca_hash() {
    local spki
    [[ -f $CLUSTER_CA ]] || return 0
    spki="$(openssl x509 -in "$CLUSTER_CA" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)" || return 0
    [[ ${spki%% *} =~ ^[a-f0-9]{64}$ ]] && printf 'sha256:%s' "${spki%% *}"
    return 0
}

# joined_uid: the cluster incarnation this node last joined, empty when it has no record.
joined_uid() {
    [[ -f $JOINED_UID_FILE ]] && tr -d '[:space:]' <"$JOINED_UID_FILE"
    return 0
}

main() {
    : "${NODE_NAME:?NODE_NAME is required (this worker node name)}"
    : "${CA_CERT_HASH:?CA_CERT_HASH is required (the pin of the stack CA, sha256:<hex>)}"
    : "${CLUSTER_UID:?CLUSTER_UID is required (the cluster UID that kubeadm-init.sh printed)}"
    require_node_name NODE_NAME "$NODE_NAME"
    require_match CA_CERT_HASH "$CA_CERT_HASH" '^sha256:[a-f0-9]{64}$' "sha256:<64 hex digits>"
    require_match CLUSTER_UID "$CLUSTER_UID" "$UID_RE" "a UUID"

    local line="" was have_ca
    IFS= read -r line || true
    was="$(joined_uid)"
    have_ca="$(local_ca_hash)"
    if [[ -f $KUBELET_CONF && $have_ca == "$CA_CERT_HASH" && $was == "$CLUSTER_UID" ]]; then
        log "$NODE_NAME has already joined this cluster ($CLUSTER_UID, the stack's CA); nothing to do"
        return 0
    fi

    [[ -n ${line//[[:space:]]/} ]] || die "no join command on stdin (expected the output of join-token.sh)"
    parse_join_command "$line"
    [[ $ca_hash == "$CA_CERT_HASH" ]] ||
        die "the join command pins another CA than the stack's ($CA_CERT_HASH): the control plane at $endpoint does not run with the stack's identity (see docs/identity.md)"

    if [[ -f $KUBELET_CONF ]]; then
        if [[ $have_ca != "$CA_CERT_HASH" ]]; then
            warn "$NODE_NAME was joined to a cluster with another CA (its $CLUSTER_CA is not the stack's); running kubeadm reset -f and joining the cluster at $endpoint"
        else
            warn "$NODE_NAME was joined to cluster ${was:-<unrecorded>}, which is gone (the control plane was initialised anew as $CLUSTER_UID); running kubeadm reset -f and joining the cluster at $endpoint"
        fi
        kubeadm reset -f >&2
    elif [[ -e "$ROOT/etc/kubernetes/bootstrap-kubelet.conf" || -e $CLUSTER_CA ]]; then
        # A join that failed half-way leaves files kubeadm's preflight checks refuse.
        warn "leftovers of an earlier, unfinished join found; running kubeadm reset -f before joining"
        kubeadm reset -f >&2
    fi

    printf '%s\n' "$CLUSTER_UID" >"$WORK/cluster-uid"
    update_file "$JOINED_UID_FILE" 0644 "$WORK/cluster-uid" || true
    log "joining $NODE_NAME to the cluster at $endpoint"
    kubeadm join "$endpoint" --token "$token" --discovery-token-ca-cert-hash "$ca_hash" \
        --node-name "$NODE_NAME" --cri-socket "$CRI_SOCKET" >&2 ||
        die "kubeadm join failed; check 'journalctl -u kubelet' on $NODE_NAME and that the control plane is reachable at $endpoint"
    log "$NODE_NAME joined the cluster"
}

main "$@"
