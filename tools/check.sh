#!/usr/bin/env bash
# The project's whole test command, `npm run check`, and CI's (.ci/run runs exactly this): works from
# a fresh clone under an older Node, because the set-up step installs what is missing first.
# Each step is one named block: `step` runs its command now, `beside` starts it in the background.
#
# The control-plane tier and the Go app's tests spend most of their time waiting on processes (an
# API server's start, a controller's reaction, a drain, a test's timer), so they run beside the other
# steps instead of after them. Each one's output is kept in a file and printed whole when it ends,
# after the other steps'; a failure there still fails the command, and a failure of another step
# stops them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools/setup.sh
source tools/setup.sh

# Each step's start, in seconds since the command started: where the time goes, for the README.
step() { printf '\n==> [%ds] %s\n' "$SECONDS" "$*" >&2; }

background_pids=()
background_names=()
background_logs=()

# beside NAME COMMAND...: starts COMMAND in its own process group (setsid), so that stopping it ends
# every process it started (jest's workers, the control planes); it says how long it took itself,
# since it may end while another step still runs.
beside() {
	local name="$1" log
	shift
	log="$(mktemp "${TMPDIR:-/tmp}/kubeadm-gcp-check.XXXXXX")"
	step "$name: started beside the steps below; its output follows them"
	# shellcheck disable=SC2016 # expanded by the inner bash
	setsid bash -c '"$@" && s=0 || s=$?; printf "\n(took %ds, exit %d)\n" "$SECONDS" "$s"; exit "$s"' bash "$@" >"$log" 2>&1 &
	background_pids+=("$!")
	background_names+=("$name")
	background_logs+=("$log")
}

stop_background() {
	local i
	for i in "${!background_pids[@]}"; do
		if kill -0 "${background_pids[$i]}" 2>/dev/null; then
			kill -TERM -- "-${background_pids[$i]}" 2>/dev/null || true
			wait "${background_pids[$i]}" 2>/dev/null || true
			printf '\ncheck: stopped %s (its output so far: %s)\n' "${background_names[$i]}" "${background_logs[$i]}" >&2
		fi
	done
}
trap stop_background EXIT

# Waits for every step started beside the others, in order, printing each one's output; the first
# failure ends the command (the trap stops the rest).
await_background() {
	local i status
	for i in "${!background_pids[@]}"; do
		step "${background_names[$i]}: waiting for it to end"
		status=0
		wait "${background_pids[$i]}" || status=$?
		cat "${background_logs[$i]}" >&2
		rm -f "${background_logs[$i]}"
		step "${background_names[$i]}: ended (exit $status)"
		[ "$status" -eq 0 ] || exit "$status"
	done
}

step "set-up (Node ${node_major_required}, npm dependencies, shellcheck, Go)"
ensure_node
ensure_dependencies
ensure_shellcheck
ensure_go

beside "control-plane tier (real etcd, kube-apiserver, kube-scheduler, kubeadm, containerd, MetalLB, kwok on loopback)" \
	npm run --silent test:controlplane

beside "Go app (gofmt, go vet, go test)" bash tools/go-test.sh

step "type check (tsc --noEmit)"
npm run --silent typecheck

step "lint (eslint, actionlint)"
bash tools/lint.sh

step "shellcheck"
shellcheck -x -P scripts scripts/*.sh scripts/lib/*.sh
shellcheck -x tools/*.sh .ci/run tests/controlplane/build.sh tests/scripts/fixtures/capture.sh app/bench/*.sh

step "unit, wiring, policy and script tests (jest)"
npm test --silent

await_background

printf '\ncheck: passed in %ds\n' "$SECONDS" >&2
