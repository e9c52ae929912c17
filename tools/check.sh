#!/usr/bin/env bash
# The project's whole test command (`npm run check`): type check, lint, unit and script tests,
# shell script checks and the Go app's checks. CI (.ci/run) runs exactly this after installing tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

command -v shellcheck >/dev/null 2>&1 || {
	echo "shellcheck is required: apt-get install shellcheck (Debian/Ubuntu) or brew install shellcheck" >&2
	exit 1
}

step "type check (tsc --noEmit)"
npm run --silent typecheck

step "lint (eslint, actionlint)"
bash tools/lint.sh

step "shellcheck"
shellcheck -x -P scripts scripts/*.sh scripts/lib/*.sh
shellcheck tools/*.sh .ci/run app/bench/*.sh

step "unit, wiring, policy and script tests (jest)"
npm test --silent

step "Go app (gofmt, go vet, go test)"
bash tools/go-test.sh
