/**
 * Every Kubernetes object the real program declares (index.ts under Pulumi's mock runtime), applied
 * server-side to a real API server: defaulting, admission (Pod Security "restricted" on the app's
 * namespace), CRD structural schemas and the controllers that create the app's Pods.
 */
import { ProgramRun, runProgram } from "../helpers/program";
import { ControlPlane, startControlPlane, until } from "./controlPlane";
import { applyOrder, Manifest, manifestsOf, metallbCrds } from "./manifests";

let cp: ControlPlane;
let run: ProgramRun;
let manifests: Manifest[];

beforeAll(async () => {
    cp = await startControlPlane();
    run = await runProgram({ "gcp:project": "test-project" });
    manifests = applyOrder(manifestsOf(run.resources));
    cp.kubectlOk(["apply", "--server-side", "-f", "-"], metallbCrds());
    cp.kubectlOk(["wait", "--for=condition=Established", "crd/ipaddresspools.metallb.io", "--timeout=60s"]);
});

afterAll(async () => {
    await cp?.stop();
});

const find = (kind: string) => {
    const found = manifests.filter((m) => m.kind === kind);
    expect(found).toHaveLength(1);
    return found[0];
};

/** The messages of the FailedCreate events in `namespace`, one a line (empty when there are none). */
const failedCreates = async (namespace: string): Promise<string> =>
    ((await cp.get(`/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent("reason=FailedCreate")}`))?.items ?? [])
        .map((e: any) => `${e.message}\n`)
        .join("");

/** Applies one object server-side as Pulumi's provider does; returns kubectl's result. */
const apply = (m: Manifest) => cp.kubectl(["apply", "--server-side", "--field-manager=pulumi-kubernetes", "-f", "-"], JSON.stringify(m));

test("every object the program declares is accepted by the API server, without a warning", () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(
        expect.arrayContaining(["Deployment", "HorizontalPodAutoscaler", "IPAddressPool", "Namespace", "PodDisruptionBudget", "Service"]),
    );
    const results = manifests.map((m) => {
        const r = apply(m);
        return { object: `${m.kind} ${m.metadata.namespace ?? ""}/${m.metadata.name}`, status: r.status, stderr: r.stderr.trim() };
    });
    // kubectl prints the API server's warnings (deprecated fields, Pod Security "would violate") to stderr.
    expect(results).toEqual(results.map((r) => ({ ...r, status: 0, stderr: "" })));
});

test("the Deployment creates its ReplicaSet and the configured number of Pods in the restricted namespace", async () => {
    const deployment = find("Deployment");
    const namespace = deployment.metadata.namespace!;
    const replicas = (deployment.spec as any).replicas as number;
    expect(replicas).toBeGreaterThan(0);
    const ns = JSON.parse(cp.kubectlOk(["get", "namespace", namespace, "-o", "json"]));
    expect(ns.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");

    const selector = Object.entries((deployment.spec as any).selector.matchLabels as Record<string, string>)
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
    const podsOf = async (): Promise<any[]> => (await cp.get(`/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`)).items;
    const seen = await until(
        "the Deployment's Pods, or a FailedCreate",
        async () => ({ pods: (await podsOf()).length, failedCreates: (await failedCreates(namespace)).trim() }),
        (now) => now.pods >= replicas || now.failedCreates !== "",
    );
    expect(seen).toEqual({ pods: replicas, failedCreates: "" });
    const pods = await podsOf();
    const replicaSets = JSON.parse(cp.kubectlOk(["-n", namespace, "get", "replicasets", "-l", selector, "-o", "json"])).items;
    expect(replicaSets).toHaveLength(1);
    expect(replicaSets[0].metadata.ownerReferences[0]).toMatchObject({ kind: "Deployment", name: deployment.metadata.name });
    // No scheduler runs here: the Pods exist, admitted, and wait to be scheduled.
    expect(pods.every((p) => p.status.phase === "Pending")).toBe(true);
});

test("the HPA targets the Deployment and the PDB selects its Pods", () => {
    const deployment = find("Deployment");
    const namespace = deployment.metadata.namespace!;
    const hpa = JSON.parse(cp.kubectlOk(["-n", namespace, "get", "hpa", find("HorizontalPodAutoscaler").metadata.name, "-o", "json"]));
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
    const pdb = JSON.parse(cp.kubectlOk(["-n", namespace, "get", "pdb", find("PodDisruptionBudget").metadata.name, "-o", "json"]));
    expect(pdb.spec.selector.matchLabels).toEqual((deployment.spec as any).selector.matchLabels);
});

test("the Service selects the Deployment's Pods and the pool is stored as declared", () => {
    const service = find("Service");
    const stored = JSON.parse(cp.kubectlOk(["-n", service.metadata.namespace!, "get", "service", service.metadata.name, "-o", "json"]));
    expect(stored.spec.type).toBe("LoadBalancer");
    expect(stored.spec.selector).toEqual((find("Deployment").spec as any).selector.matchLabels);
    const pool = find("IPAddressPool");
    const storedPool = JSON.parse(cp.kubectlOk(["-n", pool.metadata.namespace!, "get", "ipaddresspools.metallb.io", pool.metadata.name, "-o", "json"]));
    expect(storedPool.spec).toEqual(pool.spec);
});

describe("the tier catches what the API server rejects", () => {
    test("a container without runAsNonRoot gets no Pods in the restricted namespace", async () => {
        const deployment = JSON.parse(JSON.stringify(find("Deployment"))) as any;
        deployment.metadata.name = "broken-security-context";
        deployment.spec.selector.matchLabels = { broken: "security-context" };
        deployment.spec.template.metadata.labels = { broken: "security-context" };
        for (const c of deployment.spec.template.spec.containers) {
            delete c.securityContext?.runAsNonRoot;
        }
        delete deployment.spec.template.spec.securityContext?.runAsNonRoot;
        const r = apply(deployment);
        // The Deployment itself is admitted, with a Pod Security warning...
        expect(r.status).toBe(0);
        expect(r.stderr).toMatch(/would violate PodSecurity "restricted:[^"]+": runAsNonRoot != true/);
        // ...but its ReplicaSet cannot create a single Pod.
        const message = await until("a FailedCreate of the broken Deployment", () => failedCreates(deployment.metadata.namespace), (m) => m !== "", 30_000);
        expect(message).toMatch(/forbidden: violates PodSecurity "restricted/);
        const pods = JSON.parse(cp.kubectlOk(["-n", deployment.metadata.namespace, "get", "pods", "-l", "broken=security-context", "-o", "json"])).items;
        expect(pods).toHaveLength(0);
    });

    test("an invalid pool is refused by MetalLB's CRD schema", () => {
        const pool = JSON.parse(JSON.stringify(find("IPAddressPool"))) as any;
        pool.metadata.name = "broken-pool";
        pool.spec.autoAssign = "false";
        const r = apply(pool);
        expect(r.status).not.toBe(0);
        // Server-side apply checks the object against the CRD's structural schema before storing it.
        expect(r.stderr).toMatch(/broken-pool.*\.spec\.autoAssign: expected boolean/);
    });
});
