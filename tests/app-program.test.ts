/**
 * The app and its traffic path as the real program (index.ts) declares them, under mocks.
 * Component-level details are in tests/app/; this file holds the whole program's wiring.
 */
import { HEALTH_CHECK_SOURCE_RANGES, KUBE_PROXY_HEALTH_PORT } from "../components/loadBalancer";
import { isKubernetesObjectType, kubernetesObjectProblems, schemaSourceFor } from "./helpers/k8sSchema";
import { fakeIp, ProgramRun, runProgram } from "./helpers/program";

const minimal = { "gcp:project": "test-project" };

let run: ProgramRun;
beforeAll(async () => {
    run = await runProgram(minimal);
});

const k8sResources = (r: ProgramRun) => r.resources.filter((x) => isKubernetesObjectType(x.type));

test("every Kubernetes object the program declares passes schema validation", () => {
    const objects = k8sResources(run).map((x) => ({ type: x.type, name: x.name, inputs: x.inputs }));
    expect(objects.length).toBeGreaterThanOrEqual(9);
    for (const o of objects) {
        expect({ type: o.type, schema: schemaSourceFor(o.type) }).toEqual({ type: o.type, schema: expect.any(String) });
    }
    expect(kubernetesObjectProblems(objects)).toEqual([]);
});

test("every Kubernetes resource uses the cluster's provider", () => {
    const provider = run.byType("pulumi:providers:kubernetes");
    expect(provider).toHaveLength(1);
    for (const x of k8sResources(run)) {
        expect({ name: x.name, provider: x.provider }).toEqual({ name: x.name, provider: provider[0].name });
    }
});

test("one reserved IP: the pool, the Service annotation, the forwarding rule and the url", () => {
    const addresses = run.byType("gcp:compute/address:Address").filter((a) => a.name.endsWith("-lb-ip") || a.inputs.name?.endsWith("-http-ip"));
    expect(addresses).toHaveLength(1);
    const ip = fakeIp(addresses[0].name);
    expect(run.byType("gcp:compute/forwardingRule:ForwardingRule").map((f) => f.inputs.ipAddress)).toEqual([ip]);
    expect(run.byType("kubernetes:metallb.io/v1beta1:IPAddressPool").map((p) => p.inputs.spec.addresses)).toEqual([[`${ip}/32`]]);
    const service = run.byType("kubernetes:core/v1:Service");
    expect(service).toHaveLength(1);
    expect(service[0].inputs.metadata.annotations["metallb.io/loadBalancerIPs"]).toBe(ip);
    // The control plane's address is a different one: the app never lands on the API endpoint.
    expect(ip).not.toBe(run.outputs.controlPlane.externalIp);
    expect(run.outputs.url).toBe(`http://${ip}/`);
});

test("the Service selects exactly the Deployment's pods on a port the container has", () => {
    const deployment = run.byType("kubernetes:apps/v1:Deployment")[0].inputs;
    const service = run.byType("kubernetes:core/v1:Service")[0].inputs;
    expect(service.spec.type).toBe("LoadBalancer");
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const containerPorts = deployment.spec.template.spec.containers.flatMap((c: any) => c.ports.map((p: any) => p.name));
    for (const port of service.spec.ports) {
        expect(containerPorts).toContain(port.targetPort);
    }
    expect(deployment.spec.template.spec.containers[0].image).toBe("docker.io/gasbugs/http-go:latest");
});

test("the health check probes kube-proxy, and the firewall admits Google's health-check ranges to it", () => {
    const hc = run.byType("gcp:compute/regionHealthCheck:RegionHealthCheck");
    expect(hc.map((h) => [h.inputs.httpHealthCheck.port, h.inputs.httpHealthCheck.requestPath])).toEqual([[10256, "/healthz"]]);
    expect(KUBE_PROXY_HEALTH_PORT).toBe(10256);
    const hcRule = run.byType("gcp:compute/firewall:Firewall").find((f) => f.inputs.allows[0].ports?.includes("10256") && f.inputs.sourceRanges)!;
    expect([...hcRule.inputs.sourceRanges].sort()).toEqual(["130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22", "35.191.0.0/16"]);
    expect([...HEALTH_CHECK_SOURCE_RANGES].sort()).toEqual([...hcRule.inputs.sourceRanges].sort());
    expect(hcRule.inputs.targetTags).toEqual(["k8s-dev-worker"]);
});

test.each([1, 2, 5])("the load balancer's instance group has exactly the %i workers as members", async (count) => {
    const r = count === 2 ? run : await runProgram({ ...minimal, workerCount: String(count) });
    const groups = r.byType("gcp:compute/instanceGroup:InstanceGroup");
    expect(groups).toHaveLength(1);
    const members = r.byType("gcp:compute/instanceGroupMembership:InstanceGroupMembership");
    const workerLinks = r
        .byType("gcp:compute/instance:Instance")
        .filter((i) => i.inputs.name.includes("-worker-"))
        .map((i) => `selfLink/${i.name}`)
        .sort();
    expect(workerLinks).toHaveLength(count);
    expect(members.map((m) => m.inputs.instance).sort()).toEqual(workerLinks);
    expect(members.every((m) => m.inputs.instanceGroup === groups[0].inputs.name)).toBe(true);
});

test("the app waits for the cluster: its resources depend on every node being Ready through the provider", () => {
    const provider = run.byType("pulumi:providers:kubernetes")[0];
    expect(provider.dependsOn).toContain("k8s-dev-cluster-cluster-ready");
});
