/**
 * What the upgrade tests (upgradeControlPlane.test.ts, upgradeWorkers.test.ts) share: a control plane
 * with the real kube-scheduler and kwok's simulated nodes for the test file, workers reporting a
 * kubelet version, the app's real Deployment and PodDisruptionBudget, and the reads their checks
 * poll. Those reads and the helpers' own changes (a worker, its kubelet's version, reset) go to the
 * API in process (ControlPlane.get, send); kubectl runs where a test does what a person or the
 * provider would (cordon, server-side apply, scale), and inside the scripts under test.
 */
import { runProgram } from "../helpers/program";
import { ControlPlane, kwokNode, sleep, startControlPlane, until } from "./controlPlane";
import { manifestsOf } from "./manifests";
import { kubernetesPatches } from "./versions";

/** The upgrade the tier exercises: the previous supported minor's release to the default minor's. */
export const from = kubernetesPatches["1.36"];
export const to = kubernetesPatches["1.37"];

/** The namespaces the tests fill: the app's and the budget test's own. */
const testNamespaces = ["http-go", "upgrade-pdb"];

export interface PodView {
    name: string;
    node?: string;
    ready: boolean;
    terminating: boolean;
}

/**
 * Starts the control plane at `release` with nodes (controlPlane.ts, `nodes: true`) before the file's
 * tests and stops it after them; returns it and the helpers that act on it.
 */
export function upgradeCluster(release: string) {
    let started: ControlPlane | undefined;
    beforeAll(async () => {
        started = await startControlPlane({ release, nodes: true });
    });
    afterAll(async () => {
        await started?.stop();
    });
    const cp = (): ControlPlane => {
        if (!started) {
            throw new Error("the control plane has not started (upgradeCluster's beforeAll failed)");
        }
        return started;
    };

    const runOnControlPlane = (name: string, settings: Record<string, string>, env: Record<string, string> = {}) => cp().runScript(name, settings, env);

    const node = async (name: string) => {
        const found = await cp().get(`/api/v1/nodes/${name}`);
        if (!found) {
            throw new Error(`node ${name} not found`);
        }
        return found;
    };
    const drainedFor = async (name: string) => (await node(name)).metadata.annotations?.["kubeadm-gcp/drained-for-upgrade"];
    const nodeReady = async (name: string) => (await node(name)).status?.conditions?.find((c: any) => c.type === "Ready")?.status === "True";

    /** A worker that kwok runs, reporting a kubelet of `version`; Ready once kwok has seen it. */
    async function createWorker(name: string, version: string): Promise<void> {
        await cp().send("POST", "/api/v1/nodes", kwokNode(name, version));
        await until(`node ${name} Ready`, () => nodeReady(name), (ready) => ready);
        expect((await node(name)).status.nodeInfo.kubeletVersion).toBe(version);
    }

    /** What upgrade-worker.sh's kubelet restart changes in the API: the version the node reports. */
    async function restartKubeletAt(name: string, version: string): Promise<void> {
        await cp().send("PATCH", `/api/v1/nodes/${name}/status`, { status: { nodeInfo: { kubeletVersion: version } } });
    }

    /**
     * A cluster with no workload and no worker, for the next test. The tests' namespaces stay: a
     * namespace's deletion takes the namespace controller at least 5 s (10 s measured), the
     * workloads' about 0.3 s. Their pods are gone before their nodes: kwok finishes their deletion.
     */
    async function reset(): Promise<void> {
        const collections = testNamespaces.flatMap((ns) => [`/apis/apps/v1/namespaces/${ns}/deployments`, `/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets`]);
        for (const collection of collections) {
            // In the foreground, as `kubectl delete --cascade=foreground`: a Deployment goes after its pods.
            await cp().send("DELETE", collection, { propagationPolicy: "Foreground" });
        }
        // Waits until they are gone, as `kubectl delete --wait` did.
        const objectsIn = async (lists: string[]) => (await Promise.all(lists.map(async (list) => ((await cp().get(list))?.items ?? []).length))).reduce((a, b) => a + b, 0);
        const workloads = [...collections, ...testNamespaces.map((ns) => `/api/v1/namespaces/${ns}/pods`)];
        await until("the tests' workloads and their pods deleted", () => objectsIn(workloads), (n) => n === 0, 90_000);
        await cp().send("DELETE", "/api/v1/nodes");
        await until("every node deleted", () => objectsIn(["/api/v1/nodes"]), (n) => n === 0);
    }

    async function podsOf(ns: string): Promise<PodView[]> {
        const list = await cp().get(`/api/v1/namespaces/${ns}/pods`);
        return ((list?.items ?? []) as any[]).map((p) => ({
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
            cp().kubectlOk(["apply", "--server-side", "-f", "-"], JSON.stringify(m));
        }
        return { ns, replicas: (deployment.spec as any).replicas, maxUnavailable: (pdb.spec as any).maxUnavailable };
    }

    /** Samples how many of the app's pods are Ready while `during` runs: the fewest seen. */
    async function fewestReadyWhile<T>(ns: string, during: () => Promise<T>): Promise<{ result: T; fewest: number }> {
        let fewest = Number.MAX_SAFE_INTEGER;
        let done = false;
        const sampler = (async () => {
            while (!done) {
                fewest = Math.min(fewest, (await podsOf(ns)).filter((p) => p.ready).length);
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

    return { cp, runOnControlPlane, node, drainedFor, createWorker, restartKubeletAt, reset, podsOf, appFor, fewestReadyWhile };
}
