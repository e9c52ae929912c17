import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { scriptsDir, renderScript } from "../../components/scripts";
import { versions } from "../../components/versions";
import {
    callsTo, clearCalls, existsRoot, fixturesDir, readRoot, removeSandboxes, runScript, Sandbox, setState, snapshotRoot, tomlTable, writeRoot, calls,
} from "./harness";
import { freshNode, settings } from "./freshNode";

const runcOptions = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]";
const pinnedImages = "[plugins.'io.containerd.cri.v1.images'.pinned_images]";

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

    test("installs containerd.io at exactly the pinned package version and the Kubernetes packages, and holds them", () => {
        const installs = callsTo(sb, "apt-get").filter((l) => / install /.test(l));
        expect(installs).toHaveLength(1);
        const words = installs[0].split(" ");
        expect(words).toEqual(expect.arrayContaining([`containerd.io=${versions.containerdPackage}`, "kubelet", "kubeadm", "kubectl", "cri-tools", "conntrack", "-y"]));
        // Ubuntu's own (EOL 1.7) containerd package is never requested.
        expect(words).not.toContain("containerd");
        const holds = callsTo(sb, "apt-mark").filter((l) => l.startsWith("apt-mark hold"));
        expect(holds).toHaveLength(1);
        expect(holds[0].split(" ")).toEqual(expect.arrayContaining(["containerd.io", "kubelet", "kubeadm", "kubectl"]));
    });

    test("waits for the apt timers' services once, before the first apt call", () => {
        const all = calls(sb);
        const waits = all.filter((l) => l.startsWith("systemd-run "));
        expect(waits).toEqual([
            "systemd-run --quiet --wait --collect --property=After=apt-daily.service --property=After=apt-daily-upgrade.service /bin/true",
        ]);
        expect(all.indexOf(waits[0])).toBeLessThan(all.findIndex((l) => l.startsWith("apt-get")));
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
        // containerd's real default sets the key to false, so this is the "replace the key" path.
        expect(tomlTable(fs.readFileSync(path.join(fixturesDir, "containerd-default.toml"), "utf8"), runcOptions)).toContain("SystemdCgroup = false");
        const config = readRoot(sb, "etc/containerd/config.toml");
        // containerd 2.4's configuration schema (2.2 wrote version 3); the script keeps whatever the binary writes.
        expect(config.startsWith("version = 4\n")).toBe(true);
        expect(tomlTable(config, runcOptions)).toContain("SystemdCgroup = true");
        expect(tomlTable(config, runcOptions)).not.toContain("SystemdCgroup = false");
        expect(config.match(/SystemdCgroup/g)).toHaveLength(1);
        // The rest of the default config is kept.
        expect(tomlTable(config, runcOptions)).toContain("BinaryName = ''");
        // The sandbox image is the one this kubeadm uses (its `config images list`: v1.36.3's fixture),
        // whatever containerd's default is (containerd 2.2.1's was pause:3.10.1; 2.4.2's is pause:3.10.2, the same as kubeadm's).
        const kubeadmPause = fs.readFileSync(path.join(fixturesDir, "kubeadm-images-v1.36.3.txt"), "utf8").split("\n").find((l) => l.includes("/pause:"));
        expect(tomlTable(config, pinnedImages)).toEqual([`sandbox = '${kubeadmPause}'`]);
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

    test("loads and persists the kernel modules, vxlan included, and applies only its own sysctl file", () => {
        expect(readRoot(sb, "etc/modules-load.d/k8s.conf")).toBe("overlay\nbr_netfilter\nvxlan\n");
        expect(callsTo(sb, "modprobe")).toEqual(["modprobe overlay", "modprobe br_netfilter", "modprobe vxlan"]);
        expect(readRoot(sb, "etc/sysctl.d/99-kubernetes.conf")).toBe(
            "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n",
        );
        expect(callsTo(sb, "sysctl").filter((l) => !l.startsWith("sysctl -n "))).toEqual([`sysctl -p ${sb.root}/etc/sysctl.d/99-kubernetes.conf`]);
    });

    test("checks that ufw is not active before changing anything", () => {
        const all = calls(sb);
        expect(all.indexOf("ufw status")).toBeGreaterThanOrEqual(0);
        expect(all.indexOf("ufw status")).toBeLessThan(all.indexOf("swapoff -a"));
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
        expect(callsTo(sb, "sysctl").filter((l) => !l.startsWith("sysctl -n "))).toEqual([]);
        expect(callsTo(sb, "systemd-run")).toEqual([]);
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
        expect(installs[1]).toContain(`containerd.io=${versions.containerdPackage}`);
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

    test.each(["2.2", "2.2.*", "1.7.28-1~ubuntu.24.04~noble", "2.2.1"])("rejects CONTAINERD_VERSION %s: only an exact containerd.io 2.x package version", (version) => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...settings, CONTAINERD_VERSION: version });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/CONTAINERD_VERSION must be an exact containerd\.io 2\.x package version .* such as 2\.2\.1-1~ubuntu\.24\.04~noble/);
        expect(callsTo(sb, "apt-get")).toEqual([]);
    });

    test("refuses a containerd.io build for another Ubuntu release before installing anything", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...settings, CONTAINERD_VERSION: "2.2.1-1~ubuntu.22.04~jammy" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/CONTAINERD_VERSION 2\.2\.1-1~ubuntu\.22\.04~jammy is built for another Ubuntu release than this node's \(noble\)/);
        expect(callsTo(sb, "apt-get").filter((l) => / install /.test(l))).toEqual([]);
    });

    test("fails when apt installs another containerd.io version than the pinned one", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { STUB_APT_INSTALLS_VERSION: "2.2.2-1~ubuntu.24.04~noble" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain(`apt installed containerd.io 2.2.2-1~ubuntu.24.04~noble, not the pinned ${versions.containerdPackage}`);
        expect(existsRoot(sb, "etc/containerd/config.toml")).toBe(false);
    });

    test("on a node with another containerd.io already installed, warns and leaves it (upgrades are manual)", () => {
        const sb = freshNode();
        expect(runScript(sb, "prepare-node", settings).status).toBe(0);
        setState(sb, "pkg/containerd.io", "2.2.0-2~ubuntu.24.04~noble");
        clearCalls(sb);
        const result = runScript(sb, "prepare-node", settings);
        expect(result.status).toBe(0);
        expect(result.stderr).toContain(`WARNING: containerd.io 2.2.0-2~ubuntu.24.04~noble is installed, not the pinned ${versions.containerdPackage}`);
        expect(callsTo(sb, "apt-get")).toEqual([]);
    });
});

describe("prepare-node.sh with K8S_VERSION: a joining node gets exactly the control plane's version", () => {
    const exact = { ...settings, K8S_VERSION: "v1.36.3" };
    const kubeInstalls = (sb: Sandbox) =>
        callsTo(sb, "apt-get")
            .filter((l) => / install /.test(l))
            .flatMap((l) => l.split(" ").filter((w) => /^kube(let|adm|ctl)(=|$)/.test(w)));

    test("installs kubeadm, kubelet and kubectl at exactly that patch (apt's 1.36.3-* match) and verifies them with dpkg-query", () => {
        const sb = freshNode();
        // The repository's newest 1.36 patch is 1.36.4: without K8S_VERSION the node would take it.
        const result = runScript(sb, "prepare-node", exact, { env: { STUB_APT_NEWEST_PATCH: "4" } });
        expect(result.stderr).not.toMatch(/ERROR|WARNING/);
        expect(result.status).toBe(0);
        expect(kubeInstalls(sb).sort()).toEqual(["kubeadm=1.36.3-*", "kubectl=1.36.3-*", "kubelet=1.36.3-*"]);
        for (const pkg of ["kubeadm", "kubelet", "kubectl"]) {
            expect(callsTo(sb, "dpkg-query")).toContain(`dpkg-query -W -f=\${Version} ${pkg}`);
            expect(fs.readFileSync(path.join(sb.state, "pkg", pkg), "utf8")).toBe("1.36.3-1.1");
        }
        expect(result.stderr).toMatch(/kubeadm, kubelet and kubectl are v1\.36\.3/);
        // Held like the rest, and the apt source is the minor's.
        expect(callsTo(sb, "apt-mark").find((l) => l.startsWith("apt-mark hold"))!.split(" ")).toEqual(expect.arrayContaining(["kubelet", "kubeadm", "kubectl"]));
        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toContain("/core:/stable:/v1.36/deb/ /");
    });

    test("without K8S_VERSION (empty), installs the packages unversioned as before", () => {
        const sb = freshNode();
        expect(runScript(sb, "prepare-node", { ...settings, K8S_VERSION: "" }).status).toBe(0);
        expect(kubeInstalls(sb).sort()).toEqual(["kubeadm", "kubectl", "kubelet"]);
    });

    test("a second run, and a run on a node already at that exact version, install nothing and change nothing", () => {
        const sb = freshNode();
        expect(runScript(sb, "prepare-node", exact).status).toBe(0);
        const before = snapshotRoot(sb);
        clearCalls(sb);
        const second = runScript(sb, "prepare-node", exact);
        expect(second.status).toBe(0);
        expect(second.stderr).not.toMatch(/WARNING/);
        expect(snapshotRoot(sb)).toEqual(before);
        expect(callsTo(sb, "apt-get")).toEqual([]);
        expect(callsTo(sb, "apt-mark").filter((l) => l.startsWith("apt-mark hold"))).toEqual([]);
    });

    test("fails when apt installs another kubelet than K8S_VERSION, naming both", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", exact, { env: { STUB_APT_RESOLVES: "kubelet=1.36.4-1.1" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/ERROR: apt installed kubelet 1\.36\.4-1\.1, not v1\.36\.3 \(K8S_VERSION, the control plane's version\)/);
        expect(existsRoot(sb, "etc/containerd/config.toml")).toBe(false);
    });

    test("fails with apt's message and what to check when pkgs.k8s.io has no such patch", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...settings, K8S_VERSION: "v1.36.9" }, { env: { STUB_APT_MISSING: "kubeadm=1.36.9-*", APT_RETRY_ATTEMPTS: "1" } });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain("E: Version '1.36.9-*' for 'kubeadm' was not found");
        expect(result.stderr).toMatch(/for kubeadm, kubelet or kubectl, pkgs\.k8s\.io has no v1\.36\.9 \('apt-cache madison kubeadm' lists what it has\)/);
    });

    test("on a node prepared earlier at another version, warns and installs nothing (moving a live node is the upgrade's work)", () => {
        const sb = freshNode();
        expect(runScript(sb, "prepare-node", settings).status).toBe(0); // unversioned: the stub's 1.36.0-1.1
        clearCalls(sb);
        const older = runScript(sb, "prepare-node", exact);
        expect(older.status).toBe(0);
        expect(older.stderr).toMatch(/WARNING: kubelet 1\.36\.0-1\.1 is installed, not K8S_VERSION v1\.36\.3; a live node is moved by the upgrade steps/);
        setState(sb, "pkg/kubelet", "1.36.5-1.1");
        const skewed = runScript(sb, "prepare-node", exact);
        expect(skewed.status).toBe(0);
        expect(skewed.stderr).toMatch(/WARNING: kubelet 1\.36\.5-1\.1 is installed, newer than K8S_VERSION v1\.36\.3 \(the control plane's version\): a kubelet must not be newer than its API server/);
        expect(kubeInstalls(sb)).toEqual([]);
    });

    test.each([
        ["1.36.3", /K8S_VERSION must be empty or an exact Kubernetes release such as v1\.36\.3, got '1\.36\.3'/],
        ["v1.36", /K8S_VERSION must be empty or an exact Kubernetes release/],
        ["v1.37.2", /K8S_VERSION v1\.37\.2 is not a release of K8S_MINOR 1\.36/],
        ["v1.361.0", /K8S_VERSION v1\.361\.0 is not a release of K8S_MINOR 1\.36/],
    ])("rejects K8S_VERSION %s before changing anything", (version, message) => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...settings, K8S_VERSION: version });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(message);
        expect(calls(sb)).toEqual([]);
    });
});

describe("prepare-node.sh with API_SERVER: a node joins at the version the control plane runs, whatever was recorded", () => {
    // The recorded version (K8S_MINOR, K8S_VERSION) is the last successful `up`'s. An `up` that failed
    // after the control plane's upgrade leaves it stale, or absent when the first `up` failed after init.
    const reachable = { ...settings, API_SERVER: "10.10.0.2:6443", CLUSTER_CA_CERT: "-----BEGIN CERTIFICATE-----\nstub CA\n-----END CERTIFICATE-----" };
    const kubeInstalls = (sb: Sandbox) =>
        callsTo(sb, "apt-get")
            .filter((l) => / install /.test(l))
            .flatMap((l) => l.split(" ").filter((w) => /^kube(let|adm|ctl)(=|$)/.test(w)))
            .sort();

    test("a stale record (v1.35.9, the control plane now v1.36.3): installs v1.36.3 from the v1.36 repository and says why", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...reachable, K8S_MINOR: "1.35", K8S_VERSION: "v1.35.9" }, { env: { STUB_API_SERVER_VERSION: "v1.36.3", STUB_APT_NEWEST_PATCH: "4" } });
        expect(result.stderr).not.toMatch(/ERROR|WARNING/);
        expect(result.status).toBe(0);
        expect(kubeInstalls(sb)).toEqual(["kubeadm=1.36.3-*", "kubectl=1.36.3-*", "kubelet=1.36.3-*"]);
        expect(readRoot(sb, "etc/apt/sources.list.d/kubernetes.list")).toContain("/core:/stable:/v1.36/deb/ /");
        expect(result.stderr).toMatch(/the API server at 10\.10\.0\.2:6443 runs v1\.36\.3, not the recorded v1\.35\.9 \(an earlier 'pulumi up' stopped after upgrading it\): installing v1\.36\.3/);
        // Read over TLS, trusting only the stack's CA.
        const version = callsTo(sb, "curl").find((l) => l.includes("/version"))!;
        expect(version).toMatch(/--cacert \S+ https:\/\/10\.10\.0\.2:6443\/version$/);
    });

    test("no record (the first `up` failed after init): installs the running v1.36.3, not the repository's newer v1.36.4 that upgrade-drain.sh would refuse", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...reachable, K8S_VERSION: "" }, { env: { STUB_API_SERVER_VERSION: "v1.36.3", STUB_APT_NEWEST_PATCH: "4" } });
        expect(result.status).toBe(0);
        expect(kubeInstalls(sb)).toEqual(["kubeadm=1.36.3-*", "kubectl=1.36.3-*", "kubelet=1.36.3-*"]);
        expect(fs.readFileSync(path.join(sb.state, "pkg", "kubelet"), "utf8")).toBe("1.36.3-1.1");
    });

    test("when nothing answers (a new cluster), the settings decide, and it says so", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...reachable, K8S_VERSION: "v1.36.3" }, { env: { STUB_APT_NEWEST_PATCH: "4" } });
        expect(result.status).toBe(0);
        expect(kubeInstalls(sb)).toEqual(["kubeadm=1.36.3-*", "kubectl=1.36.3-*", "kubelet=1.36.3-*"]);
        expect(result.stderr).toMatch(/no API server answers at 10\.10\.0\.2:6443 \(curl: \(7\) Failed to connect.*\): a new cluster; installing v1\.36\.3/);
    });

    test("refuses an API_SERVER without the CA that authenticates it, before changing anything", () => {
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", { ...reachable, CLUSTER_CA_CERT: "" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/CLUSTER_CA_CERT must be the cluster's CA certificate \(PEM\) when API_SERVER is set/);
        expect(calls(sb)).toEqual([]);
    });
});

describe("prepare-node.sh against the real containerd (CONTAINERD_BIN)", () => {
    const bin = process.env.CONTAINERD_BIN;
    (bin ? test : test.skip)("the fixture's CRI tables are the real binary's default, and the whole script passes against it", () => {
        const real = spawnSync(bin!, ["config", "default"], { encoding: "utf8" });
        expect(real.status).toBe(0);
        const fixture = fs.readFileSync(path.join(fixturesDir, "containerd-default.toml"), "utf8");
        for (const table of [runcOptions, pinnedImages]) {
            expect(tomlTable(real.stdout, table)).toEqual(tomlTable(fixture, table));
        }
        const sb = freshNode();
        const result = runScript(sb, "prepare-node", settings, { env: { CONTAINERD_BIN: bin! } });
        expect(result.status).toBe(0);
        expect(tomlTable(readRoot(sb, "etc/containerd/config.toml"), runcOptions)).toContain("SystemdCgroup = true");
    });
});
