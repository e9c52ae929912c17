/**
 * Scanning the host key an SSH server presents (components/sshHostKeyScan.ts) and waiting for sshd
 * (components/hostKeys.ts), against real SSH servers on local ports (ssh2's server, with keys made
 * for each test run) and against things that are not SSH servers.
 */
import * as net from "net";
import { Server, utils } from "ssh2";
import { waitForSshd } from "../components/hostKeys";
import { authorizedKeyOfBlob, scanSshHostKey } from "../components/sshHostKeyScan";

const ed25519 = utils.generateKeyPairSync("ed25519");
const rsa = utils.generateKeyPairSync("rsa", { bits: 2048 });
/** The authorized_keys line of a generated key pair, as the guest agent publishes it. */
const keyLine = (pair: { public: string }) => pair.public.trim().split(" ").slice(0, 2).join(" ");

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
});

/** A real SSH server with these host keys; every client is turned away before it authenticates. */
function sshServer(hostKeys: string[], port = 0): Promise<number> {
    const server = new Server({ hostKeys }, (client) => {
        client.on("error", () => undefined);
        client.on("authentication", (ctx) => ctx.reject());
    });
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

/** A plain TCP server that writes `greeting` (or nothing) to whoever connects. */
function tcpServer(greeting?: string, port = 0): Promise<number> {
    const sockets: net.Socket[] = [];
    const srv = net.createServer((socket) => {
        sockets.push(socket);
        socket.on("error", () => undefined);
        if (greeting !== undefined) {
            socket.write(greeting);
        }
    });
    closers.push(() => {
        sockets.forEach((s) => s.destroy());
        return new Promise((resolve) => srv.close(() => resolve()));
    });
    return new Promise((resolve) => srv.listen(port, "127.0.0.1", () => resolve((srv.address() as net.AddressInfo).port)));
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
    const port = await tcpServer();
    await closers.pop()!();
    return port;
}

describe("authorizedKeyOfBlob", () => {
    test("names the key's algorithm from the blob itself", () => {
        const blob = Buffer.from(keyLine(ed25519).split(" ")[1], "base64");
        expect(authorizedKeyOfBlob(blob)).toBe(keyLine(ed25519));
    });

    test("refuses what is not a key blob", () => {
        expect(() => authorizedKeyOfBlob(Buffer.from([0, 0, 0, 9, 1]))).toThrow(/not an SSH public key blob/);
    });
});

describe("scanSshHostKey", () => {
    test("reads the ed25519 key an SSH server presents, among its host keys", async () => {
        const port = await sshServer([rsa.private, ed25519.private]);
        await expect(scanSshHostKey("127.0.0.1", port, 5_000)).resolves.toEqual({ hostKey: keyLine(ed25519) });
    });

    test("an SSH server without an ed25519 key answers, with no key to compare", async () => {
        const port = await sshServer([rsa.private]);
        await expect(scanSshHostKey("127.0.0.1", port, 5_000)).resolves.toEqual({ hostKey: undefined });
    });

    test.each([
        ["nothing listens", null],
        ["the port accepts but stays silent (a socket-activated sshd still waiting for first boot)", undefined],
        ["something that is not sshd answers", "HTTP/1.1 400 Bad Request\r\n\r\n"],
        ["garbage follows the identification", "SSH-2.0-x\r\n\xff\xff\xff\xffjunk"],
    ])("no key when %s", async (_, greeting) => {
        const port = greeting === null ? await closedPort() : await tcpServer(greeting);
        const scan = await scanSshHostKey("127.0.0.1", port, 500);
        expect(scan?.hostKey).toBeUndefined();
    });
});

describe("waitForSshd (a new VM's key is read only once sshd answers)", () => {
    test("keeps trying while nothing listens, and returns what the server presents once it starts", async () => {
        const port = await closedPort();
        const started = new Promise((resolve) => setTimeout(() => resolve(sshServer([ed25519.private], port)), 300));
        await expect(waitForSshd("127.0.0.1", port, Date.now() + 10_000, 50)).resolves.toEqual({ hostKey: keyLine(ed25519) });
        await started;
    });

    test("gives up at the deadline when the port stays silent", async () => {
        const port = await tcpServer();
        const start = Date.now();
        await expect(waitForSshd("127.0.0.1", port, start + 600, 50)).resolves.toBeUndefined();
        expect(Date.now() - start).toBeGreaterThanOrEqual(590);
        expect(Date.now() - start).toBeLessThan(3_000);
    });
});
