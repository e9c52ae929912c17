/**
 * Day 2: in-place Kubernetes upgrades and the renewal of kubeadm's certificates.
 *
 * Pure decisions (tested directly): whether a `kubernetesVersion` change is an upgrade, nothing, or
 * refused; when the admin credentials are due for renewal. Builders for the steps (tested under mocks):
 * the control plane's upgrade, then each worker's drain, upgrade and uncordon, one worker after the
 * other, then the credentials step. The sequence and the design are in docs/upgrading.md.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { remoteScript } from "./scripts";

// Pinned with the other versions (how to extend it is said there); re-exported for the callers of planKubernetesChange.
export { supportedKubernetesMinors } from "./versions";

/** Renew kubeadm's certificates when admin.conf's client certificate expires within this many days. */
export const renewWithinDays = 30;

/**
 * A refused `kubernetesVersion` change; the message names the running and the requested versions.
 * A RunError, so Pulumi prints the message alone, without the program's stack trace.
 */
export class KubernetesChangeRefused extends pulumi.RunError {
    constructor(
        readonly current: string | undefined,
        readonly requested: string,
        message: string,
    ) {
        super(message);
        this.name = "KubernetesChangeRefused";
    }
}

/** "none": same minor (or no cluster yet); "upgrade": the next minor; otherwise why it is refused. */
export type KubernetesChange = "none" | "upgrade" | KubernetesChangeRefused;

const minorOf = (version: string): number | undefined => {
    const m = /^v?1\.(\d+)(?:\.\d+)?$/.exec(version.trim());
    return m ? Number(m[1]) : undefined;
};

/**
 * Decides what changing the cluster to `requested` (a minor such as "1.37") means, given `current`,
 * the version the cluster ran at the end of the last `pulumi up` (e.g. "v1.36.3"; undefined before the
 * first one), and the minors the pinned tools support. kubeadm upgrades one minor at a time and never
 * downgrades; upgrade-control-plane.sh refuses the same cases against the live cluster.
 */
export function planKubernetesChange(current: string | undefined, requested: string, supported: readonly string[]): KubernetesChange {
    const running = current === undefined ? "" : `the cluster runs ${current} and `;
    const want = minorOf(requested);
    if (want === undefined || !supported.includes(requested)) {
        return new KubernetesChangeRefused(
            current,
            requested,
            `kubernetesVersion: ${running}${requested} was requested, which the pinned tools do not support; supported: ${supported.join(", ")} (see docs/upgrading.md)`,
        );
    }
    if (current === undefined) {
        return "none";
    }
    const have = minorOf(current);
    if (have === undefined) {
        return new KubernetesChangeRefused(current, requested, `kubernetesVersion: the recorded cluster version '${current}' is not a Kubernetes version such as v1.36.3; cannot plan a change to ${requested}`);
    }
    if (want < have) {
        return new KubernetesChangeRefused(current, requested, `kubernetesVersion: ${running}${requested} was requested; kubeadm cannot downgrade a cluster (set it back to 1.${have})`);
    }
    if (want > have + 1) {
        return new KubernetesChangeRefused(
            current,
            requested,
            `kubernetesVersion: ${running}${requested} was requested, which skips 1.${have + 1}; kubeadm upgrades one minor at a time (set 1.${have + 1}, run pulumi up, then ${requested})`,
        );
    }
    return want === have ? "none" : "upgrade";
}

/** What one `pulumi up` leaves for the next: stack outputs, read back by readClusterState. */
export interface ClusterState {
    /** The version every node ran at the end (the upgrade chain's output), e.g. "v1.36.3". */
    kubernetesVersion?: string;
    /** When admin.conf's client certificate expires, RFC 3339 (renew-certs.sh's output). */
    adminCredentialsExpire?: string;
    /** The credentials step's renewal trigger in use (credentialsRenewalKey). */
    credentialsRenewal?: string;
    /** The cluster's UID (kube-system's), as kubeadm-init.sh printed it: whose snapshots a new control plane restores. */
    clusterUid?: string;
    /** The Kubernetes provider's clusterIdentifier: kept across a restore, so the provider and its objects stay. */
    clusterIdentifier?: string;
    /** The control plane's internal IP (the `controlPlane` output's internalIp): reserved as it is. */
    controlPlaneIp?: string;
}

/** The stack outputs that carry ClusterState; index.ts must export them under these names. */
export const clusterStateOutputs = {
    kubernetesVersion: "kubernetesVersion",
    adminCredentialsExpire: "adminCredentialsExpire",
    credentialsRenewal: "credentialsRenewal",
    clusterUid: "clusterUid",
    clusterIdentifier: "clusterIdentifier",
} as const;

/**
 * The name under which a program's StackReference finds its own stack. A diy (file) backend calls
 * every organization "organization" (pkg/backend/diy/state.go) and, in its legacy layout (no
 * .pulumi/meta.yaml with version 1), accepts only a bare stack name (tokens.ParseStackName refuses
 * "/"); its project layout resolves a bare name within the current project. So a diy backend gets the
 * bare name, which both layouts read as this stack; any other backend the fully qualified one.
 */
export function selfStackReferenceName(organization: string, project: string, stack: string): string {
    return organization === "organization" ? stack : `${organization}/${project}/${stack}`;
}

/**
 * The state the last deployment of this very stack recorded, through a StackReference to itself
 * (pulumi/pulumi#3722 shows the pattern): a preview sees what the last `up` observed on the cluster,
 * without reaching the cluster. Before the first `up` every field is undefined.
 */
export async function readClusterState(opts?: pulumi.CustomResourceOptions): Promise<ClusterState> {
    const self = new pulumi.StackReference(
        "previous-deployment",
        { name: selfStackReferenceName(pulumi.getOrganization(), pulumi.getProject(), pulumi.getStack()) },
        opts,
    );
    const read = async (name: string): Promise<string | undefined> => {
        const details = await self.getOutputDetails(name);
        const value = details.value ?? details.secretValue;
        return typeof value === "string" ? value : undefined;
    };
    const [kubernetesVersion, adminCredentialsExpire, credentialsRenewal, clusterUid, clusterIdentifier] = await Promise.all(
        Object.values(clusterStateOutputs).map(read),
    );
    const controlPlane = (await self.getOutputDetails("controlPlane")).value as { internalIp?: unknown } | undefined;
    const controlPlaneIp = typeof controlPlane?.internalIp === "string" && controlPlane.internalIp !== "" ? controlPlane.internalIp : undefined;
    return { kubernetesVersion, adminCredentialsExpire, credentialsRenewal, clusterUid, clusterIdentifier, controlPlaneIp };
}

/** True when credentials expiring at `expires` (RFC 3339) are within `withinDays` of `now`, or past. */
export function renewalDue(expires: string | undefined, now: Date, withinDays: number = renewWithinDays): boolean {
    if (expires === undefined) {
        return false;
    }
    const at = Date.parse(expires);
    if (Number.isNaN(at)) {
        throw new Error(`adminCredentialsExpire: '${expires}' is not an RFC 3339 date`);
    }
    return at - now.getTime() <= withinDays * 86_400_000;
}

/**
 * The credentials step's trigger. It changes exactly when renewal falls due: then it names the expiry
 * being renewed ("renew-before-<expiry>"), which replaces the step, so renew-certs.sh runs and records
 * the new expiry. Otherwise it stays what the last deployment used, so the renewed (later) expiry
 * does not change it again and a preview shows no diff until the next renewal is due.
 */
export function credentialsRenewalKey(previous: ClusterState, now: Date, withinDays: number = renewWithinDays): string {
    if (renewalDue(previous.adminCredentialsExpire, now, withinDays)) {
        return `renew-before-${previous.adminCredentialsExpire}`;
    }
    return previous.credentialsRenewal ?? "initial";
}

/** A node as the upgrade steps need it. */
export interface UpgradeNode {
    /** Kubernetes node name. */
    name: string;
    /** SSH connection for remote commands (its private key is a secret). */
    connection: command.types.input.remote.ConnectionArgs;
}

export interface KubernetesUpgradeArgs {
    controlPlane: UpgradeNode;
    /** Workers in upgrade order, each with the step after which it is a node of the cluster (its join). */
    workers: { node: UpgradeNode; joined: pulumi.Resource }[];
    /** The configured minor, e.g. "1.37" (planKubernetesChange has accepted it). */
    kubernetesMinor: string;
    /** What makes the cluster exist (kubeadm init): the control plane's upgrade runs after it. */
    after: pulumi.Resource[];
    /** Logical name of a step; e.g. `${name}-${node}-${what}` as kubeadm.ts names its steps. */
    stepName: (node: UpgradeNode, what: string) => string;
    /** The component the steps belong to. */
    parent: pulumi.Resource;
}

export interface WorkerUpgrade {
    /** On the control plane: drains the worker unless its kubelet already runs the version. */
    drain: command.remote.Command;
    /** On the worker: kubeadm, `kubeadm upgrade node`, kubelet, kubectl, kubelet restart. */
    upgrade: command.remote.Command;
    /** On the control plane: waits for the new kubelet and Ready, then uncordons. */
    uncordon: command.remote.Command;
}

export interface KubernetesUpgrade {
    controlPlane: command.remote.Command;
    workers: WorkerUpgrade[];
    /** The version every node runs once the last step has finished, e.g. "v1.37.2". */
    version: pulumi.Output<string>;
}

/** A step's one-line stdout (a version, a date), without the trailing newline. */
export const line = (step: command.remote.Command): pulumi.Output<string> => step.stdout.apply((s) => s.trim());

/**
 * The upgrade steps: the control plane first, then the workers one at a time. Every step prints the
 * version it established and the next step takes that version as a setting, so the order is data
 * flow: the control plane's version reaches worker 1's drain, worker 1's uncordon reaches worker 2's
 * drain, and so on. Only the control plane's step depends on the configured minor; the others change
 * only when the version it prints changes. Each script checks first, so on a new cluster, or when
 * nothing changed, every step is a no-op.
 */
export function kubernetesUpgradeSteps(args: KubernetesUpgradeArgs): KubernetesUpgrade {
    const cp = args.controlPlane;
    const opts = { parent: args.parent };
    const controlPlane = new command.remote.Command(
        args.stepName(cp, "upgrade"),
        {
            connection: cp.connection,
            create: remoteScript("upgrade-control-plane", { K8S_MINOR: args.kubernetesMinor, NODE_NAME: cp.name }),
            addPreviousOutputInEnv: false,
        },
        // Ordering only: a re-run because a worker was replaced would move the cluster to a newer patch.
        { ...opts, dependsOn: args.after },
    );
    let version = line(controlPlane);
    const workers = args.workers.map(({ node, joined }) => {
        const drain = new command.remote.Command(
            args.stepName(node, "upgrade-drain"),
            { connection: cp.connection, create: remoteScript("upgrade-drain", { NODE_NAME: node.name, KUBERNETES_VERSION: version }), addPreviousOutputInEnv: false },
            // The node must be registered before it can be drained; on a new cluster it joins first.
            { ...opts, dependsOn: [joined] },
        );
        const upgrade = new command.remote.Command(
            args.stepName(node, "upgrade"),
            { connection: node.connection, create: remoteScript("upgrade-worker", { KUBERNETES_VERSION: line(drain) }), addPreviousOutputInEnv: false },
            // Also when a replaced worker re-runs it (its connection changed): only once it has joined.
            { ...opts, dependsOn: [joined] },
        );
        const uncordon = new command.remote.Command(
            args.stepName(node, "upgrade-uncordon"),
            { connection: cp.connection, create: remoteScript("upgrade-uncordon", { NODE_NAME: node.name, KUBERNETES_VERSION: line(upgrade) }), addPreviousOutputInEnv: false },
            opts,
        );
        version = line(uncordon);
        return { drain, upgrade, uncordon };
    });
    return { controlPlane, workers, version };
}

export interface CredentialsArgs {
    controlPlane: UpgradeNode;
    /**
     * The control plane's version (`line(upgrade.controlPlane)`): `kubeadm upgrade apply` renews the
     * certificates, so a new version re-reads the expiry. Not the workers' chain: their upgrades leave
     * the certificates alone, and a worker added or removed must not touch this step.
     */
    version: pulumi.Input<string>;
    /** credentialsRenewalKey for this deployment. */
    renewal: string;
    parent: pulumi.Resource;
}

/**
 * The credentials step (control plane): renew-certs.sh prints when kubeadm's certificates (admin.conf's
 * client certificate stands for them) expire and renews them when due. It re-runs after every upgrade
 * of the control plane and when the renewal key changes, never otherwise. Its output (`line(step)`: an
 * RFC 3339 date, not a secret) is the `adminCredentialsExpire` stack output. The provider's own
 * credentials are the stack's (components/identity.ts) and do not depend on it.
 */
export function credentialsStep(name: string, args: CredentialsArgs): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            connection: args.controlPlane.connection,
            create: remoteScript("renew-certs", { RENEW_WITHIN_DAYS: String(renewWithinDays) }),
            triggers: [args.version, args.renewal],
            addPreviousOutputInEnv: false,
        },
        { parent: args.parent },
    );
}
