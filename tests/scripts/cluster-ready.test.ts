import * as fs from "fs";
import * as path from "path";
import { callsTo, createSandbox, fixturesDir, removeSandboxes, runScript, Sandbox, setState, writeRoot } from "./harness";

const adminConf = fs.readFileSync(path.join(fixturesDir, "admin.conf"), "utf8");
const settings = { EXPECTED_NODES: "k8s-cp-0 k8s-worker-1 k8s-worker-2" };

function cluster(registered: string[]): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/kubernetes/admin.conf", adminConf);
    for (const node of registered) {
        setState(sb, `nodes/${node}`);
    }
    return sb;
}

afterAll(removeSandboxes);

describe("cluster-ready.sh", () => {
    test("succeeds once every node is Ready, printing nothing on stdout (the kubeconfig is the stack's, not the node's)", () => {
        const sb = cluster(["k8s-cp-0", "k8s-worker-1", "k8s-worker-2"]);
        const result = runScript(sb, "cluster-ready", settings);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/all 3 node\(s\) are Ready/);
        const waits = callsTo(sb, "kubectl").filter((l) => / wait /.test(l));
        expect(waits.map((l) => l.replace(/^kubectl --kubeconfig \S+ /, ""))).toEqual([
            "wait --for=condition=Ready node/k8s-cp-0 --timeout=10s",
            "wait --for=condition=Ready node/k8s-worker-1 --timeout=10s",
            "wait --for=condition=Ready node/k8s-worker-2 --timeout=10s",
        ]);
    });

    test("times out naming the nodes that are not Ready or not registered, and what to check, printing nothing", () => {
        const sb = cluster(["k8s-cp-0", "k8s-worker-1"]);
        const result = runScript(sb, "cluster-ready", { ...settings, TIMEOUT_SECONDS: "1" }, {
            env: { STUB_NOT_READY: "k8s-worker-1", POLL_INTERVAL_SECONDS: "0" },
        });
        expect(result.status).not.toBe(0);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/timed out after 1s; nodes not Ready: k8s-worker-1 \(not Ready\) k8s-worker-2 \(not registered\)\./);
        expect(result.stderr).toMatch(/kubectl describe node/);
        expect(result.stderr).toMatch(/journalctl -u kubelet/);
        expect(result.stderr).toMatch(/kube-flannel/);
        // The Ready node is not waited for again; the others are polled on every pass until the
        // deadline (how many passes fit in it depends on the machine's speed, so count the passes).
        const passes = (result.stderr.match(/still waiting for:/g) ?? []).length + 1;
        expect(callsTo(sb, "kubectl").filter((l) => l.includes("node/k8s-cp-0"))).toHaveLength(1);
        expect(callsTo(sb, "kubectl").filter((l) => l.includes("wait") && l.includes("node/k8s-worker-1"))).toHaveLength(passes);
    });
});
