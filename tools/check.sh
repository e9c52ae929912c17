#!/usr/bin/env bash
# The project's whole test command, `npm run check`, and CI's (.ci/run runs exactly this): works from
# a fresh clone under an older Node, because the set-up step installs what is missing first.
# Each step is one named block; add a step as another `step` line and its command.
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

step "type check (tsc --noEmit)"
npm run --silent typecheck

step "lint (eslint, actionlint)"
bash tools/lint.sh

step "shellcheck"
shellcheck -x -P scripts scripts/*.sh scripts/lib/*.sh
shellcheck -x tools/*.sh .ci/run tests/controlplane/build.sh tests/scripts/fixtures/capture.sh app/bench/*.sh

step "unit, wiring, policy and script tests (jest)"
npm test --silent

step "control-plane tier (real etcd, kube-apiserver, kube-scheduler, kubeadm, containerd, MetalLB, kwok on loopback)"
npm run --silent test:controlplane

step "Go app (gofmt, go vet, go test)"
bash tools/go-test.sh

printf '\ncheck: passed in %ds\n' "$SECONDS" >&2
