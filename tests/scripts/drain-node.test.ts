import { callsTo, clearCalls, createSandbox, hasState, removeSandboxes, runScript, Sandbox, setState, writeRoot } from "./harness";

function cluster(registered: string[]): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n");
    for (const node of registered) {
        setState(sb, `nodes/${node}`);
    }
    return sb;
}

/** kubectl calls without the --kubeconfig prefix. */
function kubectlCalls(sb: Sandbox): string[] {
    return callsTo(sb, "kubectl").map((l) => l.replace(/^kubectl --kubeconfig \S+ /, ""));
}

afterAll(removeSandboxes);

describe("drain-node.sh", () => {
    test("drains the node, then deletes it; a second run does nothing", () => {
        const sb = cluster(["k8s-worker-1"]);
        const result = runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" });
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("");
        expect(kubectlCalls(sb)).toEqual([
            "get node k8s-worker-1 --ignore-not-found -o name",
            "drain k8s-worker-1 --ignore-daemonsets --delete-emptydir-data --force --timeout=180s",
            "delete node k8s-worker-1 --ignore-not-found",
        ]);
        expect(callsTo(sb, "kubectl").every((l) => l.startsWith(`kubectl --kubeconfig ${sb.root}/etc/kubernetes/admin.conf `))).toBe(true);
        expect(hasState(sb, "nodes/k8s-worker-1")).toBe(false);

        clearCalls(sb);
        expect(runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" }).status).toBe(0);
        expect(kubectlCalls(sb)).toEqual(["get node k8s-worker-1 --ignore-not-found -o name"]);
    });

    test("removing a worker that never joined deletes its (non-expiring) join token, and no other's", () => {
        const sb = cluster([]);
        setState(sb, "tokens/abcdef.0123456789abcdef", "join k8s-worker-1");
        setState(sb, "tokens/other1.0123456789abcdef", "join k8s-worker-2");
        const result = runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" });
        expect(result.status).toBe(0);
        expect(hasState(sb, "tokens/abcdef.0123456789abcdef")).toBe(false);
        expect(hasState(sb, "tokens/other1.0123456789abcdef")).toBe(true);
    });

    test("exits 0 without draining when the node is not registered", () => {
        const sb = cluster(["k8s-worker-2"]);
        const result = runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" });
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/not registered/);
        expect(kubectlCalls(sb).filter((l) => /^(drain|delete) /.test(l))).toEqual([]);
    });

    test("still deletes the node when the drain fails", () => {
        const sb = cluster(["k8s-worker-1"]);
        const result = runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" }, { env: { STUB_DRAIN_RC: "1" } });
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/WARNING: draining k8s-worker-1 failed or timed out/);
        expect(kubectlCalls(sb)).toContain("delete node k8s-worker-1 --ignore-not-found");
        expect(hasState(sb, "nodes/k8s-worker-1")).toBe(false);
    });

    test("warns and exits 0 when the API does not answer, after retrying", () => {
        const sb = cluster(["k8s-worker-1"]);
        const result = runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" }, { env: { STUB_API_DOWN: "1", RETRY_ATTEMPTS: "2" } });
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/API server does not answer/);
        expect(kubectlCalls(sb)).toEqual(Array(2).fill("get node k8s-worker-1 --ignore-not-found -o name"));
    });

    test("exits 0 when the control plane was never initialised", () => {
        const sb = createSandbox();
        setState(sb, "nodes/k8s-worker-1");
        const result = runScript(sb, "drain-node", { NODE_NAME: "k8s-worker-1" });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubectl")).toEqual([]);
    });
});
