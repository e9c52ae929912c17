/**
 * A real Kubernetes control plane on loopback for one test file: etcd, kube-apiserver and
 * kube-controller-manager built from upstream source (tests/controlplane/build.sh), with the PKI and
 * kubeconfigs made by the real kubeadm (`kubeadm init phase certs|kubeconfig`).
 *
 * What it has: admission (Pod Security, NodeRestriction, ...), defaulting, CRD structural schemas,
 * RBAC, bootstrap tokens, and the controllers that turn a Deployment into a ReplicaSet and Pods.
 * With `nodes: true` also the real kube-scheduler and kwok (sigs.k8s.io/kwok): nodes created with
 * kwok's annotation (kwokNode) are simulated, so the scheduler places pods on them (Pending where
 * nothing fits, e.g. every node cordoned), kwok marks them Running and Ready and finishes their
 * deletion, evictions go through the real disruption controller, and a node reports the kubelet
 * version it was created with. Without it, and on nodes without the annotation, there is no kubelet:
 * a test that needs a Ready node or pod sets that status itself. The node-lifecycle controller runs
 * only with kwok: it would mark every node without a kubelet unreachable after 40 seconds.
 *
 * Every process gets random free ports and its own temporary directory; `stop()` ends them newest
 * first (the API server hangs in shutdown once etcd is gone) and deletes the directory unless a
 * test of the file failed, in which case the logs stay and their path is printed.
 */
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { renderScript } from "../../components/scripts";
import { kubeconfigCredentials } from "../e2e/support";
import { versions } from "../../components/versions";
import { containerdVersion, controllerToolsVersion, etcdVersion, kubernetesPatchFor, kwokVersion, metallbVersion } from "./versions";

/** Where build.sh put the binaries (globalSetup exports it; the default matches build.sh's). */
export function binCache(): string {
    return process.env.KUBEADM_GCP_BIN_CACHE ?? path.join(os.homedir(), ".cache", "kubeadm-gcp", "bin");
}

export const kubernetesRelease = kubernetesPatchFor(versions.kubernetesMinor);

/** The Kubernetes binaries of one release (build.sh builds every release of kubernetesPatches). */
export function kubernetesBinaries(release: string) {
    const dir = path.join(binCache(), `kubernetes-${release}`);
    return {
        dir,
        kubeadm: path.join(dir, "kubeadm"),
        kubectl: path.join(dir, "kubectl"),
        apiServer: path.join(dir, "kube-apiserver"),
        controllerManager: path.join(dir, "kube-controller-manager"),
        scheduler: path.join(dir, "kube-scheduler"),
    };
}

export const binaries = {
    kubernetesDir: path.join(binCache(), `kubernetes-${kubernetesRelease}`),
    kubeadm: path.join(binCache(), `kubernetes-${kubernetesRelease}`, "kubeadm"),
    kubectl: path.join(binCache(), `kubernetes-${kubernetesRelease}`, "kubectl"),
    apiServer: path.join(binCache(), `kubernetes-${kubernetesRelease}`, "kube-apiserver"),
    controllerManager: path.join(binCache(), `kubernetes-${kubernetesRelease}`, "kube-controller-manager"),
    etcd: path.join(binCache(), `etcd-${etcdVersion}`, "etcd"),
    etcdctl: path.join(binCache(), `etcd-${etcdVersion}`, "etcdctl"),
    etcdutl: path.join(binCache(), `etcd-${etcdVersion}`, "etcdutl"),
    metallbController: path.join(binCache(), `metallb-${metallbVersion}`, "controller"),
    metallbSource: path.join(binCache(), `metallb-${metallbVersion}`, "source"),
    controllerGen: path.join(binCache(), `controller-tools-${controllerToolsVersion}`, "controller-gen"),
    containerd: path.join(binCache(), `containerd-${containerdVersion}`, "containerd"),
    kwok: path.join(binCache(), `kwok-${kwokVersion}`, "kwok"),
    /** kwok's module's kustomize/stage: kwokctl's default stages are its node/fast, node/heartbeat-with-lease and pod/fast. */
    kwokStages: path.join(binCache(), `kwok-${kwokVersion}`, "stages"),
};

/** The annotation kwok is started to manage nodes by (--manage-nodes-with-annotation-selector). */
export const kwokNodeAnnotation = "kwok.x-k8s.io/node";

export const serviceCidr = "10.96.0.0/12";

/** kubeadm-init.sh's settings as the program renders them for a default stack named k8s-dev. */
export const kubeadmInitSettings: Readonly<Record<string, string>> = {
    NODE_NAME: "k8s-dev-control-plane",
    ADVERTISE_ADDRESS: "10.240.0.2",
    PUBLIC_ADDRESS: "203.0.113.10",
    POD_CIDR: "10.244.0.0/16",
    SERVICE_CIDR: "10.96.0.0/12",
    CLUSTER_NAME: "k8s-dev",
    FLANNEL_MANIFEST_URL: "https://github.com/flannel-io/flannel/releases/download/v0.28.9/kube-flannel.yml",
};

/** TEST-NET-2 (RFC 5737): written into kubeadm's configuration only, never dialled. */
const unusedAdvertiseAddress = "198.51.100.10";

export interface ControlPlane {
    /** The temporary directory holding the PKI, the kubeconfigs, etcd's data and every log. */
    dir: string;
    /** A stand-in for a control plane node's "/" (the scripts' FS_ROOT): etc/kubernetes/admin.conf is real. */
    root: string;
    /** kubeadm's admin.conf (group kubeadm:cluster-admins, bound to cluster-admin as kubeadm does). */
    adminConf: string;
    /** https://127.0.0.1:<port> */
    server: string;
    /** etcd's client URL (https://127.0.0.1:<port>, kubeadm's etcd certificates) and its data directory. */
    etcdEndpoint: string;
    etcdDataDir: string;
    /** What `kubeadm init phase certs all` printed (which files it generated, which it found). */
    certsLog: string;
    /** Runs the real kubectl as the admin; never throws. */
    kubectl(args: string[], input?: string): SpawnSyncReturns<string>;
    /** Like kubectl, but throws with stderr unless it exits 0; returns stdout. */
    kubectlOk(args: string[], input?: string): string;
    /**
     * Reads `path` (e.g. /api/v1/nodes/worker-1) as the admin, in process: the parsed JSON, or
     * undefined when the API answers 404; throws on any other failure. For a test's own reads and
     * polls: no kubectl process per read (each costs a tenth of a CPU-second), and the event loop
     * keeps running while it waits.
     */
    get(path: string): Promise<any>;
    /**
     * Sends `body` as the admin, in process, like get(): JSON, or a JSON merge patch for PATCH; the
     * parsed answer; throws unless the API answers 2xx. For a test's own changes to the cluster
     * (creating a node, setting a status, clearing a workload) where kubectl is not what it tests.
     */
    send(method: "POST" | "PATCH" | "DELETE", path: string, body?: unknown): Promise<any>;
    /**
     * Runs `scripts/<name>.sh` exactly as the program renders it, "on the control plane": the real
     * kubeadm and kubectl first on PATH, FS_ROOT = `root` (so its admin.conf is this cluster's).
     */
    runScript(name: string, settings: Record<string, string>, env?: Record<string, string>, input?: string): Promise<ScriptResult>;
    /** Starts another process whose log is kept with the others and which `stop()` ends first. */
    startProcess(name: string, binary: string, args: string[], env?: Record<string, string>): ChildProcess;
    /** The Kubernetes release the control plane's components run now. */
    release(): string;
    /**
     * What `kubeadm upgrade apply` does to the static Pods, one component after the other: restarts
     * kube-apiserver, kube-controller-manager and (with `nodes`) kube-scheduler from `release`'s
     * binaries, on the same etcd and PKI, and waits until the API server reports it.
     */
    upgradeTo(release: string): Promise<void>;
    stop(): Promise<void>;
}

export interface ScriptResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as net.AddressInfo).port;
            server.close(() => resolve(port));
        });
    });
}

function run(binary: string, args: string[], options: { input?: string; env?: Record<string, string> } = {}): SpawnSyncReturns<string> {
    return spawnSync(binary, args, {
        input: options.input,
        encoding: "utf8",
        env: { ...process.env, ...options.env },
        timeout: 90_000,
        maxBuffer: 64 * 1024 * 1024,
    });
}

function runOk(binary: string, args: string[], options: { input?: string; env?: Record<string, string> } = {}): string {
    const r = run(binary, args, options);
    if (r.status !== 0) {
        throw new Error(`${path.basename(binary)} ${args.join(" ")} exited ${r.status ?? r.signal}:\n${r.stderr}${r.error ? `\n${r.error}` : ""}`);
    }
    return r.stdout;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Reads until `ok` holds (every 100 ms: a read is a request in process; at most `timeoutMs`) and
 * returns the value that passed; a timeout names the last value and, when given, the log to read.
 */
export async function until<T>(what: string, read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 60_000, logHint?: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let value = await read();
    while (!ok(value)) {
        if (Date.now() > deadline) {
            throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs / 1000}s${logHint ? `; see ${logHint}` : ""}`);
        }
        await sleep(100);
        value = await read();
    }
    return value;
}

interface ApiResponse {
    status: number;
    body: string;
}

/**
 * An HTTPS client of the API server with a kubeconfig's embedded CA and client certificate (what
 * kubeadm writes, read by the e2e test's kubeconfigCredentials). Its connections are kept alive
 * between requests; `close()` ends them.
 */
function apiClient(kubeconfig: string) {
    const { server, ca, cert, key } = kubeconfigCredentials(fs.readFileSync(kubeconfig, "utf8"));
    if (!ca || !cert || !key) {
        throw new Error(`${kubeconfig} has no embedded CA, client certificate and key`);
    }
    const agent = new https.Agent({ keepAlive: true, ca, cert, key });
    const once = (method: string, requestPath: string, body?: unknown) =>
        new Promise<ApiResponse & { reusedSocket: boolean }>((resolve, reject) => {
            const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
            const headers: Record<string, string | number> = { Accept: "application/json" };
            if (payload) {
                headers["Content-Type"] = method === "PATCH" ? "application/merge-patch+json" : "application/json";
                headers["Content-Length"] = payload.length;
            }
            const request = https.request(new URL(requestPath, server), { method, agent, headers, timeout: 30_000 }, (response) => {
                let text = "";
                response.setEncoding("utf8");
                response.on("data", (chunk) => (text += chunk));
                response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text, reusedSocket: request.reusedSocket }));
                response.on("error", reject);
            });
            request.on("timeout", () => request.destroy(new Error(`${method} ${requestPath}: no answer within 30s`)));
            request.on("error", (error: NodeJS.ErrnoException) => reject(Object.assign(error, { reusedSocket: request.reusedSocket })));
            request.end(payload);
        });
    return {
        /** A request as the kubeconfig's user; a body is sent as JSON (a JSON merge patch for PATCH). */
        async request(method: string, requestPath: string, body?: unknown): Promise<ApiResponse> {
            try {
                return await once(method, requestPath, body);
            } catch (e) {
                // A kept-alive connection that the API server closed while idle fails the first request
                // sent on it, which the server never read: Node's documented remedy is to send it again.
                if ((e as { reusedSocket?: boolean }).reusedSocket && (e as NodeJS.ErrnoException).code === "ECONNRESET") {
                    return once(method, requestPath, body);
                }
                throw e;
            }
        },
        /** Ends the kept-alive connections; the next request opens a new one. */
        close: () => agent.destroy(),
    };
}

/** Every process of every control plane of this test file, so a crash of the file still ends them. */
const allProcesses = new Set<ChildProcess>();
process.on("exit", () => {
    for (const p of allProcesses) {
        p.kill("SIGKILL");
    }
});

export interface ControlPlaneOptions {
    /**
     * Files to place in /etc/kubernetes/pki before kubeadm makes the rest, as a stack-owned identity
     * is (kubeadm-init.sh installs it before `kubeadm init`): e.g. { "ca.crt": ..., "ca.key": ... }.
     */
    pki?: Record<string, string>;
    /** etcd's data directory (default: a fresh one in the control plane's directory), e.g. one a restore wrote. */
    etcdDataDir?: string;
    /** The Kubernetes release to start (default: the program's default minor's, kubernetesRelease). */
    release?: string;
    /**
     * Also start the real kube-scheduler and kwok, for nodes and pods that behave. Opt-in: the other
     * files bind and run pods by hand on nodes they mark Ready, which a real scheduler would race.
     */
    nodes?: boolean;
}

/**
 * A Node that kwok simulates: Ready while kwok runs, with room for any pod, reporting
 * `kubeletVersion` (kwok's node-initialize stage keeps a version the node was created with).
 */
export function kwokNode(name: string, kubeletVersion: string, labels: Record<string, string> = {}): object {
    return {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name, annotations: { [kwokNodeAnnotation]: "fake" }, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", type: "kwok", ...labels } },
        status: { nodeInfo: { kubeletVersion } },
    };
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    let release = options.release ?? kubernetesRelease;
    const k8s = kubernetesBinaries(release);
    const needed = [binaries.etcd, k8s.apiServer, k8s.controllerManager, k8s.kubeadm, k8s.kubectl, ...(options.nodes ? [k8s.scheduler, binaries.kwok] : [])];
    for (const file of needed) {
        if (!fs.existsSync(file)) {
            throw new Error(`${file} not found: run tests/controlplane/build.sh (npm run test:controlplane does it first)`);
        }
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "controlplane-"));
    const root = path.join(dir, "root");
    const kubernetesDir = path.join(root, "etc", "kubernetes");
    const pki = path.join(kubernetesDir, "pki");
    fs.mkdirSync(pki, { recursive: true });
    const [etcdClientPort, etcdPeerPort, apiPort, controllerManagerPort, kwokPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiPort}`;

    // The PKI and kubeconfigs kubeadm itself would write on a control plane.
    const kubeadmConfig = path.join(dir, "kubeadm-config.yaml");
    fs.writeFileSync(
        kubeadmConfig,
        [
            "apiVersion: kubeadm.k8s.io/v1beta4",
            "kind: InitConfiguration",
            // kubeadm replaces a loopback advertise address with a host interface's address, so the
            // configuration names a documentation address that nothing ever dials; the API server
            // itself serves 127.0.0.1, which its certificate names too, and advertises this address.
            `localAPIEndpoint: { advertiseAddress: ${unusedAdvertiseAddress}, bindPort: ${apiPort} }`,
            "nodeRegistration: { name: test-control-plane }",
            "---",
            "apiVersion: kubeadm.k8s.io/v1beta4",
            "kind: ClusterConfiguration",
            `kubernetesVersion: ${release}`,
            "clusterName: controlplane-test",
            // Not what kubeadm-init.sh configures: kubeadm's default keys are RSA 2048, whose generation
            // took 1.7 of a start's seconds (ECDSA P-256: 0.5). No test here depends on the key type;
            // with a stack-owned identity (options.pki), which is the PKI under test, kubeadm keeps its default.
            ...(options.pki ? [] : ["encryptionAlgorithm: ECDSA-P256"]),
            `certificatesDir: ${pki}`,
            `controlPlaneEndpoint: 127.0.0.1:${apiPort}`,
            `networking: { serviceSubnet: ${serviceCidr} }`,
            "apiServer: { certSANs: [127.0.0.1, localhost] }",
            "",
        ].join("\n"),
    );
    for (const [file, text] of Object.entries(options.pki ?? {})) {
        fs.writeFileSync(path.join(pki, file), text, { mode: file.endsWith(".key") ? 0o600 : 0o644 });
    }
    const certsLog = runOk(k8s.kubeadm, ["init", "phase", "certs", "all", "--config", kubeadmConfig]);
    // One kubeadm run for every kubeconfig of a control plane node (kubelet.conf too, which nothing
    // here uses): the same files as a run per kubeconfig, in 0.04 s instead of 0.2.
    runOk(k8s.kubeadm, ["init", "phase", "kubeconfig", "all", "--config", kubeadmConfig, "--kubeconfig-dir", kubernetesDir]);
    // controller-manager.conf names the advertise address: point every kubeconfig at loopback.
    for (const kubeconfig of ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"]) {
        const file = path.join(kubernetesDir, kubeconfig);
        fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/^(\s*server:\s*).*$/gm, `$1${server}`));
    }
    const adminConf = path.join(kubernetesDir, "admin.conf");
    const superAdminConf = path.join(kubernetesDir, "super-admin.conf");
    const adminApi = apiClient(adminConf);
    // /readyz is asked as super-admin.conf (system:masters): admin.conf's group has no rights until
    // kubeadm:cluster-admins is bound, once the API server is ready.
    const superAdminApi = apiClient(superAdminConf);
    const apiServerReady = () => superAdminApi.request("GET", "/readyz").then((r) => r.status === 200, () => false);
    const get = async (requestPath: string) => {
        const { status, body } = await adminApi.request("GET", requestPath);
        if (status === 404) {
            return undefined;
        }
        if (status !== 200) {
            throw new Error(`GET ${requestPath}: ${status} ${body}`);
        }
        return JSON.parse(body);
    };
    const send = async (method: "POST" | "PATCH" | "DELETE", requestPath: string, body?: unknown) => {
        const answer = await adminApi.request(method, requestPath, body);
        if (answer.status < 200 || answer.status > 299) {
            throw new Error(`${method} ${requestPath}: ${answer.status} ${answer.body}`);
        }
        return JSON.parse(answer.body);
    };

    const processes: ChildProcess[] = [];
    const byName = new Map<string, ChildProcess>();
    const startProcess = (name: string, binary: string, args: string[], env: Record<string, string> = {}) => {
        const log = fs.openSync(path.join(dir, `${name}.log`), "a");
        const child = spawn(binary, args, { stdio: ["ignore", log, log], env: { ...process.env, ...env } });
        fs.closeSync(log);
        processes.push(child);
        byName.set(name, child);
        allProcesses.add(child);
        child.on("exit", () => allProcesses.delete(child));
        return child;
    };
    const endProcess = async (child: ChildProcess) => {
        if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
            await exited;
            clearTimeout(timer);
        }
    };

    // Client traffic over TLS with kubeadm's etcd certificates, as kubeadm's static Pod serves it, so
    // that etcdctl with the healthcheck-client certificate (etcd-backup.sh) works as on a node.
    const etcdUrl = `https://127.0.0.1:${etcdClientPort}`;
    const etcdDataDir = options.etcdDataDir ?? path.join(dir, "etcd");
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    startProcess("etcd", binaries.etcd, [
        "--name=test",
        `--data-dir=${etcdDataDir}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        `--cert-file=${pki}/etcd/server.crt`,
        `--key-file=${pki}/etcd/server.key`,
        "--client-cert-auth=true",
        `--trusted-ca-file=${pki}/etcd/ca.crt`,
        "--unsafe-no-fsync", // test data only; keeps etcd quick on a busy disk
    ]);

    // The flags kubeadm writes into the kube-apiserver static Pod, with loopback addresses.
    const apiServerArgs = [
        // Since 1.37 the endpoint reconciler refuses a loopback address ("may not be in the loopback
        // range"); the `kubernetes` Service's endpoint is never dialled here.
        `--advertise-address=${unusedAdvertiseAddress}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--etcd-servers=${etcdUrl}`,
        `--etcd-cafile=${pki}/etcd/ca.crt`,
        `--etcd-certfile=${pki}/apiserver-etcd-client.crt`,
        `--etcd-keyfile=${pki}/apiserver-etcd-client.key`,
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        `--client-ca-file=${pki}/ca.crt`,
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        `--kubelet-client-certificate=${pki}/apiserver-kubelet-client.crt`,
        `--kubelet-client-key=${pki}/apiserver-kubelet-client.key`,
        `--proxy-client-cert-file=${pki}/front-proxy-client.crt`,
        `--proxy-client-key-file=${pki}/front-proxy-client.key`,
        `--requestheader-client-ca-file=${pki}/front-proxy-ca.crt`,
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${pki}/sa.pub`,
        `--service-account-signing-key-file=${pki}/sa.key`,
        `--service-cluster-ip-range=${serviceCidr}`,
        `--tls-cert-file=${pki}/apiserver.crt`,
        `--tls-private-key-file=${pki}/apiserver.key`,
        // Not kubeadm's: on SIGTERM the API server closes its watches within 2 s. Without it, it waits
        // for its watching clients (controller manager, scheduler, kwok) to end them, up to its request
        // timeout (60 s), and endProcess killed it after 10 s: the upgrade's restart and a file's stop
        // each spent those 10 s. Only its shutdown changes; the clients' watches resume on the next one.
        "--shutdown-watch-termination-grace-period=2s",
    ];
    startProcess("kube-apiserver", k8s.apiServer, apiServerArgs);

    // kubectl's discovery cache is kept per server address (~/.kube/cache by default): the random
    // ports of earlier runs left caches there that a later cluster on the same port would read.
    const kubectlCache = path.join(dir, "kubectl-cache");
    /** kubectl of the running release, as the user of `kubeconfig`. */
    const kubectlAs = (kubeconfig: string, args: string[]): [string, string[]] => [
        kubernetesBinaries(release).kubectl,
        ["--kubeconfig", kubeconfig, "--cache-dir", kubectlCache, ...args],
    ];
    const kubectl = (args: string[], input?: string) => run(...kubectlAs(adminConf, args), { input });
    const kubectlOk = (args: string[], input?: string) => runOk(...kubectlAs(adminConf, args), { input });
    const asSuperAdmin = (args: string[]) => run(...kubectlAs(superAdminConf, args));

    const stop = async () => {
        adminApi.close();
        superAdminApi.close();
        for (const child of [...processes].reverse()) {
            await endProcess(child);
        }
        const failed = (globalThis as any).__controlPlaneTestFailed?.() ?? true;
        if (failed || process.env.KEEP_CONTROLPLANE) {
            process.stderr.write(`control plane logs kept in ${dir}\n`);
        } else {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };

    const controllerManagerArgs = [
        `--kubeconfig=${path.join(kubernetesDir, "controller-manager.conf")}`,
        `--authentication-kubeconfig=${path.join(kubernetesDir, "controller-manager.conf")}`,
        `--authorization-kubeconfig=${path.join(kubernetesDir, "controller-manager.conf")}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${controllerManagerPort}`,
        `--client-ca-file=${pki}/ca.crt`,
        `--cluster-signing-cert-file=${pki}/ca.crt`,
        `--cluster-signing-key-file=${pki}/ca.key`,
        `--requestheader-client-ca-file=${pki}/front-proxy-ca.crt`,
        `--root-ca-file=${pki}/ca.crt`,
        `--service-account-private-key-file=${pki}/sa.key`,
        `--service-cluster-ip-range=${serviceCidr}`,
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        // Not kubeadm's: only the controllers' client-side rate limit (default 20 requests a second,
        // burst 30), which the API server never sees. With a client per controller
        // (--use-service-account-credentials) the start-up's token requests queue behind it, and the
        // first `default` ServiceAccount came 6.6 s after the API server was ready instead of 1.4 s.
        "--kube-api-qps=500",
        "--kube-api-burst=1000",
        // Without kubelets the node-lifecycle controller would mark every node unreachable; with kwok
        // (whose Leases keep its nodes Ready) it must run: it lifts the not-ready taint that admission
        // (TaintNodesByCondition) puts on every new node, which would keep every pod Pending.
        `--controllers=*,bootstrapsigner,tokencleaner${options.nodes ? "" : ",-node-lifecycle-controller"}`,
    ];
    // kubeadm's kube-scheduler flags; no serving port (nothing here scrapes or probes it).
    const schedulerArgs = [
        `--kubeconfig=${path.join(kubernetesDir, "scheduler.conf")}`,
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--leader-elect=false",
    ];
    // kwok as kwokctl runs it: its default stages (node-initialize, node heartbeat with a Lease,
    // pod-ready, pod-complete, pod-delete), a Lease per node, and only annotated nodes managed.
    const startKwok = () => {
        const stages = ["node/fast", "node/heartbeat-with-lease", "pod/fast"].flatMap((d) =>
            fs
                .readdirSync(path.join(binaries.kwokStages, d))
                .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
                .map((f) => path.join(binaries.kwokStages, d, f)),
        );
        startProcess("kwok", binaries.kwok, [
            `--kubeconfig=${adminConf}`,
            ...stages.map((f) => `--config=${f}`),
            "--manage-all-nodes=false",
            `--manage-nodes-with-annotation-selector=${kwokNodeAnnotation}=fake`,
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.240.0.100",
            `--server-address=127.0.0.1:${kwokPort}`,
        ], { HOME: dir });
    };

    try {
        await until("kube-apiserver /readyz", apiServerReady, (ready) => ready, 60_000, `${dir}/kube-apiserver.log`);
        // kubeadm's kubeconfig phase binds admin.conf's group to cluster-admin with super-admin.conf.
        const binding = asSuperAdmin(["create", "clusterrolebinding", "kubeadm:cluster-admins", "--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins"]);
        // A control plane started on restored data has it already.
        if (binding.status !== 0 && !/already exists/.test(binding.stderr)) {
            throw new Error(`could not bind kubeadm:cluster-admins: ${binding.stderr}`);
        }
        startProcess("kube-controller-manager", k8s.controllerManager, controllerManagerArgs);
        if (options.nodes) {
            startProcess("kube-scheduler", k8s.scheduler, schedulerArgs);
            startKwok();
        }
        // Pods cannot be created in a namespace before its "default" ServiceAccount exists.
        await until(
            "the controller manager's first ServiceAccount",
            () => get("/api/v1/namespaces/default/serviceaccounts/default").then((account) => account !== undefined, () => false),
            (exists) => exists,
            60_000,
            `${dir}/kube-controller-manager.log`,
        );
    } catch (e) {
        (globalThis as any).__controlPlaneTestFailed = () => true;
        await stop();
        throw e;
    }
    let scripts = 0;
    const runScript = (name: string, settings: Record<string, string>, env: Record<string, string> = {}, input?: string) => {
        const file = path.join(dir, `${name}-${++scripts}.sh`);
        fs.writeFileSync(file, renderScript(name, settings));
        return new Promise<ScriptResult>((resolve, reject) => {
            const child = spawn("bash", [file], {
                env: {
                    PATH: `${kubernetesBinaries(release).dir}:${process.env.PATH}`,
                    HOME: dir,
                    FS_ROOT: root,
                    RETRY_DELAY_SECONDS: "1",
                    POLL_INTERVAL_SECONDS: "1",
                    LC_ALL: "C",
                    ...env,
                },
                stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
            });
            if (input !== undefined) {
                // EPIPE: the script ended before reading all of its stdin, as one that refuses its
                // settings does; its status and output still come (tests/scripts/harness.ts allows the same).
                child.stdin!.on("error", (error: NodeJS.ErrnoException) => error.code === "EPIPE" || reject(error));
                child.stdin!.end(input);
            }
            let stdout = "";
            let stderr = "";
            child.stdout!.on("data", (d) => (stdout += d));
            child.stderr!.on("data", (d) => (stderr += d));
            child.on("error", reject);
            child.on("close", (status) => resolve({ status, stdout, stderr }));
        });
    };

    const upgradeTo = async (next: string) => {
        const to = kubernetesBinaries(next);
        const components: [string, string, string[]][] = [
            ["kube-apiserver", to.apiServer, apiServerArgs],
            ["kube-controller-manager", to.controllerManager, controllerManagerArgs],
            ...(options.nodes ? [["kube-scheduler", to.scheduler, schedulerArgs] as [string, string, string[]]] : []),
        ];
        for (const [name, binary, args] of components) {
            await endProcess(byName.get(name)!);
            startProcess(name, binary, args);
            if (name === "kube-apiserver") {
                release = next;
                await until(`kube-apiserver ${next} /readyz`, apiServerReady, (ready) => ready, 60_000, `${dir}/kube-apiserver.log`);
            }
        }
    };

    return {
        dir, root, adminConf, server, etcdEndpoint: etcdUrl, etcdDataDir, certsLog, kubectl, kubectlOk, get, send, runScript, startProcess, stop, upgradeTo,
        release: () => release,
    };
}
