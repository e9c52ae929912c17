// The schema helper must catch real mistakes, or "every object passes" would prove nothing.
import { helmReleaseProblems, kubernetesObjectProblems, schemaSourceFor, validateKubernetesObject } from "../helpers/k8sSchema";

const deployment = () => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default", labels: { app: "web" } },
    spec: {
        selector: { matchLabels: { app: "web" } },
        template: {
            metadata: { labels: { app: "web" } },
            spec: { containers: [{ name: "web", image: "nginx", ports: [{ name: "http", containerPort: 80 }] }] },
        },
    },
});

const pool = () => ({
    apiVersion: "metallb.io/v1beta1",
    kind: "IPAddressPool",
    metadata: { name: "p", namespace: "metallb-system" },
    spec: { addresses: ["203.0.113.5/32"], autoAssign: false },
});

describe("validateKubernetesObject", () => {
    test("accepts a valid Deployment and names the schema used", () => {
        expect(() => validateKubernetesObject("kubernetes:apps/v1:Deployment", deployment())).not.toThrow();
        expect(schemaSourceFor("kubernetes:apps/v1:Deployment")).toBe("kubernetes-models");
        expect(schemaSourceFor("kubernetes:core/v1:Service")).toBe("kubernetes-models");
    });

    test("rejects wrong types, missing required fields and bad enums from the OpenAPI schema", () => {
        const wrongType = deployment();
        (wrongType.spec.template.spec.containers[0].ports[0] as any).containerPort = "80";
        expect(() => validateKubernetesObject("kubernetes:apps/v1:Deployment", wrongType)).toThrow(/containerPort must be integer/);

        const missing = deployment();
        delete (missing.spec.template.spec.containers[0] as any).name;
        expect(() => validateKubernetesObject("kubernetes:apps/v1:Deployment", missing)).toThrow(/containers\/0 must have required property name/);

        const service = { metadata: { name: "s" }, spec: { ports: [{ port: 80, protocol: "HTTP" }] } };
        expect(() => validateKubernetesObject("kubernetes:core/v1:Service", service)).toThrow(/protocol must be equal to one of the allowed values/);
    });

    test("rejects an apiVersion or kind that disagrees with the type token, and types it has no schema for", () => {
        expect(kubernetesObjectProblems([{ type: "kubernetes:apps/v1:Deployment", inputs: { ...deployment(), apiVersion: "apps/v1beta1" } }])).toEqual([
            expect.stringMatching(/apiVersion is "apps\/v1beta1", expected apps\/v1/),
        ]);
        expect(kubernetesObjectProblems([{ type: "kubernetes:example.com/v1:Widget", inputs: {} }])).toEqual([
            expect.stringMatching(/no schema known for example.com\/v1 Widget/),
        ]);
    });

    test("custom resources are left to the real API server of the control-plane tier, which has their CRDs", () => {
        const type = "kubernetes:metallb.io/v1beta1:IPAddressPool";
        expect(schemaSourceFor(type)).toBe("api-server");
        // Not judged here at all: tests/controlplane/programObjects.test.ts applies it against MetalLB's CRDs.
        expect(kubernetesObjectProblems([{ type, inputs: { ...pool(), spec: { autoAssign: "false" } } }])).toEqual([]);
    });

    test("Helm releases: pinned version, https repository, and value keys the chart has", () => {
        const good = { chart: "metallb", version: "0.16.1", namespace: "metallb-system", repositoryOpts: { repo: "https://metallb.github.io/metallb" }, values: { speaker: { enabled: false } } };
        expect(helmReleaseProblems(good)).toEqual([]);
        expect(helmReleaseProblems({ ...good, version: "^0.16" })).toEqual([expect.stringMatching(/must pin an exact chart version/)]);
        expect(helmReleaseProblems({ ...good, repositoryOpts: { repo: "http://x" } })).toEqual([expect.stringMatching(/https chart repository/)]);
        expect(helmReleaseProblems({ ...good, values: { speakers: { enabled: false } } })).toEqual(
            expect.arrayContaining([expect.stringMatching(/values.speakers is not a value of chart metallb/)]),
        );
        expect(helmReleaseProblems({ ...good, values: { speaker: { enabled: "false" } } })).toEqual([expect.stringMatching(/speaker.enabled must be boolean/)]);
        expect(helmReleaseProblems({ ...good, chart: "metrics-server", values: { args: "--kubelet-insecure-tls" } })).toEqual([
            expect.stringMatching(/values.args must be string\[\]/),
        ]);
    });
});
