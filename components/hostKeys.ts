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
import * as net from "net";
import { sshPort } from "./network";

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
 * Resolves with sshd's banner line once something at host:port sends one, or with undefined at the
 * deadline (the node's first SSH step then reports what is wrong). Only reads: nothing is sent.
 */
export async function waitForSshBanner(host: string, port: number, deadline: number, pollMs: number): Promise<string | undefined> {
    for (;;) {
        const banner = await readBanner(host, port, Math.max(1, Math.min(10_000, deadline - Date.now())));
        if (banner !== undefined || Date.now() >= deadline) {
            return banner;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
    }
}

function readBanner(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
        let received = "";
        const socket = net.createConnection({ host, port });
        const done = (banner: string | undefined) => {
            socket.destroy();
            resolve(banner);
        };
        socket.setTimeout(timeoutMs, () => done(undefined));
        socket.on("error", () => done(undefined));
        socket.on("close", () => done(undefined));
        socket.on("data", (chunk) => {
            received += chunk.toString("latin1");
            // RFC 4253 4.2: the server may send other lines before its "SSH-" identification line.
            const lines = received.split("\n").slice(0, -1);
            const line = lines.map((l) => l.replace(/\r$/, "")).find((l) => l.startsWith("SSH-"));
            if (line !== undefined) {
                done(line);
            } else if (received.length > 8192) {
                done(undefined);
            }
        });
    });
}

/**
 * The VM's published SSH host key, read through the Compute API on every run (so a replaced VM's
 * new key is used as soon as it exists). Unknown in a preview until the VM has published it.
 *
 * On a new VM the key is read only once sshd answers at `address`: sshd starts after the guest
 * agent and cloud-init (both generate and publish host keys at first boot, one after the other),
 * so the value read then is the one sshd serves, not one a later writer replaces.
 */
export function publishedHostKey(
    instance: gcp.compute.Instance,
    address: pulumi.Input<string>,
    parent: pulumi.Resource,
    waitSeconds = hostKeyWaitSeconds,
): pulumi.Output<string> {
    return pulumi
        .all([instance.name, instance.zone, instance.project, instance.creationTimestamp, address, instance.instanceId])
        .apply(async ([name, zone, project, created, host]) => {
            const preview = pulumi.runtime.isDryRun();
            const createdAt = Date.parse(created ?? "");
            const deadline = Math.max(
                (Number.isNaN(createdAt) ? Date.now() : createdAt) + waitSeconds * 1000,
                Date.now() + Math.min(waitSeconds, hostKeyMinimumWaitSeconds) * 1000,
            );
            // A VM past its first boot (or of unknown age) published long ago: nothing to wait for.
            const booting = !Number.isNaN(createdAt) && Date.now() < createdAt + waitSeconds * 1000;
            if (booting && !preview && host) {
                await waitForSshBanner(host, Number(sshPort), deadline, hostKeyPollSeconds * 1000);
            }
            const key = await waitForHostKey(
                async () =>
                    (await gcp.compute.getInstanceGuestAttributes({ name, zone, project, queryPath: `${hostKeysNamespace}/` }, { parent }))
                        .queryValues,
                { node: name, zone, deadline, pollMs: hostKeyPollSeconds * 1000, preview },
            );
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
