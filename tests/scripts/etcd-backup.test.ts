/**
 * etcd-backup.sh under stubs: the schedule it installs (and that a second run changes nothing), and
 * what the restore step decides before kubeadm init on each kind of node. The real snapshot and
 * restore, with real etcd, are in tests/controlplane/etcdBackup.test.ts.
 */
import * as fs from "fs";
import * as path from "path";
import { versions } from "../../components/versions";
import { callsTo, clearCalls, createSandbox, existsRoot, readRoot, removeSandboxes, runScript, Sandbox, setState, writeRoot } from "./harness";

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

    test("a run stopped after writing a changed timer and before systemd read it: the next run reloads and restarts it", () => {
        const sb = withTools(createSandbox());
        expect(install(sb).status).toBe(0);
        const settings = { MODE: "install", BACKUP_URL: `file://${bucketDir(sb)}`, ETCD_VERSION: versions.etcdTools, INTERVAL_MINUTES: "15" };
        const stopped = runScript(sb, "etcd-backup", settings, { input: `${key}\n`, env: { STUB_SYSTEMCTL_FAIL: "daemon-reload" } });
        expect(stopped.status).not.toBe(0);
        expect(readRoot(sb, "etc/systemd/system/kubeadm-gcp-etcd-backup.timer")).toContain("OnUnitActiveSec=15min");
        clearCalls(sb);
        const again = runScript(sb, "etcd-backup", settings, { input: `${key}\n` });
        expect(again.status).toBe(0);
        expect(callsTo(sb, "systemctl")).toEqual(["systemctl daemon-reload", "systemctl restart kubeadm-gcp-etcd-backup.timer", "systemctl enable --now kubeadm-gcp-etcd-backup.timer"]);
        expect(existsRoot(sb, "var/lib/kubeadm-gcp/etcd-backup-reload-pending")).toBe(false);
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

describe("the gs:// transport (metadata server token, GCS JSON API; the curl stub emulates both)", () => {
    const plain = "etcd snapshot bytes: the Secret payment-token-7f3a lives here";
    /** etcdctl saves `plain` as the snapshot; etcdutl restores a file into <data-dir>/member/snap/db. */
    function withWorkingTools(sb: Sandbox): Sandbox {
        const v = versions.etcdTools.slice(1);
        writeRoot(sb, `${toolsDir}/etcdctl`, `#!/usr/bin/env bash\n[[ $* == *"snapshot save "* ]] || { echo "etcdctl version: ${v}"; exit 0; }\nfor a; do last="$a"; done\nprintf '%s' '${plain}' >"$last"\n`);
        writeRoot(sb, `${toolsDir}/etcdutl`, `#!/usr/bin/env bash\n[[ $1 == snapshot && $2 == restore ]] || { echo "etcdutl version: ${v}"; exit 0; }\nfile="$3"\nwhile (($#)); do [[ $1 == --data-dir ]] && dir="$2"; shift; done\nmkdir -p "$dir/member/snap" && cp "$file" "$dir/member/snap/db"\n`);
        for (const tool of ["etcdctl", "etcdutl"]) {
            fs.chmodSync(path.join(sb.root, toolsDir, tool), 0o755);
        }
        return sb;
    }

    test("a snapshot is uploaded encrypted under the cluster's name; the restore pages through the listing, takes the newest and puts it in place", () => {
        const cp = withWorkingTools(createSandbox());
        writeRoot(cp, "etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n");
        writeRoot(cp, "etc/kubernetes/backup/etcd-backup.key", `${key}\n`);
        setState(cp, "cluster-uid", uid);
        // Older snapshots of this cluster and one of another: the listing comes in pages of two.
        for (const old of ["20251201T000000Z-scheduled", "20251202T000000Z-scheduled", "20251203T000000Z-pre-upgrade-v1.36.3"]) {
            setState(cp, `gcs/test-bucket/etcd/${uid}/${old}.snapshot`, "older");
        }
        setState(cp, "gcs/test-bucket/etcd/11111111-2222-4333-8444-555555555555/20991231T000000Z-scheduled.snapshot", "another cluster's");
        const saved = runScript(cp, "etcd-backup", { MODE: "snapshot", BACKUP_URL: "gs://test-bucket", ETCD_VERSION: versions.etcdTools });
        expect(saved.stderr).toMatch(/saved etcd\/.* to gs:\/\/test-bucket/);
        expect(saved.status).toBe(0);
        const name = saved.stdout.trim();
        expect(name).toMatch(new RegExp(`^etcd/${uid}/\\d{8}T\\d{6}Z-manual\\.snapshot$`));
        const stored = fs.readFileSync(path.join(cp.state, "gcs", "test-bucket", name));
        expect(stored.toString("latin1")).toMatch(/^kubeadm-gcp etcd snapshot v1 key-id=[0-9a-f]{16}\n/);
        expect(stored.includes(Buffer.from("payment-token-7f3a"))).toBe(false);

        // The replacement VM: same bucket, nothing on its disk.
        const fresh = withWorkingTools(createSandbox());
        fs.cpSync(path.join(cp.state, "gcs"), path.join(fresh.state, "gcs"), { recursive: true });
        const r = restore(fresh, { BACKUP_URL: "gs://test-bucket", PREVIOUS_CLUSTER_UID: uid });
        expect(r.stderr).toMatch(/restored etcd\//);
        expect(r.status).toBe(0);
        expect(r.stdout.trim()).toBe(name);
        expect(readRoot(fresh, "var/lib/etcd/member/snap/db")).toBe(plain);
        // One token for the whole run, however many requests it makes.
        expect(callsTo(fresh, "curl").filter((c) => c.includes("metadata.google.internal"))).toHaveLength(1);
        // Two list requests (pages of two over the four objects of this cluster), the token from a header file.
        const lists = callsTo(fresh, "curl").filter((c) => /storage\/v1\/b\/test-bucket\/o\?prefix=/.test(c));
        expect(lists).toHaveLength(2);
        for (const c of [...callsTo(cp, "curl"), ...callsTo(fresh, "curl")]) {
            expect(c).not.toContain("ya29.stub-token");
        }
    });

    test("an upload whose answer was lost (the retry meets 412: the name exists) counts as done", () => {
        const cp = withWorkingTools(createSandbox());
        writeRoot(cp, "etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n");
        writeRoot(cp, "etc/kubernetes/backup/etcd-backup.key", `${key}\n`);
        setState(cp, "cluster-uid", uid);
        // The names the next seconds' snapshot can take, there already.
        const now = Date.now();
        for (let s = 0; s < 10; s++) {
            const t = new Date(now + s * 1000).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
            setState(cp, `gcs/test-bucket/etcd/${uid}/${t}-manual.snapshot`, "the earlier attempt's upload");
        }
        const r = runScript(cp, "etcd-backup", { MODE: "snapshot", BACKUP_URL: "gs://test-bucket", ETCD_VERSION: versions.etcdTools });
        expect(r.status).toBe(0);
        expect(r.stderr).toMatch(/is in the bucket already \(an earlier attempt's upload arrived\)/);
        expect(r.stderr).not.toMatch(/attempt 1\/\d+ failed/);
    });

    test("a listing that fails stops the restore instead of passing for an empty bucket", () => {
        const sb = withWorkingTools(createSandbox());
        const r = restore(sb, { BACKUP_URL: "gs://test-bucket", PREVIOUS_CLUSTER_UID: "" }, `${key}\n`);
        expect(r.status).toBe(0); // an empty bucket on a first control plane: a new cluster
        const down = withWorkingTools(createSandbox());
        const failed = runScript(
            down,
            "etcd-backup",
            { MODE: "restore", BACKUP_URL: "gs://test-bucket", ETCD_VERSION: versions.etcdTools, RESTORE_FROM: "newest", PREVIOUS_CLUSTER_UID: "", NODE_NAME: "k8s-dev-control-plane", ADVERTISE_ADDRESS: "10.240.0.2" },
            { input: `${key}\n`, env: { STUB_CURL_FAIL: "1" } },
        );
        expect(failed.status).toBe(1);
        expect(failed.stderr).not.toMatch(/starts a new cluster/);
        expect(existsRoot(down, "var/lib/etcd")).toBe(false);
    });
});
