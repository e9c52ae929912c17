#!/usr/bin/env bash
# pull-images.sh: pre-pulls container images so that initialising the control plane, joining the
# workers and starting the CNI do not wait on downloads (every node, after prepare-node.sh; the
# workers' pulls overlap kubeadm-init.sh on the control plane).
#
# Settings (environment):
#   KUBEADM_IMAGES  control-plane: every image `kubeadm config images pull` fetches for the installed
#                   kubeadm version; node: only kube-proxy and pause from that list (what a worker
#                   runs); none: no kubeadm image.
#   IMAGES          space-separated optional image references (may be empty), e.g. the app's image:
#                   they only warm the cache, so a failed pull is a warning, not an error.
#   MANIFEST_URLS   space-separated URLs of YAML manifests whose `image:` references are pulled
#                   (e.g. Flannel's kube-flannel.yml; may be empty).
#
# kubeadm's and the manifests' images are required: the node cannot work without them, so a pull
# that still fails after its retries fails the script. Images already present (`crictl inspecti`
# succeeds) are skipped; pulls are retried. Idempotent. Prints nothing on stdout.
set -euo pipefail
LOG_TAG=pull-images
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

: "${KUBEADM_IMAGES:?KUBEADM_IMAGES is required (control-plane, node or none)}"
IMAGES="${IMAGES:-}"
MANIFEST_URLS="${MANIFEST_URLS:-}"
case "$KUBEADM_IMAGES" in
    control-plane | node | none) ;;
    *) die "KUBEADM_IMAGES must be control-plane, node or none, got '$KUBEADM_IMAGES'" ;;
esac

PULLED=0
SKIPPED=0
NOT_PULLED=()

image_present() {
    crictl inspecti "$1" >/dev/null 2>&1
}

# pull_image IMAGE required|optional
pull_image() {
    local image="$1" need="$2"
    if image_present "$image"; then
        log "already present: $image"
        SKIPPED=$((SKIPPED + 1))
        return 0
    fi
    log "pulling $image"
    if retry crictl pull "$image" >&2; then
        PULLED=$((PULLED + 1))
    elif [[ $need == optional ]]; then
        warn "could not pull the optional image $image; continuing, the kubelet pulls it when a pod needs it (if the image is private or its name is wrong, pods using it will show ImagePullBackOff)"
        NOT_PULLED+=("$image")
    else
        die "could not pull $image, which this node needs (check the node's outbound access to its registry: 'crictl pull $image' on the node)"
    fi
}

# The images kubeadm uses for the installed kubeadm version (listing is offline with the version given).
kubeadm_images() {
    local version
    version="$(kubeadm version -o short)"
    kubeadm config images list --kubernetes-version "$version"
}

# Prints the image references of a YAML manifest, one per line.
manifest_images() {
    sed -n -E "s/^[[:space:]]*(-[[:space:]]+)?image:[[:space:]]*[\"']?([^\"'[:space:]#]+)[\"']?.*$/\2/p" "$1"
}

# Each image is pulled once; one queued as required stays required when IMAGES names it too.
declare -A SEEN=()
QUEUE=()
# queue_image IMAGE required|optional
queue_image() {
    [[ -n $1 ]] || return 0
    [[ -n ${SEEN[$1]:-} ]] && return 0
    SEEN[$1]=$2
    QUEUE+=("$1")
}

# control-plane: kubeadm pulls its own images (all of them, one call) unless every one is present.
pull_control_plane_images() {
    local version images image missing=0
    version="$(kubeadm version -o short)"
    images="$(kubeadm_images)"
    [[ -n $images ]] || die "kubeadm config images list named no image"
    while IFS= read -r image; do
        [[ -n $image ]] || continue
        SEEN[$image]=required
        image_present "$image" || missing=$((missing + 1))
    done <<<"$images"
    if ((missing)); then
        log "pulling the control-plane images of kubeadm $version ($missing missing)"
        retry kubeadm config images pull --kubernetes-version "$version" --cri-socket "$CRI_SOCKET" >&2 ||
            die "could not pull the control-plane images of kubeadm $version (check the node's outbound access to registry.k8s.io)"
    else
        log "the control-plane images of kubeadm $version are all present"
    fi
}

# node: a worker runs only kube-proxy and pause of kubeadm's images.
queue_node_images() {
    local images image
    images="$(kubeadm_images | grep -E '/(kube-proxy|pause):' || true)"
    [[ -n $images ]] || die "kubeadm config images list named no kube-proxy or pause image"
    while IFS= read -r image; do
        queue_image "$image" required
    done <<<"$images"
}

# queue_manifest_images URL INDEX: every image: reference of the manifest at URL (required).
queue_manifest_images() {
    local url="$1" manifest="$WORK/manifest-$2.yaml" image found=0
    log "reading images from $url"
    retry curl -fsSL "$url" -o "$manifest" || die "could not download $url"
    while IFS= read -r image; do
        queue_image "$image" required
        found=$((found + 1))
    done < <(manifest_images "$manifest")
    ((found)) || warn "no image: lines in $url"
}

main() {
    local manifest_urls extra_images url image index=0
    case "$KUBEADM_IMAGES" in
        control-plane) pull_control_plane_images ;;
        node) queue_node_images ;;
        none) ;;
    esac
    read -r -a manifest_urls <<<"$MANIFEST_URLS"
    for url in "${manifest_urls[@]}"; do
        index=$((index + 1))
        queue_manifest_images "$url" "$index"
    done
    read -r -a extra_images <<<"$IMAGES"
    for image in "${extra_images[@]}"; do
        queue_image "$image" optional
    done

    for image in "${QUEUE[@]}"; do
        pull_image "$image" "${SEEN[$image]}"
    done
    if ((${#NOT_PULLED[@]})); then
        log "done: $PULLED pulled, $SKIPPED already present, ${#NOT_PULLED[@]} optional not pulled (${NOT_PULLED[*]})"
    else
        log "done: $PULLED pulled, $SKIPPED already present"
    fi
}

main "$@"
