#!/usr/bin/env bash
# Side-by-side load test of http-go against a minimal seed-style server
# (bench/baseline): builds both, starts both on 127.0.0.1 (free ports picked by
# the kernel), drives both at the same time with one wrk each, round after
# round, and prints requests/s, p99 latency, CPU time per request and the
# ratio http-go/baseline.
#
# Both servers are loaded at once, each in its own CPU cgroup with the pod's
# CPU limit (250m) when the machine allows it: whatever else runs on the
# machine then hits both alike, and each serves what its quota buys, so the
# ratio of requests/s is the ratio of CPU cost per request. The reported
# ratio is the median of the rounds' own ratios. CPU time comes from the
# kernel's per-thread accounting in nanoseconds (/proc/PID/task/*/schedstat).
#
# Loopback only; every wrk run is bounded by -d and by `timeout`.
#
# Usage: bash app/bench/bench.sh [-r ROUNDS] [-d SECONDS] [-c CONNECTIONS]
#          [-t THREADS] [-e NAME=VALUE]... [--strict] [--cpu-limit MILLICORES|none]
set -euo pipefail

log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	cat <<'EOF'
Usage: bash app/bench/bench.sh [options]

  -r ROUNDS        rounds; each round loads both servers at once (default 10, 1-40)
  -d SECONDS       length of each round (default 4, 1-60)
  -c CONNECTIONS   wrk connections per server (default 50, 1-1000)
  -t THREADS       wrk threads per server (default 2, at most CONNECTIONS)
  -e NAME=VALUE    environment for both servers, repeatable
                   (e.g. -e ACCESS_LOG=on, -e GOMAXPROCS=1)
  --strict         the baseline reads its hostname once at start instead of on
                   every request as the seed does (HOSTNAME_ONCE=1)
  --cpu-limit Nm   run each server in its own CPU cgroup with a CFS quota of N
                   millicores, as the kubelet does for a container's CPU limit.
                   Default: 250m (the Deployment's limit) when a cgroup v1 or v2
                   cpu controller is writable (root), else none
  --cpu-limit none no quota: both servers share the machine's CPUs with the two
                   wrk processes, and the rounds vary much more
  -h               this help

Needs: go (PATH or /usr/local/go/bin) and wrk (apt-get install wrk).
EOF
}

rounds=10
duration=4
connections=50
threads=2
cpu_limit_m=default
server_env=()
baseline_env=()

# is_int_in VALUE MIN MAX: VALUE is a whole number from MIN to MAX.
is_int_in() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		-r) rounds="${2-}" && shift 2 ;;
		-d) duration="${2-}" && shift 2 ;;
		-c) connections="${2-}" && shift 2 ;;
		-t) threads="${2-}" && shift 2 ;;
		-e)
			[[ "${2-}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "-e ${2-}: want NAME=VALUE"
			server_env+=("$2") && shift 2
			;;
		--strict) baseline_env+=(HOSTNAME_ONCE=1) && shift ;;
		--cpu-limit)
			if [ "${2-}" = none ]; then
				cpu_limit_m=""
			elif [[ "${2-}" =~ ^([0-9]+)m$ ]]; then
				cpu_limit_m="${BASH_REMATCH[1]}"
			else
				die "--cpu-limit ${2-}: want millicores such as 250m, or none"
			fi
			shift 2
			;;
		-h | --help) usage && exit 0 ;;
		*) usage >&2 && die "unknown argument: $1" ;;
		esac
	done
	is_int_in "$rounds" 1 40 || die "-r $rounds: want a whole number from 1 to 40"
	is_int_in "$duration" 1 60 || die "-d $duration: want a whole number of seconds from 1 to 60"
	is_int_in "$connections" 1 1000 || die "-c $connections: want a whole number from 1 to 1000"
	is_int_in "$threads" 1 "$connections" || die "-t $threads: want a whole number from 1 to $connections (-c)"
	if [ "$cpu_limit_m" = default ]; then
		if cgroup_writable; then
			cpu_limit_m=250
		else
			cpu_limit_m=""
			log "no writable CPU cgroup (not root?): running without a CPU quota; expect the rounds to vary much more"
		fi
	elif [ -n "$cpu_limit_m" ]; then
		is_int_in "$cpu_limit_m" 10 64000 || die "--cpu-limit ${cpu_limit_m}m: want 10m to 64000m"
	fi
}

# cgroup_writable: a cgroup v1 cpu hierarchy or a cgroup v2 root with the cpu
# controller enabled can be written by this user.
cgroup_writable() {
	{ [ -w /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; } ||
		{ [ -w /sys/fs/cgroup ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; }
}

find_tools() {
	command -v wrk >/dev/null 2>&1 || die "wrk not found: apt-get install wrk (Debian/Ubuntu) or brew install wrk"
	if ! command -v go >/dev/null 2>&1; then
		[ -x /usr/local/go/bin/go ] || die "go not found: install Go (see app/README.md)"
		PATH="/usr/local/go/bin:$PATH"
	fi
}

work=""
pids=()
cgroups=()
cleanup() {
	local pid cg
	for pid in "${pids[@]+"${pids[@]}"}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for cg in "${cgroups[@]+"${cgroups[@]}"}"; do
		rmdir "$cg" 2>/dev/null || log "could not remove cgroup $cg"
	done
	if [ -n "$work" ]; then
		rm -rf "$work"
	fi
}

build() {
	local app_dir
	app_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	log "building http-go and the baseline with $(go version)"
	(cd "$app_dir" && go build -trimpath -o "$work/http-go" . && go build -trimpath -o "$work/baseline" ./bench/baseline)
}

# new_cgroup NAME: prints the path of a fresh CPU cgroup limited to cpu_limit_m.
new_cgroup() {
	local quota=$((cpu_limit_m * 100)) period=100000 cg
	if [ -w /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
		cg="/sys/fs/cgroup/cpu/bench-$1-$$"
		mkdir "$cg" || die "cannot create cgroup $cg"
		echo "$period" >"$cg/cpu.cfs_period_us"
		echo "$quota" >"$cg/cpu.cfs_quota_us"
	elif [ -w /sys/fs/cgroup ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
		cg="/sys/fs/cgroup/bench-$1-$$"
		mkdir "$cg" || die "cannot create cgroup $cg"
		echo "$quota $period" >"$cg/cpu.max"
	else
		die "--cpu-limit: no writable CPU cgroup (need root and cgroup v1 /sys/fs/cgroup/cpu or v2 with the cpu controller enabled)"
	fi
	echo "$cg"
}

# start_server NAME [NAME=VALUE...]: starts $work/NAME on 127.0.0.1:0 with the
# -e settings and then the given ones; sets server_addr and server_pid.
server_addr=""
server_pid=""
start_server() {
	local name="$1" cg="" addr="" i
	shift
	if [ -n "$cpu_limit_m" ]; then
		cg="$(new_cgroup "$name")"
		cgroups+=("$cg")
	fi
	# The wrapper joins the cgroup before exec, so every thread of the server starts in it.
	sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cg" \
		env ADDR=127.0.0.1:0 "${server_env[@]+"${server_env[@]}"}" "$@" "$work/$name" >"$work/$name.log" 2>&1 &
	server_pid="$!"
	pids+=("$server_pid")
	for ((i = 0; i < 100; i++)); do
		addr="$(grep -om1 '127\.0\.0\.1:[0-9][0-9]*' "$work/$name.log" 2>/dev/null || true)"
		[ -z "$addr" ] || break
		kill -0 "$server_pid" 2>/dev/null || die "$name exited at start: $(cat "$work/$name.log")"
		sleep 0.1
	done
	[ -n "$addr" ] || die "$name did not report a listen address within 10 s: $(cat "$work/$name.log")"
	server_addr="$addr"
}

# check_greeting NAME ADDR: GET / answers 200 "Welcome! ..." (bash's /dev/tcp, no curl needed).
check_greeting() {
	local name="$1" host="${2%:*}" port="${2##*:}" reply
	reply="$(
		exec 3<>"/dev/tcp/$host/$port"
		printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" >&3
		timeout 5 cat <&3
	)" || die "$name at $2 did not answer GET /"
	[[ "$reply" == "HTTP/1.0 200"*"Welcome! "* ]] || die "$name at $2 answered GET / with: $reply"
}

# cpu_ns PID: CPU time of all of PID's threads so far, in nanoseconds (the
# first field of each thread's schedstat; /proc/PID/stat counts in 10 ms ticks,
# too coarse for a server held to a quarter of a CPU for a few seconds).
cpu_ns() { cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# wrk_start NAME ADDR: starts one bounded wrk run against ADDR in the
# background, writing to $work/wrk-NAME.txt; sets wrk_pid.
wrk_pid=""
wrk_start() {
	timeout $((duration + 30)) wrk -t "$threads" -c "$connections" -d "${duration}s" --timeout 5s --latency \
		"http://$2/" >"$work/wrk-$1.txt" 2>&1 &
	wrk_pid="$!"
}

# wrk_result NAME CPU_NS: prints "rps p99_ms cpu_us_per_request" from
# NAME's finished wrk run and the server's CPU time during it.
wrk_result() {
	local name="$1" cpu="$2" out="$work/wrk-$1.txt"
	if grep -qE 'Non-2xx|Socket errors' "$out"; then
		die "$name returned errors under load: $(cat "$out")"
	fi
	awk -v cpu_ns="$cpu" '
		function ms(v) {
			if (v ~ /us$/) return v / 1000
			if (v ~ /ms$/) return v + 0
			if (v ~ /s$/) return v * 1000
			return v + 0
		}
		$2 == "requests" && $3 == "in" { n = $1 }
		$1 == "99%" { p99 = ms($2) }
		$1 == "Requests/sec:" { rps = $2 }
		END {
			if (n == 0 || rps == "") exit 1
			printf "%.0f %.2f %.2f\n", rps, p99, cpu_ns / 1000 / n
		}' "$out" || die "could not read wrk's output: $(cat "$out")"
}

# median: the median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

main() {
	parse_args "$@"
	find_tools
	work="$(mktemp -d)"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	build

	local base_addr app_addr base_pid app_pid r results="" ratios=""
	start_server baseline "${baseline_env[@]+"${baseline_env[@]}"}"
	base_addr="$server_addr" base_pid="$server_pid"
	start_server http-go
	app_addr="$server_addr" app_pid="$server_pid"
	check_greeting baseline "$base_addr"
	check_greeting http-go "$app_addr"

	log "baseline${baseline_env[*]+ (${baseline_env[*]})} on $base_addr, http-go on $app_addr${server_env[*]+, both with ${server_env[*]}}${cpu_limit_m:+, each limited to ${cpu_limit_m}m CPU}"
	log "$rounds round(s) of ${duration}s, both servers at once, each driven by its own wrk -t $threads -c $connections; 1 s warm-up"
	timeout 30 wrk -t 1 -c "$threads" -d 1s "http://$base_addr/" >/dev/null
	timeout 30 wrk -t 1 -c "$threads" -d 1s "http://$app_addr/" >/dev/null

	local base_cpu app_cpu base_wrk app_wrk base_line app_line
	printf '%-6s %-9s %12s %9s %12s %7s\n' round server "requests/s" "p99 ms" "CPU us/req" ratio
	for ((r = 1; r <= rounds; r++)); do
		base_cpu="$(cpu_ns "$base_pid")" app_cpu="$(cpu_ns "$app_pid")"
		wrk_start baseline "$base_addr" && base_wrk="$wrk_pid"
		wrk_start http-go "$app_addr" && app_wrk="$wrk_pid"
		wait "$base_wrk" || die "wrk against baseline failed: $(cat "$work/wrk-baseline.txt")"
		wait "$app_wrk" || die "wrk against http-go failed: $(cat "$work/wrk-http-go.txt")"
		base_cpu=$(($(cpu_ns "$base_pid") - base_cpu)) app_cpu=$(($(cpu_ns "$app_pid") - app_cpu))
		base_line="$(wrk_result baseline "$base_cpu")"
		app_line="$(wrk_result http-go "$app_cpu")"
		results+="baseline $base_line"$'\n'"http-go $app_line"$'\n'
		ratios+="$(awk -v a="${app_line%% *}" -v b="${base_line%% *}" 'BEGIN { printf "%.3f", a / b }')"$'\n'
		# shellcheck disable=SC2086 # the lines are "rps p99 cpu", split on purpose
		printf '%-6s %-9s %12s %9s %12s\n' "$r" baseline $base_line
		# shellcheck disable=SC2086
		printf '%-6s %-9s %12s %9s %12s %7s\n' "$r" http-go $app_line "$(tail -n1 <<<"${ratios%$'\n'}")"
	done

	local med_rps_b med_rps_a med_p99_b med_p99_a med_cpu_b med_cpu_a med_ratio
	med_rps_b="$(awk '$1 == "baseline" { print $2 }' <<<"$results" | median)"
	med_rps_a="$(awk '$1 == "http-go" { print $2 }' <<<"$results" | median)"
	med_p99_b="$(awk '$1 == "baseline" { print $3 }' <<<"$results" | median)"
	med_p99_a="$(awk '$1 == "http-go" { print $3 }' <<<"$results" | median)"
	med_cpu_b="$(awk '$1 == "baseline" { print $4 }' <<<"$results" | median)"
	med_cpu_a="$(awk '$1 == "http-go" { print $4 }' <<<"$results" | median)"
	med_ratio="$(grep . <<<"$ratios" | median)"
	printf '%-6s %-9s %12.0f %9.2f %12.2f\n' median baseline "$med_rps_b" "$med_p99_b" "$med_cpu_b"
	printf '%-6s %-9s %12.0f %9.2f %12.2f\n' median http-go "$med_rps_a" "$med_p99_a" "$med_cpu_a"
	awk -v r="$med_ratio" -v pa="$med_p99_a" -v pb="$med_p99_b" -v ca="$med_cpu_a" -v cb="$med_cpu_b" 'BEGIN {
		printf "ratio http-go/baseline: requests/s %.3f (median of the rounds), p99 %.3f, CPU per request %.3f\n", r, pa / pb, ca / cb
	}'
}

main "$@"
