/**
 * End to end, on real GCP: `pulumi up` of a throwaway stack of this program, then the app must
 * answer on the `url` output from more than one pod, every node must be Ready, the real engine's
 * previews of a scale-out and of a worker's replacement must list nothing in the cluster; then a
 * ConfigMap made outside the stack and an etcd snapshot, the control plane's replacement (its
 * preview lists nothing in the cluster; the new VM restores the snapshot: same cluster UID, the
 * ConfigMap back, the url answering, docs/backups.md), and `pulumi destroy` must leave nothing behind. Prints how long each phase took; the headline is the time
 * from the start of `up` to the first HTTP 200 ("time to a serving URL").
 *
 * Run it (about 40-55 minutes, creates billable VMs, deletes them at the end):
 *
 *     E2E_GCP_PROJECT=my-project npx jest tests/e2e
 *
 * Optional: E2E_GCP_REGION (us-central1), E2E_GCP_ZONE (<region>-a), PULUMI_BACKEND_URL (default:
 * a file:// backend in a temporary directory), PULUMI_CONFIG_PASSPHRASE (default: a random one,
 * the stack lives for this run only). Needs the Pulumi CLI and GCP credentials (e.g. `gcloud auth
 * application-default login`; the CLI 3.226 or newer); without them, or without E2E_GCP_PROJECT, it
 * skips and says why.
 * If the run is interrupted, list leftovers with `gcloud compute instances list --filter=name~k8s-e2e-`.
 *
 * Stop/start phase (needs gcloud on PATH, else it skips and says so): worker-1 is stopped with
 * `gcloud compute instances stop`, as a schedule or a Spot preemption would; `pulumi up` must refuse in
 * one line naming the start command; once started again the node must be Ready and the url answer
 * with nothing run over SSH, and a preview must list nothing but that worker's `ready` step.
 *
 * Upgrade phase: with E2E_UPGRADE_FROM=1.35 (the supported minor one below the default; anything
 * else fails the run before it creates anything) the cluster is created at that minor, then
 * `kubernetesVersion` is set to the default and `pulumi up` runs again while a background check
 * asks the url every 500 ms; every node must then run the default minor, and not one request may
 * have failed (docs/upgrading.md, "The e2e upgrade phase"). Adds about 15-20 minutes.
 */
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import type { Stack } from "@pulumi/pulumi/automation";
import { versions } from "../../components/versions";
import { decideE2e, E2eSettings, probeMachine } from "./preconditions";
import {
    changedPreviewSteps,
    ClusterCredentials,
    CheckOutcome,
    formatTimings,
    inClusterPreviewSteps,
    kubeconfigCredentials,
    PreviewStepEvent,
    kubeletVersionProblems,
    leftoverResources,
    nodeKubeletVersions,
    nodeProblems,
    nodeStatuses,
    NodeStatus,
    parseGreeting,
    Phase,
    pollUntil,
    startBackgroundCheck,
} from "./support";

const repoRoot = path.resolve(__dirname, "..", "..");
const policyPackDir = path.join(repoRoot, "policy");
const minute = 60_000;

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "kubeadm-gcp-e2e-"));
const decision = (() => {
    try {
        return decideE2e(probeMachine(), tmpDir, crypto.randomBytes(3).toString("hex"));
    } catch (e) {
        // A bad setting (E2E_UPGRADE_FROM) fails the suite before anything is created.
        fs.rmSync(tmpDir, { recursive: true, force: true });
        throw e;
    }
})();
if (!decision.run) {
    // Straight to stderr: jest drops console output of a suite whose tests are all skipped.
    process.stderr.write(`\ne2e skipped: ${decision.reason}\n`);
    fs.rmSync(tmpDir, { recursive: true, force: true });
}
const describeE2e = decision.run ? describe : describe.skip;
/** gcloud, which stops and starts a worker in the stop/start phase; that phase skips without it. */
const gcloud = decision.run && spawnSync("gcloud", ["version"], { encoding: "utf8", timeout: 60_000 }).status === 0;
if (decision.run && !gcloud) {
    process.stderr.write("\ne2e: the worker stop/start phase is skipped: no gcloud on PATH\n");
}
/** The upgrade phase's starting minor (E2E_UPGRADE_FROM), read at collection time: undefined when skipped or unset. */
const upgradeFrom = decision.run ? decision.settings.upgradeFrom : undefined;

describeE2e("e2e: one `pulumi up` to a serving URL, then a clean destroy", () => {
    const settings = (decision as { settings: E2eSettings }).settings;
    const phases: Record<string, Phase> = {
        up: { name: "pulumi up" },
        firstOk: { name: "first HTTP 200, from start of up", note: "<- time to a serving URL" },
        pods: { name: "greetings from 2+ pods" },
        nodes: { name: "nodes Ready check" },
        restore: { name: "pulumi up --replace <control plane>: restored from its snapshot" },
        restart: { name: "worker stop/start: start to HTTP 200 and Ready" },
        ...(upgradeFrom === undefined
            ? {}
            : {
                  upgrade: { name: `pulumi up: upgrade ${upgradeFrom} -> ${versions.kubernetesMinor}` },
                  upgradedNodes: { name: `nodes at ${versions.kubernetesMinor} check` },
              }),
        destroy: { name: "pulumi destroy" },
    };
    let stack: Stack | undefined;
    let upStartedAt = 0;
    let outputs: Record<string, unknown> = {};
    let destroyed = false;
    let removed = false;

    const log = (msg: string) => process.stdout.write(`[e2e ${settings.stackName}] ${msg}\n`);
    const stream = (out: string) => process.stdout.write(out);

    beforeAll(async () => {
        log(
            `project ${settings.project}, ${settings.zone}; backend ${settings.backendUrl}; credentials: ${settings.credentials}; ` +
                `pulumi ${settings.pulumiVersion}${settings.generatedPassphrase ? "; generated passphrase" : ""}`,
        );
        // Loaded here, not at the top: a skipped run (every `npm test` without credentials) does not pay for it.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { LocalWorkspace } = require("@pulumi/pulumi/automation") as typeof import("@pulumi/pulumi/automation");
        stack = await LocalWorkspace.createOrSelectStack(
            { stackName: settings.stackName, workDir: repoRoot },
            { envVars: settings.pulumiEnv },
        );
        await stack.setAllConfig({
            "gcp:project": { value: settings.project },
            "gcp:region": { value: settings.region },
            "gcp:zone": { value: settings.zone },
            ...(upgradeFrom === undefined ? {} : { kubernetesVersion: { value: upgradeFrom } }),
        });
    }, 5 * minute);

    afterAll(async () => {
        // Whatever failed above, never leave billable VMs or a stack behind.
        if (stack && !destroyed) {
            log("cleaning up after a failure: pulumi destroy");
            await stack
                .destroy({ onOutput: stream, color: "never" })
                .then(() => (destroyed = true))
                .catch((e) => log(`destroy failed: ${String(e)}`));
        }
        if (stack && destroyed && !removed) {
            await stack.workspace
                .removeStack(settings.stackName)
                .then(() => (removed = true))
                .catch((e) => log(`stack rm failed: ${String(e)}`));
        }
        if (!stack || removed) {
            fs.rmSync(path.join(repoRoot, `Pulumi.${settings.stackName}.yaml`), { force: true });
            fs.rmSync(tmpDir, { recursive: true, force: true });
        } else {
            // Resources may be left: keep what a human needs to destroy them.
            log(
                `LEFT BEHIND: stack ${settings.stackName} in ${settings.backendUrl} (config Pulumi.${settings.stackName}.yaml). ` +
                    `Clean up: PULUMI_BACKEND_URL=${settings.backendUrl}` +
                    (settings.generatedPassphrase ? ` PULUMI_CONFIG_PASSPHRASE=${settings.pulumiEnv.PULUMI_CONFIG_PASSPHRASE}` : "") +
                    ` pulumi destroy --stack ${settings.stackName} && pulumi stack rm ${settings.stackName}`,
            );
        }
        console.log(formatTimings(`e2e timings, stack ${settings.stackName} (${settings.zone})`, Object.values(phases)));
    }, 30 * minute);

    const policyPacks = fs.existsSync(path.join(policyPackDir, "node_modules", "@pulumi", "policy")) ? [policyPackDir] : [];

    test("pulumi up creates the cluster and exports url and kubeconfig", async () => {
        log(policyPacks.length > 0 ? "with the policy pack" : "without the policy pack (run `npm ci --prefix policy` to include it)");
        // The headline clock starts here. Stack outputs (the url) are known only once `up` returns,
        // so the first 200 is looked for right after it; the headline includes the whole `up`.
        upStartedAt = Date.now();
        const result = await stack!.up({ onOutput: stream, color: "never", policyPacks });
        phases.up.seconds = (Date.now() - upStartedAt) / 1000;
        outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
        expect(typeof outputs.url).toBe("string");
        expect(typeof outputs.kubeconfig).toBe("string");
    }, 45 * minute);

    test("the url answers 200 with http-go's greeting", async () => {
        const url = String(outputs.url);
        let last = "no response yet";
        await pollUntil(
            `GET ${url}`,
            async () => {
                const r = await httpGet(url).catch((e: Error) => ({ status: 0, body: e.message }));
                last = `${r.status} ${r.body.slice(0, 120)}`;
                return r.status === 200 ? r : undefined;
            },
            { timeoutMs: 10 * minute, intervalMs: 5000 },
            () => last,
        );
        phases.firstOk.seconds = (Date.now() - upStartedAt) / 1000;
        const r = await httpGet(url);
        expect(r.status).toBe(200);
        expect(parseGreeting(r.body)).toBeDefined();
    }, 12 * minute);

    test("more than one pod answers behind the load balancer", async () => {
        const url = String(outputs.url);
        const started = Date.now();
        const hosts = new Set<string>();
        let requests = 0;
        await pollUntil(
            "greetings from more than one pod",
            async () => {
                requests++;
                // A new TCP connection per request: the load balancer and kube-proxy pick per connection.
                const r = await httpGet(url).catch(() => undefined);
                const host = r && r.status === 200 ? parseGreeting(r.body) : undefined;
                if (host) {
                    hosts.add(host);
                }
                return hosts.size > 1 ? hosts : undefined;
            },
            { timeoutMs: 5 * minute, intervalMs: 200 },
            () => `${requests} requests, pods seen: ${[...hosts].join(", ") || "none"}`,
        );
        phases.pods.seconds = (Date.now() - started) / 1000;
        phases.pods.note = `${hosts.size} pods in ${requests} requests`;
        log(`pods answering: ${[...hosts].join(", ")}`);
        expect(hosts.size).toBeGreaterThan(1);
    }, 6 * minute);

    test("every node is Ready (through the kubeconfig output)", async () => {
        const started = Date.now();
        const creds = kubeconfigCredentials(String(outputs.kubeconfig));
        const expected = Array.isArray(outputs.nodeNames) ? (outputs.nodeNames as string[]) : [];
        let statuses: NodeStatus[] = [];
        let problems: string[] = ["not asked yet"];
        await pollUntil(
            "all nodes Ready",
            async () => {
                try {
                    statuses = nodeStatuses(await kubeGet(creds, "/api/v1/nodes"));
                    problems = nodeProblems(statuses, expected);
                } catch (e) {
                    problems = [String(e)];
                }
                return problems.length === 0 ? statuses : undefined;
            },
            { timeoutMs: 5 * minute, intervalMs: 5000 },
            () => problems.join("; "),
        );
        phases.nodes.seconds = (Date.now() - started) / 1000;
        phases.nodes.note = `${statuses.length} nodes`;
        log(`nodes: ${statuses.map((s) => `${s.name}=${s.ready ? "Ready" : "NotReady"}`).join(", ")}`);
        expect(statuses.length).toBeGreaterThanOrEqual(Math.max(2, expected.length));
    }, 6 * minute);

    test("previews of a scale-out and of a worker's replacement list nothing in the cluster (docs/lifecycle.md)", async () => {
        // The real engine decides here what the model in tests/helpers/program.ts claims: the
        // provider's inputs stay known, so no object or chart child shows up in either preview.
        const steps = async (opts: { replace?: string[] }) => {
            const events: PreviewStepEvent[] = [];
            await stack!.preview({ ...opts, color: "never", onEvent: (e) => events.push(e as PreviewStepEvent) });
            return inClusterPreviewSteps(events);
        };
        const workers = await stack!.getConfig("workerCount").catch(() => undefined);
        await stack!.setConfig("workerCount", { value: String(Number(workers?.value ?? "2") + 1) });
        try {
            expect(await steps({})).toEqual([]);
        } finally {
            if (workers) {
                await stack!.setConfig("workerCount", workers);
            } else {
                await stack!.removeConfig("workerCount");
            }
        }
        const state = (await stack!.exportStack()).deployment as { resources?: { urn: string; type: string }[] };
        const worker = (state.resources ?? []).find((r) => r.type === "gcp:compute/instance:Instance" && /-worker-1$/.test(r.urn));
        expect(worker).toBeDefined();
        expect(await steps({ replace: [worker!.urn] })).toEqual([]);
    }, 10 * minute);

    test("control plane replaced: the preview lists nothing in the cluster, and its snapshot brings the same cluster back (docs/backups.md)", async () => {
        if (typeof outputs.url !== "string") {
            throw new Error("the first `pulumi up` did not finish; no cluster to restore");
        }
        const creds = kubeconfigCredentials(String(outputs.kubeconfig));
        const marker = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "e2e-restore-marker" }, data: { writtenBy: "e2e, outside the stack" } };
        await kubeRequest(creds, "POST", "/api/v1/namespaces/default/configmaps", marker);
        // A snapshot now, with the program the schedule runs (its first timed run is minutes away).
        const snapshot = onControlPlane(outputs, "sudo /usr/local/sbin/kubeadm-gcp-etcd-backup snapshot e2e");
        log(`snapshot: ${snapshot}`);
        const state = (await stack!.exportStack()).deployment as { resources?: { urn: string; type: string }[] };
        const cp = (state.resources ?? []).find((r) => r.type === "gcp:compute/instance:Instance" && /-control-plane$/.test(r.urn));
        expect(cp).toBeDefined();
        const events: PreviewStepEvent[] = [];
        await stack!.preview({ replace: [cp!.urn], color: "never", onEvent: (e) => events.push(e as PreviewStepEvent) });
        expect(inClusterPreviewSteps(events)).toEqual([]);

        const started = Date.now();
        const uidBefore = outputs.clusterUid;
        try {
            const result = await stack!.up({ replace: [cp!.urn], onOutput: stream, color: "never", policyPacks });
            outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
        } finally {
            phases.restore.seconds = (Date.now() - started) / 1000;
        }
        expect(outputs.clusterUid).toBe(uidBefore);
        const after = kubeconfigCredentials(String(outputs.kubeconfig));
        const back = (await kubeGet(after, "/api/v1/namespaces/default/configmaps/e2e-restore-marker")) as { data?: Record<string, string> };
        expect(back.data).toEqual(marker.data);
        const ok = await pollUntil(
            "the url answering after the restore",
            async () => ((await httpGet(String(outputs.url)).catch(() => ({ status: 0, body: "" }))).status === 200 ? true : undefined),
            { timeoutMs: 5 * minute, intervalMs: 5000 },
            () => "no HTTP 200 yet",
        );
        expect(ok).toBe(true);
        phases.restore.note = `marker ConfigMap back, cluster UID ${String(uidBefore)} kept`;
    }, 45 * minute);
    (gcloud ? test : test.skip)(
        "a worker stopped and started again: `pulumi up` refuses while it is stopped, the cluster serves again by itself, and a preview after lists only its ready step",
        async () => {
            // docs/lifecycle.md rows "`pulumi up` while VMs are stopped", "Spot VM preempted, and back"
            // (a scheduled stop or a preemption stops the VM the same way) and "`pulumi up` after they are back".
            const url = String(outputs.url);
            const worker = String((outputs.workers as { name: string }[] | undefined)?.[0]?.name ?? "");
            expect(worker).toMatch(/-worker-1$/);
            const instances = (verb: "stop" | "start") => {
                const r = spawnSync("gcloud", ["compute", "instances", verb, worker, `--zone=${settings.zone}`, `--project=${settings.project}`, "--quiet"], {
                    encoding: "utf8",
                    timeout: 10 * minute,
                });
                if (r.status !== 0) {
                    throw new Error(`gcloud compute instances ${verb} ${worker} failed: ${r.stderr || r.error}`);
                }
            };
            log(`stopping ${worker}`);
            instances("stop");
            let refused = "";
            try {
                await stack!.up({ color: "never" });
            } catch (e) {
                refused = String(e);
            } finally {
                log(`starting ${worker}`);
                instances("start");
            }
            expect(refused).toMatch(new RegExp(`${worker} \\(TERMINATED\\): stopped, so Pulumi cannot reach it over SSH. Start it with \`gcloud compute instances start ${worker} --zone ${settings.zone}\``));

            const started = Date.now();
            const creds = kubeconfigCredentials(String(outputs.kubeconfig));
            const expected = Array.isArray(outputs.nodeNames) ? (outputs.nodeNames as string[]) : [];
            let problems: string[] = ["not asked yet"];
            await pollUntil(
                `${worker} Ready again and ${url} answering`,
                async () => {
                    try {
                        problems = nodeProblems(nodeStatuses(await kubeGet(creds, "/api/v1/nodes")), expected);
                        const r = await httpGet(url);
                        if (r.status !== 200) {
                            problems.push(`GET ${url}: HTTP ${r.status}`);
                        }
                    } catch (e) {
                        problems = [String(e)];
                    }
                    return problems.length === 0 ? true : undefined;
                },
                { timeoutMs: 10 * minute, intervalMs: 5000 },
                () => problems.join("; "),
            );
            phases.restart.seconds = (Date.now() - started) / 1000;

            const events: PreviewStepEvent[] = [];
            await stack!.preview({ color: "never", onEvent: (e) => events.push(e as PreviewStepEvent) });
            const changed = changedPreviewSteps(events);
            log(`preview after the restart: ${changed.join(", ") || "no changes"}`);
            // The worker came back with a new ephemeral external IP, which only its ready step dials.
            expect(changed.filter((s) => !/^update .*-nodes-worker-1-ready$/.test(s))).toEqual([]);
        },
        30 * minute,
    );

    (upgradeFrom === undefined ? test.skip : test)(
        "upgrade phase: `pulumi up` to the default minor keeps the app serving and leaves every node on it",
        async () => {
            if (typeof outputs.url !== "string") {
                throw new Error("the first `pulumi up` did not finish; no cluster to upgrade");
            }
            const url = outputs.url;
            const to = versions.kubernetesMinor;
            await stack!.setConfig("kubernetesVersion", { value: to });
            log(`upgrading ${upgradeFrom} -> ${to}; checking ${url} every 500 ms meanwhile`);
            const check = startBackgroundCheck(
                async (): Promise<CheckOutcome> => {
                    const r = await httpGet(url, 5000);
                    return r.status === 200 && parseGreeting(r.body) !== undefined ? { ok: true } : { ok: false, detail: `HTTP ${r.status} ${r.body.slice(0, 80)}` };
                },
                { intervalMs: 500 },
            );
            const started = Date.now();
            let upgradeOutputs: Record<string, unknown>;
            try {
                const result = await stack!.up({ onOutput: stream, color: "never", policyPacks });
                upgradeOutputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
            } finally {
                phases.upgrade.seconds = (Date.now() - started) / 1000;
                const checked = await check.stop();
                phases.upgrade.note = `HTTP check: ${checked.summary()}`;
                log(`HTTP check during the upgrade: ${checked.summary()}`);
            }
            outputs = upgradeOutputs;

            // Through the kubeconfig output of this `up` (the upgrade renews the certificates in it).
            const nodesStarted = Date.now();
            const creds = kubeconfigCredentials(String(outputs.kubeconfig));
            const expected = Array.isArray(outputs.nodeNames) ? (outputs.nodeNames as string[]) : [];
            let kubelets: Record<string, string> = {};
            let problems: string[] = ["not asked yet"];
            await pollUntil(
                `every node on ${to}`,
                async () => {
                    try {
                        kubelets = nodeKubeletVersions(await kubeGet(creds, "/api/v1/nodes"));
                        problems = kubeletVersionProblems(kubelets, expected, to);
                    } catch (e) {
                        problems = [String(e)];
                    }
                    return problems.length === 0 ? kubelets : undefined;
                },
                { timeoutMs: 2 * minute, intervalMs: 5000 },
                () => problems.join("; "),
            );
            phases.upgradedNodes.seconds = (Date.now() - nodesStarted) / 1000;
            phases.upgradedNodes.note = Object.entries(kubelets).map(([n, v]) => `${n}=${v}`).join(", ");
            log(`kubelets after the upgrade: ${phases.upgradedNodes.note}`);
            expect(kubeletVersionProblems(kubelets, expected, to)).toEqual([]);
            expect(check.log.failures).toEqual([]);
            expect(check.log.failed).toBe(0);
            expect(check.log.requests).toBeGreaterThan(0);
        },
        50 * minute,
    );

    test("pulumi destroy leaves no resource, and the stack is removed", async () => {
        const started = Date.now();
        await stack!.destroy({ onOutput: stream, color: "never" });
        destroyed = true;
        phases.destroy.seconds = (Date.now() - started) / 1000;
        const state = await stack!.exportStack();
        expect(leftoverResources(state.deployment)).toEqual([]);
        await stack!.workspace.removeStack(settings.stackName);
        removed = true;
        expect((await stack!.workspace.listStacks()).map((s) => s.name)).not.toContain(settings.stackName);
    }, 30 * minute);

});

interface HttpResult {
    status: number;
    body: string;
}

/** One GET on a fresh connection (no keep-alive), with a timeout (10 s unless given). */
function httpGet(url: string, timeoutMs = 10_000): Promise<HttpResult> {
    const client = url.startsWith("https:") ? https : http;
    return new Promise((resolve, reject) => {
        const req = client.get(url, { agent: false, timeout: timeoutMs }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs / 1000} s`)));
        req.on("error", reject);
    });
}

/**
 * Runs a command on the control plane over SSH with the stack's key (the `sshPrivateKey` output) and
 * returns its stdout. The VM was created by this test moments ago, so its host key is taken as it is.
 */
function onControlPlane(outputs: Record<string, unknown>, command: string): string {
    // Required here, not imported: the components load the SDKs, which a skipped run need not pay for.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { sshUser } = require("../../components/nodes") as typeof import("../../components/nodes");
    const keyFile = path.join(tmpDir, "ssh-key");
    fs.writeFileSync(keyFile, String(outputs.sshPrivateKey), { mode: 0o600 });
    const host = (outputs.controlPlane as { externalIp?: string } | undefined)?.externalIp;
    const r = spawnSync(
        "ssh",
        ["-i", keyFile, "-o", "StrictHostKeyChecking=no", "-o", `UserKnownHostsFile=${path.join(tmpDir, "known_hosts")}`, "-o", "BatchMode=yes", `${sshUser}@${host}`, command],
        { encoding: "utf8", timeout: 5 * minute },
    );
    if (r.status !== 0) {
        throw new Error(`ssh ${host} ${command}: exit ${r.status ?? r.signal}: ${r.stderr}`);
    }
    return r.stdout.trim();
}

/** GET on the API server with the kubeconfig's client certificate (or token); parsed JSON. */
function kubeGet(creds: ClusterCredentials, apiPath: string): Promise<unknown> {
    return kubeRequest(creds, "GET", apiPath);
}

/** A request to the API server as the kubeconfig's user; parsed JSON of a 2xx answer. */
function kubeRequest(creds: ClusterCredentials, method: string, apiPath: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
        const req = https.request(
            `${creds.server}${apiPath}`,
            {
                method,
                ca: creds.ca,
                cert: creds.cert,
                key: creds.key,
                headers: {
                    ...(creds.token ? { authorization: `Bearer ${creds.token}` } : {}),
                    ...(payload ? { "content-type": "application/json" } : {}),
                },
                agent: false,
                timeout: 15_000,
            },
            (res) => {
                let text = "";
                res.setEncoding("utf8");
                res.on("data", (chunk: string) => (text += chunk));
                res.on("end", () => {
                    const status = res.statusCode ?? 0;
                    if (status < 200 || status >= 300) {
                        reject(new Error(`${method} ${apiPath}: HTTP ${status} ${text.slice(0, 200)}`));
                        return;
                    }
                    try {
                        resolve(JSON.parse(text));
                    } catch (e) {
                        reject(e);
                    }
                });
            },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${apiPath} timed out`)));
        req.on("error", reject);
        req.end(payload);
    });
}
