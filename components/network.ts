import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { parseCidr } from "./config";

/** Network tags that scope the firewall rules to the cluster's VMs by role. */
export interface NodeTags {
    /** Every node of the cluster. */
    node: string;
    controlPlane: string;
    worker: string;
}

export interface ClusterNetworkArgs {
    /** Prefix of every resource name (`clusterName` config). */
    clusterName: string;
    region: string;
    /** Range of the nodes' subnet. */
    subnetCidr: string;
    /** Who may SSH to the nodes (the Pulumi host must be among them to provision). */
    sshSourceRanges: string[];
    /** Who may reach the API server on 6443 (the Pulumi host must be among them to deploy the app). */
    apiSourceRanges: string[];
}

/** Ports the nodes open to each other, and why. Nothing else is reachable between them. */
export const intraClusterPorts = {
    tcp: [
        "6443", // kube-apiserver: kubelets, kube-proxy, pods (masqueraded to the node address)
        "2379-2380", // etcd client and peer
        "10250", // kubelet API: logs, exec, metrics-server
        "10256", // kube-proxy health
        "10257", // kube-controller-manager
        "10259", // kube-scheduler
    ],
    udp: [
        "8472", // Flannel VXLAN: all pod-to-pod traffic between nodes travels inside it
    ],
} as const;

export const sshPort = "22";
export const apiServerPort = "6443";

/**
 * A dedicated VPC for one cluster: one subnet and firewall rules scoped by network tags.
 * Nodes talk to each other on the Kubernetes ports only (and the control plane to the workers
 * on SSH); SSH and the API server are open only to the configured ranges. Nothing else is open.
 */
export class ClusterNetwork extends pulumi.ComponentResource {
    readonly network: gcp.compute.Network;
    readonly subnet: gcp.compute.Subnetwork;
    readonly tags: NodeTags;
    /**
     * The rules provisioning and teardown need: SSH (22) for every remote command and drain,
     * the API server (6443) for the Kubernetes provider, intra-cluster traffic for the cluster
     * itself. Whatever runs on the nodes must depend on them (the VMs do), so that `destroy`
     * removes them only after everything that needs them is gone.
     */
    readonly clusterRules: gcp.compute.Firewall[];

    constructor(name: string, args: ClusterNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:network:ClusterNetwork", name, {}, opts);
        validateNetworkArgs(args);
        const prefix = args.clusterName;
        this.tags = { node: `${prefix}-node`, controlPlane: `${prefix}-control-plane`, worker: `${prefix}-worker` };

        this.network = new gcp.compute.Network(
            `${name}-vpc`,
            {
                name: `${prefix}-vpc`,
                description: `Kubernetes cluster ${prefix}`,
                autoCreateSubnetworks: false,
                routingMode: "REGIONAL",
            },
            { parent: this },
        );

        this.subnet = new gcp.compute.Subnetwork(
            `${name}-subnet`,
            {
                name: `${prefix}-nodes`,
                network: this.network.id,
                region: args.region,
                ipCidrRange: args.subnetCidr,
                privateIpGoogleAccess: true,
            },
            { parent: this },
        );

        const intraCluster = new gcp.compute.Firewall(
            `${name}-intra-cluster`,
            {
                name: `${prefix}-intra-cluster`,
                description: "Kubernetes control-plane, kubelet, kube-proxy and Flannel VXLAN traffic between nodes",
                network: this.network.id,
                direction: "INGRESS",
                sourceTags: [this.tags.node],
                targetTags: [this.tags.node],
                allows: [
                    { protocol: "tcp", ports: [...intraClusterPorts.tcp] },
                    { protocol: "udp", ports: [...intraClusterPorts.udp] },
                    { protocol: "icmp" },
                ],
            },
            { parent: this },
        );

        const ssh = new gcp.compute.Firewall(
            `${name}-ssh`,
            {
                name: `${prefix}-ssh`,
                description: "SSH for provisioning and operators (sshSourceRanges)",
                network: this.network.id,
                direction: "INGRESS",
                sourceRanges: args.sshSourceRanges,
                targetTags: [this.tags.node],
                allows: [{ protocol: "tcp", ports: [sshPort] }],
            },
            { parent: this },
        );

        // Pulumi reaches the workers through the control plane at their internal IPs
        // (docs/node-access.md), whatever sshSourceRanges allows from outside.
        const sshFromControlPlane = new gcp.compute.Firewall(
            `${name}-ssh-from-control-plane`,
            {
                name: `${prefix}-ssh-from-control-plane`,
                description: "SSH from the control plane to the workers (Pulumi's proxy)",
                network: this.network.id,
                direction: "INGRESS",
                sourceTags: [this.tags.controlPlane],
                targetTags: [this.tags.worker],
                allows: [{ protocol: "tcp", ports: [sshPort] }],
            },
            { parent: this },
        );

        const apiServer = new gcp.compute.Firewall(
            `${name}-api-server`,
            {
                name: `${prefix}-api-server`,
                description: "Kubernetes API server for kubectl and Pulumi (apiSourceRanges)",
                network: this.network.id,
                direction: "INGRESS",
                sourceRanges: args.apiSourceRanges,
                targetTags: [this.tags.controlPlane],
                allows: [{ protocol: "tcp", ports: [apiServerPort] }],
            },
            { parent: this },
        );

        this.clusterRules = [ssh, sshFromControlPlane, apiServer, intraCluster];

        this.registerOutputs({ network: this.network.id, subnet: this.subnet.id });
    }
}

function validateNetworkArgs(args: ClusterNetworkArgs): void {
    for (const [key, ranges] of [
        ["sshSourceRanges", args.sshSourceRanges],
        ["apiSourceRanges", args.apiSourceRanges],
        ["subnetCidr", [args.subnetCidr]],
    ] as const) {
        if (ranges.length === 0 || ranges.some((r) => !parseCidr(r))) {
            throw new Error(`ClusterNetwork: ${key} must be a non-empty list of IPv4 CIDR blocks, got ${JSON.stringify(ranges)}`);
        }
    }
}
