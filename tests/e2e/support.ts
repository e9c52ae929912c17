/**
 * Pure helpers of the end-to-end test (parsing, judging, reporting), unit-tested in
 * support.test.ts so that the 30-minute cloud run does not discover their bugs.
 */
import * as yaml from "js-yaml";

/** The hostname in http-go's greeting ("Welcome! <hostname>\n"), or undefined for any other body. */
export function parseGreeting(body: string): string | undefined {
    const m = /^Welcome! (\S+)\s*$/.exec(body);
    return m ? m[1] : undefined;
}

export interface NodeStatus {
    name: string;
    ready: boolean;
}

/** Names and Ready condition of the nodes in a Kubernetes NodeList (`GET /api/v1/nodes`). */
export function nodeStatuses(nodeList: unknown): NodeStatus[] {
    const items = (nodeList as { items?: unknown[] } | null)?.items;
    if (!Array.isArray(items)) {
        throw new Error("not a NodeList: no items");
    }
    return items.map((item) => {
        const node = item as { metadata?: { name?: string }; status?: { conditions?: { type?: string; status?: string }[] } };
        const ready = (node.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
        return { name: node.metadata?.name ?? "?", ready };
    });
}

/** What is wrong with the nodes: expected ones missing, any one not Ready. Empty when all is well. */
export function nodeProblems(statuses: NodeStatus[], expected: string[]): string[] {
    const problems: string[] = [];
    if (statuses.length === 0) {
        problems.push("the cluster has no nodes");
    }
    for (const name of expected) {
        if (!statuses.some((s) => s.name === name)) {
            problems.push(`node ${name} is not registered`);
        }
    }
    for (const s of statuses) {
        if (!s.ready) {
            problems.push(`node ${s.name} is not Ready`);
        }
    }
    return problems;
}

/** Resources a stack still holds after destroy, other than the Stack resource itself. */
export function leftoverResources(deployment: unknown): string[] {
    const resources = (deployment as { resources?: { urn?: string; type?: string }[] } | null)?.resources ?? [];
    return resources.filter((r) => r.type !== "pulumi:pulumi:Stack").map((r) => r.urn ?? r.type ?? "?");
}

export interface ClusterCredentials {
    server: string;
    ca?: Buffer;
    cert?: Buffer;
    key?: Buffer;
    token?: string;
}

/** The current context's API server and credentials from a kubeconfig (inline data only, as kubeadm writes it). */
export function kubeconfigCredentials(text: string): ClusterCredentials {
    const doc = yaml.load(text) as any;
    const contextName: string | undefined = doc?.["current-context"] ?? doc?.contexts?.[0]?.name;
    const context = (doc?.contexts ?? []).find((c: any) => c.name === contextName)?.context;
    if (!context) {
        throw new Error("kubeconfig has no current context");
    }
    const cluster = (doc.clusters ?? []).find((c: any) => c.name === context.cluster)?.cluster;
    const user = (doc.users ?? []).find((u: any) => u.name === context.user)?.user ?? {};
    if (!cluster?.server) {
        throw new Error(`kubeconfig has no server for cluster ${context.cluster}`);
    }
    const b64 = (v: unknown) => (typeof v === "string" ? Buffer.from(v, "base64") : undefined);
    return {
        server: String(cluster.server).replace(/\/+$/, ""),
        ca: b64(cluster["certificate-authority-data"]),
        cert: b64(user["client-certificate-data"]),
        key: b64(user["client-key-data"]),
        token: typeof user.token === "string" ? user.token : undefined,
    };
}

export interface Phase {
    name: string;
    seconds?: number;
    note?: string;
}

/** The phase timings as a small fixed-width table; a phase that did not complete shows "-". */
export function formatTimings(title: string, phases: Phase[]): string {
    const width = Math.max(5, ...phases.map((p) => p.name.length));
    const lines = [title, `${"phase".padEnd(width)}  ${"seconds".padStart(8)}`, `${"-".repeat(width)}  ${"-".repeat(8)}`];
    for (const p of phases) {
        const secs = p.seconds === undefined ? "-" : p.seconds.toFixed(1);
        lines.push(`${p.name.padEnd(width)}  ${secs.padStart(8)}${p.note ? `  ${p.note}` : ""}`);
    }
    return lines.join("\n");
}

export interface PollOptions {
    /** Give up after this long (ms). */
    timeoutMs: number;
    /** Pause between attempts (ms). */
    intervalMs: number;
    now?: () => number;
    sleep?: (ms: number) => Promise<void>;
}

/**
 * Calls `attempt` until it returns a value other than undefined, or the time is up; then throws
 * with the last thing `describe` says about the failed attempts.
 */
export async function pollUntil<T>(what: string, attempt: () => Promise<T | undefined>, o: PollOptions, lastProblem: () => string): Promise<T> {
    const now = o.now ?? Date.now;
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const deadline = now() + o.timeoutMs;
    for (;;) {
        const value = await attempt();
        if (value !== undefined) {
            return value;
        }
        if (now() >= deadline) {
            throw new Error(`${what}: gave up after ${Math.round(o.timeoutMs / 1000)} s; last: ${lastProblem()}`);
        }
        await sleep(o.intervalMs);
    }
}

/** Each node's kubelet version (`status.nodeInfo.kubeletVersion`) in a NodeList, by node name. */
export function nodeKubeletVersions(nodeList: unknown): Record<string, string> {
    const items = (nodeList as { items?: unknown[] } | null)?.items;
    if (!Array.isArray(items)) {
        throw new Error("not a NodeList: no items");
    }
    return Object.fromEntries(
        items.map((item) => {
            const node = item as { metadata?: { name?: string }; status?: { nodeInfo?: { kubeletVersion?: string } } };
            return [node.metadata?.name ?? "?", node.status?.nodeInfo?.kubeletVersion ?? ""];
        }),
    );
}

/**
 * What keeps the cluster from being upgraded to `minor` (e.g. "1.36"): an expected node missing, a
 * node on another minor, or nodes on different patches (workers install the control plane's exact
 * patch). Empty when every node runs the same v<minor>.<patch>.
 */
export function kubeletVersionProblems(versions: Record<string, string>, expected: string[], minor: string): string[] {
    const problems: string[] = [];
    const names = Object.keys(versions);
    if (names.length === 0) {
        problems.push("the cluster has no nodes");
    }
    for (const name of expected) {
        if (!(name in versions)) {
            problems.push(`node ${name} is not registered`);
        }
    }
    const ofMinor = new RegExp(`^v${minor.replace(/\./g, "\\.")}\\.\\d+$`);
    for (const [name, version] of Object.entries(versions)) {
        if (!ofMinor.test(version)) {
            problems.push(`node ${name} runs kubelet ${version || "<none reported>"}, not v${minor}.x`);
        }
    }
    const distinct = [...new Set(Object.values(versions))];
    if (problems.length === 0 && distinct.length > 1) {
        problems.push(`the nodes run different patches: ${names.map((n) => `${n}=${versions[n]}`).join(", ")}`);
    }
    return problems;
}

/** One request of the background HTTP check: a 200 with a greeting is ok, anything else says what it was. */
export interface CheckOutcome {
    ok: boolean;
    detail?: string;
}

export interface CheckFailure {
    /** Seconds since the check started. */
    atSeconds: number;
    detail: string;
}

/**
 * Bookkeeping of the background HTTP check: how many requests, how many failed, the first `keep`
 * failures with when and what (so an outage of many minutes does not grow the log without bound),
 * and the longest run of failures in a row (how long an outage lasted, in requests).
 */
export class CheckLog {
    requests = 0;
    failed = 0;
    longestFailureRun = 0;
    readonly failures: CheckFailure[] = [];
    private run = 0;

    constructor(
        private readonly startedAtMs: number,
        private readonly keep = 20,
    ) {}

    record(atMs: number, outcome: CheckOutcome): void {
        this.requests++;
        if (outcome.ok) {
            this.run = 0;
            return;
        }
        this.failed++;
        this.run++;
        this.longestFailureRun = Math.max(this.longestFailureRun, this.run);
        if (this.failures.length < this.keep) {
            this.failures.push({ atSeconds: (atMs - this.startedAtMs) / 1000, detail: outcome.detail ?? "failed" });
        }
    }

    summary(): string {
        if (this.failed === 0) {
            return `${this.requests} requests, none failed`;
        }
        const shown = this.failures.map((f) => `at ${f.atSeconds.toFixed(1)} s: ${f.detail}`).join("; ");
        const more = this.failed > this.failures.length ? ` (and ${this.failed - this.failures.length} more)` : "";
        return `${this.requests} requests, ${this.failed} failed, at most ${this.longestFailureRun} in a row; ${shown}${more}`;
    }
}

export interface BackgroundCheck {
    log: CheckLog;
    /** Ends the check after the request in flight, if any; resolves with the log. */
    stop(): Promise<CheckLog>;
}

/**
 * Runs `check` in the background until stop(): one request at a time, each starting `intervalMs`
 * after the one before (a slow answer delays the next rather than overlapping it), so the load on
 * the app stays bounded whatever happens to it. A `check` that throws counts as a failure.
 */
export function startBackgroundCheck(
    check: () => Promise<CheckOutcome>,
    o: { intervalMs: number; now?: () => number; sleep?: (ms: number) => Promise<void> },
): BackgroundCheck {
    const now = o.now ?? Date.now;
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const log = new CheckLog(now());
    let stopping = false;
    const loop = (async () => {
        while (!stopping) {
            const started = now();
            let outcome: CheckOutcome;
            try {
                outcome = await check();
            } catch (e) {
                outcome = { ok: false, detail: e instanceof Error ? e.message : String(e) };
            }
            log.record(started, outcome);
            const wait = started + o.intervalMs - now();
            if (!stopping && wait > 0) {
                await sleep(wait);
            }
        }
    })();
    return {
        log,
        stop: async () => {
            stopping = true;
            await loop;
            return log;
        },
    };
}

/** The part of an Automation API engine event that says what a preview does to one resource. */
export interface PreviewStepEvent {
    resourcePreEvent?: { metadata: { op: string; urn: string; type: string } };
}

/** Every step of a preview that changes something, as "<op> <resource name>" (the URN's last part). */
export function changedPreviewSteps(events: PreviewStepEvent[]): string[] {
    return events
        .map((e) => e.resourcePreEvent?.metadata)
        .filter((m): m is { op: string; urn: string; type: string } => m !== undefined && !unchangedOps.has(m.op) && m.type !== "pulumi:pulumi:Stack")
        .map((m) => `${m.op} ${m.urn.split("::").pop()}`)
        .sort();
}

/** Steps that change nothing: what a preview lists for a resource it leaves alone. */
const unchangedOps = new Set(["same", "read", "refresh", "read-discard"]);

/**
 * What a preview would do inside the cluster: every step on a Kubernetes object, a chart or a
 * chart's child (all of type `kubernetes:*`) other than leaving it alone, as "<op> <urn>".
 * Empty when the preview touches nothing in the cluster.
 */
export function inClusterPreviewSteps(events: PreviewStepEvent[]): string[] {
    return events
        .map((e) => e.resourcePreEvent?.metadata)
        .filter((m): m is { op: string; urn: string; type: string } => m !== undefined && m.type.startsWith("kubernetes:") && !unchangedOps.has(m.op))
        .map((m) => `${m.op} ${m.urn}`);
}
