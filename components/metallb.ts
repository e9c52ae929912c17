import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { kubernetesNamePattern, parseCidr } from "./config";
import { helmRepos, versions } from "./versions";

/** Where MetalLB runs; its documentation and webhook configuration assume this name. */
export const METALLB_NAMESPACE = "metallb-system";

/** MetalLB's address pool API, as served by the CRDs of the pinned chart. */
export const IP_ADDRESS_POOL_API_VERSION = "metallb.io/v1beta1";

export interface MetalLbArgs {
    /** The cluster's provider; every object below goes through it. */
    provider: k8s.Provider;
    /**
     * The external IPv4 addresses MetalLB may hand out, each becoming a /32 in the pool. Here:
     * the load balancer's reserved address, so a Service can only get the IP GCP routes to it.
     */
    addresses: pulumi.Input<string>[];
    /** Name of the IPAddressPool; Services ask for it by the `metallb.io/address-pool` annotation. */
    poolName?: string;
}

/**
 * MetalLB as IP address management only: its controller watches LoadBalancer Services and writes
 * the address they ask for into `status.loadBalancer.ingress`, which is what kube-proxy needs to
 * route the address and what Pulumi waits for. The speaker (ARP/BGP announcements) and FRR-K8s
 * are not installed: on GCE the forwarding rule, not the cluster, steers the address to the nodes,
 * and announcements from inside a VPC would go nowhere. So there is no L2Advertisement or
 * BGPAdvertisement either.
 */
export class MetalLb extends pulumi.ComponentResource {
    readonly namespace: k8s.core.v1.Namespace;
    readonly chart: k8s.helm.v4.Chart;
    readonly pool: k8s.apiextensions.CustomResource;
    /** The pool's name, resolved only once the pool exists (a data link for the Service). */
    readonly poolName: pulumi.Output<string>;

    constructor(name: string, args: MetalLbArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:metallb:MetalLb", name, {}, opts);
        const poolName = args.poolName ?? "gcp-reserved";
        validateArgs(args, poolName);
        const provider = args.provider;

        // Created here rather than by Helm's createNamespace so that it carries the pod-security
        // labels MetalLB's installation guide asks for (its speaker needs host networking if ever
        // enabled) and so that Pulumi deletes it with the stack.
        this.namespace = new k8s.core.v1.Namespace(
            `${name}-ns`,
            {
                metadata: {
                    name: METALLB_NAMESPACE,
                    labels: {
                        "pod-security.kubernetes.io/enforce": "privileged",
                        "pod-security.kubernetes.io/audit": "privileged",
                        "pod-security.kubernetes.io/warn": "privileged",
                    },
                },
            },
            { parent: this, provider },
        );

        // helm.v4.Chart, not helm.v3.Release: the chart's objects are ordinary Kubernetes
        // resources in the state, so `destroy` of a stack whose cluster is already gone can drop
        // them (PULUMI_K8S_DELETE_UNREACHABLE, tools/destroy-unreachable.sh), which the provider
        // refuses for a Release. Pulumi awaits every object (the controller's Deployment
        // included), and a resource that depends on the chart waits for all of them.
        this.chart = new k8s.helm.v4.Chart(
            `${name}-chart`,
            {
                chart: "metallb",
                version: versions.metallbChart,
                repositoryOpts: { repo: helmRepos.metallb },
                namespace: this.namespace.metadata.name,
                values: {
                    speaker: { enabled: false },
                    frrk8s: { enabled: false },
                    // The webhook answers only once the controller has its certificate, which can
                    // be a moment after its Deployment is ready. With Ignore, the pool below is
                    // never refused for that race (one `pulumi up` must be enough); the pool is
                    // checked against MetalLB's CRD schema by the API server and by our tests.
                    crds: { validationFailurePolicy: "Ignore" },
                },
            },
            { parent: this, provider },
        );

        // The pool's kind is defined by the chart's CRDs and checked by its webhook, and nothing in
        // the pool's inputs refers to the chart, so the ordering is explicit. The chart is a remote
        // component: depending on it waits for all of its objects (@pulumi/pulumi runtime/dependsOn.ts).
        this.pool = new k8s.apiextensions.CustomResource(
            `${name}-pool`,
            {
                apiVersion: IP_ADDRESS_POOL_API_VERSION,
                kind: "IPAddressPool",
                metadata: { name: poolName, namespace: this.namespace.metadata.name },
                spec: {
                    addresses: args.addresses.map((address) => pulumi.output(address).apply(toHostCidr)),
                    // Only Services that name the pool (and the address) get it, so no other
                    // LoadBalancer Service can take the one routed IP.
                    autoAssign: false,
                    // A reserved GCP address may well end in .0 or .255; it is a /32, so there is
                    // no broadcast or network address to avoid.
                    avoidBuggyIPs: false,
                },
            },
            { parent: this, provider, dependsOn: [this.chart] },
        );

        this.poolName = this.pool.metadata.name;

        this.registerOutputs({ poolName: this.poolName });
    }
}

/** "203.0.113.7" -> "203.0.113.7/32"; refuses anything that is not a single IPv4 address. */
export function toHostCidr(address: string): string {
    const parsed = parseCidr(address);
    if (!parsed || parsed.prefix !== 32) {
        throw new Error(`MetalLb: address "${address}" is not a single IPv4 address`);
    }
    return parsed.canonical;
}

function validateArgs(args: MetalLbArgs, poolName: string): void {
    const problems: string[] = [];
    if (args.addresses.length === 0) {
        problems.push("addresses is empty: the pool needs the reserved address");
    }
    for (const address of args.addresses) {
        if (typeof address === "string") {
            try {
                toHostCidr(address);
            } catch (e) {
                problems.push((e as Error).message.replace(/^MetalLb: /, ""));
            }
        }
    }
    if (!kubernetesNamePattern.test(poolName)) {
        problems.push(`poolName "${poolName}" is not a valid Kubernetes name`);
    }
    if (problems.length > 0) {
        throw new Error(`MetalLb: ${problems.join("; ")}`);
    }
}
