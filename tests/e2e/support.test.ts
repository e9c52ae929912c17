/**
 * The e2e test's parsing and judging, checked here so that a cloud run does not find their bugs.
 */
import { formatTimings, kubeconfigCredentials, leftoverResources, nodeProblems, nodeStatuses, parseGreeting, pollUntil } from "./support";

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
