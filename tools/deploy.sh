#!/usr/bin/env bash
# `npm run deploy`: the quickstart's one deploy command. Checks what it cannot install (the Pulumi
# CLI, GCP credentials) first, so a newcomer learns in one line what to get; then Node 22 and the
# npm dependencies (tools/setup.sh), a local file backend (no Pulumi Cloud account), the stack and
# `pulumi up`.
#   GCP_PROJECT=my-project npm run deploy            (STACK=dev by default; extra args go to pulumi up)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools/setup.sh
source tools/setup.sh

stack="${STACK:-dev}"
require_pulumi
require_gcp_credentials
# Pulumi runs the program with the first `node` on PATH: Node 22 from here on.
ensure_node
ensure_dependencies

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
