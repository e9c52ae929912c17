#!/usr/bin/env bash
# Go checks for app/: gofmt -l (must print nothing), go vet, go test, and one
# brief pass of the benchmarks (for correctness, not for a number).
#
# Finds or installs a Go toolchain new enough for app/go.mod first (ensure_go in tools/setup.sh).
set -euo pipefail

log() { printf 'go-test.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=tools/setup.sh
source "$root/tools/setup.sh"
ensure_go
cd "$root/app"

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
