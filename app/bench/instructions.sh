#!/usr/bin/env bash
# User-space instructions per request of http-go and of the seed-style
# baseline, counted by valgrind's callgrind: deterministic to about 0.5%
# between runs, where wall-clock numbers on a shared machine move by a few
# percent. Kernel time and slow instructions (clock reads) are not weighted,
# so this checks bench.sh's CPU numbers; it does not replace them.
#
# For each server: start it under callgrind on 127.0.0.1 with GOMAXPROCS=1,
# send WARMUP requests (bench/client), dump and zero the counters, send
# REQUESTS more, dump again, and divide the second dump's total by REQUESTS.
#
# Usage: bash app/bench/instructions.sh [-n REQUESTS] [-e NAME=VALUE]...
# Needs: go (PATH or /usr/local/go/bin) and valgrind (apt-get install valgrind).
set -euo pipefail

log() { printf 'instructions.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

requests=5000
warmup=1000
server_env=()
while [ $# -gt 0 ]; do
	case "$1" in
	-n)
		if ! [[ "${2-}" =~ ^[0-9]+$ ]] || [ "$2" -lt 100 ] || [ "$2" -gt 1000000 ]; then
			die "-n ${2-}: want 100 to 1000000"
		fi
		requests="$2" && shift 2
		;;
	-e)
		[[ "${2-}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "-e ${2-}: want NAME=VALUE"
		server_env+=("$2") && shift 2
		;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
	*) die "unknown argument: $1 (see -h)" ;;
	esac
done

if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
	die "valgrind not found: apt-get install valgrind"
fi
if ! command -v go >/dev/null 2>&1; then
	[ -x /usr/local/go/bin/go ] || die "go not found: install Go (see app/README.md)"
	PATH="/usr/local/go/bin:$PATH"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill -9 "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

app_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log "building http-go, the baseline and the client with $(go version)"
(cd "$app_dir" && go build -o "$work/http-go" . && go build -o "$work/baseline" ./bench/baseline &&
	go build -o "$work/client" ./bench/client)

# free_port: a port nothing listens on now (the kernel's pick for port 0).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# count NAME: prints NAME's instructions per request.
count() {
	local name="$1" port out i total
	port="$(free_port)"
	out="$work/callgrind-$name"
	env GOMAXPROCS=1 ADDR="127.0.0.1:$port" "${server_env[@]+"${server_env[@]}"}" \
		valgrind --tool=callgrind --callgrind-out-file="$out" "$work/$name" >"$work/$name.log" 2>&1 &
	server_pid="$!"
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			break
		fi
		kill -0 "$server_pid" 2>/dev/null || die "$name exited at start: $(tail -5 "$work/$name.log")"
		sleep 0.2
	done
	((i < 300)) || die "$name did not listen on 127.0.0.1:$port within 60 s under valgrind"
	timeout 300 "$work/client" "$warmup" "127.0.0.1:$port" || die "warm-up against $name failed"
	callgrind_control --dump "$server_pid" >/dev/null 2>&1
	timeout 600 "$work/client" "$requests" "127.0.0.1:$port" || die "requests against $name failed"
	callgrind_control --dump "$server_pid" >/dev/null 2>&1
	kill -9 "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
	# Each dump holds what was counted since the one before: .1 the warm-up, .2 the measured part.
	[ -f "$out.2" ] || die "callgrind wrote no second dump for $name"
	total="$(grep -h -m1 -E '^(summary|totals):' "$out.2" | awk '{ print $2 }')"
	[ -n "$total" ] || die "no instruction total in callgrind's dump for $name"
	echo $((total / requests))
}

log "$requests requests after $warmup warm-up, each server alone under callgrind, GOMAXPROCS=1${server_env[*]+, with ${server_env[*]}}"
base="$(count baseline)"
app="$(count http-go)"
printf '%-9s %12s\n' server "instr/req" baseline "$base" http-go "$app"
awk -v a="$app" -v b="$base" 'BEGIN { printf "ratio http-go/baseline: instructions per request %.3f\n", a / b }'
