#!/usr/bin/env bash
# `npm run replace:control-plane`: replaces the control-plane VM with a new, EMPTY cluster, with the
# stack's identity on the same addresses (docs/lifecycle.md). To get the same cluster back from its
# newest etcd snapshot instead, run `pulumi up --replace <the control-plane VM>` (docs/backups.md).
#   1. While the old cluster still answers: `pulumi destroy --target <the Kubernetes provider>
#      --target-dependents` deletes every object deployed through the provider, and the provider,
#      from the running cluster. If nothing answers on the API endpoint any more (the VM is already
#      lost), they are dropped from the state instead: there is nothing left to delete them from.
#   2. `pulumi up --replace <the control-plane VM>` with KUBEADM_GCP_NEW_CLUSTER=1 (the program then
#      restores no snapshot): the new VM, kubeadm init, every worker re-joined in place, the provider
#      and every object created anew.
# One `pulumi up --replace` would plan the same deletes first (the VM is delete-before-replace), but
# engines from 3.214.1 close the old provider while planning them (pkg/resource/deploy/providers/
# registry.go, Diff: `if diff.Replace() { contract.IgnoreClose(provider) }`), and every delete then
# fails with "grpc: the client connection is closing", leaving the stack as it was. Two steps avoid
# that on every engine. Extra arguments go to both commands (e.g. --stack dev --yes).
set -euo pipefail
# shellcheck source=tools/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"
stack_args_from "$@"

vm="$(state_urns 'r.type === "gcp:compute/instance:Instance" && r.urn.endsWith("-nodes-control-plane")')"
[[ -n $vm && $vm != *$'\n'* ]] || {
	echo "No single control-plane VM (a gcp:compute/instance:Instance named <cluster>-nodes-control-plane) in the stack's state: nothing to replace." >&2
	exit 1
}
provider="$(state_urns 'r.type === "pulumi:providers:kubernetes"')"

if [[ -z $provider ]]; then
	echo "No Kubernetes provider in the state: nothing in the cluster to delete first." >&2
elif accepts_connections "$(api_endpoint)"; then
	echo "Deleting everything deployed into the cluster, and its provider, while the old control plane runs." >&2
	pulumi destroy "$@" --target "$provider" --target-dependents
else
	echo "The API endpoint does not answer: dropping the cluster's objects and provider from the state (their cluster is gone)." >&2
	pulumi state delete "${stack_args[@]}" --target-dependents --yes "$provider"
fi

echo "Replacing the control-plane VM with a new, empty cluster (no snapshot is restored): $vm" >&2
KUBEADM_GCP_NEW_CLUSTER=1 exec pulumi up "$@" --replace "$vm"
