/**
 * The stack-owned identity (components/identity.ts) on a real control plane: the PKI the program
 * hands kubeadm-init.sh, installed by the script as rendered, is what the real kubeadm builds the
 * cluster on and what the real API server trusts and signs with; the kubeconfig the program renders
 * for the provider is cluster-admin there; kubeadm's own join command pins the CA exactly as the
 * program computes it before any VM exists.
 *
 * The keys and certificates are made with openssl in the formats terraform-provider-tls writes (RSA
 * keys as PKCS#1 "RSA PRIVATE KEY", public keys as PKIX, CA certificates with basicConstraints CA and
 * a subject key id): the tls provider itself cannot run here.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { adminGroup, caCertHash, ControlPlanePkiFile, controlPlanePkiFiles, renderKubeconfig, renderPkiBundle } from "../../components/identity";
import { createSandbox, removeSandboxes, runScript as runStubbed } from "../scripts/harness";
import { ControlPlane, kubeadmInitSettings, startControlPlane } from "./controlPlane";

let cp: ControlPlane;
let work: string;
let stack: Record<ControlPlanePkiFile, string>;

function openssl(args: string[], input?: string): string {
    const r = spawnSync("openssl", args, { cwd: work, input, encoding: "utf8" });
    if (r.status !== 0) {
        throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    }
    return r.stdout;
}

/** A CA as ClusterIdentity declares it: an RSA 2048 key and a self-signed CA certificate of ten years. */
function certificateAuthority(name: string, commonName: string): void {
    openssl(["genrsa", "-traditional", "-out", `${name}.key`, "2048"]);
    openssl([
        "req", "-x509", "-new", "-key", `${name}.key`, "-subj", `/CN=${commonName}`, "-days", "3650", "-out", `${name}.crt`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment",
        "-addext", "subjectKeyIdentifier=hash",
    ]);
}

/** A client certificate of one slot, as ClusterIdentity issues it: the admin group, signed by the cluster CA. */
function clientCertificate(name: string, commonName: string): { cert: string; key: string } {
    openssl(["genrsa", "-traditional", "-out", `${name}.key`, "2048"]);
    openssl(["req", "-new", "-key", `${name}.key`, "-subj", `/O=${adminGroup}/CN=${commonName}`, "-out", `${name}.csr`]);
    fs.writeFileSync(path.join(work, `${name}.ext`), "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "365", "-extfile", `${name}.ext`, "-out", `${name}.crt`]);
    const read = (f: string) => fs.readFileSync(path.join(work, f), "utf8");
    return { cert: read(`${name}.crt`), key: read(`${name}.key`) };
}

const read = (f: string) => fs.readFileSync(path.join(work, f), "utf8");

beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "identity-test-"));
    certificateAuthority("ca", "kubernetes");
    certificateAuthority("front-proxy-ca", "front-proxy-ca");
    openssl(["genrsa", "-traditional", "-out", "sa.key", "2048"]);
    openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
    stack = Object.fromEntries(controlPlanePkiFiles.map((f) => [f, read(f)])) as Record<ControlPlanePkiFile, string>;

    // kubeadm-init.sh, as rendered, installs the bundle (kubeadm and kubectl stubbed: the real
    // kubeadm init needs a kubelet). What it leaves in /etc/kubernetes/pki seeds the real control plane.
    const sb = createSandbox();
    const installed = runStubbed(
        sb,
        "kubeadm-init",
        kubeadmInitSettings,
        { input: renderPkiBundle(stack) },
    );
    if (installed.status !== 0) {
        throw new Error(`kubeadm-init.sh failed: ${installed.stderr}`);
    }
    const pki = Object.fromEntries(controlPlanePkiFiles.map((f) => [f, fs.readFileSync(path.join(sb.root, "etc/kubernetes/pki", f), "utf8")]));
    cp = await startControlPlane({ pki });
});

afterAll(async () => {
    await cp?.stop();
    removeSandboxes();
    fs.rmSync(work, { recursive: true, force: true });
});

test("kubeadm builds the cluster on the stack's CA, front-proxy CA and service-account key instead of generating its own", () => {
    expect(cp.certsLog).toMatch(/Using existing ca certificate authority/);
    expect(cp.certsLog).toMatch(/Using existing front-proxy-ca certificate authority/);
    expect(cp.certsLog).toMatch(/Using the existing "sa" key/);
    const pkiDir = path.join(cp.root, "etc/kubernetes/pki");
    for (const f of controlPlanePkiFiles) {
        expect({ f, same: fs.readFileSync(path.join(pkiDir, f), "utf8").trim() === stack[f].trim() }).toEqual({ f, same: true });
    }
    // The serving certificate kubeadm made chains to the stack's CA.
    expect(openssl(["verify", "-CAfile", path.join(pkiDir, "ca.crt"), path.join(pkiDir, "apiserver.crt")])).toMatch(/: OK/);
});

test("the API server signs service-account tokens with the stack's key", () => {
    const token = cp.kubectlOk(["-n", "default", "create", "token", "default"]).trim();
    const [header, payload, signature] = token.split(".");
    const valid = crypto.verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), crypto.createPublicKey(stack["sa.pub"]), Buffer.from(signature, "base64url"));
    expect(valid).toBe(true);
});

test("the provider's kubeconfig, rendered by the program from the stack's CA and a certificate the stack issued, is cluster-admin", () => {
    const client = clientCertificate("admin-a", "kubeadm-gcp:admin-a-115");
    const file = path.join(work, "provider-kubeconfig");
    fs.writeFileSync(
        file,
        renderKubeconfig({ clusterName: "k8s-dev", server: cp.server, caCertPem: stack["ca.crt"], clientCertPem: client.cert, clientKeyPem: client.key }),
        { mode: 0o600 },
    );
    // Verified against the stack's CA (no insecure flag), authenticated as the slot's user in the admin group.
    const whoami = JSON.parse(cp.kubectlOk([`--kubeconfig=${file}`, "auth", "whoami", "-o", "json"]));
    expect(whoami.status.userInfo.username).toBe("kubeadm-gcp:admin-a-115");
    expect(whoami.status.userInfo.groups).toContain(adminGroup);
    expect(cp.kubectlOk([`--kubeconfig=${file}`, "auth", "can-i", "*", "*", "--all-namespaces"]).trim()).toBe("yes");

    // The trade-off docs/identity.md states: such a certificate is revoked by deleting kubeadm's
    // binding of its group (here with super-admin.conf, as kubeadm itself would recreate it).
    const superAdmin = path.join(cp.root, "etc/kubernetes/super-admin.conf");
    cp.kubectlOk([`--kubeconfig=${superAdmin}`, "delete", "clusterrolebinding", "kubeadm:cluster-admins"]);
    expect(cp.kubectl([`--kubeconfig=${file}`, "auth", "can-i", "get", "pods"]).stdout.trim()).toBe("no");
    cp.kubectlOk([`--kubeconfig=${superAdmin}`, "create", "clusterrolebinding", "kubeadm:cluster-admins", "--clusterrole=cluster-admin", `--group=${adminGroup}`]);
});

test("kubeadm's own join command pins the CA exactly as the program computes it before any VM exists", async () => {
    const r = await cp.runScript("join-token", { WORKER_NAME: "k8s-dev-worker-1" });
    expect(r.status).toBe(0);
    const pin = /--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
    expect(pin).toBe(caCertHash(stack["ca.crt"]));
});
