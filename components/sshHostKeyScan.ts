/**
 * What an SSH server at an address presents as its host key, like `ssh-keyscan -t ed25519`, through
 * the maintained `ssh2` client: its host verifier sees the server's ed25519 key during the key
 * exchange and refuses it, so the connection ends there. Nothing is authenticated and nothing of ours
 * is sent: the result only explains a mismatch early and clearly; pulumi-command's pinned `hostKey`
 * is what enforces trust.
 */
import { Client } from "ssh2";

export interface SshScan {
    /** Its ed25519 host key as an authorized_keys line; undefined if the exchange did not get that far. */
    hostKey?: string;
}

/** The authorized_keys line of a host key blob (RFC 4253 6.6: string algorithm, then the key data). */
export function authorizedKeyOfBlob(blob: Buffer): string {
    const length = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (length < 0 || 4 + length > blob.length) {
        throw new Error("not an SSH public key blob");
    }
    return `${blob.subarray(4, 4 + length).toString("ascii")} ${blob.toString("base64")}`;
}

/**
 * One attempt; undefined when nothing answered as an SSH server before `timeoutMs`. An SSH server
 * that answered but offered no ed25519 key gives a scan without `hostKey`.
 */
export function scanSshHostKey(host: string, port: number, timeoutMs: number): Promise<SshScan | undefined> {
    return new Promise((resolve) => {
        const client = new Client();
        let settled = false;
        let answered = false;
        let hostKey: string | undefined;
        const finish = () => {
            if (!settled) {
                settled = true;
                client.end();
                resolve(answered ? { hostKey } : undefined);
            }
        };
        client.on("error", (err: Error & { level?: string }) => {
            // The server spoke SSH if the failure came from the protocol or the key exchange.
            answered ||= hostKey !== undefined || err.level === "protocol" || err.level === "handshake";
            finish();
        });
        client.on("close", finish);
        client.on("ready", finish);
        client.connect({
            host,
            port,
            readyTimeout: Math.max(1, timeoutMs),
            // A username is required by the client; authentication is never reached.
            username: "host-key-scan",
            algorithms: { serverHostKey: ["ssh-ed25519"] },
            hostVerifier: (key: Buffer) => {
                answered = true;
                hostKey = authorizedKeyOfBlob(key);
                return false;
            },
        });
    });
}
