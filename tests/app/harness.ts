/**
 * Runs this part's components under Pulumi's mock runtime and records every resource they
 * declare: type, name, resolved inputs, parent, dependsOn, the provider it was given.
 * Each run loads fresh copies of @pulumi/pulumi and the components, so runs are independent.
 */
import type * as pulumiType from "@pulumi/pulumi";
import { collectOutputs, promiseOf } from "../helpers/program";

export interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, any>;
    parent?: string;
    dependsOn: string[];
    /** Logical name of the explicit provider, if one was passed. */
    provider?: string;
    ignoreChanges: string[];
    /** Logical names of the resources whose outputs flow into this resource's inputs. */
    dataDependencies: string[];
}

export interface Modules {
    pulumi: typeof import("@pulumi/pulumi");
    gcp: typeof import("@pulumi/gcp");
    k8s: typeof import("@pulumi/kubernetes");
    loadBalancer: typeof import("../../components/loadBalancer");
    metallb: typeof import("../../components/metallb");
    metricsServer: typeof import("../../components/metricsServer");
    httpGoApp: typeof import("../../components/httpGoApp");
}

export interface Run<T> {
    resources: Recorded[];
    /** What the build function returned, with every Output in it resolved. */
    result: T;
    byType(type: string): Recorded[];
    one(type: string): Recorded;
    get(name: string): Recorded;
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
        return state;
    }
    if (type === "command:local:Command") {
        return { ...inputs, stdout: "checked\n", stderr: "" };
    }
    return { ...inputs };
}

/**
 * Builds resources inside a fresh mock runtime. `build` receives freshly loaded modules and
 * returns anything (Outputs inside are resolved into `result`).
 */
export async function run<T>(build: (m: Modules) => T): Promise<Run<{ [K in keyof T]: any }>> {
    jest.resetModules();
    const pulumi: typeof pulumiType = require("@pulumi/pulumi");
    const recorded = new Map<string, Recorded>();
    const pending: Promise<void>[] = [];
    const nameOf = (r: any): string => r?.__name ?? "?";

    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const rec = recorded.get(`${args.type}::${args.name}`);
                if (rec) {
                    rec.inputs = args.inputs;
                    // A provider reference is "<urn>::<id>"; the URN ends in "::<name>".
                    rec.provider = args.provider ? args.provider.split("::")[3] : undefined;
                }
                return { id: `${args.name}-id`, state: mockState(args.type, args.name, args.inputs) };
            },
            call: (args) => args.inputs,
        },
        "kubeadm-gcp",
        "test",
        false,
    );

    const modules: Modules = {
        pulumi,
        gcp: require("@pulumi/gcp"),
        k8s: require("@pulumi/kubernetes"),
        loadBalancer: require("../../components/loadBalancer"),
        metallb: require("../../components/metallb"),
        metricsServer: require("../../components/metricsServer"),
        httpGoApp: require("../../components/httpGoApp"),
    };
    // Stack transformations need the root stack resource, so build inside one, as a program does.
    const stack: typeof import("@pulumi/pulumi/runtime/stack") = require("@pulumi/pulumi/runtime/stack");
    let built: T | undefined;
    await stack.runInPulumiStack(async () => {
        pulumi.runtime.registerStackTransformation((args) => {
            const rec: Recorded = { type: args.type, name: args.name, inputs: {}, dependsOn: [], ignoreChanges: args.opts.ignoreChanges ?? [], dataDependencies: [] };
            const parent = args.opts.parent as any;
            rec.parent = parent && parent.constructor?.name !== "Stack" ? nameOf(parent) : undefined;
            recorded.set(`${args.type}::${args.name}`, rec);
            pending.push(
                (async () => {
                    const deps = await (args.opts.dependsOn as any);
                    const list = Array.isArray(deps) ? deps : deps ? [deps] : [];
                    rec.dependsOn = (await Promise.all(list)).map(nameOf);
                    const data = new Set<string>();
                    for (const out of collectOutputs(args.props, pulumi)) {
                        for (const res of await (out as any).resources()) {
                            data.add(nameOf(res));
                        }
                    }
                    rec.dataDependencies = [...data].filter((d) => d !== args.name).sort();
                })(),
            );
            return undefined;
        });
        built = build(modules);
        return {};
    });
    const result: Record<string, any> = {};
    for (const [key, value] of Object.entries((built ?? {}) as Record<string, unknown>)) {
        result[key] = pulumi.Output.isInstance(value) ? await promiseOf(value) : value;
    }
    // Let every registration settle before reading what was recorded.
    for (let i = 0; i < 50; i++) {
        await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    await pulumi.runtime.disconnect();

    const resources = [...recorded.values()];
    const byType = (type: string) => resources.filter((r) => r.type === type);
    return {
        resources,
        result: result as any,
        byType,
        one: (type) => {
            const found = byType(type);
            if (found.length !== 1) {
                throw new Error(`expected exactly one ${type}, found ${found.length}`);
            }
            return found[0];
        },
        get: (name) => {
            const r = resources.find((x) => x.name === name);
            if (!r) {
                throw new Error(`no resource named ${name}; have: ${resources.map((x) => x.name).join(", ")}`);
            }
            return r;
        },
    };
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
        metricsServer: metrics,
    });
    return { address: lb.address, poolName: metallb.poolName, url: app.url };
}
