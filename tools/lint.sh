#!/usr/bin/env bash
# Lints the TypeScript (ESLint, eslint.config.mjs) and the GitHub workflows (actionlint, which also
# runs shellcheck on every `run:` block when shellcheck is installed).
#
# actionlint is a Go program: built once from the Go module proxy into .ci/.tools/bin (gitignored)
# at the pinned version below, with the Go toolchain tools/setup.sh finds or installs, and reused
# from there on later runs.
set -euo pipefail
shopt -s extglob
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly actionlint_version="v1.7.12"
readonly tools_bin="$PWD/.ci/.tools/bin"

step() { printf '\n==> %s\n' "$*" >&2; }

step "eslint"
npx --no-install eslint .

ensure_actionlint() {
	local bin="$tools_bin/actionlint"
	# A build from source reports "v1.7.12", a release binary "1.7.12".
	if [[ -x "$bin" ]] && [[ "$("$bin" -version | head -n 1)" == ?(v)"${actionlint_version#v}" ]]; then
		printf '%s\n' "$bin"
		return
	fi
	# shellcheck source=tools/setup.sh
	source tools/setup.sh
	ensure_go
	echo "installing actionlint ${actionlint_version} into ${tools_bin}" >&2
	mkdir -p "$tools_bin"
	GOBIN="$tools_bin" go install "github.com/rhysd/actionlint/cmd/actionlint@${actionlint_version}" >&2
	printf '%s\n' "$bin"
}

step "actionlint ${actionlint_version}"
actionlint="$(ensure_actionlint)"
if ! command -v shellcheck >/dev/null 2>&1; then
	echo "note: shellcheck is not installed, so actionlint skips the run: blocks" >&2
fi
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if ((${#workflows[@]} == 0)); then
	echo "no workflows to lint" >&2
	exit 0
fi
"$actionlint" "${workflows[@]}"
echo "lint: ok" >&2
