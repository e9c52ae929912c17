import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { clusterNamePattern } from "./config";

/**
 * Where Google Cloud's health-check probes come from. 35.191.0.0/16, 209.85.152.0/22 and
 * 209.85.204.0/22 are the ranges documented for external passthrough Network Load Balancers;
 * 130.211.0.0/22 is the prober range of Google's other load balancer types, admitted too so that
 * probes keep passing should Google widen the set (it only reaches kube-proxy's health port).
 */
export const HEALTH_CHECK_SOURCE_RANGES: readonly string[] = [
    "35.191.0.0/16",
    "209.85.152.0/22",
    "209.85.204.0/22",
    "130.211.0.0/22",
];

/** kube-proxy's health server (`healthzBindAddress`, default 0.0.0.0:10256) and its path. */
export const KUBE_PROXY_HEALTH_PORT = 10256;
export const KUBE_PROXY_HEALTH_PATH = "/healthz";

/** The port the world reaches the app on; the Service exposes the same port. */
export const HTTP_PORT = 80;

export interface AppLoadBalancerArgs {
    /** Prefix of every GCE name (already validated by the config: 1–20 chars, lowercase). */
    clusterName: string;
    /** Region of the address, health check, backend service and forwarding rule. */
    region: string;
    /** Zone of the workers; the unmanaged instance group lives there too. */
    zone: string;
    /** VPC the workers are attached to; the firewall rules are created on it. */
    network: gcp.compute.Network;
    /**
     * Every worker VM, in order (worker 1 first). Each gets its own membership in the instance
     * group, replaced whenever its VM is, so the group follows `workerCount` and VM replacements.
     * All must be in `zone`.
     */
    workerInstances: gcp.compute.Instance[];
    /** Network tag that every worker carries; the firewall rules target it. */
    workerTag: pulumi.Input<string>;
}

/**
 * A regional external passthrough Network Load Balancer in front of the workers, on a reserved
 * static IP. The load balancer keeps the packet's destination (the reserved IP); the guest agent
 * makes the VM accept it and kube-proxy, which knows the IP from the Service's
 * `status.loadBalancer` (written by MetalLB), forwards it to a pod. Health checks probe
 * kube-proxy's own health port, which under `externalTrafficPolicy: Cluster` is healthy on every
 * node whose kube-proxy works: exactly the nodes that can forward the traffic.
 */
export class AppLoadBalancer extends pulumi.ComponentResource {
    /** The reserved external IPv4 address (plain IP, no prefix length). */
    readonly address: pulumi.Output<string>;
    readonly staticAddress: gcp.compute.Address;
    readonly healthCheck: gcp.compute.RegionHealthCheck;
    readonly instanceGroup: gcp.compute.InstanceGroup;
    readonly memberships: gcp.compute.InstanceGroupMembership[];
    readonly backendService: gcp.compute.RegionBackendService;
    readonly forwardingRule: gcp.compute.ForwardingRule;
    readonly httpFirewall: gcp.compute.Firewall;
    readonly healthCheckFirewall: gcp.compute.Firewall;
    /**
     * What the traffic path is made of, as one string that changes whenever a part of it is
     * created, replaced or re-pointed: forwarding rule, backend service, each worker's membership
     * (with its VM's instance id), the HTTP and health-check rules. A check of the path takes it as
     * an input, so it waits for every part and re-runs after any change.
     */
    readonly trafficPath: pulumi.Output<string>;

    constructor(name: string, args: AppLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:network:AppLoadBalancer", name, {}, opts);
        validateArgs(args);

        const parent = { parent: this };
        const prefix = `${args.clusterName}-http`;

        this.staticAddress = new gcp.compute.Address(
            `${name}-address`,
            {
                name: `${prefix}-ip`,
                description: `Public IP of the http-go Service in cluster ${args.clusterName}`,
                region: args.region,
                addressType: "EXTERNAL",
                networkTier: "PREMIUM",
            },
            parent,
        );
        this.address = this.staticAddress.address;

        // Same cadence as the node health checks that GCP's cloud provider creates for
        // LoadBalancer Services on kube-proxy's port: a node leaves after ~24 s of failures and
        // comes back on the first success.
        this.healthCheck = new gcp.compute.RegionHealthCheck(
            `${name}-health`,
            {
                name: `${prefix}-hc`,
                description: "kube-proxy health on every worker",
                region: args.region,
                checkIntervalSec: 8,
                timeoutSec: 1,
                healthyThreshold: 1,
                unhealthyThreshold: 3,
                httpHealthCheck: { port: KUBE_PROXY_HEALTH_PORT, requestPath: KUBE_PROXY_HEALTH_PATH },
            },
            parent,
        );

        // Membership is one resource per worker rather than the group's `instances` list: a
        // replaced VM keeps its name, so the list would not change, while GCE drops the deleted VM
        // from the group and the new one would never be added back.
        this.instanceGroup = new gcp.compute.InstanceGroup(
            `${name}-workers`,
            {
                name: `${prefix}-workers`,
                description: "The cluster's workers, as load balancer backends",
                zone: args.zone,
                network: args.network.selfLink,
            },
            parent,
        );
        this.memberships = args.workerInstances.map(
            (worker, i) =>
                new gcp.compute.InstanceGroupMembership(
                    `${name}-member-${i + 1}`,
                    { zone: args.zone, instanceGroup: this.instanceGroup.name, instance: worker.selfLink },
                    // The provider's documented pattern: replace the membership with its VM. Never
                    // delete one: its id and its removeInstances call name the VM by name, which a
                    // recreated VM shares, so a replaced membership's delete (create-before-delete,
                    // at the end of the run) would take the new VM out of the group. GCE drops a
                    // deleted VM from its unmanaged groups itself, which is all a delete would do.
                    { parent: this, replacementTrigger: worker.instanceId, retainOnDelete: true },
                ),
        );

        this.backendService = new gcp.compute.RegionBackendService(
            `${name}-backend`,
            {
                name: `${prefix}-bs`,
                region: args.region,
                loadBalancingScheme: "EXTERNAL",
                protocol: "TCP",
                healthChecks: this.healthCheck.selfLink,
                // CONNECTION is the only balancing mode a passthrough load balancer accepts.
                backends: [{ group: this.instanceGroup.selfLink, balancingMode: "CONNECTION" }],
            },
            parent,
        );

        this.forwardingRule = new gcp.compute.ForwardingRule(
            `${name}-rule`,
            {
                name: `${prefix}-fr`,
                region: args.region,
                loadBalancingScheme: "EXTERNAL",
                networkTier: "PREMIUM",
                ipProtocol: "TCP",
                ports: [String(HTTP_PORT)],
                ipAddress: this.staticAddress.address,
                backendService: this.backendService.selfLink,
            },
            parent,
        );

        [this.httpFirewall, this.healthCheckFirewall] = this.firewallRules(name, prefix, args);
        this.trafficPath = describeTrafficPath(this, args.workerInstances);

        this.registerOutputs({
            address: this.address,
            forwardingRule: this.forwardingRule.selfLink,
            backendService: this.backendService.selfLink,
            instanceGroup: this.instanceGroup.selfLink,
        });
    }

    /** The two rules the traffic needs on the workers: HTTP to the reserved address, and the health checks. */
    private firewallRules(name: string, prefix: string, args: AppLoadBalancerArgs): [gcp.compute.Firewall, gcp.compute.Firewall] {
        const parent = { parent: this };
        // Only the reserved address is opened to the world: the workers' own external IPs (SSH,
        // node ports) stay closed to port 80.
        const http = new gcp.compute.Firewall(
            `${name}-allow-http`,
            {
                name: `${prefix}-allow-web`,
                description: `TCP ${HTTP_PORT} from anywhere to the load balancer's address only`,
                network: args.network.selfLink,
                direction: "INGRESS",
                allows: [{ protocol: "tcp", ports: [String(HTTP_PORT)] }],
                sourceRanges: ["0.0.0.0/0"],
                destinationRanges: [pulumi.interpolate`${this.staticAddress.address}/32`],
                targetTags: [args.workerTag],
            },
            parent,
        );

        const health = new gcp.compute.Firewall(
            `${name}-allow-health`,
            {
                name: `${prefix}-allow-hc`,
                description: "Google's health-check probers to kube-proxy's health port",
                network: args.network.selfLink,
                direction: "INGRESS",
                allows: [{ protocol: "tcp", ports: [String(KUBE_PROXY_HEALTH_PORT)] }],
                sourceRanges: [...HEALTH_CHECK_SOURCE_RANGES],
                targetTags: [args.workerTag],
            },
            parent,
        );
        return [http, health];
    }
}

/**
 * The traffic path as one string that changes whenever a part of it is created, replaced or
 * re-pointed. Creation times change when a part is recreated under the same name (its id would
 * not); the backend service's fingerprint changes with every update of it; a member's VM is
 * identified by its instance id, which changes when the VM is replaced.
 */
function describeTrafficPath(lb: AppLoadBalancer, workerInstances: gcp.compute.Instance[]): pulumi.Output<string> {
    const rule = (f: gcp.compute.Firewall) => ({
        id: f.id,
        created: f.creationTimestamp,
        sourceRanges: f.sourceRanges,
        destinationRanges: f.destinationRanges,
        allows: f.allows,
        targetTags: f.targetTags,
    });
    const fr = lb.forwardingRule;
    const bs = lb.backendService;
    return pulumi.jsonStringify({
        forwardingRule: { id: fr.id, created: fr.creationTimestamp, ipAddress: fr.ipAddress, ports: fr.ports },
        backendService: { id: bs.id, created: bs.creationTimestamp, fingerprint: bs.fingerprint },
        members: lb.memberships.map((m, i) => ({ id: m.id, instanceId: workerInstances[i].instanceId })),
        firewalls: [rule(lb.httpFirewall), rule(lb.healthCheckFirewall)],
    });
}

function validateArgs(args: AppLoadBalancerArgs): void {
    const problems: string[] = [];
    if (!clusterNamePattern.test(args.clusterName)) {
        problems.push(`clusterName "${args.clusterName}" must be 1-20 lowercase letters, digits or hyphens, starting with a letter`);
    }
    if (!args.zone.startsWith(`${args.region}-`)) {
        problems.push(`zone "${args.zone}" is not in region "${args.region}"`);
    }
    if (args.workerInstances.length === 0) {
        problems.push("workerInstances is empty: the load balancer needs at least one worker as backend");
    }
    if (problems.length > 0) {
        throw new Error(`AppLoadBalancer: ${problems.join("; ")}`);
    }
}
