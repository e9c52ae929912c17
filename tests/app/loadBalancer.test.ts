import { buildAll, fakeIp, fakeSelfLink, Recorded, run, Run } from "./harness";

const T = {
    address: "gcp:compute/address:Address",
    healthCheck: "gcp:compute/regionHealthCheck:RegionHealthCheck",
    group: "gcp:compute/instanceGroup:InstanceGroup",
    member: "gcp:compute/instanceGroupMembership:InstanceGroupMembership",
    backend: "gcp:compute/regionBackendService:RegionBackendService",
    rule: "gcp:compute/forwardingRule:ForwardingRule",
    firewall: "gcp:compute/firewall:Firewall",
    instance: "gcp:compute/instance:Instance",
};

const firewallFor = (r: Run<any>, port: string): Recorded => {
    const matches = r.byType(T.firewall).filter((f) => f.inputs.allows?.some((a: any) => a.ports?.includes(port)));
    expect(matches).toHaveLength(1);
    return matches[0];
};

describe("AppLoadBalancer (2 workers)", () => {
    let r: Run<any>;
    let ip: string;
    beforeAll(async () => {
        r = await run((m) => buildAll(m, 2));
        ip = fakeIp("k8s-lb-address");
    });

    test("reserves one regional, external, premium-tier address and exports its IP", () => {
        const address = r.one(T.address);
        expect(address.inputs).toMatchObject({ addressType: "EXTERNAL", networkTier: "PREMIUM", region: "us-central1", name: "k8s-test-http-ip" });
        expect(r.result.address).toBe(ip);
    });

    test("health-checks kube-proxy over HTTP on 10256 /healthz", () => {
        const hc = r.one(T.healthCheck);
        expect(hc.inputs.httpHealthCheck).toEqual({ port: 10256, requestPath: "/healthz" });
        expect(hc.inputs.region).toBe("us-central1");
        expect(hc.inputs.tcpHealthCheck).toBeUndefined();
    });

    test("the backend service is an EXTERNAL TCP passthrough over the workers' instance group, using that health check", () => {
        const bs = r.one(T.backend);
        expect(bs.inputs).toMatchObject({ loadBalancingScheme: "EXTERNAL", protocol: "TCP", region: "us-central1" });
        expect(bs.inputs.healthChecks).toBe(fakeSelfLink(T.healthCheck, r.one(T.healthCheck).name));
        expect(bs.inputs.backends).toEqual([{ group: fakeSelfLink(T.group, r.one(T.group).name), balancingMode: "CONNECTION" }]);
    });

    test("the forwarding rule sends TCP 80 on the reserved IP to the backend service", () => {
        const fr = r.one(T.rule);
        expect(fr.inputs).toMatchObject({ loadBalancingScheme: "EXTERNAL", ipProtocol: "TCP", ports: ["80"], ipAddress: ip, region: "us-central1" });
        expect(fr.inputs.backendService).toBe(fakeSelfLink(T.backend, r.one(T.backend).name));
        expect(fr.inputs.target).toBeUndefined();
    });

    test("firewall: TCP 80 from anywhere, but only to the reserved address, on workers only", () => {
        const fw = firewallFor(r, "80");
        expect(fw.inputs.allows).toEqual([{ protocol: "tcp", ports: ["80"] }]);
        expect(fw.inputs.sourceRanges).toEqual(["0.0.0.0/0"]);
        expect(fw.inputs.destinationRanges).toEqual([`${ip}/32`]);
        expect(fw.inputs.targetTags).toEqual(["k8s-test-worker"]);
        expect(fw.inputs.direction).toBe("INGRESS");
        expect(fw.inputs.network).toBe(fakeSelfLink("gcp:compute/network:Network", "net"));
    });

    test("firewall: TCP 10256 from exactly Google's health-check ranges, on workers only", () => {
        const fw = firewallFor(r, "10256");
        expect(fw.inputs.allows).toEqual([{ protocol: "tcp", ports: ["10256"] }]);
        expect([...fw.inputs.sourceRanges].sort()).toEqual(["130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22", "35.191.0.0/16"]);
        expect(fw.inputs.targetTags).toEqual(["k8s-test-worker"]);
        expect(fw.inputs.destinationRanges).toBeUndefined();
        expect(r.byType(T.firewall)).toHaveLength(2);
    });

    test("the instance group lives in the workers' zone; each worker is a member by a resource of its own", () => {
        const ig = r.one(T.group);
        expect(ig.inputs.zone).toBe("us-central1-a");
        // Not the group's own list: a replaced VM keeps its name, so the list would not change.
        expect(ig.inputs.instances).toBeUndefined();
        const members = r.byType(T.member);
        expect(members.map((m) => [m.name, m.inputs.instance, m.inputs.instanceGroup, m.inputs.zone])).toEqual(
            ["worker-0", "worker-1"].map((w, i) => [`k8s-lb-member-${i + 1}`, fakeSelfLink(T.instance, w), "k8s-test-http-workers", "us-central1-a"]),
        );
    });

    test("a membership is replaced with its VM: its replacementTrigger is the VM's instance id", () => {
        const members = r.byType(T.member);
        expect(members.map((m) => [m.replacementTrigger, m.replacementTriggerDependencies])).toEqual(
            ["worker-0", "worker-1"].map((w) => [`instance-id-${w}`, [w]]),
        );
    });

    test("the reachability check waits for every part of the path and re-runs when any changes", () => {
        const check = r.one("command:local:Command");
        const path = ["k8s-lb-rule", "k8s-lb-backend", "k8s-lb-member-1", "k8s-lb-member-2", "k8s-lb-allow-http", "k8s-lb-allow-health", "worker-0", "worker-1"];
        expect(check.propertyDependencies.triggers).toEqual(expect.arrayContaining(path));
    });

    test("GCE names are derived from the cluster name, unique, and valid (lowercase, hyphens, <= 63)", () => {
        const gce = r.resources.filter((x) => x.parent === "k8s-lb" && x.type !== T.member);
        expect(gce).toHaveLength(7);
        const names = gce.map((x) => x.inputs.name);
        expect(new Set(names).size).toBe(names.length);
        for (const n of names) {
            expect(n).toMatch(/^k8s-test-http-[a-z0-9-]+$/);
            expect(n.length).toBeLessThanOrEqual(63);
        }
        for (const x of gce) {
            expect(x.name.startsWith("k8s-lb-")).toBe(true);
        }
    });
});

describe("AppLoadBalancer follows workerCount", () => {
    test.each([1, 5])("%i worker(s): exactly they are members of the instance group", async (count) => {
        const r = await run((m) => buildAll(m, count));
        const workers = r.byType(T.instance).map((w) => fakeSelfLink(T.instance, w.name));
        expect(workers).toHaveLength(count);
        expect(r.byType(T.member).map((m) => m.inputs.instance)).toEqual(workers);
    });
});

describe("AppLoadBalancer argument validation", () => {
    test("refuses an empty worker list, a zone outside the region and a bad cluster name, naming each", async () => {
        await run((m) => {
            const network = new m.gcp.compute.Network("n", {});
            expect(
                () =>
                    new m.loadBalancer.AppLoadBalancer("lb", {
                        clusterName: "Bad_Name",
                        region: "us-central1",
                        zone: "europe-west1-b",
                        network,
                        workerInstances: [],
                        workerTag: "w",
                    }),
            ).toThrow(/clusterName "Bad_Name".*zone "europe-west1-b" is not in region "us-central1".*workerInstances is empty/);
            return {};
        });
    });
});
