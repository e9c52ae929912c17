import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ClusterIdentity } from "./identity";
import { apiServerPort } from "./network";
import { ClusterNode, ClusterNodes } from "./nodes";
import { remoteScript } from "./scripts";
import { ClusterState, credentialsRenewalKey, credentialsStep, kubernetesUpgradeSteps, line } from "./upgrade";
import { flannelManifestUrl, versions } from "./versions";

/**
 * The provider's `deleteUnreachable`, always absent. The SDK otherwise copies PULUMI_K8S_DELETE_UNREACHABLE
 * from the environment into the provider's inputs, where it stays in the state after that `up`; the
 * provider applies it to `refresh` too, so a later refresh from a host that cannot reach the API server
 * would drop every Kubernetes object from the state. An explicit (undefined) value stops the SDK from
 * reading the variable; the provider plugin still reads it during `pulumi destroy`, which is what
 * `npm run destroy:unreachable` relies on.
 */
export function withoutDeleteUnreachable(): { deleteUnreachable: pulumi.Input<boolean> } {
    if (process.env.PULUMI_K8S_DELETE_UNREACHABLE !== undefined) {
        pulumi.log.warn(
            "PULUMI_K8S_DELETE_UNREACHABLE is set: this program does not pass it to the Kubernetes provider (it would stay in the state and let a refresh drop every object). To destroy a stack whose cluster is gone, run npm run destroy:unreachable.",
        );
    }
    return { deleteUnreachable: pulumi.output<boolean | undefined>(undefined) as pulumi.Output<boolean> };
}

export interface KubeadmClusterArgs {
    clusterName: string;
    nodes: ClusterNodes;
    /**
     * The cluster's stack-owned identity (components/identity.ts): its PKI is installed before
     * `kubeadm init`, its CA pin checks every join, and its kubeconfig is the provider's.
     */
    identity: ClusterIdentity;
    /** Kubernetes minor, e.g. "1.36": selects the pkgs.k8s.io repository. */
    kubernetesVersion: string;
    podCidr: string;
    serviceCidr: string;
    /** Images the workers pull while the control plane initialises (e.g. the app's). */
    workerImages?: string[];
    /** How long cluster-ready waits for every node to be Ready. */
    readyTimeoutSeconds?: number;
    /**
     * What the last `pulumi up` of this stack recorded (components/upgrade.ts readClusterState): the
     * version the cluster runs and when its admin credentials expire. Empty before the first `up`.
     */
    previous: ClusterState;
    /** The moment renewal is judged against (tests set it; default: now). */
    now?: Date;
    /** Where the etcd snapshots go and what a new control plane restores (components/backups.ts, docs/backups.md). */
    backups: ClusterBackups;
}

/** What KubeadmCluster needs of the backups: the bucket, the key, the schedule and the restore choice. */
export interface ClusterBackups {
    /** gs://<bucket> */
    url: pulumi.Input<string>;
    /** 64 hex characters; secret. */
    key: pulumi.Input<string>;
    intervalMinutes: number;
    /** "newest", "none" or a snapshot's name (config etcdRestoreFrom). */
    restoreFrom: string;
}

/**
 * Turns the VMs into a Kubernetes cluster with kubeadm over SSH.
 *
 * Every node prepares in parallel; workers wait for the control plane only to join, each with a
 * token minted for it once it is prepared and revoked once it has joined. The provider's kubeconfig
 * comes from the stack's identity, so a preview knows it; the provider waits for every node to be
 * Ready through `dependsOn`, so nothing deployed through it races the cluster. The sequence is in
 * docs/provisioning.md, each lifecycle transition in docs/lifecycle.md; the graph's shape is held by
 * tests/provisioning.test.ts.
 */
export class KubeadmCluster extends pulumi.ComponentResource {
    /** Admin kubeconfig naming the API server's public IP (the identity's); secret; resolves once all nodes are Ready. */
    readonly kubeconfig: pulumi.Output<string>;
    /** Provider for everything deployed into the cluster. */
    readonly provider: k8s.Provider;
    /** Names of the Kubernetes nodes, known once they are Ready. */
    readonly nodeNames: pulumi.Output<string[]>;
    /** The version every node runs once the upgrade chain has finished, e.g. "v1.36.3". */
    readonly kubernetesVersion: pulumi.Output<string>;
    /** When kubeadm's certificates on the control plane (admin.conf's) expire, RFC 3339; renewed within 30 days of it. */
    readonly adminCredentialsExpire: pulumi.Output<string>;
    /** The credentials step's renewal key in use (kept in state so that it changes only when due). */
    readonly credentialsRenewal: string;
    /** The cluster's UID (kube-system's), as kubeadm-init.sh printed it: the same after a restore. */
    readonly clusterUid: pulumi.Output<string>;
    /** The provider's clusterIdentifier (kept in state: a restored cluster keeps it). */
    readonly clusterIdentifier: pulumi.Output<string>;

    private readonly settings: KubeadmClusterArgs & { name: string };

    constructor(name: string, args: KubeadmClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:kubeadm:KubeadmCluster", name, {}, opts);
        this.settings = { ...args, name };
        const { nodes, identity } = args;
        const cp = nodes.controlPlane;

        const cpImages = this.pullImages(cp, this.prepare(cp), { KUBEADM_IMAGES: "control-plane", MANIFEST_URLS: flannelManifestUrl(), IMAGES: "" });
        // The restore overlaps the control plane's preparation: it needs only the VM.
        const init = this.initControlPlane(cpImages, this.restoreEtcd(cp));
        const snapshots = this.scheduleSnapshots(init);
        // The UID init printed: the workers compare it, and the next `up` reads it back.
        this.clusterUid = line(init);
        const incarnation = this.incarnationOf(init);
        const joined = nodes.workers.map((worker) => this.joinWorker(worker, init, incarnation));

        // Day 2: the control plane's in-place upgrade after init, then each worker's in turn; on a new
        // cluster or an unchanged version every step is a no-op. Then kubeadm's certificates' expiry,
        // read again after an upgrade and renewed when due.
        const upgrade = kubernetesUpgradeSteps({
            controlPlane: cp,
            workers: nodes.workers.map((node, i) => ({ node, joined: joined[i] })),
            kubernetesMinor: args.kubernetesVersion,
            // The schedule first: the control plane's upgrade takes a snapshot before it starts.
            after: [init, snapshots],
            stepName: (node, what) => this.stepName(node, what),
            parent: this,
        });
        this.credentialsRenewal = credentialsRenewalKey(args.previous, args.now ?? new Date());
        const credentials = credentialsStep(`${name}-credentials`, {
            controlPlane: cp,
            version: line(upgrade.controlPlane),
            renewal: this.credentialsRenewal,
            parent: this,
        });
        this.kubernetesVersion = upgrade.version;
        this.adminCredentialsExpire = line(credentials);

        const allNodes = [cp.name, ...nodes.workers.map((w) => w.name)];
        const clusterReady = this.waitForNodes(allNodes, init, joined);
        // Gated like pulumi-eks's: the exported kubeconfig resolves once every node is Ready.
        this.kubeconfig = pulumi.secret(pulumi.all([identity.kubeconfig, clusterReady.id]).apply(([kubeconfig]) => kubeconfig));
        this.nodeNames = clusterReady.id.apply(() => allNodes);
        this.clusterIdentifier = pulumi.interpolate`${args.clusterName}/${incarnation}`;
        this.provider = this.clusterProvider(this.clusterIdentifier, clusterReady);

        this.registerOutputs({
            kubeconfig: this.kubeconfig,
            clusterUid: this.clusterUid,
            clusterIdentifier: this.clusterIdentifier,
            nodeNames: this.nodeNames,
            kubernetesVersion: this.kubernetesVersion,
            adminCredentialsExpire: this.adminCredentialsExpire,
        });
    }

    /** `<component>-<node without the cluster prefix>-<what>`, e.g. k8s-dev-cluster-worker-1-join. */
    private stepName(node: { name: string }, what: string): string {
        return `${this.settings.name}-${node.name.slice(this.settings.clusterName.length + 1)}-${what}`;
    }

    /**
     * prepare-node.sh, once per VM. A node of a running cluster gets exactly the version the cluster
     * runs, also while `kubernetesVersion` moves to the next minor: a kubelet must not be newer than
     * its API server, and the upgrade chain takes the new node to the new minor after its join, like
     * every other worker. Before the first `up`, the newest patch of the configured minor. The record
     * is the last successful `up`'s: after one that failed once the control plane was upgraded it is
     * stale, so the script asks the control plane's API server first (API_SERVER, trusting the stack's
     * CA) and installs what it runs; the record decides only when nothing answers (a new cluster).
     */
    private prepare(node: ClusterNode): command.remote.Command {
        const { kubernetesVersion, previous, nodes, identity } = this.settings;
        const running = /^v(1\.\d+)\.\d+$/.exec(previous.kubernetesVersion ?? "");
        return new command.remote.Command(
            this.stepName(node, "prepare"),
            {
                connection: node.connection,
                create: remoteScript("prepare-node", {
                    K8S_MINOR: running ? running[1] : kubernetesVersion,
                    K8S_VERSION: running ? running[0] : "",
                    CONTAINERD_VERSION: versions.containerdPackage,
                    API_SERVER: pulumi.interpolate`${nodes.controlPlane.internalIp}:${apiServerPort}`,
                    CLUSTER_CA_CERT: identity.caCertPem,
                }),
                // A node is prepared once, like cloud-init's user data: changes to the script or its
                // settings are an update that runs `true` on a live node (its packages are the
                // upgrade's business, docs/upgrading.md), and a new VM (its ready step) prepares with
                // the script and settings of the day. Not `ignoreChanges`: the engine keeps ignored
                // inputs from the state when it replaces a resource too (step_generator.go,
                // processIgnoreChanges whenever there is an old state), so a replaced VM would be
                // prepared with the script its predecessor was first prepared with.
                update: "true",
                triggers: [node.ready.id],
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
    }

    /** pull-images.sh on a prepared node. */
    private pullImages(node: ClusterNode, prepared: command.remote.Command, env: Record<string, string>): command.remote.Command {
        return new command.remote.Command(
            this.stepName(node, "images"),
            { connection: node.connection, create: remoteScript("pull-images", env), triggers: [prepared.id], addPreviousOutputInEnv: false },
            { parent: this },
        );
    }

    /**
     * etcd-backup.sh restore on the control plane before kubeadm init: a new control plane VM of a
     * cluster that has snapshots gets the newest (or the chosen) one in /var/lib/etcd, so init brings
     * the same cluster back. It matters only on a new VM: a change of its settings on a live one is
     * an update that runs `true`. Not `ignoreChanges`: the engine keeps ignored inputs from the state
     * also when it replaces a resource (step_generator.go, processIgnoreChanges whenever there is an
     * old state), so a new VM would restore with the settings of the day the step was first created.
     */
    private restoreEtcd(cp: ClusterNode): command.remote.Command {
        const { backups, previous } = this.settings;
        const settings = {
            MODE: "restore",
            RESTORE_FROM: backups.restoreFrom,
            PREVIOUS_CLUSTER_UID: previous.clusterUid ?? "",
            NODE_NAME: cp.name,
            ADVERTISE_ADDRESS: cp.internalIp,
        };
        return this.etcdBackupStep("etcd-restore", settings, cp.ready.id, "true");
    }

    /** etcd-backup.sh install: the key, the tools and the snapshot timer on an initialised control plane. */
    private scheduleSnapshots(init: command.remote.Command): command.remote.Command {
        const settings = { MODE: "install", INTERVAL_MINUTES: String(this.settings.backups.intervalMinutes) };
        return this.etcdBackupStep("etcd-snapshots", settings, init.id);
    }

    /** etcd-backup.sh on the control plane: the bucket and the tools' release, the key as secret stdin. */
    private etcdBackupStep(
        what: string,
        settings: Record<string, pulumi.Input<string>>,
        trigger: pulumi.Input<string>,
        /** The command an update runs (default: the create command again). */
        update?: string,
    ): command.remote.Command {
        const { nodes, backups } = this.settings;
        return new command.remote.Command(
            this.stepName(nodes.controlPlane, what),
            {
                connection: nodes.controlPlane.connection,
                create: remoteScript("etcd-backup", { BACKUP_URL: backups.url, ETCD_VERSION: versions.etcdTools, ...settings }),
                update,
                stdin: pulumi.secret(backups.key),
                triggers: [trigger],
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
    }

    /** kubeadm-init.sh on the control plane, with the stack's identity; its stdout is the cluster's UID. */
    private initControlPlane(images: command.remote.Command, restored: command.remote.Command): command.remote.Command {
        const { nodes, identity } = this.settings;
        const cp = nodes.controlPlane;
        return new command.remote.Command(
            this.stepName(cp, "init"),
            {
                connection: cp.connection,
                create: remoteScript("kubeadm-init", {
                    NODE_NAME: cp.name,
                    ADVERTISE_ADDRESS: cp.internalIp,
                    PUBLIC_ADDRESS: nodes.apiAddress,
                    POD_CIDR: this.settings.podCidr,
                    SERVICE_CIDR: this.settings.serviceCidr,
                    CLUSTER_NAME: this.settings.clusterName,
                    FLANNEL_MANIFEST_URL: flannelManifestUrl(),
                }),
                // The stack's CA, front-proxy CA and service-account key, installed before init.
                stdin: identity.controlPlanePki,
                triggers: [images.id],
                addPreviousOutputInEnv: false,
            },
            // Ordering without data (init finds the restored data on disk): a trigger would replace
            // the init step of every stack made before the restore step existed, and with it the
            // provider and every object (identifierOf).
            { parent: this, dependsOn: [restored] },
        );
    }

    /**
     * A worker from VM to member of the cluster: prepared, its images pulled (overlapping the
     * control plane's init; nothing waits for them), a token minted on the control plane, the join,
     * the token revoked. Returns the join.
     */
    private joinWorker(worker: ClusterNode, init: command.remote.Command, incarnation: pulumi.Output<string>): command.remote.Command {
        const { nodes, identity } = this.settings;
        const cp = nodes.controlPlane;
        const prepared = this.prepare(worker);
        this.pullImages(worker, prepared, { KUBEADM_IMAGES: "node", MANIFEST_URLS: flannelManifestUrl(), IMAGES: (this.settings.workerImages ?? []).join(" ") });
        // The control plane's record of this worker. Created once the worker is prepared, it
        // mints the worker's join token just before the join; when the worker is removed (or
        // replaced), it drains and deletes its node before the VM goes.
        const admission = new command.remote.Command(
            this.stepName(worker, "admit"),
            {
                connection: cp.connection,
                create: remoteScript("join-token", { WORKER_NAME: worker.name }),
                delete: remoteScript("drain-node", { NODE_NAME: worker.name }),
                // A new cluster admits the worker anew; a restored one still has it (its Node and
                // its join), so its admission, whose deletion drains and deletes the Node, stays.
                triggers: [incarnation, prepared.id],
                logging: "none",
                addPreviousOutputInEnv: false,
            },
            // After init without a data link when the incarnation is the recorded one (a restore).
            { parent: this, additionalSecretOutputs: ["stdout"], deleteBeforeReplace: true, dependsOn: [init] },
        );
        const join = new command.remote.Command(
            this.stepName(worker, "join"),
            {
                connection: worker.connection,
                // The incarnation init printed: a node of an older one is reset and joined again.
                create: remoteScript("kubeadm-join", { NODE_NAME: worker.name, CA_CERT_HASH: identity.caCertHash, CLUSTER_UID: this.clusterUid }),
                // The join line carries the token: it travels as stdin, never in the script text.
                stdin: pulumi.secret(admission.stdout),
                triggers: [prepared.id],
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
        // The token does not expire (a failed join leaves nothing in the state, so a re-run,
        // however much later, feeds the join the same line again); it dies here, once used.
        // Re-run for every new token: the admit step's id changes with each one.
        new command.remote.Command(
            this.stepName(worker, "revoke-token"),
            {
                connection: cp.connection,
                create: remoteScript("revoke-join-token", { WORKER_NAME: worker.name }),
                // Every token the admit step prints is revoked after the join, also one minted by an
                // update of the admit step (its create re-runs), which keeps its id.
                triggers: [join.id, admission.id, admission.stdout],
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
        return join;
    }

    /** cluster-ready.sh on the control plane: every node registered and Ready. */
    private waitForNodes(allNodes: string[], init: command.remote.Command, joined: command.remote.Command[]): command.remote.Command {
        return new command.remote.Command(
            `${this.settings.name}-cluster-ready`,
            {
                connection: this.settings.nodes.controlPlane.connection,
                create: remoteScript("cluster-ready", {
                    EXPECTED_NODES: allNodes.join(" "),
                    TIMEOUT_SECONDS: String(this.settings.readyTimeoutSeconds ?? 600),
                }),
                triggers: [init.id, ...joined.map((j) => j.id)],
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
    }

    /**
     * Which cluster this is, as the id of the `kubeadm init` step that made it. A new cluster is
     * named after its own init, so what belongs to one cluster (the provider and every object
     * deployed through it, each worker's admission) is replaced when a new, empty cluster replaces
     * the old one. While snapshots are restored, a recreated control plane brings the same cluster
     * back: the incarnation the last `up` recorded (in clusterIdentifier) stays, so the provider, its
     * objects and the workers' admissions stay too, and a preview of the replacement lists nothing
     * in the cluster and drains no worker (docs/backups.md).
     */
    private incarnationOf(init: command.remote.Command): pulumi.Output<string> {
        const { previous, backups, clusterName } = this.settings;
        const recorded = previous.clusterIdentifier;
        if (backups.restoreFrom !== "none" && recorded !== undefined && recorded.startsWith(`${clusterName}/`)) {
            return pulumi.output(recorded.slice(clusterName.length + 1));
        }
        return init.id;
    }

    /** The provider for everything deployed into the cluster. */
    private clusterProvider(clusterIdentifier: pulumi.Output<string>, clusterReady: command.remote.Command): k8s.Provider {
        return new k8s.Provider(
            `${this.settings.name}-k8s`,
            {
                // The identity's kubeconfig, not the gated one: a step that re-runs (a scale re-runs
                // cluster-ready) must not make the provider's inputs unknown during preview, or every
                // object in the cluster previews as changed (docs/identity.md).
                kubeconfig: this.settings.identity.kubeconfig,
                // pulumi-kubernetes DiffConfig: a known, unchanged clusterIdentifier is never replaced.
                clusterIdentifier,
                // No deleteUnreachable here: the provider applies it to `refresh` too, and a refresh
                // from a host that cannot reach 6443 would drop every Kubernetes object from the
                // state. Destroying a stack whose cluster is gone is `npm run destroy:unreachable`
                // (docs/lifecycle.md). withoutDeleteUnreachable keeps the SDK from reading it from
                // the environment.
                ...withoutDeleteUnreachable(),
            },
            // Ordering without data: nothing deployed through the provider races a node that is not Ready.
            { parent: this, dependsOn: [clusterReady] },
        );
    }
}
