#!/usr/bin/env bash
# Shared helpers for the provisioning scripts. components/scripts.ts (renderScript) inlines this
# file where a script sources it, so what runs on a node is one self-contained bash program.
#
# Conventions every script follows:
#   - progress and errors go to STDERR (log/warn/die); STDOUT is reserved for a script's result;
#   - every absolute path the scripts read or write is "$ROOT/..." so tests can point FS_ROOT at a
#     temporary directory; external commands are called by name so tests can stub them on PATH;
#   - whatever the network can break is wrapped in `retry` (bounded attempts, exponential backoff).
# shellcheck shell=bash
# shellcheck disable=SC2034 # the constants below are used by the scripts that source this file

# Root prefix for every absolute filesystem path ("" on a real node).
ROOT="${FS_ROOT:-}"

# The CRI socket of containerd, used by kubeadm, crictl and the kubelet.
CRI_SOCKET="unix:///run/containerd/containerd.sock"

# Admin kubeconfig of the control plane (written by kubeadm-init.sh).
ADMIN_CONF="$ROOT/etc/kubernetes/admin.conf"

# Writes a progress line to stderr. Anything shaped like a bootstrap token is masked, so a token can
# never leak into logs through a message (defence in depth: no script logs one on purpose).
log() {
    local line="[${LOG_TAG:-provision}] $*" token_re='[a-z0-9]{6}\.[a-z0-9]{16}'
    while [[ $line =~ $token_re ]]; do
        line="${line//"${BASH_REMATCH[0]}"/<token redacted>}"
    done
    printf '%(%H:%M:%S)T %s\n' -1 "$line" >&2
}

warn() {
    log "WARNING: $*"
}

die() {
    log "ERROR: $*"
    exit 1
}

# retry CMD [ARGS...]: runs CMD until it succeeds, at most RETRY_ATTEMPTS times (default 5), sleeping
# RETRY_DELAY_SECONDS (default 3) before the second attempt and doubling the pause each time, capped
# at RETRY_MAX_DELAY_SECONDS (default 30). Returns CMD's last exit code when every attempt failed.
# CMD's stdout passes through untouched (callers may capture it); retry itself only writes to stderr.
retry() {
    local attempts="${RETRY_ATTEMPTS:-5}" delay="${RETRY_DELAY_SECONDS:-3}" max_delay="${RETRY_MAX_DELAY_SECONDS:-30}"
    local attempt=1 rc
    [[ $attempts =~ ^[1-9][0-9]*$ ]] || die "RETRY_ATTEMPTS must be a positive integer, got '$attempts'"
    [[ $delay =~ ^[0-9]+$ ]] || die "RETRY_DELAY_SECONDS must be a whole number of seconds, got '$delay'"
    [[ $max_delay =~ ^[0-9]+$ ]] || die "RETRY_MAX_DELAY_SECONDS must be a whole number of seconds, got '$max_delay'"
    while true; do
        if "$@"; then
            return 0
        else
            rc=$?
        fi
        if ((attempt >= attempts)); then
            log "giving up after $attempt attempt(s) (exit $rc): $1 ${2:-}"
            return "$rc"
        fi
        log "attempt $attempt/$attempts failed (exit $rc): $1 ${2:-}; retrying in ${delay}s"
        sleep "$delay"
        delay=$((delay * 2 > max_delay ? max_delay : delay * 2))
        attempt=$((attempt + 1))
    done
}

# Scratch directory for files prepared before they are moved into place; removed on exit.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# update_file TARGET MODE SOURCE: makes TARGET a copy of SOURCE (with MODE) unless it already has
# exactly that content. Returns 0 when TARGET was written, 1 when it was already up to date, so a
# caller can restart/apply only on change. The write is atomic (temporary file + rename).
update_file() {
    local target="$1" mode="$2" source="$3" tmp
    [[ -f $source ]] || die "update_file: $source does not exist"
    if [[ -f $target ]] && cmp -s "$source" "$target"; then
        return 1
    fi
    mkdir -p "$(dirname "$target")" || die "cannot create the directory of $target"
    tmp="$(mktemp "$target.XXXXXX")" || die "cannot create a temporary file next to $target"
    cp "$source" "$tmp" || die "cannot write $tmp"
    chmod "$mode" "$tmp" || die "cannot chmod $tmp"
    mv -f "$tmp" "$target" || die "cannot move $tmp to $target"
    log "updated $target"
    return 0
}

# pkg_installed PACKAGE: true when dpkg has PACKAGE fully installed.
pkg_installed() {
    local status
    # shellcheck disable=SC2016 # ${Status} is a dpkg-query format field, not a shell expansion
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
    [[ $status == "install ok installed" ]]
}

# kubectl against the cluster with the admin kubeconfig (control plane only).
kubectl_admin() {
    kubectl --kubeconfig "$ADMIN_CONF" "$@"
}

# api_ready: true when the API server answers /readyz with the admin kubeconfig.
api_ready() {
    kubectl_admin get --raw /readyz >/dev/null 2>&1
}

# require_admin_conf: fails unless this node is an initialised control plane.
require_admin_conf() {
    [[ -f $ADMIN_CONF ]] || die "$ADMIN_CONF not found: this is not an initialised control plane (did kubeadm-init.sh run here?)"
}

# Validators for settings; each fails with a message naming the setting.
require_match() {
    local name="$1" value="$2" regex="$3" what="$4"
    [[ $value =~ $regex ]] || die "$name must be $what, got '$value'"
}

IPV4_RE='^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$'
CIDR4_RE='^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$'
NODE_NAME_RE='^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'

# delete_join_tokens WORKER: deletes every bootstrap token join-token.sh minted for WORKER (their
# description is "join WORKER"), so no join token outlives the join it was for. Token values are
# only held in memory, never printed; the log names token ids, which are not secret.
delete_join_tokens() {
    local worker="$1" listing line id
    listing="$(kubeadm token list --kubeconfig "$ADMIN_CONF" -o jsonpath='{.token}{" "}{.description}{"\n"}')" || return 1
    while IFS= read -r line; do
        [[ ${line#* } == "join $worker" ]] || continue
        id="${line%%.*}"
        [[ $id =~ ^[a-z0-9]{6}$ ]] || continue
        kubeadm token delete --kubeconfig "$ADMIN_CONF" "$id" >/dev/null || return 1
        log "deleted bootstrap token $id (join $worker)"
    done <<<"$listing"
}
