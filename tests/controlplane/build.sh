#!/usr/bin/env bash
# Builds the real upstream binaries the control-plane test tier runs, from the Go module proxy, and
# caches them outside the repository keyed by version:
#
#   $KUBEADM_GCP_BIN_CACHE (default ~/.cache/kubeadm-gcp/bin)/
#     kubernetes-v1.36.3/{kube-apiserver,kube-controller-manager,kube-scheduler,kubeadm,kubectl} (one per version)
#     etcd-v3.6.8/{etcd,etcdctl,etcdutl}
#     metallb-v0.16.1/controller
#     controller-tools-v0.19.0/controller-gen
#     containerd-v2.4.2/containerd
#     kwok-v0.8.0/kwok, and stages/ (the module's kustomize/stage, whose YAML kwok needs to run)
#
# Usage: build.sh "KUBERNETES_VERSION..." ETCD_VERSION METALLB_VERSION CONTROLLER_TOOLS_VERSION CONTAINERD_VERSION KWOK_VERSION
# (KUBERNETES_VERSION...: one or more, space-separated, e.g. "v1.36.3 v1.37.2")
# (the test harness passes the versions pinned in components/versions.ts and tests/controlplane/versions.ts).
# Prints the cache directory on stdout. A second run with the same versions is a no-op.
#
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with paths
# inside its own tree, so `go install k8s.io/kubernetes/cmd/...@vX` is refused. A throwaway wrapper
# module requires k8s.io/kubernetes vX and replaces each staging module with its published v0.X
# version, which is the same source.
set -euo pipefail

log() { printf 'controlplane/build.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[ "$#" -eq 6 ] || die "usage: build.sh \"KUBERNETES_VERSION...\" ETCD_VERSION METALLB_VERSION CONTROLLER_TOOLS_VERSION CONTAINERD_VERSION KWOK_VERSION"
read -r -a k8s_versions <<<"$1"
etcd_version="$2" metallb_version="$3" controller_tools_version="$4" containerd_version="$5" kwok_version="$6"
((${#k8s_versions[@]})) || die "no Kubernetes version given"
for k8s_version in "${k8s_versions[@]}"; do
	[[ "$k8s_version" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || die "Kubernetes version '$k8s_version' is not of the form v1.N.P"
done
[[ "$kwok_version" =~ ^v0\.[0-9]+\.[0-9]+$ ]] || die "kwok version '$kwok_version' is not of the form v0.N.P"
[[ "$etcd_version" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "etcd version '$etcd_version' is not of the form v3.N.P"
[[ "$metallb_version" =~ ^v0\.[0-9]+\.[0-9]+$ ]] || die "MetalLB version '$metallb_version' is not of the form v0.N.P"
[[ "$containerd_version" =~ ^v2\.[0-9]+\.[0-9]+$ ]] || die "containerd version '$containerd_version' is not of the form v2.N.P"
[[ "$controller_tools_version" =~ ^v0\.[0-9]+\.[0-9]+$ ]] || die "controller-tools version '$controller_tools_version' is not of the form v0.N.P"

command -v go >/dev/null 2>&1 || die "Go is required to build the control-plane test tier (kube-apiserver, etcd, kubeadm, MetalLB): install Go 1.25+ (https://go.dev/doc/install, or apt-get install golang-go)"

cache="${KUBEADM_GCP_BIN_CACHE:-$HOME/.cache/kubeadm-gcp/bin}"
mkdir -p "$cache"
# One build at a time per cache (two test runs may start together).
exec 9>"$cache/.lock"
flock 9
# A change to this recipe rebuilds (mostly relinks, from Go's build cache) instead of reusing old builds.
recipe="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

# built DIR FILE: true when DIR holds FILE from this recipe.
built() { [ -x "$1/$2" ] && [ "$(cat "$1/.recipe" 2>/dev/null)" = "$recipe" ]; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# build_into DIR MODULE_DIR LDFLAGS PACKAGE...: go build each package into DIR/<last path element>,
# then mark DIR complete. Half-built directories are never taken as done.
build_into() {
	local dir="$1" module_dir="$2" ldflags="$3"
	shift 3
	local tmp="$dir.tmp.$$" pkg
	rm -rf "$tmp"
	mkdir -p "$tmp"
	for pkg in "$@"; do
		log "building $pkg"
		(cd "$module_dir" && go build -trimpath -ldflags="-s -w $ldflags" -o "$tmp/$(basename "$pkg")" "$pkg")
	done
	printf '%s\n' "$recipe" >"$tmp/.recipe"
	rm -rf "$dir"
	mv "$tmp" "$dir"
}

wrapper_dir() {
	local dir
	dir="$(mktemp -d)"
	printf '%s\n' "$dir"
}

# build_kubernetes VERSION: kube-apiserver, kube-controller-manager, kube-scheduler, kubeadm and kubectl.
build_kubernetes() {
	local k8s_version="$1" k8s_dir w staging_version mod_file minor version_flags pkg
	k8s_dir="$cache/kubernetes-$k8s_version"
	built "$k8s_dir" kubectl && return 0
	log "building Kubernetes $k8s_version (first time: about 10 minutes on 2 cores)"
	w="$(wrapper_dir)"
	staging_version="v0.${k8s_version#v1.}"
	{
		printf 'module kubeadmgcp.test/kubernetes\n\ngo 1.25\n\nrequire k8s.io/kubernetes %s\n\n' "$k8s_version"
		# Every staging module k8s.io/kubernetes replaces with a local path, at its published version.
		go mod download -json "k8s.io/kubernetes@$k8s_version" >"$w/dl.json"
		mod_file="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' "$w/dl.json")"
		[ -f "$mod_file" ] || die "could not download k8s.io/kubernetes@$k8s_version from the Go module proxy"
		awk -v v="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "replace " $1 " => " $1 " " v }' "$mod_file"
	} >"$w/go.mod.new"
	mv "$w/go.mod.new" "$w/go.mod"
	rm -f "$w/dl.json"
	printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n)\n' >"$w/tools.go"
	(cd "$w" && go mod tidy >&2)
	# The version stamp Kubernetes' own build sets (hack/lib/version.sh): kubeadm refuses to manage a
	# control plane newer than itself, and kubectl and the API server report it.
	minor="${k8s_version#v1.}"
	minor="${minor%%.*}"
	version_flags=""
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	build_into "$k8s_dir" "$w" "$version_flags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl
	rm -rf "$w"
}
for k8s_version in "${k8s_versions[@]}"; do
	build_kubernetes "$k8s_version"
done

etcd_dir="$cache/etcd-$etcd_version"
if ! built "$etcd_dir" etcd || ! built "$etcd_dir" etcdutl; then
	log "building etcd $etcd_version"
	w="$(wrapper_dir)"
	# etcd's server module needs its sibling modules at the same version.
	printf 'module kubeadmgcp.test/etcd\n\ngo 1.25\n\nrequire (\n' >"$w/go.mod"
	for m in server/v3 api/v3 client/pkg/v3 client/v3 pkg/v3; do
		printf '\tgo.etcd.io/etcd/%s %s\n' "$m" "$etcd_version" >>"$w/go.mod"
	done
	# etcdctl and etcdutl too: etcd-backup.sh saves snapshots with the one and restores them with the other.
	printf '\tgo.etcd.io/etcd/%s %s\n' etcdctl/v3 "$etcd_version" etcdutl/v3 "$etcd_version" >>"$w/go.mod"
	printf ')\n' >>"$w/go.mod"
	printf 'package tools\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3/etcdmain"\n\t_ "go.etcd.io/etcd/etcdctl/v3/ctlv3"\n\t_ "go.etcd.io/etcd/etcdutl/v3/etcdutl"\n)\n' >"$w/tools.go"
	(cd "$w" && go mod tidy >&2)
	# Each main package is named v3 after its module path: build them one by one and rename.
	tmp="$etcd_dir.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	for pair in server/v3:etcd etcdctl/v3:etcdctl etcdutl/v3:etcdutl; do
		log "building go.etcd.io/etcd/${pair%%:*}"
		(cd "$w" && go build -trimpath -ldflags="-s -w" -o "$tmp/${pair##*:}" "go.etcd.io/etcd/${pair%%:*}")
	done
	printf '%s\n' "$recipe" >"$tmp/.recipe"
	rm -rf "$etcd_dir"
	mv "$tmp" "$etcd_dir"
	rm -rf "$w"
fi

metallb_dir="$cache/metallb-$metallb_version"
if ! built "$metallb_dir" controller; then
	log "building MetalLB's controller $metallb_version"
	w="$(wrapper_dir)"
	printf 'module kubeadmgcp.test/metallb\n\ngo 1.25\n\nrequire go.universe.tf/metallb %s\n' "$metallb_version" >"$w/go.mod"
	printf 'package tools\n\nimport (\n\t_ "go.universe.tf/metallb/api/v1beta1"\n)\n' >"$w/tools.go"
	(cd "$w" && go mod tidy >&2)
	build_into "$metallb_dir" "$w" "" go.universe.tf/metallb/controller
	# controller-gen reads the API types from the module's source, kept beside the binary.
	src="$(cd "$w" && go list -m -f '{{.Dir}}' go.universe.tf/metallb)"
	ln -sfn "$src" "$metallb_dir/source"
	rm -rf "$w"
fi

gen_dir="$cache/controller-tools-$controller_tools_version"
if ! built "$gen_dir" controller-gen; then
	log "building controller-gen $controller_tools_version"
	mkdir -p "$gen_dir.tmp.$$"
	GOBIN="$gen_dir.tmp.$$" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$controller_tools_version"
	printf '%s\n' "$recipe" >"$gen_dir.tmp.$$/.recipe"
	rm -rf "$gen_dir"
	mv "$gen_dir.tmp.$$" "$gen_dir"
fi

containerd_dir="$cache/containerd-$containerd_version"
if ! built "$containerd_dir" containerd; then
	log "building containerd $containerd_version"
	w="$(wrapper_dir)"
	printf 'module kubeadmgcp.test/containerd\n\ngo 1.25\n' >"$w/go.mod"
	printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/containerd/containerd/v2/cmd/containerd"\n' >"$w/tools.go"
	# `go get` of the command resolves its dependencies as containerd's own go.mod pins them
	# (`go mod tidy` would also pull test-only modules, whose old genproto clashes).
	(cd "$w" && go get "github.com/containerd/containerd/v2/cmd/containerd@$containerd_version" >&2)
	# CGO_ENABLED=0 leaves out the btrfs snapshotter only; the CRI tables prepare-node.sh edits are the same.
	build_into "$containerd_dir" "$w" "" github.com/containerd/containerd/v2/cmd/containerd
	rm -rf "$w"
fi

kwok_dir="$cache/kwok-$kwok_version"
if ! built "$kwok_dir" kwok; then
	log "building kwok $kwok_version"
	w="$(wrapper_dir)"
	printf 'module kubeadmgcp.test/kwok\n\ngo 1.26\n' >"$w/go.mod"
	printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' >"$w/tools.go"
	(cd "$w" && go get "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" >&2)
	build_into "$kwok_dir" "$w" "" sigs.k8s.io/kwok/cmd/kwok
	# kwok alone starts only with stages; kwokctl's defaults are the module's kustomize/stage YAML.
	src="$(cd "$w" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
	ln -sfn "$src/kustomize/stage" "$kwok_dir/stages"
	rm -rf "$w"
fi

printf '%s\n' "$cache"
