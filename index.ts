/**
 * A kubeadm Kubernetes cluster on three GCP VMs and the http-go app behind a real LoadBalancer.
 * Composition only: read the config and what the last `up` recorded, build the components, export
 * what users need (and what the next `up` reads back: kubernetesVersion, adminCredentialsExpire,
 * credentialsRenewal).
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./components/config";
import { HttpGoApp } from "./components/httpGoApp";
import { ClusterIdentity } from "./components/identity";
import { KubeadmCluster } from "./components/kubeadm";
import { EtcdBackups } from "./components/backups";
import { AppLoadBalancer } from "./components/loadBalancer";
import { MetalLb } from "./components/metallb";
import { MetricsServer } from "./components/metricsServer";
import { apiServerPort, ClusterNetwork } from "./components/network";
import { ClusterNodes, sshUser } from "./components/nodes";
import { costModel, InstanceSchedule } from "./components/schedule";
import { checkVms, stackVms } from "./components/vmStatus";
import { planKubernetesChange, readClusterState, supportedKubernetesMinors } from "./components/upgrade";

/**
 * What a new control plane restores. `npm run replace:control-plane` sets KUBEADM_GCP_NEW_CLUSTER=1
 * for the `up` that starts an empty cluster on purpose; otherwise the stack's etcdRestoreFrom.
 */
function restoreChoice(configured: string): string {
    if (process.env.KUBEADM_GCP_NEW_CLUSTER === "1") {
        pulumi.log.info("KUBEADM_GCP_NEW_CLUSTER=1: a recreated control plane starts a new, empty cluster (no snapshot is restored)");
        return "none";
    }
    return configured;
}

export = (async () => {
    const cfg = loadConfig();
    const name = cfg.clusterName;

    // The version the cluster runs, as the last `up` saw it: a skipped minor, a downgrade or an
    // unsupported version is refused here, before any resource is created or changed.
    const previous = await readClusterState();
    const change = planKubernetesChange(previous.kubernetesVersion, cfg.kubernetesVersion, supportedKubernetesMinors);
    if (change instanceof Error) {
        throw change;
    }
    // An `up` cannot SSH to a stopped VM: it stops here, in one line that says how to start them (a
    // preview warns). Creating Spot VMs can fail for lack of capacity: say so, naming the setting.
    await checkVms(stackVms(name, cfg.workerCount, cfg.spot), cfg.project, previous.controlPlaneIp !== undefined, {
        zone: cfg.zone,
        spot: cfg.spot,
        schedule: cfg.schedule,
    });

    const network = new ClusterNetwork(`${name}-network`, {
        clusterName: name,
        region: cfg.region,
        subnetCidr: cfg.subnetCidr,
        sshSourceRanges: cfg.sshSourceRanges,
        apiSourceRanges: cfg.apiSourceRanges,
    });

    // The on/off schedule: a GCE resource policy every VM is attached to (components/schedule.ts).
    const schedule = cfg.schedule
        ? new InstanceSchedule(`${name}-schedule`, { clusterName: name, project: cfg.project, region: cfg.region, schedule: cfg.schedule })
        : undefined;

    const nodes = new ClusterNodes(`${name}-nodes`, {
        clusterName: name,
        project: cfg.project,
        region: cfg.region,
        zone: cfg.zone,
        workerCount: cfg.workerCount,
        machineType: cfg.machineType,
        bootDiskSizeGb: cfg.bootDiskSizeGb,
        network,
        subnetCidr: cfg.subnetCidr,
        previousControlPlaneIp: previous.controlPlaneIp,
        spot: cfg.spot,
        schedule,
    });

    const apiEndpoint = pulumi.interpolate`https://${nodes.apiAddress}:${apiServerPort}`;
    // The cluster's CA and the provider's credentials belong to the stack: known at preview.
    const identity = new ClusterIdentity(`${name}-identity`, { clusterName: name, server: apiEndpoint });

    // Encrypted etcd snapshots in a bucket only the control plane may write; a recreated control
    // plane restores the newest (docs/backups.md).
    const backups = new EtcdBackups(`${name}-backups`, {
        clusterName: name,
        region: cfg.region,
        writerServiceAccountEmail: nodes.controlPlaneServiceAccountEmail,
        settings: cfg.backups,
    });

    const cluster = new KubeadmCluster(`${name}-cluster`, {
        clusterName: name,
        nodes,
        identity,
        kubernetesVersion: cfg.kubernetesVersion,
        podCidr: cfg.podCidr,
        serviceCidr: cfg.serviceCidr,
        workerImages: [cfg.app.image],
        previous,
        backups: {
            url: backups.url,
            key: backups.key,
            intervalMinutes: cfg.backups.intervalMinutes,
            restoreFrom: restoreChoice(cfg.backups.restoreFrom),
        },
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

    return {
        controlPlane: describeNode(nodes.controlPlane),
        workers: nodes.workers.map(describeNode),
        apiEndpoint,
        sshPrivateKey: nodes.sshPrivateKey,
        ssh: pulumi.interpolate`pulumi stack output sshPrivateKey --show-secrets > ~/.ssh/${name} && chmod 600 ~/.ssh/${name} && ssh -i ~/.ssh/${name} ${sshUser}@${nodes.apiAddress}`,
        url: app.url,
        kubeconfig: cluster.kubeconfig,
        kubeconfigExpires: identity.kubeconfigExpires,
        nodeNames: cluster.nodeNames,
        // Read back by the next `up` (components/upgrade.ts clusterStateOutputs).
        kubernetesVersion: cluster.kubernetesVersion,
        adminCredentialsExpire: cluster.adminCredentialsExpire,
        credentialsRenewal: cluster.credentialsRenewal,
        clusterUid: cluster.clusterUid,
        clusterIdentifier: cluster.clusterIdentifier,
        // The newest etcd snapshot in the bucket, as this `up` saw it ({ name, time }; undefined before the first).
        etcdNewestSnapshot: backups.newest,
        etcdBackupBucket: backups.bucketName,
        // Keep it outside the stack if the bucket is to outlive it (retainBackupsOnDestroy, docs/backups.md).
        etcdBackupKey: backups.key,
        // Which VMs are Spot and when they run (README "Cost" gives each setting's price).
        costModel: costModel(cfg.spot, cfg.schedule),
    };
})();
