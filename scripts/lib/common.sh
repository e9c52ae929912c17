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

# The kinds of setting many scripts take, each with its one pattern and wording.
require_node_name() { require_match "$1" "$2" "$NODE_NAME_RE" "a lower-case DNS name"; }
require_kube_version() { require_match "$1" "$2" "$KUBE_VERSION_RE" "a Kubernetes version such as v1.37.2"; }
require_seconds() { require_match "$1" "$2" '^[1-9][0-9]*$' "a positive number of seconds"; }

# --- apt, on a node where apt-daily and unattended-upgrades run apt too (prepare-node, upgrades) ---

# Tuning (tests shrink them): how long to wait for another apt run, how often to look, and how many
# times to retry other failures.
APT_LOCK_WAIT_SECONDS="${APT_LOCK_WAIT_SECONDS:-600}"
APT_LOCK_POLL_SECONDS="${APT_LOCK_POLL_SECONDS:-10}"
APT_RETRY_ATTEMPTS="${APT_RETRY_ATTEMPTS:-8}"

# require_apt_settings: a script that calls apt_get validates the tuning with its other settings.
require_apt_settings() {
    require_match APT_LOCK_WAIT_SECONDS "$APT_LOCK_WAIT_SECONDS" '^[0-9]+$' "a whole number of seconds"
    require_match APT_LOCK_POLL_SECONDS "$APT_LOCK_POLL_SECONDS" '^[1-9][0-9]*$' "a positive whole number of seconds"
    require_match APT_RETRY_ATTEMPTS "$APT_RETRY_ATTEMPTS" '^[1-9][0-9]*$' "a positive whole number"
}

# Right after boot apt-daily.service and apt-daily-upgrade.service (unattended-upgrades) run apt.
# A transient unit ordered after both starts only once neither has a start job running, so waiting
# for it waits for them. Bounded: past the bound each apt call still waits for apt's locks.
wait_for_apt_timers() {
    if ! command -v systemd-run >/dev/null 2>&1; then
        log "no systemd-run here; not waiting for the apt timers (apt calls still wait for apt's locks)"
        return 0
    fi
    log "waiting for apt-daily.service and apt-daily-upgrade.service to finish (at most ${APT_LOCK_WAIT_SECONDS}s)"
    local rc=0
    timeout "$APT_LOCK_WAIT_SECONDS" systemd-run --quiet --wait --collect \
        --property=After=apt-daily.service --property=After=apt-daily-upgrade.service /bin/true >&2 || rc=$?
    case "$rc" in
        0) ;;
        124) warn "the apt timers' services were still running after ${APT_LOCK_WAIT_SECONDS}s; going on, apt calls wait for apt's locks" ;;
        *) warn "'systemd-run --wait' failed with exit code $rc; going on, apt calls wait for apt's locks" ;;
    esac
}

APT_TIMERS_WAITED=0
APT_DEADLINE=0

# Every apt-get call first waits (once) for the apt timers, then waits while another process holds
# one of apt's locks, for at most APT_LOCK_WAIT_SECONDS: DPkg::Lock::Timeout covers only dpkg's
# locks, and `apt-get update` and `install` take the lists and archives locks without waiting
# (exit 100 at once). Other failures (a mirror mid-sync, a repository hiccup) are retried
# APT_RETRY_ATTEMPTS times, with retry's backoff: about 2.5 minutes for the default 8.
apt_get() {
    if ((!APT_TIMERS_WAITED)); then
        wait_for_apt_timers
        APT_TIMERS_WAITED=1
    fi
    APT_DEADLINE=$((SECONDS + APT_LOCK_WAIT_SECONDS))
    RETRY_ATTEMPTS="$APT_RETRY_ATTEMPTS" retry apt_get_waiting "$@"
}

apt_get_waiting() {
    local rc errors="$WORK/apt-errors" lock
    while true; do
        rc=0
        # English messages, so that the lock message below can be recognised; no prompts; and Ubuntu's
        # needrestart hook must not restart services in the middle of provisioning or an upgrade.
        LC_ALL=C DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
            apt-get -q -o DPkg::Lock::Timeout="$APT_LOCK_WAIT_SECONDS" "$@" >&2 2>"$errors" || rc=$?
        cat "$errors" >&2
        ((rc)) || return 0
        lock="$(grep -m 1 -oE '(Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock) .*' "$errors")" ||
            return "$rc"
        if ((SECONDS >= APT_DEADLINE)); then
            die "apt was still locked after ${APT_LOCK_WAIT_SECONDS}s ($lock): another apt run (apt-daily, unattended-upgrades or Google's OS Config agent) has not finished. On the node, 'ps -ef | grep -E \"apt|dpkg|unattended\"' shows it; wait for it to end, then run 'pulumi up' again"
        fi
        log "apt is busy ($lock); trying again in ${APT_LOCK_POLL_SECONDS}s, for at most ${APT_LOCK_WAIT_SECONDS}s"
        sleep "$APT_LOCK_POLL_SECONDS"
    done
}

# apt_install PACKAGE...: installs, keeping configuration files changed on the node.
apt_install() {
    apt_get install -y \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# --- Kubernetes packages and versions (prepare-node.sh and the upgrade scripts) ---

K8S_KEYRING="/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
K8S_SOURCE="/etc/apt/sources.list.d/kubernetes.list"
KUBE_VERSION_RE='^v1\.[0-9]+\.[0-9]+$'
# A Kubernetes object's uid (the cluster's UID is the kube-system namespace's).
UID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
# Set on a node drained by the upgrade scripts (value: the version it is drained for), so only a node
# they cordoned is uncordoned by them, also when a run is resumed after a failure.
UPGRADE_DRAIN_ANNOTATION="kubeadm-gcp/drained-for-upgrade"

# use_kubernetes_minor MINOR: points the pkgs.k8s.io apt source at MINOR (e.g. 1.37), fetching that
# repository's key when the source changes. Returns 0 when it changed something, 1 when already set.
use_kubernetes_minor() {
    local url="https://pkgs.k8s.io/core:/stable:/v$1/deb/"
    printf 'deb [signed-by=%s] %s /\n' "$K8S_KEYRING" "$url" >"$WORK/kubernetes.list"
    if [[ -s "$ROOT$K8S_KEYRING" ]] && cmp -s "$WORK/kubernetes.list" "$ROOT$K8S_SOURCE"; then
        return 1
    fi
    log "fetching the apt key of $url"
    retry curl -fsSL "${url}Release.key" -o "$WORK/Release.key" || die "could not download ${url}Release.key"
    gpg --batch --yes --dearmor -o "$WORK/kubernetes-apt-keyring.gpg" "$WORK/Release.key"
    update_file "$ROOT$K8S_KEYRING" 0644 "$WORK/kubernetes-apt-keyring.gpg" || true
    update_file "$ROOT$K8S_SOURCE" 0644 "$WORK/kubernetes.list" || true
    log "apt source now points at Kubernetes v$1"
    return 0
}

# kube_deb_version VERSION: the Debian version of kubeadm for VERSION (v1.37.2 -> 1.37.2-1.1) offered
# by the configured source, or, for a minor (1.37), that of its newest patch. Fails when none.
kube_deb_version() {
    local want="${1#v}" listing
    listing="$(apt-cache madison kubeadm)" || return 1
    # madison prints "kubeadm | 1.37.2-1.1 | https://pkgs.k8s.io/... Packages", one line per version.
    awk -F'|' -v want="$want" '
        { v = $2; gsub(/[[:space:]]/, "", v); up = v; sub(/-.*/, "", up) }
        want ~ /^[0-9]+\.[0-9]+$/ {
            if (index(up, want ".") == 1) { p = substr(up, length(want) + 2) + 0; if (best == "" || p > bestp) { best = v; bestp = p } }
            next
        }
        up == want && best == "" { best = v }
        END { if (best == "") exit 1; print best }' <<<"$listing"
}

# installed_version PACKAGE: the upstream version of an installed package as v1.X.Y, empty when absent.
installed_version() {
    local version
    # shellcheck disable=SC2016 # ${Version} is a dpkg-query format field
    version="$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null)" || return 0
    printf 'v%s\n' "${version%%-*}"
}

# install_kube_packages DEB_VERSION PACKAGE...: installs exactly DEB_VERSION of each PACKAGE and keeps
# them held. --allow-change-held-packages (kubeadm's upgrade docs give it as the alternative to
# unhold/install/hold) leaves the hold in place even when the install fails half-way.
install_kube_packages() {
    local deb="$1" pkg args=()
    shift
    for pkg in "$@"; do
        args+=("$pkg=$deb")
    done
    log "installing ${args[*]}"
    apt_install --allow-change-held-packages "${args[@]}"
    apt-mark hold "$@" >&2
}

# Written before the kubelet's package is upgraded and removed once the kubelet has restarted: the
# package leaves the running kubelet alone, so a run killed in between must restart it on the next
# run, which sees the package already upgraded.
KUBELET_RESTART_PENDING="$ROOT/var/lib/kubeadm-gcp/kubelet-restart-pending"

# upgrade_kubelet_packages DEB: installs kubelet and kubectl of DEB, then restarts the kubelet.
upgrade_kubelet_packages() {
    mkdir -p "$(dirname "$KUBELET_RESTART_PENDING")"
    printf '%s\n' "$1" >"$KUBELET_RESTART_PENDING"
    install_kube_packages "$1" kubelet kubectl
    restart_kubelet_if_pending
}

# restart_kubelet_if_pending: restarts the kubelet when its package was upgraded without a restart since.
restart_kubelet_if_pending() {
    [[ -f $KUBELET_RESTART_PENDING ]] || return 0
    systemctl daemon-reload
    log "restarting the kubelet (its package was upgraded to $(cat "$KUBELET_RESTART_PENDING"))"
    systemctl restart kubelet
    rm -f "$KUBELET_RESTART_PENDING"
}

# minor_of VERSION: 37 for v1.37.2 or 1.37.
minor_of() {
    local v="${1#v}"
    v="${v#1.}"
    printf '%s\n' "${v%%.*}"
}

# version_cmp A B: prints -1, 0 or 1 as v1.A.B compares with v1.C.D (both of the form v1.X.Y).
version_cmp() {
    local a="${1#v1.}" b="${2#v1.}"
    local am="${a%%.*}" ap="${a#*.}" bm="${b%%.*}" bp="${b#*.}"
    if ((am != bm)); then
        ((am < bm)) && echo -1 || echo 1
    elif ((ap != bp)); then
        ((ap < bp)) && echo -1 || echo 1
    else
        echo 0
    fi
}

# cluster_version: the API server's version (serverVersion.gitVersion of `kubectl version`), e.g. v1.36.3.
cluster_version() {
    local json version
    json="$(retry kubectl_admin version -o json)" || die "the API server does not answer 'kubectl version' (check 'crictl ps -a' and 'journalctl -u kubelet' on the control plane)"
    version="$(sed -n '/"serverVersion"/,/}/s/^[[:space:]]*"gitVersion":[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$json" | head -n 1)"
    [[ $version =~ $KUBE_VERSION_RE ]] || die "could not read the cluster's version from 'kubectl version -o json' (got '${version}')"
    printf '%s\n' "$version"
}

# node_kubelet_version NODE: the kubelet version NODE reports (status.nodeInfo.kubeletVersion).
node_kubelet_version() {
    retry kubectl_admin get node "$1" -o 'jsonpath={.status.nodeInfo.kubeletVersion}'
}

# The kubelet's static Pod manifests, and where renew-certs.sh parks one while the kubelet stops its
# Pod (outside staticPodPath, on the same filesystem: a rename, never a half-written file).
MANIFESTS="$ROOT/etc/kubernetes/manifests"
PARKED_MANIFESTS="$ROOT/etc/kubernetes/manifests-parked-for-restart"

# restore_parked_manifests: puts back every manifest an interrupted renew-certs.sh left parked, so no
# control-plane component stays stopped (every step that needs the API server calls it first). True
# when it put one back.
restore_parked_manifests() {
    local file restored=1
    [[ -d $PARKED_MANIFESTS ]] || return 1
    mkdir -p "$MANIFESTS"
    for file in "$PARKED_MANIFESTS"/*.yaml; do
        [[ -e $file ]] || continue
        log "putting back $(basename "$file"), parked by an interrupted certificate renewal"
        mv -f "$file" "$MANIFESTS/"
        restored=0
    done
    rm -rf "$PARKED_MANIFESTS"
    return "$restored"
}

# upgrade_marker NODE: the version NODE's upgrade annotation names, empty when the upgrade did not cordon it.
upgrade_marker() {
    retry kubectl_admin get node "$1" -o "jsonpath={.metadata.annotations.${UPGRADE_DRAIN_ANNOTATION}}" || die "could not read node $1"
}

# drain_for_upgrade NODE VERSION TIMEOUT [KUBECTL_DRAIN_FLAG...]: cordons and drains NODE through the
# eviction API, so PodDisruptionBudgets are respected: a drain they block fails after TIMEOUT seconds
# instead of forcing pods off (extra flags, such as --disable-eviction, change that). The annotation records that the upgrade, not a person, cordoned the node; a node
# that is already cordoned without it was cordoned by hand, is drained all the same, and is left
# cordoned afterwards (wait_node_upgraded uncordons only annotated nodes).
drain_for_upgrade() {
    local node="$1" version="$2" timeout="$3" unschedulable marker
    unschedulable="$(retry kubectl_admin get node "$node" -o 'jsonpath={.spec.unschedulable}')" || die "could not read node $node"
    marker="$(upgrade_marker "$node")"
    if [[ $unschedulable == true && -z $marker ]]; then
        log "$node was cordoned by hand: draining it for the upgrade; it stays cordoned afterwards ('kubectl uncordon $node' when you are done with it)"
    else
        retry kubectl_admin annotate node "$node" --overwrite "$UPGRADE_DRAIN_ANNOTATION=$version" >&2 ||
            die "could not annotate node $node"
    fi
    if (($# > 3)); then
        log "draining $node (${*:4}, at most ${timeout}s)"
    else
        log "draining $node (PodDisruptionBudgets respected, at most ${timeout}s)"
    fi
    kubectl_admin drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout="${timeout}s" "${@:4}" >&2 ||
        die "draining $node did not finish within ${timeout}s (a PodDisruptionBudget may allow no disruption: 'kubectl get pdb -A'); $node stays cordoned, re-run 'pulumi up' once pods can move, or 'kubectl uncordon $node' to give up"
}

# wait_node_upgraded NODE VERSION TIMEOUT: waits until NODE's kubelet reports VERSION and NODE is Ready,
# then uncordons it if drain_for_upgrade cordoned it.
wait_node_upgraded() {
    local node="$1" version="$2" timeout="$3" deadline reported marker
    deadline=$((SECONDS + timeout))
    while reported="$(node_kubelet_version "$node")"; [[ $reported != "$version" ]]; do
        ((SECONDS < deadline)) || die "node $node reports kubelet ${reported:-<nothing>} after ${timeout}s, expected $version (check 'journalctl -u kubelet' on $node)"
        sleep "${POLL_INTERVAL_SECONDS:-5}"
    done
    kubectl_admin wait --for=condition=Ready "node/$node" --timeout="$((deadline - SECONDS > 1 ? deadline - SECONDS : 1))s" >&2 ||
        die "node $node runs kubelet $version but is not Ready (check 'kubectl describe node $node' and 'journalctl -u kubelet' on it)"
    marker="$(upgrade_marker "$node")"
    if [[ -n $marker ]]; then
        log "uncordoning $node"
        retry kubectl_admin uncordon "$node" >&2 || die "could not uncordon $node"
        retry kubectl_admin annotate node "$node" "$UPGRADE_DRAIN_ANNOTATION-" >&2 || die "could not remove the annotation $UPGRADE_DRAIN_ANNOTATION from $node"
    fi
    log "node $node runs kubelet $version and is Ready"
}

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
