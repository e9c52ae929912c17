/**
 * Runs this part's components under Pulumi's mock runtime and records every resource they
 * declare: type, name, resolved inputs, parent, dependsOn, the provider it was given.
 * Runs are independent: each starts a fresh mock runtime and root stack (recordUnderMocks); the
 * components keep no state of their own, so the test file's copies serve every run.
 */
import { promiseOf, recordUnderMocks, Recording, RecordedResource } from "../helpers/program";

export type Recorded = RecordedResource;

export interface Modules {
    pulumi: typeof import("@pulumi/pulumi");
    gcp: typeof import("@pulumi/gcp");
    k8s: typeof import("@pulumi/kubernetes");
    loadBalancer: typeof import("../../components/loadBalancer");
    metallb: typeof import("../../components/metallb");
    metricsServer: typeof import("../../components/metricsServer");
    httpGoApp: typeof import("../../components/httpGoApp");
}

export interface Run<T> extends Recording {
    /** What the build function returned, with every Output in it resolved. */
    result: T;
}

/** A recognisable IP per address resource, from TEST-NET-3 (never routed). */
export function fakeIp(name: string): string {
    let h = 7;
    for (const c of name) {
        h = (h * 31 + c.charCodeAt(0)) >>> 0;
    }
    return `203.0.113.${(h % 253) + 1}`;
}

export const fakeSelfLink = (type: string, name: string) => `https://www.googleapis.com/compute/v1/fake/${type.split(":").pop()}/${name}`;

function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    if (type.startsWith("gcp:compute/")) {
        const state: Record<string, any> = { ...inputs, selfLink: fakeSelfLink(type, name) };
        if (type === "gcp:compute/address:Address") {
            state.address = fakeIp(name);
        }
        if (type === "gcp:compute/instance:Instance") {
            state.instanceId = `instance-id-${name}`;
        }
        return state;
    }
    if (type === "command:local:Command") {
        return { ...inputs, stdout: "checked\n", stderr: "" };
    }
    return { ...inputs };
}

/**
 * Builds resources inside a fresh mock runtime. `build` receives the SDKs and the components (the
 * test file's copies, which keep no state) and returns anything (Outputs inside are resolved into `result`).
 */
export async function run<T>(build: (m: Modules) => T): Promise<Run<{ [K in keyof T]: any }>> {
    const recording = await recordUnderMocks(
        (pulumi) =>
            build({
                pulumi,
                gcp: require("@pulumi/gcp"),
                k8s: require("@pulumi/kubernetes"),
                loadBalancer: require("../../components/loadBalancer"),
                metallb: require("../../components/metallb"),
                metricsServer: require("../../components/metricsServer"),
                httpGoApp: require("../../components/httpGoApp"),
            }),
        { stack: "test", state: mockState },
    );
    const result: Record<string, any> = {};
    for (const [key, value] of Object.entries((recording.value ?? {}) as Record<string, unknown>)) {
        result[key] = recording.pulumi.Output.isInstance(value) ? await promiseOf(value) : value;
    }
    await recording.pulumi.runtime.disconnect();
    return { ...recording, result: result as any };
}

export { promiseOf as resolve };

export const appConfig = {
    namespace: "http-go",
    image: "docker.io/gasbugs/http-go:latest",
    replicas: 3,
    maxReplicas: 6,
    cpuTargetPercent: 70,
};

/**
 * The composition index.ts uses (see the lead's brief), with fake workers: the whole traffic
 * part of the program, wired the way it will be wired for real.
 */
export function buildAll(m: Modules, workerCount = 2) {
    const { gcp, k8s } = m;
    const clusterName = "k8s-test";
    const provider = new k8s.Provider("cluster-k8s", { kubeconfig: "apiVersion: v1\nkind: Config\n" });
    const network = new gcp.compute.Network("net", { name: `${clusterName}-net`, autoCreateSubnetworks: false });
    const workers = Array.from(
        { length: workerCount },
        (_, i) =>
            new gcp.compute.Instance(`worker-${i}`, {
                name: `${clusterName}-worker-${i}`,
                machineType: "e2-medium",
                zone: "us-central1-a",
                bootDisk: { initializeParams: { image: "ubuntu-os-cloud/ubuntu-2404-lts-amd64" } },
                networkInterfaces: [{ network: network.id }],
                tags: [`${clusterName}-worker`],
            }),
    );
    const lb = new m.loadBalancer.AppLoadBalancer("k8s-lb", {
        clusterName,
        region: "us-central1",
        zone: "us-central1-a",
        network,
        workerInstances: workers,
        workerTag: `${clusterName}-worker`,
    });
    const metallb = new m.metallb.MetalLb("k8s-metallb", { provider, addresses: [lb.address] });
    const metrics = new m.metricsServer.MetricsServer("k8s-metrics", { provider });
    const app = new m.httpGoApp.HttpGoApp("k8s-app", {
        provider,
        app: appConfig,
        loadBalancerIp: lb.address,
        addressPool: metallb.poolName,
        trafficPath: lb.trafficPath,
        metricsServer: metrics,
    });
    return { address: lb.address, poolName: metallb.poolName, url: app.url };
}
