import * as fs from "fs";
import * as path from "path";
import {
    callsTo, calls, clearCalls, createSandbox, existsRoot, hasState, holdAptListsLock, perlPath, readRoot, releaseAptLocks, removeSandboxes, runScript, Sandbox,
    setState, snapshotRoot, writeRoot,
} from "./harness";

const cpName = "k8s-control-plane";
const worker = "k8s-worker-1";
const source = (minor: string) => `deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v${minor}/deb/ /\n`;

/** A node as prepare-node.sh leaves it: the v<minor> source and key, kubeadm/kubelet/kubectl of `deb`, held. */
function node(minor: string, deb: string): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/apt/sources.list.d/kubernetes.list", source(minor));
    writeRoot(sb, "etc/apt/keyrings/kubernetes-apt-keyring.gpg", `dearmored key of v${minor}\n`);
    for (const pkg of ["kubeadm", "kubelet", "kubectl"]) {
        setState(sb, `pkg/${pkg}`, deb);
        setState(sb, `hold/${pkg}`);
    }
    // The kubelet runs the package it was last started with (the systemctl stub updates it on restart).
    setState(sb, "kubelet-running", deb);
    return sb;
}

/** What a run killed after the kubelet's package upgrade but before its restart leaves on a node. */
function killedBeforeKubeletRestart(sb: Sandbox, deb: string): void {
    for (const pkg of ["kubeadm", "kubelet", "kubectl"]) {
        setState(sb, `pkg/${pkg}`, deb);
    }
    writeRoot(sb, "var/lib/kubeadm-gcp/kubelet-restart-pending", `${deb}\n`);
}

/** The control plane of a cluster running `version`, its packages at the same patch. */
function controlPlane(version: string): Sandbox {
    const [, minor, patch] = /^v(1\.\d+)\.(\d+)$/.exec(version)!;
    const sb = node(minor, `${minor}.${patch}-1.1`);
    writeRoot(sb, "etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n");
    setState(sb, "server-version", version);
    setState(sb, "kubeadm-config-version", version); // what kubeadm init uploaded
    setState(sb, `nodes/${cpName}`);
    setState(sb, `control-plane/${cpName}`); // labelled node-role.kubernetes.io/control-plane // empty: the node reports the kubelet package of this host
    setState(sb, "api-up");
    return sb;
}

/** kubectl calls without the --kubeconfig prefix. */
const kubectlCalls = (sb: Sandbox) => callsTo(sb, "kubectl").map((l) => l.replace(/^kubectl --kubeconfig \S+ /, ""));
const installs = (sb: Sandbox) => callsTo(sb, "apt-get").filter((l) => / install /.test(l)).map((l) => l.split(" ").filter((a) => /^kube\w+=/.test(a)).join(" "));
/** Index of the first call matching `pattern` in the full call log (-1 when none). */
const at = (sb: Sandbox, pattern: RegExp) => calls(sb).findIndex((l) => pattern.test(l));

afterAll(removeSandboxes);
afterAll(releaseAptLocks);

describe("upgrade-control-plane.sh", () => {
    const upgrade = (sb: Sandbox, minor: string, env: Record<string, string> = {}) =>
        runScript(sb, "upgrade-control-plane", { K8S_MINOR: minor, NODE_NAME: cpName }, { env: { POLL_INTERVAL_SECONDS: "0", ...env } });

    test("moves a 1.36 cluster to the newest 1.37 patch in kubeadm's documented order, and a re-run changes nothing", () => {
        const sb = controlPlane("v1.36.2");
        const result = upgrade(sb, "1.37");
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("v1.37.2\n");

        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toBe(source("1.37"));
        expect(readRoot(sb, "etc/apt/keyrings/kubernetes-apt-keyring.gpg")).toMatch(/stub kubernetes key/);
        expect(callsTo(sb, "curl")).toEqual([expect.stringContaining("https://pkgs.k8s.io/core:/stable:/v1.37/deb/Release.key")]);
        expect(installs(sb)).toEqual(["kubeadm=1.37.2-1.1", "kubelet=1.37.2-1.1 kubectl=1.37.2-1.1"]);
        expect(callsTo(sb, "kubeadm")).toEqual(["kubeadm upgrade plan v1.37.2", "kubeadm upgrade apply -y v1.37.2"]);
        expect(hasState(sb, "hold/kubeadm") && hasState(sb, "hold/kubelet") && hasState(sb, "hold/kubectl")).toBe(true);

        // kubeadm first, then plan/apply, then drain, kubelet+kubectl, restart, Ready, uncordon.
        const order = [
            /^kubectl .* version -o json$/,
            /^apt-get .* update$/,
            /^apt-get .* kubeadm=1\.37\.2-1\.1/,
            /^kubeadm upgrade plan v1\.37\.2$/,
            /^kubeadm upgrade apply -y v1\.37\.2$/,
            new RegExp(`^kubectl .* drain ${cpName} --ignore-daemonsets --delete-emptydir-data --timeout=300s$`),
            /^apt-get .* kubelet=1\.37\.2-1\.1 kubectl=1\.37\.2-1\.1/,
            /^systemctl daemon-reload$/,
            /^systemctl restart kubelet$/,
            new RegExp(`^kubectl .* wait --for=condition=Ready node/${cpName}`),
            new RegExp(`^kubectl .* uncordon ${cpName}$`),
            new RegExp(`^kubectl .* annotate node ${cpName} kubeadm-gcp/drained-for-upgrade-$`),
        ].map((p) => at(sb, p));
        expect(order).not.toContain(-1);
        expect([...order].sort((a, b) => a - b)).toEqual(order);

        const before = snapshotRoot(sb);
        clearCalls(sb);
        const again = upgrade(sb, "1.37");
        expect(again.status).toBe(0);
        expect(again.stdout).toBe("v1.37.2\n");
        expect(installs(sb)).toEqual([]);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(callsTo(sb, "systemctl")).toEqual([]);
        expect(callsTo(sb, "curl")).toEqual([]);
        expect(kubectlCalls(sb).filter((l) => /^(drain|uncordon|annotate) /.test(l))).toEqual([]);
        expect(snapshotRoot(sb)).toEqual(before);
    });

    /** The snapshot program the etcd-snapshots step installs, standing in: it logs its call, and fails when asked. */
    function withSnapshotProgram(sb: Sandbox, fails = false): Sandbox {
        writeRoot(sb, "usr/local/sbin/kubeadm-gcp-etcd-backup", `#!/usr/bin/env bash\necho "kubeadm-gcp-etcd-backup $*" >>"$STUB_LOG"\n${fails ? "echo 'upload failed' >&2; exit 1" : "echo etcd/x/y.snapshot"}\n`);
        fs.chmodSync(path.join(sb.root, "usr/local/sbin/kubeadm-gcp-etcd-backup"), 0o755);
        return sb;
    }

    test("takes an etcd snapshot after the plan and before kubeadm touches the control plane", () => {
        const sb = withSnapshotProgram(controlPlane("v1.36.2"));
        const result = upgrade(sb, "1.37");
        expect(result.status).toBe(0);
        const order = [/^kubeadm upgrade plan v1\.37\.2$/, /^kubeadm-gcp-etcd-backup snapshot pre-upgrade-v1\.37\.2$/, /^kubeadm upgrade apply -y v1\.37\.2$/].map((p) => at(sb, p));
        expect(order).not.toContain(-1);
        expect([...order].sort((a, b) => a - b)).toEqual(order);
        // The re-run has nothing to upgrade and takes no snapshot.
        clearCalls(sb);
        expect(upgrade(sb, "1.37").status).toBe(0);
        expect(callsTo(sb, "kubeadm-gcp-etcd-backup")).toEqual([]);
    });

    test("a failed snapshot stops the upgrade before kubeadm applies anything", () => {
        const sb = withSnapshotProgram(controlPlane("v1.36.2"), true);
        const result = upgrade(sb, "1.37");
        expect(result.status).toBe(1);
        expect(result.stderr).toMatch(/the etcd snapshot before upgrading to v1\.37\.2 failed .* not upgrading without one/);
        expect(callsTo(sb, "kubeadm")).toEqual(["kubeadm upgrade plan v1.37.2"]);
    });

    test("a new cluster already at the newest patch is left exactly as it is", () => {
        const sb = controlPlane("v1.36.2");
        const before = snapshotRoot(sb);
        const result = upgrade(sb, "1.36");
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("v1.36.2\n");
        expect(installs(sb)).toEqual([]);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(snapshotRoot(sb)).toEqual(before);
    });

    test("a manifest parked by an interrupted certificate renewal is put back before anything else", () => {
        const sb = controlPlane("v1.36.2");
        writeRoot(sb, "etc/kubernetes/manifests-parked-for-restart/kube-apiserver.yaml", "kind: Pod\n");
        const result = upgrade(sb, "1.36");
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/putting back kube-apiserver\.yaml, parked by an interrupted certificate renewal/);
        expect(readRoot(sb, "etc/kubernetes/manifests/kube-apiserver.yaml")).toBe("kind: Pod\n");
        expect(existsRoot(sb, "etc/kubernetes/manifests-parked-for-restart")).toBe(false);
        // Put back first: before the step reads the cluster's version.
        expect(calls(sb)[0]).toMatch(/^kubectl .* get --raw \/readyz$/);
    });

    test("an apply that stopped after its control-plane phase is applied again by the next run, which finishes it", () => {
        const sb = controlPlane("v1.36.2");
        const failed = upgrade(sb, "1.37", { STUB_APPLY_FAIL_AFTER_CONTROL_PLANE: "1" });
        expect(failed.status).not.toBe(0);
        clearCalls(sb);
        // The API server already runs v1.37.2; kubeadm's configuration still records v1.36.2.
        const resumed = upgrade(sb, "1.37");
        expect(resumed.status).toBe(0);
        expect(resumed.stderr).toMatch(/the API server runs v1\.37\.2 but kubeadm's configuration records v1\.36\.2: an earlier 'kubeadm upgrade apply' stopped after its control-plane phase; applying v1\.37\.2 again/);
        expect(callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm upgrade"))).toEqual(["kubeadm upgrade plan v1.37.2", "kubeadm upgrade apply -y v1.37.2"]);
        expect(resumed.stdout).toBe("v1.37.2\n");
        clearCalls(sb);
        expect(upgrade(sb, "1.37").status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test("kubeadm's configuration may record the version without its v: still complete", () => {
        const sb = controlPlane("v1.37.2");
        setState(sb, "kubeadm-config-version", "1.37.2");
        expect(upgrade(sb, "1.37").status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test("never moves to a newer patch of the minor it runs (a re-run for a changed script text must not roll the cluster)", () => {
        const sb = controlPlane("v1.36.0");
        const result = upgrade(sb, "1.36");
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("v1.36.0\n");
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(installs(sb)).toEqual([]);
        expect(callsTo(sb, "curl")).toEqual([]); // same source, same key
    });

    test.each([
        ["skipping a minor", "1.38", /refusing to skip a minor: the cluster runs v1\.36\.2 and kubernetesVersion asks for 1\.38.*set kubernetesVersion to 1\.37/],
        ["a downgrade", "1.35", /refusing to downgrade: the cluster runs v1\.36\.2 and kubernetesVersion asks for 1\.35/],
    ])("refuses %s before changing anything, naming both versions", (_what, minor, message) => {
        const sb = controlPlane("v1.36.2");
        const before = snapshotRoot(sb);
        const result = upgrade(sb, minor);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(message);
        expect(calls(sb).filter((l) => !/^kubectl .* version -o json$/.test(l))).toEqual([]);
        expect(snapshotRoot(sb)).toEqual(before);
    });

    test("within its minor, fails without installing anything when the repository no longer offers the running patch", () => {
        const sb = controlPlane("v1.36.2");
        const result = upgrade(sb, "1.36", { STUB_APT_NEWEST_PATCH: "1" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/the package repository for v1\.36 no longer offers kubeadm v1\.36\.2/);
        expect(installs(sb)).toEqual([]);
    });

    test("a drain blocked by a PodDisruptionBudget fails the step with the node cordoned; the next run finishes and uncordons", () => {
        const sb = controlPlane("v1.36.2");
        const blocked = upgrade(sb, "1.37", { STUB_DRAIN_RC: "1" });
        expect(blocked.status).not.toBe(0);
        expect(blocked.stderr).toMatch(/PodDisruptionBudget/);
        expect(installs(sb)).toEqual(["kubeadm=1.37.2-1.1"]); // kubelet untouched
        expect(hasState(sb, "annotations/k8s-control-plane/kubeadm-gcp_drained-for-upgrade")).toBe(true);

        clearCalls(sb);
        const resumed = upgrade(sb, "1.37");
        expect(resumed.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]); // the control plane was upgraded by the first run
        expect(installs(sb)).toEqual(["kubelet=1.37.2-1.1 kubectl=1.37.2-1.1"]);
        expect(kubectlCalls(sb)).toContain(`uncordon ${cpName}`);
        expect(hasState(sb, "annotations/k8s-control-plane/kubeadm-gcp_drained-for-upgrade")).toBe(false);
    });
});

describe("a kubelet restart that never happened (the run killed between the package and the restart)", () => {
    test("on the control plane: the next run restarts the kubelet, waits for it and uncordons the node", () => {
        const sb = controlPlane("v1.37.2");
        setState(sb, "kubelet-running", "1.36.2-1.1");
        killedBeforeKubeletRestart(sb, "1.37.2-1.1");
        setState(sb, `annotations/${cpName}/kubeadm-gcp_drained-for-upgrade`, "v1.37.2");
        const result = runScript(sb, "upgrade-control-plane", { K8S_MINOR: "1.37", NODE_NAME: cpName }, { env: { POLL_INTERVAL_SECONDS: "0", READY_TIMEOUT_SECONDS: "2" } });
        expect(result.stderr).toMatch(/restarting the kubelet \(its package was upgraded to 1\.37\.2-1\.1\)/);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "systemctl")).toEqual(["systemctl daemon-reload", "systemctl restart kubelet"]);
        expect(installs(sb)).toEqual([]);
        expect(kubectlCalls(sb)).toContain(`uncordon ${cpName}`);
        expect(existsRoot(sb, "var/lib/kubeadm-gcp/kubelet-restart-pending")).toBe(false);
    });

    test("on a worker: the next run restarts the kubelet, though every package is already the version", () => {
        const sb = node("1.37", "1.36.2-1.1");
        writeRoot(sb, "etc/kubernetes/kubelet.conf", "kubelet config\n");
        killedBeforeKubeletRestart(sb, "1.37.2-1.1");
        const result = runScript(sb, "upgrade-worker", { KUBERNETES_VERSION: "v1.37.2" });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "systemctl")).toEqual(["systemctl daemon-reload", "systemctl restart kubelet"]);
        // The stub's kubelet now runs the upgraded package.
        expect(fs.readFileSync(path.join(sb.state, "kubelet-running"), "utf8")).toBe("1.37.2-1.1");
        expect(existsRoot(sb, "var/lib/kubeadm-gcp/kubelet-restart-pending")).toBe(false);
        // A second run finds nothing to do.
        clearCalls(sb);
        expect(runScript(sb, "upgrade-worker", { KUBERNETES_VERSION: "v1.37.2" }).status).toBe(0);
        expect(callsTo(sb, "systemctl")).toEqual([]);
    });
});

describe("upgrade-worker.sh", () => {
    function joinedWorker(minor: string, deb: string): Sandbox {
        const sb = node(minor, deb);
        writeRoot(sb, "etc/kubernetes/kubelet.conf", "kubelet config\n");
        return sb;
    }
    const upgrade = (sb: Sandbox, version: string) => runScript(sb, "upgrade-worker", { KUBERNETES_VERSION: version });

    test("installs exactly the control plane's patch, runs kubeadm upgrade node with the new kubeadm, restarts the kubelet; a re-run changes nothing", () => {
        const sb = joinedWorker("1.36", "1.36.2-1.1");
        // 1.37.2 is the newest in the repository; the control plane runs 1.37.1, so that is what the worker gets.
        const result = upgrade(sb, "v1.37.1");
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("v1.37.1\n");
        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toBe(source("1.37"));
        expect(installs(sb)).toEqual(["kubeadm=1.37.1-1.1", "kubelet=1.37.1-1.1 kubectl=1.37.1-1.1"]);
        expect(callsTo(sb, "kubeadm")).toEqual(["kubeadm upgrade node"]);
        expect(hasState(sb, "upgraded-node-1.37.1-1.1")).toBe(true); // kubeadm was upgraded first
        const order = [/ kubeadm=1\.37\.1/, /^kubeadm upgrade node$/, / kubelet=1\.37\.1/, /^systemctl daemon-reload$/, /^systemctl restart kubelet$/].map((p) => at(sb, p));
        expect(order).not.toContain(-1);
        expect([...order].sort((a, b) => a - b)).toEqual(order);
        expect(["kubeadm", "kubelet", "kubectl"].every((p) => hasState(sb, `hold/${p}`))).toBe(true);

        const before = snapshotRoot(sb);
        clearCalls(sb);
        const again = upgrade(sb, "v1.37.1");
        expect(again.status).toBe(0);
        expect(again.stdout).toBe("v1.37.1\n");
        expect(calls(sb).filter((l) => !/^dpkg-query /.test(l))).toEqual([]);
        expect(snapshotRoot(sb)).toEqual(before);
    });

    test("retries apt-get update when the mirror fails a few times", () => {
        const sb = joinedWorker("1.36", "1.36.2-1.1");
        const result = runScript(sb, "upgrade-worker", { KUBERNETES_VERSION: "v1.37.2" }, { env: { STUB_APT_UPDATE_FAILURES: "2" } });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "apt-get").filter((l) => / update$/.test(l))).toHaveLength(3);
        expect(installs(sb)).toEqual(["kubeadm=1.37.2-1.1", "kubelet=1.37.2-1.1 kubectl=1.37.2-1.1"]);
    });

    test("waits while apt-daily holds apt's lock, longer than its retries would last, then upgrades", async () => {
        const sb = joinedWorker("1.36", "1.36.2-1.1");
        // Retrying (two attempts, the harness's zero delay) would meet the lock both times; waiting on it outlasts it.
        await holdAptListsLock(sb, 5);
        const started = Date.now();
        const result = runScript(sb, "upgrade-worker", { KUBERNETES_VERSION: "v1.37.2" }, {
            env: { STUB_PERL: perlPath ?? "", APT_RETRY_ATTEMPTS: "2", APT_LOCK_WAIT_SECONDS: "30", APT_LOCK_POLL_SECONDS: "1" },
        });
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
        expect(result.stderr).toMatch(/apt is busy \(Could not get lock .*\/var\/lib\/apt\/lists\/lock\. It is held by process \d+ \(perl\)\); trying again in 1s, for at most 30s/);
        expect(installs(sb)).toEqual(["kubeadm=1.37.2-1.1", "kubelet=1.37.2-1.1 kubectl=1.37.2-1.1"]);
        expect(result.stdout).toBe("v1.37.2\n");
    });

    test("refuses to move a kubelet back to an older control plane's version", () => {
        const sb = joinedWorker("1.37", "1.37.2-1.1");
        const result = upgrade(sb, "v1.36.2");
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/refusing to downgrade: this worker's kubelet is v1\.37\.2, newer than the control plane's v1\.36\.2/);
        expect(calls(sb).filter((l) => !/^dpkg-query /.test(l))).toEqual([]);
    });

    test("fails on a node that never joined", () => {
        const sb = node("1.36", "1.36.2-1.1");
        const result = upgrade(sb, "v1.37.2");
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/kubelet\.conf not found/);
        expect(calls(sb)).toEqual([]);
    });
});

describe("upgrade-drain.sh and upgrade-uncordon.sh (control plane, per worker)", () => {
    /** The default stack: the control plane and two workers, the second already upgraded. */
    function cluster(workerKubelet: string, workers = 2): Sandbox {
        const sb = controlPlane("v1.37.2");
        setState(sb, `nodes/${worker}`, workerKubelet);
        if (workers > 1) {
            setState(sb, "nodes/k8s-worker-2", "v1.37.2");
        }
        return sb;
    }
    const drain = (sb: Sandbox, version = "v1.37.2", env: Record<string, string> = {}) =>
        runScript(sb, "upgrade-drain", { NODE_NAME: worker, KUBERNETES_VERSION: version }, { env });
    const uncordon = (sb: Sandbox, version = "v1.37.2", env: Record<string, string> = {}) =>
        runScript(sb, "upgrade-uncordon", { NODE_NAME: worker, KUBERNETES_VERSION: version }, { env: { POLL_INTERVAL_SECONDS: "0", ...env } });
    const changes = (sb: Sandbox) => kubectlCalls(sb).filter((l) => /^(drain|uncordon|annotate) /.test(l));

    test("drain, upgrade, uncordon: the worker is drained through evictions, then uncordoned once it runs the new kubelet and is Ready; re-runs do nothing", () => {
        const sb = cluster("v1.36.2");
        const drained = drain(sb);
        expect(drained.status).toBe(0);
        expect(drained.stdout).toBe("v1.37.2\n");
        // No --force and no --disable-eviction: PodDisruptionBudgets hold.
        expect(changes(sb)).toEqual([
            `annotate node ${worker} --overwrite kubeadm-gcp/drained-for-upgrade=v1.37.2`,
            `drain ${worker} --ignore-daemonsets --delete-emptydir-data --timeout=300s`,
        ]);

        setState(sb, `nodes/${worker}`, "v1.37.2"); // upgrade-worker.sh ran on the worker
        clearCalls(sb);
        const back = uncordon(sb);
        expect(back.status).toBe(0);
        expect(back.stdout).toBe("v1.37.2\n");
        // The wait gets what is left of the 300 s budget: bash's SECONDS may tick between the deadline
        // and the wait, more likely on a loaded machine, so 299 is as right as 300.
        const wait = kubectlCalls(sb).find((l) => l.startsWith(`wait --for=condition=Ready node/${worker} `));
        expect(wait).toMatch(/ --timeout=(299|300)s$/);
        expect(changes(sb)).toEqual([`uncordon ${worker}`, `annotate node ${worker} kubeadm-gcp/drained-for-upgrade-`]);

        clearCalls(sb);
        expect(drain(sb).status).toBe(0);
        expect(uncordon(sb).status).toBe(0);
        expect(changes(sb)).toEqual([]);
    });

    test("a failed drain fails the step (the worker is not upgraded with pods still on it)", () => {
        const sb = cluster("v1.36.2");
        const result = drain(sb, "v1.37.2", { STUB_DRAIN_RC: "1" });
        expect(result.status).not.toBe(0);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/draining k8s-worker-1 did not finish within 300s/);
    });

    test("uncordon waits for the new kubelet and fails, leaving the node cordoned, when it never reports it", () => {
        const sb = cluster("v1.36.2");
        expect(drain(sb).status).toBe(0);
        clearCalls(sb);
        const result = uncordon(sb, "v1.37.2", { READY_TIMEOUT_SECONDS: "1", POLL_INTERVAL_SECONDS: "1" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/node k8s-worker-1 reports kubelet v1\.36\.2 after 1s, expected v1\.37\.2/);
        expect(changes(sb)).toEqual([]);
    });

    test("a node someone else cordoned is not uncordoned", () => {
        const sb = cluster("v1.37.2"); // up to date, and never drained by the upgrade
        expect(uncordon(sb).status).toBe(0);
        expect(changes(sb)).toEqual([]);
    });

    test("a node cordoned by hand before the upgrade is drained for it and stays cordoned afterwards", () => {
        const sb = cluster("v1.36.2");
        setState(sb, `cordoned/${worker}`);
        const drained = drain(sb);
        expect(drained.status).toBe(0);
        expect(drained.stderr).toMatch(/k8s-worker-1 was cordoned by hand: draining it for the upgrade; it stays cordoned afterwards/);
        expect(changes(sb)).toEqual([`drain ${worker} --ignore-daemonsets --delete-emptydir-data --timeout=300s`]);
        setState(sb, `nodes/${worker}`, "v1.37.2"); // upgrade-worker.sh ran on the worker
        clearCalls(sb);
        expect(uncordon(sb).status).toBe(0);
        expect(changes(sb)).toEqual([]);
        expect(hasState(sb, `cordoned/${worker}`)).toBe(true);
    });

    test("the only worker is drained by deleting its pods (no budget could ever let them go), saying the app is down until it is back", () => {
        const sb = cluster("v1.36.2", 1);
        const drained = drain(sb);
        expect(drained.status).toBe(0);
        expect(drained.stderr).toMatch(/k8s-worker-1 is the cluster's only worker: .* the app is down until the upgraded worker is Ready again/);
        expect(changes(sb)).toEqual([
            `annotate node ${worker} --overwrite kubeadm-gcp/drained-for-upgrade=v1.37.2`,
            `drain ${worker} --ignore-daemonsets --delete-emptydir-data --timeout=300s --disable-eviction`,
        ]);
    });

    test("refuses a worker whose kubelet is newer than the control plane", () => {
        const sb = cluster("v1.38.0");
        const result = drain(sb);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/refusing to downgrade: node k8s-worker-1 runs kubelet v1\.38\.0, newer than the control plane's v1\.37\.2/);
        expect(changes(sb)).toEqual([]);
    });
});
