/**
 * How Pulumi reaches the nodes (components/nodes.ts, components/hostKeys.ts): which server each SSH
 * connection trusts and which address it dials, from the real program under mocks.
 */
import { fakeCurrentIp, fakeHostKey, fakeIp, invokeTokens, mockInvoke, MockInvoke, ProgramRun, RecordedResource, runProgram } from "./helpers/program";

const minimal = { "gcp:project": "test-project" };
const cpName = "k8s-dev-control-plane";
const workerNames = ["k8s-dev-worker-1", "k8s-dev-worker-2"];

let run: ProgramRun;
beforeAll(async () => {
    run = await runProgram(minimal);
});

const commands = (r: ProgramRun) => r.byType("command:remote:Command");
const instances = (r: ProgramRun) => r.byType("gcp:compute/instance:Instance");
/** The node a step runs on: worker steps carry the worker's name, except admit (run on the control plane). */
const nodeOf = (c: RecordedResource) => {
    const worker = /-(worker-\d+)-(?!admit$)[a-z]+$/.exec(c.name)?.[1];
    return worker ? `k8s-dev-${worker}` : cpName;
};
const isReady = (c: RecordedResource) => /-nodes-.*-ready$/.test(c.name);
const internalIpOf = (r: ProgramRun, node: string) => r.outputs.workers.find((w: any) => w.name === node).internalIp as string;

/** Names of resources whose inputs differ between two runs of the program. */
function changed(a: ProgramRun, b: ProgramRun): string[] {
    return a.resources
        .filter((r) => JSON.stringify(b.get(r.name).inputs) !== JSON.stringify(r.inputs))
        .map((r) => r.name)
        .sort();
}

describe("host keys", () => {
    test("every VM lets the guest agent publish its host keys, and its metadata holds no private key", () => {
        expect(instances(run)).toHaveLength(3);
        for (const vm of instances(run)) {
            expect(vm.inputs.metadata["enable-guest-attributes"]).toBe("TRUE");
            for (const [key, value] of Object.entries(vm.inputs.metadata as Record<string, string>)) {
                expect({ key, value }).not.toEqual({ key, value: expect.stringMatching(/PRIVATE KEY/) });
                expect(key).not.toMatch(/host.?key|private/i);
            }
        }
    });

    test("every SSH connection is pinned to the ed25519 key its VM published as a guest attribute", () => {
        expect(commands(run).length).toBeGreaterThanOrEqual(13);
        for (const c of commands(run)) {
            const { connection } = c.inputs;
            expect({ step: c.name, hostKey: connection.hostKey }).toEqual({ step: c.name, hostKey: fakeHostKey(nodeOf(c)) });
            if (connection.proxy) {
                expect({ step: c.name, proxyHostKey: connection.proxy.hostKey }).toEqual({ step: c.name, proxyHostKey: fakeHostKey(cpName) });
            }
        }
        // Each pinned key is read from its own VM, in the namespace the guest agent writes.
        const reads = run.invokes.filter((i) => i.token === invokeTokens.guestAttributes);
        expect(reads.map((i) => i.inputs.name).sort()).toEqual([cpName, ...workerNames]);
        for (const read of reads) {
            expect(read.inputs).toMatchObject({ zone: "us-central1-a", queryPath: "hostkeys/" });
        }
    });

    test("the host key is read from the VM resource, so no step dials before the VM exists and has published", () => {
        for (const ready of commands(run).filter(isReady)) {
            expect(ready.dataDependencies).toContain(`k8s-dev-nodes-${nodeOf(ready).slice("k8s-dev-".length)}`);
        }
    });

    test("a replaced worker's new host key changes exactly the steps that SSH to that worker", async () => {
        const replaced: MockInvoke = (token, inputs) =>
            token === invokeTokens.guestAttributes && inputs.name === "k8s-dev-worker-1"
                ? mockInvoke(token, { ...inputs, name: "k8s-dev-worker-1 (replaced)" })
                : mockInvoke(token, inputs);
        const after = await runProgram(minimal, "dev", replaced);
        expect(changed(run, after)).toEqual(
            ["images", "join", "prepare", "upgrade"].map((s) => `k8s-dev-cluster-worker-1-${s}`).concat("k8s-dev-nodes-worker-1-ready"),
        );
        expect(after.get("k8s-dev-nodes-worker-1-ready").inputs.connection.hostKey).toBe(fakeHostKey("k8s-dev-worker-1 (replaced)"));
    });

    test("every node's first step dials the node itself, so a wrong key fails that `ready` step", () => {
        const ready = commands(run).filter(isReady);
        expect(ready.map(nodeOf).sort()).toEqual([cpName, ...workerNames]);
        for (const r of ready) {
            expect(r.inputs.connection.proxy).toBeUndefined();
            expect(r.inputs.connection.hostKey).toBe(fakeHostKey(nodeOf(r)));
        }
    });
});

describe("addresses", () => {
    test("the control plane is dialled at its static IP", () => {
        for (const c of commands(run).filter((x) => nodeOf(x) === cpName)) {
            expect(c.inputs.connection.host).toBe(run.outputs.controlPlane.externalIp);
            expect(c.inputs.connection.proxy).toBeUndefined();
        }
    });

    test("after their first dial, workers are reached at their internal IP through the control plane", () => {
        const workerSteps = commands(run).filter((c) => nodeOf(c) !== cpName && !isReady(c));
        // prepare, images, join and the in-place upgrade, on each of the two workers.
        expect(workerSteps).toHaveLength(8);
        for (const c of workerSteps) {
            const { connection } = c.inputs;
            expect(connection.host).toBe(internalIpOf(run, nodeOf(c)));
            expect(connection.host).toMatch(/^10\.240\.0\./);
            expect(connection.proxy).toMatchObject({ host: run.outputs.controlPlane.externalIp, user: "kubeadm", hostKey: fakeHostKey(cpName) });
            expect(connection.proxy.privateKey).toBe(connection.privateKey);
            expect(connection.proxy.dialErrorLimit).toBeGreaterThanOrEqual(30);
            expect(c.secretInputs).toContain("connection");
        }
    });

    test("a worker's first dial goes to the external IP the Compute API reports now, not the one in the state", () => {
        for (const worker of workerNames) {
            const ready = run.get(`k8s-dev-nodes-${worker.slice("k8s-dev-".length)}-ready`);
            expect(ready.inputs.connection.host).toBe(fakeCurrentIp(worker));
            expect(run.outputs.workers.find((w: any) => w.name === worker).externalIp).toBe(fakeCurrentIp(worker));
        }
        const lookups = run.invokes.filter((i) => i.token === invokeTokens.instance);
        expect(lookups.map((i) => i.inputs.name).sort()).toEqual(workerNames);
    });

    test("a worker's stop/start (new ephemeral IP) re-dials only its ready step; every other step keeps its address", async () => {
        const restarted: MockInvoke = (token, inputs) =>
            token === invokeTokens.instance && inputs.name === "k8s-dev-worker-2"
                ? { ...mockInvoke(token, inputs), networkInterfaces: [{ accessConfigs: [{ natIp: "198.51.100.77" }] }] }
                : mockInvoke(token, inputs);
        const after = await runProgram(minimal, "dev", restarted);
        expect(changed(run, after)).toEqual(["k8s-dev-nodes-worker-2-ready"]);
        expect(after.get("k8s-dev-nodes-worker-2-ready").inputs.connection.host).toBe("198.51.100.77");
        expect(after.outputs.workers[1].externalIp).toBe("198.51.100.77");
    });

    // What a preview sees of a stopped worker. An `up` of a stack whose VMs exist stops before this,
    // naming the stopped VMs and how to start them (components/vmStatus.ts, tests/schedule.test.ts):
    // it could not SSH to them. Here the stack has no previous deployment, so that check does not run.
    test("a stopped worker (no external IP now) falls back to the address in the state, where no status check stops the run", async () => {
        const stopped: MockInvoke = (token, inputs) =>
            token === invokeTokens.instance && inputs.name === "k8s-dev-worker-1"
                ? { ...mockInvoke(token, inputs), currentStatus: "TERMINATED", networkInterfaces: [{ accessConfigs: [{}] }] }
                : mockInvoke(token, inputs);
        const after = await runProgram(minimal, "dev", stopped);
        const ready = after.get("k8s-dev-nodes-worker-1-ready");
        const vm = instances(after).find((i) => i.inputs.name === "k8s-dev-worker-1")!;
        // The instance's natIp as the state holds it (the mocks make it differ from the "current" one).
        expect(vm.inputs.networkInterfaces[0].accessConfigs[0].natIp).toBeUndefined();
        expect(ready.inputs.connection.host).toBe(fakeIp("k8s-dev-nodes-worker-1"));
        expect(changed(run, after)).toEqual(["k8s-dev-nodes-worker-1-ready"]);
    });

    test("the control plane may SSH to the workers inside the VPC, and nothing else gains SSH by it", () => {
        const rule = run.byType("gcp:compute/firewall:Firewall").find((f) => f.inputs.name === "k8s-dev-ssh-from-control-plane")!;
        expect(rule.inputs).toMatchObject({
            direction: "INGRESS",
            sourceTags: ["k8s-dev-control-plane"],
            targetTags: ["k8s-dev-worker"],
            allows: [{ protocol: "tcp", ports: ["22"] }],
        });
        expect(rule.inputs.sourceRanges).toBeUndefined();
    });
});
