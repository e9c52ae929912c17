/**
 * Which SSH server Pulumi trusts, and at which address it finds it. See docs/node-access.md.
 *
 * GCE's guest agent (and cloud-init) generate a VM's SSH host keys at its first boot and publish
 * the public halves as guest attributes (namespace `hostkeys`, one key per algorithm) before sshd
 * starts. The program reads them through the Compute API, with the credentials that created the
 * VM, so every connection can pin the key of the machine it means to reach.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import { sshPort } from "./network";
import { scanSshHostKey, SshScan } from "./sshHostKeyScan";

/** The algorithm every connection pins (pulumi-command then offers only it to the server). */
export const hostKeyAlgorithm = "ssh-ed25519";
/** Guest-attribute namespace in which the guest agent publishes the host public keys. */
export const hostKeysNamespace = "hostkeys";

/** How long to wait for a new VM to publish its host key, counted from the VM's creation. */
export const hostKeyWaitSeconds = 600;
const hostKeyPollSeconds = 5;
/** Even an old VM (or a skewed clock) gets this long before its missing key fails the run. */
const hostKeyMinimumWaitSeconds = 60;

export interface GuestAttribute {
    namespace?: string;
    key?: string;
    value?: string;
}

/**
 * The pinned host key, as pulumi-command's `hostKey` takes it (an authorized_keys line, parsed by
 * Go's ssh.ParseAuthorizedKey), or undefined while the VM has not published it. A published value
 * that is not an ed25519 public key is an error, not something to pin.
 */
export function hostKeyFromGuestAttributes(attributes: GuestAttribute[] | undefined, node: string): string | undefined {
    const blob = (attributes ?? []).find((a) => a.namespace === hostKeysNamespace && a.key === hostKeyAlgorithm)?.value?.trim();
    if (!blob) {
        return undefined;
    }
    if (!isEd25519Blob(blob)) {
        throw new Error(
            `${node}: guest attribute ${hostKeysNamespace}/${hostKeyAlgorithm} is not a base64 ${hostKeyAlgorithm} public key ` +
                `(got ${JSON.stringify(blob.slice(0, 80))}); Pulumi will not SSH to this VM. See docs/node-access.md.`,
        );
    }
    return `${hostKeyAlgorithm} ${blob}`;
}

/** SSH wire format (RFC 8709): string "ssh-ed25519", string key (32 bytes). */
function isEd25519Blob(blob: string): boolean {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) {
        return false;
    }
    const bytes = Buffer.from(blob, "base64");
    const name = Buffer.from(hostKeyAlgorithm);
    return (
        bytes.length === 4 + name.length + 4 + 32 &&
        bytes.readUInt32BE(0) === name.length &&
        bytes.subarray(4, 4 + name.length).equals(name) &&
        bytes.readUInt32BE(4 + name.length) === 32
    );
}

export interface WaitForHostKeyOptions {
    /** Instance name, for messages. */
    node: string;
    zone: string;
    /** Epoch milliseconds after which a missing key fails the run. */
    deadline: number;
    pollMs: number;
    /** In a preview, read once and report "not yet" instead of waiting. */
    preview: boolean;
    now?: () => number;
    sleep?: (ms: number) => Promise<void>;
}

/**
 * Reads the guest attributes until the host key is there. The provider reports "nothing published
 * yet" as an empty result (and a failed read as an error); both are retried until the deadline.
 * Returns undefined only in a preview.
 */
export async function waitForHostKey(read: () => Promise<GuestAttribute[] | undefined>, opts: WaitForHostKeyOptions): Promise<string | undefined> {
    const now = opts.now ?? Date.now;
    const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let lastError: unknown;
    for (;;) {
        try {
            const key = hostKeyFromGuestAttributes(await read(), opts.node);
            if (key) {
                return key;
            }
            lastError = undefined;
        } catch (e) {
            if (e instanceof Error && e.message.includes(`guest attribute ${hostKeysNamespace}/`)) {
                throw e;
            }
            lastError = e;
        }
        if (opts.preview) {
            return undefined;
        }
        if (now() >= opts.deadline) {
            throw new Error(missingHostKeyMessage(opts.node, opts.zone, lastError));
        }
        await sleep(opts.pollMs);
    }
}

function missingHostKeyMessage(node: string, zone: string, lastError: unknown): string {
    const cause = lastError instanceof Error ? ` The last read failed: ${lastError.message}.` : "";
    return (
        `${node}: the VM has not published its SSH host key (guest attribute ${hostKeysNamespace}/${hostKeyAlgorithm}), ` +
        `so Pulumi will not SSH to it: every connection is pinned to that key.${cause} ` +
        `Check that the VM boots (gcloud compute instances get-serial-port-output ${node} --zone ${zone}) and that its ` +
        `metadata has enable-guest-attributes=TRUE. A VM created before guest attributes were enabled publishes only ` +
        `when it is recreated: see docs/node-access.md.`
    );
}

/**
 * Scans host:port until an SSH server answers, or until the deadline (undefined then: the node's
 * first SSH step reports what is wrong). Nothing of ours is sent.
 */
export async function waitForSshd(host: string, port: number, deadline: number, pollMs: number): Promise<SshScan | undefined> {
    for (;;) {
        const scan = await scanSshHostKey(host, port, Math.max(1, Math.min(10_000, deadline - Date.now())));
        if (scan !== undefined || Date.now() >= deadline) {
            return scan;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    }
}

/** OpenSSH's fingerprint of an authorized_keys line: "SHA256:" and the unpadded base64 digest. */
export function fingerprint(keyLine: string): string {
    const blob = Buffer.from(keyLine.split(" ")[1] ?? "", "base64");
    return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Why the node's next SSH step will fail, in words, when the server at its address is not the VM. */
export function hostKeyMismatchMessage(node: string, address: string, presented: string, published: string): string {
    return (
        `${node}: the SSH server at ${address} presents host key ${fingerprint(presented)}, but the VM published ` +
        `${fingerprint(published)} (guest attribute ${hostKeysNamespace}/${hostKeyAlgorithm}). Something other than this VM ` +
        `answers at that address (if the VM is stopped, its old ephemeral IP may belong to another machine now). Pulumi ` +
        `sends it nothing: every connection is pinned, and a step that dials it fails with "ssh: host key mismatch". ` +
        `See docs/node-access.md.`
    );
}

/** A VM as the program sees it when it reads the VM's host key. */
export interface VmForHostKey {
    name: string;
    zone: string;
    /** RFC 3339 creation time (the instance's `creationTimestamp`); absent under test mocks. */
    created?: string;
    /** Where the node's first SSH step dials it. */
    address?: string;
}

export interface HostKeyIo {
    readAttributes: () => Promise<GuestAttribute[] | undefined>;
    waitForSshd: (host: string, port: number, deadline: number) => Promise<SshScan | undefined>;
    preview: boolean;
    now?: () => number;
    sleep?: (ms: number) => Promise<void>;
    waitSeconds?: number;
}

export interface HostKeyReading {
    /** The key to pin; undefined only in a preview, before the VM has published it. */
    key?: string;
    /** Set when the server at the VM's address presents another key: the next SSH step will fail. */
    mismatch?: string;
}

/**
 * Reads the VM's published host key. On a VM in its first boot it first waits for sshd to answer
 * at the VM's address: sshd starts after the guest agent and cloud-init (either or both may
 * generate and publish host keys at first boot), so the value read then is the one sshd serves,
 * not one a later writer replaces; and what sshd presents is compared with it.
 */
export async function readPublishedHostKey(vm: VmForHostKey, io: HostKeyIo): Promise<HostKeyReading> {
    const now = io.now ?? Date.now;
    const waitMs = (io.waitSeconds ?? hostKeyWaitSeconds) * 1000;
    const createdAt = Date.parse(vm.created ?? "");
    const deadline = Math.max((Number.isNaN(createdAt) ? now() : createdAt) + waitMs, now() + Math.min(waitMs, hostKeyMinimumWaitSeconds * 1000));
    // Only a VM in its first boot is about to be dialled for the first time; one past it (or of
    // unknown age) published long ago, and its address is not looked at.
    const booting = !Number.isNaN(createdAt) && now() < createdAt + waitMs;
    const port = Number(sshPort);
    const seen = booting && !io.preview && vm.address ? await io.waitForSshd(vm.address, port, deadline) : undefined;
    const key = await waitForHostKey(io.readAttributes, {
        node: vm.name,
        zone: vm.zone,
        deadline,
        pollMs: hostKeyPollSeconds * 1000,
        preview: io.preview,
        now: io.now,
        sleep: io.sleep,
    });
    const mismatch = key && seen?.hostKey && seen.hostKey !== key ? hostKeyMismatchMessage(vm.name, `${vm.address}:${port}`, seen.hostKey, key) : undefined;
    return { key, mismatch };
}

/**
 * The VM's published SSH host key, read through the Compute API on every run (so a replaced VM's
 * new key is used as soon as it exists). Unknown in a preview until the VM has published it.
 */
export function publishedHostKey(instance: gcp.compute.Instance, address: pulumi.Input<string>, parent: pulumi.Resource): pulumi.Output<string> {
    return pulumi
        .all([instance.name, instance.zone, instance.project, instance.creationTimestamp, address, instance.instanceId])
        .apply(async ([name, zone, project, created, host]) => {
            const { key, mismatch } = await readPublishedHostKey(
                { name, zone, created, address: host },
                {
                    readAttributes: async () =>
                        (await gcp.compute.getInstanceGuestAttributes({ name, zone, project, queryPath: `${hostKeysNamespace}/` }, { parent }))
                            .queryValues,
                    waitForSshd: (h, port, deadline) => waitForSshd(h, port, deadline, hostKeyPollSeconds * 1000),
                    preview: pulumi.runtime.isDryRun(),
                },
            );
            if (mismatch) {
                pulumi.log.warn(mismatch, instance);
            }
            return key ?? (pulumi.unknown as unknown as string);
        });
}

/** The external IP the Compute API reports for the VM now; `fallback` while it has none (stopped). */
export function currentExternalIp(instance: gcp.compute.Instance, fallback: pulumi.Input<string>, parent: pulumi.Resource): pulumi.Output<string> {
    return pulumi
        .all([instance.name, instance.zone, instance.project, instance.instanceId, fallback])
        .apply(async ([name, zone, project, , last]) => {
            const now = await gcp.compute.getInstance({ name, zone, project }, { parent });
            return now.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIp || last;
        });
}
