/**
 * etcd snapshots and the restore, under mocks (components/backups.ts, KubeadmCluster's restore and
 * snapshot steps): the bucket's settings, who may write it, where the key goes, the restore's place
 * in the graph, and the preview of a control-plane replacement once the stack has recorded its
 * cluster (the provider and every object stay).
 */
import { newestSnapshot, snapshotTime } from "../components/backups";
import { ConfigError, parseConfig } from "../components/config";
import { renderedMarker } from "../components/scripts";
import {
    fakeSnapshots,
    inClusterChanges,
    inputsAfterChange,
    previewChanges,
    ProgramRun,
    runProgram,
    unconfiguredProviders,
} from "./helpers/program";

const minimal = { "gcp:project": "test-project" };
let run: ProgramRun;

beforeAll(async () => {
    run = await runProgram(minimal);
});

const bucketOf = (r: ProgramRun) => r.byType("gcp:storage/bucket:Bucket");
const command = (r: ProgramRun, suffix: string) => r.byType("command:remote:Command").find((c) => c.name.endsWith(suffix))!;

describe("the snapshot bucket", () => {
    test("one bucket in the cluster's region: uniform access, public access prevented, versioned, snapshots expire after 7 days", () => {
        const buckets = bucketOf(run);
        expect(buckets).toHaveLength(1);
        const b = buckets[0].inputs;
        expect(b.location).toBe("US-CENTRAL1");
        expect(b.uniformBucketLevelAccess).toBe(true);
        expect(b.publicAccessPrevention).toBe("enforced");
        expect(b.versioning).toEqual({ enabled: true });
        expect(b.lifecycleRules).toEqual([
            { action: { type: "Delete" }, condition: { age: 7, withState: "LIVE", matchesPrefixes: ["etcd/"] } },
            { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: 1, withState: "ARCHIVED" } },
        ]);
        // `pulumi destroy` removes it with its snapshots by default.
        expect(b.forceDestroy).toBe(true);
        expect(buckets[0].retainOnDelete).toBe(false);
    });

    test("retainBackupsOnDestroy keeps the bucket, its snapshots and its grants out of `pulumi destroy`", async () => {
        const kept = await runProgram({ ...minimal, retainBackupsOnDestroy: "true", etcdBackupRetentionDays: "30" });
        const b = bucketOf(kept)[0];
        expect(b.inputs.forceDestroy).toBe(false);
        expect(b.retainOnDelete).toBe(true);
        expect(b.inputs.lifecycleRules[0].condition.age).toBe(30);
        for (const grant of kept.byType("gcp:storage/bucketIAMMember:BucketIAMMember")) {
            expect(grant.retainOnDelete).toBe(true);
        }
    });

    test("only the control plane's account may add and read snapshots, through grants on this bucket alone", () => {
        const grants = run.byType("gcp:storage/bucketIAMMember:BucketIAMMember");
        expect(grants.map((g) => g.inputs.role).sort()).toEqual(["roles/storage.objectCreator", "roles/storage.objectViewer"]);
        for (const g of grants) {
            expect(g.inputs.member).toBe("serviceAccount:k8s-dev-control@test-project.iam.gserviceaccount.com");
            expect(g.propertyDependencies.bucket).toEqual([bucketOf(run)[0].name]);
        }
        // The steps that use the bucket wait for both grants (a data dependency, through the URL).
        for (const suffix of ["-control-plane-etcd-restore", "-control-plane-etcd-snapshots"]) {
            for (const g of grants) {
                expect(command(run, suffix).dataDependencies).toContain(g.name);
            }
        }
        // No storage role anywhere in the project: workers (and anything else) get none.
        expect(run.byType("gcp:projects/iAMMember:IAMMember").filter((b) => /storage/.test(b.inputs.role))).toEqual([]);
        const worker = run.byType("gcp:compute/instance:Instance").find((i) => i.inputs.name === "k8s-dev-worker-1")!;
        expect(worker.inputs.serviceAccount.email).toBe("k8s-dev-nodes@test-project.iam.gserviceaccount.com");
    });
});

describe("the key", () => {
    test("is generated in the stack's secret state, reaches the control plane only as secret stdin, and is exported as a secret", () => {
        const key = run.outputs.etcdBackupKey as string;
        expect(key).toMatch(/^[0-9a-f]{64}$/);
        expect(run.secretOutputs).toContain("etcdBackupKey");
        for (const suffix of ["-control-plane-etcd-restore", "-control-plane-etcd-snapshots"]) {
            const c = command(run, suffix);
            expect(c.inputs.stdin).toBe(key);
            expect(c.secretInputs).toContain("stdin");
        }
        for (const r of run.resources) {
            expect({ name: r.name, leaks: JSON.stringify(r.inputs).includes(key) && !r.secretInputs.length }).toEqual({ name: r.name, leaks: false });
            for (const [input, value] of Object.entries(r.inputs)) {
                if (input !== "stdin" && JSON.stringify(value).includes(key)) {
                    expect({ name: r.name, input, secret: r.secretInputs.includes(input) }).toEqual({ name: r.name, input, secret: true });
                }
            }
        }
    });

    test("etcdBackupKey from config replaces the generated one (to read another stack's snapshots)", async () => {
        const given = "ab".repeat(32);
        const withKey = await runProgram({ ...minimal, etcdBackupKey: given });
        expect(withKey.byType("random:index/randomBytes:RandomBytes")).toEqual([]);
        expect(command(withKey, "-control-plane-etcd-restore").inputs.stdin).toBe(given);
    });
});

describe("the steps on the control plane", () => {
    test("the restore takes the recorded cluster's UID; a change of its settings on a live VM is an update that runs `true`", async () => {
        const uid = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b";
        const later = await runProgram(minimal, "dev", undefined, { clusterUid: uid });
        const restore = command(later, "-control-plane-etcd-restore");
        expect(restore.inputs.create).toContain(renderedMarker("etcd-backup"));
        expect(restore.inputs.create).toContain("export MODE='restore'");
        expect(restore.inputs.create).toContain(`export PREVIOUS_CLUSTER_UID='${uid}'`);
        expect(restore.inputs.create).toContain("export RESTORE_FROM='newest'");
        expect(restore.inputs.create).toMatch(/export BACKUP_URL='gs:\/\/[^']+'/);
        expect(restore.inputs.update).toBe("true");
        expect(Object.fromEntries(previewChanges(run, later))).toEqual({ "k8s-dev-cluster-control-plane-etcd-restore": "update" });
    });

    test("a new control-plane VM restores with today's settings, not those stored when the step was first created", async () => {
        // The stack's first up stored the step with no recorded cluster; later the control plane is
        // replaced. With `ignoreChanges: ["create"]` the replacement would run the stored script,
        // with PREVIOUS_CLUSTER_UID empty, and would start an empty cluster instead of stopping.
        const uid = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b";
        const later = await runProgram({ ...minimal, etcdRestoreFrom: fakeSnapshots[0] }, "dev", undefined, { clusterUid: uid });
        const name = "k8s-dev-cluster-control-plane-etcd-restore";
        expect(previewChanges(run, later, { replace: ["k8s-dev-nodes-control-plane"] }).get(name)).toBe("replace");
        const runs = inputsAfterChange(run, later, name).create as string;
        expect(runs).toContain(`export PREVIOUS_CLUSTER_UID='${uid}'`);
        expect(runs).toContain(`export RESTORE_FROM='${fakeSnapshots[0]}'`);
    });

    test("the schedule follows the config: a new interval re-runs the install step only", async () => {
        const snapshots = command(run, "-control-plane-etcd-snapshots");
        expect(snapshots.inputs.create).toContain("export MODE='install'");
        expect(snapshots.inputs.create).toContain("export INTERVAL_MINUTES='60'");
        const often = await runProgram({ ...minimal, etcdBackupIntervalMinutes: "15" });
        expect(Object.fromEntries(previewChanges(run, often))).toEqual({ "k8s-dev-cluster-control-plane-etcd-snapshots": "update" });
    });

    test("the control plane's upgrade waits for the schedule (it snapshots before it starts)", () => {
        const upgrade = command(run, "-control-plane-upgrade");
        const snapshots = command(run, "-control-plane-etcd-snapshots");
        expect([...upgrade.dependsOn, ...upgrade.dataDependencies, ...upgrade.replacementTriggerDependencies]).toContain(snapshots.name);
    });

    test("npm run replace:control-plane's KUBEADM_GCP_NEW_CLUSTER=1 asks for a new cluster", async () => {
        process.env.KUBEADM_GCP_NEW_CLUSTER = "1";
        try {
            const fresh = await runProgram(minimal, "dev", undefined, { clusterUid: "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b", clusterIdentifier: "k8s-dev/old" });
            expect(command(fresh, "-control-plane-etcd-restore").inputs.create).toContain("export RESTORE_FROM='none'");
            expect(fresh.outputs.clusterIdentifier).not.toBe("k8s-dev/old");
        } finally {
            delete process.env.KUBEADM_GCP_NEW_CLUSTER;
        }
    });
});

describe("outputs", () => {
    test("the newest snapshot in the bucket, with its time", () => {
        expect(run.outputs.etcdNewestSnapshot).toEqual({ name: fakeSnapshots[1], time: "2026-12-05T23:00:00Z" });
        expect(run.outputs.etcdBackupBucket).toEqual(expect.any(String));
    });

    test("newestSnapshot picks by time and ignores what etcd-backup.sh did not write", () => {
        expect(newestSnapshot([])).toBeUndefined();
        expect(snapshotTime("etcd/x/20261206T010203Z-scheduled.snapshot")).toBe("2026-12-06T01:02:03Z");
        const a = "etcd/11111111-2222-4333-8444-555555555555/20261206T010000Z-scheduled.snapshot";
        const b = "etcd/3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b/20261206T020000Z-pre-upgrade-v1.37.2.snapshot";
        expect(newestSnapshot([b, a, "etcd/notes.txt", "etcd/x/20991231T000000Z-scheduled.snapshot"])?.name).toBe(b);
    });
});

describe("replacing the control plane of a stack that recorded its cluster", () => {
    let recorded: ProgramRun;
    beforeAll(async () => {
        // The next `up` reads back what the last one exported.
        recorded = await runProgram(minimal, "dev", undefined, {
            clusterUid: run.outputs.clusterUid,
            clusterIdentifier: run.outputs.clusterIdentifier,
        });
    });

    test("keeps the provider's identifier the last up recorded; the second up only hands the restore step the cluster's UID", () => {
        expect(recorded.outputs.clusterIdentifier).toBe(run.outputs.clusterIdentifier);
        // The one change an `up` after the first shows: its update runs `true` on the live VM.
        expect(Object.fromEntries(previewChanges(run, recorded))).toEqual({ "k8s-dev-cluster-control-plane-etcd-restore": "update" });
        expect(previewChanges(recorded, recorded)).toEqual(new Map());
    });

    test("previews the VM and its steps, restore included, and nothing in the cluster; the provider stays known", () => {
        const root = "k8s-dev-nodes-control-plane";
        const changes = previewChanges(recorded, recorded, { replace: [root] });
        expect(changes.get(root)).toBe("replace");
        for (const step of ["etcd-restore", "prepare", "images", "init", "etcd-snapshots"]) {
            expect({ step, change: changes.get(`k8s-dev-cluster-control-plane-${step}`) }).toEqual({ step, change: "replace" });
        }
        expect(changes.has("k8s-dev-cluster-k8s")).toBe(false);
        expect(unconfiguredProviders(recorded, recorded, { replace: [root] })).toEqual([]);
        for (const w of ["worker-1", "worker-2"]) {
            // No worker is drained or deleted (the admit step's deletion does that): the restored
            // cluster still has its Node. The join re-runs and finds the node joined to this cluster.
            expect(changes.get(`k8s-dev-cluster-${w}-admit`)).not.toBe("replace");
            expect(changes.get(`k8s-dev-cluster-${w}-join`)).toBe("update");
            // The token the re-run admit step mints is revoked again after the join (an update re-runs
            // the revoke script; at deploy its new token also changes the step's triggers).
            expect(changes.get(`k8s-dev-cluster-${w}-revoke-token`)).toBeDefined();
        }
        expect(inClusterChanges(recorded, changes)).toEqual([]);
        // The bucket, its grants and the key stay: the new VM restores from them.
        for (const type of ["gcp:storage/bucket:Bucket", "gcp:storage/bucketIAMMember:BucketIAMMember", "random:index/randomBytes:RandomBytes"]) {
            for (const r of recorded.byType(type)) {
                expect(changes.has(r.name)).toBe(false);
            }
        }
    });

    test("etcdRestoreFrom none goes back to naming the cluster after its init (a new cluster replaces the objects)", async () => {
        const none = await runProgram({ ...minimal, etcdRestoreFrom: "none" }, "dev", undefined, {
            clusterUid: run.outputs.clusterUid,
            clusterIdentifier: "k8s-dev/recorded-elsewhere",
        });
        const changes = previewChanges(none, none, { replace: ["k8s-dev-nodes-control-plane"] });
        expect(changes.get("k8s-dev-cluster-k8s")).toBe("replace");
    });
});

describe("the first up of a stack made before the backups", () => {
    test("adds the bucket, key, account, address and steps, moves the control plane to its account in place, and leaves the cluster's objects alone", () => {
        // The state such a stack has: today's program without what this change added, its control
        // plane on the shared account and its internal address unreserved.
        const added = new Set([
            ...["gcp:storage/bucket:Bucket", "gcp:storage/bucketIAMMember:BucketIAMMember", "random:index/randomBytes:RandomBytes"].flatMap((t) => run.byType(t).map((r) => r.name)),
            "k8s-dev-nodes-control-plane-sa",
            ...run.byType("gcp:projects/iAMMember:IAMMember").filter((r) => r.name.startsWith("k8s-dev-nodes-control-plane-sa")).map((r) => r.name),
            "k8s-dev-nodes-control-plane-internal-ip",
            "k8s-dev-cluster-control-plane-etcd-restore",
            "k8s-dev-cluster-control-plane-etcd-snapshots",
        ]);
        const legacyVm = (r: (typeof run.resources)[number]) => {
            const nic = { ...r.inputs.networkInterfaces[0] };
            delete nic.networkIp;
            return {
                ...r,
                inputs: { ...r.inputs, serviceAccount: { ...r.inputs.serviceAccount, email: "k8s-dev-nodes@test-project.iam.gserviceaccount.com" }, networkInterfaces: [nic] },
            };
        };
        const legacy = {
            ...run,
            resources: run.resources.filter((r) => !added.has(r.name)).map((r) => (r.name === "k8s-dev-nodes-control-plane" ? legacyVm(r) : r)),
        };
        const changes = previewChanges(legacy, run);
        for (const name of added) {
            expect({ name, change: changes.get(name) }).toEqual({ name, change: "create" });
        }
        // The account change stops and starts the VM (allowStoppingForUpdate); the address it has is
        // reserved as it is (the real provider then sees networkIp unchanged: it is Optional+Computed).
        expect(changes.get("k8s-dev-nodes-control-plane")).toBe("update");
        // kubeadm init keeps its id (the restore orders it by dependsOn, not a trigger), so the
        // provider keeps its clusterIdentifier and nothing in the cluster is listed.
        expect(changes.get("k8s-dev-cluster-control-plane-init")).toBeUndefined();
        expect(changes.has("k8s-dev-cluster-k8s")).toBe(false);
        expect(inClusterChanges(run, changes)).toEqual([]);
    });
});

describe("config", () => {
    const parse = (extra: Record<string, string>) => parseConfig({ "gcp:project": "p", ...extra }, "dev");
    const problems = (extra: Record<string, string>): string[] => {
        try {
            parse(extra);
            return [];
        } catch (e) {
            return (e as ConfigError).problems;
        }
    };

    test("defaults: hourly, kept 7 days, removed on destroy, newest restored, generated key", () => {
        expect(parse({}).backups).toEqual({ intervalMinutes: 60, retentionDays: 7, retainOnDestroy: false, restoreFrom: "newest", key: undefined });
    });

    test("bad values are named with what is accepted, and a bad key is never echoed", () => {
        expect(problems({ etcdBackupIntervalMinutes: "2" })).toEqual(['etcdBackupIntervalMinutes: "2" is not valid; accepted: a whole number from 5 to 1440']);
        expect(problems({ etcdBackupRetentionDays: "0" })).toEqual(['etcdBackupRetentionDays: "0" is not valid; accepted: a whole number from 1 to 3650']);
        expect(problems({ retainBackupsOnDestroy: "yes" })).toEqual(['retainBackupsOnDestroy: "yes" is not valid; accepted: true or false']);
        expect(problems({ etcdRestoreFrom: "latest" })[0]).toMatch(/^etcdRestoreFrom: "latest" is not valid; accepted: "newest", "none", or a snapshot's object name/);
        const bad = problems({ etcdBackupKey: "hunter2-but-secret" });
        expect(bad).toHaveLength(1);
        expect(bad[0]).toMatch(/^etcdBackupKey: the value \(not shown, it is a secret\) is not valid; accepted: 64 lowercase hex characters/);
        expect(bad[0]).not.toContain("hunter2");
    });

    test("a snapshot's name is accepted as etcdRestoreFrom", () => {
        expect(parse({ etcdRestoreFrom: fakeSnapshots[0] }).backups.restoreFrom).toBe(fakeSnapshots[0]);
    });
});
