/**
 * The workers' chain of the upgrade: upgrade-drain.sh and upgrade-uncordon.sh as the program renders
 * them, with the real kubectl against a real control plane at 1.37, with the real kube-scheduler and
 * kwok's simulated nodes (controlPlane.ts, `nodes: true`): pods are placed by the scheduler, Running
 * and Ready by kwok, evicted through the real disruption controller against the app's real
 * PodDisruptionBudget, and Pending where nothing fits. Each node reports the kubelet version it was
 * created with (1.36 for a worker not yet upgraded), which drives the scripts' skew checks; here a
 * worker's kubelet upgrade is its reported version changing, as upgrade-worker.sh's kubelet restart
 * does (its package and kubeadm parts are covered by the stub tests, tests/scripts/upgrade.test.ts).
 *
 * The chain reads only the API server's version and the nodes' reported kubelets, so the control
 * plane starts at 1.37 instead of moving there first: the move itself is upgradeControlPlane.test.ts's.
 */
import { until } from "./controlPlane";
import { from, to, upgradeCluster } from "./upgradeCluster";

const { cp, runOnControlPlane, node, drainedFor, createWorker, restartKubeletAt, reset, podsOf, appFor, fewestReadyWhile } = upgradeCluster(to);

describe(`the workers' chain after the control plane runs ${to}: drains with the app's real Deployment and PodDisruptionBudget`, () => {
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
            expect((await node(name)).spec.unschedulable).toBe(true);
            expect((await podsOf(ns)).filter((p) => p.node === name && !p.terminating)).toEqual([]);
            await restartKubeletAt(name, drained.stdout.trim());
            const back = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: name, KUBERNETES_VERSION: drained.stdout.trim() });
            expect(back.stderr).not.toMatch(/ERROR/);
            expect(back.status).toBe(0);
            target = back.stdout.trim();
        }
        return drainLogs;
    }

    test.each([1, 2, 3])("%i worker(s): every worker ends at the new kubelet, uncordoned, with every replica Running and Ready; the budget holds with two or more, one is an announced outage", async (workerCount) => {
        await reset();
        const workers = Array.from({ length: workerCount }, (_, i) => `worker-${i + 1}`);
        for (const name of workers) {
            await createWorker(name, from);
        }
        const { ns, replicas, maxUnavailable } = await appFor(workerCount);
        await until("the app's pods Ready", async () => (await podsOf(ns)).filter((p) => p.ready).length, (n) => n === replicas);

        const { result: drainLogs, fewest } = await fewestReadyWhile(ns, () => upgradeWorkers(ns, workers, to));

        for (const name of workers) {
            const upgraded = await node(name);
            expect({ name, kubelet: upgraded.status.nodeInfo.kubeletVersion, cordoned: upgraded.spec.unschedulable ?? false, marker: await drainedFor(name) }).toEqual({
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
        await reset();
        const [, minor, patch] = /^v1\.(\d+)\.(\d+)$/.exec(to)!;
        const newer = `v1.${minor}.${Number(patch) + 1}`;
        await createWorker("ahead", newer);
        await createWorker("current", to);
        await createWorker("other", from);

        const refused = await runOnControlPlane("upgrade-drain", { NODE_NAME: "ahead", KUBERNETES_VERSION: to });
        expect(refused.status).not.toBe(0);
        expect(refused.stdout).toBe("");
        expect(refused.stderr).toContain(`refusing to downgrade: node ahead runs kubelet ${newer}, newer than the control plane's ${to}`);
        expect((await node("ahead")).spec.unschedulable).toBeUndefined();

        const resourceVersion = (await node("current")).metadata.resourceVersion;
        const current = await runOnControlPlane("upgrade-drain", { NODE_NAME: "current", KUBERNETES_VERSION: to });
        expect(current.status).toBe(0);
        expect(current.stdout).toBe(`${to}\n`);
        expect(current.stderr).toContain(`node current already runs kubelet ${to}; not draining it`);
        expect((await node("current")).metadata.resourceVersion).toBe(resourceVersion);
    });

    test("the uncordon step waits for the reported kubelet, leaves the node cordoned when it does not come, and a node cordoned by hand stays cordoned", async () => {
        await reset();
        await createWorker("slow", from);
        await createWorker("spare", from);
        const drained = await runOnControlPlane("upgrade-drain", { NODE_NAME: "slow", KUBERNETES_VERSION: to });
        expect(drained.status).toBe(0);
        const early = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "slow", KUBERNETES_VERSION: to, READY_TIMEOUT_SECONDS: "2" });
        expect(early.status).not.toBe(0);
        expect(early.stderr).toMatch(new RegExp(`reports kubelet ${from.replace(/\./g, "\\.")} after 2s, expected ${to.replace(/\./g, "\\.")}`));
        expect((await node("slow")).spec.unschedulable).toBe(true);
        expect(await drainedFor("slow")).toBe(to);

        cp().kubectlOk(["cordon", "spare"]);
        const byHand = await runOnControlPlane("upgrade-drain", { NODE_NAME: "spare", KUBERNETES_VERSION: to });
        expect(byHand.status).toBe(0);
        expect(byHand.stderr).toMatch(/spare was cordoned by hand: draining it for the upgrade; it stays cordoned afterwards/);
        await restartKubeletAt("spare", to);
        expect((await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "spare", KUBERNETES_VERSION: to })).status).toBe(0);
        expect((await node("spare")).spec.unschedulable).toBe(true);
    });

    test("a drain that the budget blocks fails the step instead of forcing pods off; the node stays cordoned, and the next run, once the pods have room, finishes the worker", async () => {
        await reset();
        await createWorker("guarded", from);
        await createWorker("full", from);
        // The only other node has no room: an evicted pod's replacement stays Pending.
        cp().kubectlOk(["cordon", "full"]);
        const ns = "upgrade-pdb";
        cp().kubectlOk(["create", "namespace", ns]);
        const labels = { app: "guarded" };
        cp().kubectlOk(["-n", ns, "create", "-f", "-"], JSON.stringify({
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "guarded" },
            spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "c", image: "registry.k8s.io/pause:3.10.1" }] } } },
        }));
        cp().kubectlOk(["-n", ns, "create", "-f", "-"], JSON.stringify({
            apiVersion: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: { name: "guarded" },
            spec: { minAvailable: 1, selector: { matchLabels: labels } },
        }));
        await until("both pods Ready on node guarded", () => podsOf(ns), (ps) => ps.length === 2 && ps.every((p) => p.ready && p.node === "guarded"));
        await until(
            "the budget allowing one disruption",
            async () => (await cp().get(`/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/guarded`))?.status,
            (s) => s?.currentHealthy === 2 && s?.disruptionsAllowed === 1,
        );

        // One eviction goes through; its replacement stays Pending, so the budget refuses the second.
        const r = await runOnControlPlane("upgrade-drain", { NODE_NAME: "guarded", KUBERNETES_VERSION: to, DRAIN_TIMEOUT_SECONDS: "8" });
        expect(r.status).not.toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/disruption budget/);
        expect(r.stderr).toMatch(/draining guarded did not finish within 8s \(a PodDisruptionBudget may allow no disruption/);
        const stuck = await until("one pod Ready on guarded, its replacement Pending", () => podsOf(ns), (ps) => ps.filter((p) => !p.terminating).length === 2 && ps.some((p) => !p.node));
        expect(stuck.filter((p) => p.ready && p.node === "guarded")).toHaveLength(1);
        expect((await node("guarded")).spec.unschedulable).toBe(true);
        expect(await drainedFor("guarded")).toBe(to);

        // Room appears (a person uncordons the other node); the next `pulumi up` runs the chain again.
        cp().kubectlOk(["uncordon", "full"]);
        const resumed = await runOnControlPlane("upgrade-drain", { NODE_NAME: "guarded", KUBERNETES_VERSION: to, DRAIN_TIMEOUT_SECONDS: "60" });
        expect(resumed.stderr).not.toMatch(/ERROR/);
        expect(resumed.status).toBe(0);
        expect(resumed.stdout).toBe(`${to}\n`);
        await until("both pods Ready on node full", () => podsOf(ns), (ps) => ps.length === 2 && ps.every((p) => p.ready && p.node === "full"));
        await restartKubeletAt("guarded", to);
        const back = await runOnControlPlane("upgrade-uncordon", { NODE_NAME: "guarded", KUBERNETES_VERSION: to });
        expect(back.status).toBe(0);
        expect((await node("guarded")).spec.unschedulable).toBeUndefined();
        expect(await drainedFor("guarded")).toBeUndefined();
    });
});
