import * as command from "@pulumi/command";
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { currentExternalIp, publishedHostKey } from "./hostKeys";
import { hostAddress, SpotSetting } from "./config";
import { ClusterNetwork } from "./network";
import { versions } from "./versions";

export type NodeRole = "control-plane" | "worker";

/** The login that Pulumi uses on every node; its key is the stack's own, in instance metadata. */
export const sshUser = "kubeadm";

/** Roles of the nodes' service account: ship logs and metrics, nothing else. */
export const nodeServiceAccountRoles = ["roles/logging.logWriter", "roles/monitoring.metricWriter"] as const;

export interface ClusterNodesArgs {
    /** Prefix of every name; the nodes are `<clusterName>-control-plane` and `<clusterName>-worker-<n>`. */
    clusterName: string;
    /** Project of the nodes' service account and its role bindings. */
    project: string;
    /** Region of the control plane's static IP. */
    region: string;
    /** Zone of every VM. */
    zone: string;
    /** Number of workers, >= 1. */
    workerCount: number;
    /** Machine type of every VM, e.g. "e2-medium". */
    machineType: string;
    /** Boot disk size of every VM (balanced persistent disk). */
    bootDiskSizeGb: number;
    /** The VPC, subnet and tags the firewall rules select the nodes by. */
    network: ClusterNetwork;
    /** The subnet's range (config subnetCidr): the control plane's internal address is taken from it. */
    subnetCidr: string;
    /**
     * The control plane's internal IP as the last `up` recorded it (undefined on a new stack). Kept:
     * it is reserved as it is, so a stack made before the reservation keeps its VM.
     */
    previousControlPlaneIp?: string;
    /** Which VMs use the Spot provisioning model (config `spot`). */
    spot: SpotSetting;
    /** The on/off schedule every VM follows, and the grant GCE needs on each to follow it; undefined: none. */
    schedule?: NodeSchedule;
}

/** What ClusterNodes needs of an InstanceSchedule (components/schedule.ts). */
export interface NodeSchedule {
    /** The resource policy's self link. */
    policy: pulumi.Input<string>;
    /** The custom role with exactly compute.instances.start and .stop. */
    role: pulumi.Input<string>;
    /** The Compute Engine service agent, as an IAM member. */
    member: pulumi.Input<string>;
}

/** Whether the config's `spot` setting makes a VM of this role a Spot VM. */
export function isSpot(spot: SpotSetting, role: NodeRole): boolean {
    return spot === "all" || (spot === "workers" && role === "worker");
}

/**
 * The instance's scheduling block, stated in full either way: the provider keeps a block's fields it
 * is not given (scheduling is Optional+Computed), so a VM moved back from Spot must be told STANDARD.
 * A Spot VM that GCE preempts is stopped, not deleted (instanceTerminationAction STOP): it keeps its
 * boot disk, name and internal IP, and comes back as the same node when it is started. GCE requires
 * a Spot VM not to restart itself and to terminate on host maintenance.
 */
export function vmScheduling(spot: boolean): gcp.types.input.compute.InstanceScheduling {
    return spot
        ? { provisioningModel: "SPOT", preemptible: true, automaticRestart: false, onHostMaintenance: "TERMINATE", instanceTerminationAction: "STOP" }
        : { provisioningModel: "STANDARD", preemptible: false, automaticRestart: true, onHostMaintenance: "MIGRATE" };
}

/** One VM of the cluster and how to reach it. */
export interface ClusterNode {
    /** Instance name = hostname = Kubernetes node name. */
    name: string;
    role: NodeRole;
    instance: gcp.compute.Instance;
    internalIp: pulumi.Output<string>;
    /** External IP: the control plane's static one; a worker's as the Compute API reports it now. */
    externalIp: pulumi.Output<string>;
    /** The node's SSH host public key (an authorized_keys line), as the VM published it. */
    hostKey: pulumi.Output<string>;
    /**
     * SSH connection for remote commands (its private key is a secret), pinned to `hostKey`. The
     * control plane is dialled at its static IP; a worker at its internal IP through the control
     * plane (`proxy`, pinned to the control plane's key), which survives a stop/start.
     */
    connection: command.types.input.remote.ConnectionArgs;
    /**
     * Succeeds once the node answers over SSH with its published host key; every provisioning step
     * on the node hangs off it. It dials the node directly: see docs/node-access.md for why.
     */
    ready: command.remote.Command;
}

/** Instance names; also the nodes' hostnames and Kubernetes node names. Workers count from 1. */
export function nodeNames(clusterName: string, workerCount: number): { controlPlane: string; workers: string[] } {
    return {
        controlPlane: `${clusterName}-control-plane`,
        workers: Array.from({ length: workerCount }, (_, i) => `${clusterName}-worker-${i + 1}`),
    };
}

/** The `ssh-keys` metadata entry that lets `user` in with `publicKey`. */
export function sshKeysMetadata(user: string, publicKey: string): string {
    return `${user}:${publicKey.trim()} ${user}`;
}

/** Metadata of every node. Nothing secret: any process on the VM, pods included, can read it. */
export function nodeMetadata(sshPublicKey: string): Record<string, string> {
    return {
        "ssh-keys": sshKeysMetadata(sshUser, sshPublicKey),
        // Keys come only from this metadata: no OS Login, no project-wide keys on these VMs.
        "enable-oslogin": "FALSE",
        "block-project-ssh-keys": "TRUE",
        // Lets the guest agent publish the SSH host public keys, which every connection pins.
        "enable-guest-attributes": "TRUE",
    };
}

/** What every node of one ClusterNodes shares. */
interface NodeSettings {
    /** The component's name, the prefix of every child's. */
    name: string;
    args: ClusterNodesArgs;
    metadata: pulumi.Output<Record<string, string>>;
    /** SSH user, key and dial retries of every connection. */
    dialing: { user: string; privateKey: pulumi.Output<string>; dialErrorLimit: number; perDialTimeout: number };
    serviceAccountEmail: pulumi.Output<string>;
}

/**
 * The VMs of the cluster: one control plane and `workerCount` workers, Ubuntu 24.04 LTS on
 * Shielded VMs, a service account of their own, an SSH key per stack, and a reserved static
 * external IP for the control plane (the API server certificate and the kubeconfig name it).
 * Every SSH connection is pinned to the host key the VM published (docs/node-access.md).
 */
export class ClusterNodes extends pulumi.ComponentResource {
    readonly controlPlane: ClusterNode;
    readonly workers: ClusterNode[];
    /** Static external IP of the control plane: the API server's public endpoint. */
    readonly apiAddress: pulumi.Output<string>;
    readonly sshPrivateKey: pulumi.Output<string>;
    /** The workers' service account. */
    readonly serviceAccountEmail: pulumi.Output<string>;
    /** The control plane's service account: the only writer of the etcd snapshots. */
    readonly controlPlaneServiceAccountEmail: pulumi.Output<string>;
    /** How workers are reached: SSH to the control plane, pinned to its host key. */
    readonly controlPlaneProxy: command.types.input.remote.ProxyConnectionArgs;

    constructor(name: string, args: ClusterNodesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:nodes:ClusterNodes", name, {}, opts);
        if (!Number.isInteger(args.workerCount) || args.workerCount < 1) {
            throw new Error(`ClusterNodes: workerCount must be a whole number >= 1, got ${args.workerCount}`);
        }
        const names = nodeNames(args.clusterName, args.workerCount);

        const sshKey = new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent: this });
        this.sshPrivateKey = pulumi.secret(sshKey.privateKeyOpenssh);

        // Two identities: the workers' may only ship logs and metrics; the control plane's may also
        // write the etcd snapshots, through a grant on the snapshot bucket alone (components/backups.ts).
        const workerAccount = this.serviceAccount(`${name}-sa`, `${args.clusterName}-nodes`, `Kubernetes nodes of ${args.clusterName}`, args);
        const controlPlaneAccount = this.serviceAccount(
            `${name}-control-plane-sa`,
            `${args.clusterName}-control`,
            `Kubernetes control plane of ${args.clusterName} (writes its etcd snapshots)`,
            args,
        );
        this.serviceAccountEmail = workerAccount.email;
        this.controlPlaneServiceAccountEmail = controlPlaneAccount.email;

        const apiAddress = new gcp.compute.Address(
            `${name}-api-ip`,
            {
                name: `${args.clusterName}-api`,
                description: "Public endpoint of the Kubernetes API server",
                region: args.region,
                addressType: "EXTERNAL",
                networkTier: "PREMIUM",
            },
            { parent: this },
        );
        this.apiAddress = apiAddress.address;
        // The control plane keeps its internal address across a replacement: workers' kubelets and
        // kube-proxy, and kubeadm's cluster-info, name it, and a restored cluster must answer there.
        const controlPlaneIp = new gcp.compute.Address(
            `${name}-control-plane-internal-ip`,
            {
                name: `${args.clusterName}-control-plane`,
                description: "Internal address of the control plane (the API server for the nodes)",
                region: args.region,
                addressType: "INTERNAL",
                subnetwork: args.network.subnet.id,
                address: args.previousControlPlaneIp ?? hostAddress(args.subnetCidr, 2),
            },
            { parent: this },
        );

        const metadata = sshKey.publicKeyOpenssh.apply(nodeMetadata);
        // A fresh VM takes a minute or two before sshd and our login are in place.
        const dialing = { user: sshUser, privateKey: this.sshPrivateKey, dialErrorLimit: 60, perDialTimeout: 20 };

        const shared: NodeSettings = { name, args, metadata, dialing, serviceAccountEmail: workerAccount.email };
        this.controlPlane = this.createNode(names.controlPlane, "control-plane", { natIp: apiAddress.address, networkIp: controlPlaneIp.address }, {
            ...shared,
            serviceAccountEmail: controlPlaneAccount.email,
        });
        this.controlPlaneProxy = { ...dialing, host: apiAddress.address, hostKey: this.controlPlane.hostKey };
        // Workers are created once the control plane's address is reserved: GCE would otherwise be
        // free to give it to a worker created first.
        this.workers = names.workers.map((w) => this.createNode(w, "worker", { proxy: this.controlPlaneProxy, after: controlPlaneIp }, shared));

        this.registerOutputs({
            controlPlane: this.controlPlane.name,
            workers: this.workers.map((w) => w.name),
            apiAddress: this.apiAddress,
        });
    }

    /** A service account with the nodes' project roles (logs and metrics), nothing else. */
    private serviceAccount(resourceName: string, accountId: string, displayName: string, args: ClusterNodesArgs): gcp.serviceaccount.Account {
        const account = new gcp.serviceaccount.Account(resourceName, { accountId, displayName, project: args.project }, { parent: this });
        for (const role of nodeServiceAccountRoles) {
            new gcp.projects.IAMMember(
                `${resourceName}-${role.replace(/^roles\//, "").replace(/\./g, "-").toLowerCase()}`,
                { project: args.project, role, member: pulumi.interpolate`serviceAccount:${account.email}` },
                { parent: this },
            );
        }
        return account;
    }

    /**
     * Lets the Compute Engine service agent start and stop this VM, and nothing else: the schedule's
     * role on the VM's own IAM policy. Replaced with its VM (a new VM has an empty policy); never
     * deleted through the API, as the load balancer's memberships: the delete names the VM by name,
     * which a recreated VM shares, and would take the grant off the new VM. A deleted VM's policy
     * goes with it; after the schedule is removed the binding names a deleted role and grants nothing.
     */
    private allowScheduleOn(instance: gcp.compute.Instance, resourceName: string, schedule: NodeSchedule, args: ClusterNodesArgs): void {
        new gcp.compute.InstanceIAMMember(
            resourceName,
            { project: args.project, zone: args.zone, instanceName: instance.name, role: schedule.role, member: schedule.member },
            { parent: this, replacementTrigger: instance.instanceId, retainOnDelete: true },
        );
    }

    /** A node with the static `natIp` is dialled there; one with a `proxy` behind it, once it is ready. */
    private createNode(
        nodeName: string,
        role: NodeRole,
        reach:
            | { natIp: pulumi.Output<string>; networkIp: pulumi.Output<string> }
            | { proxy: command.types.input.remote.ProxyConnectionArgs; after: pulumi.Resource },
        shared: NodeSettings,
    ): ClusterNode {
        const { name, args, metadata, dialing, serviceAccountEmail } = shared;
        const natIp = "natIp" in reach ? reach.natIp : undefined;
        const networkIp = "networkIp" in reach ? reach.networkIp : undefined;
        const instance = new gcp.compute.Instance(
            `${name}-${nodeName.slice(args.clusterName.length + 1)}`,
            {
                name: nodeName,
                zone: args.zone,
                machineType: args.machineType,
                tags: [args.network.tags.node, role === "control-plane" ? args.network.tags.controlPlane : args.network.tags.worker],
                labels: { cluster: args.clusterName, role },
                bootDisk: {
                    initializeParams: {
                        image: versions.osImage,
                        size: args.bootDiskSizeGb,
                        type: "pd-balanced",
                    },
                },
                networkInterfaces: [
                    {
                        subnetwork: args.network.subnet.id,
                        networkIp,
                        // Workers get an ephemeral address: egress for packages and images without
                        // a NAT gateway to pay for, and the first SSH dial (docs/node-access.md).
                        accessConfigs: [{ natIp, networkTier: "PREMIUM" }],
                    },
                ],
                serviceAccount: { email: serviceAccountEmail, scopes: ["cloud-platform"] },
                shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
                metadata,
                scheduling: vmScheduling(isSpot(args.spot, role)),
                // One policy at most (the provider flattens its MaxItems-1 list to a single value).
                resourcePolicies: args.schedule?.policy,
                allowStoppingForUpdate: true,
            },
            // The name is fixed (it is the node's hostname), so a replacement must free it first.
            // The firewall rules are dependencies so that they outlive, on destroy, everything
            // that reaches the nodes: every remote command and the Kubernetes provider hang off
            // these VMs (docs/lifecycle.md).
            { parent: this, deleteBeforeReplace: true, dependsOn: "after" in reach ? [...args.network.clusterRules, reach.after] : args.network.clusterRules },
        );
        if (args.schedule) {
            this.allowScheduleOn(instance, `${name}-${nodeName.slice(args.clusterName.length + 1)}-schedule`, args.schedule, args);
        }
        const internalIp = instance.networkInterfaces.apply((nics) => nics[0].networkIp ?? "");
        // An ephemeral address changes with every stop/start: read it now, not from the state.
        const externalIp =
            natIp ??
            currentExternalIp(
                instance,
                instance.networkInterfaces.apply((nics) => nics[0].accessConfigs?.[0]?.natIp ?? ""),
                this,
            );
        const hostKey = publishedHostKey(instance, externalIp, this);
        const direct: command.types.input.remote.ConnectionArgs = { ...dialing, host: externalIp, hostKey };
        // Through the control plane, a worker is at its internal IP for its whole life. The first
        // dial is direct: pulumi-command retries a failed handshake through a proxy on a channel
        // that is already closed, so a worker whose login is not in place yet would fail for good.
        const connection: command.types.input.remote.ConnectionArgs =
            "proxy" in reach ? { ...dialing, host: internalIp, hostKey, proxy: reach.proxy } : direct;
        const ready = new command.remote.Command(
            `${name}-${nodeName.slice(args.clusterName.length + 1)}-ready`,
            {
                connection: direct,
                create: "hostname",
                // A replaced VM is a new machine: everything provisioned on it must run again.
                triggers: [instance.instanceId],
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
        return {
            name: nodeName,
            role,
            instance,
            internalIp,
            externalIp,
            hostKey,
            connection,
            ready,
        };
    }
}
