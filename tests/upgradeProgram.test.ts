/**
 * Day 2 as the real program (index.ts under mocks) previews it: what the last `up` recorded is read
 * back, a `kubernetesVersion` bump previews only the upgrade, a second `up` previews nothing, a
 * renewal that falls due previews only the credentials and the kubeconfig, and a bad bump is
 * refused before any resource is declared. The steps' own order is in tests/upgrade.test.ts.
 */
import { planClientCredentials, rotationDays } from "../components/identity";
import { inClusterChanges, inputsAfterChange, previewChanges, ProgramRun, runProgram, unconfiguredProviders } from "./helpers/program";

const minimal = { "gcp:project": "test-project" };
const inAYear = "2027-11-20T10:00:00Z";
/** What the last `up` of a 1.35 cluster left in the stack's outputs. */
const at135 = { kubernetesVersion: "v1.35.9", adminCredentialsExpire: inAYear, credentialsRenewal: "initial" };

/** What the steps print on a real cluster: the version they established, the credentials' expiry. */
const printing = (version: string, expiry: string) => (name: string) => {
    if (/-(upgrade|upgrade-drain|upgrade-uncordon)$/.test(name)) {
        return `${version}\n`;
    }
    return name.endsWith("-credentials") ? `${expiry}\n` : undefined;
};

const grouped = (changes: Map<string, string>) => {
    const out: Record<string, string[]> = {};
    for (const [name, change] of [...changes.entries()].sort()) {
        (out[change] ??= []).push(name.replace(/^k8s-dev-/, ""));
    }
    return out;
};

let up135: ProgramRun;
beforeAll(async () => {
    up135 = await runProgram({ ...minimal, kubernetesVersion: "1.35" }, "dev", undefined, at135, printing("v1.35.9", inAYear));
});

test("the outputs the next `up` reads back are exported: the version, the credentials' expiry, the renewal key", () => {
    expect(up135.outputs.kubernetesVersion).toBe("v1.35.9");
    expect(up135.outputs.adminCredentialsExpire).toBe(inAYear);
    expect(up135.outputs.credentialsRenewal).toBe("initial");
    for (const key of ["kubernetesVersion", "adminCredentialsExpire", "credentialsRenewal"]) {
        expect(up135.secretOutputs).not.toContain(key);
    }
});

test("a second `up` with nothing changed previews nothing", async () => {
    const again = await runProgram({ ...minimal, kubernetesVersion: "1.35" }, "dev", undefined, at135, printing("v1.35.9", inAYear));
    expect(grouped(previewChanges(up135, again))).toEqual({});
});

test("1.35 -> 1.36: the preview shows the upgrade steps and the certificates' expiry read again, nothing else; the provider stays known", async () => {
    const up136 = await runProgram({ ...minimal, kubernetesVersion: "1.36" }, "dev", undefined, at135, printing("v1.36.3", "2027-12-01T10:00:00Z"));
    const upgradeSteps = ["control-plane-upgrade", ...["worker-1", "worker-2"].flatMap((w) => ["upgrade-drain", "upgrade", "upgrade-uncordon"].map((s) => `${w}-${s}`))];
    const changes = previewChanges(up135, up136);
    expect(grouped(changes)).toEqual({
        // Every node's packages and kubeadm's upgrade, in turn; the prepare steps stay as they are.
        update: upgradeSteps.map((s) => `cluster-${s}`).sort(),
        // `kubeadm upgrade apply` renews kubeadm's certificates: their expiry is read again. The
        // provider's credentials are the stack's own, so neither it nor anything in the cluster moves.
        replace: ["cluster-credentials"],
    });
    expect(unconfiguredProviders(up135, up136)).toEqual([]);
    expect(inClusterChanges(up136, changes)).toEqual([]);
    expect(up136.outputs.kubernetesVersion).toBe("v1.36.3");
});

test("kubeadm's certificates fall due: only the credentials step changes", async () => {
    const soon = { ...at135, adminCredentialsExpire: new Date(Date.now() + 10 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z") };
    const before = await runProgram({ ...minimal, kubernetesVersion: "1.35" }, "dev", undefined, { ...at135, adminCredentialsExpire: inAYear }, printing("v1.35.9", soon.adminCredentialsExpire));
    const due = await runProgram({ ...minimal, kubernetesVersion: "1.35" }, "dev", undefined, soon, printing("v1.35.9", inAYear));
    expect(due.outputs.credentialsRenewal).toBe(`renew-before-${soon.adminCredentialsExpire}`);
    expect(grouped(previewChanges(before, due))).toEqual({ replace: ["cluster-credentials"] });
});

describe("the provider's client certificate renews itself", () => {
    const dayMs = 86_400_000;
    /** The first day of one of slot a's periods, and what the program does around it. */
    const boundary = new Date(115 * rotationDays * dayMs);
    const at = (days: number) => new Date(boundary.getTime() + days * dayMs);
    const evaluate = (days: number) => runProgram({ ...minimal, kubernetesVersion: "1.35" }, "dev", undefined, at135, printing("v1.35.9", inAYear), at(days));
    let before: ProgramRun;
    let after: ProgramRun;
    beforeAll(async () => {
        before = await evaluate(-1);
        after = await evaluate(0.5);
    });

    test("crossing a slot's period: that slot is re-issued, the provider moves to the other (known) certificate, nothing in the cluster changes", () => {
        expect([planClientCredentials(at(-1)).inUse, planClientCredentials(at(0.5)).inUse]).toEqual(["a", "b"]);
        const changes = previewChanges(before, after);
        expect(grouped(changes)).toEqual({
            replace: ["identity-admin-a", "identity-admin-a-csr", "identity-admin-a-key"],
            update: ["cluster-k8s"],
        });
        expect(unconfiguredProviders(before, after)).toEqual([]);
        expect(inClusterChanges(after, changes)).toEqual([]);
    });

    test("within a period a second evaluation changes nothing", async () => {
        expect(grouped(previewChanges(after, await evaluate(40)))).toEqual({});
    });

    test("an `up` after more than half a period without one re-issues both slots: only then is the provider unknown in the preview", async () => {
        const later = await evaluate(rotationDays / 2 + 1);
        const changes = previewChanges(before, later);
        expect(unconfiguredProviders(before, later)).toEqual(["k8s-dev-cluster-k8s"]);
        expect(changes.get("k8s-dev-identity-admin-a")).toBe("replace");
        expect(changes.get("k8s-dev-identity-admin-b")).toBe("replace");
    });
});


test.each([
    ["1.35", { ...at135, kubernetesVersion: "v1.36.3" }, /kubernetesVersion: the cluster runs v1\.36\.3 and 1\.35 was requested; kubeadm cannot downgrade a cluster/],
    ["1.34", at135, /kubernetesVersion: "1\.34" is not valid; accepted: a Kubernetes minor that every pinned tool supports: 1\.35, 1\.36 or 1\.37/],
])("kubernetesVersion %s on a cluster recorded at %o is refused before any resource is declared", async (requested, previous, message) => {
    await expect(runProgram({ ...minimal, kubernetesVersion: requested }, "dev", undefined, previous)).rejects.toThrow(message);
});

test("a node prepared on a running cluster gets exactly the version it runs, also during a minor change; on a new cluster, the newest", async () => {
    const settingsOf = (r: ProgramRun, node: string) => {
        const script: string = r.get(`k8s-dev-cluster-${node}-prepare`).inputs.create;
        return [/export K8S_MINOR='([^']*)'/.exec(script)?.[1], /export K8S_VERSION='([^']*)'/.exec(script)?.[1]];
    };
    expect(settingsOf(up135, "worker-1")).toEqual(["1.35", "v1.35.9"]);
    expect(settingsOf(up135, "control-plane")).toEqual(["1.35", "v1.35.9"]);
    const fresh = await runProgram(minimal);
    expect(settingsOf(fresh, "worker-1")).toEqual(["1.37", ""]);
    // A worker added in the `up` that bumps 1.35 -> 1.36 joins the 1.35 control plane with a 1.35
    // kubelet (never newer than its API server); its own upgrade steps then take it to 1.36.
    const bumping = await runProgram({ ...minimal, kubernetesVersion: "1.36", workerCount: "3" }, "dev", undefined, at135);
    expect(settingsOf(bumping, "worker-3")).toEqual(["1.35", "v1.35.9"]);
    // Its drain, and so its upgrade, comes only after its join.
    expect(bumping.get("k8s-dev-cluster-worker-3-upgrade-drain").dependsOn).toContain("k8s-dev-cluster-worker-3-join");
});

test("after an upgrade, the next `up` only hands each live node's prepare step the new version (an update that runs `true`); a replaced VM is prepared with it", async () => {
    const at136 = { ...at135, kubernetesVersion: "v1.36.4" };
    const after = await runProgram({ ...minimal, kubernetesVersion: "1.36" }, "dev", undefined, at136, printing("v1.36.4", inAYear));
    const before = await runProgram({ ...minimal, kubernetesVersion: "1.36" }, "dev", undefined, at135, printing("v1.36.4", inAYear));
    const changes = grouped(previewChanges(before, after));
    expect(changes).toEqual({ update: ["cluster-control-plane-prepare", "cluster-worker-1-prepare", "cluster-worker-2-prepare"] });
    for (const node of ["control-plane", "worker-1", "worker-2"]) {
        expect(after.get(`k8s-dev-cluster-${node}-prepare`).inputs.update).toBe("true");
    }
    // A worker replaced later: the engine keeps no stale script (no ignoreChanges), so the new VM
    // installs the version the cluster runs now, not the one its predecessor was prepared with.
    expect(previewChanges(before, after, { replace: ["k8s-dev-nodes-worker-1"] }).get("k8s-dev-cluster-worker-1-prepare")).toBe("replace");
    const runs: string = inputsAfterChange(before, after, "k8s-dev-cluster-worker-1-prepare").create;
    expect(runs).toContain("export K8S_VERSION='v1.36.4'");
});

test("every node's preparation asks the control plane's API server what it runs, trusting the stack's CA: the record is stale after an `up` that failed past the control plane's upgrade", () => {
    const script: string = up135.get("k8s-dev-cluster-worker-1-prepare").inputs.create;
    // The control plane's internal address, as kubeadm init advertises it.
    const cpIp = /export ADVERTISE_ADDRESS='([^']*)'/.exec(up135.get("k8s-dev-cluster-control-plane-init").inputs.create)?.[1];
    expect(cpIp).toBeTruthy();
    expect(script).toContain(`export API_SERVER='${cpIp}:6443'`);
    expect(script).toMatch(/export CLUSTER_CA_CERT='-----BEGIN CERTIFICATE-----\n/);
});
