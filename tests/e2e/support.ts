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
