#!/usr/bin/env bash
# The project's whole test command, `npm run check`, and CI's (.ci/run runs exactly this): works from
# a fresh clone under an older Node, because the set-up step installs what is missing first.
# Each step is one named block; add a step as another `step` line and its command.
#
# The control-plane tier is the longest step and spends much of its time waiting on its processes
# (an API server's start, a controller's reaction, a drain), so it runs beside the other steps
# instead of after them: its output is kept in a file and printed when it ends, whole, after the
# other steps' (a failure there still fails the command; a failure of another step stops it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools/setup.sh
source tools/setup.sh

# Each step's start, in seconds since the command started: where the time goes, for the README.
step() { printf '\n==> [%ds] %s\n' "$SECONDS" "$*" >&2; }

step "set-up (Node ${node_major_required}, npm dependencies, shellcheck, Go)"
ensure_node
ensure_dependencies
ensure_shellcheck
ensure_go

tier_name="control-plane tier (real etcd, kube-apiserver, kube-scheduler, kubeadm, containerd, MetalLB, kwok on loopback)"
tier_log="$(mktemp "${TMPDIR:-/tmp}/kubeadm-gcp-tier.XXXXXX")"
step "$tier_name: started beside the steps below; its output follows them"
# Its own process group (setsid), so that stopping it ends jest's workers and every process they
# started; it says how long it took itself, since it ends while another step may still run.
# shellcheck disable=SC2016 # expanded by the inner bash
setsid bash -c 'npm run --silent test:controlplane && s=0 || s=$?; printf "\n(the tier took %ds, exit %d)\n" "$SECONDS" "$s"; exit "$s"' >"$tier_log" 2>&1 &
tier_pid=$!
stop_tier() {
	if [ -n "${tier_pid:-}" ] && kill -0 "$tier_pid" 2>/dev/null; then
		kill -TERM -- "-$tier_pid" 2>/dev/null || true
		wait "$tier_pid" 2>/dev/null || true
		printf '\ncheck: stopped the control-plane tier (its output so far: %s)\n' "$tier_log" >&2
	fi
}
trap stop_tier EXIT

step "type check (tsc --noEmit)"
npm run --silent typecheck

step "lint (eslint, actionlint)"
bash tools/lint.sh

step "shellcheck"
shellcheck -x -P scripts scripts/*.sh scripts/lib/*.sh
shellcheck -x tools/*.sh .ci/run tests/controlplane/build.sh tests/scripts/fixtures/capture.sh app/bench/*.sh

step "unit, wiring, policy and script tests (jest)"
npm test --silent

step "Go app (gofmt, go vet, go test)"
bash tools/go-test.sh

step "$tier_name: waiting for it to end"
tier_status=0
wait "$tier_pid" || tier_status=$?
tier_pid=""
cat "$tier_log" >&2
rm -f "$tier_log"
step "$tier_name: ended (exit $tier_status)"
[ "$tier_status" -eq 0 ] || exit "$tier_status"

printf '\ncheck: passed in %ds\n' "$SECONDS" >&2
