import { isKubernetesObjectType, kubernetesObjectProblems, schemaSourceFor } from "../helpers/k8sSchema";
import { buildAll, fakeIp, run, Run } from "./harness";

describe("traffic path wiring (the composition index.ts uses)", () => {
    let r: Run<any>;
    const ip = fakeIp("k8s-lb-address");
    beforeAll(async () => {
        r = await run((m) => buildAll(m));
    });

    test("one reserved IP is used by the forwarding rule, the HTTP firewall, the pool (/32), the Service annotation and url", () => {
        expect(r.result.address).toBe(ip);
        expect(r.one("gcp:compute/forwardingRule:ForwardingRule").inputs.ipAddress).toBe(ip);
        const httpFirewall = r.byType("gcp:compute/firewall:Firewall").find((f) => f.inputs.destinationRanges)!;
        expect(httpFirewall.inputs.destinationRanges).toEqual([`${ip}/32`]);
        expect(r.one("kubernetes:metallb.io/v1beta1:IPAddressPool").inputs.spec.addresses).toEqual([`${ip}/32`]);
        expect(r.one("kubernetes:core/v1:Service").inputs.metadata.annotations["metallb.io/loadBalancerIPs"]).toBe(ip);
        expect(r.result.url).toBe(`http://${ip}/`);
    });

    test("every Kubernetes resource goes through the cluster provider passed in", () => {
        const k8sResources = r.resources.filter((x) => isKubernetesObjectType(x.type));
        // 2 namespaces, 2 Helm releases, the pool, Deployment, Service, PDB, HPA.
        expect(k8sResources.length).toBe(9);
        for (const x of k8sResources) {
            expect({ name: x.name, provider: x.provider }).toEqual({ name: x.name, provider: "cluster-k8s" });
        }
    });

    test("no GCP or command resource is given the Kubernetes provider", () => {
        for (const x of r.resources.filter((y) => y.type.startsWith("gcp:") || y.type.startsWith("command:"))) {
            expect({ name: x.name, provider: x.provider }).toEqual({ name: x.name, provider: undefined });
        }
    });

    test("every child is parented to its component and named after it", () => {
        const components: Record<string, string> = {
            "k8s-lb": "kubeadm-gcp:network:AppLoadBalancer",
            "k8s-metallb": "kubeadm-gcp:metallb:MetalLb",
            "k8s-metrics": "kubeadm-gcp:metrics:MetricsServer",
            "k8s-app": "kubeadm-gcp:app:HttpGoApp",
        };
        for (const [name, type] of Object.entries(components)) {
            expect(r.get(name).type).toBe(type);
            const children = r.resources.filter((x) => x.parent === name);
            expect(children.length).toBeGreaterThan(0);
            for (const child of children) {
                expect(child.name.startsWith(`${name}-`)).toBe(true);
            }
        }
        const orphans = r.resources.filter((x) => !x.parent && !["pulumi:providers:kubernetes", "gcp:compute/network:Network", "gcp:compute/instance:Instance", ...Object.values(components)].includes(x.type));
        expect(orphans).toEqual([]);
    });

    test("every Kubernetes object passes schema validation", () => {
        const objects = r.resources.filter((x) => isKubernetesObjectType(x.type));
        const sources = new Set(objects.map((x) => schemaSourceFor(x.type)));
        expect(sources).toEqual(new Set(["kubernetes-models", "api-server", "helm-values"]));
        expect(kubernetesObjectProblems(objects.map((x) => ({ type: x.type, inputs: x.inputs, name: x.name })))).toEqual([]);
    });
});
