/**
 * The boot path: a node stopped by the schedule or preempted (a Spot VM) boots again and must serve
 * with nothing re-run over SSH. What prepare-node.sh set up at runtime (units started, modules
 * loaded, sysctls applied, swap turned off) must come back from what it persisted (units enabled,
 * /etc/modules-load.d, /etc/sysctl.d, /etc/fstab). Static pods, the kubelet's configuration and the
 * CNI configuration live under /etc/kubernetes, /var/lib/kubelet and /etc/cni (kubeadm, Flannel);
 * Flannel, kube-proxy and the app come back as the kubelet and the DaemonSets/Deployments restart them.
 */
import * as fs from "fs";
import * as path from "path";
import { scriptsDir } from "../../components/scripts";
import { freshNode, settings } from "./freshNode";
import { calls, callsTo, clearCalls, readRoot, removeSandboxes, runScript, Sandbox, setState, snapshotRoot } from "./harness";

afterAll(removeSandboxes);

const stateFiles = (sb: Sandbox) => fs.readdirSync(sb.state);
const lines = (text: string) => text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));

/**
 * A stop and a start, as the stubs see the machine: what lives only in memory is gone (running
 * units, loaded modules, applied sysctls, active swap); then what systemd does at boot from the disk:
 * systemd-modules-load reads /etc/modules-load.d, systemd-sysctl /etc/sysctl.d, fstab's swap
 * entries are activated, and every enabled unit is started.
 */
function reboot(sb: Sandbox): void {
    for (const f of stateFiles(sb).filter((f) => f.startsWith("active-") || f === "sysctl-applied" || f === "swap-on")) {
        fs.rmSync(path.join(sb.state, f));
    }
    fs.rmSync(path.join(sb.root, "sys/module"), { recursive: true, force: true });

    const dir = (d: string) => (fs.existsSync(path.join(sb.root, d)) ? fs.readdirSync(path.join(sb.root, d)).filter((f) => f.endsWith(".conf")) : []);
    for (const file of dir("etc/modules-load.d")) {
        for (const module of lines(readRoot(sb, `etc/modules-load.d/${file}`))) {
            fs.mkdirSync(path.join(sb.root, "sys/module", module), { recursive: true });
        }
    }
    // The sysctl stub keeps one flag for the three keys: set it only when a file sets all three.
    const persisted = dir("etc/sysctl.d").flatMap((f) => lines(readRoot(sb, `etc/sysctl.d/${f}`)));
    if (["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.ip_forward"].every((k) => persisted.includes(`${k} = 1`))) {
        setState(sb, "sysctl-applied");
    }
    if (lines(readRoot(sb, "etc/fstab")).some((l) => l.split(/\s+/)[2] === "swap")) {
        setState(sb, "swap-on");
    }
    for (const f of stateFiles(sb).filter((f) => f.startsWith("enabled-"))) {
        setState(sb, `active-${f.slice("enabled-".length)}`);
    }
}

describe("prepare-node.sh's work survives a stop and start", () => {
    let sb: Sandbox;

    beforeAll(() => {
        sb = freshNode();
        expect(runScript(sb, "prepare-node", settings).status).toBe(0);
    });

    test("every unit it started is enabled, so it runs again after boot: containerd and the kubelet", () => {
        const started = new Set(
            callsTo(sb, "systemctl")
                .map((l) => /^systemctl (?:start|restart|enable --now) (\S+)$/.exec(l)?.[1])
                .filter((u): u is string => u !== undefined),
        );
        expect([...started].sort()).toEqual(["containerd", "kubelet"]);
        for (const unit of started) {
            expect({ unit, enabled: stateFiles(sb).includes(`enabled-${unit}`) }).toEqual({ unit, enabled: true });
        }
    });

    test("after a reboot containerd and the kubelet run, the modules are loaded, the sysctls set and swap is off", () => {
        reboot(sb);
        expect(stateFiles(sb)).toEqual(expect.arrayContaining(["active-containerd", "active-kubelet", "sysctl-applied"]));
        expect(stateFiles(sb)).not.toContain("swap-on");
        expect(fs.readdirSync(path.join(sb.root, "sys/module")).sort()).toEqual(["br_netfilter", "overlay", "vxlan"]);
    });

    test("so running it again after the reboot finds nothing to redo: no runtime-only setting was lost", () => {
        const before = snapshotRoot(sb);
        clearCalls(sb);
        const again = runScript(sb, "prepare-node", settings);
        expect(again.status).toBe(0);
        expect(snapshotRoot(sb)).toEqual(before);
        const stateChanging = calls(sb).filter(
            (l) =>
                /^(modprobe|swapoff|apt-get|apt-mark hold)/.test(l) ||
                /^sysctl -p/.test(l) ||
                (/^systemctl /.test(l) && !/^systemctl is-(active|enabled) /.test(l)),
        );
        expect(stateChanging).toEqual([]);
    });

    test("the boot model is not vacuous: without its persisted files the node comes back without them", () => {
        const bare = freshNode();
        expect(runScript(bare, "prepare-node", settings).status).toBe(0);
        fs.rmSync(path.join(bare.root, "etc/modules-load.d"), { recursive: true });
        fs.rmSync(path.join(bare.state, "enabled-kubelet"));
        reboot(bare);
        expect(fs.existsSync(path.join(bare.root, "sys/module"))).toBe(false);
        expect(stateFiles(bare)).not.toContain("active-kubelet");
    });
});

describe("every provisioning script", () => {
    const scripts = [
        ...fs.readdirSync(scriptsDir).filter((f) => f.endsWith(".sh")).map((f) => path.join(scriptsDir, f)),
        path.join(scriptsDir, "lib", "common.sh"),
    ];
    const text = scripts.map((f) => fs.readFileSync(f, "utf8")).join("\n");

    test("enables each unit it starts or restarts (enabled, not only started: it must come back after a reboot)", () => {
        const started = new Set([...text.matchAll(/systemctl (?:start|restart) (\S+)/g)].map((m) => m[1]));
        expect(started.size).toBeGreaterThanOrEqual(3); // containerd, kubelet, the etcd snapshot timer
        for (const unit of started) {
            const enabled = new RegExp(`systemctl enable(?: --now)? ${unit.replace(/[$.*"]/g, (c) => `\\${c}`)}`).test(text);
            expect({ unit, enabled }).toEqual({ unit, enabled: true });
        }
    });

    test("writes nothing under /run, which a reboot empties (only containerd's socket is named there)", () => {
        const runPaths = [...text.matchAll(/\/run\/[^\s"')]*/g)].map((m) => m[0]);
        expect([...new Set(runPaths)]).toEqual(["/run/containerd/containerd.sock"]);
    });

    test("sets kernel state only through files read at boot (no sysctl -w, no echo into /proc/sys)", () => {
        expect(text).not.toMatch(/sysctl -w|>\s*\/proc\/sys/);
    });
});
