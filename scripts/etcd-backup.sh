#!/usr/bin/env bash
# etcd-backup.sh: encrypted etcd snapshots in the stack's bucket, and the restore that brings a
# recreated control plane back as the same cluster (docs/backups.md). Control plane only.
#
# Modes (MODE, or the first argument, which wins):
#   install   (the `etcd-backups` step, after kubeadm init) installs the key, etcdctl/etcdutl, this
#             script as /usr/local/sbin/kubeadm-gcp-etcd-backup (with its settings) and a systemd
#             timer that runs `kubeadm-gcp-etcd-backup snapshot scheduled` every INTERVAL_MINUTES.
#   snapshot [REASON]  saves a snapshot of the running etcd, encrypts it and uploads it as
#             etcd/<cluster uid>/<UTC time>-<REASON>.snapshot; prints that name. Run by the timer,
#             and by upgrade-control-plane.sh before every upgrade.
#   restore   (the `etcd-restore` step, before kubeadm init) on a node without a cluster, fetches
#             the snapshot RESTORE_FROM names (or the newest of PREVIOUS_CLUSTER_UID's cluster),
#             decrypts it and restores it into /var/lib/etcd with etcdutl, so that kubeadm init
#             brings the cluster back. Prints the restored snapshot's name, or nothing when it
#             found nothing to restore (a new cluster).
#
# Settings (environment):
#   BACKUP_URL          gs://<bucket> (the stack's), or file:///<dir> (tests; a directory standing in for it).
#   ETCD_VERSION        the etcd release whose etcdctl/etcdutl run here, e.g. v3.6.8 (components/versions.ts).
#   INTERVAL_MINUTES    install: minutes between scheduled snapshots.
#   RESTORE_FROM        restore: "newest", "none" or a snapshot's object name (config etcdRestoreFrom).
#   PREVIOUS_CLUSTER_UID  restore: the UID of the cluster the stack had ("" before its first up).
#   NODE_NAME, ADVERTISE_ADDRESS  restore: the etcd member the restored data names (kubeadm's: the node
#                       name and https://<internal IP>:2380).
# STDIN (install, restore): the snapshots' key, 64 hex characters, from the stack's secret state.
#
# The key never appears in this script's text, a log line or an argument list: it lives in a root-only
# file that openssl reads (-pass file:). A snapshot is "kubeadm-gcp etcd snapshot v1 key-id=<id>"
# on one line, then the snapshot encrypted with AES-256-CBC (key derived with PBKDF2); etcd's own
# hash at the end of every snapshot, checked by etcdutl on restore, catches a changed ciphertext.
#
# Every step converges when re-run: files are written atomically, the restore writes into a scratch
# directory renamed into place only when complete, and a node whose etcd data or admin.conf exists
# is never restored over.
set -euo pipefail
LOG_TAG=etcd-backup
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

MODE="${1:-${MODE:-}}"
: "${BACKUP_URL:?BACKUP_URL is required (gs://<bucket> or file:///<dir>)}"
: "${ETCD_VERSION:?ETCD_VERSION is required (the etcd release of etcdctl/etcdutl, e.g. v3.6.8)}"
require_match BACKUP_URL "$BACKUP_URL" '^(gs://[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9]|file:///[^[:space:]]+)$' "gs://<bucket> or file:///<dir>"
require_match ETCD_VERSION "$ETCD_VERSION" '^v3\.[0-9]+\.[0-9]+$' "an etcd release such as v3.6.8"

KEY_FILE="$ROOT/etc/kubernetes/backup/etcd-backup.key"
TOOLS_DIR="$ROOT/opt/kubeadm-gcp/etcd-$ETCD_VERSION"
INSTALLED="$ROOT/usr/local/sbin/kubeadm-gcp-etcd-backup"
# Set while systemd has not read the units as written (a run killed in between leaves it).
RELOAD_PENDING="$ROOT/var/lib/kubeadm-gcp/etcd-backup-reload-pending"
UNIT_DIR="$ROOT/etc/systemd/system"
UNIT=kubeadm-gcp-etcd-backup
ETCD_DATA="$ROOT/var/lib/etcd"
ETCD_PKI="$ROOT/etc/kubernetes/pki/etcd"
# kubeadm's local etcd listens here; tests point it at their own.
ETCD_ENDPOINT="${ETCD_ENDPOINT:-https://127.0.0.1:2379}"
FORMAT_LINE="kubeadm-gcp etcd snapshot v1"
# Far more writes than a cluster makes between two snapshots (etcd's docs use the same figure).
REVISION_BUMP=1000000000
SNAPSHOT_RE='^etcd/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9]{8}T[0-9]{6}Z-[a-z0-9.-]+\.snapshot$'

# --- the key -------------------------------------------------------------------------------------

# read_key: the key on stdin into KEY_FILE (root only), unless it is there already.
read_key() {
    local key
    IFS= read -r key || [[ -n $key ]] || die "no key on stdin (the stack passes the snapshots' key as a secret)"
    [[ $key =~ ^[0-9a-f]{64}$ ]] || die "the data on stdin is not the snapshots' key (64 hex characters expected; the value is not shown)"
    (umask 077 && printf '%s\n' "$key" >"$WORK/key")
    mkdir -p "$(dirname "$KEY_FILE")" && chmod 0700 "$(dirname "$KEY_FILE")"
    update_file "$KEY_FILE" 0600 "$WORK/key" || true
}

# key_id [FILE]: a public fingerprint of a key (16 hex), to tell keys apart without showing them.
key_id() {
    { printf 'kubeadm-gcp etcd backup key id:'; tr -d '\n' <"${1:-$KEY_FILE}"; } | sha256sum | cut -c1-16
}

# --- etcdctl and etcdutl -------------------------------------------------------------------------

tools_installed() {
    [[ -x $TOOLS_DIR/etcdctl && -x $TOOLS_DIR/etcdutl ]] &&
        [[ "$("$TOOLS_DIR/etcdutl" version 2>/dev/null)" == *"${ETCD_VERSION#v}"* ]]
}

# install_etcd_tools: etcdctl and etcdutl of ETCD_VERSION from etcd's GitHub release, checked against
# the SHA256SUMS published with it (as k3s's install.sh checks its binaries). kubeadm's etcd image
# has no etcdutl, and etcdctl 3.6 no longer restores.
install_etcd_tools() {
    tools_installed && return 0
    local base="https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION"
    local tarball="etcd-$ETCD_VERSION-linux-amd64.tar.gz"
    log "downloading etcdctl and etcdutl $ETCD_VERSION"
    retry curl -fsSL "$base/$tarball" -o "$WORK/$tarball" || die "could not download $base/$tarball"
    retry curl -fsSL "$base/SHA256SUMS" -o "$WORK/SHA256SUMS" || die "could not download $base/SHA256SUMS"
    grep -E "[[:space:]]$tarball\$" "$WORK/SHA256SUMS" >"$WORK/sum" || die "$base/SHA256SUMS lists no $tarball"
    (cd "$WORK" && sha256sum -c --quiet sum >&2) || die "$tarball does not match its SHA256SUMS entry"
    mkdir -p "$WORK/etcd"
    tar -xzf "$WORK/$tarball" -C "$WORK/etcd" --strip-components=1 "etcd-$ETCD_VERSION-linux-amd64/etcdctl" "etcd-$ETCD_VERSION-linux-amd64/etcdutl" ||
        die "$tarball has no etcdctl/etcdutl"
    rm -rf "$TOOLS_DIR.tmp"
    mkdir -p "$TOOLS_DIR.tmp"
    cp "$WORK/etcd/etcdctl" "$WORK/etcd/etcdutl" "$TOOLS_DIR.tmp/"
    chmod 0755 "$TOOLS_DIR.tmp/etcdctl" "$TOOLS_DIR.tmp/etcdutl"
    rm -rf "$TOOLS_DIR"
    mv "$TOOLS_DIR.tmp" "$TOOLS_DIR"
    tools_installed || die "$TOOLS_DIR/etcdutl does not report version $ETCD_VERSION"
}

etcdctl_local() {
    local tls=()
    if [[ $ETCD_ENDPOINT == https://* ]]; then
        tls=(--cacert "$ETCD_PKI/ca.crt" --cert "$ETCD_PKI/healthcheck-client.crt" --key "$ETCD_PKI/healthcheck-client.key")
    fi
    "$TOOLS_DIR/etcdctl" --endpoints "$ETCD_ENDPOINT" "${tls[@]}" "$@"
}

# --- the bucket ----------------------------------------------------------------------------------

BUCKET="${BACKUP_URL#gs://}"
STORAGE_API="https://storage.googleapis.com"
# A bucket grant made moments before can take a minute to reach GCS: more patience than retry's default.
GCS_RETRY_ATTEMPTS="${GCS_RETRY_ATTEMPTS:-8}"

# gcs_auth: a header file with the VM service account's access token (never on a command line).
gcs_auth() {
    local token
    token="$(curl -fsS -H 'Metadata-Flavor: Google' \
        http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token)" ||
        return 1
    token="$(sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$token")"
    [[ -n $token ]] || return 1
    (umask 077 && printf 'Authorization: Bearer %s\n' "$token" >"$WORK/auth")
}

# gcs_authorized: the token's header file, fetched once a run (a token lives an hour).
gcs_authorized() {
    [[ -s $WORK/auth ]] || retry gcs_auth || die "could not get an access token from the metadata server"
}

# urlencode TEXT: percent-encodes all but unreserved characters (object names, page tokens).
urlencode() {
    local text="$1" out="" c i
    for ((i = 0; i < ${#text}; i++)); do
        c="${text:i:1}"
        case "$c" in
        [a-zA-Z0-9.~_-]) out+="$c" ;;
        *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

# gcs_upload FILE NAME: one attempt of the JSON API's simple upload (-T streams the file). A 412
# (the name exists: ifGenerationMatch=0) after an attempt whose answer was lost means it arrived.
gcs_upload() {
    local code
    code="$(curl -sS -o "$WORK/upload-response" -w '%{http_code}' -X POST -T "$1" -H "@$WORK/auth" \
        -H 'Content-Type: application/octet-stream' \
        "$STORAGE_API/upload/storage/v1/b/$BUCKET/o?uploadType=media&ifGenerationMatch=0&name=$(urlencode "$2")")" || return 1
    case "$code" in
    200) return 0 ;;
    412)
        log "$2 is in the bucket already (an earlier attempt's upload arrived)"
        return 0
        ;;
    *)
        log "uploading $2 answered HTTP $code: $(head -c 300 "$WORK/upload-response")"
        return 1
        ;;
    esac
}

# storage_put FILE NAME: uploads FILE as NAME; never replaces an object (ifGenerationMatch=0).
storage_put() {
    local file="$1" name="$2"
    case "$BACKUP_URL" in
    file://*)
        local target="${BACKUP_URL#file://}/$name"
        mkdir -p "$(dirname "$target")"
        cp "$file" "$target.part" && mv "$target.part" "$target"
        ;;
    gs://*)
        gcs_authorized
        RETRY_ATTEMPTS="$GCS_RETRY_ATTEMPTS" retry gcs_upload "$file" "$name"
        ;;
    esac
}

# storage_list PREFIX: the snapshot names under PREFIX, oldest first (names sort by time).
storage_list() {
    local prefix="$1"
    case "$BACKUP_URL" in
    file://*)
        local dir="${BACKUP_URL#file://}"
        [[ -d $dir ]] || return 0
        (cd "$dir" && find . -type f -name '*.snapshot' | sed 's#^\./##') | grep -E "$SNAPSHOT_RE" | grep -F "$prefix" | sort || true
        ;;
    gs://*)
        # Pages are collected in this shell (not a pipeline's subshell), so a failed request stops
        # the script instead of passing for an empty bucket.
        local page="" body
        : >"$WORK/names"
        gcs_authorized
        while :; do
            body="$(RETRY_ATTEMPTS="$GCS_RETRY_ATTEMPTS" retry curl -fsS -H "@$WORK/auth" \
                "$STORAGE_API/storage/v1/b/$BUCKET/o?prefix=$(urlencode "$prefix")&fields=items(name),nextPageToken${page:+&pageToken=$(urlencode "$page")}")" ||
                die "could not list $BACKUP_URL/$prefix"
            grep -o '"name": *"[^"]*"' <<<"$body" | sed 's/.*"\([^"]*\)"$/\1/' >>"$WORK/names" || true
            page="$(sed -n 's/.*"nextPageToken": *"\([^"]*\)".*/\1/p' <<<"$body")"
            [[ -n $page ]] || break
        done
        grep -E "$SNAPSHOT_RE" "$WORK/names" | sort || true
        ;;
    esac
}

# storage_get NAME FILE
storage_get() {
    local name="$1" file="$2"
    case "$BACKUP_URL" in
    file://*) cp "${BACKUP_URL#file://}/$name" "$file" ;;
    gs://*)
        gcs_authorized
        RETRY_ATTEMPTS="$GCS_RETRY_ATTEMPTS" retry curl -fsS -H "@$WORK/auth" -o "$file" "$STORAGE_API/storage/v1/b/$BUCKET/o/$(urlencode "$name")?alt=media"
        ;;
    esac
}

# --- encryption ----------------------------------------------------------------------------------

encrypt_snapshot() {
    local plain="$1" out="$2"
    printf '%s key-id=%s\n' "$FORMAT_LINE" "$(key_id)" >"$out"
    openssl enc -aes-256-cbc -pbkdf2 -md sha256 -salt -pass "file:$KEY_FILE" -in "$plain" >>"$out" ||
        die "openssl could not encrypt the snapshot"
}

# decrypt_snapshot NAME FILE OUT: refuses, naming both keys' ids, a snapshot written with another key.
decrypt_snapshot() {
    local name="$1" file="$2" out="$3" header written ours
    header="$(head -n 1 "$file" | tr -d '\r')"
    [[ $header == "$FORMAT_LINE key-id="* ]] || die "$name is not a kubeadm-gcp etcd snapshot (its first line is not '$FORMAT_LINE key-id=...')"
    written="${header##*key-id=}"
    ours="$(key_id)"
    [[ $written == "$ours" ]] ||
        die "$name was encrypted with another key (key id $written; this stack's key has id $ours): set etcdBackupKey to the key of the stack that wrote it (pulumi config set --secret etcdBackupKey ...), or restore another snapshot (docs/backups.md)"
    tail -c +"$((${#header} + 2))" "$file" | openssl enc -d -aes-256-cbc -pbkdf2 -md sha256 -pass "file:$KEY_FILE" -out "$out" 2>"$WORK/openssl.err" ||
        die "$name could not be decrypted with this stack's key (key id $ours): the file is damaged or was changed"
}

# --- modes ---------------------------------------------------------------------------------------

cluster_uid() {
    local uid
    uid="$(retry kubectl_admin get namespace kube-system -o 'jsonpath={.metadata.uid}')" || die "could not read the kube-system namespace's uid"
    [[ $uid =~ $UID_RE ]] || die "the kube-system namespace's uid is not a UUID (got '$uid')"
    printf '%s\n' "$uid"
}

take_snapshot() {
    local reason="${1:-manual}" uid name
    require_match REASON "$reason" '^[a-z0-9.-]+$' "lower-case letters, digits, dots and hyphens"
    [[ -s $KEY_FILE ]] || die "$KEY_FILE is missing: run the stack's etcd-backups step (pulumi up) first"
    require_admin_conf
    install_etcd_tools
    uid="$(cluster_uid)"
    name="etcd/$uid/$(date -u +%Y%m%dT%H%M%SZ)-$reason.snapshot"
    retry etcdctl_local snapshot save "$WORK/snapshot.db" >&2 || die "etcdctl snapshot save failed against $ETCD_ENDPOINT"
    encrypt_snapshot "$WORK/snapshot.db" "$WORK/snapshot.enc"
    storage_put "$WORK/snapshot.enc" "$name" || die "could not upload $name to $BACKUP_URL"
    log "saved $name ($(wc -c <"$WORK/snapshot.enc") bytes, encrypted) to $BACKUP_URL"
    printf '%s\n' "$name"
}

# choose_snapshot: the name to restore, or nothing.
choose_snapshot() {
    if [[ $RESTORE_FROM != newest ]]; then
        storage_list "$RESTORE_FROM" | grep -qxF "$RESTORE_FROM" ||
            die "etcdRestoreFrom names $RESTORE_FROM, which is not in $BACKUP_URL (docs/backups.md: listing the snapshots)"
        printf '%s\n' "$RESTORE_FROM"
        return 0
    fi
    storage_list "etcd/${PREVIOUS_CLUSTER_UID:+$PREVIOUS_CLUSTER_UID/}" | tail -n 1
}

restore() {
    : "${RESTORE_FROM:?RESTORE_FROM is required (newest, none or a snapshot name)}"
    : "${NODE_NAME:?NODE_NAME is required (the control plane node name)}"
    : "${ADVERTISE_ADDRESS:?ADVERTISE_ADDRESS is required (the control plane internal IP)}"
    PREVIOUS_CLUSTER_UID="${PREVIOUS_CLUSTER_UID:-}"
    [[ $RESTORE_FROM =~ ^(newest|none)$ || $RESTORE_FROM =~ $SNAPSHOT_RE ]] ||
        die "RESTORE_FROM must be newest, none or a snapshot name (etcd/<uid>/<time>-<reason>.snapshot), got '$RESTORE_FROM'"
    [[ -z $PREVIOUS_CLUSTER_UID || $PREVIOUS_CLUSTER_UID =~ $UID_RE ]] || die "PREVIOUS_CLUSTER_UID must be a UUID or empty, got '$PREVIOUS_CLUSTER_UID'"
    require_node_name NODE_NAME "$NODE_NAME"
    require_match ADVERTISE_ADDRESS "$ADVERTISE_ADDRESS" "$IPV4_RE" "an IPv4 address"
    read_key

    if [[ -f $ADMIN_CONF || -d $ETCD_DATA/member ]]; then
        log "this node already has a cluster (admin.conf or etcd data): nothing to restore"
        return 0
    fi
    if [[ $RESTORE_FROM == none ]]; then
        log "etcdRestoreFrom is none: kubeadm init starts a new, empty cluster"
        return 0
    fi
    local name
    name="$(choose_snapshot)"
    if [[ -z $name ]]; then
        [[ -z $PREVIOUS_CLUSTER_UID ]] || die "the control plane is being recreated and $BACKUP_URL holds no snapshot of cluster $PREVIOUS_CLUSTER_UID. A new cluster would be empty while the stack's state lists the app's objects as present. Restore another snapshot (etcdRestoreFrom), or start an empty cluster on purpose: npm run replace:control-plane (docs/backups.md)"
        log "no snapshot in $BACKUP_URL: kubeadm init starts a new cluster"
        return 0
    fi
    install_etcd_tools
    log "restoring $name from $BACKUP_URL"
    storage_get "$name" "$WORK/snapshot.enc" || die "could not download $name from $BACKUP_URL"
    decrypt_snapshot "$name" "$WORK/snapshot.enc" "$WORK/snapshot.db"
    rm -rf "$ETCD_DATA.restoring"
    # The workers' kubelets and kube-proxy watched the lost control plane and hold revisions newer than
    # the snapshot's. Moving the revision far past them and marking it compacted makes every watch
    # relist instead of skipping what it thinks it has seen (etcdutl snapshot_command.go:
    # --bump-revision, --mark-compacted).
    "$TOOLS_DIR/etcdutl" snapshot restore "$WORK/snapshot.db" --data-dir "$ETCD_DATA.restoring" \
        --name "$NODE_NAME" --initial-cluster "$NODE_NAME=https://$ADVERTISE_ADDRESS:2380" \
        --initial-advertise-peer-urls "https://$ADVERTISE_ADDRESS:2380" \
        --bump-revision "$REVISION_BUMP" --mark-compacted >&2 ||
        die "etcdutl could not restore $name (the snapshot's own hash does not match, or the disk is full); nothing was put in place"
    chmod 0700 "$ETCD_DATA.restoring"
    # An empty /var/lib/etcd (a package or a reset made it) gives way; one with data never reaches here.
    if [[ -d $ETCD_DATA ]]; then
        rmdir "$ETCD_DATA" || die "$ETCD_DATA is not empty; not restoring over it"
    fi
    mv "$ETCD_DATA.restoring" "$ETCD_DATA"
    log "restored $name into $ETCD_DATA: kubeadm init brings the cluster back as it was then"
    printf '%s\n' "$name"
}

install_schedule() {
    : "${INTERVAL_MINUTES:?INTERVAL_MINUTES is required (minutes between snapshots)}"
    require_match INTERVAL_MINUTES "$INTERVAL_MINUTES" '^[1-9][0-9]*$' "a positive number of minutes"
    read_key
    install_etcd_tools
    local changed=0
    update_file "$INSTALLED" 0700 "${BASH_SOURCE[0]}" && changed=1
    cat >"$WORK/$UNIT.service" <<EOF
[Unit]
Description=Encrypted etcd snapshot to $BACKUP_URL (kubeadm-gcp, docs/backups.md)
After=kubelet.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kubeadm-gcp-etcd-backup snapshot scheduled
Nice=10
IOSchedulingClass=idle
EOF
    cat >"$WORK/$UNIT.timer" <<EOF
[Unit]
Description=etcd snapshot every $INTERVAL_MINUTES minutes (kubeadm-gcp)

[Timer]
OnActiveSec=5min
OnBootSec=5min
OnUnitActiveSec=${INTERVAL_MINUTES}min
RandomizedDelaySec=60

[Install]
WantedBy=timers.target
EOF
    # The marker goes down before the units change and comes off once systemd has read them, so a
    # run killed in between leaves the reload to the next run, which finds the units already written.
    if ! cmp -s "$WORK/$UNIT.service" "$UNIT_DIR/$UNIT.service" || ! cmp -s "$WORK/$UNIT.timer" "$UNIT_DIR/$UNIT.timer"; then
        mkdir -p "$(dirname "$RELOAD_PENDING")"
        : >"$RELOAD_PENDING"
    fi
    update_file "$UNIT_DIR/$UNIT.service" 0644 "$WORK/$UNIT.service" || true
    update_file "$UNIT_DIR/$UNIT.timer" 0644 "$WORK/$UNIT.timer" || true
    if [[ -f $RELOAD_PENDING ]]; then
        changed=1
        systemctl daemon-reload
        systemctl restart "$UNIT.timer"
        rm -f "$RELOAD_PENDING"
    fi
    # Enabled, not only started: the schedule survives a reboot of the control plane.
    systemctl enable --now "$UNIT.timer" >&2
    log "snapshots every $INTERVAL_MINUTES minutes to $BACKUP_URL (key id $(key_id)); $( ((changed)) && echo "schedule installed" || echo "schedule unchanged")"
}

case "$MODE" in
install) install_schedule ;;
snapshot) take_snapshot "${2:-manual}" ;;
restore) restore ;;
*) die "unknown mode '$MODE' (expected install, snapshot [REASON] or restore)" ;;
esac
