import { callsTo, clearCalls, createSandbox, hasState, imageKey, removeSandboxes, runScript, setState } from "./harness";

const flannelUrl = "https://github.com/flannel-io/flannel/releases/download/v0.28.9/kube-flannel.yml";
const flannelImages = ["ghcr.io/flannel-io/flannel-cni-plugin:v1.8.0-flannel1", "ghcr.io/flannel-io/flannel:v0.28.9"];

afterAll(removeSandboxes);

describe("pull-images.sh", () => {
    test("control-plane: pulls kubeadm's images for the installed version, and not again once present", () => {
        const sb = createSandbox();
        const settings = { KUBEADM_IMAGES: "control-plane", IMAGES: "", MANIFEST_URLS: "" };
        const first = runScript(sb, "pull-images", settings);
        expect(first.status).toBe(0);
        expect(first.stdout).toBe("");
        expect(callsTo(sb, "kubeadm").filter((l) => l.includes("images pull"))).toEqual([
            "kubeadm config images pull --kubernetes-version v1.36.0 --cri-socket unix:///run/containerd/containerd.sock",
        ]);
        expect(hasState(sb, imageKey("registry.k8s.io/kube-apiserver:v1.36.0"))).toBe(true);

        clearCalls(sb);
        expect(runScript(sb, "pull-images", settings).status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((l) => l.includes("images pull"))).toEqual([]);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual([]);
    });

    test("node: pulls only kube-proxy and pause, the manifest's images and extra images, skipping present ones", () => {
        const sb = createSandbox();
        setState(sb, imageKey("registry.k8s.io/pause:3.10.1"));
        const result = runScript(sb, "pull-images", {
            KUBEADM_IMAGES: "node",
            IMAGES: "docker.io/library/busybox:1.37 ghcr.io/flannel-io/flannel:v0.28.9",
            MANIFEST_URLS: flannelUrl,
        });
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("");
        expect(callsTo(sb, "curl")).toEqual([expect.stringContaining(flannelUrl)]);
        const pulls = callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"));
        // Each image once (the flannel image is listed twice in the manifest and in IMAGES), pause skipped.
        expect(pulls).toEqual([
            "crictl pull registry.k8s.io/kube-proxy:v1.36.0",
            ...flannelImages.map((i) => `crictl pull ${i}`),
            "crictl pull docker.io/library/busybox:1.37",
        ]);
        expect(callsTo(sb, "crictl")).toContain("crictl inspecti registry.k8s.io/pause:3.10.1");
        expect(callsTo(sb, "kubeadm").filter((l) => l.includes("images pull"))).toEqual([]);

        clearCalls(sb);
        expect(runScript(sb, "pull-images", { KUBEADM_IMAGES: "node", IMAGES: "", MANIFEST_URLS: flannelUrl }).status).toBe(0);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual([]);
    });

    test("none: pulls only the extra images", () => {
        const sb = createSandbox();
        const result = runScript(sb, "pull-images", { KUBEADM_IMAGES: "none", IMAGES: "docker.io/gasbugs/http-go:latest", MANIFEST_URLS: "" });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual(["crictl pull docker.io/gasbugs/http-go:latest"]);
    });

    test("retries a failing pull, then fails after the bound naming the image", () => {
        const sb = createSandbox();
        const result = runScript(
            sb,
            "pull-images",
            { KUBEADM_IMAGES: "none", IMAGES: "ghcr.io/flannel-io/flannel:v0.28.9", MANIFEST_URLS: "" },
            { env: { STUB_PULL_FAIL: "*flannel:*", RETRY_ATTEMPTS: "3" } },
        );
        expect(result.status).not.toBe(0);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual(
            Array(3).fill("crictl pull ghcr.io/flannel-io/flannel:v0.28.9"),
        );
        expect(result.stderr).toMatch(/could not pull ghcr\.io\/flannel-io\/flannel:v0\.28\.9/);
    });

    test("fails when a manifest cannot be downloaded, after retrying", () => {
        const sb = createSandbox();
        const result = runScript(sb, "pull-images", { KUBEADM_IMAGES: "none", IMAGES: "", MANIFEST_URLS: flannelUrl }, {
            env: { STUB_CURL_FAIL: "1", RETRY_ATTEMPTS: "2" },
        });
        expect(result.status).not.toBe(0);
        expect(callsTo(sb, "curl")).toHaveLength(2);
        expect(result.stderr).toContain(`could not download ${flannelUrl}`);
    });

    test("rejects an unknown KUBEADM_IMAGES value", () => {
        const sb = createSandbox();
        const result = runScript(sb, "pull-images", { KUBEADM_IMAGES: "all", IMAGES: "", MANIFEST_URLS: "" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/KUBEADM_IMAGES must be control-plane, node or none/);
    });
});
