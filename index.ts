/**
 * A kubeadm Kubernetes cluster on three GCP VMs and the http-go app behind a real LoadBalancer.
 * Composition only: read the config, build the components, export what users need.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./components/config";
import { KubeadmCluster } from "./components/kubeadm";
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

const describeNode = (n: typeof nodes.controlPlane) => ({ name: n.name, internalIp: n.internalIp, externalIp: n.externalIp });

export const controlPlane = describeNode(nodes.controlPlane);
export const workers = nodes.workers.map(describeNode);
export const apiEndpoint = pulumi.interpolate`https://${nodes.apiAddress}:6443`;
export const sshPrivateKey = nodes.sshPrivateKey;
export const ssh = pulumi.interpolate`pulumi stack output sshPrivateKey --show-secrets > ~/.ssh/${name} && chmod 600 ~/.ssh/${name} && ssh -i ~/.ssh/${name} ${sshUser}@${nodes.apiAddress}`;
export const kubeconfig = cluster.kubeconfig;
export const nodeNames = cluster.nodeNames;
