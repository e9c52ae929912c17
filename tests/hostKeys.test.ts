/**
 * Reading a VM's published SSH host key (components/hostKeys.ts), without the mock runtime.
 */
import {
    fingerprint,
    HostKeyIo,
    hostKeyFromGuestAttributes,
    hostKeyMismatchMessage,
    readPublishedHostKey,
    waitForHostKey,
    WaitForHostKeyOptions,
} from "../components/hostKeys";

// Real `ssh-keygen -t ed25519` output (OpenSSH 9.2) of a throwaway key; the guest agent publishes
// the second field under hostkeys/<first field>.
const realPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFLarfK4yAIMEBsBUXonMJmj7cTpM87zx8ScmPUlEjCt root@vm";
const [algorithm, blob] = realPublicKey.split(" ");
// What `ssh-keygen -lf` (OpenSSH 9.2) prints for that key.
const sshKeygenFingerprint = "SHA256:/uGsX8wbqD0Eq/lvAznLKLsVD2HeYmxzbNePFjO5INA";
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

describe("a server that is not the VM", () => {
    test("fingerprints read like OpenSSH's", () => {
        expect(fingerprint(realPublicKey)).toBe(sshKeygenFingerprint);
    });

    test("the mismatch message names node, address, both fingerprints, and where to read on", () => {
        const other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEgAQLmFUvWRj9yBbt/ftTTD2ob9tMep4wU/UfW4HFqr";
        const message = hostKeyMismatchMessage("k8s-dev-worker-1", "198.51.100.7:22", other, `ssh-ed25519 ${blob}`);
        expect(message).toContain(`k8s-dev-worker-1: the SSH server at 198.51.100.7:22 presents host key ${fingerprint(other)}, but the VM published ${sshKeygenFingerprint}`);
        expect(message).toContain('fails with "ssh: host key mismatch"');
        expect(message).toContain("docs/node-access.md");
    });
});

describe("readPublishedHostKey: when to look at the VM's address, and what a mismatch says", () => {
    const created = "2026-11-26T09:00:00Z";
    const t0 = Date.parse(created);
    const otherKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEgAQLmFUvWRj9yBbt/ftTTD2ob9tMep4wU/UfW4HFqr";

    /** A fake clock starting `elapsedS` after the VM's creation; sshd presents `presents`. */
    function io(elapsedS: number, presents: string | undefined, overrides: Partial<HostKeyIo> = {}) {
        let t = t0 + elapsedS * 1000;
        const scans: { host: string; port: number; deadline: number; at: number }[] = [];
        const reads: number[] = [];
        const value: HostKeyIo = {
            readAttributes: async () => {
                reads.push(t);
                return published;
            },
            waitForSshd: async (host, port, deadline) => {
                scans.push({ host, port, deadline, at: t });
                return presents === undefined ? undefined : { hostKey: presents };
            },
            preview: false,
            now: () => t,
            sleep: async (ms) => {
                t += ms;
            },
            ...overrides,
        };
        return { value, scans, reads };
    }
    const vm = { name: "k8s-dev-worker-1", zone: "us-central1-a", created, address: "198.51.100.7" };

    test("a booting VM: waits for sshd at its address first, then reads the key; same key, no warning", async () => {
        const h = io(30, `ssh-ed25519 ${blob}`);
        await expect(readPublishedHostKey(vm, h.value)).resolves.toEqual({ key: `ssh-ed25519 ${blob}`, mismatch: undefined });
        expect(h.scans).toEqual([{ host: "198.51.100.7", port: 22, deadline: t0 + 600_000, at: t0 + 30_000 }]);
        expect(h.reads).toEqual([t0 + 30_000]);
    });

    test("a booting VM whose address answers with another key: the key is still the published one, and the warning says why the next step fails", async () => {
        const h = io(30, otherKey);
        const reading = await readPublishedHostKey(vm, h.value);
        expect(reading.key).toBe(`ssh-ed25519 ${blob}`);
        expect(reading.mismatch).toBe(hostKeyMismatchMessage("k8s-dev-worker-1", "198.51.100.7:22", otherKey, `ssh-ed25519 ${blob}`));
    });

    test("a booting VM whose sshd never answered: the key is read anyway (the first SSH step reports the rest)", async () => {
        const h = io(30, undefined);
        await expect(readPublishedHostKey(vm, h.value)).resolves.toEqual({ key: `ssh-ed25519 ${blob}`, mismatch: undefined });
    });

    test.each([
        ["a VM past its first boot", { ...vm }, 3_600, false],
        ["a VM of unknown age", { ...vm, created: undefined }, 30, false],
        ["a preview", { ...vm }, 30, true],
    ])("%s: its address is not looked at", async (_, which, elapsedS, preview) => {
        const h = io(elapsedS, otherKey, { preview });
        await expect(readPublishedHostKey(which, h.value)).resolves.toEqual({ key: `ssh-ed25519 ${blob}`, mismatch: undefined });
        expect(h.scans).toEqual([]);
    });

    test("an old VM that never published (created before guest attributes were on) fails after one minute, not ten", async () => {
        const reads: number[] = [];
        const h = io(86_400, undefined);
        h.value.readAttributes = async () => {
            reads.push(h.value.now!());
            return [];
        };
        await expect(readPublishedHostKey(vm, h.value)).rejects.toThrow(/has not published its SSH host key/);
        expect(reads[reads.length - 1] - reads[0]).toBe(60_000);
        expect(h.scans).toEqual([]);
    });
});
