/**
 * The e2e test's parsing and judging, checked here so that a cloud run does not find their bugs.
 */
import {
    BackgroundCheck, CheckLog, CheckOutcome, changedPreviewSteps, formatTimings, inClusterPreviewSteps, kubeconfigCredentials, kubeletVersionProblems, leftoverResources,
    nodeKubeletVersions, nodeProblems, nodeStatuses, parseGreeting, pollUntil, startBackgroundCheck,
} from "./support";

test("parseGreeting reads http-go's greeting and nothing else", () => {
    expect(parseGreeting("Welcome! http-go-7c9d8-abcde\n")).toBe("http-go-7c9d8-abcde");
    expect(parseGreeting("Welcome! \n")).toBeUndefined();
    expect(parseGreeting("<html>502 Bad Gateway</html>")).toBeUndefined();
});

test("nodeStatuses and nodeProblems judge a NodeList", () => {
    const list = {
        items: [
            { metadata: { name: "cp" }, status: { conditions: [{ type: "MemoryPressure", status: "False" }, { type: "Ready", status: "True" }] } },
            { metadata: { name: "w1" }, status: { conditions: [{ type: "Ready", status: "False" }] } },
        ],
    };
    const statuses = nodeStatuses(list);
    expect(statuses).toEqual([
        { name: "cp", ready: true },
        { name: "w1", ready: false },
    ]);
    expect(nodeProblems(statuses, ["cp", "w1", "w2"])).toEqual(["node w2 is not registered", "node w1 is not Ready"]);
    expect(nodeProblems([{ name: "cp", ready: true }], ["cp"])).toEqual([]);
    expect(nodeProblems([], [])).toEqual(["the cluster has no nodes"]);
    expect(() => nodeStatuses({ kind: "Status" })).toThrow("not a NodeList");
});

test("leftoverResources ignores only the Stack resource", () => {
    expect(leftoverResources({ resources: [{ urn: "urn:pulumi:e2e::kubeadm-gcp::pulumi:pulumi:Stack::kubeadm-gcp-e2e", type: "pulumi:pulumi:Stack" }] })).toEqual([]);
    expect(leftoverResources({})).toEqual([]);
    expect(leftoverResources({ resources: [{ urn: "urn:x::gcp:compute/instance:Instance::cp", type: "gcp:compute/instance:Instance" }] })).toEqual([
        "urn:x::gcp:compute/instance:Instance::cp",
    ]);
});

test("kubeconfigCredentials reads the current context's server and inline credentials", () => {
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const kubeconfig = `
apiVersion: v1
kind: Config
current-context: kubernetes-admin@k8s-e2e
clusters:
- name: other
  cluster: { server: "https://10.0.0.1:6443" }
- name: k8s-e2e
  cluster:
    server: https://203.0.113.10:6443/
    certificate-authority-data: ${b64("CA")}
contexts:
- name: kubernetes-admin@k8s-e2e
  context: { cluster: k8s-e2e, user: kubernetes-admin }
users:
- name: kubernetes-admin
  user:
    client-certificate-data: ${b64("CERT")}
    client-key-data: ${b64("KEY")}
`;
    const c = kubeconfigCredentials(kubeconfig);
    expect(c.server).toBe("https://203.0.113.10:6443");
    expect([c.ca?.toString(), c.cert?.toString(), c.key?.toString(), c.token]).toEqual(["CA", "CERT", "KEY", undefined]);
    expect(() => kubeconfigCredentials("apiVersion: v1\nkind: Config\n")).toThrow("no current context");
});

test("formatTimings prints one aligned row per phase, '-' for a phase that did not finish", () => {
    expect(formatTimings("e2e timings", [{ name: "pulumi up", seconds: 812.34 }, { name: "first 200", seconds: 845, note: "<- headline" }, { name: "destroy" }])).toBe(
        ["e2e timings", "phase       seconds", "---------  --------", "pulumi up     812.3", "first 200     845.0  <- headline", "destroy           -"].join("\n"),
    );
});

test("pollUntil returns the first value, and gives up at the deadline with the last problem", async () => {
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => void (t += ms) };
    let calls = 0;
    await expect(pollUntil("thing", async () => (++calls === 3 ? "ok" : undefined), { timeoutMs: 10_000, intervalMs: 1000, ...clock }, () => "x")).resolves.toBe("ok");
    expect(calls).toBe(3);
    t = 0;
    await expect(pollUntil("thing", async () => undefined, { timeoutMs: 5000, intervalMs: 1000, ...clock }, () => "HTTP 502")).rejects.toThrow(
        "thing: gave up after 5 s; last: HTTP 502",
    );
    expect(t).toBe(5000);
});

describe("the upgrade phase's node check", () => {
    const list = (versions: Record<string, string | undefined>) => ({
        items: Object.entries(versions).map(([name, v]) => ({ metadata: { name }, status: v === undefined ? {} : { nodeInfo: { kubeletVersion: v } } })),
    });

    test("nodeKubeletVersions reads status.nodeInfo.kubeletVersion per node", () => {
        expect(nodeKubeletVersions(list({ cp: "v1.36.3", w1: "v1.36.3", w2: undefined }))).toEqual({ cp: "v1.36.3", w1: "v1.36.3", w2: "" });
        expect(() => nodeKubeletVersions({ kind: "Status" })).toThrow("not a NodeList");
    });

    test("kubeletVersionProblems: every expected node on the same patch of the new minor, or what is wrong", () => {
        const all = ["cp", "w1", "w2"];
        expect(kubeletVersionProblems({ cp: "v1.36.3", w1: "v1.36.3", w2: "v1.36.3" }, all, "1.36")).toEqual([]);
        expect(kubeletVersionProblems({ cp: "v1.36.3", w1: "v1.35.9", w2: "" }, all, "1.36")).toEqual([
            "node w1 runs kubelet v1.35.9, not v1.36.x",
            "node w2 runs kubelet <none reported>, not v1.36.x",
        ]);
        expect(kubeletVersionProblems({ cp: "v1.36.3", w1: "v1.36.3" }, all, "1.36")).toEqual(["node w2 is not registered"]);
        expect(kubeletVersionProblems({ cp: "v1.36.3", w1: "v1.36.4" }, ["cp", "w1"], "1.36")).toEqual(["the nodes run different patches: cp=v1.36.3, w1=v1.36.4"]);
        // v1.361.0 is not a 1.36 release.
        expect(kubeletVersionProblems({ cp: "v1.361.0" }, ["cp"], "1.36")).toEqual(["node cp runs kubelet v1.361.0, not v1.36.x"]);
        expect(kubeletVersionProblems({}, [], "1.36")).toEqual(["the cluster has no nodes"]);
    });
});

describe("the background HTTP check", () => {
    test("CheckLog counts requests and failures, keeps when and what for the first failures only, and the longest outage", () => {
        const log = new CheckLog(10_000, 3);
        const ok: CheckOutcome = { ok: true };
        log.record(10_000, ok);
        log.record(10_500, { ok: false, detail: "HTTP 502 Bad Gateway" });
        log.record(11_000, { ok: false, detail: "ECONNRESET" });
        log.record(11_500, ok);
        for (let i = 0; i < 5; i++) {
            log.record(12_000 + i * 500, { ok: false });
        }
        log.record(15_000, ok);
        expect([log.requests, log.failed, log.longestFailureRun]).toEqual([10, 7, 5]);
        expect(log.failures).toEqual([
            { atSeconds: 0.5, detail: "HTTP 502 Bad Gateway" },
            { atSeconds: 1, detail: "ECONNRESET" },
            { atSeconds: 2, detail: "failed" },
        ]);
        expect(log.summary()).toBe("10 requests, 7 failed, at most 5 in a row; at 0.5 s: HTTP 502 Bad Gateway; at 1.0 s: ECONNRESET; at 2.0 s: failed (and 4 more)");
    });

    test("a clean run says so", () => {
        const log = new CheckLog(0);
        log.record(0, { ok: true });
        log.record(500, { ok: true });
        expect(log.failed).toBe(0);
        expect(log.failures).toEqual([]);
        expect(log.summary()).toBe("2 requests, none failed");
    });

    test("startBackgroundCheck sends one request at a time, one every 500 ms (later after a slow one), records a throw as a failure, and stops", async () => {
        let t = 1000;
        const starts: number[] = [];
        let inFlight = 0;
        let maxInFlight = 0;
        // Durations (ms) and results of six requests: the fourth takes 1.2 s; the fifth throws.
        const script: [number, CheckOutcome | Error][] = [
            [100, { ok: true }],
            [100, { ok: true }],
            [100, { ok: false, detail: "HTTP 503" }],
            [1200, { ok: true }],
            [50, new Error("connect ECONNREFUSED")],
            [100, { ok: true }],
        ];
        let stopped: Promise<CheckLog> | undefined;
        const check: BackgroundCheck = startBackgroundCheck(
            async () => {
                const [duration, result] = script[starts.length];
                starts.push(t);
                inFlight++;
                maxInFlight = Math.max(maxInFlight, inFlight);
                await Promise.resolve();
                t += duration;
                inFlight--;
                if (starts.length === script.length) {
                    stopped = check.stop();
                }
                if (result instanceof Error) {
                    throw result;
                }
                return result;
            },
            { intervalMs: 500, now: () => t, sleep: async (ms) => void (t += ms) },
        );
        await new Promise((r) => setImmediate(r));
        const log = await stopped!;
        expect(starts.map((s) => s - 1000)).toEqual([0, 500, 1000, 1500, 2700, 3200]);
        expect(maxInFlight).toBe(1);
        expect(log.requests).toBe(6);
        expect(log.failures).toEqual([
            { atSeconds: 1, detail: "HTTP 503" },
            { atSeconds: 2.7, detail: "connect ECONNREFUSED" },
        ]);
        expect(log.longestFailureRun).toBe(1);
        expect(check.log).toBe(log);
    });
});

describe("inClusterPreviewSteps", () => {
    const step = (op: string, type: string, name: string) => ({ resourcePreEvent: { metadata: { op, type, urn: `urn:pulumi:dev::kubeadm-gcp::${type}::${name}` } } });

    test("lists every step on a Kubernetes object, chart or chart child that changes it, and nothing else", () => {
        const events = [
            step("same", "kubernetes:apps/v1:Deployment", "app"),
            step("create", "gcp:compute/instance:Instance", "worker-3"),
            step("replace", "command:remote:Command", "cluster-ready"),
            step("update", "kubernetes:core/v1:Service", "svc"),
            step("delete", "kubernetes:apps/v1:Deployment", "metallb-chart:metallb-system/controller"),
            step("read", "kubernetes:core/v1:ConfigMap", "read-only"),
            {},
        ];
        expect(inClusterPreviewSteps(events)).toEqual([
            "update urn:pulumi:dev::kubeadm-gcp::kubernetes:core/v1:Service::svc",
            "delete urn:pulumi:dev::kubeadm-gcp::kubernetes:apps/v1:Deployment::metallb-chart:metallb-system/controller",
        ]);
    });

    test("a preview that leaves the cluster alone lists nothing", () => {
        expect(inClusterPreviewSteps([step("same", "kubernetes:helm.sh/v4:Chart", "chart"), step("create", "tls:index/privateKey:PrivateKey", "k")])).toEqual([]);
    });
});

describe("changedPreviewSteps", () => {
    const step = (op: string, type: string, name: string) => ({ resourcePreEvent: { metadata: { op, type, urn: `urn:pulumi:dev::kubeadm-gcp::${type}::${name}` } } });

    test("lists every step that changes a resource by name, sorted, and leaves out what stays and the stack itself", () => {
        const events = [
            step("same", "gcp:compute/instance:Instance", "k8s-e2e-nodes-worker-1"),
            step("update", "command:remote:Command", "k8s-e2e-nodes-worker-1-ready"),
            step("update", "pulumi:pulumi:Stack", "kubeadm-gcp-e2e"),
            step("create", "kubernetes:core/v1:Service", "svc"),
            step("refresh", "gcp:compute/address:Address", "ip"),
            {},
        ];
        expect(changedPreviewSteps(events)).toEqual(["create svc", "update k8s-e2e-nodes-worker-1-ready"]);
    });
});
