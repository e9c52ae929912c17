import { spawnSync } from "child_process";
import { createHash, createPublicKey } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { callsTo, createSandbox, existsRoot, hasState, readRoot, removeSandboxes, runScript, Sandbox, setState, tokenLike, writeRoot } from "./harness";

const token = "abcdef.0123456789abcdef";
const hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const joinLine = `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash ${hash}`;
const clusterUid = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b";

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

/** A self-signed CA certificate (as the stack's /etc/kubernetes/pki/ca.crt), its file and its kubeadm pin. */
function newCa(dir: string): { pem: string; file: string; pin: string } {
    const key = path.join(dir, `ca-${Math.random().toString(36).slice(2)}.key`);
    const crt = key.replace(/\.key$/, ".crt");
    // RSA 2048: what the stack generates for its CA (components/identity.ts).
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-subj", "/CN=kubernetes", "-days", "1"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const pem = fs.readFileSync(crt, "utf8");
    const spki = createPublicKey(pem).export({ type: "spki", format: "der" });
    return { pem, file: crt, pin: `sha256:${createHash("sha256").update(spki).digest("hex")}` };
}

describe("kubeadm-join.sh", () => {
    let ca: { pem: string; file: string; pin: string };
    let line: string;
    let settings: Record<string, string>;
    /** The kubeadm stub writes the CA it "discovered", as kubeadm join does. */
    const env = () => ({ STUB_CLUSTER_CA: ca.file });
    beforeAll(() => {
        ca = newCa(createSandbox().dir);
        line = joinLine.replace(hash, ca.pin);
        settings = { NODE_NAME: "k8s-worker-1", CA_CERT_HASH: ca.pin, CLUSTER_UID: clusterUid };
    });
    const join = (sb: Sandbox, input: string, more: Record<string, string> = {}) => runScript(sb, "kubeadm-join", { ...settings, ...more }, { input, env: env() });

    test("joins with the values from stdin and --node-name, recording the cluster it joined", () => {
        const sb = createSandbox();
        const result = join(sb, `${line}\n`);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("");
        expect(callsTo(sb, "kubeadm")).toEqual([
            `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash ${ca.pin} --node-name k8s-worker-1 --cri-socket unix:///run/containerd/containerd.sock`,
        ]);
        expect(existsRoot(sb, "etc/kubernetes/kubelet.conf")).toBe(true);
        expect(readRoot(sb, "etc/kubernetes/kubeadm-gcp-cluster-uid")).toBe(`${clusterUid}\n`);
        expect(result.stderr).not.toContain(token);
    });

    test("accepts the line without a trailing newline and with extra spaces", () => {
        const sb = createSandbox();
        const result = join(sb, `  ${line.replace(" --token", "   --token")} `);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toHaveLength(1);
    });

    test("a second run on a joined node does not join again and needs no stdin", () => {
        const sb = createSandbox();
        expect(join(sb, line).status).toBe(0);
        const second = join(sb, "");
        expect(second.status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm join"))).toHaveLength(1);
        expect(second.stderr).toMatch(/already joined this cluster/);
    });

    test("refuses a join line that pins another CA than the stack's, before touching the node", () => {
        const sb = createSandbox();
        const result = join(sb, line.replace(ca.pin, hash));
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/the join command pins another CA than the stack's \(sha256:[0-9a-f]{64}\)/);
        expect(result.stderr).not.toContain(token);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test.each([
        ["a short CA hash", joinLine.replace(hash, "sha256:abc123")],
        ["a malformed token", joinLine.replace(token, "ABCDEF.0123456789abcdef")],
        ["no endpoint", joinLine.replace("10.240.0.2:6443 ", "")],
        ["an unexpected flag", `${joinLine} --control-plane`],
        ["another command", joinLine.replace("kubeadm join", "kubeadm reset")],
    ])("fails on a line with %s without echoing it", (_what, bad) => {
        const sb = createSandbox();
        const result = join(sb, `${bad}\n`);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/malformed join command on stdin/);
        expect(result.stderr).not.toMatch(/0123456789abcdef/);
        expect(result.stdout).toBe("");
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test.each([
        ["CA_CERT_HASH", { CA_CERT_HASH: "sha256:beef" }, /CA_CERT_HASH must be sha256:<64 hex digits>/],
        ["CLUSTER_UID", { CLUSTER_UID: "not-a-uid" }, /CLUSTER_UID must be a UUID/],
    ])("refuses a malformed %s setting", (_key, bad, message) => {
        const sb = createSandbox();
        const result = join(sb, line, bad);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(message);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test("fails when stdin is empty", () => {
        const sb = createSandbox();
        const result = join(sb, "");
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/no join command on stdin/);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test("resets the leftovers of an unfinished join before joining", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/pki/ca.crt", "stale");
        const result = join(sb, line);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm").map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["kubeadm reset", "kubeadm join"]);
    });

    test("killed after recording the cluster but before kubeadm join: the re-run joins", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/kubeadm-gcp-cluster-uid", `${clusterUid}\n`);
        const result = join(sb, line);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm").map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["kubeadm join"]);
    });

    test("killed after kubeadm reset but before the join: the re-run joins without a second reset", () => {
        const sb = createSandbox();
        // What the reset of a node of an older incarnation leaves: only the old record.
        writeRoot(sb, "etc/kubernetes/kubeadm-gcp-cluster-uid", "00000000-0000-4000-8000-000000000000\n");
        const result = join(sb, line);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm").map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual(["kubeadm join"]);
        expect(readRoot(sb, "etc/kubernetes/kubeadm-gcp-cluster-uid")).toBe(`${clusterUid}\n`);
    });
});

describe("kubeadm-join.sh after the control plane changed", () => {
    /** A worker that joined the cluster incarnation `uid` whose CA is `ca`. */
    function joinedWorker(ca: { pem: string }, uid: string | undefined): Sandbox {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/kubelet.conf", "kubelet config of the old cluster");
        writeRoot(sb, "etc/kubernetes/pki/ca.crt", ca.pem);
        if (uid !== undefined) {
            writeRoot(sb, "etc/kubernetes/kubeadm-gcp-cluster-uid", `${uid}\n`);
        }
        return sb;
    }
    const settingsFor = (ca: { pin: string }, uid = clusterUid) => ({ NODE_NAME: "k8s-worker-1", CA_CERT_HASH: ca.pin, CLUSTER_UID: uid });
    const firstTwoWords = (sb: Sandbox) => callsTo(sb, "kubeadm").map((l) => l.split(" ").slice(0, 2).join(" "));

    test("joined to this cluster (the stack's CA, the same incarnation): nothing to do", () => {
        const ca = newCa(createSandbox().dir);
        const sb = joinedWorker(ca, clusterUid);
        const result = runScript(sb, "kubeadm-join", settingsFor(ca), { input: joinLine.replace(hash, ca.pin) });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(result.stderr).toMatch(/already joined this cluster/);
    });

    test("same CA, new incarnation (the control plane was replaced and initialised anew): reset, then join the new one", () => {
        const ca = newCa(createSandbox().dir);
        const sb = joinedWorker(ca, "00000000-0000-4000-8000-000000000000");
        const result = runScript(sb, "kubeadm-join", settingsFor(ca), { input: joinLine.replace(hash, ca.pin), env: { STUB_CLUSTER_CA: ca.file } });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([
            "kubeadm reset -f",
            `kubeadm join 10.240.0.2:6443 --token ${token} --discovery-token-ca-cert-hash ${ca.pin} --node-name k8s-worker-1 --cri-socket unix:///run/containerd/containerd.sock`,
        ]);
        expect(result.stderr).toMatch(/was joined to cluster 00000000-0000-4000-8000-000000000000, which is gone/);
        expect(result.stderr).not.toContain(token);
        expect(readRoot(sb, "etc/kubernetes/kubelet.conf")).toBe("kubelet config\n");
        expect(readRoot(sb, "etc/kubernetes/kubeadm-gcp-cluster-uid")).toBe(`${clusterUid}\n`);
    });

    test("joined to a cluster with another CA (made before the stack owned its CA): reset, then join", () => {
        const sb0 = createSandbox();
        const oldCa = newCa(sb0.dir);
        const stackCa = newCa(sb0.dir);
        const sb = joinedWorker(oldCa, undefined);
        const result = runScript(sb, "kubeadm-join", settingsFor(stackCa), { input: joinLine.replace(hash, stackCa.pin) });
        expect(result.status).toBe(0);
        expect(firstTwoWords(sb)).toEqual(["kubeadm reset", "kubeadm join"]);
        expect(result.stderr).toMatch(/joined to a cluster with another CA/);
    });

    test("a kubelet.conf without a CA counts as another cluster's: reset and join", () => {
        const ca = newCa(createSandbox().dir);
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/kubelet.conf", "orphan");
        const result = runScript(sb, "kubeadm-join", settingsFor(ca), { input: joinLine.replace(hash, ca.pin) });
        expect(result.status).toBe(0);
        expect(firstTwoWords(sb)).toEqual(["kubeadm reset", "kubeadm join"]);
    });
});
