/**
 * etcd-backup.sh under stubs: the schedule it installs (and that a second run changes nothing), and
 * what the restore step decides before kubeadm init on each kind of node. The real snapshot and
 * restore, with real etcd, are in tests/controlplane/etcdBackup.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import { versions } from "../../components/versions";
import { callsTo, clearCalls, createSandbox, existsRoot, readRoot, removeSandboxes, runScript, Sandbox, writeRoot } from "./harness";

const key = "0123456789abcdef".repeat(4);
const uid = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b";
const toolsDir = `opt/kubeadm-gcp/etcd-${versions.etcdTools}`;

afterAll(removeSandboxes);

/** Stand-ins for etcdctl/etcdutl where the script installs them (it then downloads nothing). */
function withTools(sb: Sandbox): Sandbox {
    for (const tool of ["etcdctl", "etcdutl"]) {
        writeRoot(sb, `${toolsDir}/${tool}`, `#!/usr/bin/env bash\necho "${tool} version: ${versions.etcdTools.slice(1)}"\n`);
        fs.chmodSync(path.join(sb.root, toolsDir, tool), 0o755);
    }
    return sb;
}

function bucketDir(sb: Sandbox): string {
    const dir = path.join(sb.dir, "bucket");
    fs.mkdirSync(dir, { recursive: true });
    return dir;
}

const install = (sb: Sandbox) =>
    runScript(
        sb,
        "etcd-backup",
        { MODE: "install", BACKUP_URL: `file://${bucketDir(sb)}`, ETCD_VERSION: versions.etcdTools, INTERVAL_MINUTES: "30" },
        { input: `${key}\n` },
    );

const restore = (sb: Sandbox, settings: Record<string, string> = {}, input = `${key}\n`) =>
    runScript(
        sb,
        "etcd-backup",
        {
            MODE: "restore",
            BACKUP_URL: `file://${bucketDir(sb)}`,
            ETCD_VERSION: versions.etcdTools,
            RESTORE_FROM: "newest",
            PREVIOUS_CLUSTER_UID: "",
            NODE_NAME: "k8s-dev-control-plane",
            ADVERTISE_ADDRESS: "10.240.0.2",
            ...settings,
        },
        { input },
    );

describe("install", () => {
    test("puts the key (root only), itself and an enabled timer in place; a second run changes nothing", () => {
        const sb = withTools(createSandbox());
        const first = install(sb);
        expect(first.stderr).toMatch(/snapshots every 30 minutes to file:\/\/.* \(key id [0-9a-f]{16}\); schedule installed/);
        expect(first.status).toBe(0);
        expect(readRoot(sb, "etc/kubernetes/backup/etcd-backup.key").trim()).toBe(key);
        expect(fs.statSync(path.join(sb.root, "etc/kubernetes/backup/etcd-backup.key")).mode & 0o777).toBe(0o600);
        expect(first.stderr).not.toContain(key);
        const timer = readRoot(sb, "etc/systemd/system/kubeadm-gcp-etcd-backup.timer");
        expect(timer).toContain("OnUnitActiveSec=30min");
        expect(timer).toContain("WantedBy=timers.target");
        expect(readRoot(sb, "etc/systemd/system/kubeadm-gcp-etcd-backup.service")).toContain(
            "ExecStart=/usr/local/sbin/kubeadm-gcp-etcd-backup snapshot scheduled",
        );
        // The installed copy carries its settings, so the timer's run needs nothing else.
        expect(readRoot(sb, "usr/local/sbin/kubeadm-gcp-etcd-backup")).toContain("export INTERVAL_MINUTES='30'");
        expect(callsTo(sb, "systemctl")).toEqual(["systemctl daemon-reload", "systemctl restart kubeadm-gcp-etcd-backup.timer", "systemctl enable --now kubeadm-gcp-etcd-backup.timer"]);

        clearCalls(sb);
        const second = install(sb);
        expect(second.status).toBe(0);
        expect(second.stderr).toMatch(/schedule unchanged/);
        expect(callsTo(sb, "systemctl")).toEqual(["systemctl enable --now kubeadm-gcp-etcd-backup.timer"]);
    });

    test("refuses what is not a key on stdin without echoing it", () => {
        const sb = withTools(createSandbox());
        const r = runScript(
            sb,
            "etcd-backup",
            { MODE: "install", BACKUP_URL: `file://${bucketDir(sb)}`, ETCD_VERSION: versions.etcdTools, INTERVAL_MINUTES: "30" },
            { input: "not-the-key-but-secret-looking\n" },
        );
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/not the snapshots' key \(64 hex characters expected; the value is not shown\)/);
        expect(r.stderr).not.toContain("not-the-key-but-secret-looking");
        expect(existsRoot(sb, "etc/kubernetes/backup/etcd-backup.key")).toBe(false);
    });
});

describe("restore, before kubeadm init", () => {
    test("a stack's first control plane, with an empty bucket, starts a new cluster and says so", () => {
        const sb = withTools(createSandbox());
        const r = restore(sb);
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(/no snapshot in file:\/\/.*: kubeadm init starts a new cluster/);
        expect(existsRoot(sb, "var/lib/etcd")).toBe(false);
    });

    test("a recreated control plane of a cluster with no snapshot stops, naming both ways out", () => {
        const sb = withTools(createSandbox());
        const r = restore(sb, { PREVIOUS_CLUSTER_UID: uid });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`holds no snapshot of cluster ${uid}`);
        expect(r.stderr).toMatch(/etcdRestoreFrom.*npm run replace:control-plane/);
    });

    test("a snapshot of another cluster is not taken for this one's", () => {
        const sb = withTools(createSandbox());
        fs.mkdirSync(path.join(bucketDir(sb), "etcd", "11111111-2222-4333-8444-555555555555"), { recursive: true });
        fs.writeFileSync(path.join(bucketDir(sb), "etcd", "11111111-2222-4333-8444-555555555555", "20261201T000000Z-scheduled.snapshot"), "x");
        const r = restore(sb, { PREVIOUS_CLUSTER_UID: uid });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`holds no snapshot of cluster ${uid}`);
    });

    test("etcdRestoreFrom none starts a new cluster even with snapshots there", () => {
        const sb = withTools(createSandbox());
        const r = restore(sb, { PREVIOUS_CLUSTER_UID: uid, RESTORE_FROM: "none" });
        expect(r.status).toBe(0);
        expect(r.stderr).toMatch(/etcdRestoreFrom is none: kubeadm init starts a new, empty cluster/);
    });

    test("a node that already has a cluster, or etcd data, is never restored over", () => {
        for (const file of ["etc/kubernetes/admin.conf", "var/lib/etcd/member/snap/db"]) {
            const sb = withTools(createSandbox());
            writeRoot(sb, file, "present");
            const r = restore(sb, { PREVIOUS_CLUSTER_UID: uid });
            expect(r.status).toBe(0);
            expect(r.stderr).toMatch(/already has a cluster/);
            expect(callsTo(sb, "curl")).toEqual([]);
        }
    });

    test("a snapshot named in etcdRestoreFrom that is not in the bucket is refused by name", () => {
        const sb = withTools(createSandbox());
        const name = `etcd/${uid}/20261201T000000Z-scheduled.snapshot`;
        const r = restore(sb, { PREVIOUS_CLUSTER_UID: uid, RESTORE_FROM: name });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`etcdRestoreFrom names ${name}, which is not in file://`);
    });

    test("a restore killed after etcdutl wrote its scratch directory converges on the next run", () => {
        const sb = withTools(createSandbox());
        writeRoot(sb, "var/lib/etcd.restoring/member/snap/db", "half-written");
        const r = restore(sb);
        expect(r.status).toBe(0);
        // The scratch directory is not data in place: the node is still one without a cluster.
        expect(r.stderr).toMatch(/no snapshot in file:\/\//);
        expect(existsRoot(sb, "var/lib/etcd/member")).toBe(false);
    });
});
