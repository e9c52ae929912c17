/**
 * tools/replace-control-plane.sh (`npm run replace:control-plane`) against a stub `pulumi`: the
 * objects in the cluster and their provider go first, by a targeted destroy while the old cluster
 * answers (or from the state alone when it does not), then the VM is replaced with a new, empty
 * cluster (KUBEADM_GCP_NEW_CLUSTER=1: no snapshot restored).
 */
import { listening, runWithStubPulumi } from "./pulumiStub";

const urn = (type: string, name: string) => `urn:pulumi:dev::kubeadm-gcp::${type}::${name}`;
const vm = urn("kubeadm-gcp:nodes:ClusterNodes$gcp:compute/instance:Instance", "k8s-dev-nodes-control-plane");
const provider = urn("kubeadm-gcp:kubeadm:KubeadmCluster$pulumi:providers:kubernetes", "k8s-dev-cluster-k8s");
const state = {
    deployment: {
        resources: [
            { urn: urn("pulumi:pulumi:Stack", "kubeadm-gcp-dev"), type: "pulumi:pulumi:Stack" },
            { urn: vm, type: "gcp:compute/instance:Instance" },
            { urn: urn("kubeadm-gcp:nodes:ClusterNodes$gcp:compute/instance:Instance", "k8s-dev-nodes-worker-1"), type: "gcp:compute/instance:Instance" },
            { urn: provider, type: "pulumi:providers:kubernetes" },
            { urn: urn("kubernetes:core/v1:Namespace", "k8s-dev-app-ns"), type: "kubernetes:core/v1:Namespace" },
        ],
    },
};
const run = (args: string[], endpoint?: string, withState: unknown = state) => runWithStubPulumi("replace-control-plane.sh", args, withState, endpoint);

describe("replace-control-plane.sh", () => {
    test("a live cluster: deletes what is in it through its provider first, then replaces the control-plane VM", async () => {
        const api = await listening();
        const r = run(["--stack", "dev", "--yes"], api.url);
        api.close();
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => !c.startsWith("stack "))).toEqual([
            `destroy --stack dev --yes --target ${provider} --target-dependents|K8S_DELETE_UNREACHABLE=unset`,
            // A new, empty cluster on purpose: the program restores no snapshot for this `up`.
            `up --stack dev --yes --replace ${vm}|K8S_DELETE_UNREACHABLE=unset|NEW_CLUSTER=1`,
        ]);
    });

    test("a cluster already gone: its objects and provider leave the state unrun, then the VM is replaced", () => {
        const r = run(["--stack", "dev"]);
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => !c.startsWith("stack "))).toEqual([
            `state delete --stack dev --target-dependents --yes ${provider}|K8S_DELETE_UNREACHABLE=unset`,
            `up --stack dev --replace ${vm}|K8S_DELETE_UNREACHABLE=unset|NEW_CLUSTER=1`,
        ]);
        expect(r.stderr).toMatch(/does not answer: dropping the cluster's objects and provider from the state/);
    });

    test("refuses a stack without a control-plane VM, changing nothing", () => {
        const r = run([], undefined, { deployment: { resources: state.deployment.resources.filter((x) => x.urn !== vm) } });
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/No single control-plane VM/);
        expect(r.calls.filter((c) => !c.startsWith("stack "))).toEqual([]);
    });
});
