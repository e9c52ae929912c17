#!/usr/bin/env bash
# `npm run deploy`: the quickstart's one deploy command. Installs dependencies, uses a local file
# backend (no Pulumi Cloud account), selects or creates the stack and runs `pulumi up`.
#   GCP_PROJECT=my-project npm run deploy            (STACK=dev by default; extra args go to pulumi up)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stack="${STACK:-dev}"
command -v pulumi >/dev/null 2>&1 || {
	echo "The Pulumi CLI is required: https://www.pulumi.com/docs/install/" >&2
	exit 1
}

[ -d node_modules ] || npm ci --no-audit --no-fund

if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
	mkdir -p .pulumi-state
	export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
fi
echo "Pulumi state: $PULUMI_BACKEND_URL" >&2

pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
if [ -n "${GCP_PROJECT:-}" ]; then
	pulumi config set gcp:project "$GCP_PROJECT"
elif ! pulumi config get gcp:project >/dev/null 2>&1; then
	echo "Set the GCP project: GCP_PROJECT=my-project npm run deploy (or pulumi config set gcp:project my-project)" >&2
	exit 1
fi

pulumi up "$@"
