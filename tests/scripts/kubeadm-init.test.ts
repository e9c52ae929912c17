import * as fs from "fs";
import * as path from "path";
import { ControlPlanePkiFile, controlPlanePkiFiles, renderPkiBundle } from "../../components/identity";
import {
    callsTo, clearCalls, createSandbox, existsRoot, fixturesDir, readRoot, removeSandboxes, runScript, Sandbox, setState,
    tokenLike, writeRoot,
} from "./harness";

const settings = {
    NODE_NAME: "k8s-cp-0",
    ADVERTISE_ADDRESS: "10.240.0.2",
    PUBLIC_ADDRESS: "203.0.113.7",
    POD_CIDR: "10.200.0.0/16",
    SERVICE_CIDR: "10.96.0.0/12",
    CLUSTER_NAME: "kubeadm-gcp",
    FLANNEL_MANIFEST_URL: "https://github.com/flannel-io/flannel/releases/download/v0.28.9/kube-flannel.yml",
};

/** The stack's PKI as the program hands it over on stdin (text stands in for the PEM blocks). */
const pkiFiles = Object.fromEntries(controlPlanePkiFiles.map((f) => [f, `-----BEGIN TEST-----\n${f} of the stack\n-----END TEST-----`])) as Record<ControlPlanePkiFile, string>;
const bundle = renderPkiBundle(pkiFiles);
const clusterUid = "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b";

function runInit(sb: Sandbox, settings: Record<string, string>, opts: { input?: string; env?: Record<string, string> } = {}) {
    return runScript(sb, "kubeadm-init", settings, { input: bundle, ...opts });
}

/** The YAML documents of a multi-document file, keyed by kind. */
function documentsByKind(text: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const doc of text.split(/^---$/m)) {
        const kind = /^kind: (\S+)$/m.exec(doc)?.[1];
        if (kind) {
            out[kind] = doc;
        }
    }
    return out;
}

afterAll(removeSandboxes);

describe("kubeadm-init.sh", () => {
    let sb: Sandbox;
    let first: ReturnType<typeof runScript>;

    beforeAll(() => {
        sb = createSandbox();
        first = runInit(sb, settings);
    });

    test("succeeds, prints the cluster's UID on stdout and no token anywhere", () => {
        expect(first.stderr).not.toMatch(/ERROR/);
        expect(first.status).toBe(0);
        expect(first.stdout).toBe(`${clusterUid}\n`);
        // The kubeadm stub prints an init token unless --skip-token-print is given.
        expect(first.stderr).not.toMatch(tokenLike);
    });

    test("writes a kubeadm v1beta4 config with the node, SANs, CIDRs and the systemd cgroup driver", () => {
        const config = readRoot(sb, "etc/kubernetes/kubeadm-config.yaml");
        expect(fs.statSync(path.join(sb.root, "etc/kubernetes/kubeadm-config.yaml")).mode & 0o777).toBe(0o600);
        const docs = documentsByKind(config);
        expect(Object.keys(docs).sort()).toEqual(["ClusterConfiguration", "InitConfiguration", "KubeletConfiguration"]);

        const init = docs.InitConfiguration;
        expect(init).toMatch(/^apiVersion: kubeadm\.k8s\.io\/v1beta4$/m);
        expect(init).toMatch(/^localAPIEndpoint:\n {2}advertiseAddress: "10\.240\.0\.2"$/m);
        expect(init).toMatch(/^nodeRegistration:\n {2}name: "k8s-cp-0"\n {2}criSocket: "unix:\/\/\/run\/containerd\/containerd\.sock"$/m);
        expect(init).toMatch(/^bootstrapTokens:\n {2}- description: .*\n {4}ttl: 15m0s$/m);
        expect(init).not.toMatch(/token:/);

        const cluster = docs.ClusterConfiguration;
        expect(cluster).toMatch(/^apiVersion: kubeadm\.k8s\.io\/v1beta4$/m);
        expect(cluster).toMatch(/^kubernetesVersion: "v1\.36\.0"$/m);
        expect(cluster).toMatch(/^clusterName: "kubeadm-gcp"$/m);
        expect(cluster).toMatch(/^controlPlaneEndpoint: "10\.240\.0\.2:6443"$/m);
        expect(cluster).toMatch(/^networking:\n {2}podSubnet: "10\.200\.0\.0\/16"\n {2}serviceSubnet: "10\.96\.0\.0\/12"$/m);
        expect(cluster).toMatch(/^apiServer:\n {2}certSANs:\n {4}- "203\.0\.113\.7"\n {4}- "10\.240\.0\.2"\n {4}- "k8s-cp-0"$/m);

        const kubelet = docs.KubeletConfiguration;
        expect(kubelet).toMatch(/^apiVersion: kubelet\.config\.k8s\.io\/v1beta1$/m);
        expect(kubelet).toMatch(/^cgroupDriver: systemd$/m);
    });

    test("installs the stack's CA, front-proxy CA and service-account key before kubeadm init, keys readable by root only", () => {
        // The kubeadm stub records which of them it found when init ran.
        expect(fs.readFileSync(path.join(sb.state, "init-found-pki"), "utf8").trim().split("\n")).toEqual([...controlPlanePkiFiles]);
        for (const f of controlPlanePkiFiles) {
            expect(readRoot(sb, `etc/kubernetes/pki/${f}`)).toBe(`${pkiFiles[f]}\n`);
            expect({ f, mode: fs.statSync(path.join(sb.root, "etc/kubernetes/pki", f)).mode & 0o777 }).toEqual({ f, mode: f.endsWith(".key") ? 0o600 : 0o644 });
        }
        // The bundle is a secret: nothing of it reaches the logs.
        expect(first.stderr).not.toContain("of the stack");
    });

    test("runs kubeadm init once, with the config and --skip-token-print", () => {
        expect(callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm init"))).toEqual([
            `kubeadm init --config ${sb.root}/etc/kubernetes/kubeadm-config.yaml --skip-token-print`,
        ]);
    });

    test("on etcd data the restore step put in place, kubeadm init accepts the non-empty data directory", () => {
        const restored = createSandbox();
        writeRoot(restored, "var/lib/etcd/member/snap/db", "restored");
        const r = runInit(restored, settings);
        expect(r.status).toBe(0);
        expect(r.stderr).toMatch(/on the restored etcd data/);
        expect(callsTo(restored, "kubeadm").filter((l) => l.startsWith("kubeadm init"))).toEqual([
            `kubeadm init --config ${restored.root}/etc/kubernetes/kubeadm-config.yaml --skip-token-print --ignore-preflight-errors=DirAvailable--var-lib-etcd`,
        ]);
    });

    test("applies Flannel with the pod CIDR using the admin kubeconfig", () => {
        const applied = fs.readFileSync(path.join(sb.state, "applied", "kube-flannel.yml"), "utf8");
        expect(applied).toContain('"Network": "10.200.0.0/16"');
        expect(applied).not.toContain("10.244.0.0/16");
        expect(applied).toContain('"Type": "vxlan"');
        expect(callsTo(sb, "curl")).toEqual([expect.stringContaining(settings.FLANNEL_MANIFEST_URL)]);
        const applies = callsTo(sb, "kubectl").filter((l) => / apply /.test(l));
        expect(applies).toEqual([expect.stringMatching(new RegExp(`^kubectl --kubeconfig ${sb.root}/etc/kubernetes/admin.conf apply -f `))]);
    });

    test("a second run on the initialised control plane does not run kubeadm init again", () => {
        const configBefore = readRoot(sb, "etc/kubernetes/kubeadm-config.yaml");
        clearCalls(sb);
        const second = runInit(sb, settings);
        expect(second.status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm init"))).toEqual([]);
        expect(callsTo(sb, "kubectl")).toContain(`kubectl --kubeconfig ${sb.root}/etc/kubernetes/admin.conf get --raw /readyz`);
        expect(readRoot(sb, "etc/kubernetes/kubeadm-config.yaml")).toBe(configBefore);
    });
});

describe("kubeadm-init.sh after an init that failed half-way", () => {
    const phases = (sb: Sandbox) => callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm init"));
    const config = (sb: Sandbox) => `--config ${sb.root}/etc/kubernetes/kubeadm-config.yaml`;

    test("kubeadm init failing after admin.conf fails the step; the re-run finishes init's phases with the same config", () => {
        const sb = createSandbox();
        const failed = runInit(sb, settings, { env: { STUB_INIT_FAIL_AFTER_ADMIN: "1" } });
        expect(failed.status).not.toBe(0);
        // What the failed init left: admin.conf and an API that answers, but no cluster-info, no addons.
        expect(readRoot(sb, "etc/kubernetes/admin.conf")).toContain("kind: Config");

        clearCalls(sb);
        const rerun = runInit(sb, settings);
        expect(rerun.status).toBe(0);
        expect(rerun.stderr).toMatch(/kubeadm init did not finish \(missing: kube-system\/configmap\/kubeadm-config, kube-public\/configmap\/cluster-info, kube-system\/daemonset\/kube-proxy, kube-system\/deployment\/coredns\)/);
        expect(phases(sb)).toEqual([
            `kubeadm init phase upload-config all ${config(sb)}`,
            `kubeadm init phase mark-control-plane ${config(sb)}`,
            `kubeadm init phase bootstrap-token --skip-token-print ${config(sb)}`,
            `kubeadm init phase kubelet-finalize all ${config(sb)}`,
            `kubeadm init phase addon all ${config(sb)}`,
        ]);
        expect(rerun.stderr).not.toMatch(tokenLike);
        // Flannel is applied once the control plane is complete.
        expect(callsTo(sb, "kubectl").filter((l) => / apply /.test(l))).toHaveLength(1);

        clearCalls(sb);
        expect(runInit(sb, settings).status).toBe(0);
        expect(phases(sb)).toEqual([]);
    });

    test("only the addons missing (init stopped in its last phase): the phases run again, and the node is not re-initialised", () => {
        const sb = createSandbox();
        expect(runInit(sb, settings).status).toBe(0);
        fs.rmSync(path.join(sb.state, "objects", "kube-system", "deployment"), { recursive: true });
        clearCalls(sb);
        const rerun = runInit(sb, settings);
        expect(rerun.status).toBe(0);
        expect(rerun.stderr).toMatch(/missing: kube-system\/deployment\/coredns\)/);
        expect(phases(sb)).toContain(`kubeadm init phase addon all ${config(sb)}`);
        expect(phases(sb).filter((l) => !l.startsWith("kubeadm init phase"))).toEqual([]);
    });

    test("fails, saying what to check, when the phases do not complete the control plane", () => {
        const sb = createSandbox();
        runInit(sb, settings, { env: { STUB_INIT_FAIL_AFTER_ADMIN: "1" } });
        const rerun = runInit(sb, settings, { env: { STUB_ADDON_FAIL: "1", RETRY_ATTEMPTS: "2" } });
        expect(rerun.status).not.toBe(0);
        expect(rerun.stderr).toMatch(/kubeadm init phase addon failed/);
        expect(callsTo(sb, "kubectl").filter((l) => / apply /.test(l))).toEqual([]);
    });
});

describe("kubeadm-init.sh and the stack's PKI", () => {
    test("killed after installing some of the files: the re-run installs the rest and initialises", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/pki/ca.crt", `${pkiFiles["ca.crt"]}\n`);
        writeRoot(sb, "etc/kubernetes/pki/ca.key", `${pkiFiles["ca.key"]}\n`);
        const result = runInit(sb, settings);
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/installed the stack's cluster identity into .*: front-proxy-ca\.crt front-proxy-ca\.key sa\.key sa\.pub/);
        expect(fs.readFileSync(path.join(sb.state, "init-found-pki"), "utf8").trim().split("\n")).toEqual([...controlPlanePkiFiles]);
    });

    test("a node initialised with another CA stops the step, naming the way out, and changes nothing", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/pki/ca.crt", "-----BEGIN TEST-----\nkubeadm's own CA\n-----END TEST-----\n");
        const result = runInit(sb, settings);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/pki\/ca\.crt is not the stack's: this control plane was initialised with another identity.*npm run replace:control-plane/);
        expect(readRoot(sb, "etc/kubernetes/pki/ca.crt")).toContain("kubeadm's own CA");
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });

    test.each([
        ["nothing", ""],
        ["a bundle without sa.pub", bundle.slice(0, bundle.indexOf("# kubeadm-gcp pki file: sa.pub"))],
        ["a file the bundle may not name", `${bundle}# kubeadm-gcp pki file: admin.conf\nx\n`],
        ["text before the first file", `hello\n${bundle}`],
    ])("refuses %s on stdin before touching the node, without echoing it", (_what, input) => {
        const sb = createSandbox();
        const result = runInit(sb, settings, { input });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/PKI bundle on stdin|not the cluster's PKI bundle/);
        expect(result.stderr).not.toContain("of the stack");
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(existsRoot(sb, "etc/kubernetes/pki/ca.key")).toBe(false);
    });
});

describe("kubeadm-init.sh failure cases", () => {
    test("refuses to re-initialise when admin.conf exists but the API does not answer", () => {
        const sb = createSandbox();
        writeRoot(sb, "etc/kubernetes/admin.conf", fs.readFileSync(path.join(fixturesDir, "admin.conf"), "utf8"));
        const result = runInit(sb, settings, { env: { API_WAIT_ATTEMPTS: "2" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/admin\.conf exists but the API server does not answer.*kubeadm reset -f/);
        expect(callsTo(sb, "kubeadm").filter((l) => l.startsWith("kubeadm init"))).toEqual([]);
        expect(callsTo(sb, "kubectl").filter((l) => l.endsWith("/readyz"))).toHaveLength(2);
    });

    test("fails when Flannel's manifest has no default network to replace", () => {
        const sb = createSandbox();
        const manifest = path.join(sb.dir, "other-flannel.yml");
        fs.writeFileSync(manifest, fs.readFileSync(path.join(fixturesDir, "kube-flannel.yml"), "utf8").replace("10.244.0.0/16", "10.1.0.0/16"));
        const result = runInit(sb, settings, { env: { STUB_MANIFEST: manifest } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/could not set the pod CIDR in Flannel's manifest/);
        expect(callsTo(sb, "kubectl").filter((l) => / apply /.test(l))).toEqual([]);
    });

    test("keeps the manifest's network when POD_CIDR is Flannel's default", () => {
        const sb = createSandbox();
        const result = runInit(sb, { ...settings, POD_CIDR: "10.244.0.0/16" });
        expect(result.status).toBe(0);
        expect(fs.readFileSync(path.join(sb.state, "applied", "kube-flannel.yml"), "utf8")).toContain('"Network": "10.244.0.0/16"');
    });

    test("rejects a malformed setting before doing anything", () => {
        const sb = createSandbox();
        setState(sb, "api-up");
        const result = runInit(sb, { ...settings, POD_CIDR: "10.200.0.0" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/POD_CIDR must be an IPv4 CIDR block/);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
    });
});
