import * as fs from "fs";
import * as path from "path";
import { scriptsDir, renderScript } from "../../components/scripts";
import {
    callsTo, clearCalls, createSandbox, existsRoot, readRoot, removeSandboxes, runScript, Sandbox, setState,
    snapshotRoot, tomlTable, writeRoot, calls,
} from "./harness";

const settings = { K8S_MINOR: "1.36", CONTAINERD_MINOR: "2.2" };
const runcOptions = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]";
const pinnedImages = "[plugins.'io.containerd.cri.v1.images'.pinned_images]";
const fstab = [
    "LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,commit=30,errors=remount-ro\t0 1",
    "LABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1",
    "/swap.img none swap sw 0 0",
    "",
].join("\n");

/** A fresh Ubuntu 24.04 cloud VM: curl/gpg/ca-certificates present, a swap entry, swap active. */
function freshNode(): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/os-release", 'NAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\nUBUNTU_CODENAME=noble\n');
    writeRoot(sb, "etc/fstab", fstab);
    for (const pkg of ["curl", "gpg", "ca-certificates"]) {
        setState(sb, `pkg/${pkg}`, "1.0");
    }
    setState(sb, "swap-on");
    return sb;
}

afterAll(removeSandboxes);

describe("prepare-node.sh", () => {
    let sb: Sandbox;
    let first: ReturnType<typeof runScript>;

    beforeAll(() => {
        sb = freshNode();
        first = runScript(sb, "prepare-node", settings);
    });

    test("succeeds on a fresh node and prints nothing on stdout", () => {
        expect(first.stderr).not.toMatch(/ERROR/);
        expect(first.status).toBe(0);
        expect(first.stdout).toBe("");
    });

    test("waits for cloud-init before touching apt", () => {
        const all = calls(sb);
        const cloudInit = all.findIndex((l) => l.startsWith("cloud-init status --wait"));
        const firstApt = all.findIndex((l) => l.startsWith("apt-get"));
        expect(cloudInit).toBeGreaterThanOrEqual(0);
        expect(cloudInit).toBeLessThan(firstApt);
    });

    test("installs containerd.io pinned to the minor glob and the Kubernetes packages, and holds them", () => {
        const installs = callsTo(sb, "apt-get").filter((l) => / install /.test(l));
        expect(installs).toHaveLength(1);
        const words = installs[0].split(" ");
        expect(words).toEqual(expect.arrayContaining(["containerd.io=2.2.*", "kubelet", "kubeadm", "kubectl", "cri-tools", "conntrack", "-y"]));
        // Ubuntu's own (EOL 1.7) containerd package is never requested.
        expect(words).not.toContain("containerd");
        const holds = callsTo(sb, "apt-mark").filter((l) => l.startsWith("apt-mark hold"));
        expect(holds).toHaveLength(1);
        expect(holds[0].split(" ")).toEqual(expect.arrayContaining(["containerd.io", "kubelet", "kubeadm", "kubectl"]));
    });

    test("every apt-get call waits for the dpkg lock", () => {
        const aptCalls = callsTo(sb, "apt-get");
        expect(aptCalls.length).toBeGreaterThanOrEqual(2);
        for (const call of aptCalls) {
            expect(call).toContain("-o DPkg::Lock::Timeout=600");
        }
    });

    test("configures Docker's and pkgs.k8s.io's repositories with signed-by keyrings", () => {
        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toBe(
            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /\n",
        );
        const docker = readRoot(sb, "etc/apt/sources.list.d/docker.sources");
        expect(docker).toContain("URIs: https://download.docker.com/linux/ubuntu\n");
        expect(docker).toContain("Suites: noble\n");
        expect(docker).toContain("Signed-By: /etc/apt/keyrings/docker.asc\n");
        expect(readRoot(sb, "etc/apt/keyrings/docker.asc")).toContain("stub docker key");
        expect(readRoot(sb, "etc/apt/keyrings/kubernetes-apt-keyring.gpg")).toMatch(/^dearmored\n.*stub kubernetes key/s);
        expect(callsTo(sb, "curl").join("\n")).toContain("https://pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key");
    });

    test("writes containerd's config with SystemdCgroup = true in the CRI runtime's runc options", () => {
        const config = readRoot(sb, "etc/containerd/config.toml");
        expect(config.startsWith("version = 3\n")).toBe(true);
        expect(tomlTable(config, runcOptions)).toContain("SystemdCgroup = true");
        expect(config.match(/SystemdCgroup/g)).toHaveLength(1);
        // The rest of the default config is kept.
        expect(tomlTable(config, runcOptions)).toContain("BinaryName = ''");
        // The sandbox image is the one this kubeadm uses.
        expect(tomlTable(config, pinnedImages)).toEqual(["sandbox = 'registry.k8s.io/pause:3.10.1'"]);
        expect(callsTo(sb, "containerd")).toContain(`containerd --config ${sb.root}/etc/containerd/config.toml config dump`);
        expect(callsTo(sb, "systemctl")).toContain("systemctl restart containerd");
    });

    test("turns swap off now and after reboot", () => {
        expect(callsTo(sb, "swapoff")).toEqual(["swapoff -a"]);
        const lines = readRoot(sb, "etc/fstab").split("\n");
        expect(lines).toContain("#/swap.img none swap sw 0 0");
        expect(lines).toContain("LABEL=cloudimg-rootfs\t/\t ext4\tdiscard,commit=30,errors=remount-ro\t0 1");
        expect(lines.filter((l) => /\sswap\s/.test(l) && !l.startsWith("#"))).toEqual([]);
    });

    test("loads and persists the kernel modules and sysctls", () => {
        expect(readRoot(sb, "etc/modules-load.d/k8s.conf")).toBe("overlay\nbr_netfilter\n");
        expect(callsTo(sb, "modprobe")).toEqual(["modprobe overlay", "modprobe br_netfilter"]);
        expect(readRoot(sb, "etc/sysctl.d/99-kubernetes.conf")).toBe(
            "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n",
        );
        expect(callsTo(sb, "sysctl")).toContain("sysctl --system");
    });

    test("writes crictl.yaml for containerd and enables the kubelet", () => {
        expect(readRoot(sb, "etc/crictl.yaml")).toContain("runtime-endpoint: unix:///run/containerd/containerd.sock\n");
        expect(callsTo(sb, "systemctl")).toContain("systemctl enable --now kubelet");
    });

    test("a second run changes nothing and makes no state-changing call", () => {
        const before = snapshotRoot(sb);
        clearCalls(sb);
        const second = runScript(sb, "prepare-node", settings);
        expect(second.status).toBe(0);
        expect(snapshotRoot(sb)).toEqual(before);
        expect(callsTo(sb, "apt-get")).toEqual([]);
        expect(callsTo(sb, "apt-mark").filter((l) => l.startsWith("apt-mark hold"))).toEqual([]);
        expect(callsTo(sb, "curl")).toEqual([]);
        expect(callsTo(sb, "gpg")).toEqual([]);
        expect(callsTo(sb, "swapoff")).toEqual([]);
        expect(callsTo(sb, "modprobe")).toEqual([]);
        expect(callsTo(sb, "sysctl").filter((l) => l.includes("--system"))).toEqual([]);
        const systemctl = callsTo(sb, "systemctl").filter((l) => !/^systemctl is-(active|enabled) /.test(l));
        expect(systemctl).toEqual([]);
        // It still verified containerd's cgroup driver.
        expect(callsTo(sb, "containerd").some((l) => l.endsWith("config dump"))).toBe(true);
    });
});

describe("prepare-node.sh failure and edge cases", () => {
    test("fails, without restarting containerd, when config dump does not show SystemdCgroup = true", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_DUMP_CGROUPFS: "1" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/containerd does not use the systemd cgroup driver.*SystemdCgroup = false/);
        expect(callsTo(sb, "systemctl")).not.toContain("systemctl restart containerd");
    });

    test("tolerates cloud-init's degraded exit code 2", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_CLOUD_INIT_RC: "2" } });
        expect(result.status).toBe(0);
        expect(result.stderr).toMatch(/cloud-init finished with exit code 2/);
    });

    test("fails when cloud-init does not finish in time", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, {
            env: { STUB_CLOUD_INIT_SLEEP: "5", CLOUD_INIT_TIMEOUT_SECONDS: "0.3" },
        });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/cloud-init did not finish within 0\.3s/);
        expect(callsTo(sb, "apt-get")).toEqual([]);
    });

    test("installs curl, gpg and ca-certificates first when the image lacks them", () => {
        const sb = freshNode();
        fs.rmSync(path.join(sb.state, "pkg"), { recursive: true });
        const result = runScript(sb, "prepare-node", settings);
        expect(result.status).toBe(0);
        const installs = callsTo(sb, "apt-get").filter((l) => / install /.test(l));
        expect(installs[0]).toMatch(/ ca-certificates curl gpg$/);
        expect(installs[1]).toContain("containerd.io=2.2.*");
    });

    test("rewrites the apt source and refreshes apt when the Kubernetes minor changes", () => {
        const sb = freshNode();
        expect(runScript(sb, "prepare-node", { ...settings, K8S_MINOR: "1.35" }).status).toBe(0);
        clearCalls(sb);
        const result = runScript(sb, "prepare-node", settings);
        expect(result.status).toBe(0);
        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toContain("https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /");
        expect(callsTo(sb, "curl").join("\n")).toContain("/v1.36/deb/Release.key");
        expect(callsTo(sb, "apt-get").some((l) => l.endsWith(" update"))).toBe(true);
        // Packages are present, so nothing is (re)installed: upgrading is a documented manual step.
        expect(callsTo(sb, "apt-get").filter((l) => / install /.test(l))).toEqual([]);
    });

    test("replaces a legacy repository source and never mentions the legacy repository", () => {
        const sb = freshNode();
        const legacyHost = ["apt", "kubernetes", "io"].join(".");
        writeRoot(sb, "etc/apt/sources.list.d/kubernetes.list", `deb https://${legacyHost}/ kubernetes-xenial main\n`);
        expect(runScript(sb, "prepare-node", settings).status).toBe(0);
        const legacy = new RegExp(`${legacyHost.replace(/\./g, "\\.")}|packages\\.cloud\\.google\\.com`);
        for (const [file, content] of Object.entries(snapshotRoot(sb))) {
            expect(`${file}: ${content}`).not.toMatch(legacy);
        }
        expect(fs.readFileSync(path.join(scriptsDir, "prepare-node.sh"), "utf8")).not.toMatch(legacy);
        expect(renderScript("prepare-node", settings)).not.toMatch(legacy);
    });

    test("rejects a containerd 1.x minor", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...settings, CONTAINERD_MINOR: "1.7" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/CONTAINERD_MINOR must be a containerd 2\.x minor/);
        expect(existsRoot(sb, "etc/containerd/config.toml")).toBe(false);
    });
});
