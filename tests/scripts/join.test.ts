import { spawnSync } from "child_process";
import { createHash, createPublicKey } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { callsTo, createSandbox, existsRoot, hasState, readRoot, removeSandboxes, runScript, Sandbox, setState, tokenLike, writeRoot } from "./harness";

const token = "abcdef.0123456789abcdef";
const hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const joinLine = `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash ${hash}`;

function controlPlane(): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n");
    return sb;
}

afterAll(removeSandboxes);

describe("join-token.sh", () => {
    test("prints exactly one line: the join command of a token for the worker that lives until it has joined", () => {
        const sb = controlPlane();
        const result = runScript(sb, "join-token", { WORKER_NAME: "k8s-worker-1" });
        expect(result.status).toBe(0);
        // kubeadm's trailing space is gone; nothing but the line and its newline.
        expect(result.stdout).toBe(`${joinLine}\n`);
        // --ttl 0: Pulumi may hand this line to a re-run of a failed join at any later time.
        expect(callsTo(sb, "kubeadm").filter((c) => c.startsWith("kubeadm token create"))).toEqual([
            `kubeadm token create --kubeconfig ${sb.root}/etc/kubernetes/admin.conf --ttl 0 --description join k8s-worker-1 --print-join-command`,
        ]);
        expect(result.stderr).not.toMatch(tokenLike);
    });

    test("deletes the worker's earlier tokens before minting, and no other worker's", () => {
        const sb = controlPlane();
        setState(sb, "tokens/oldold.0123456789abcdef", "join k8s-worker-1");
        setState(sb, "tokens/other1.0123456789abcdef", "join k8s-worker-10");
        const result = runScript(sb, "join-token", { WORKER_NAME: "k8s-worker-1" });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((c) => c.startsWith("kubeadm token delete"))).toEqual([
            `kubeadm token delete --kubeconfig ${sb.root}/etc/kubernetes/admin.conf oldold`,
        ]);
        expect(hasState(sb, "tokens/oldold.0123456789abcdef")).toBe(false);
        expect(hasState(sb, "tokens/other1.0123456789abcdef")).toBe(true);
        expect(hasState(sb, `tokens/${token}`)).toBe(true);
        expect(result.stderr).not.toMatch(tokenLike);
    });

    test("fails, printing nothing and not echoing the token, when kubeadm prints a malformed command", () => {
        const sb = controlPlane();
        const result = runScript(sb, "join-token", { WORKER_NAME: "k8s-worker-1" }, {
            env: { STUB_JOIN_OUTPUT: `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash sha256:beef` },
        });
        expect(result.status).not.toBe(0);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/printed no valid join command/);
        expect(result.stderr).not.toContain(token);
    });

    test("fails when kubeadm prints nothing", () => {
        const sb = controlPlane();
        const result = runScript(sb, "join-token", { WORKER_NAME: "k8s-worker-1" }, { env: { STUB_JOIN_OUTPUT: "" } });
        expect(result.status).not.toBe(0);
        expect(result.stdout).toBe("");
    });

    test("retries kubeadm token create, then fails after the bound", () => {
        const sb = controlPlane();
        const result = runScript(sb, "join-token", { WORKER_NAME: "k8s-worker-1" }, { env: { STUB_TOKEN_FAIL: "1", RETRY_ATTEMPTS: "3" } });
        expect(result.status).not.toBe(0);
        expect(result.stdout).toBe("");
        expect(callsTo(sb, "kubeadm").filter((c) => c.startsWith("kubeadm token create"))).toHaveLength(3);
    });

    test("fails on a node that is not an initialised control plane", () => {
        const sb = createSandbox();
        const result = runScript(sb, "join-token", { WORKER_NAME: "k8s-worker-1" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/admin\.conf not found/);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });
});

describe("revoke-join-token.sh", () => {
    test("after the join, deletes every token of that worker and no other's; a second run finds none", () => {
        const sb = controlPlane();
        setState(sb, `tokens/${token}`, "join k8s-worker-1");
        setState(sb, "tokens/other1.0123456789abcdef", "join k8s-worker-2");
        const first = runScript(sb, "revoke-join-token", { WORKER_NAME: "k8s-worker-1" });
        expect(first.status).toBe(0);
        expect(first.stdout).toBe("");
        expect(hasState(sb, `tokens/${token}`)).toBe(false);
        expect(hasState(sb, "tokens/other1.0123456789abcdef")).toBe(true);
        expect(first.stderr).not.toMatch(tokenLike);
        const second = runScript(sb, "revoke-join-token", { WORKER_NAME: "k8s-worker-1" });
        expect(second.status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((c) => c.startsWith("kubeadm token delete"))).toHaveLength(1);
    });

    test("fails on a node that is not an initialised control plane", () => {
        const sb = createSandbox();
        const result = runScript(sb, "revoke-join-token", { WORKER_NAME: "k8s-worker-1" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/admin\.conf not found/);
    });
});

describe("kubeadm-join.sh", () => {
    test("joins with the values from stdin and --node-name", () => {
        const sb = createSandbox();
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: `${joinLine}\n` });
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("");
        expect(callsTo(sb, "kubeadm")).toEqual([
            `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash ${hash} --node-name k8s-worker-1 --cri-socket unix:///run/containerd/containerd.sock`,
        ]);
        expect(existsRoot(sb, "etc/kubernetes/kubelet.conf")).toBe(true);
        expect(result.stderr).not.toContain(token);
    });

    test("accepts the line without a trailing newline and with extra spaces", () => {
        const sb = createSandbox();
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: `  ${joinLine.replace(" --token", "   --token")} ` });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toHaveLength(1);
    });

    test("a second run on a joined node does not join again and needs no stdin", () => {
        const sb = createSandbox();
        expect(runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: joinLine }).status).toBe(0);
        const second = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: "" });
        expect(second.status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm join"))).toHaveLength(1);
        expect(second.stderr).toMatch(/already joined/);
    });

    test.each([
        ["a short CA hash", joinLine.replace(hash, "sha256:abc123")],
        ["a malformed token", joinLine.replace(token, "ABCDEF.0123456789abcdef")],
        ["no endpoint", joinLine.replace("10.240.0.2:6443 ", "")],
        ["an unexpected flag", `${joinLine} --control-plane`],
        ["another command", joinLine.replace("kubeadm join", "kubeadm reset")],
    ])("fails on a line with %s without echoing it", (_what, line) => {
        const sb = createSandbox();
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: `${line}\n` });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/malformed join command on stdin/);
        expect(result.stderr).not.toMatch(/0123456789abcdef/);
        expect(result.stdout).toBe("");
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test("fails when stdin is empty", () => {
        const sb = createSandbox();
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: "" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/no join command on stdin/);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test("resets the leftovers of an unfinished join before joining", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/pki/ca.crt", "stale");
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: joinLine });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm").map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["kubeadm reset", "kubeadm join"]);
    });
});

/** A self-signed CA certificate (as kubeadm's /etc/kubernetes/pki/ca.crt) and its kubeadm pin. */
function newCa(dir: string): { pem: string; pin: string } {
    const key = path.join(dir, "ca.key");
    const crt = path.join(dir, "ca.crt");
    // RSA 2048: what kubeadm generates for its CA by default.
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-subj", "/CN=kubernetes", "-days", "1"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const pem = fs.readFileSync(crt, "utf8");
    const spki = createPublicKey(pem).export({ type: "spki", format: "der" });
    return { pem, pin: `sha256:${createHash("sha256").update(spki).digest("hex")}` };
}

describe("kubeadm-join.sh after the control plane changed", () => {
    /** A worker that joined the cluster whose CA is `ca`. */
    function joinedWorker(ca: { pem: string }): Sandbox {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/kubelet.conf", "kubelet config of the old cluster");
        writeRoot(sb, "etc/kubernetes/pki/ca.crt", ca.pem);
        return sb;
    }

    test("joined to this cluster (same CA as the join line pins): nothing to do", () => {
        const sb0 = createSandbox();
        const ca = newCa(sb0.dir);
        const sb = joinedWorker(ca);
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: joinLine.replace(hash, ca.pin) });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(result.stderr).toMatch(/already joined this cluster/);
    });

    test("joined to another cluster (the control plane was re-initialised): reset, then join the new one", () => {
        const sb0 = createSandbox();
        const oldCa = newCa(sb0.dir);
        const newCluster = newCa(sb0.dir);
        expect(newCluster.pin).not.toBe(oldCa.pin);
        const sb = joinedWorker(oldCa);
        const line = joinLine.replace(hash, newCluster.pin);
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: line });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([
            "kubeadm reset -f",
            `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash ${newCluster.pin} --node-name k8s-worker-1 --cri-socket unix:///run/containerd/containerd.sock`,
        ]);
        expect(result.stderr).toMatch(/joined to another cluster/);
        expect(result.stderr).not.toContain(token);
        expect(readRoot(sb, "etc/kubernetes/kubelet.conf")).toBe("kubelet config\n");
    });

    test("a kubelet.conf without a CA counts as another cluster's: reset and join", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/kubelet.conf", "orphan");
        const result = runScript(sb, "kubeadm-join", { NODE_NAME: "k8s-worker-1" }, { input: joinLine });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm").map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["kubeadm reset", "kubeadm join"]);
    });
});
