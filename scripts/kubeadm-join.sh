#!/usr/bin/env bash
# kubeadm-join.sh: joins this worker to the cluster (workers, in parallel).
#
# Settings (environment):
#   NODE_NAME  this worker's node name.
# STDIN: the join command printed by join-token.sh (a Pulumi secret, so it never appears in the
#   script text): kubeadm join <host:port> --token <token> --discovery-token-ca-cert-hash sha256:<hex>
#
# Validates the line (never echoing the token) and runs kubeadm join with --node-name. A node that
# has already joined (/etc/kubernetes/kubelet.conf exists) is left alone when its cluster CA
# (/etc/kubernetes/pki/ca.crt) is the one the line pins (--discovery-token-ca-cert-hash), or when
# there is no line to compare with. If the CA differs, the node belongs to a cluster that is gone (the
# control plane was replaced and initialised anew): it is reset (kubeadm reset -f) and joined to the
# new one. Prints nothing on stdout.
set -euo pipefail
LOG_TAG=kubeadm-join
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBELET_CONF="$ROOT/etc/kubernetes/kubelet.conf"
CLUSTER_CA="$ROOT/etc/kubernetes/pki/ca.crt"

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

main() {
    : "${NODE_NAME:?NODE_NAME is required (this worker node name)}"
    require_node_name NODE_NAME "$NODE_NAME"

    local line=""
    IFS= read -r line || true
    local have_line=0
    [[ -n ${line//[[:space:]]/} ]] && have_line=1

    if [[ -f $KUBELET_CONF ]] && ((!have_line)); then
        log "$NODE_NAME has already joined ($KUBELET_CONF exists); nothing to do"
        return 0
    fi
    ((have_line)) || die "no join command on stdin (expected the output of join-token.sh)"
    parse_join_command "$line"

    if [[ -f $KUBELET_CONF ]]; then
        if [[ "$(local_ca_hash)" == "$ca_hash" ]]; then
            log "$NODE_NAME has already joined this cluster (its CA matches the join command); nothing to do"
            return 0
        fi
        warn "$NODE_NAME was joined to another cluster (its CA in $CLUSTER_CA is not the one the join command pins, e.g. the control plane was replaced); running kubeadm reset -f and joining the cluster at $endpoint"
        kubeadm reset -f >&2
    elif [[ -e "$ROOT/etc/kubernetes/bootstrap-kubelet.conf" || -e $CLUSTER_CA ]]; then
        # A join that failed half-way leaves files kubeadm's preflight checks refuse.
        warn "leftovers of an earlier, unfinished join found; running kubeadm reset -f before joining"
        kubeadm reset -f >&2
    fi

    log "joining $NODE_NAME to the cluster at $endpoint"
    kubeadm join "$endpoint" --token "$token" --discovery-token-ca-cert-hash "$ca_hash" \
        --node-name "$NODE_NAME" --cri-socket "$CRI_SOCKET" >&2 ||
        die "kubeadm join failed; check 'journalctl -u kubelet' on $NODE_NAME and that the control plane is reachable at $endpoint"
    log "$NODE_NAME joined the cluster"
}

main "$@"
