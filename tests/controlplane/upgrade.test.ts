/**
 * The upgrade chain's scripts, as the program renders them, with the real kubectl against a real
 * control plane that starts at 1.36 and moves to 1.37, with the real kube-scheduler and kwok's
 * simulated nodes (controlPlane.ts, `nodes: true`): pods are placed by the scheduler, Running and
 * Ready by kwok, evicted through the real disruption controller against the app's real
 * PodDisruptionBudget, and Pending where nothing fits. Each node reports the kubelet version it was
 * created with, which drives the scripts' skew checks. The package and kubeadm parts need a node
 * (apt, a kubelet) and are covered by the stub tests (tests/scripts/upgrade.test.ts); here a worker's
 * kubelet upgrade is its reported version changing, as upgrade-worker.sh's kubelet restart does.
 */
import * as fs from "fs";
import * as path from "path";
import { runProgram } from "../helpers/program";
import { createSandbox, readRoot, removeSandboxes, runScript as runStubbed, setState, writeRoot } from "../scripts/harness";
import { versions } from "../../components/versions";
import { ControlPlane, kwokNode, startControlPlane } from "./controlPlane";
import { manifestsOf } from "./manifests";
import { kubernetesPatches } from "./versions";

/** The upgrade the tier exercises: the previous supported minor's release to the default minor's. */
const from = kubernetesPatches["1.36"];
const to = kubernetesPatches["1.37"];

let cp: ControlPlane;
beforeAll(async () => {
    cp = await startControlPlane({ release: from, nodes: true });
});
afterAll(async () => {
    await cp?.stop();
    removeSandboxes();
});

const runOnControlPlane = (name: string, settings: Record<string, string>, env: Record<string, string> = {}) => cp.runScript(name, settings, env);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, read: () => T, ok: (value: T) => boolean, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let value = read();
    while (!ok(value)) {
        if (Date.now() > deadline) {
            throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs / 1000}s`);
        }
        await sleep(250);
        value = read();
    }
    return value;
}

const node = (name: string) => JSON.parse(cp.kubectlOk(["get", "node", name, "-o", "json"]));
const drainedFor = (name: string) => node(name).metadata.annotations?.["kubeadm-gcp/drained-for-upgrade"];
const nodeReady = (name: string) => node(name).status?.conditions?.find((c: any) => c.type === "Ready")?.status === "True";

/** A worker that kwok runs, reporting a kubelet of `version`; Ready once kwok has seen it. */
async function createWorker(name: string, version: string): Promise<void> {
    cp.kubectlOk(["create", "-f", "-"], JSON.stringify(kwokNode(name, version)));
    await until(`node ${name} Ready`, () => nodeReady(name), (ready) => ready);
    expect(node(name).status.nodeInfo.kubeletVersion).toBe(version);
}

/** What upgrade-worker.sh's kubelet restart changes in the API: the version the node reports. */
function restartKubeletAt(name: string, version: string): void {
    cp.kubectlOk(["patch", "node", name, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { nodeInfo: { kubeletVersion: version } } })]);
}

/** The namespaces the tests fill; emptied while kwok still runs their nodes, so their pods' deletion finishes. */
const testNamespaces = ["http-go", "upgrade-pdb"];

/** A cluster with no workload and no worker, for the next test. */
function reset(): void {
    cp.kubectlOk(["delete", "namespace", ...testNamespaces, "--ignore-not-found", "--wait=true", "--timeout=90s"]);
    cp.kubectlOk(["delete", "nodes", "--all", "--wait=true", "--timeout=60s"]);
}

interface PodView {
    name: string;
    node?: string;
    ready: boolean;
    terminating: boolean;
}

function podsOf(ns: string): PodView[] {
    const r = cp.kubectl(["-n", ns, "get", "pods", "-o", "json"]);
    return (JSON.parse(r.stdout || '{"items":[]}').items as any[]).map((p) => ({
        name: p.metadata.name,
        node: p.spec.nodeName,
        ready: !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"),
        terminating: Boolean(p.metadata.deletionTimestamp),
    }));
}

/** The app's Namespace, Deployment and PodDisruptionBudget as the program declares them for `workerCount` workers. */
async function appFor(workerCount: number): Promise<{ ns: string; replicas: number; maxUnavailable: number }> {
    const run = await runProgram({ "gcp:project": "test-project", workerCount: String(workerCount) });
    const app = manifestsOf(run.resources).filter((m) => ["Namespace", "Deployment", "PodDisruptionBudget"].includes(m.kind) && m.metadata.name === "http-go");
    expect(app.map((m) => m.kind).sort()).toEqual(["Deployment", "Namespace", "PodDisruptionBudget"]);
    const deployment = app.find((m) => m.kind === "Deployment")!;
    const pdb = app.find((m) => m.kind === "PodDisruptionBudget")!;
    const ns = deployment.metadata.namespace!;
    expect(testNamespaces).toContain(ns);
    for (const m of app.sort((a) => (a.kind === "Namespace" ? -1 : 1))) {
        cp.kubectlOk(["apply", "--server-side", "-f", "-"], JSON.stringify(m));
    }
    return { ns, replicas: (deployment.spec as any).replicas, maxUnavailable: (pdb.spec as any).maxUnavailable };
}

/** Samples how many of the app's pods are Ready while `during` runs: the fewest seen. */
async function fewestReadyWhile<T>(ns: string, during: () => Promise<T>): Promise<{ result: T; fewest: number }> {
    let fewest = Number.MAX_SAFE_INTEGER;
    let done = false;
    const sampler = (async () => {
        while (!done) {
            fewest = Math.min(fewest, podsOf(ns).filter((p) => p.ready).length);
            await sleep(100);
        }
    })();
    try {
        const result = await during();
        return { result, fewest };
    } finally {
        done = true;
        await sampler;
    }
}

describe(`the control plane moves from ${from} to ${to}`, () => {
    test("upgrade-control-plane.sh reads the running version from `kubectl version -o json` and refuses a skipped minor or a downgrade, naming both", async () => {
        for (const [minor, message] of [
            ["1.38", `refusing to skip a minor: the cluster runs ${from} and kubernetesVersion asks for 1.38`],
            ["1.35", `refusing to downgrade: the cluster runs ${from} and kubernetesVersion asks for 1.35`],
        ]) {
            const before = fs.readdirSync(path.join(cp.root, "etc"));
            const r = await runOnControlPlane("upgrade-control-plane", { K8S_MINOR: minor, NODE_NAME: "test-control-plane" });
            expect(r.status).not.toBe(0);
            expect(r.stderr).toContain(message);
            expect(r.stdout).toBe("");
            expect(fs.readdirSync(path.join(cp.root, "etc"))).toEqual(before); // no apt source written
        }
    });

    test("its components restart at the new release, as `kubeadm upgrade apply` replaces their static Pods; the app's pods keep running on the old kubelets", async () => {
        reset();
        for (const name of ["worker-1", "worker-2"]) {
            await createWorker(name, from);
        }
        const { ns, replicas } = await appFor(2);
        await until("the app's pods Ready", () => podsOf(ns).filter((p) => p.ready).length, (n) => n === replicas);

        await cp.upgradeTo(to);
        expect(cp.release()).toBe(to);
        expect(JSON.parse(cp.kubectlOk(["version", "-o", "json"])).serverVersion.gitVersion).toBe(to);
        // The 1.37 API server keeps what the 1.36 one stored (same etcd): the nodes, their kubelets, the pods.
        expect(node("worker-1").status.nodeInfo.kubeletVersion).toBe(from);
        expect(podsOf(ns).filter((p) => p.ready)).toHaveLength(replicas);
        // The scheduler of the new release places a new pod (kwok runs it).
        cp.kubectlOk(["-n", ns, "scale", "deployment", "http-go", `--replicas=${replicas + 1}`]);
        await until("a pod placed by the new scheduler", () => podsOf(ns).filter((p) => p.ready).length, (n) => n === replicas + 1);
        cp.kubectlOk(["-n", ns, "scale", "deployment", "http-go", `--replicas=${replicas}`]);

        // The step reads the new version: 1.36 is now a downgrade.
        const r = await runOnControlPlane("upgrade-control-plane", { K8S_MINOR: "1.36", NODE_NAME: "test-control-plane" });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain(`refusing to downgrade: the cluster runs ${to} and kubernetesVersion asks for 1.36`);
    });
});

describe(`the workers' chain after the control plane runs ${to}: drains with the app's real Deployment and PodDisruptionBudget`, () => {
    beforeAll(async () => {
        if (cp.release() !== to) {
            await cp.upgradeTo(to);
        }
    });

    /**
     * The chain as the program orders it (components/upgrade.ts): drain, the worker's upgrade (here
     * its kubelet reporting the new version), uncordon, one worker after the other, each step's
     * output the next step's input.
     */
    async function upgradeWorkers(ns: string, workers: string[], version: string): Promise<string[]> {
        const drainLogs: string[] = [];
        let target = version;
        for (const name of workers) {
            const drained = await runOnControlPlane("upgrade-drain", { NODE_NAME: name, KUBERNETES_VERSION: target, DRAIN_TIMEOUT_SECONDS: "60" });
            expect(drained.stderr).not.toMatch(/ERROR/);
            expect(drained.status).toBe(0);
            expect(drained.stdout).toBe(`${target}\n`);
            drainLogs.push(drained.stderr);
            expect(node(name).spec.unschedulable).toBe(true);
            expect(podsOf(ns).filter((p) => p.node === name && !p.terminating)).toEqual([]);
            restartKubeletAt(name, drained.stdout.trim());
            const back = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: name, KUBERNETES_VERSION: drained.stdout.trim() });
            expect(back.stderr).not.toMatch(/ERROR/);
            expect(back.status).toBe(0);
            target = back.stdout.trim();
        }
        return drainLogs;
    }

    test.each([1, 2, 3])("%i worker(s): every worker ends at the new kubelet, uncordoned, with every replica Running and Ready; the budget holds with two or more, one is an announced outage", async (workerCount) => {
        reset();
        const workers = Array.from({ length: workerCount }, (_, i) => `worker-${i + 1}`);
        for (const name of workers) {
            await createWorker(name, from);
        }
        const { ns, replicas, maxUnavailable } = await appFor(workerCount);
        await until("the app's pods Ready", () => podsOf(ns).filter((p) => p.ready).length, (n) => n === replicas);

        const { result: drainLogs, fewest } = await fewestReadyWhile(ns, () => upgradeWorkers(ns, workers, to));

        for (const name of workers) {
            expect({ name, kubelet: node(name).status.nodeInfo.kubeletVersion, cordoned: node(name).spec.unschedulable ?? false, marker: drainedFor(name) }).toEqual({
                name,
                kubelet: to,
                cordoned: false,
                marker: undefined,
            });
        }
        const pods = await until("every replica Ready again", () => podsOf(ns), (ps) => ps.filter((p) => p.ready).length === replicas && ps.every((p) => !p.terminating));
        expect(pods.every((p) => workers.includes(p.node!))).toBe(true);
        if (workerCount === 1) {
            // Evictions could never finish: the replacement has no other node. The step deletes the
            // pods instead, and says what that means.
            expect(drainLogs[0]).toMatch(/worker-1 is the cluster's only worker: its pods have nowhere else to run, so they are deleted without their PodDisruptionBudget and the app is down until the upgraded worker is Ready again/);
            expect(fewest).toBe(0);
        } else {
            for (const log of drainLogs) {
                expect(log).toMatch(/PodDisruptionBudgets respected/);
                expect(log).not.toMatch(/only worker/);
            }
            expect(fewest).toBeGreaterThanOrEqual(replicas - maxUnavailable);
        }
    });

    test("a worker reporting a kubelet newer than the control plane is refused; one at its version is left alone; neither is cordoned", async () => {
        reset();
        const [, minor, patch] = /^v1\.(\d+)\.(\d+)$/.exec(to)!;
        const newer = `v1.${minor}.${Number(patch) + 1}`;
        await createWorker("ahead", newer);
        await createWorker("current", to);
        await createWorker("other", from);

        const refused = await runOnControlPlane("upgrade-drain", { NODE_NAME: "ahead", KUBERNETES_VERSION: to });
        expect(refused.status).not.toBe(0);
        expect(refused.stdout).toBe("");
        expect(refused.stderr).toContain(`refusing to downgrade: node ahead runs kubelet ${newer}, newer than the control plane's ${to}`);
        expect(node("ahead").spec.unschedulable).toBeUndefined();

        const resourceVersion = node("current").metadata.resourceVersion;
        const current = await runOnControlPlane("upgrade-drain", { NODE_NAME: "current", KUBERNETES_VERSION: to });
        expect(current.status).toBe(0);
        expect(current.stdout).toBe(`${to}\n`);
        expect(current.stderr).toContain(`node current already runs kubelet ${to}; not draining it`);
        expect(node("current").metadata.resourceVersion).toBe(resourceVersion);
    });

    test("the uncordon step waits for the reported kubelet, leaves the node cordoned when it does not come, and a node cordoned by hand stays cordoned", async () => {
        reset();
        await createWorker("slow", from);
        await createWorker("spare", from);
        const drained = await runOnControlPlane("upgrade-drain", { NODE_NAME: "slow", KUBERNETES_VERSION: to });
        expect(drained.status).toBe(0);
        const early = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "slow", KUBERNETES_VERSION: to, READY_TIMEOUT_SECONDS: "2" });
        expect(early.status).not.toBe(0);
        expect(early.stderr).toMatch(new RegExp(`reports kubelet ${from.replace(/\./g, "\\.")} after 2s, expected ${to.replace(/\./g, "\\.")}`));
        expect(node("slow").spec.unschedulable).toBe(true);
        expect(drainedFor("slow")).toBe(to);

        cp.kubectlOk(["cordon", "spare"]);
        const byHand = await runOnControlPlane("upgrade-drain", { NODE_NAME: "spare", KUBERNETES_VERSION: to });
        expect(byHand.status).toBe(0);
        expect(byHand.stderr).toMatch(/spare was cordoned by hand: draining it for the upgrade; it stays cordoned afterwards/);
        restartKubeletAt("spare", to);
        expect((await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "spare", KUBERNETES_VERSION: to })).status).toBe(0);
        expect(node("spare").spec.unschedulable).toBe(true);
    });

    test("a drain that the budget blocks fails the step instead of forcing pods off; the node stays cordoned, and the next run, once the pods have room, finishes the worker", async () => {
        reset();
        await createWorker("guarded", from);
        await createWorker("full", from);
        // The only other node has no room: an evicted pod's replacement stays Pending.
        cp.kubectlOk(["cordon", "full"]);
        const ns = "upgrade-pdb";
        cp.kubectlOk(["create", "namespace", ns]);
        const labels = { app: "guarded" };
        cp.kubectlOk(["-n", ns, "create", "-f", "-"], JSON.stringify({
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "guarded" },
            spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "c", image: "registry.k8s.io/pause:3.10.1" }] } } },
        }));
        cp.kubectlOk(["-n", ns, "create", "-f", "-"], JSON.stringify({
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: { name: "guarded" },
            spec: { minAvailable: 1, selector: { matchLabels: labels } },
        }));
        await until("both pods Ready on node guarded", () => podsOf(ns), (ps) => ps.length === 2 && ps.every((p) => p.ready && p.node === "guarded"));
        await until("the budget allowing one disruption", () => JSON.parse(cp.kubectlOk(["-n", ns, "get", "pdb", "guarded", "-o", "json"])).status, (s) => s?.currentHealthy === 2 && s?.disruptionsAllowed === 1);

        // One eviction goes through; its replacement stays Pending, so the budget refuses the second.
        const r = await runOnControlPlane("upgrade-drain", { NODE_NAME: "guarded", KUBERNETES_VERSION: to, DRAIN_TIMEOUT_SECONDS: "8" });
        expect(r.status).not.toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/disruption budget/);
        expect(r.stderr).toMatch(/draining guarded did not finish within 8s \(a PodDisruptionBudget may allow no disruption/);
        const stuck = await until("one pod Ready on guarded, its replacement Pending", () => podsOf(ns), (ps) => ps.filter((p) => !p.terminating).length === 2 && ps.some((p) => !p.node));
        expect(stuck.filter((p) => p.ready && p.node === "guarded")).toHaveLength(1);
        expect(node("guarded").spec.unschedulable).toBe(true);
        expect(drainedFor("guarded")).toBe(to);

        // Room appears (a person uncordons the other node); the next `pulumi up` runs the chain again.
        cp.kubectlOk(["uncordon", "full"]);
        const resumed = await runOnControlPlane("upgrade-drain", { NODE_NAME: "guarded", KUBERNETES_VERSION: to, DRAIN_TIMEOUT_SECONDS: "60" });
        expect(resumed.stderr).not.toMatch(/ERROR/);
        expect(resumed.status).toBe(0);
        expect(resumed.stdout).toBe(`${to}\n`);
        await until("both pods Ready on node full", () => podsOf(ns), (ps) => ps.length === 2 && ps.every((p) => p.ready && p.node === "full"));
        restartKubeletAt("guarded", to);
        const back = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "guarded", KUBERNETES_VERSION: to });
        expect(back.status).toBe(0);
        expect(node("guarded").spec.unschedulable).toBeUndefined();
        expect(drainedFor("guarded")).toBeUndefined();
    });
});

describe("a worker replaced after an `up` that failed once the control plane was upgraded (issue 19, item 4)", () => {
    test(`prepare-node.sh installs the version the API server runs (${to}), not the stale record (${from}); its drain then has nothing to do`, async () => {
        if (cp.release() !== to) {
            await cp.upgradeTo(to);
        }
        reset();
        // The node's packages come from the stubs; the version it follows comes from the real API
        // server's /version, read with the real curl trusting the cluster's CA only.
        const sb = createSandbox();
        writeRoot(sb, "etc/os-release", 'NAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\nUBUNTU_CODENAME=noble\n');
        writeRoot(sb, "etc/fstab", "LABEL=cloudimg-rootfs\t/\t ext4\tdefaults\t0 1\n");
        for (const pkg of ["curl", "gpg", "ca-certificates"]) {
            setState(sb, `pkg/${pkg}`, "1.0");
        }
        const [minor, patch] = /^v(1\.\d+)\.(\d+)$/.exec(to)!.slice(1);
        const stale = /^v(1\.\d+)\.\d+$/.exec(from)!;
        const prepared = runStubbed(
            sb,
            "prepare-node",
            {
                K8S_MINOR: stale[1],
                K8S_VERSION: from,
                CONTAINERD_VERSION: versions.containerdPackage,
                API_SERVER: new URL(cp.server).host,
                CLUSTER_CA_CERT: fs.readFileSync(path.join(cp.root, "etc", "kubernetes", "pki", "ca.crt"), "utf8"),
            },
            { env: { REAL_CURL: "/usr/bin/curl", STUB_APT_NEWEST_PATCH: String(Number(patch) + 1) } },
        );
        expect(prepared.stderr).not.toMatch(/ERROR/);
        expect(prepared.status).toBe(0);
        expect(prepared.stderr).toContain(`runs ${to}, not the recorded ${from}`);
        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toContain(`/core:/stable:/v${minor}/deb/ /`);
        const kubelet = fs.readFileSync(path.join(sb.state, "pkg", "kubelet"), "utf8");
        expect(kubelet).toBe(`${to.slice(1)}-1.1`);

        // It joins reporting that kubelet; the chain leaves it alone instead of refusing it.
        await createWorker("replacement", `v${kubelet.replace(/-.*/, "")}`);
        const drained = await runOnControlPlane("upgrade-drain", { NODE_NAME: "replacement", KUBERNETES_VERSION: to });
        expect(drained.status).toBe(0);
        expect(drained.stderr).toContain(`node replacement already runs kubelet ${to}; not draining it`);
    });
});
