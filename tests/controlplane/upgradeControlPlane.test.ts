/**
 * The control plane's move in the upgrade chain: upgrade-control-plane.sh as the program renders it,
 * with the real kubectl against a real control plane that starts at 1.36 and moves to 1.37
 * (ControlPlane.upgradeTo, as `kubeadm upgrade apply` replaces the static Pods), with the real
 * kube-scheduler and kwok's simulated nodes (controlPlane.ts, `nodes: true`) keeping the app's pods
 * running through it; then a worker replaced after that move, prepared by prepare-node.sh against the
 * real API server's version. The package and kubeadm parts need a node (apt, a kubelet) and are
 * covered by the stub tests (tests/scripts/upgrade.test.ts). The workers' chain that follows is
 * upgradeWorkers.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import { createSandbox, readRoot, removeSandboxes, runScript as runStubbed, setState, writeRoot } from "../scripts/harness";
import { versions } from "../../components/versions";
import { until } from "./controlPlane";
import { from, to, upgradeCluster } from "./upgradeCluster";

const { cp, runOnControlPlane, node, createWorker, reset, podsOf, appFor } = upgradeCluster(from);
afterAll(() => removeSandboxes());

describe(`the control plane moves from ${from} to ${to}`, () => {
    test("upgrade-control-plane.sh reads the running version from `kubectl version -o json` and refuses a skipped minor or a downgrade, naming both", async () => {
        for (const [minor, message] of [
            ["1.38", `refusing to skip a minor: the cluster runs ${from} and kubernetesVersion asks for 1.38`],
            ["1.35", `refusing to downgrade: the cluster runs ${from} and kubernetesVersion asks for 1.35`],
        ]) {
            const before = fs.readdirSync(path.join(cp().root, "etc"));
            const r = await runOnControlPlane("upgrade-control-plane", { K8S_MINOR: minor, NODE_NAME: "test-control-plane" });
            expect(r.status).not.toBe(0);
            expect(r.stderr).toContain(message);
            expect(r.stdout).toBe("");
            expect(fs.readdirSync(path.join(cp().root, "etc"))).toEqual(before); // no apt source written
        }
    });

    test("its components restart at the new release, as `kubeadm upgrade apply` replaces their static Pods; the app's pods keep running on the old kubelets", async () => {
        await reset();
        for (const name of ["worker-1", "worker-2"]) {
            await createWorker(name, from);
        }
        const { ns, replicas } = await appFor(2);
        await until("the app's pods Ready", async () => (await podsOf(ns)).filter((p) => p.ready).length, (n) => n === replicas);

        await cp().upgradeTo(to);
        expect(cp().release()).toBe(to);
        expect((await cp().get("/version")).gitVersion).toBe(to);
        // The 1.37 API server keeps what the 1.36 one stored (same etcd): the nodes, their kubelets, the pods.
        expect((await node("worker-1")).status.nodeInfo.kubeletVersion).toBe(from);
        expect((await podsOf(ns)).filter((p) => p.ready)).toHaveLength(replicas);
        // The scheduler of the new release places a new pod (kwok runs it).
        cp().kubectlOk(["-n", ns, "scale", "deployment", "http-go", `--replicas=${replicas + 1}`]);
        await until("a pod placed by the new scheduler", async () => (await podsOf(ns)).filter((p) => p.ready).length, (n) => n === replicas + 1);
        cp().kubectlOk(["-n", ns, "scale", "deployment", "http-go", `--replicas=${replicas}`]);

        // The step reads the new version: 1.36 is now a downgrade.
        const r = await runOnControlPlane("upgrade-control-plane", { K8S_MINOR: "1.36", NODE_NAME: "test-control-plane" });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain(`refusing to downgrade: the cluster runs ${to} and kubernetesVersion asks for 1.36`);
    });
});

describe("a worker replaced after an `up` that failed once the control plane was upgraded (issue 19, item 4)", () => {
    test(`prepare-node.sh installs the version the API server runs (${to}), not the stale record (${from}); its drain then has nothing to do`, async () => {
        if (cp().release() !== to) {
            await cp().upgradeTo(to);
        }
        await reset();
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
                API_SERVER: new URL(cp().server).host,
                CLUSTER_CA_CERT: fs.readFileSync(path.join(cp().root, "etc", "kubernetes", "pki", "ca.crt"), "utf8"),
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
