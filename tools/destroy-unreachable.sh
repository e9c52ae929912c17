#!/usr/bin/env bash
# `npm run destroy:unreachable`: tears down a stack whose cluster is already gone (VMs deleted by
# hand or with their project, API server unreachable). A plain `pulumi destroy` would fail there:
# the drain step of each worker dials the vanished control plane over SSH, and the Kubernetes
# provider refuses to delete objects it cannot reach. This command
#   1. removes from the state, without running them, the remote commands that have a delete step
#      (the per-worker drain) and what depends on them (the steps after it, the Kubernetes provider
#      and every object deployed through it): there is no cluster left to drain or to delete from;
#   2. runs `pulumi destroy` with PULUMI_K8S_DELETE_UNREACHABLE=true, so the Kubernetes provider drops
#      the objects of the unreachable cluster from the state instead of failing, and everything else
#      (VMs, load balancer, addresses, rules, network) is deleted as usual.
# Only for that situation: on a healthy stack use `pulumi destroy` (this command refuses to run
# while something answers on the stack's API endpoint). The variable is set for this one
# command only, never in the stack's config, because the provider applies it to `refresh` too
# (docs/lifecycle.md). Extra arguments go to `pulumi destroy` (e.g. --stack dev --yes).
set -euo pipefail

# shellcheck source=tools/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"
stack_args_from "$@"

# Refuse on a live cluster: dropping its objects from the state and then declining (or failing) the
# destroy would orphan them. Anything accepting a connection on the API endpoint counts as live.
endpoint="$(api_endpoint)"
if [[ -z ${DESTROY_UNREACHABLE_FORCE:-} ]] && accepts_connections "$endpoint"; then
	echo "The cluster's API server answers at $endpoint: use 'pulumi destroy'. (This command is for a stack whose cluster is already gone; set DESTROY_UNREACHABLE_FORCE=1 to run it anyway.)" >&2
	exit 1
fi

# URNs of remote commands with a delete step, from the stack's state.
urns="$(state_urns 'r.type === "command:remote:Command" && (r.inputs?.delete ?? r.outputs?.delete)')"

while IFS= read -r urn; do
	[[ -n $urn ]] || continue
	echo "removing from the state without running its delete step: $urn" >&2
	pulumi state delete "${stack_args[@]}" --target-dependents --yes "$urn" ||
		echo "could not remove $urn from the state (already removed as a dependent?); continuing" >&2
done <<<"$urns"

PULUMI_K8S_DELETE_UNREACHABLE=true exec pulumi destroy "$@"
