/**
 * MetalLB's real controller (built from go.universe.tf/metallb at the pinned chart's app version)
 * against the real API server: the program's pool and Service get exactly the reserved IP in
 * `status.loadBalancer.ingress`, which is what Pulumi's await and kube-proxy act on.
 *
 * The controller runs out of cluster (KUBECONFIG, webhook off): the pool is validated by the CRD
 * schema here, and by MetalLB's webhook in a real cluster. Its own Pod object exists because the
 * controller looks itself up; nothing runs it.
 */
import { ProgramRun, runProgram } from "../helpers/program";
import { binaries, ControlPlane, freePort, startControlPlane, until } from "./controlPlane";
import { applyOrder, Manifest, manifestsOf, metallbCrds } from "./manifests";
import { metallbVersion } from "./versions";

let cp: ControlPlane;
let run: ProgramRun;
let manifests: Manifest[];

const find = (kind: string) => manifests.filter((m) => m.kind === kind);

beforeAll(async () => {
    cp = await startControlPlane();
    run = await runProgram({ "gcp:project": "test-project" });
    manifests = applyOrder(manifestsOf(run.resources)).filter((m) => ["Namespace", "IPAddressPool", "Service"].includes(m.kind));
    cp.kubectlOk(["apply", "--server-side", "-f", "-"], metallbCrds());
    cp.kubectlOk(["wait", "--for=condition=Established", "crd/ipaddresspools.metallb.io", "--timeout=60s"]);
    for (const m of manifests) {
        cp.kubectlOk(["apply", "--server-side", "--field-manager=pulumi-kubernetes", "-f", "-"], JSON.stringify(m));
    }

    const namespace = find("IPAddressPool")[0].metadata.namespace!;
    const podName = "metallb-controller-test";
    cp.kubectlOk(
        ["apply", "-f", "-"],
        JSON.stringify({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: podName, namespace, labels: { app: "metallb", component: "controller" } },
            spec: { containers: [{ name: "controller", image: `quay.io/metallb/controller:${metallbVersion}` }] },
        }),
    );
    cp.startProcess(
        "metallb-controller",
        binaries.metallbController,
        [
            `--namespace=${namespace}`,
            `--pod-name=${podName}`,
            "--webhook-mode=disabled",
            "--disable-cert-rotation",
            `--port=${await freePort()}`,
            `--health-probe-port=${await freePort()}`,
            "--log-level=info",
        ],
        { KUBECONFIG: cp.adminConf },
    );
});

afterAll(async () => {
    await cp?.stop();
});

const ingressOf = async (namespace: string, name: string): Promise<string[]> => {
    const s = await cp.get(`/api/v1/namespaces/${namespace}/services/${name}`);
    if (!s) {
        throw new Error(`service ${namespace}/${name} not found`);
    }
    return (s.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip);
};

/** The reasons of the events about `name` in `namespace`. */
const eventReasonsFor = async (namespace: string, name: string): Promise<string[]> =>
    ((await cp.get(`/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`))?.items ?? []).map((e: any) => e.reason);

test("the app's Service gets exactly the reserved IP from the pool", async () => {
    const [service] = find("Service");
    const [pool] = find("IPAddressPool");
    const reserved = (pool.spec as any).addresses[0].replace(/\/32$/, "");
    expect(service.metadata.annotations).toMatchObject({ "metallb.io/loadBalancerIPs": reserved, "metallb.io/address-pool": pool.metadata.name });

    const ingress = await until("the app's Service's ingress IPs", () => ingressOf(service.metadata.namespace!, service.metadata.name), (ips) => ips.length > 0);
    expect(ingress).toEqual([reserved]);
});

test("a LoadBalancer Service that does not ask for the pool gets no IP", async () => {
    const [service] = find("Service");
    const namespace = service.metadata.namespace!;
    cp.kubectlOk(
        ["apply", "-f", "-"],
        JSON.stringify({
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "uninvited", namespace },
            spec: { type: "LoadBalancer", selector: { app: "uninvited" }, ports: [{ port: 80 }] },
        }),
    );
    // The controller saw it and refused it (an event), rather than never having looked.
    const events = await until("the events about the uninvited Service", () => eventReasonsFor(namespace, "uninvited"), (reasons) => reasons.includes("AllocationFailed"), 30_000);
    expect(events).toContain("AllocationFailed");
    expect(await ingressOf(namespace, "uninvited")).toEqual([]);
    // ...and the app's Service kept its address.
    const [pool] = find("IPAddressPool");
    expect(await ingressOf(namespace, service.metadata.name)).toEqual([(pool.spec as any).addresses[0].replace(/\/32$/, "")]);
});
