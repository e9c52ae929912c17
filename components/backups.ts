import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BackupConfig, snapshotNamePattern } from "./config";

export interface EtcdBackupsArgs {
    clusterName: string;
    /** Region of the bucket: the cluster's, so a snapshot never leaves it. */
    region: string;
    /** The control plane's service account: the one identity that may write and read the snapshots. */
    writerServiceAccountEmail: pulumi.Input<string>;
    settings: BackupConfig;
}

/** The bucket's roles for the control plane: add objects (never replace or delete them) and read them back. */
export const backupWriterRoles = ["roles/storage.objectCreator", "roles/storage.objectViewer"] as const;

/** When a snapshot was taken, from its name (etcd/<uid>/20261206T210000Z-<reason>.snapshot), RFC 3339. */
export function snapshotTime(name: string): string | undefined {
    const m = /\/(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(name);
    return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z` : undefined;
}

/** The newest snapshot among object names (names sort by time within a cluster; across clusters by time too). */
export function newestSnapshot(names: readonly string[]): { name: string; time: string } | undefined {
    const snapshots = names.filter((n) => snapshotNamePattern.test(n)).map((name) => ({ name, time: snapshotTime(name)! }));
    snapshots.sort((a, b) => (a.time === b.time ? a.name.localeCompare(b.name) : a.time.localeCompare(b.time)));
    return snapshots[snapshots.length - 1];
}

/**
 * Where the cluster's etcd snapshots live, and the key they are encrypted with (docs/backups.md).
 *
 * A GCS bucket of the stack's: uniform bucket-level access, public access prevention enforced,
 * versioning on, snapshots expired after `retentionDays`. Only the control plane's own service
 * account may add and read objects, through grants on this bucket alone. The key is 32 random bytes
 * in the stack's secret state (or `etcdBackupKey` from config); the control plane encrypts every
 * snapshot with it before upload (scripts/etcd-backup.sh), so the bucket never holds one in clear.
 */
export class EtcdBackups extends pulumi.ComponentResource {
    readonly bucketName: pulumi.Output<string>;
    /** gs://<bucket>: what etcd-backup.sh writes to and restores from. */
    readonly url: pulumi.Output<string>;
    /** The snapshots' key, 64 hex characters; secret. */
    readonly key: pulumi.Output<string>;
    /** The newest snapshot in the bucket as this `up` or preview saw it; undefined before the first. */
    readonly newest: pulumi.Output<{ name: string; time: string } | undefined>;

    constructor(name: string, args: EtcdBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:backups:EtcdBackups", name, {}, opts);
        const { settings } = args;

        const bucket = new gcp.storage.Bucket(
            `${name}-bucket`,
            {
                location: args.region.toUpperCase(),
                uniformBucketLevelAccess: true,
                publicAccessPrevention: "enforced",
                // A snapshot overwritten or deleted by mistake stays recoverable as a noncurrent version.
                versioning: { enabled: true },
                lifecycleRules: [
                    { action: { type: "Delete" }, condition: { age: settings.retentionDays, withState: "LIVE", matchesPrefixes: ["etcd/"] } },
                    // A deleted or expired snapshot lingers one day as a noncurrent version, then goes.
                    { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: 1, withState: "ARCHIVED" } },
                ],
                // `pulumi destroy` removes the snapshots with the bucket unless they are to be kept.
                forceDestroy: !settings.retainOnDestroy,
                labels: { cluster: args.clusterName, purpose: "etcd-snapshots" },
            },
            { parent: this, retainOnDelete: settings.retainOnDestroy },
        );
        const grants = backupWriterRoles.map(
            (role) =>
                new gcp.storage.BucketIAMMember(
                `${name}-${role.replace(/^roles\/storage\./, "").toLowerCase()}`,
                    { bucket: bucket.name, role, member: pulumi.interpolate`serviceAccount:${args.writerServiceAccountEmail}` },
                    { parent: this, retainOnDelete: settings.retainOnDestroy },
                ),
        );
        this.bucketName = bucket.name;
        // Known once the control plane may use it: the steps that read the URL wait for the grants.
        this.url = pulumi.all([bucket.name, ...grants.map((g) => g.id)]).apply(([bucketName]) => `gs://${bucketName}`);
        this.key = pulumi.secret(
            settings.key ?? new random.RandomBytes(`${name}-key`, { length: 32 }, { parent: this }).hex,
        );
        // Read at preview too (an invoke, not a resource): the output shows how fresh the last snapshot is.
        this.newest = gcp.storage
            .getBucketObjectsOutput({ bucket: bucket.name, prefix: "etcd/" }, { parent: this })
            .apply((r) => newestSnapshot((r.bucketObjects ?? []).map((o) => o.name ?? "")));

        this.registerOutputs({ bucketName: this.bucketName, url: this.url, newest: this.newest });
    }
}
