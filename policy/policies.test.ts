/**
 * Calls each policy the way the policy runtime does: props wrapped in @pulumi/policy's
 * unknown-checking proxy, unknown preview values as the runtime's sentinels, and a
 * `reportViolation` mock whose calls are the exact violations.
 */
import {
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
    unknownCheckingProxy,
} from "@pulumi/policy";
import * as proxyInternals from "@pulumi/policy/proxy";
import * as fs from "fs";
import * as path from "path";
import {
    isDefaultNetwork,
    known,
    loadBalancerIpReserved,
    noDefaultNetwork,
    noDefaultServiceAccount,
    noOpenAdminPorts,
    parentTypesOfUrn,
    policies,
    portsInclude,
    shieldedVms,
    types,
    UNKNOWN,
    workloadProbesAndRequests,
} from "./policies";
import { defaultOpts, notApplicable } from "./testing";

/** The sentinels the policy runtime puts where a value is unknown at preview (internal to @pulumi/policy). */
const unknownValue = proxyInternals as unknown as {
    unknownStringValue: string;
    unknownArrayValue: string;
    unknownObjectValue: string;
    unknownBooleanValue: string;
};

const stack = "dev";
const project = "kubeadm-gcp";

function urnOf(type: string, name: string, parentTypes: string[] = []): string {
    return `urn:pulumi:${stack}::${project}::${[...parentTypes, type].join("$")}::${name}`;
}

const opts = defaultOpts;

interface ArgsOptions {
    config?: Record<string, unknown>;
    parentTypes?: string[];
}

function resourceArgs(type: string, name: string, props: Record<string, any>, o: ArgsOptions = {}): ResourceValidationArgs {
    const proxied = unknownCheckingProxy(props);
    return {
        type,
        name,
        urn: urnOf(type, name, o.parentTypes),
        props: proxied,
        opts,
        stackTags: new Map(),
        isType: ((cls: { __pulumiType?: string }) => cls.__pulumiType === type) as ResourceValidationArgs["isType"],
        asType: (() => undefined) as ResourceValidationArgs["asType"],
        getConfig: (<T extends object>() => (o.config ?? {}) as T) as ResourceValidationArgs["getConfig"],
        notApplicable,
    };
}

function policyResource(type: string, name: string, props: Record<string, any>): PolicyResource {
    return {
        type,
        name,
        urn: urnOf(type, name),
        props: unknownCheckingProxy(props),
        opts,
        dependencies: [],
        propertyDependencies: {},
        isType: (() => false) as PolicyResource["isType"],
        asType: (() => undefined) as PolicyResource["asType"],
    };
}

function stackArgs(resources: PolicyResource[], config: Record<string, unknown> = {}): StackValidationArgs {
    return {
        resources,
        stackTags: new Map(),
        getConfig: (<T extends object>() => config as T) as StackValidationArgs["getConfig"],
        notApplicable,
    };
}

/** Runs a resource policy; returns the violations it reported, one array of arguments per call. */
async function check(policy: ResourceValidationPolicy, args: ResourceValidationArgs): Promise<unknown[][]> {
    const report = jest.fn();
    const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource];
    for (const validate of validations) {
        await validate!(args, report);
    }
    return report.mock.calls;
}

async function checkStack(policy: StackValidationPolicy, args: StackValidationArgs): Promise<unknown[][]> {
    const report = jest.fn();
    await policy.validateStack(args, report);
    return report.mock.calls;
}

// ---------------------------------------------------------------------------------------------
// Fixtures shaped like what the program declares (components/network.ts, nodes.ts).

const networkId = "projects/my-proj/global/networks/dev-vpc";

function firewall(overrides: Record<string, any> = {}): Record<string, any> {
    return {
        name: "dev-ssh",
        network: networkId,
        direction: "INGRESS",
        sourceRanges: ["203.0.113.7/32"],
        targetTags: ["dev-node"],
        allows: [{ protocol: "tcp", ports: ["22"] }],
        ...overrides,
    };
}

function instance(overrides: Record<string, any> = {}): Record<string, any> {
    return {
        name: "dev-control-plane",
        machineType: "e2-medium",
        zone: "us-central1-a",
        networkInterfaces: [{ subnetwork: "projects/my-proj/regions/us-central1/subnetworks/dev-nodes", accessConfigs: [{ natIp: "203.0.113.10" }] }],
        serviceAccount: { email: "dev-nodes@my-proj.iam.gserviceaccount.com", scopes: ["cloud-platform"] },
        shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
        ...overrides,
    };
}

function container(overrides: Record<string, any> = {}): Record<string, any> {
    return {
        name: "http-go",
        image: "docker.io/gasbugs/http-go:latest",
        readinessProbe: { httpGet: { path: "/", port: 8080 } },
        livenessProbe: { httpGet: { path: "/", port: 8080 } },
        resources: { requests: { cpu: "50m", memory: "32Mi" }, limits: { memory: "64Mi" } },
        ...overrides,
    };
}

function workload(containers: Record<string, any>[]): Record<string, any> {
    return {
        metadata: { name: "http-go", namespace: "http-go" },
        spec: { replicas: 3, template: { metadata: { labels: { app: "http-go" } }, spec: { containers } } },
    };
}

function service(annotations: Record<string, any> | undefined, type = "LoadBalancer"): Record<string, any> {
    return {
        metadata: { name: "http-go", namespace: "http-go", ...(annotations === undefined ? {} : { annotations }) },
        spec: { type, ports: [{ port: 80, targetPort: 8080 }], selector: { app: "http-go" } },
    };
}

// ---------------------------------------------------------------------------------------------

describe("the pack", () => {
    test("has the six promised policies with unique names and their enforcement levels", () => {
        expect(policies.map((p) => [p.name, p.enforcementLevel])).toEqual([
            ["no-open-admin-ports", "advisory"],
            ["shielded-vms", "mandatory"],
            ["no-default-service-account", "mandatory"],
            ["no-default-network", "mandatory"],
            ["workload-probes-and-requests", "mandatory"],
            ["loadbalancer-ip-reserved", "mandatory"],
        ]);
        expect(policies.every((p) => p.description.length > 20)).toBe(true);
    });

    test("allowOpenAdminAccess is a boolean in the config schema, false by default", () => {
        expect(noOpenAdminPorts.configSchema?.properties.allowOpenAdminAccess).toMatchObject({ type: "boolean", default: false });
    });

    test("index.ts builds one PolicyPack named kubeadm-gcp-guardrails from exactly these policies", () => {
        const constructed: unknown[][] = [];
        jest.isolateModules(() => {
            jest.doMock("@pulumi/policy", () => ({
                ...jest.requireActual("@pulumi/policy"),
                PolicyPack: jest.fn().mockImplementation((...a: unknown[]) => constructed.push(a)),
            }));
            // requireActual loads the real file; its own imports still see the mock above.
            const fresh = jest.requireActual<{ policies: unknown[] }>("./policies");
            jest.requireActual("./index");
            expect(constructed).toHaveLength(1);
            expect(constructed[0][0]).toBe("kubeadm-gcp-guardrails");
            expect((constructed[0][1] as { policies: unknown[] }).policies).toBe(fresh.policies);
        });
    });
});

describe("policy/config/*.json (per-stack policy configs the workflows pass to Pulumi)", () => {
    const dir = path.join(__dirname, "config");
    const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json"));

    test("strict.json makes no-open-admin-ports mandatory", () => {
        expect(JSON.parse(fs.readFileSync(path.join(dir, "strict.json"), "utf8"))["no-open-admin-ports"]).toMatchObject({ enforcementLevel: "mandatory" });
    });

    test.each(files)("%s names only policies of the pack, valid levels and properties of their schemas", (file) => {
        const config = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as Record<string, string | Record<string, unknown>>;
        for (const [name, value] of Object.entries(config)) {
            const policy = policies.find((p) => p.name === name);
            expect(policy).toBeDefined();
            const { enforcementLevel, ...props } = typeof value === "string" ? { enforcementLevel: value } : value;
            expect(["advisory", "mandatory", "remediate", "disabled", undefined]).toContain(enforcementLevel);
            for (const [key, v] of Object.entries(props)) {
                const schema = policy!.configSchema?.properties[key];
                expect(schema).toBeDefined();
                expect(typeof v).toBe(schema!.type);
            }
        }
    });
});

describe("known()", () => {
    test("turns the runtime's unknown-value error into UNKNOWN and rethrows anything else", () => {
        const props = unknownCheckingProxy({ a: unknownValue.unknownStringValue, b: "x" });
        expect(known(() => props.a)).toBe(UNKNOWN);
        expect(known(() => props.b)).toBe("x");
        expect(() => known(() => { throw new Error("boom"); })).toThrow("boom");
    });
});

describe("no-open-admin-ports", () => {
    const fw = (props: Record<string, any>, config?: Record<string, unknown>) => resourceArgs(types.firewall, "cluster-ssh", props, { config });

    test("passes a firewall narrowed to one address", async () => {
        expect(await check(noOpenAdminPorts, fw(firewall()))).toEqual([]);
    });

    test("reports SSH open to 0.0.0.0/0 (the default stack config)", async () => {
        expect(await check(noOpenAdminPorts, fw(firewall({ sourceRanges: ["0.0.0.0/0"] })))).toEqual([
            [
                'Firewall "cluster-ssh" opens TCP 22 (SSH) to 0.0.0.0/0. Narrow its sourceRanges (stack config sshSourceRanges / apiSourceRanges) ' +
                    "to your own addresses, or accept it with allowOpenAdminAccess: true in this policy's config.",
            ],
        ]);
    });

    test("reports the API server port, a range containing it, and all ports", async () => {
        const open = { sourceRanges: ["10.0.0.0/8", "0.0.0.0/0"] };
        const api = await check(noOpenAdminPorts, fw(firewall({ ...open, allows: [{ protocol: "tcp", ports: ["6443"] }] })));
        expect(api).toHaveLength(1);
        expect(api[0][0]).toContain("opens TCP 6443 (Kubernetes API) to 0.0.0.0/0.");
        const range = await check(noOpenAdminPorts, fw(firewall({ ...open, allows: [{ protocol: "tcp", ports: ["6000-7000"] }] })));
        expect(range[0][0]).toContain("opens TCP 6443 (Kubernetes API) to 0.0.0.0/0.");
        const all = await check(noOpenAdminPorts, fw(firewall({ ...open, allows: [{ protocol: "tcp" }] })));
        expect(all[0][0]).toContain("opens TCP 22 (SSH) and TCP 6443 (Kubernetes API) to 0.0.0.0/0.");
        const allProtocols = await check(noOpenAdminPorts, fw(firewall({ ...open, allows: [{ protocol: "all", ports: [] }] })));
        expect(allProtocols[0][0]).toContain("opens TCP 22 (SSH) and TCP 6443 (Kubernetes API)");
        const ipv6 = await check(noOpenAdminPorts, fw(firewall({ sourceRanges: ["::/0"] })));
        expect(ipv6[0][0]).toContain("opens TCP 22 (SSH) to ::/0.");
    });

    test("an ingress rule with no source at all counts as 0.0.0.0/0", async () => {
        const calls = await check(noOpenAdminPorts, fw(firewall({ sourceRanges: undefined })));
        expect(calls).toHaveLength(1);
        expect(calls[0][0]).toContain("opens TCP 22 (SSH) to 0.0.0.0/0 (no source given).");
        expect(await check(noOpenAdminPorts, fw(firewall({ sourceRanges: undefined, sourceTags: ["dev-node"] })))).toEqual([]);
    });

    test("ignores other ports, UDP, egress and disabled rules", async () => {
        const open = { sourceRanges: ["0.0.0.0/0"] };
        expect(await check(noOpenAdminPorts, fw(firewall({ ...open, allows: [{ protocol: "tcp", ports: ["80", "30000-32767", "2222"] }] })))).toEqual([]);
        expect(await check(noOpenAdminPorts, fw(firewall({ ...open, allows: [{ protocol: "udp", ports: ["22"] }] })))).toEqual([]);
        expect(await check(noOpenAdminPorts, fw(firewall({ ...open, direction: "EGRESS" })))).toEqual([]);
        expect(await check(noOpenAdminPorts, fw(firewall({ ...open, disabled: true })))).toEqual([]);
    });

    test("allowOpenAdminAccess: true in the policy config accepts it; false does not", async () => {
        const open = firewall({ sourceRanges: ["0.0.0.0/0"] });
        expect(await check(noOpenAdminPorts, fw(open, { allowOpenAdminAccess: true }))).toEqual([]);
        expect(await check(noOpenAdminPorts, fw(open, { allowOpenAdminAccess: false }))).toHaveLength(1);
    });

    test("unknown values at preview never fail it", async () => {
        const u = unknownValue;
        expect(await check(noOpenAdminPorts, fw(firewall({ sourceRanges: u.unknownArrayValue })))).toEqual([]);
        expect(await check(noOpenAdminPorts, fw(firewall({ sourceRanges: ["0.0.0.0/0"], allows: u.unknownArrayValue })))).toEqual([]);
        expect(await check(noOpenAdminPorts, fw(firewall({ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp", ports: u.unknownArrayValue }] })))).toEqual([]);
        // ...but a known open entry next to an unknown one is still reported.
        const mixed = await check(
            noOpenAdminPorts,
            fw(firewall({ sourceRanges: [u.unknownStringValue, "0.0.0.0/0"], allows: [{ protocol: "tcp", ports: [u.unknownStringValue, "22"] }] })),
        );
        expect(mixed).toHaveLength(1);
    });

    test("ignores resources that are not firewalls", async () => {
        expect(await check(noOpenAdminPorts, resourceArgs(types.instance, "x", firewall({ sourceRanges: ["0.0.0.0/0"] })))).toEqual([]);
    });

    test("portsInclude reads single ports, ranges and the empty list", () => {
        expect(portsInclude([], 22)).toBe(true);
        expect(portsInclude(["22"], 22)).toBe(true);
        expect(portsInclude(["20-25"], 22)).toBe(true);
        expect(portsInclude(["23-25", "2222"], 22)).toBe(false);
        expect(portsInclude([UNKNOWN], 22)).toBe(UNKNOWN);
    });
});

describe("shielded-vms", () => {
    test("passes an instance with all three features", async () => {
        expect(await check(shieldedVms, resourceArgs(types.instance, "cp", instance()))).toEqual([]);
    });

    test("reports each feature that is not true", async () => {
        const args = resourceArgs(types.instance, "cp", instance({ shieldedInstanceConfig: { enableSecureBoot: false, enableVtpm: true } }));
        expect(await check(shieldedVms, args)).toEqual([
            [
                'Instance "cp" must set shieldedInstanceConfig { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true }; ' +
                    "not true: enableSecureBoot, enableIntegrityMonitoring.",
            ],
        ]);
    });

    test("reports an instance without the block", async () => {
        const calls = await check(shieldedVms, resourceArgs(types.instance, "w0", instance({ shieldedInstanceConfig: undefined })));
        expect(calls).toHaveLength(1);
        expect(calls[0][0]).toContain("not true: enableSecureBoot, enableVtpm, enableIntegrityMonitoring.");
    });

    test("unknown values pass; other types are ignored", async () => {
        expect(await check(shieldedVms, resourceArgs(types.instance, "cp", instance({ shieldedInstanceConfig: unknownValue.unknownObjectValue })))).toEqual([]);
        const partly = instance({ shieldedInstanceConfig: { enableSecureBoot: unknownValue.unknownBooleanValue, enableVtpm: true, enableIntegrityMonitoring: true } });
        expect(await check(shieldedVms, resourceArgs(types.instance, "cp", partly))).toEqual([]);
        expect(await check(shieldedVms, resourceArgs(types.firewall, "fw", { shieldedInstanceConfig: undefined }))).toEqual([]);
    });
});

describe("no-default-service-account", () => {
    test("passes a dedicated account", async () => {
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "cp", instance()))).toEqual([]);
    });

    test("passes when the email is unknown at preview (sentinel or absent)", async () => {
        const unknownEmail = instance({ serviceAccount: { email: unknownValue.unknownStringValue, scopes: ["cloud-platform"] } });
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "cp", unknownEmail))).toEqual([]);
        const absentEmail = instance({ serviceAccount: { scopes: ["cloud-platform"] } });
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "cp", absentEmail))).toEqual([]);
        const unknownBlock = instance({ serviceAccount: unknownValue.unknownObjectValue });
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "cp", unknownBlock))).toEqual([]);
    });

    test("reports a missing serviceAccount block", async () => {
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "w1", instance({ serviceAccount: undefined })))).toEqual([
            ['Instance "w1" has no serviceAccount block; give it a dedicated service account with only the roles it needs.'],
        ]);
    });

    test("reports the Compute Engine default account, by address or as \"default\"", async () => {
        const email = "123456789012-compute@developer.gserviceaccount.com";
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "w1", instance({ serviceAccount: { email } })))).toEqual([
            [
                `Instance "w1" runs as the Compute Engine default service account (${email}), which has broad project access; use a dedicated service account.`,
            ],
        ]);
        expect(await check(noDefaultServiceAccount, resourceArgs(types.instance, "w1", instance({ serviceAccount: { email: "default" } })))).toHaveLength(1);
    });

    test("ignores resources that are not instances", async () => {
        expect(await check(noDefaultServiceAccount, resourceArgs(types.firewall, "fw", {}))).toEqual([]);
    });
});

describe("no-default-network", () => {
    test("passes the cluster's own VPC and subnetwork", async () => {
        expect(await check(noDefaultNetwork, resourceArgs(types.firewall, "fw", firewall()))).toEqual([]);
        expect(await check(noDefaultNetwork, resourceArgs(types.instance, "cp", instance()))).toEqual([]);
        expect(await check(noDefaultNetwork, resourceArgs("gcp:compute/subnetwork:Subnetwork", "sn", { network: networkId }))).toEqual([]);
    });

    test("reports a network input naming the default network", async () => {
        expect(await check(noDefaultNetwork, resourceArgs(types.firewall, "fw", firewall({ network: "default" })))).toEqual([
            ['Firewall "fw" uses the default network (default); use the cluster\'s own VPC.'],
        ]);
        const sn = resourceArgs("gcp:compute/subnetwork:Subnetwork", "sn", { network: "projects/my-proj/global/networks/default" });
        expect(await check(noDefaultNetwork, sn)).toEqual([
            ['Subnetwork "sn" uses the default network (projects/my-proj/global/networks/default); use the cluster\'s own VPC.'],
        ]);
    });

    test("reports an instance interface on the default network, or on no network at all", async () => {
        const onDefault = instance({ networkInterfaces: [{ network: "https://www.googleapis.com/compute/v1/projects/p/global/networks/default" }] });
        expect(await check(noDefaultNetwork, resourceArgs(types.instance, "cp", onDefault))).toEqual([
            [
                'Instance "cp" networkInterfaces[0] uses the default network (https://www.googleapis.com/compute/v1/projects/p/global/networks/default); use the cluster\'s own VPC.',
            ],
        ]);
        const nowhere = instance({ networkInterfaces: [{ subnetwork: "projects/p/regions/r/subnetworks/dev-nodes" }, { accessConfigs: [] }] });
        expect(await check(noDefaultNetwork, resourceArgs(types.instance, "cp", nowhere))).toEqual([
            [
                'Instance "cp" networkInterfaces[1] names neither a network nor a subnetwork, so GCP attaches it to the default network; set the cluster\'s subnetwork.',
            ],
        ]);
    });

    test("unknown network ids at preview pass; non-GCP resources are ignored", async () => {
        expect(await check(noDefaultNetwork, resourceArgs(types.firewall, "fw", firewall({ network: unknownValue.unknownStringValue })))).toEqual([]);
        const nic = instance({ networkInterfaces: [{ subnetwork: unknownValue.unknownStringValue }] });
        expect(await check(noDefaultNetwork, resourceArgs(types.instance, "cp", nic))).toEqual([]);
        expect(await check(noDefaultNetwork, resourceArgs(types.instance, "cp", instance({ networkInterfaces: unknownValue.unknownArrayValue })))).toEqual([]);
        expect(await check(noDefaultNetwork, resourceArgs("kubernetes:core/v1:ConfigMap", "cm", { network: "default" }))).toEqual([]);
    });

    test("isDefaultNetwork matches names, ids and self links only", () => {
        expect(["default", "global/networks/default", "projects/p/global/networks/default"].map(isDefaultNetwork)).toEqual([true, true, true]);
        expect(["dev-vpc", "projects/p/global/networks/default-ish", "my-default", undefined].map(isDefaultNetwork)).toEqual([false, false, false, false]);
    });
});

describe("workload-probes-and-requests", () => {
    test("passes a Deployment whose containers all have probes and requests", async () => {
        expect(await check(workloadProbesAndRequests, resourceArgs(types.deployment, "http-go", workload([container()])))).toEqual([]);
    });

    test("reports each container that lacks a probe or a request, for all three kinds", async () => {
        const bad = workload([
            container(),
            container({ name: "sidecar", readinessProbe: undefined, resources: { requests: { cpu: "10m" } } }),
            container({ name: "bare", livenessProbe: undefined, readinessProbe: undefined, resources: undefined }),
        ]);
        expect(await check(workloadProbesAndRequests, resourceArgs(types.deployment, "http-go", bad))).toEqual([
            ['Deployment "http-go" container "sidecar" has no readinessProbe, resources.requests.memory.'],
            ['Deployment "http-go" container "bare" has no readinessProbe, livenessProbe, resources.requests.cpu, resources.requests.memory.'],
        ]);
        const noLiveness = workload([container({ livenessProbe: undefined })]);
        expect(await check(workloadProbesAndRequests, resourceArgs(types.statefulSet, "db", noLiveness))).toEqual([
            ['StatefulSet "db" container "http-go" has no livenessProbe.'],
        ]);
        expect(await check(workloadProbesAndRequests, resourceArgs(types.daemonSet, "agent", noLiveness))).toEqual([
            ['DaemonSet "agent" container "http-go" has no livenessProbe.'],
        ]);
    });

    test("skips workloads rendered from third-party manifests, and other kinds", async () => {
        const bare = workload([container({ livenessProbe: undefined })]);
        const fromManifest = resourceArgs(types.daemonSet, "kube-flannel/kube-flannel-ds", bare, { parentTypes: ["kubernetes:yaml/v2:ConfigFile"] });
        expect(await check(workloadProbesAndRequests, fromManifest)).toEqual([]);
        const fromOwnComponent = resourceArgs(types.deployment, "http-go", bare, { parentTypes: ["kubeadm-gcp:app:HttpGo"] });
        expect(await check(workloadProbesAndRequests, fromOwnComponent)).toHaveLength(1);
        expect(await check(workloadProbesAndRequests, resourceArgs("kubernetes:helm.sh/v3:Release", "metallb", bare))).toEqual([]);
        expect(await check(workloadProbesAndRequests, resourceArgs("kubernetes:batch/v1:Job", "j", bare))).toEqual([]);
    });

    test("unknown values at preview pass", async () => {
        const unknownContainers = { metadata: {}, spec: { template: { spec: { containers: unknownValue.unknownArrayValue } } } };
        expect(await check(workloadProbesAndRequests, resourceArgs(types.deployment, "d", unknownContainers))).toEqual([]);
        const unknownRequest = workload([container({ resources: { requests: { cpu: unknownValue.unknownStringValue, memory: "32Mi" } } })]);
        expect(await check(workloadProbesAndRequests, resourceArgs(types.deployment, "d", unknownRequest))).toEqual([]);
    });

    test("parentTypesOfUrn reads the parent chain", () => {
        expect(parentTypesOfUrn("urn:pulumi:dev::p::a:b:C$kubernetes:yaml/v2:ConfigFile$kubernetes:apps/v1:DaemonSet::ns/x")).toEqual([
            "a:b:C",
            "kubernetes:yaml/v2:ConfigFile",
        ]);
        expect(parentTypesOfUrn("urn:pulumi:dev::p::kubernetes:apps/v1:Deployment::x")).toEqual([]);
    });
});

describe("loadbalancer-ip-reserved", () => {
    const ip = "203.0.113.50";
    const address = (value: unknown, name = "app-ip") => policyResource(types.address, name, { name, address: value, addressType: "EXTERNAL" });
    const svc = (props: Record<string, any>, name = "http-go") => policyResource(types.service, name, props);

    test("passes a LoadBalancer Service pinned to a reserved address (either annotation)", async () => {
        expect(await checkStack(loadBalancerIpReserved, stackArgs([address(ip), svc(service({ "metallb.io/loadBalancerIPs": ip }))]))).toEqual([]);
        expect(
            await checkStack(loadBalancerIpReserved, stackArgs([address(ip), svc(service({ "metallb.universe.tf/loadBalancerIPs": ip }))])),
        ).toEqual([]);
    });

    test("reports a LoadBalancer Service without the annotation", async () => {
        const s = svc(service(undefined));
        expect(await checkStack(loadBalancerIpReserved, stackArgs([address(ip), s]))).toEqual([
            [
                'Service "http-go" is of type LoadBalancer but has no metallb.io/loadBalancerIPs annotation; set it to the address of a gcp.compute.Address of this stack.',
                s.urn,
            ],
        ]);
    });

    test("reports an annotation whose address is not reserved in this stack", async () => {
        const s = svc(service({ "metallb.io/loadBalancerIPs": "198.51.100.9" }));
        expect(await checkStack(loadBalancerIpReserved, stackArgs([address(ip), s]))).toEqual([
            [
                `Service "http-go" asks MetalLB for 198.51.100.9, which is not the address of any gcp.compute.Address of this stack (reserved: ${ip}).`,
                s.urn,
            ],
        ]);
        const none = svc(service({ "metallb.io/loadBalancerIPs": ip }));
        expect(await checkStack(loadBalancerIpReserved, stackArgs([none]))).toEqual([
            [`Service "http-go" asks MetalLB for ${ip}, which is not the address of any gcp.compute.Address of this stack (reserved: none).`, none.urn],
        ]);
    });

    test("ignores other Service types", async () => {
        expect(await checkStack(loadBalancerIpReserved, stackArgs([svc(service(undefined, "ClusterIP")), svc(service(undefined, "NodePort"), "np")]))).toEqual([]);
        expect(await checkStack(loadBalancerIpReserved, stackArgs([svc({}, "bare")]))).toEqual([]);
    });

    test("unknown addresses or annotations at preview pass, without hiding other Services", async () => {
        const pinned = svc(service({ "metallb.io/loadBalancerIPs": unknownValue.unknownStringValue }));
        const unpinned = svc(service(undefined), "other");
        expect(await checkStack(loadBalancerIpReserved, stackArgs([address(ip), pinned, unpinned]))).toEqual([
            [
                'Service "other" is of type LoadBalancer but has no metallb.io/loadBalancerIPs annotation; set it to the address of a gcp.compute.Address of this stack.',
                unpinned.urn,
            ],
        ]);
        const known = svc(service({ "metallb.io/loadBalancerIPs": ip }));
        expect(await checkStack(loadBalancerIpReserved, stackArgs([address(unknownValue.unknownStringValue), known]))).toEqual([]);
        const unknownType = svc({ metadata: {}, spec: { type: unknownValue.unknownStringValue } });
        expect(await checkStack(loadBalancerIpReserved, stackArgs([unknownType]))).toEqual([]);
    });
});
