/**
 * Wiring of the GCP infrastructure (network, firewall, VMs, SSH), from the real program under mocks.
 */
import { hostAddress } from "../components/config";
import { intraClusterPorts } from "../components/network";
import { nodeServiceAccountRoles } from "../components/nodes";
import { versions } from "../components/versions";
import { fakeIp, ProgramRun, runProgram, transitiveDependencies } from "./helpers/program";

const minimal = { "gcp:project": "test-project" };

let run: ProgramRun;
beforeAll(async () => {
    run = await runProgram(minimal);
});

const instances = (r: ProgramRun) => r.byType("gcp:compute/instance:Instance");
const firewalls = (r: ProgramRun) => r.byType("gcp:compute/firewall:Firewall");

describe("nodes", () => {
    test("default config: one control plane and two e2-medium workers, named for the stack", () => {
        expect(instances(run).map((i) => i.inputs.name).sort()).toEqual([
            "k8s-dev-control-plane",
            "k8s-dev-worker-1",
            "k8s-dev-worker-2",
        ]);
        for (const vm of instances(run)) {
            expect(vm.inputs.machineType).toBe("e2-medium");
            expect(vm.inputs.zone).toBe("us-central1-a");
        }
    });

    test.each([1, 5])("workerCount %i gives that many workers", async (count) => {
        const r = await runProgram({ ...minimal, workerCount: String(count), machineType: "n2-standard-2" });
        const names = instances(r).map((i) => i.inputs.name);
        expect(names.filter((n) => n.includes("-worker-"))).toHaveLength(count);
        expect(names.filter((n) => n.endsWith("-control-plane"))).toHaveLength(1);
        expect(instances(r).every((i) => i.inputs.machineType === "n2-standard-2")).toBe(true);
        expect(r.outputs.workers).toHaveLength(count);
    });

    test("every VM: Ubuntu 24.04 LTS, balanced disk, Shielded VM, an account of its role, role tags", () => {
        const accounts = run.byType("gcp:serviceaccount/account:Account").map((a) => a.inputs.accountId).sort();
        expect(accounts).toEqual(["k8s-dev-control", "k8s-dev-nodes"]);
        const emailOf = (id: string) => `${id}@test-project.iam.gserviceaccount.com`;
        for (const vm of instances(run)) {
            const role = vm.inputs.name.endsWith("control-plane") ? "control-plane" : "worker";
            expect(vm.inputs.bootDisk.initializeParams).toEqual({ image: "ubuntu-os-cloud/ubuntu-2404-lts-amd64", size: 30, type: "pd-balanced" });
            expect(vm.inputs.shieldedInstanceConfig).toEqual({ enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true });
            // Only the control plane runs as the account that may write the etcd snapshots.
            expect(vm.inputs.serviceAccount.email).toBe(emailOf(role === "control-plane" ? "k8s-dev-control" : "k8s-dev-nodes"));
            expect(vm.inputs.serviceAccount.email).not.toMatch(/-compute@developer\.gserviceaccount\.com$/);
            expect(vm.inputs.tags).toEqual(["k8s-dev-node", `k8s-dev-${role}`]);
            expect(vm.inputs.networkInterfaces[0].subnetwork).toBeDefined();
            expect(vm.inputs.networkInterfaces[0].network).toBeUndefined();
        }
        expect(versions.osImage).toBe("ubuntu-os-cloud/ubuntu-2404-lts-amd64");
    });

    test("in the project, both accounts only write logs and metrics (no storage role: the bucket grants its own)", () => {
        const bindings = run.byType("gcp:projects/iAMMember:IAMMember");
        expect([...nodeServiceAccountRoles].sort()).toEqual(["roles/logging.logWriter", "roles/monitoring.metricWriter"]);
        for (const account of ["k8s-dev-nodes", "k8s-dev-control"]) {
            const mine = bindings.filter((b) => b.inputs.member === `serviceAccount:${account}@test-project.iam.gserviceaccount.com`);
            expect(mine.map((b) => b.inputs.role).sort()).toEqual([...nodeServiceAccountRoles].sort());
        }
        expect(bindings).toHaveLength(2 * nodeServiceAccountRoles.length);
    });

    test("the control plane uses the reserved static IP; workers get ephemeral ones", () => {
        const addresses = run.byType("gcp:compute/address:Address").filter((a) => a.inputs.name === "k8s-dev-api");
        expect(addresses).toHaveLength(1);
        const apiIp = fakeIp(addresses[0].name);
        const cp = instances(run).find((i) => i.inputs.name === "k8s-dev-control-plane")!;
        expect(cp.inputs.networkInterfaces[0].accessConfigs[0].natIp).toBe(apiIp);
        for (const w of instances(run).filter((i) => i.inputs.name.includes("worker"))) {
            expect(w.inputs.networkInterfaces[0].accessConfigs[0].natIp).toBeUndefined();
        }
        expect(run.outputs.apiEndpoint).toBe(`https://${apiIp}:6443`);
        expect(run.outputs.controlPlane).toEqual({ name: "k8s-dev-control-plane", internalIp: expect.any(String), externalIp: apiIp });
    });

    test("the control plane keeps a reserved internal address (workers, kube-proxy and cluster-info name it): the subnet's first on a new stack", () => {
        const internal = run.byType("gcp:compute/address:Address").filter((a) => a.inputs.addressType === "INTERNAL");
        expect(internal.map((a) => [a.inputs.name, a.inputs.address])).toEqual([["k8s-dev-control-plane", "10.240.0.2"]]);
        expect(internal[0].propertyDependencies.subnetwork).toEqual(["k8s-dev-network-subnet"]);
        const cp = instances(run).find((i) => i.inputs.name === "k8s-dev-control-plane")!;
        expect(cp.inputs.networkInterfaces[0].networkIp).toBe("10.240.0.2");
        for (const w of instances(run).filter((i) => i.inputs.name.includes("worker"))) {
            expect(w.inputs.networkInterfaces[0].networkIp).toBeUndefined();
        }
    });

    test("a stack made before the reservation reserves the address its control plane has (no new VM)", async () => {
        const r = await runProgram({ ...minimal, subnetCidr: "10.10.0.0/24" }, "dev", undefined, {
            controlPlane: { name: "k8s-dev-control-plane", internalIp: "10.10.0.5", externalIp: "203.0.113.10" },
        });
        const internal = r.byType("gcp:compute/address:Address").find((a) => a.inputs.addressType === "INTERNAL")!;
        expect(internal.inputs.address).toBe("10.10.0.5");
        expect(instances(r).find((i) => i.inputs.name === "k8s-dev-control-plane")!.inputs.networkInterfaces[0].networkIp).toBe("10.10.0.5");
        expect(hostAddress("10.10.0.0/24", 2)).toBe("10.10.0.2");
        expect(hostAddress("172.16.254.0/23", 258)).toBe("172.16.255.2");
    });

    test("SSH: the stack's ED25519 key in metadata, OS Login off, project keys blocked, guest attributes on", () => {
        const keys = run.byType("tls:index/privateKey:PrivateKey").filter((k) => k.parent === "k8s-dev-nodes");
        expect(keys).toHaveLength(1);
        expect(keys[0].inputs.algorithm).toBe("ED25519");
        for (const vm of instances(run)) {
            expect(vm.inputs.metadata).toEqual({
                "ssh-keys": "kubeadm:ssh-ed25519 AAAAfakepublickey kubeadm",
                "enable-oslogin": "FALSE",
                "block-project-ssh-keys": "TRUE",
                "enable-guest-attributes": "TRUE",
            });
        }
        expect(run.outputs.ssh).toContain(`kubeadm@${run.outputs.controlPlane.externalIp}`);
    });

    test("every node has a readiness command with generous dial retries, re-run when its VM is replaced", () => {
        const ready = run.byType("command:remote:Command").filter((c) => c.name.endsWith("-ready") && !c.name.endsWith("cluster-ready"));
        expect(ready).toHaveLength(3);
        for (const r of ready) {
            expect(r.inputs.connection.user).toBe("kubeadm");
            expect(r.inputs.connection.dialErrorLimit).toBeGreaterThanOrEqual(30);
            expect(r.inputs.triggers[0]).toMatch(/^instance-id-/);
            expect(r.secretInputs).toContain("connection");
        }
    });
});

describe("network and firewall", () => {
    test("a dedicated VPC without auto subnets and one subnet", () => {
        const vpcs = run.byType("gcp:compute/network:Network");
        expect(vpcs).toHaveLength(1);
        expect(vpcs[0].inputs.autoCreateSubnetworks).toBe(false);
        const subnets = run.byType("gcp:compute/subnetwork:Subnetwork");
        expect(subnets).toHaveLength(1);
        expect(subnets[0].inputs).toMatchObject({ ipCidrRange: "10.240.0.0/24", region: "us-central1" });
    });

    test("nodes reach each other on the Kubernetes ports and Flannel's VXLAN only", () => {
        const internal = firewalls(run).find((f) => f.inputs.name === "k8s-dev-intra-cluster")!;
        expect(internal.inputs.sourceTags).toEqual(["k8s-dev-node"]);
        expect(internal.inputs.targetTags).toEqual(["k8s-dev-node"]);
        expect(internal.inputs.sourceRanges).toBeUndefined();
        expect(internal.inputs.allows).toEqual([
            { protocol: "tcp", ports: ["6443", "2379-2380", "10250", "10256", "10257", "10259"] },
            { protocol: "udp", ports: ["8472"] },
            { protocol: "icmp" },
        ]);
        expect(intraClusterPorts.udp).toContain("8472");
    });

    test("SSH and the API server are open only to the configured ranges", async () => {
        const r = await runProgram({ ...minimal, sshSourceRanges: '["203.0.113.7/32"]', apiSourceRanges: '["198.51.100.0/24"]' });
        const ssh = firewalls(r).find((f) => f.inputs.name === "k8s-dev-ssh")!;
        expect(ssh.inputs).toMatchObject({ sourceRanges: ["203.0.113.7/32"], targetTags: ["k8s-dev-node"], allows: [{ protocol: "tcp", ports: ["22"] }] });
        const api = firewalls(r).find((f) => f.inputs.name === "k8s-dev-api-server")!;
        expect(api.inputs).toMatchObject({ sourceRanges: ["198.51.100.0/24"], targetTags: ["k8s-dev-control-plane"], allows: [{ protocol: "tcp", ports: ["6443"] }] });
        // With narrowed ranges, the only rule open to the internet is the app's HTTP port.
        const open = firewalls(r).filter((f) => (f.inputs.sourceRanges ?? []).includes("0.0.0.0/0"));
        expect(open.map((f) => f.inputs.allows)).toEqual(open.map(() => [{ protocol: "tcp", ports: ["80"] }]));
    });

    test("by default SSH and the API server are open to the world, as Pulumi.yaml documents", () => {
        const world = firewalls(run)
            .filter((f) => (f.inputs.sourceRanges ?? []).includes("0.0.0.0/0"))
            .map((f) => f.inputs.allows[0].ports[0])
            .sort();
        expect(world).toEqual(["22", "6443", "80"]);
    });

    test("every firewall rule is attached to the cluster's own network", () => {
        const vpc = run.byType("gcp:compute/network:Network")[0].name;
        expect(firewalls(run)).toHaveLength(6);
        for (const f of firewalls(run)) {
            expect([`${vpc}-id`, `selfLink/${vpc}`]).toContain(f.inputs.network);
            expect(f.inputs.targetTags?.length).toBeGreaterThan(0);
        }
    });
});

describe("structure", () => {
    test("every resource is parented to a component, and named after it", () => {
        const components = new Set(run.resources.filter((r) => r.type.startsWith("kubeadm-gcp:")).map((r) => r.name));
        expect(components.size).toBeGreaterThanOrEqual(4);
        for (const r of run.resources) {
            // The program's read of its own last deployment (index.ts) comes before any component.
            if (r.type.startsWith("kubeadm-gcp:") || r.type === "pulumi:pulumi:StackReference") {
                continue;
            }
            expect({ name: r.name, parentIsComponent: r.parent !== undefined && components.has(r.parent) }).toEqual({ name: r.name, parentIsComponent: true });
            expect(r.name.startsWith(`${r.parent}-`)).toBe(true);
        }
    });

    test("secrets stay secret: SSH key and kubeconfig outputs", () => {
        expect(run.secretOutputs).toEqual(expect.arrayContaining(["sshPrivateKey", "kubeconfig"]));
        expect(run.secretOutputs).not.toContain("apiEndpoint");
    });

    test("two evaluations of the program declare identical resources and inputs (previews do not churn)", async () => {
        const again = await runProgram(minimal);
        const view = (r: ProgramRun) => r.resources.map((x) => ({ type: x.type, name: x.name, inputs: x.inputs })).sort((a, b) => a.name.localeCompare(b.name));
        expect(view(again)).toEqual(view(run));
    });

    test("bad config fails before any resource is created", async () => {
        await expect(runProgram({ ...minimal, workerCount: "-1" })).rejects.toThrow(/workerCount: "-1" is not valid/);
    });
});

describe("destroy order", () => {
    // Pulumi deletes a resource only after everything that depends on it. A drain dials SSH, the
    // Kubernetes provider dials the API server, and the cluster needs its own traffic while its
    // objects are deleted: these rules must outlive every command and every Kubernetes object.
    const neededAtDelete = ["k8s-dev-network-ssh", "k8s-dev-network-api-server", "k8s-dev-network-intra-cluster"];

    test("every remote command and every Kubernetes resource depends on the SSH, API and intra-cluster rules", () => {
        const needy = run.resources.filter((r) => r.custom && (r.type.startsWith("command:remote:") || r.type.startsWith("kubernetes:") || r.type === "pulumi:providers:kubernetes"));
        expect(needy.length).toBeGreaterThan(15);
        for (const r of needy) {
            const deps = transitiveDependencies(run, r.name);
            expect({ resource: r.name, missing: neededAtDelete.filter((rule) => !deps.has(rule)) }).toEqual({ resource: r.name, missing: [] });
        }
    });

    test("the rules themselves depend on nothing that reaches the nodes (no cycle, first created)", () => {
        for (const rule of neededAtDelete) {
            const deps = [...transitiveDependencies(run, rule)];
            expect(deps.filter((d) => !/-network-vpc$/.test(d))).toEqual([]);
        }
    });
});
