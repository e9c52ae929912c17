/**
 * The upgrade scripts' talk with the API server, as the program renders them, with the real kubectl
 * against a real control plane: the version read from `kubectl version -o json`, the kubelet version
 * and annotation read with jsonpath, cordon/drain/uncordon, and a PodDisruptionBudget that blocks a
 * drain. The package and kubeadm parts need a node (apt, a kubelet) and are covered by the stub tests
 * (tests/scripts/upgrade.test.ts). No kubelet runs here: the test sets a node's reported kubelet
 * version and Ready condition itself.
 */
import * as fs from "fs";
import * as path from "path";
import { runProgram } from "../helpers/program";
import { ControlPlane, kubernetesRelease, startControlPlane } from "./controlPlane";
import { manifestsOf } from "./manifests";

let cp: ControlPlane;
beforeAll(async () => {
    cp = await startControlPlane();
});
afterAll(async () => {
    await cp?.stop();
});

const runOnControlPlane = (name: string, settings: Record<string, string>, env: Record<string, string> = {}) => cp.runScript(name, settings, env);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a kubelet of `version` reports for its node, Ready. */
function reportKubelet(name: string, version: string): void {
    const now = new Date().toISOString();
    const status = {
        nodeInfo: { kubeletVersion: version },
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", lastHeartbeatTime: now, lastTransitionTime: now }],
    };
    cp.kubectlOk(["patch", "node", name, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);
}

function createNode(name: string, version: string): void {
    cp.kubectlOk(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubernetes.io/hostname": name } } }));
    reportKubelet(name, version);
}

const node = (name: string) => JSON.parse(cp.kubectlOk(["get", "node", name, "-o", "json"]));
const drainedFor = (name: string) => node(name).metadata.annotations?.["kubeadm-gcp/drained-for-upgrade"];

describe("upgrade-control-plane.sh against the real API server", () => {
    test.each([
        ["1.38", `refusing to skip a minor: the cluster runs ${kubernetesRelease} and kubernetesVersion asks for 1.38`],
        ["1.35", `refusing to downgrade: the cluster runs ${kubernetesRelease} and kubernetesVersion asks for 1.35`],
    ])("reads the running version from `kubectl version -o json` and refuses %s, naming both versions", async (minor, message) => {
        const before = fs.readdirSync(path.join(cp.root, "etc"));
        const r = await runOnControlPlane("upgrade-control-plane", { K8S_MINOR: minor, NODE_NAME: "test-control-plane" });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain(message);
        expect(r.stdout).toBe("");
        expect(fs.readdirSync(path.join(cp.root, "etc"))).toEqual(before); // no apt source written
    });
});

describe("upgrade-drain.sh and upgrade-uncordon.sh against the real API server", () => {
    test("drains an old worker (cordoned, annotated), leaves it cordoned until its kubelet reports the version, then uncordons; re-runs change nothing", async () => {
        createNode("upgrade-worker-1", "v1.36.2");
        const drained = await runOnControlPlane("upgrade-drain", { NODE_NAME: "upgrade-worker-1", KUBERNETES_VERSION: "v1.37.2" });
        expect(drained.stderr).not.toMatch(/ERROR/);
        expect(drained.status).toBe(0);
        expect(drained.stdout).toBe("v1.37.2\n");
        expect(node("upgrade-worker-1").spec.unschedulable).toBe(true);
        expect(drainedFor("upgrade-worker-1")).toBe("v1.37.2");

        // The kubelet still reports the old version: uncordon waits, then gives up, leaving it cordoned.
        const early = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "upgrade-worker-1", KUBERNETES_VERSION: "v1.37.2", READY_TIMEOUT_SECONDS: "2" });
        expect(early.status).not.toBe(0);
        expect(early.stderr).toMatch(/reports kubelet v1\.36\.2 after 2s, expected v1\.37\.2/);
        expect(node("upgrade-worker-1").spec.unschedulable).toBe(true);

        reportKubelet("upgrade-worker-1", "v1.37.2");
        const back = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "upgrade-worker-1", KUBERNETES_VERSION: "v1.37.2" });
        expect(back.stderr).not.toMatch(/ERROR/);
        expect(back.status).toBe(0);
        expect(back.stdout).toBe("v1.37.2\n");
        expect(node("upgrade-worker-1").spec.unschedulable).toBeUndefined();
        expect(drainedFor("upgrade-worker-1")).toBeUndefined();

        const resourceVersion = node("upgrade-worker-1").metadata.resourceVersion;
        expect((await runOnControlPlane("upgrade-drain", { NODE_NAME: "upgrade-worker-1", KUBERNETES_VERSION: "v1.37.2" })).status).toBe(0);
        expect((await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "upgrade-worker-1", KUBERNETES_VERSION: "v1.37.2" })).status).toBe(0);
        expect(node("upgrade-worker-1").metadata.resourceVersion).toBe(resourceVersion);
    });

    test("a node cordoned by hand is not uncordoned", async () => {
        createNode("upgrade-worker-2", "v1.37.2");
        cp.kubectlOk(["cordon", "upgrade-worker-2"]);
        const r = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "upgrade-worker-2", KUBERNETES_VERSION: "v1.37.2" });
        expect(r.status).toBe(0);
        expect(node("upgrade-worker-2").spec.unschedulable).toBe(true);
    });

    test("a drain that a PodDisruptionBudget blocks fails the step instead of forcing the pod off", async () => {
        createNode("upgrade-worker-3", "v1.36.2");
        const ns = "upgrade-pdb";
        cp.kubectlOk(["create", "namespace", ns]);
        const labels = { app: "guarded" };
        cp.kubectlOk(["-n", ns, "create", "-f", "-"], JSON.stringify({
            apiVersion: "apps/v1",
            kind: "ReplicaSet",
            metadata: { name: "guarded" },
            spec: {
                replicas: 1,
                selector: { matchLabels: labels },
                template: { metadata: { labels }, spec: { nodeName: "upgrade-worker-3", containers: [{ name: "c", image: "registry.k8s.io/pause:3.10.1" }] } },
            },
        }));
        cp.kubectlOk(["-n", ns, "create", "-f", "-"], JSON.stringify({
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: { name: "guarded" },
            spec: { minAvailable: 1, selector: { matchLabels: labels } },
        }));
        // Stand in for the kubelet: the pod runs and is Ready, so the budget allows no disruption.
        let pdb: any;
        for (let i = 0; i < 100; i++) {
            const pods = JSON.parse(cp.kubectlOk(["-n", ns, "get", "pods", "-o", "json"])).items as any[];
            for (const p of pods.filter((x) => x.status?.phase !== "Running")) {
                const now = new Date().toISOString();
                cp.kubectl(["-n", ns, "patch", "pod", p.metadata.name, "--subresource=status", "--type=merge",
                    "-p", JSON.stringify({ status: { phase: "Running", conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }] } })]);
            }
            pdb = JSON.parse(cp.kubectlOk(["-n", ns, "get", "pdb", "guarded", "-o", "json"]));
            if (pdb.status?.currentHealthy === 1 && pdb.status?.disruptionsAllowed === 0) {
                break;
            }
            await sleep(300);
        }
        expect(pdb.status.disruptionsAllowed).toBe(0);

        const r = await runOnControlPlane("upgrade-drain", { NODE_NAME: "upgrade-worker-3", KUBERNETES_VERSION: "v1.37.2", DRAIN_TIMEOUT_SECONDS: "6" });
        expect(r.status).not.toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/disruption budget/);
        expect(r.stderr).toMatch(/draining upgrade-worker-3 did not finish within 6s \(a PodDisruptionBudget may allow no disruption/);
        // The pod is still there, and the node stays cordoned for a later run.
        expect(JSON.parse(cp.kubectlOk(["-n", ns, "get", "pods", "-o", "json"])).items).toHaveLength(1);
        expect(node("upgrade-worker-3").spec.unschedulable).toBe(true);
        expect(drainedFor("upgrade-worker-3")).toBe("v1.37.2");
    });
});

describe("upgrade-drain.sh on a cluster's only worker, with the app's real Deployment and PodDisruptionBudget", () => {
    test("eviction could never finish (the replacement has nowhere to run); the step drains by deletion and says the app is down", async () => {
        for (const n of JSON.parse(cp.kubectlOk(["get", "nodes", "-o", "json"])).items as any[]) {
            cp.kubectlOk(["delete", "node", n.metadata.name]);
        }
        const run = await runProgram({ "gcp:project": "test-project", workerCount: "1" });
        const app = manifestsOf(run.resources).filter((m) => ["Namespace", "Deployment", "PodDisruptionBudget"].includes(m.kind) && m.metadata.name === "http-go");
        const ns = app.find((m) => m.kind === "Deployment")!.metadata.namespace!;
        const replicas = (app.find((m) => m.kind === "Deployment")!.spec as any).replicas as number;
        for (const m of app.sort((a) => (a.kind === "Namespace" ? -1 : 1))) {
            cp.kubectlOk(["apply", "--server-side", "-f", "-"], JSON.stringify(m));
        }
        createNode("sole-worker", "v1.36.2");

        // Stands in for the scheduler and the kubelet: binds a new pod to a schedulable node (none once
        // the only worker is cordoned: the pod stays Pending, as the real scheduler leaves it), marks it
        // Ready, and finishes deletions.
        let stopped = false;
        const kubelet = (async () => {
            while (!stopped) {
                const pods = JSON.parse(cp.kubectl(["-n", ns, "get", "pods", "-o", "json"]).stdout || '{"items":[]}').items as any[];
                for (const p of pods.filter((x) => x.metadata.deletionTimestamp)) {
                    cp.kubectl(["-n", ns, "delete", "pod", p.metadata.name, "--grace-period=0", "--force"]);
                }
                const schedulable = !node("sole-worker").spec.unschedulable;
                for (const p of pods.filter((x) => !x.spec.nodeName && !x.metadata.deletionTimestamp && schedulable)) {
                    const binding = { apiVersion: "v1", kind: "Binding", metadata: { name: p.metadata.name }, target: { apiVersion: "v1", kind: "Node", name: "sole-worker" } };
                    cp.kubectl(["create", "--raw", `/api/v1/namespaces/${ns}/pods/${p.metadata.name}/binding`, "-f", "-"], JSON.stringify(binding));
                    const now = new Date().toISOString();
                    cp.kubectl(["-n", ns, "patch", "pod", p.metadata.name, "--subresource=status", "--type=merge",
                        "-p", JSON.stringify({ status: { phase: "Running", conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }] } })]);
                }
                await sleep(300);
            }
        })();
        const onNode = () => (JSON.parse(cp.kubectlOk(["-n", ns, "get", "pods", "--field-selector", "spec.nodeName=sole-worker", "-o", "json"])).items as any[]).length;
        try {
            for (let i = 0; i < 100 && onNode() < replicas; i++) {
                await sleep(300);
            }
            for (let i = 0; i < 100; i++) {
                const pdb = JSON.parse(cp.kubectlOk(["-n", ns, "get", "pdb", "http-go", "-o", "json"]));
                if (pdb.status?.currentHealthy === replicas && pdb.status?.disruptionsAllowed === 1) {
                    break;
                }
                await sleep(300);
            }
            expect(onNode()).toBe(replicas);

            // What a drain through evictions does here: one pod goes, its replacement stays Pending,
            // and the budget refuses every further eviction until the drain gives up.
            const evicting = cp.kubectl(["drain", "sole-worker", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=8s"]);
            expect(evicting.status).not.toBe(0);
            expect(evicting.stderr).toMatch(/disruption budget/);
            // (The stand-in finishes the evicted pod's deletion once this synchronous call returns.)
            for (let i = 0; i < 20 && onNode() > replicas - 1; i++) {
                await sleep(300);
            }
            expect(onNode()).toBe(replicas - 1);
            const pending = (JSON.parse(cp.kubectlOk(["-n", ns, "get", "pods", "-o", "json"])).items as any[]).filter((p) => !p.spec.nodeName);
            expect(pending).toHaveLength(1);
            cp.kubectlOk(["uncordon", "sole-worker"]);
            for (let i = 0; i < 100 && onNode() < replicas; i++) {
                await sleep(300);
            }

            const r = await runOnControlPlane("upgrade-drain", { NODE_NAME: "sole-worker", KUBERNETES_VERSION: "v1.37.2", DRAIN_TIMEOUT_SECONDS: "60" });
            expect(r.stderr).toMatch(/sole-worker is the cluster's only worker: .*the app is down until the upgraded worker is Ready again/);
            expect(r.status).toBe(0);
            expect(r.stdout).toBe("v1.37.2\n");
            expect(onNode()).toBe(0);
            expect(node("sole-worker").spec.unschedulable).toBe(true);
            expect(drainedFor("sole-worker")).toBe("v1.37.2");
        } finally {
            stopped = true;
            await kubelet;
        }
    });
});
