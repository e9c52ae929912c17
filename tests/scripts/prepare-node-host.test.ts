/**
 * prepare-node.sh under stubs, on the host side: the kernel's modules and sysctls, ufw, and apt's
 * locks and retries (some of these hold a lock for seconds). A file of its own so that jest runs it
 * beside the rest of prepare-node.sh's tests (prepare-node.test.ts).
 */
import * as fs from "fs";
import * as path from "path";
import { callsTo, existsRoot, holdAptListsLock, perlPath, releaseAptLocks, removeSandboxes, runScript } from "./harness";
import { freshNode, settings } from "./freshNode";
import { versions } from "../../components/versions";

afterAll(removeSandboxes);

describe("prepare-node.sh kernel and host prerequisites", () => {
    test("fails in seconds, before apt, with a clear message when the kernel has no vxlan module", () => {
        const sb = freshNode();
        const started = Date.now();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_MODPROBE_MISSING: "vxlan" } });
        expect(Date.now() - started).toBeLessThan(10000);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/ERROR: this node's kernel cannot load the vxlan module \(modprobe: FATAL: Module vxlan not found .*\), which Kubernetes here needs \(vxlan: Flannel's VXLAN backend/);
        expect(callsTo(sb, "apt-get")).toEqual([]);
    });

    test("fails when a key still reads 0 after applying its sysctl file", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_SYSCTL_OVERRIDE: "1" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/net\.bridge\.bridge-nf-call-iptables is 0 after applying \/etc\/sysctl\.d\/99-kubernetes\.conf, expected 1/);
    });

    test("stops, changing nothing, when ufw is active, and says what to do", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_UFW_ACTIVE: "1" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/ERROR: ufw is active on this node: it would drop the cluster's traffic .*Run 'sudo ufw disable' on the node/);
        expect(callsTo(sb, "swapoff")).toEqual([]);
        expect(callsTo(sb, "apt-get")).toEqual([]);
        expect(existsRoot(sb, "etc/sysctl.d/99-kubernetes.conf")).toBe(false);
    });

    test("goes on when ufw is not installed", () => {
        const sb = freshNode();
        fs.rmSync(path.join(sb.bin, "ufw"));
        const result = runScript(sb, "prepare-node", settings);
        expect(result.status).toBe(0);
    });
});

describe("prepare-node.sh and apt's locks", () => {
    afterAll(releaseAptLocks);

    const lockEnv = { STUB_PERL: perlPath ?? "", APT_LOCK_POLL_SECONDS: "1" };

    test("the stubbed apt-get, like apt, fails at once while another process holds the lock", async () => {
        const sb = freshNode();
        fs.rmSync(path.join(sb.state, "pkg"), { recursive: true }); // so that the first apt call is an update
        const holder = await holdAptListsLock(sb, 30);
        const result = runScript(sb, "prepare-node", settings, { env: { ...lockEnv, APT_LOCK_WAIT_SECONDS: "0" } });
        holder.kill();
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain(`E: Could not get lock ${sb.root}/var/lib/apt/lists/lock. It is held by process ${holder.pid} (perl)`);
    });

    test("waits while another process holds apt's lists lock, then succeeds", async () => {
        const sb = freshNode();
        fs.rmSync(path.join(sb.state, "pkg"), { recursive: true });
        await holdAptListsLock(sb, 2.5);
        const started = Date.now();
        const result = runScript(sb, "prepare-node", settings, { env: { ...lockEnv, APT_LOCK_WAIT_SECONDS: "15" } });
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
        expect(result.stderr).toMatch(/apt is busy \(Could not get lock .*\/var\/lib\/apt\/lists\/lock\. It is held by process \d+ \(perl\)\); trying again in 1s, for at most 15s/);
        const updates = callsTo(sb, "apt-get").filter((l) => l.endsWith(" update"));
        expect(updates.length).toBeGreaterThanOrEqual(3);
        expect(callsTo(sb, "apt-get").some((l) => l.includes(`containerd.io=${versions.containerdPackage}`))).toBe(true);
    });

    test("gives up after its bound with a message that says what holds apt and what to do", async () => {
        const sb = freshNode();
        fs.rmSync(path.join(sb.state, "pkg"), { recursive: true });
        const holder = await holdAptListsLock(sb, 30);
        const started = Date.now();
        const result = runScript(sb, "prepare-node", settings, { env: { ...lockEnv, APT_LOCK_WAIT_SECONDS: "2" } });
        holder.kill();
        expect(result.status).not.toBe(0);
        expect(Date.now() - started).toBeLessThan(10000);
        expect(result.stderr).toMatch(
            /ERROR: apt was still locked after 2s \(Could not get lock .*It is held by process \d+ \(perl\)\): another apt run \(apt-daily, unattended-upgrades or Google's OS Config agent\) has not finished\..*then run 'pulumi up' again/,
        );
        // Giving up on the lock is final: not retried again as if the network had failed.
        expect(result.stderr).not.toMatch(/attempt 1\/5 failed/);
        expect(callsTo(sb, "apt-get").filter((l) => / install /.test(l))).toEqual([]);
    });

    test("retries other apt failures (a mirror mid-sync) with apt's own, longer budget", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_APT_UPDATE_FAILURES: "6" } });
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "apt-get").filter((l) => l.endsWith(" update"))).toHaveLength(7);
        expect(result.stderr).toMatch(/attempt 6\/8 failed \(exit 100\): apt_get_waiting update/);
    });

    test("gives up on other apt failures after APT_RETRY_ATTEMPTS", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_APT_UPDATE_FAILURES: "6", APT_RETRY_ATTEMPTS: "3" } });
        expect(result.status).not.toBe(0);
        expect(callsTo(sb, "apt-get").filter((l) => l.endsWith(" update"))).toHaveLength(3);
        expect(result.stderr).toMatch(/Hash Sum mismatch/);
        expect(result.stderr).toMatch(/giving up after 3 attempt\(s\) \(exit 100\)/);
    });

    test("without systemd-run (not systemd), skips waiting for the apt timers and goes on", () => {
        const sb = freshNode();
        fs.rmSync(path.join(sb.bin, "systemd-run"));
        const result = runScript(sb, "prepare-node", settings);
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/no systemd-run here; not waiting for the apt timers/);
    });

    test("bounds the wait for the apt timers' services, then goes on", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_SYSTEMD_RUN_SLEEP: "10", APT_LOCK_WAIT_SECONDS: "1" } });
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/WARNING: the apt timers' services were still running after 1s/);
    });
});

