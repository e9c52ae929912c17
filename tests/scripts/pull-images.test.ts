import * as fs from "fs";
import * as path from "path";
import { flannelManifestUrl } from "../../components/versions";
import { callsTo, clearCalls, createSandbox, fixturesDir, hasState, imageKey, removeSandboxes, runScript, Sandbox, setState } from "./harness";

const flannelUrl = flannelManifestUrl();
// In the order the real v0.28.9 release manifest (fixtures/kube-flannel.yml) names them.
const flannelImages = ["ghcr.io/flannel-io/flannel:v0.28.9", "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"];
// `kubeadm config images list --kubernetes-version v1.36.3` (fixtures/kubeadm-images-v1.36.3.txt).
const kubeadmImages = fs.readFileSync(path.join(fixturesDir, "kubeadm-images-v1.36.3.txt"), "utf8").trim().split("\n");

afterAll(removeSandboxes);

/** Runs pull-images.sh with the stubbed kubeadm answering as v1.36.3, whose real image list it prints. */
function pull(sb: Sandbox, settings: Record<string, string>, env: Record<string, string> = {}) {
    return runScript(sb, "pull-images", settings, { env: { STUB_KUBEADM_VERSION: "v1.36.3", ...env } });
}

describe("the fixtures are the pinned upstream output", () => {
    test("kubeadm v1.36.3 lists the images pull-images.sh selects for a worker: one kube-proxy, one pause", () => {
        expect(kubeadmImages.filter((i) => /\/(kube-proxy|pause):/.test(i))).toEqual([
            "registry.k8s.io/kube-proxy:v1.36.3",
            "registry.k8s.io/pause:3.10.2",
        ]);
        expect(kubeadmImages).toHaveLength(7);
        expect(kubeadmImages.every((i) => i.startsWith("registry.k8s.io/"))).toBe(true);
    });
});

describe("pull-images.sh", () => {
    test("control-plane: pulls kubeadm's images for the installed version, and not again once present", () => {
        const sb = createSandbox();
        const settings = { KUBEADM_IMAGES: "control-plane", IMAGES: "", MANIFEST_URLS: "" };
        const first = pull(sb, settings);
        expect(first.status).toBe(0);
        expect(first.stdout).toBe("");
        expect(callsTo(sb, "kubeadm").filter((l) => l.includes("images pull"))).toEqual([
            "kubeadm config images pull --kubernetes-version v1.36.3 --cri-socket unix:///run/containerd/containerd.sock",
        ]);
        for (const image of kubeadmImages) {
            expect(hasState(sb, imageKey(image))).toBe(true);
        }

        clearCalls(sb);
        expect(pull(sb, settings).status).toBe(0);
        expect(callsTo(sb, "kubeadm").filter((l) => l.includes("images pull"))).toEqual([]);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual([]);
    });

    test("node: pulls only kube-proxy and pause, the manifest's images and extra images, skipping present ones", () => {
        const sb = createSandbox();
        setState(sb, imageKey("registry.k8s.io/pause:3.10.2"));
        const result = pull(sb, {
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
            "crictl pull registry.k8s.io/kube-proxy:v1.36.3",
            ...flannelImages.map((i) => `crictl pull ${i}`),
            "crictl pull docker.io/library/busybox:1.37",
        ]);
        expect(callsTo(sb, "crictl")).toContain("crictl inspecti registry.k8s.io/pause:3.10.2");
        expect(callsTo(sb, "kubeadm").filter((l) => l.includes("images pull"))).toEqual([]);

        clearCalls(sb);
        expect(pull(sb, { KUBEADM_IMAGES: "node", IMAGES: "", MANIFEST_URLS: flannelUrl }).status).toBe(0);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual([]);
    });

    test("none: pulls only the extra images", () => {
        const sb = createSandbox();
        const result = pull(sb, { KUBEADM_IMAGES: "none", IMAGES: "docker.io/gasbugs/http-go:latest", MANIFEST_URLS: "" });
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toEqual([]);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual(["crictl pull docker.io/gasbugs/http-go:latest"]);
    });

    test("retries a failing pull of a CNI image, then fails after the bound naming the image", () => {
        const sb = createSandbox();
        const result = pull(sb, { KUBEADM_IMAGES: "none", IMAGES: "", MANIFEST_URLS: flannelUrl }, { STUB_PULL_FAIL: "*flannel:*", RETRY_ATTEMPTS: "3" });
        expect(result.status).not.toBe(0);
        expect(callsTo(sb, "crictl").filter((l) => l.startsWith("crictl pull"))).toEqual(
            Array(3).fill("crictl pull ghcr.io/flannel-io/flannel:v0.28.9"),
        );
        expect(result.stderr).toMatch(/ERROR: could not pull ghcr\.io\/flannel-io\/flannel:v0\.28\.9, which this node needs/);
    });

    test("a kubeadm image that cannot be pulled is fatal", () => {
        const sb = createSandbox();
        const result = pull(sb, { KUBEADM_IMAGES: "node", IMAGES: "", MANIFEST_URLS: "" }, { STUB_PULL_FAIL: "*kube-proxy:*", RETRY_ATTEMPTS: "2" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/ERROR: could not pull registry\.k8s\.io\/kube-proxy:v1\.36\.3, which this node needs/);
    });

    test("an optional image (IMAGES) that cannot be pulled is a warning: the required ones are still pulled", () => {
        const sb = createSandbox();
        const app = "docker.io/gasbugs/http-go:latest";
        const result = pull(sb, { KUBEADM_IMAGES: "node", IMAGES: app, MANIFEST_URLS: flannelUrl }, { STUB_PULL_FAIL: "*http-go*", RETRY_ATTEMPTS: "2" });
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("");
        // Retried like any pull, then left to the kubelet.
        expect(callsTo(sb, "crictl").filter((l) => l === `crictl pull ${app}`)).toHaveLength(2);
        expect(result.stderr).toContain(`WARNING: could not pull the optional image ${app}; continuing, the kubelet pulls it when a pod needs it`);
        expect(result.stderr).toMatch(new RegExp(`done: 4 pulled, 0 already present, 1 optional not pulled \\(${app.replace(/\./g, "\\.")}\\)`));
        for (const image of ["registry.k8s.io/kube-proxy:v1.36.3", "registry.k8s.io/pause:3.10.2", ...flannelImages]) {
            expect(hasState(sb, imageKey(image))).toBe(true);
        }
    });

    test("an image that is both required (the manifest) and listed in IMAGES stays required", () => {
        const sb = createSandbox();
        const result = pull(sb, { KUBEADM_IMAGES: "none", IMAGES: "ghcr.io/flannel-io/flannel:v0.28.9", MANIFEST_URLS: flannelUrl }, { STUB_PULL_FAIL: "*flannel:*", RETRY_ATTEMPTS: "1" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/ERROR: could not pull ghcr\.io\/flannel-io\/flannel:v0\.28\.9, which this node needs/);
    });

    test("fails when a manifest cannot be downloaded, after retrying", () => {
        const sb = createSandbox();
        const result = pull(sb, { KUBEADM_IMAGES: "none", IMAGES: "", MANIFEST_URLS: flannelUrl }, { STUB_CURL_FAIL: "1", RETRY_ATTEMPTS: "2" });
        expect(result.status).not.toBe(0);
        expect(callsTo(sb, "curl")).toHaveLength(2);
        expect(result.stderr).toContain(`could not download ${flannelUrl}`);
    });

    test("rejects an unknown KUBEADM_IMAGES value", () => {
        const sb = createSandbox();
        const result = pull(sb, { KUBEADM_IMAGES: "all", IMAGES: "", MANIFEST_URLS: "" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/KUBEADM_IMAGES must be control-plane, node or none/);
    });
});
