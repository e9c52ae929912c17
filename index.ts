/**
 * A kubeadm Kubernetes cluster on three GCP VMs and the http-go app behind a real LoadBalancer.
 * Composition only: read the config, build the components, export what users need.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./components/config";
import { HttpGoApp } from "./components/httpGoApp";
import { KubeadmCluster } from "./components/kubeadm";
import { AppLoadBalancer } from "./components/loadBalancer";
import { MetalLb } from "./components/metallb";
import { MetricsServer } from "./components/metricsServer";
import { ClusterNetwork } from "./components/network";
import { ClusterNodes, sshUser } from "./components/nodes";

const cfg = loadConfig();
const name = cfg.clusterName;

const network = new ClusterNetwork(`${name}-network`, {
    clusterName: name,
    region: cfg.region,
    subnetCidr: cfg.subnetCidr,
    sshSourceRanges: cfg.sshSourceRanges,
    apiSourceRanges: cfg.apiSourceRanges,
});

const nodes = new ClusterNodes(`${name}-nodes`, {
    clusterName: name,
    project: cfg.project,
    region: cfg.region,
    zone: cfg.zone,
    workerCount: cfg.workerCount,
    machineType: cfg.machineType,
    bootDiskSizeGb: cfg.bootDiskSizeGb,
    network,
});

const cluster = new KubeadmCluster(`${name}-cluster`, {
    clusterName: name,
    nodes,
    kubernetesVersion: cfg.kubernetesVersion,
    podCidr: cfg.podCidr,
    serviceCidr: cfg.serviceCidr,
    workerImages: [cfg.app.image],
});

// The app's public address: reserved and routed by a GCP load balancer, written into the Service's
// status by MetalLB (IP address management only), served by kube-proxy on the workers.
const loadBalancer = new AppLoadBalancer(`${name}-lb`, {
    clusterName: name,
    region: cfg.region,
    zone: cfg.zone,
    network: network.network,
    workerInstances: nodes.workers.map((w) => w.instance),
    workerTag: network.tags.worker,
});
const metallb = new MetalLb(`${name}-metallb`, { provider: cluster.provider, addresses: [loadBalancer.address] });
const metricsServer = new MetricsServer(`${name}-metrics`, { provider: cluster.provider });
const app = new HttpGoApp(`${name}-app`, {
    provider: cluster.provider,
    app: cfg.app,
    loadBalancerIp: loadBalancer.address,
    addressPool: metallb.poolName,
    trafficPath: loadBalancer.trafficPath,
    metricsServer,
});

const describeNode = (n: typeof nodes.controlPlane) => ({ name: n.name, internalIp: n.internalIp, externalIp: n.externalIp });

export const controlPlane = describeNode(nodes.controlPlane);
export const workers = nodes.workers.map(describeNode);
export const apiEndpoint = pulumi.interpolate`https://${nodes.apiAddress}:6443`;
export const sshPrivateKey = nodes.sshPrivateKey;
export const ssh = pulumi.interpolate`pulumi stack output sshPrivateKey --show-secrets > ~/.ssh/${name} && chmod 600 ~/.ssh/${name} && ssh -i ~/.ssh/${name} ${sshUser}@${nodes.apiAddress}`;
export const url = app.url;
export const kubeconfig = cluster.kubeconfig;
export const nodeNames = cluster.nodeNames;
