/**
 * Scanning the host key an SSH server presents (components/sshHostKeyScan.ts) and waiting for sshd
 * (components/hostKeys.ts), against the recorded bytes of a real server on a local port.
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { waitForSshd } from "../components/hostKeys";
import { scanSshHostKey } from "../components/sshHostKeyScan";

const transcript = Buffer.from(fs.readFileSync(path.join(__dirname, "fixtures", "ssh", "x-crypto-v0.48.0-server.b64"), "utf8"), "base64");
const recordedKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEgAQLmFUvWRj9yBbt/ftTTD2ob9tMep4wU/UfW4HFqr";

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
    sockets.splice(0).forEach((s) => s.destroy());
    await Promise.all(servers.splice(0).map((srv) => new Promise((resolve) => srv.close(resolve))));
});

/**
 * Replays the recorded server: its identification line at once, the rest once the client has sent
 * its own (`chunk` bytes at a time), or a fixed greeting, or silence.
 */
function listen(behaviour: { replay: true; chunk?: number } | { greeting?: string }, port = 0): Promise<number> {
    const srv = net.createServer((socket) => {
        sockets.push(socket);
        socket.on("error", () => undefined);
        if ("replay" in behaviour) {
            const split = transcript.indexOf(0x0a) + 1;
            socket.write(transcript.subarray(0, split));
            let sent = false;
            socket.on("data", async (data) => {
                if (sent || !data.includes(0x0a)) {
                    return;
                }
                sent = true;
                const step = behaviour.chunk ?? transcript.length;
                for (let i = split; i < transcript.length && !socket.destroyed; i += step) {
                    socket.write(transcript.subarray(i, i + step));
                    await new Promise((resolve) => setImmediate(resolve));
                }
            });
        } else if (behaviour.greeting !== undefined) {
            socket.write(behaviour.greeting);
        }
    });
    servers.push(srv);
    return new Promise((resolve) => srv.listen(port, "127.0.0.1", () => resolve((srv.address() as net.AddressInfo).port)));
}

describe("scanSshHostKey", () => {
    test("reads the ed25519 key a real server (golang.org/x/crypto/ssh) presents", async () => {
        const port = await listen({ replay: true });
        await expect(scanSshHostKey("127.0.0.1", port, 5_000)).resolves.toEqual({ banner: "SSH-2.0-Go", hostKey: recordedKey });
    });

    test("however the bytes arrive", async () => {
        const port = await listen({ replay: true, chunk: 7 });
        await expect(scanSshHostKey("127.0.0.1", port, 5_000)).resolves.toEqual({ banner: "SSH-2.0-Go", hostKey: recordedKey });
    });

    test("a server that sends other lines before its identification (RFC 4253 4.2) but no key exchange", async () => {
        const port = await listen({ greeting: "Welcome\r\nSSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n" });
        await expect(scanSshHostKey("127.0.0.1", port, 300)).resolves.toEqual({ banner: "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13", hostKey: undefined });
    });

    test.each([
        ["nothing listens", undefined],
        ["the port accepts but stays silent (a socket-activated sshd still waiting for first boot)", {}],
        ["something that is not sshd answers", { greeting: "HTTP/1.1 400 Bad Request\r\n\r\n" }],
        ["garbage follows the identification", { greeting: "SSH-2.0-x\r\n\xff\xff\xff\xffjunk" }],
    ])("no key when %s", async (_, behaviour) => {
        let port = await listen({});
        if (behaviour === undefined) {
            await new Promise((resolve) => servers.pop()!.close(resolve));
        } else {
            await new Promise((resolve) => servers.pop()!.close(resolve));
            port = await listen(behaviour, port);
        }
        const scan = await scanSshHostKey("127.0.0.1", port, 300);
        expect(scan?.hostKey).toBeUndefined();
    });
});

describe("waitForSshd (a new VM's key is read only once sshd answers)", () => {
    test("keeps trying while nothing listens, and returns what the server presents once it starts", async () => {
        const port = await listen({});
        await new Promise((resolve) => servers.pop()!.close(resolve));
        const started = new Promise((resolve) => setTimeout(() => resolve(listen({ replay: true }, port)), 300));
        await expect(waitForSshd("127.0.0.1", port, Date.now() + 10_000, 50)).resolves.toEqual({ banner: "SSH-2.0-Go", hostKey: recordedKey });
        await started;
    });

    test("gives up at the deadline when the port stays silent", async () => {
        const port = await listen({});
        const start = Date.now();
        await expect(waitForSshd("127.0.0.1", port, start + 600, 50)).resolves.toBeUndefined();
        expect(Date.now() - start).toBeGreaterThanOrEqual(590);
        expect(Date.now() - start).toBeLessThan(3_000);
    });
});
