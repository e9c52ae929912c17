import * as command from "@pulumi/command";
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { ClusterNetwork } from "./network";
import { versions } from "./versions";

export type NodeRole = "control-plane" | "worker";

/** The login that Pulumi uses on every node; its key is the stack's own, in instance metadata. */
export const sshUser = "kubeadm";

/** Roles of the nodes' service account: ship logs and metrics, nothing else. */
export const nodeServiceAccountRoles = ["roles/logging.logWriter", "roles/monitoring.metricWriter"] as const;

export interface ClusterNodesArgs {
    clusterName: string;
    project: string;
    region: string;
    zone: string;
    workerCount: number;
    machineType: string;
    bootDiskSizeGb: number;
    network: ClusterNetwork;
}

/** One VM of the cluster and how to reach it. */
export interface ClusterNode {
    /** Instance name = hostname = Kubernetes node name. */
    name: string;
    role: NodeRole;
    instance: gcp.compute.Instance;
    internalIp: pulumi.Output<string>;
    externalIp: pulumi.Output<string>;
    /** SSH connection for remote commands (its private key is a secret). */
    connection: command.types.input.remote.ConnectionArgs;
    /** Succeeds once the node answers over SSH; every provisioning step on the node hangs off it. */
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

/**
 * The VMs of the cluster: one control plane and `workerCount` workers, Ubuntu 24.04 LTS on
 * Shielded VMs, a service account of their own, an SSH key per stack, and a reserved static
 * external IP for the control plane (the API server certificate and the kubeconfig name it).
 */
export class ClusterNodes extends pulumi.ComponentResource {
    readonly controlPlane: ClusterNode;
    readonly workers: ClusterNode[];
    /** Static external IP of the control plane: the API server's public endpoint. */
    readonly apiAddress: pulumi.Output<string>;
    readonly sshPrivateKey: pulumi.Output<string>;
    readonly serviceAccountEmail: pulumi.Output<string>;

    constructor(name: string, args: ClusterNodesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:nodes:ClusterNodes", name, {}, opts);
        if (!Number.isInteger(args.workerCount) || args.workerCount < 1) {
            throw new Error(`ClusterNodes: workerCount must be a whole number >= 1, got ${args.workerCount}`);
        }
        const names = nodeNames(args.clusterName, args.workerCount);

        const sshKey = new tls.PrivateKey(`${name}-ssh-key`, { algorithm: "ED25519" }, { parent: this });
        this.sshPrivateKey = pulumi.secret(sshKey.privateKeyOpenssh);

        const serviceAccount = new gcp.serviceaccount.Account(
            `${name}-sa`,
            {
                accountId: `${args.clusterName}-nodes`,
                displayName: `Kubernetes nodes of ${args.clusterName}`,
                project: args.project,
            },
            { parent: this },
        );
        this.serviceAccountEmail = serviceAccount.email;
        for (const role of nodeServiceAccountRoles) {
            new gcp.projects.IAMMember(
                `${name}-sa-${role.replace(/^roles\//, "").replace(/\./g, "-").toLowerCase()}`,
                { project: args.project, role, member: pulumi.interpolate`serviceAccount:${serviceAccount.email}` },
                { parent: this },
            );
        }

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

        const metadata = {
            "ssh-keys": sshKey.publicKeyOpenssh.apply((key) => sshKeysMetadata(sshUser, key)),
            // Keys come only from this metadata: no OS Login, no project-wide keys on these VMs.
            "enable-oslogin": "FALSE",
            "block-project-ssh-keys": "TRUE",
        };

        const createNode = (nodeName: string, role: NodeRole, natIp?: pulumi.Output<string>): ClusterNode => {
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
                            // Workers get an ephemeral address: SSH from the Pulumi host and egress
                            // for packages and images, without a NAT gateway to pay for.
                            accessConfigs: [{ natIp, networkTier: "PREMIUM" }],
                        },
                    ],
                    serviceAccount: { email: serviceAccount.email, scopes: ["cloud-platform"] },
                    shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
                    metadata,
                    allowStoppingForUpdate: true,
                },
                // The name is fixed (it is the node's hostname), so a replacement must free it first.
                // The firewall rules are dependencies so that they outlive, on destroy, everything
                // that reaches the nodes: every remote command and the Kubernetes provider hang off
                // these VMs (docs/lifecycle.md).
                { parent: this, deleteBeforeReplace: true, dependsOn: args.network.clusterRules },
            );
            const externalIp = natIp ?? instance.networkInterfaces.apply((nics) => nics[0].accessConfigs?.[0]?.natIp ?? "");
            const connection: command.types.input.remote.ConnectionArgs = {
                host: externalIp,
                user: sshUser,
                privateKey: this.sshPrivateKey,
                // A fresh VM takes a minute or two before sshd and its key are in place.
                dialErrorLimit: 60,
                perDialTimeout: 20,
            };
            const ready = new command.remote.Command(
                `${name}-${nodeName.slice(args.clusterName.length + 1)}-ready`,
                {
                    connection,
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
                internalIp: instance.networkInterfaces.apply((nics) => nics[0].networkIp ?? ""),
                externalIp,
                connection,
                ready,
            };
        };

        this.controlPlane = createNode(names.controlPlane, "control-plane", apiAddress.address);
        this.workers = names.workers.map((w) => createNode(w, "worker"));

        this.registerOutputs({
            controlPlane: this.controlPlane.name,
            workers: this.workers.map((w) => w.name),
            apiAddress: this.apiAddress,
        });
    }
}
