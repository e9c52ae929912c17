/**
 * What an SSH server at an address presents as its host key, like `ssh-keyscan -t ed25519`: the
 * identification exchange and the curve25519 key exchange up to the server's reply (RFC 4253,
 * RFC 8731), then hang up. Nothing is authenticated and nothing of ours is sent: the result only
 * explains a mismatch early and clearly; pulumi-command's pinned `hostKey` is what enforces trust.
 */
import { generateKeyPairSync, randomBytes } from "crypto";
import * as net from "net";

export interface SshScan {
    /** The server's identification line, e.g. "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13". */
    banner: string;
    /** Its ed25519 host key as an authorized_keys line; undefined if the exchange did not get that far. */
    hostKey?: string;
}

const msg = { disconnect: 1, kexInit: 20, ecdhInit: 30, ecdhReply: 31 } as const;
const clientIdentification = "SSH-2.0-kubeadm_gcp_host_key_check";
const maxPacket = 256 * 1024;

const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
};
const sshString = (data: Buffer | string) => {
    const bytes = typeof data === "string" ? Buffer.from(data, "ascii") : data;
    return Buffer.concat([u32(bytes.length), bytes]);
};

/** Our KEXINIT: only curve25519 and ssh-ed25519, and ciphers every current OpenSSH accepts. */
function kexInit(): Buffer {
    const lists = [
        "curve25519-sha256,curve25519-sha256@libssh.org",
        "ssh-ed25519",
        "aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
        "aes128-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
        "hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha2-512",
        "hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha2-512",
        "none",
        "none",
        "",
        "",
    ];
    return Buffer.concat([Buffer.from([msg.kexInit]), randomBytes(16), ...lists.map((l) => sshString(l)), Buffer.from([0]), u32(0)]);
}

/** Binary packet before any keys are in use: length, padding length, payload, random padding. */
export function sshPacket(payload: Buffer): Buffer {
    let padding = 8 - ((5 + payload.length) % 8);
    if (padding < 4) {
        padding += 8;
    }
    return Buffer.concat([u32(1 + payload.length + padding), Buffer.from([padding]), payload, randomBytes(padding)]);
}

function readString(buf: Buffer, offset: number): { value: Buffer; next: number } {
    const length = buf.readUInt32BE(offset);
    if (offset + 4 + length > buf.length) {
        throw new Error("truncated string");
    }
    return { value: buf.subarray(offset + 4, offset + 4 + length), next: offset + 4 + length };
}

/** The host key blob K_S of a KEX_ECDH_REPLY payload, as an authorized_keys line. */
export function hostKeyOfEcdhReply(payload: Buffer): string {
    const blob = readString(payload, 1).value;
    const algorithm = readString(blob, 0).value.toString("ascii");
    return `${algorithm} ${blob.toString("base64")}`;
}

/** One attempt; undefined when nothing answered with an SSH identification line before `timeoutMs`. */
export function scanSshHostKey(host: string, port: number, timeoutMs: number): Promise<SshScan | undefined> {
    return new Promise((resolve) => {
        let pending = Buffer.alloc(0);
        let banner: string | undefined;
        let settled = false;
        const socket = net.createConnection({ host, port });
        const finish = (hostKey?: string) => {
            if (!settled) {
                settled = true;
                socket.destroy();
                resolve(banner === undefined ? undefined : { banner, hostKey });
            }
        };
        socket.setTimeout(timeoutMs, () => finish());
        socket.on("error", () => finish());
        socket.on("close", () => finish());

        const readIdentification = (): boolean => {
            // RFC 4253 4.2: the server may send other lines before its "SSH-" line.
            for (let nl = pending.indexOf(0x0a); nl >= 0; nl = pending.indexOf(0x0a)) {
                const line = pending.subarray(0, nl).toString("latin1").replace(/\r$/, "");
                pending = pending.subarray(nl + 1);
                if (line.startsWith("SSH-")) {
                    banner = line;
                    return true;
                }
            }
            if (pending.length > 8192) {
                finish();
            }
            return false;
        };
        const nextPacket = (): Buffer | undefined => {
            if (pending.length < 5) {
                return undefined;
            }
            const length = pending.readUInt32BE(0);
            if (length > maxPacket || pending[4] >= length) {
                throw new Error("not an SSH packet");
            }
            if (pending.length < 4 + length) {
                return undefined;
            }
            const payload = pending.subarray(5, 4 + length - pending[4]);
            pending = pending.subarray(4 + length);
            return payload;
        };

        let sentEcdhInit = false;
        socket.on("data", (chunk: Buffer) => {
            pending = Buffer.concat([pending, chunk]);
            try {
                if (banner === undefined) {
                    if (!readIdentification()) {
                        return;
                    }
                    socket.write(`${clientIdentification}\r\n`);
                    socket.write(sshPacket(kexInit()));
                }
                for (let payload = nextPacket(); payload; payload = nextPacket()) {
                    if (payload[0] === msg.kexInit && !sentEcdhInit) {
                        sentEcdhInit = true;
                        const ephemeral = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" }).x!;
                        socket.write(sshPacket(Buffer.concat([Buffer.from([msg.ecdhInit]), sshString(Buffer.from(ephemeral, "base64url"))])));
                    } else if (payload[0] === msg.ecdhReply) {
                        return finish(hostKeyOfEcdhReply(payload));
                    } else if (payload[0] === msg.disconnect) {
                        return finish();
                    }
                }
            } catch {
                finish();
            }
        });
    });
}
