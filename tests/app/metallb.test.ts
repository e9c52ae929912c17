import { buildAll, fakeIp, Recorded, run, Run } from "./harness";

const T = {
    ns: "kubernetes:core/v1:Namespace",
    chart: "kubernetes:helm.sh/v4:Chart",
    pool: "kubernetes:metallb.io/v1beta1:IPAddressPool",
    l2: "kubernetes:metallb.io/v1beta1:L2Advertisement",
    bgp: "kubernetes:metallb.io/v1beta1:BGPAdvertisement",
};

describe("MetalLb (IPAM only) and MetricsServer", () => {
    let r: Run<any>;
    let metallb: Recorded;
    let metrics: Recorded;
    let pool: Recorded;
    beforeAll(async () => {
        r = await run((m) => buildAll(m));
        metallb = r.byType(T.chart).find((x) => x.parent === "k8s-metallb")!;
        metrics = r.byType(T.chart).find((x) => x.parent === "k8s-metrics")!;
        pool = r.one(T.pool);
    });

    test("MetalLB and metrics-server are helm.v4.Charts, whose objects an unreachable-cluster destroy can drop (a v3 Release cannot be)", () => {
        expect(r.byType("kubernetes:helm.sh/v3:Release")).toEqual([]);
        expect([metallb, metrics].map((c) => c.type)).toEqual([T.chart, T.chart]);
    });

    test("MetalLB: pinned chart from its Helm repository, awaited, into metallb-system", () => {
        expect(metallb.inputs).toMatchObject({
            chart: "metallb",
            version: "0.16.1",
            repositoryOpts: { repo: "https://metallb.github.io/metallb" },
            namespace: "metallb-system",
        });
        expect(metallb.inputs.skipAwait ?? false).toBe(false);
    });

    test("MetalLB: controller only — no speaker, no FRR-K8s", () => {
        expect(metallb.inputs.values).toEqual({
            speaker: { enabled: false },
            frrk8s: { enabled: false },
            crds: { validationFailurePolicy: "Ignore" },
        });
    });

    test("MetalLB: its namespace carries the pod-security labels MetalLB documents", () => {
        const ns = r.byType(T.ns).find((x) => x.parent === "k8s-metallb")!;
        expect(ns.inputs.metadata.name).toBe("metallb-system");
        expect(ns.inputs.metadata.labels).toEqual({
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/audit": "privileged",
            "pod-security.kubernetes.io/warn": "privileged",
        });
    });

    test("one pool holding exactly the reserved IP as a /32, never auto-assigned", () => {
        expect(pool.inputs.spec.addresses).toEqual([`${fakeIp("k8s-lb-address")}/32`]);
        expect(pool.inputs.spec.autoAssign).toBe(false);
        expect(pool.inputs.metadata.namespace).toBe("metallb-system");
        expect(r.result.poolName).toBe(pool.inputs.metadata.name);
    });

    test("the pool is created after every object of the MetalLB chart is ready (CRDs, webhook), by an explicit dependsOn", () => {
        expect(pool.dependsOn).toEqual([metallb.name]);
        expect(pool.dataDependencies).not.toContain(metallb.name);
    });

    test("no L2 or BGP advertisements: GCP routes the address, MetalLB only writes Service status", () => {
        expect(r.byType(T.l2)).toHaveLength(0);
        expect(r.byType(T.bgp)).toHaveLength(0);
        expect(r.resources.filter((x) => x.type.startsWith("kubernetes:metallb.io/"))).toEqual([pool]);
    });

    test("metrics-server: pinned chart, kube-system, insecure kubelet TLS and InternalIP only", () => {
        expect(metrics.inputs).toMatchObject({
            chart: "metrics-server",
            version: "3.13.0",
            repositoryOpts: { repo: "https://kubernetes-sigs.github.io/metrics-server/" },
            namespace: "kube-system",
        });
        expect(metrics.inputs.values.args).toEqual(["--kubelet-insecure-tls"]);
        const addressTypes = [...metrics.inputs.values.defaultArgs, ...metrics.inputs.values.args].filter((a: string) =>
            a.startsWith("--kubelet-preferred-address-types"),
        );
        // Once: the flag is a list, and a second occurrence would append rather than replace.
        expect(addressTypes).toEqual(["--kubelet-preferred-address-types=InternalIP"]);
        // The rest of the chart's defaults are kept.
        expect(metrics.inputs.values.defaultArgs).toEqual(
            expect.arrayContaining(["--cert-dir=/tmp", "--kubelet-use-node-status-port", "--metric-resolution=15s"]),
        );
    });
});

describe("MetalLb argument validation", () => {
    test("toHostCidr accepts a single IPv4 address (or its /32) and refuses the rest", async () => {
        await run((m) => {
            expect(m.metallb.toHostCidr("34.1.2.0")).toBe("34.1.2.0/32");
            expect(m.metallb.toHostCidr("34.1.2.3/32")).toBe("34.1.2.3/32");
            expect(() => m.metallb.toHostCidr("34.1.2.0/24")).toThrow(/not a single IPv4 address/);
            expect(() => m.metallb.toHostCidr("34.1.2.256")).toThrow(/not a single IPv4 address/);
            const provider = new m.k8s.Provider("p", { kubeconfig: "x" });
            expect(() => new m.metallb.MetalLb("x", { provider, addresses: [] })).toThrow(/addresses is empty/);
            expect(() => new m.metallb.MetalLb("y", { provider, addresses: ["10.0.0.0/8"] })).toThrow(/not a single IPv4 address/);
            return {};
        });
    });
});
