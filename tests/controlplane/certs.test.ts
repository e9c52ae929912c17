/**
 * scripts/renew-certs.sh, as the program renders it, with the real kubeadm against a real PKI and
 * admin.conf that kubeadm itself made (`kubeadm init phase certs|kubeconfig`), offline: the script
 * runs kubeadm with --rootfs FS_ROOT, so kubeadm reads "<root>/etc/kubernetes" as it reads
 * /etc/kubernetes on a node. No static Pods run here, so the restart phase has nothing to move; the
 * stub tests (tests/scripts/renew-certs.test.ts) cover it.
 *
 * --rootfs chroots, which needs root (or a user namespace): without it these tests are skipped, saying so.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderScript } from "../../components/scripts";
import { binaries, kubernetesRelease } from "./controlPlane";

const day = 86_400_000;
const canChroot = process.getuid?.() === 0;
if (!canChroot) {
    process.stderr.write("tests/controlplane/certs.test.ts: skipped, kubeadm --rootfs needs root to chroot\n");
}
const maybe = canChroot ? describe : describe.skip;

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function kubeadm(root: string, args: string[]): string {
    const r = spawnSync(binaries.kubeadm, [...args, "--rootfs", root], { encoding: "utf8", timeout: 60_000 });
    if (r.status !== 0) {
        throw new Error(`kubeadm ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    }
    return r.stdout;
}

/** A control plane's /etc/kubernetes as `kubeadm init` writes it, certificates valid for `validity`. */
function controlPlaneRoot(validity?: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "certs-test-"));
    dirs.push(dir);
    const root = path.join(dir, "root");
    fs.mkdirSync(path.join(root, "etc", "kubernetes"), { recursive: true });
    // The advertise address is not loopback: kubeadm then looks for a host interface. The endpoint
    // refuses connections at once, so kubeadm's read of the cluster's kubeadm-config fails fast and it
    // falls back to its defaults, as it logs.
    const config = [
        "apiVersion: kubeadm.k8s.io/v1beta4",
        "kind: InitConfiguration",
        "localAPIEndpoint: { advertiseAddress: 192.0.2.10, bindPort: 6443 }",
        "nodeRegistration: { name: certs-test }",
        "---",
        "apiVersion: kubeadm.k8s.io/v1beta4",
        "kind: ClusterConfiguration",
        `kubernetesVersion: ${kubernetesRelease}`,
        "clusterName: certs-test",
        "controlPlaneEndpoint: 127.0.0.1:9",
        'apiServer: { certSANs: ["203.0.113.7", "certs-test"] }',
        ...(validity ? [`certificateValidityPeriod: ${validity}`] : []),
        "",
    ].join("\n");
    fs.writeFileSync(path.join(root, "etc", "kubernetes", "kubeadm-config.yaml"), config);
    kubeadm(root, ["init", "phase", "certs", "all", "--config", "/etc/kubernetes/kubeadm-config.yaml"]);
    kubeadm(root, ["init", "phase", "kubeconfig", "all", "--config", "/etc/kubernetes/kubeadm-config.yaml"]);
    return root;
}

function renewCerts(root: string) {
    const file = path.join(path.dirname(root), "renew-certs.sh");
    fs.writeFileSync(file, renderScript("renew-certs", { RENEW_WITHIN_DAYS: "30" }));
    return spawnSync("bash", [file], {
        encoding: "utf8",
        timeout: 90_000,
        env: { PATH: `${binaries.kubernetesDir}:/usr/bin:/bin`, FS_ROOT: root, RETRY_DELAY_SECONDS: "1", LC_ALL: "C", HOME: path.dirname(root) },
    });
}

const read = (root: string, rel: string) => fs.readFileSync(path.join(root, "etc", "kubernetes", rel), "utf8");

/** The client certificate embedded in a kubeconfig. */
function clientCert(kubeconfig: string): crypto.X509Certificate {
    const data = /client-certificate-data:\s*(\S+)/.exec(kubeconfig)![1];
    return new crypto.X509Certificate(Buffer.from(data, "base64"));
}

const seconds = (date: string) => Math.floor(Date.parse(date) / 1000);

maybe("renew-certs.sh with the real kubeadm", () => {
    test("outside the window: prints admin.conf's expiry as RFC 3339 and rewrites nothing", () => {
        const root = controlPlaneRoot();
        const files = ["admin.conf", "super-admin.conf", "pki/apiserver.crt", "pki/ca.crt"].map((f) => read(root, f));
        const result = renewCerts(root);
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(result.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
        expect(seconds(result.stdout.trim())).toBe(seconds(clientCert(read(root, "admin.conf")).validTo));
        expect(Date.parse(result.stdout.trim())).toBeGreaterThan(Date.now() + 360 * day);
        expect(["admin.conf", "super-admin.conf", "pki/apiserver.crt", "pki/ca.crt"].map((f) => read(root, f))).toEqual(files);
    });

    test("inside the window: renews admin.conf and the serving certificates with the same CA, subject and SANs, and prints the new expiry; a re-run is a no-op", () => {
        const root = controlPlaneRoot("240h"); // ten days: inside the 30-day window
        const oldAdmin = clientCert(read(root, "admin.conf"));
        const oldServing = new crypto.X509Certificate(read(root, "pki/apiserver.crt"));
        const ca = read(root, "pki/ca.crt");
        expect(Date.parse(oldAdmin.validTo)).toBeLessThan(Date.now() + 11 * day);

        const result = renewCerts(root);
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/within 30 days: renewing/);

        const admin = clientCert(read(root, "admin.conf"));
        expect(seconds(result.stdout.trim())).toBe(seconds(admin.validTo));
        expect(Date.parse(admin.validTo)).toBeGreaterThan(Date.now() + 360 * day);
        expect(admin.subject).toBe(oldAdmin.subject); // CN=kubernetes-admin, O=kubeadm:cluster-admins
        expect(admin.verify(new crypto.X509Certificate(ca).publicKey)).toBe(true);
        expect(read(root, "pki/ca.crt")).toBe(ca);

        const serving = new crypto.X509Certificate(read(root, "pki/apiserver.crt"));
        expect(serving.subjectAltName).toBe(oldServing.subjectAltName);
        expect(serving.subjectAltName).toContain("IP Address:203.0.113.7");
        expect(Date.parse(serving.validTo)).toBeGreaterThan(Date.now() + 360 * day);

        const renewed = read(root, "admin.conf");
        const again = renewCerts(root);
        expect(again.status).toBe(0);
        expect(again.stdout).toBe(result.stdout);
        expect(again.stderr).toMatch(/nothing to renew/);
        expect(read(root, "admin.conf")).toBe(renewed);
    });
});
