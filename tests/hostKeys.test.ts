/**
 * Reading a VM's published SSH host key (components/hostKeys.ts), without the mock runtime.
 */
import * as net from "net";
import { hostKeyFromGuestAttributes, waitForHostKey, WaitForHostKeyOptions, waitForSshBanner } from "../components/hostKeys";

// Real `ssh-keygen -t ed25519` output (OpenSSH 9.2) of a throwaway key; the guest agent publishes
// the second field under hostkeys/<first field>.
const realPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFLarfK4yAIMEBsBUXonMJmj7cTpM87zx8ScmPUlEjCt root@vm";
const [algorithm, blob] = realPublicKey.split(" ");
// Real `ssh-keygen -t ecdsa` blob: a valid key, but of another algorithm.
const ecdsaBlob =
    "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJURyQMH8ESPRlKft7CkFCUeFh35qSTmPDuGA/mBADjUW0pkCuh4b1GkzaHAwStpobmFebF5K2qXBem827Tkbpo=";

const published = [
    { namespace: "hostkeys", key: "ecdsa-sha2-nistp256", value: ecdsaBlob },
    { namespace: "hostkeys", key: algorithm, value: `${blob}\n` },
];

describe("hostKeyFromGuestAttributes", () => {
    test("pins the ed25519 key the agent published, as an authorized_keys line", () => {
        expect(algorithm).toBe("ssh-ed25519");
        expect(hostKeyFromGuestAttributes(published, "n")).toBe(`ssh-ed25519 ${blob}`);
    });

    test("nothing published yet (or only other algorithms, or another namespace): undefined", () => {
        expect(hostKeyFromGuestAttributes(undefined, "n")).toBeUndefined();
        expect(hostKeyFromGuestAttributes([], "n")).toBeUndefined();
        expect(hostKeyFromGuestAttributes([published[0]], "n")).toBeUndefined();
        expect(hostKeyFromGuestAttributes([{ namespace: "other", key: "ssh-ed25519", value: blob }], "n")).toBeUndefined();
        expect(hostKeyFromGuestAttributes([{ namespace: "hostkeys", key: "ssh-ed25519", value: " " }], "n")).toBeUndefined();
    });

    test.each([
        ["an ecdsa key under the ed25519 name", ecdsaBlob],
        ["not base64", "not a key!"],
        ["a truncated key", blob.slice(0, 40)],
    ])("refuses %s, naming the node and the attribute", (_, value) => {
        expect(() => hostKeyFromGuestAttributes([{ namespace: "hostkeys", key: "ssh-ed25519", value }], "k8s-dev-worker-1")).toThrow(
            /^k8s-dev-worker-1: guest attribute hostkeys\/ssh-ed25519 is not a base64 ssh-ed25519 public key .*docs\/node-access\.md/,
        );
    });
});

describe("waitForHostKey", () => {
    /** A fake clock: sleeping advances it; reads return the given answers in turn. */
    function harness(answers: (() => unknown)[], overrides: Partial<WaitForHostKeyOptions> = {}) {
        let t = 0;
        const reads: number[] = [];
        const read = async () => {
            reads.push(t);
            const answer = answers[Math.min(reads.length - 1, answers.length - 1)];
            return answer() as any;
        };
        const opts: WaitForHostKeyOptions = {
            node: "k8s-dev-worker-1",
            zone: "us-central1-a",
            deadline: 60_000,
            pollMs: 5_000,
            preview: false,
            now: () => t,
            sleep: async (ms) => {
                t += ms;
            },
            ...overrides,
        };
        return { reads, run: () => waitForHostKey(read, opts) };
    }

    test("waits for a new VM to publish, then returns its key", async () => {
        const h = harness([() => [], () => undefined, () => published]);
        await expect(h.run()).resolves.toBe(`ssh-ed25519 ${blob}`);
        expect(h.reads).toEqual([0, 5_000, 10_000]);
    });

    test("a read that fails is retried like one that finds nothing", async () => {
        const h = harness([
            () => {
                throw new Error("503 backend error");
            },
            () => published,
        ]);
        await expect(h.run()).resolves.toBe(`ssh-ed25519 ${blob}`);
    });

    test("past the deadline it fails, saying what is missing, what to check and where to read on", async () => {
        const h = harness([() => []]);
        const error = h.run();
        await expect(error).rejects.toThrow(/^k8s-dev-worker-1: the VM has not published its SSH host key \(guest attribute hostkeys\/ssh-ed25519\)/);
        await expect(error).rejects.toThrow(/get-serial-port-output k8s-dev-worker-1 --zone us-central1-a/);
        await expect(error).rejects.toThrow(/enable-guest-attributes=TRUE.*docs\/node-access\.md/);
        expect(h.reads).toHaveLength(13);
    });

    test("the last failed read is part of the message", async () => {
        const h = harness([
            () => {
                throw new Error("403 Forbidden");
            },
        ]);
        await expect(h.run()).rejects.toThrow(/The last read failed: 403 Forbidden\./);
    });

    test("a malformed key fails at once: waiting would not fix it", async () => {
        const h = harness([() => [{ namespace: "hostkeys", key: "ssh-ed25519", value: "garbage" }]]);
        await expect(h.run()).rejects.toThrow(/is not a base64 ssh-ed25519 public key/);
        expect(h.reads).toHaveLength(1);
    });

    test("a preview reads once and reports not-yet instead of waiting", async () => {
        const h = harness([() => []], { preview: true });
        await expect(h.run()).resolves.toBeUndefined();
        expect(h.reads).toEqual([0]);
        await expect(harness([() => published], { preview: true }).run()).resolves.toBe(`ssh-ed25519 ${blob}`);
    });
});

describe("waitForSshBanner (a new VM's key is read only once sshd answers)", () => {
    const servers: net.Server[] = [];
    afterEach(async () => {
        await Promise.all(servers.splice(0).map((srv) => new Promise((resolve) => srv.close(resolve))));
    });
    /** A local server that greets each connection with `greeting` (or says nothing). */
    function listen(greeting: string | undefined, port = 0): Promise<number> {
        const srv = net.createServer((socket) => {
            socket.on("error", () => undefined);
            if (greeting !== undefined) {
                socket.write(greeting);
            }
        });
        servers.push(srv);
        return new Promise((resolve) => srv.listen(port, "127.0.0.1", () => resolve((srv.address() as net.AddressInfo).port)));
    }
    const freePort = async () => {
        const port = await listen(undefined);
        await new Promise((resolve) => servers.pop()!.close(resolve));
        return port;
    };

    test("returns sshd's identification line, also after other lines (RFC 4253 4.2)", async () => {
        const port = await listen("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n");
        await expect(waitForSshBanner("127.0.0.1", port, Date.now() + 5_000, 50)).resolves.toBe("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13");
        const chatty = await listen("Welcome\r\nSSH-2.0-OpenSSH_9.6p1\r\n");
        await expect(waitForSshBanner("127.0.0.1", chatty, Date.now() + 5_000, 50)).resolves.toBe("SSH-2.0-OpenSSH_9.6p1");
    });

    test("keeps trying while nothing listens, and returns once sshd starts", async () => {
        const port = await freePort();
        const started = new Promise((resolve) => setTimeout(() => resolve(listen("SSH-2.0-late\r\n", port)), 300));
        await expect(waitForSshBanner("127.0.0.1", port, Date.now() + 10_000, 50)).resolves.toBe("SSH-2.0-late");
        await started;
    });

    test.each([
        ["a port that accepts but stays silent (a socket-activated sshd still waiting for first boot)", undefined],
        ["something that is not sshd", "HTTP/1.1 400 Bad Request\r\n\r\n"],
    ])("gives up at the deadline without a banner for %s", async (_, greeting) => {
        const port = await listen(greeting);
        const start = Date.now();
        await expect(waitForSshBanner("127.0.0.1", port, start + 600, 50)).resolves.toBeUndefined();
        expect(Date.now() - start).toBeGreaterThanOrEqual(590);
        expect(Date.now() - start).toBeLessThan(3_000);
    });
});
