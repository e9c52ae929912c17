/**
 * components/identity.ts: the pure pieces directly (the CA pin against openssl, the bundle, the
 * rotation plan, the kubeconfig), the component's resources under the mock runtime, and how the
 * program hands the identity to the control plane.
 */
import { spawnSync } from "child_process";
import * as yaml from "js-yaml";
import {
    adminGroup,
    caCertHash,
    caValidityHours,
    clientValidityHours,
    controlPlanePkiFiles,
    ControlPlanePkiFile,
    planClientCredentials,
    renderKubeconfig,
    renderPkiBundle,
    rotationDays,
} from "../components/identity";
import { fixtureCaCertPem, ProgramRun, runProgram } from "./helpers/program";

const dayMs = 86_400_000;

describe("caCertHash", () => {
    test("is kubeadm's pin: the SHA-256 of the CA's DER SubjectPublicKeyInfo, as openssl computes it", () => {
        // kubeadm's documented way to compute --discovery-token-ca-cert-hash by hand.
        const pub = spawnSync("openssl", ["x509", "-pubkey", "-noout"], { input: fixtureCaCertPem });
        const der = spawnSync("openssl", ["pkey", "-pubin", "-outform", "DER"], { input: pub.stdout });
        const digest = spawnSync("sha256sum", [], { input: der.stdout, encoding: "utf8" });
        expect(digest.status).toBe(0);
        expect(caCertHash(fixtureCaCertPem)).toBe(`sha256:${digest.stdout.split(" ")[0]}`);
    });

    test("refuses what is not a certificate", () => {
        expect(() => caCertHash("-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n")).toThrow();
    });
});

describe("renderPkiBundle", () => {
    const files = Object.fromEntries(controlPlanePkiFiles.map((f) => [f, `-----BEGIN X-----\n${f}\n-----END X-----\n`])) as Record<ControlPlanePkiFile, string>;

    test("every file once, in a fixed order, each after its marker line", () => {
        const bundle = renderPkiBundle(files);
        const markers = bundle.split("\n").filter((l) => l.startsWith("# kubeadm-gcp pki file: "));
        expect(markers).toEqual(controlPlanePkiFiles.map((f) => `# kubeadm-gcp pki file: ${f}`));
        expect(bundle).toContain("# kubeadm-gcp pki file: sa.pub\n-----BEGIN X-----\nsa.pub\n-----END X-----\n");
    });

    test("refuses a file that contains the marker", () => {
        expect(() => renderPkiBundle({ ...files, "ca.key": "# kubeadm-gcp pki file: ca.crt" })).toThrow(/ca\.key contains the bundle's marker/);
    });
});

describe("planClientCredentials", () => {
    const start = Date.UTC(2026, 0, 1);
    const days = Array.from({ length: 3 * rotationDays + 7 }, (_, i) => new Date(start + i * dayMs + 3_600_000));

    test("from one day to the next at most one slot is re-issued, and never the one the provider then uses", () => {
        let reissues = 0;
        for (let i = 1; i < days.length; i++) {
            const before = planClientCredentials(days[i - 1]);
            const after = planClientCredentials(days[i]);
            const reissued = (["a", "b"] as const).filter((s) => before.periods[s] !== after.periods[s]);
            expect(reissued.length).toBeLessThanOrEqual(1);
            if (reissued.length === 1) {
                reissues++;
                expect({ day: i, inUse: after.inUse }).not.toEqual({ day: i, inUse: reissued[0] });
                // The provider moves to the other slot, whose certificate an earlier `up` issued.
                expect(after.periods[after.inUse]).toBe(before.periods[after.inUse]);
            }
        }
        // Every half period, one of the two.
        expect(reissues).toBe(Math.floor((days.length - 1) / (rotationDays / 2)));
    });

    test("the certificate in use was issued between half a period and a period ago: well inside its validity", () => {
        for (const day of days) {
            const plan = planClientCredentials(day);
            const dayNumber = Math.floor(day.getTime() / dayMs);
            const started = plan.inUse === "a" ? plan.periods.a * rotationDays : plan.periods.b * rotationDays + rotationDays / 2;
            const age = dayNumber - started;
            expect(age).toBeGreaterThanOrEqual(rotationDays / 2);
            expect(age).toBeLessThan(rotationDays);
        }
        expect(rotationDays * 24).toBeLessThan(clientValidityHours);
    });

    test("refuses a period that cannot be halved into whole days", () => {
        expect(() => planClientCredentials(new Date(), 7)).toThrow(/even whole number of days/);
    });
});

describe("renderKubeconfig", () => {
    test("one cluster, one user, one context, each the current one; PEMs base64-encoded", () => {
        const text = renderKubeconfig({
            clusterName: "k8s-dev",
            server: "https://203.0.113.7:6443",
            caCertPem: fixtureCaCertPem,
            clientCertPem: "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----",
            clientKeyPem: "-----BEGIN RSA PRIVATE KEY-----\nkey\n-----END RSA PRIVATE KEY-----\n",
        });
        const config = yaml.load(text) as any;
        expect(config).toMatchObject({ apiVersion: "v1", kind: "Config", "current-context": "k8s-dev-admin@k8s-dev" });
        expect(config.clusters).toEqual([{ name: "k8s-dev", cluster: { server: "https://203.0.113.7:6443", "certificate-authority-data": expect.any(String) } }]);
        expect(config.contexts).toEqual([{ name: "k8s-dev-admin@k8s-dev", context: { cluster: "k8s-dev", user: "k8s-dev-admin" } }]);
        const b64 = (s: string) => Buffer.from(s, "base64").toString();
        expect(b64(config.clusters[0].cluster["certificate-authority-data"])).toBe(fixtureCaCertPem.trim() + "\n");
        expect(b64(config.users[0].user["client-certificate-data"])).toBe("-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n");
        expect(b64(config.users[0].user["client-key-data"])).toBe("-----BEGIN RSA PRIVATE KEY-----\nkey\n-----END RSA PRIVATE KEY-----\n");
    });
});

describe("the identity in the program", () => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({ "gcp:project": "test-project" });
    });
    const ofIdentity = (type: string) => run.byType(type).filter((r) => r.parent === "k8s-dev-identity");

    test("two CAs of ten years, as kubeadm makes them, each with its own RSA key", () => {
        const cas = ofIdentity("tls:index/selfSignedCert:SelfSignedCert");
        expect(cas.map((c) => [c.name, c.inputs.subject.commonName])).toEqual([
            ["k8s-dev-identity-ca", "kubernetes"],
            ["k8s-dev-identity-front-proxy-ca", "front-proxy-ca"],
        ]);
        for (const ca of cas) {
            expect(ca.inputs).toMatchObject({ isCaCertificate: true, validityPeriodHours: caValidityHours, setSubjectKeyId: true });
            expect(ca.inputs.allowedUses).toContain("cert_signing");
            expect(ca.propertyDependencies.privateKeyPem).toEqual([`${ca.name}-key`]);
            expect(run.get(`${ca.name}-key`).inputs).toEqual({ algorithm: "RSA", rsaBits: 2048 });
        }
        expect(run.get("k8s-dev-identity-sa-key").inputs).toEqual({ algorithm: "RSA", rsaBits: 2048 });
    });

    test("two client certificates for the admin group, signed by the cluster CA for one year, re-issued with their period", () => {
        const certs = ofIdentity("tls:index/locallySignedCert:LocallySignedCert");
        expect(certs.map((c) => c.name)).toEqual(["k8s-dev-identity-admin-a", "k8s-dev-identity-admin-b"]);
        const plan = planClientCredentials(new Date());
        for (const [slot, cert] of [["a", certs[0]], ["b", certs[1]]] as const) {
            expect(cert.inputs).toMatchObject({ validityPeriodHours: clientValidityHours, allowedUses: ["client_auth", "digital_signature", "key_encipherment"] });
            expect(cert.propertyDependencies).toMatchObject({ caCertPem: ["k8s-dev-identity-ca"], caPrivateKeyPem: ["k8s-dev-identity-ca-key"] });
            const csr = run.get(`k8s-dev-identity-admin-${slot}-csr`);
            expect(csr.inputs.subject).toEqual({ commonName: `kubeadm-gcp:admin-${slot}-${plan.periods[slot]}`, organization: adminGroup });
            expect(run.get(`k8s-dev-identity-admin-${slot}-key`).replacementTrigger).toBe(`period-${plan.periods[slot]}`);
        }
    });

    test("the control plane gets the PKI as secret stdin of its init step, never in the script text", () => {
        const init = run.get("k8s-dev-cluster-control-plane-init");
        expect(init.secretInputs).toContain("stdin");
        expect(init.secretInputs).not.toContain("create");
        expect(init.propertyDependencies.stdin).toEqual(
            ["k8s-dev-identity-ca", "k8s-dev-identity-ca-key", "k8s-dev-identity-front-proxy-ca", "k8s-dev-identity-front-proxy-ca-key", "k8s-dev-identity-sa-key"],
        );
        const bundle: string = init.inputs.stdin;
        expect(bundle.split("\n").filter((l) => l.startsWith("# kubeadm-gcp pki file: "))).toHaveLength(controlPlanePkiFiles.length);
        expect(bundle).toContain("key-of:k8s-dev-identity-ca-key");
        expect(init.inputs.create).not.toContain("PRIVATE KEY");
    });

    test("the kubeconfig and its expiry are stack outputs; the kubeconfig is secret", () => {
        expect(run.secretOutputs).toContain("kubeconfig");
        expect(run.outputs.kubeconfigExpires).toBe("2027-12-06T00:00:00Z");
        expect(run.secretOutputs).not.toContain("kubeconfigExpires");
    });
});
