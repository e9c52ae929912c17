#!/usr/bin/env bash
# Go checks for app/: gofmt -l (must print nothing), go vet, go test, and one
# brief pass of the benchmarks (for correctness, not for a number).
#
# Finds a Go toolchain new enough for app/go.mod, installing one if needed:
#   1. `go` on PATH, else /usr/local/go/bin/go;
#   2. none at all: Debian's golang-go via apt-get (needs root);
#   3. too old: the toolchain named in go.mod from the Go module proxy
#      (module golang.org/toolchain) -- by GOTOOLCHAIN when the bootstrap go is
#      1.21 or newer, else by downloading the module with the old go.
set -euo pipefail

log() { printf 'go-test.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/app"

# Version wanted by go.mod: minimum from the `go` line, exact toolchain from
# the `toolchain` line (falling back to the minimum).
min_go="$(awk '$1 == "go" { print $2; exit }' go.mod)"
[ -n "$min_go" ] || die "no go directive in app/go.mod"
want_toolchain="$(awk '$1 == "toolchain" { print $2; exit }' go.mod)"
want_toolchain="${want_toolchain:-go$min_go}"

# version_ge A B: true when version A >= version B (e.g. 1.26.8 >= 1.25.0).
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

# go_version GO: the version of the go binary GO, e.g. 1.26.8 (1.19 for old
# Debian builds, whose `go env GOVERSION` also works).
# Runs outside app/ so that a newer go.mod cannot make it fail.
go_version() { (cd / && GOTOOLCHAIN=local "$1" env GOVERSION) | sed 's/^go//; s/[^0-9.].*$//'; }

# Candidates: go on PATH, then the usual tarball location.
candidates=()
if path_go="$(command -v go)"; then
	candidates+=("$path_go")
fi
if [ -x /usr/local/go/bin/go ]; then
	candidates+=(/usr/local/go/bin/go)
fi

go_bin=""
for c in "${candidates[@]+"${candidates[@]}"}"; do
	v="$(go_version "$c")"
	if version_ge "$v" "$min_go"; then
		go_bin="$c"
		break
	fi
	log "skipping $c: go $v is older than go.mod's go $min_go"
done

if [ -z "$go_bin" ] && [ "${#candidates[@]}" -eq 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "no go found; install Go $min_go or newer (https://go.dev/doc/install) or rerun as root"
	log "no go found: installing Debian's golang-go with apt-get as a bootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq golang-go >/dev/null
	path_go="$(command -v go)" || die "apt-get installed golang-go but go is not on PATH"
	candidates+=("$path_go")
	v="$(go_version "$path_go")"
	if version_ge "$v" "$min_go"; then
		go_bin="$path_go"
	fi
fi

if [ -z "$go_bin" ]; then
	boot="${candidates[0]}"
	boot_v="$(go_version "$boot")"
	if version_ge "$boot_v" 1.21; then
		# The go command switches toolchains itself, downloading the module
		# golang.org/toolchain from the Go module proxy.
		log "go $boot_v at $boot is too old: GOTOOLCHAIN=$want_toolchain fetches that toolchain from the Go module proxy"
		export GOTOOLCHAIN="$want_toolchain"
		go_bin="$boot"
	else
		# Go before 1.21 cannot switch toolchains: download the toolchain
		# module with it and unpack it the way the go command itself would.
		goos="$(cd / && "$boot" env GOOS)"
		goarch="$(cd / && "$boot" env GOARCH)"
		mod="golang.org/toolchain@v0.0.1-$want_toolchain.$goos-$goarch"
		log "go $boot_v at $boot cannot switch toolchains: downloading $mod from the Go module proxy"
		tmp="$(mktemp -d)"
		dir="$(cd "$tmp" && GOFLAGS=-modcacherw GO111MODULE=on "$boot" mod download -json "$mod" |
			sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
		rmdir "$tmp"
		if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
			die "download of $mod failed"
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
log "using $(go version) at $go_bin"

log "gofmt -l ."
unformatted="$("$(go env GOROOT)/bin/gofmt" -l .)"
if [ -n "$unformatted" ]; then
	die "gofmt needed on: $unformatted (run: gofmt -w app)"
fi

log "go vet ./..."
go vet ./...

# The race detector needs cgo and a C compiler.
test_flags=(-count=1)
if [ "$(go env CGO_ENABLED)" = 1 ] && command -v "$(go env CC)" >/dev/null 2>&1; then
	test_flags+=(-race)
else
	log "cgo or a C compiler is unavailable: running tests without -race"
fi
log "go test ${test_flags[*]} ./..."
go test "${test_flags[@]}" ./...

# 100 iterations each: the benchmarks check every answer they time, so this
# catches a broken benchmark or handler; the timings mean nothing here.
log "go test -run '^\$' -bench . -benchtime 100x ./..."
if ! bench_out="$(go test -run '^$' -bench . -benchtime 100x ./... 2>&1)"; then
	printf '%s\n' "$bench_out" >&2
	die "a benchmark failed (output above)"
fi
