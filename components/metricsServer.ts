import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { helmRepos, versions } from "./versions";

export interface MetricsServerArgs {
    /** The cluster's provider; the release goes through it. */
    provider: k8s.Provider;
}

/**
 * The chart's `defaultArgs`, restated with one change: kubelets are reached on their InternalIP
 * only. The flag is a string list, so adding it again through `args` would append to the
 * default (InternalIP,ExternalIP,Hostname) instead of replacing it. The VPC-internal address is
 * the one every node has and the one the kubelet port is meant to be reached on.
 */
export const METRICS_SERVER_DEFAULT_ARGS: readonly string[] = [
    "--cert-dir=/tmp",
    "--kubelet-preferred-address-types=InternalIP",
    "--kubelet-use-node-status-port",
    "--metric-resolution=15s",
];

/**
 * kubeadm's kubelets serve their API with a self-signed certificate (no cluster CA signs it), so
 * metrics-server cannot verify them and is told not to. It still authenticates to the kubelet with
 * its service account token and talks only inside the VPC. The alternative that keeps verification:
 * `serverTLSBootstrap: true` in the KubeletConfiguration that kubeadm writes, then approve each
 * node's `kubernetes.io/kubelet-serving` CSR (`kubectl certificate approve`) after every join and
 * certificate rotation — an approver the cluster would have to run forever.
 */
export const METRICS_SERVER_ARGS: readonly string[] = ["--kubelet-insecure-tls"];

/**
 * metrics-server, the source of `metrics.k8s.io` that the app's HorizontalPodAutoscaler reads
 * CPU usage from.
 */
export class MetricsServer extends pulumi.ComponentResource {
    readonly chart: k8s.helm.v4.Chart;

    constructor(name: string, args: MetricsServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:metrics:MetricsServer", name, {}, opts);
        if (!args.provider) {
            throw new Error("MetricsServer: provider is required");
        }

        // helm.v4.Chart for the same reason as MetalLB's (see metallb.ts). Every object is awaited,
        // the Deployment until it is Available, i.e. until its readiness probe saw it scrape the
        // kubelets, so the HPA that depends on this component has numbers from the start.
        this.chart = new k8s.helm.v4.Chart(
            `${name}-chart`,
            {
                chart: "metrics-server",
                version: versions.metricsServerChart,
                repositoryOpts: { repo: helmRepos.metricsServer },
                namespace: "kube-system",
                values: {
                    defaultArgs: [...METRICS_SERVER_DEFAULT_ARGS],
                    args: [...METRICS_SERVER_ARGS],
                },
            },
            { parent: this, provider: args.provider },
        );

        this.registerOutputs({});
    }
}
