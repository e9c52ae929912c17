/**
 * Losing the control plane loses nothing: scripts/etcd-backup.sh, as the program renders it, against
 * real etcd, etcdctl, etcdutl and kube-apiserver. A cluster holding a Secret and a Deployment is
 * snapshotted into a directory standing in for the bucket; that control plane and its etcd data are
 * thrown away; the restore step fills a fresh /var/lib/etcd from the snapshot; a new API server on
 * that data serves the same objects and the same cluster UID (which is what keeps the workers and
 * the Kubernetes provider). A snapshot under another key, or a changed one, is refused and nothing is
 * put in place.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { snapshotNamePattern } from "../../components/config";
import { versions } from "../../components/versions";
import { createSandbox, removeSandboxes, runScript as runInSandbox, Sandbox } from "../scripts/harness";
import { binaries, ControlPlane, kubeadmInitSettings, startControlPlane } from "./controlPlane";

const key = crypto.randomBytes(32).toString("hex");
const secretValue = `payment-token-${crypto.randomBytes(8).toString("hex")}`;
let bucket: string;
let first: ControlPlane | undefined;
let restored: ControlPlane | undefined;
let snapshot: string;
let clusterUid: string;
let lastRevisionBefore: number;

/** etcdctl and etcdutl where etcd-backup.sh installs them, so it does not download them. */
function placeEtcdTools(root: string): void {
    const dir = path.join(root, "opt", "kubeadm-gcp", `etcd-${versions.etcdTools}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.symlinkSync(binaries.etcdctl, path.join(dir, "etcdctl"));
    fs.symlinkSync(binaries.etcdutl, path.join(dir, "etcdutl"));
}

const restoreSettings = () => ({
    MODE: "restore",
    BACKUP_URL: `file://${bucket}`,
    ETCD_VERSION: versions.etcdTools,
    RESTORE_FROM: "newest",
    PREVIOUS_CLUSTER_UID: clusterUid,
    NODE_NAME: kubeadmInitSettings.NODE_NAME,
    ADVERTISE_ADDRESS: kubeadmInitSettings.ADVERTISE_ADDRESS,
});

function restoreInSandbox(withKey: string): { sb: Sandbox; status: number | null; stdout: string; stderr: string } {
    const sb = createSandbox();
    placeEtcdTools(sb.root);
    return { sb, ...runInSandbox(sb, "etcd-backup", restoreSettings(), { input: `${withKey}\n` }) };
}

beforeAll(async () => {
    bucket = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-bucket-"));
    first = await startControlPlane();
    placeEtcdTools(first.root);
    first.kubectlOk(["create", "namespace", "shop"]);
    first.kubectlOk(["-n", "shop", "create", "secret", "generic", "payments", `--from-literal=token=${secretValue}`]);
    first.kubectlOk(["-n", "shop", "create", "deployment", "web", "--image=registry.k8s.io/pause:3.10", "--replicas=2"]);
    clusterUid = first.kubectlOk(["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]).trim();
    lastRevisionBefore = Number(first.kubectlOk(["-n", "shop", "create", "configmap", "before-snapshot", "-o", "jsonpath={.metadata.resourceVersion}"]));
    // What the etcd-snapshots step leaves on the control plane: the stack's key, root only.
    const keyFile = path.join(first.root, "etc", "kubernetes", "backup", "etcd-backup.key");
    fs.mkdirSync(path.dirname(keyFile), { recursive: true });
    fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
});

afterAll(async () => {
    await restored?.stop();
    await first?.stop();
    removeSandboxes();
    fs.rmSync(bucket, { recursive: true, force: true });
});

test("a snapshot of the running etcd lands in the bucket encrypted, named after the cluster and the time", async () => {
    const result = await first!.runScript(
        "etcd-backup",
        { MODE: "snapshot", BACKUP_URL: `file://${bucket}`, ETCD_VERSION: versions.etcdTools },
        { ETCD_ENDPOINT: first!.etcdEndpoint },
    );
    expect(result.stderr).toMatch(/saved etcd\/.* \(\d+ bytes, encrypted\)/);
    expect(result.status).toBe(0);
    snapshot = result.stdout.trim();
    expect(snapshot).toMatch(snapshotNamePattern);
    expect(snapshot.startsWith(`etcd/${clusterUid}/`)).toBe(true);
    const stored = fs.readFileSync(path.join(bucket, snapshot));
    expect(stored.subarray(0, stored.indexOf(10)).toString()).toMatch(/^kubeadm-gcp etcd snapshot v1 key-id=[0-9a-f]{16}$/);
    // etcd keeps Secrets unencrypted: the plain snapshot holds the value, the stored one must not.
    expect(stored.includes(Buffer.from(secretValue))).toBe(false);
    expect(result.stderr).not.toContain(key);
});

test("a snapshot under another key is refused by name, and nothing is put in place", () => {
    const other = crypto.randomBytes(32).toString("hex");
    const { sb, status, stderr } = restoreInSandbox(other);
    expect(status).toBe(1);
    expect(stderr).toMatch(/was encrypted with another key \(key id [0-9a-f]{16}; this stack's key has id [0-9a-f]{16}\): set etcdBackupKey/);
    expect(stderr).not.toContain(other);
    expect(fs.existsSync(path.join(sb.root, "var", "lib", "etcd"))).toBe(false);
});

test("a changed snapshot is refused and nothing is put in place", () => {
    const file = path.join(bucket, snapshot);
    const original = fs.readFileSync(file);
    const changed = Buffer.from(original);
    changed[Math.floor(changed.length / 2)] ^= 0xff;
    fs.writeFileSync(file, changed);
    try {
        const { sb, status, stderr } = restoreInSandbox(key);
        expect(status).toBe(1);
        expect(stderr).toMatch(/could not be decrypted with this stack's key|etcdutl could not restore/);
        expect(fs.existsSync(path.join(sb.root, "var", "lib", "etcd"))).toBe(false);
    } finally {
        fs.writeFileSync(file, original);
    }
});

test("after the control plane and its data are gone, the restore brings back the same cluster with its objects", async () => {
    await first!.stop();
    first = undefined;

    const { sb, status, stdout, stderr } = restoreInSandbox(key);
    expect(stderr).toMatch(/restored etcd\/.* into .*var\/lib\/etcd/);
    expect(status).toBe(0);
    expect(stdout.trim()).toBe(snapshot);
    const dataDir = path.join(sb.root, "var", "lib", "etcd");
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);

    // A second run on the restored node restores nothing over it.
    const again = runInSandbox(sb, "etcd-backup", restoreSettings(), { input: `${key}\n` });
    expect(again.status).toBe(0);
    expect(again.stdout).toBe("");
    expect(again.stderr).toMatch(/already has a cluster/);

    restored = await startControlPlane({ etcdDataDir: dataDir });
    const token = restored.kubectlOk(["-n", "shop", "get", "secret", "payments", "-o", "jsonpath={.data.token}"]);
    expect(Buffer.from(token, "base64").toString()).toBe(secretValue);
    expect(restored.kubectlOk(["-n", "shop", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"])).toBe("2");
    expect(restored.kubectlOk(["get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}"]).trim()).toBe(clusterUid);
    // The revision moved far past anything a client of the lost control plane can have seen, so
    // every watch relists instead of taking new objects for ones it already knows.
    const rv = Number(restored.kubectlOk(["-n", "shop", "create", "configmap", "after-restore", "-o", "jsonpath={.metadata.resourceVersion}"]));
    expect(rv).toBeGreaterThan(lastRevisionBefore + 1_000_000_000 - 1);
});
