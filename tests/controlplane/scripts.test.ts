/**
 * The provisioning scripts that talk to the API server, exactly as the program renders them, run
 * with the real kubeadm and kubectl against a real control plane (FS_ROOT holds its admin.conf).
 * No kubelet runs here: where a script waits for a Ready node or Pod, the test sets that status,
 * and where a kubelet would finish a Pod's deletion, the test does (a "kubelet" loop, below).
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ControlPlanePkiFile, controlPlanePkiFiles, renderPkiBundle } from "../../components/identity";
import { runProgram } from "../helpers/program";
import { callsTo, createSandbox, removeSandboxes, runScript as runStubbed } from "../scripts/harness";
import { binaries, ControlPlane, kubeadmInitSettings, kubernetesRelease, sleep, startControlPlane, until } from "./controlPlane";
import { manifestsOf } from "./manifests";

let cp: ControlPlane;
beforeAll(async () => {
    cp = await startControlPlane();
});
afterAll(async () => {
    await cp?.stop();
    removeSandboxes();
});

const runOnControlPlane = (name: string, settings: Record<string, string>, env: Record<string, string> = {}) => cp.runScript(name, settings, env);

async function createNode(name: string, ready: boolean): Promise<void> {
    await cp.send("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubernetes.io/hostname": name } } });
    await setNodeReady(name, ready);
}

/** What a kubelet reports: its node's Ready condition. */
async function setNodeReady(name: string, ready: boolean): Promise<void> {
    const now = new Date().toISOString();
    const condition = { type: "Ready", status: ready ? "True" : "False", reason: ready ? "KubeletReady" : "KubeletNotReady", lastHeartbeatTime: now, lastTransitionTime: now };
    await cp.send("PATCH", `/api/v1/nodes/${name}/status`, { status: { conditions: [condition] } });
}

/** The CA's public key hash, as kubeadm's --discovery-token-ca-cert-hash computes it (SHA-256 of the SPKI). */
function caHash(): string {
    const ca = new crypto.X509Certificate(fs.readFileSync(path.join(cp.root, "etc/kubernetes/pki/ca.crt")));
    return crypto.createHash("sha256").update(ca.publicKey.export({ type: "spki", format: "der" })).digest("hex");
}

describe("join-token.sh and revoke-join-token.sh with the real kubeadm", () => {
    const worker = "k8s-dev-worker-1";
    const ca = () => path.join(cp.root, "etc/kubernetes/pki/ca.crt");
    /** kubectl as whoever the bootstrap token is, or its failure. */
    const asToken = (token: string) =>
        cp.kubectl(["--kubeconfig=/dev/null", `--server=${cp.server}`, `--certificate-authority=${ca()}`, `--token=${token}`, "auth", "whoami", "-o", "json"]);
    const tokensOf = (name: string) =>
        (JSON.parse(cp.kubectlOk(["-n", "kube-system", "get", "secrets", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "json"])).items as any[]).filter(
            (x) => Buffer.from(x.data.description ?? "", "base64").toString() === `join ${name}`,
        );
    const mint = async () => {
        const r = await runOnControlPlane("join-token", { WORKER_NAME: worker });
        expect(r.status).toBe(0);
        const lines = r.stdout.split("\n").filter((l) => l !== "");
        expect(lines).toHaveLength(1);
        const m = /^kubeadm join (\S+) --token ([a-z0-9]{6})\.([a-z0-9]{16}) --discovery-token-ca-cert-hash sha256:([a-f0-9]{64})$/.exec(lines[0]);
        expect(m).not.toBeNull();
        // The token never reaches the logs.
        expect(r.stderr).not.toContain(m![3]);
        return { endpoint: m![1], id: m![2], token: `${m![2]}.${m![3]}`, hash: m![4] };
    };

    test("prints one valid join line whose token, named for the worker and without expiry, authenticates as a bootstrapper", async () => {
        const { endpoint, id, token, hash } = await mint();
        expect(`https://${endpoint}`).toBe(cp.server);
        expect(hash).toBe(caHash());
        const stored = tokensOf(worker);
        expect(stored.map((x) => x.metadata.name)).toEqual([`bootstrap-token-${id}`]);
        // Valid until the worker has joined (revoke-join-token.sh then deletes it): nothing in
        // Pulumi's state can go stale between a failed join and its re-run.
        expect(stored[0].data.expiration).toBeUndefined();
        const whoami = asToken(token);
        expect(whoami.status).toBe(0);
        const user = JSON.parse(whoami.stdout).status.userInfo;
        expect(user.username).toBe(`system:bootstrap:${id}`);
        expect(user.groups).toContain("system:bootstrappers:kubeadm:default-node-token");
    });

    test("a second mint replaces the worker's earlier token; revoking leaves none that authenticates", async () => {
        const first = await mint();
        const second = await mint();
        expect(second.id).not.toBe(first.id);
        expect(tokensOf(worker).map((x) => x.metadata.name)).toEqual([`bootstrap-token-${second.id}`]);
        expect(asToken(first.token).status).not.toBe(0);

        // Another worker's token survives the revocation.
        const other = await runOnControlPlane("join-token", { WORKER_NAME: "another-worker" });
        expect(other.status).toBe(0);

        const revoked = await runOnControlPlane("revoke-join-token", { WORKER_NAME: worker });
        expect(revoked.status).toBe(0);
        expect(tokensOf(worker)).toEqual([]);
        expect(asToken(second.token).status).not.toBe(0);
        expect(tokensOf("another-worker")).toHaveLength(1);
        // Revoking again is a no-op.
        expect((await runOnControlPlane("revoke-join-token", { WORKER_NAME: worker })).status).toBe(0);
    });
});

describe("cluster-ready.sh", () => {
    test("succeeds once every node is Ready, not before, printing nothing on stdout", async () => {
        await createNode("ready-1", true);
        await createNode("ready-2", false);
        let finishedAt = 0;
        const pending = runOnControlPlane("cluster-ready", { EXPECTED_NODES: "ready-1 ready-2", TIMEOUT_SECONDS: "60" }, { POLL_INTERVAL_SECONDS: "1" }).then(
            (result) => ((finishedAt = Date.now()), result),
        );
        await sleep(3000);
        const readyAt = Date.now();
        await setNodeReady("ready-2", true);
        const r = await pending;
        // It waited for ready-2: the provider, which waits for this step, never meets a node that is not Ready.
        expect(finishedAt).toBeGreaterThanOrEqual(readyAt);
        expect(r.status).toBe(0);
        expect(r.stderr).toMatch(/node ready-1 is Ready\n.*node ready-2 is Ready\n/);
        expect(r.stdout).toBe("");
    });

    test("a node that never becomes Ready times out with the message, printing nothing", async () => {
        await createNode("never-ready", false);
        const r = await runOnControlPlane("cluster-ready", { EXPECTED_NODES: "ready-1 never-ready missing-node", TIMEOUT_SECONDS: "4" }, { POLL_INTERVAL_SECONDS: "1" });
        expect(r.status).not.toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/timed out after 4s; nodes not Ready: never-ready \(not Ready\) missing-node \(not registered\)/);
    });
});

describe("drain-node.sh on a node with the app's Pods and PodDisruptionBudget", () => {
    test("cordons, evicts only as the PDB allows, and deletes the node", async () => {
        const run = await runProgram({ "gcp:project": "test-project" });
        const app = manifestsOf(run.resources).filter((m) => ["Namespace", "Deployment", "PodDisruptionBudget"].includes(m.kind) && m.metadata.name === "http-go");
        const deployment = app.find((m) => m.kind === "Deployment")!;
        const namespace = deployment.metadata.namespace!;
        const replicas = (deployment.spec as any).replicas as number;
        for (const m of app.sort((a) => (a.kind === "Namespace" ? -1 : 1))) {
            cp.kubectlOk(["apply", "--server-side", "-f", "-"], JSON.stringify(m));
        }
        await createNode("drained-worker", true);
        await createNode("other-worker", true);

        // A stand-in for the scheduler and the kubelets: binds new Pods (the first `replicas` to the
        // drained worker, later ones to the other), marks them Ready, and finishes deletions.
        let bound = 0;
        let maxTerminating = 0;
        let stopped = false;
        const kubelet = (async () => {
            while (!stopped) {
                const pods = ((await cp.get(`/api/v1/namespaces/${namespace}/pods`))?.items ?? []) as any[];
                const terminating = pods.filter((p) => p.metadata.deletionTimestamp);
                maxTerminating = Math.max(maxTerminating, terminating.length);
                // As before with kubectl, a change that fails (the pod went meanwhile) is tried on the next round.
                const attempt = (change: Promise<unknown>) => change.catch(() => undefined);
                for (const p of terminating) {
                    // What a kubelet does once the containers stopped (`kubectl delete --grace-period=0 --force`).
                    await attempt(cp.send("DELETE", `/api/v1/namespaces/${namespace}/pods/${p.metadata.name}`, { gracePeriodSeconds: 0 }));
                }
                for (const p of pods.filter((x) => !x.spec.nodeName && !x.metadata.deletionTimestamp)) {
                    const node = bound++ < replicas ? "drained-worker" : "other-worker";
                    const binding = { apiVersion: "v1", kind: "Binding", metadata: { name: p.metadata.name }, target: { apiVersion: "v1", kind: "Node", name: node } };
                    await attempt(cp.send("POST", `/api/v1/namespaces/${namespace}/pods/${p.metadata.name}/binding`, binding));
                    const now = new Date().toISOString();
                    await attempt(
                        cp.send("PATCH", `/api/v1/namespaces/${namespace}/pods/${p.metadata.name}/status`, {
                            status: { phase: "Running", conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }] },
                        }),
                    );
                }
                await sleep(300);
            }
        })();
        try {
            // Every Pod of the app on the drained worker, Ready, and the PDB allowing one disruption.
            await until(
                "the app's PodDisruptionBudget: every Pod healthy, one disruption allowed",
                async () => {
                    const pdb = await cp.get(`/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/http-go`);
                    if (!pdb) {
                        throw new Error(`the app's PodDisruptionBudget ${namespace}/http-go is missing`);
                    }
                    return { currentHealthy: pdb.status?.currentHealthy, disruptionsAllowed: pdb.status?.disruptionsAllowed };
                },
                (status) => status.currentHealthy === replicas && status.disruptionsAllowed === 1,
                30_000,
            );
            const onNode = () =>
                (JSON.parse(cp.kubectlOk(["-n", namespace, "get", "pods", "--field-selector", "spec.nodeName=drained-worker", "-o", "json"])).items as any[]).length;
            expect(onNode()).toBe(replicas);

            const r = await runOnControlPlane("drain-node", { NODE_NAME: "drained-worker" }, { DRAIN_TIMEOUT_SECONDS: "90" });
            expect(r.status).toBe(0);
            expect(r.stderr).toMatch(/node\/drained-worker cordoned/);
            expect(r.stderr).not.toMatch(/WARNING/);
            expect(cp.kubectl(["get", "node", "drained-worker"]).status).not.toBe(0);
            // The PDB (maxUnavailable 1) was honoured: never two of the app's Pods going at once.
            expect(maxTerminating).toBe(1);
            const pods = JSON.parse(cp.kubectlOk(["-n", namespace, "get", "pods", "-o", "json"])).items as any[];
            expect(pods.map((p: any) => p.spec.nodeName)).toEqual(Array(replicas).fill("other-worker"));

            // A second run is a no-op.
            const again = await runOnControlPlane("drain-node", { NODE_NAME: "drained-worker" });
            expect(again.status).toBe(0);
            expect(again.stderr).toMatch(/not registered; nothing to do/);
        } finally {
            stopped = true;
            await kubelet;
        }
    });
});

/** kubeadm-init.sh's stdin: the stack's PKI (text stands in for the PEM blocks; tests/controlplane/identity.test.ts uses real ones). */
const pkiBundle = renderPkiBundle(Object.fromEntries(controlPlanePkiFiles.map((f) => [f, `-----BEGIN TEST-----\n${f}\n-----END TEST-----`])) as Record<ControlPlanePkiFile, string>);

describe("kubeadm-init.sh on a control plane whose API answers (the real API server; kubeadm stubbed)", () => {
    // The real kubectl answers the script's checks; the stub kubeadm records which init phases run.
    const settings = {
        NODE_NAME: "k8s-dev-control-plane",
        ADVERTISE_ADDRESS: "10.240.0.2",
        PUBLIC_ADDRESS: "203.0.113.10",
        POD_CIDR: "10.200.0.0/16",
        SERVICE_CIDR: "10.96.0.0/12",
        CLUSTER_NAME: "k8s-dev",
        FLANNEL_MANIFEST_URL: "https://github.com/flannel-io/flannel/releases/download/v0.28.9/kube-flannel.yml",
    };
    const controlPlaneSandbox = () => {
        const sb = createSandbox();
        fs.copyFileSync(binaries.kubectl, path.join(sb.bin, "kubectl"));
        fs.mkdirSync(path.join(sb.root, "etc/kubernetes"), { recursive: true });
        fs.copyFileSync(cp.adminConf, path.join(sb.root, "etc/kubernetes/admin.conf"));
        return sb;
    };
    const phases = (sb: ReturnType<typeof createSandbox>) =>
        callsTo(sb, "kubeadm")
            .filter((c) => c.startsWith("kubeadm init phase"))
            .map((c) => c.replace(/^kubeadm init phase (\S+).*$/, "$1"));

    test("an init that stopped after admin.conf: it names what is missing in the cluster and re-runs the remaining phases", () => {
        const sb = controlPlaneSandbox();
        const r = runStubbed(sb, "kubeadm-init", settings, { input: pkiBundle, env: { STUB_KUBEADM_VERSION: kubernetesRelease } });
        // The stub kubeadm creates nothing in the real cluster, so the objects are still missing after the phases.
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain(
            "kubeadm init did not finish (missing: kube-system/configmap/kubeadm-config, kube-public/configmap/cluster-info, kube-system/daemonset/kube-proxy, kube-system/deployment/coredns)",
        );
        expect(phases(sb)).toEqual(["upload-config", "mark-control-plane", "bootstrap-token", "kubelet-finalize", "addon"]);
        expect(r.stderr).toMatch(/still incomplete after re-running kubeadm's phases/);
    });

    test("a finished init is left alone, and Flannel's real manifest with the cluster's pod CIDR is accepted by the API server", () => {
        const objects = [
            { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kubeadm-config", namespace: "kube-system" }, data: {} },
            { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cluster-info", namespace: "kube-public" }, data: {} },
            ...[
                ["DaemonSet", "kube-proxy"],
                ["Deployment", "coredns"],
            ].map(([kind, name]) => ({
                apiVersion: "apps/v1",
                kind,
                metadata: { name, namespace: "kube-system" },
                spec: {
                    selector: { matchLabels: { app: name } },
                    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: `registry.k8s.io/${name}:test` }] } },
                },
            })),
        ];
        for (const o of objects) {
            cp.kubectlOk(["apply", "-f", "-"], JSON.stringify(o));
        }
        const sb = controlPlaneSandbox();
        const r = runStubbed(sb, "kubeadm-init", settings, { input: pkiBundle, env: { STUB_KUBEADM_VERSION: kubernetesRelease } });
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.stringContaining("control plane already initialised") });
        // Its one line of stdout, read with the real kubectl: the cluster's UID, which workers compare.
        expect(r.stdout).toBe(`${cp.kubectlOk(["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"])}\n`);
        expect(r.stdout).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$/);
        expect(phases(sb)).toEqual([]);
        expect(callsTo(sb, "kubeadm").some((c) => /^kubeadm init( |$)/.test(c))).toBe(false);

        const netConf = JSON.parse(JSON.parse(cp.kubectlOk(["-n", "kube-flannel", "get", "configmap", "kube-flannel-cfg", "-o", "json"])).data["net-conf.json"]);
        expect(netConf.Network).toBe(settings.POD_CIDR);
        expect(netConf.Backend.Type).toBe("vxlan");
        const flannel = JSON.parse(cp.kubectlOk(["-n", "kube-flannel", "get", "daemonset", "-o", "json"])).items;
        expect(flannel.map((d: any) => d.metadata.name)).toEqual(["kube-flannel-ds"]);
        expect(r.stderr).not.toMatch(/Warning:/);
    });
});

describe("kubeadm's own checks on what the scripts hand it", () => {
    test("kubeadm config validate accepts the configuration kubeadm-init.sh writes", () => {
        // kubeadm-init.sh runs under the stub harness (no kubelet or containerd here); its stub kubeadm
        // reports the pinned release, which the script writes into the configuration.
        const sb = createSandbox();
        const r = runStubbed(
            sb,
            "kubeadm-init",
            kubeadmInitSettings,
            { input: pkiBundle, env: { STUB_KUBEADM_VERSION: kubernetesRelease } },
        );
        expect(r.status).toBe(0);
        const config = path.join(sb.root, "etc/kubernetes/kubeadm-config.yaml");
        expect(fs.readFileSync(config, "utf8")).toContain(`kubernetesVersion: "${kubernetesRelease}"`);
        expect(spawnOk(binaries.kubeadm, ["config", "validate", "--config", config])).toMatch(/ok/i);
    });

    test("pull-images.sh on a worker pulls exactly kube-proxy and pause as the real kubeadm lists them", () => {
        const list = spawnOk(binaries.kubeadm, ["config", "images", "list", "--kubernetes-version", kubernetesRelease]).trim().split("\n");
        const expected = list.filter((i) => /\/(kube-proxy|pause):/.test(i));
        expect(expected).toEqual([`registry.k8s.io/kube-proxy:${kubernetesRelease}`, expect.stringMatching(/^registry\.k8s\.io\/pause:3\.\d+(\.\d+)?$/)]);

        const sb = createSandbox();
        fs.copyFileSync(binaries.kubeadm, path.join(sb.bin, "kubeadm"));
        const r = runStubbed(sb, "pull-images", { KUBEADM_IMAGES: "node", IMAGES: "", MANIFEST_URLS: "" });
        expect(r.status).toBe(0);
        expect(callsTo(sb, "crictl").filter((c) => c.startsWith("crictl pull")).map((c) => c.replace(/^crictl pull /, ""))).toEqual(expected);
    });
});

function spawnOk(binary: string, args: string[]): string {
    const r = spawnSync(binary, args, { encoding: "utf8", env: { ...process.env, HOME: os.tmpdir() } });
    if (r.status !== 0) {
        throw new Error(`${binary} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    }
    return r.stdout + r.stderr;
}
