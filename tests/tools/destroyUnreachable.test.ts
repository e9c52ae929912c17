/**
 * tools/destroy-unreachable.sh (`npm run destroy:unreachable`) against a stub `pulumi` that records
 * its calls and the environment they ran in.
 */
import { listening, runWithStubPulumi } from "./pulumiStub";

const state = {
    deployment: {
        resources: [
            { urn: "urn:pulumi:dev::kubeadm-gcp::pulumi:pulumi:Stack::kubeadm-gcp-dev", type: "pulumi:pulumi:Stack" },
            { urn: "urn:x::ready", type: "command:remote:Command", inputs: { create: "hostname" } },
            { urn: "urn:x::worker-1-admit", type: "command:remote:Command", inputs: { create: "mint", delete: "drain" } },
            { urn: "urn:x::worker-2-admit", type: "command:remote:Command", inputs: { create: "mint", delete: "drain" } },
            { urn: "urn:x::vm", type: "gcp:compute/instance:Instance", inputs: { name: "vm" } },
        ],
    },
};

const runTool = (args: string[], apiEndpoint?: string) => runWithStubPulumi("destroy-unreachable.sh", args, state, apiEndpoint);

describe("destroy-unreachable.sh: teardown when the cluster is already gone", () => {
    test("drops the drain steps (and their dependents) from the state unrun, then destroys with PULUMI_K8S_DELETE_UNREACHABLE", () => {
        const r = runTool(["--stack", "dev", "--yes"]);
        expect(r.status).toBe(0);
        expect(r.calls).toEqual([
            "stack output --stack dev apiEndpoint|K8S_DELETE_UNREACHABLE=unset",
            "stack export --stack dev|K8S_DELETE_UNREACHABLE=unset",
            "state delete --stack dev --target-dependents --yes urn:x::worker-1-admit|K8S_DELETE_UNREACHABLE=unset",
            "state delete --stack dev --target-dependents --yes urn:x::worker-2-admit|K8S_DELETE_UNREACHABLE=unset",
            "destroy --stack dev --yes|K8S_DELETE_UNREACHABLE=true",
        ]);
    });

    test("refuses, changing nothing, while the cluster's API endpoint accepts connections", async () => {
        const api = await listening();
        // spawnSync blocks this process, but the kernel still completes the handshake on a listening socket.
        const r = runTool(["--yes"], api.url);
        api.close();
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/API server answers at https:\/\/127\.0\.0\.1:\d+: use 'pulumi destroy'/);
        expect(r.calls).toEqual(["stack output apiEndpoint|K8S_DELETE_UNREACHABLE=unset"]);
    });

    test("the variable is set for the destroy only: nothing else, and no VM or other resource is dropped from the state", () => {
        const r = runTool([]);
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.endsWith("=true"))).toEqual(["destroy|K8S_DELETE_UNREACHABLE=true"]);
        expect(r.calls.filter((c) => c.startsWith("state delete")).join("\n")).not.toMatch(/::(vm|ready)\b/);
    });
});
