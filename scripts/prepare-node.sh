#!/usr/bin/env bash
# prepare-node.sh: turns a fresh Ubuntu 24.04 VM into a Kubernetes node (every node, in parallel).
#
# Settings (environment):
#   K8S_MINOR           Kubernetes minor, e.g. 1.36: selects the pkgs.k8s.io repository.
#   K8S_VERSION         optional: the exact release of K8S_MINOR to install, e.g. v1.36.3 (the version the
#                       running control plane reports, so a node that joins never has a newer kubelet).
#                       Empty: the newest patch of K8S_MINOR (a new cluster's control plane).
#   CONTAINERD_VERSION  exact version of Docker's containerd.io package, e.g. 2.2.1-1~ubuntu.24.04~noble.
#   API_SERVER          optional: the cluster's API server as host:port (the control plane's internal
#                       address), and CLUSTER_CA_CERT its CA certificate (PEM; the stack's). When that API
#                       server answers, the node installs exactly the version it runs, whatever K8S_MINOR
#                       and K8S_VERSION say: they are what the last successful `pulumi up` recorded, stale
#                       after an `up` that failed once the control plane was upgraded. When it does not
#                       answer (a new cluster, a new control plane), K8S_MINOR and K8S_VERSION decide.
#   Tuning (tests shrink them): CLOUD_INIT_TIMEOUT_SECONDS (900), and apt's (lib/common.sh):
#   APT_LOCK_WAIT_SECONDS (600), APT_LOCK_POLL_SECONDS (10), APT_RETRY_ATTEMPTS (8).
#
# Waits for cloud-init, stops if ufw is active, disables swap, loads overlay/br_netfilter/vxlan
# (failing at once when the kernel lacks one), applies its own bridge/forwarding sysctl file, waits
# for the apt timers, installs containerd.io at exactly CONTAINERD_VERSION (systemd cgroup driver,
# verified), kubelet, kubeadm, kubectl (at exactly K8S_VERSION when set, verified) and cri-tools
# (held), writes /etc/crictl.yaml and enables the kubelet. Idempotent: on a provisioned node it
# changes no file, installs nothing and restarts nothing. Prints nothing on stdout.
set -euo pipefail
LOG_TAG=prepare-node
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${K8S_MINOR:?K8S_MINOR is required (Kubernetes minor version such as 1.36)}"
: "${CONTAINERD_VERSION:?CONTAINERD_VERSION is required (exact containerd.io package version such as 2.2.1-1~ubuntu.24.04~noble)}"
require_match K8S_MINOR "$K8S_MINOR" '^1\.[0-9]+$' "a Kubernetes minor such as 1.36"
K8S_VERSION="${K8S_VERSION:-}"
if [[ -n $K8S_VERSION ]]; then
    require_match K8S_VERSION "$K8S_VERSION" "$KUBE_VERSION_RE" "empty or an exact Kubernetes release such as v${K8S_MINOR}.3"
    [[ $K8S_VERSION == "v$K8S_MINOR."* ]] ||
        die "K8S_VERSION $K8S_VERSION is not a release of K8S_MINOR $K8S_MINOR: the node installs from the v$K8S_MINOR package repository, so pass the control plane's version once it runs $K8S_MINOR"
fi
require_match CONTAINERD_VERSION "$CONTAINERD_VERSION" '^2\.[0-9]+\.[0-9]+-[0-9]+~ubuntu\.[0-9]+\.[0-9]+~[a-z]+$' \
    "an exact containerd.io 2.x package version of Docker's repository such as 2.2.1-1~ubuntu.24.04~noble ('apt-cache madison containerd.io' lists them; Ubuntu's own containerd 1.7 is end-of-life)"
API_SERVER="${API_SERVER:-}"
CLUSTER_CA_CERT="${CLUSTER_CA_CERT:-}"
if [[ -n $API_SERVER ]]; then
    require_match API_SERVER "$API_SERVER" '^[a-z0-9.-]+:[0-9]+$' "empty or the API server as host:port, such as 10.10.0.2:6443"
    [[ $CLUSTER_CA_CERT == *"-----BEGIN CERTIFICATE-----"* ]] || die "CLUSTER_CA_CERT must be the cluster's CA certificate (PEM) when API_SERVER is set"
fi
require_apt_settings

CLOUD_INIT_TIMEOUT_SECONDS="${CLOUD_INIT_TIMEOUT_SECONDS:-900}"

DOCKER_REPO_URL="https://download.docker.com/linux/ubuntu"
DOCKER_KEYRING="/etc/apt/keyrings/docker.asc"
DOCKER_SOURCE="/etc/apt/sources.list.d/docker.sources"
CONTAINERD_CONFIG="/etc/containerd/config.toml"
RUNC_OPTIONS_TABLE="[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]"
PINNED_IMAGES_TABLE="[plugins.'io.containerd.cri.v1.images'.pinned_images]"
SYSCTL_FILE="/etc/sysctl.d/99-kubernetes.conf"
HELD_PACKAGES=(containerd.io kubelet kubeadm kubectl)
KUBE_PACKAGES=(kubelet kubeadm kubectl)
# overlay: containerd's snapshotter; br_netfilter: bridged pod traffic through iptables; vxlan:
# Flannel's VXLAN backend, which every pod-to-pod packet between nodes travels in.
KERNEL_MODULES=(overlay br_netfilter vxlan)

wait_for_cloud_init() {
    command -v cloud-init >/dev/null 2>&1 ||
        die "cloud-init is not installed: this script expects an Ubuntu cloud image, whose first boot it waits for"
    log "waiting for cloud-init to finish first boot (at most ${CLOUD_INIT_TIMEOUT_SECONDS}s)"
    local rc=0
    timeout "$CLOUD_INIT_TIMEOUT_SECONDS" cloud-init status --wait >&2 || rc=$?
    case "$rc" in
        0) log "cloud-init is done" ;;
        # 2: done with recoverable errors ("degraded"); 1: finished in error. Either way first boot
        # is over, which is all this script waits for.
        1 | 2) warn "cloud-init finished with exit code $rc (errors or warnings, see 'cloud-init status --long'); continuing" ;;
        124) die "cloud-init did not finish within ${CLOUD_INIT_TIMEOUT_SECONDS}s; see 'cloud-init status --long' and /var/log/cloud-init-output.log" ;;
        *) die "'cloud-init status --wait' failed with exit code $rc" ;;
    esac
}

# ufw's default policy drops forwarded traffic and every port it does not list: pod traffic, the
# kubelet, VXLAN. This stack filters traffic with VPC firewall rules (components/network.ts), so a
# second, host-level firewall is not opened port by port here; the user turns it off knowingly.
check_host_firewall() {
    command -v ufw >/dev/null 2>&1 || return 0
    local status
    status="$(ufw status 2>/dev/null | head -n 1)" || true
    if [[ $status == "Status: active" ]]; then
        die "ufw is active on this node: it would drop the cluster's traffic (forwarded pod traffic, the API server 6443/tcp, the kubelet 10250/tcp, Flannel's VXLAN 8472/udp). This stack's VPC firewall rules already filter traffic to the nodes. Run 'sudo ufw disable' on the node (or use an image without ufw enabled), then 'pulumi up' again"
    fi
}

disable_swap() {
    if [[ -n "$(swapon --show --noheadings 2>/dev/null || true)" ]]; then
        log "turning swap off"
        swapoff -a
    fi
    local fstab="$ROOT/etc/fstab"
    [[ -f $fstab ]] || return 0
    # Comment out active swap entries (third field "swap"); comments and other lines stay as they are.
    awk '!/^[[:space:]]*#/ && $3 == "swap" { print "#" $0; next } { print }' "$fstab" >"$WORK/fstab"
    if update_file "$fstab" 0644 "$WORK/fstab"; then
        log "commented out the swap entries of /etc/fstab"
    fi
}

# Loads the modules the node needs now and at every boot; a kernel without one fails here, in
# seconds, rather than as a node that never becomes Ready.
load_kernel_modules() {
    local module output
    printf '%s\n' "${KERNEL_MODULES[@]}" >"$WORK/modules"
    update_file "$ROOT/etc/modules-load.d/k8s.conf" 0644 "$WORK/modules" || true
    for module in "${KERNEL_MODULES[@]}"; do
        [[ -d "$ROOT/sys/module/$module" ]] && continue
        log "loading kernel module $module"
        # modprobe's exit status is the check: a module built into the kernel may have no /sys/module entry.
        if ! output="$(modprobe "$module" 2>&1)"; then
            die "this node's kernel cannot load the $module module${output:+ ($output)}, which Kubernetes here needs (vxlan: Flannel's VXLAN backend carries all pod traffic between nodes). Use a boot image whose kernel ships it, such as versions.osImage (Ubuntu 24.04 for GCE); 'modinfo $module' on the node shows whether it exists"
        fi
    done
}

# Applies only this project's sysctl file: `sysctl --system` would also re-apply every other file of
# the image and stop at the first unrelated bad key.
configure_sysctls() {
    local key value changed=0 apply=0
    local sysctls=(net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward)
    printf '%s = 1\n' "${sysctls[@]}" >"$WORK/sysctl"
    if update_file "$ROOT$SYSCTL_FILE" 0644 "$WORK/sysctl"; then
        changed=1
    fi
    for key in "${sysctls[@]}"; do
        [[ "$(sysctl -n "$key" 2>/dev/null || true)" == 1 ]] || apply=1
    done
    ((changed || apply)) || return 0
    log "applying $SYSCTL_FILE"
    sysctl -p "$ROOT$SYSCTL_FILE" >&2 || die "'sysctl -p $SYSCTL_FILE' failed (see its message above)"
    for key in "${sysctls[@]}"; do
        value="$(sysctl -n "$key" 2>/dev/null || true)"
        [[ $value == 1 ]] || die "$key is ${value:-unreadable} after applying $SYSCTL_FILE, expected 1"
    done
}

install_base_tools() {
    local missing=() pkg
    for pkg in ca-certificates curl gpg; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt_get update
        apt_install "${missing[@]}"
    fi
}

os_codename() {
    local codename
    codename="$(sed -n -E 's/^VERSION_CODENAME="?([a-z]+)"?$/\1/p' "$ROOT/etc/os-release" | head -n 1)"
    [[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release"
    printf '%s\n' "$codename"
}

# Sets REPOS_CHANGED=1 when a key or source file was written.
REPOS_CHANGED=0

configure_docker_repo() {
    local codename arch
    codename="$(os_codename)"
    arch="$(dpkg --print-architecture)"
    if [[ ! -s "$ROOT$DOCKER_KEYRING" ]]; then
        log "fetching Docker's apt key"
        retry curl -fsSL "$DOCKER_REPO_URL/gpg" -o "$WORK/docker.asc"
        if update_file "$ROOT$DOCKER_KEYRING" 0644 "$WORK/docker.asc"; then
            REPOS_CHANGED=1
        fi
    fi
    cat >"$WORK/docker.sources" <<EOF
Types: deb
URIs: $DOCKER_REPO_URL
Suites: $codename
Components: stable
Architectures: $arch
Signed-By: $DOCKER_KEYRING
EOF
    if update_file "$ROOT$DOCKER_SOURCE" 0644 "$WORK/docker.sources"; then
        REPOS_CHANGED=1
    fi
}

# follow_running_control_plane: when the cluster's API server answers, K8S_MINOR and K8S_VERSION become
# the version it runs. Its /version is public (kubeadm's system:public-info-viewer role); the stack's CA
# authenticates it. One short attempt: on a new cluster nothing answers yet, and the settings decide.
follow_running_control_plane() {
    [[ -n $API_SERVER ]] || return 0
    local json running
    printf '%s\n' "$CLUSTER_CA_CERT" >"$WORK/cluster-ca.crt"
    if ! json="$(curl -fsS --connect-timeout 5 --max-time 10 --cacert "$WORK/cluster-ca.crt" "https://$API_SERVER/version" 2>&1)"; then
        log "no API server answers at $API_SERVER (${json:-no reply}): a new cluster; installing ${K8S_VERSION:-the newest v$K8S_MINOR}"
        return 0
    fi
    running="$(sed -n 's/^[[:space:]]*"gitVersion":[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$json" | head -n 1)"
    [[ $running =~ $KUBE_VERSION_RE ]] || die "the API server at $API_SERVER answered /version without a Kubernetes version (got '${running}')"
    if [[ $running == "$K8S_VERSION" ]]; then
        log "the API server at $API_SERVER runs $running, as recorded"
    else
        log "the API server at $API_SERVER runs $running, not the recorded ${K8S_VERSION:-newest v$K8S_MINOR} (an earlier 'pulumi up' stopped after upgrading it): installing $running, never a kubelet newer than its API server"
    fi
    K8S_VERSION="$running"
    K8S_MINOR="1.$(minor_of "$running")"
}

configure_kubernetes_repo() {
    # A missing key, or a source for another minor, fetches this minor's key (lib/common.sh).
    if use_kubernetes_minor "$K8S_MINOR"; then
        REPOS_CHANGED=1
    fi
}

install_packages() {
    local missing=() pkg
    # Docker's containerd.io at exactly the pinned version: a repository that advertises a newer patch
    # before its .deb is published cannot break new nodes. It conflicts with and so replaces
    # Ubuntu's own containerd package, which is never installed.
    local codename installing_containerd=0
    codename="$(os_codename)"
    [[ $CONTAINERD_VERSION == *"~$codename" ]] ||
        die "CONTAINERD_VERSION $CONTAINERD_VERSION is built for another Ubuntu release than this node's ($codename): pick the ~$codename build from 'apt-cache madison containerd.io' for versions.containerdPackage"
    if ! pkg_installed containerd.io; then
        missing+=("containerd.io=$CONTAINERD_VERSION")
        installing_containerd=1
    fi
    # Exactly K8S_VERSION when set: "1.36.3-*" is apt's prefix match (pkgs.k8s.io names the package
    # 1.36.3-1.1), the form kubeadm's upgrade pages use.
    local installing_kube=()
    for pkg in "${KUBE_PACKAGES[@]}"; do
        pkg_installed "$pkg" && continue
        installing_kube+=("$pkg")
        missing+=("$pkg${K8S_VERSION:+=${K8S_VERSION#v}-*}")
    done
    # conntrack: kubeadm 1.31's preflight requires it and some 1.31 kubelet packages lost the dependency.
    for pkg in cri-tools conntrack; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ((REPOS_CHANGED || ${#missing[@]})); then
        apt_get update
    fi
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt_install "${missing[@]}" ||
            die "could not install ${missing[*]} (apt's message is above). If apt says a version was not found or a .deb returned 404: for containerd.io, Docker's repository no longer serves $CONTAINERD_VERSION (pick another from 'apt-cache madison containerd.io' for versions.containerdPackage)${K8S_VERSION:+; for kubeadm, kubelet or kubectl, pkgs.k8s.io has no $K8S_VERSION ('apt-cache madison kubeadm' lists what it has)}"
    fi

    local held to_hold=()
    held="$(apt-mark showhold)"
    for pkg in "${HELD_PACKAGES[@]}"; do
        grep -qxF "$pkg" <<<"$held" || to_hold+=("$pkg")
    done
    if ((${#to_hold[@]})); then
        apt-mark hold "${to_hold[@]}" >&2
    fi

    local version
    # shellcheck disable=SC2016 # ${Version} is a dpkg-query format field
    version="$(dpkg-query -W -f='${Version}' containerd.io)" || die "containerd.io is not installed after apt-get install"
    if [[ $version != "$CONTAINERD_VERSION" ]]; then
        ((installing_containerd)) &&
            die "apt installed containerd.io $version, not the pinned $CONTAINERD_VERSION"
        warn "containerd.io $version is installed, not the pinned $CONTAINERD_VERSION; upgrading a live node is a manual step (see docs/provisioning.md)"
    fi
    if [[ -n $K8S_VERSION ]]; then
        verify_kube_packages "${installing_kube[@]}"
    else
        # shellcheck disable=SC2016
        version="$(dpkg-query -W -f='${Version}' kubeadm)"
        [[ $version == "${K8S_MINOR}."* ]] ||
            warn "kubeadm $version is installed, not ${K8S_MINOR}.x; the apt source now points at v$K8S_MINOR, upgrade with kubeadm upgrade (see docs/provisioning.md)"
    fi
}

# verify_kube_packages [JUST_INSTALLED...]: kubeadm, kubelet and kubectl are K8S_VERSION. One this run
# installed at another version fails the run; one that was there before (a node prepared earlier) is
# left as it is with a warning, like containerd.io: moving a live node is upgrade-worker.sh's work.
verify_kube_packages() {
    local pkg version just_installed=" $* " exact=1
    for pkg in "${KUBE_PACKAGES[@]}"; do
        # shellcheck disable=SC2016 # ${Version} is a dpkg-query format field
        version="$(dpkg-query -W -f='${Version}' "$pkg")" || die "$pkg is not installed after apt-get install"
        [[ $version == "${K8S_VERSION#v}-"* ]] && continue
        exact=0
        [[ $just_installed == *" $pkg "* ]] &&
            die "apt installed $pkg $version, not $K8S_VERSION (K8S_VERSION, the control plane's version): a node joins with exactly the control plane's patch, never a newer kubelet"
        if [[ "$(version_cmp "$(installed_version "$pkg")" "$K8S_VERSION")" == 1 ]]; then
            warn "$pkg $version is installed, newer than K8S_VERSION $K8S_VERSION (the control plane's version): a kubelet must not be newer than its API server. Upgrade the control plane (docs/upgrading.md) or replace this node"
        else
            warn "$pkg $version is installed, not K8S_VERSION $K8S_VERSION; a live node is moved by the upgrade steps (docs/upgrading.md)"
        fi
    done
    ((!exact)) || log "kubeadm, kubelet and kubectl are $K8S_VERSION"
}

# toml_set FILE TABLE KEY VALUE [create|existing]: makes `KEY = VALUE` the first line of TABLE (a header
# such as [plugins.'a'.b]; quoting style and spacing in FILE do not matter) and drops any other KEY line
# of that table. When FILE lacks TABLE: "create" appends it, "existing" leaves FILE alone and returns 3.
toml_set() {
    local file="$1" table="$2" key="$3" value="$4" mode="${5:-create}"
    awk -v table="$table" -v key="$key" -v value="$value" -v mode="$mode" '
        function norm(s) { gsub(/[[:space:]]/, "", s); gsub(/"/, "\047", s); return s }
        BEGIN { want = norm(table) }
        /^[[:space:]]*\[/ {
            intable = (norm($0) == want)
            print
            if (intable) {
                found = 1
                match($0, /^[[:space:]]*/)
                print substr($0, 1, RLENGTH) "  " key " = " value
            }
            next
        }
        intable && $0 ~ ("^[[:space:]]*" key "[[:space:]]*=") { next }
        { print }
        END {
            if (!found) {
                if (mode != "create") exit 3
                print ""
                print table
                print "  " key " = " value
            }
        }' "$file" >"$file.new" || return $?
    mv -f "$file.new" "$file"
}

# toml_get TABLE KEY < FILE: prints the value of KEY in TABLE (nothing when absent).
toml_get() {
    awk -v table="$1" -v key="$2" '
        function norm(s) { gsub(/[[:space:]]/, "", s); gsub(/"/, "\047", s); return s }
        BEGIN { want = norm(table) }
        /^[[:space:]]*\[/ { intable = (norm($0) == want); next }
        intable && $0 ~ ("^[[:space:]]*" key "[[:space:]]*=") {
            sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); print; exit
        }'
}

# The pause image of the installed kubeadm (offline: the version is given explicitly).
kubeadm_pause_image() {
    local version images
    version="$(kubeadm version -o short)" || return 1
    images="$(kubeadm config images list --kubernetes-version "$version" 2>/dev/null)" || return 1
    grep -m 1 -E '/pause:' <<<"$images"
}

configure_containerd() {
    local config="$WORK/config.toml" pause changed=0
    containerd config default >"$config"
    # containerd 2.x (config version 3) reads the cgroup driver from this table; its default config
    # may not mention SystemdCgroup at all, so the key is set, not search-and-replaced.
    toml_set "$config" "$RUNC_OPTIONS_TABLE" SystemdCgroup true create
    if pause="$(kubeadm_pause_image)" && [[ -n $pause ]]; then
        toml_set "$config" "$PINNED_IMAGES_TABLE" sandbox "'$pause'" existing ||
            log "no $PINNED_IMAGES_TABLE in containerd's default config; keeping its sandbox image"
    else
        warn "could not list kubeadm's images; keeping containerd's default sandbox (pause) image"
    fi
    if update_file "$ROOT$CONTAINERD_CONFIG" 0644 "$config"; then
        changed=1
    fi

    # Fail unless containerd itself reads the systemd cgroup driver from the file (a kubelet on the
    # systemd driver with containerd on cgroupfs makes pods restart endlessly).
    local dump value
    dump="$(containerd --config "$ROOT$CONTAINERD_CONFIG" config dump)" ||
        die "'containerd config dump' failed: $CONTAINERD_CONFIG is not a valid containerd configuration"
    value="$(toml_get "$RUNC_OPTIONS_TABLE" SystemdCgroup <<<"$dump")"
    [[ $value == true ]] ||
        die "containerd does not use the systemd cgroup driver: 'containerd config dump' shows SystemdCgroup = ${value:-<unset>} in $RUNC_OPTIONS_TABLE, expected true (check $CONTAINERD_CONFIG)"
    log "containerd uses the systemd cgroup driver"

    if ((changed)); then
        log "restarting containerd to load the new configuration"
        systemctl restart containerd
    elif ! systemctl is-active --quiet containerd; then
        systemctl start containerd
    fi
    systemctl is-enabled --quiet containerd || systemctl enable containerd
}

configure_crictl() {
    cat >"$WORK/crictl.yaml" <<EOF
runtime-endpoint: $CRI_SOCKET
image-endpoint: $CRI_SOCKET
timeout: 30
EOF
    update_file "$ROOT/etc/crictl.yaml" 0644 "$WORK/crictl.yaml" || true
}

enable_kubelet() {
    # Until the node is initialised or joined, the kubelet restarts in a loop; that is expected.
    if ! systemctl is-enabled --quiet kubelet; then
        systemctl enable --now kubelet >&2
    fi
}

wait_for_cloud_init
check_host_firewall
disable_swap
load_kernel_modules
configure_sysctls
install_base_tools
configure_docker_repo
follow_running_control_plane
configure_kubernetes_repo
install_packages
configure_containerd
configure_crictl
enable_kubelet
log "node prepared: containerd.io $CONTAINERD_VERSION, Kubernetes ${K8S_VERSION:-v${K8S_MINOR}} packages"
