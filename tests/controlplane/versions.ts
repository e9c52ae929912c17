/**
 * Versions of the real upstream binaries the control-plane test tier builds and runs.
 *
 * The program pins only a Kubernetes minor (components/versions.ts); the tier builds one patch
 * release of each minor it covers. To bump: change the entry here, run `npm run test:controlplane`
 * (the first run after a bump builds the new binaries, about 12 minutes per Kubernetes release on 2 cores).
 */
import { versions } from "../../components/versions";

/** containerd's upstream release of the pinned Docker package (2.4.2-1~ubuntu.24.04~noble → v2.4.2). */
export const containerdVersion = `v${/^(\d+\.\d+\.\d+)-/.exec(versions.containerdPackage)![1]}`;

/** The patch release built for each Kubernetes minor the tier covers (k8s.io/kubernetes tags). */
export const kubernetesPatches: Readonly<Record<string, string>> = {
    "1.36": "v1.36.3",
    // The newest release on the Go module proxy when 1.37 was added.
    "1.37": "v1.37.2",
};

/**
 * The etcd the tier runs for every Kubernetes release it builds, and whose etcdctl/etcdutl the
 * restore test uses: the release the program pins for its snapshot tools (components/versions.ts
 * etcdTools), kubeadm 1.36's default etcd (cmd/kubeadm/app/constants: DefaultEtcdVersion "3.6.8-0").
 * kubeadm 1.37.2 defaults to "3.7.0-0" (its SupportedEtcdVersion maps 34, 35 and 36 to it); the tier
 * moves with etcdTools.
 */
export const etcdVersion = versions.etcdTools;

/** MetalLB's chart and app versions move together (charts/metallb/Chart.yaml: version 0.16.1, appVersion v0.16.1). */
export const metallbVersion = `v${versions.metallbChart}`;

/** The controller-gen MetalLB's own build uses to generate its CRDs (tasks.py: controller_gen_version). */
export const controllerToolsVersion = "v0.19.0";

/**
 * kwok (sigs.k8s.io/kwok): simulated nodes whose pods the real scheduler places and kwok marks Running
 * and Ready, so drains meet pods that behave (the newest release on the Go module proxy).
 */
export const kwokVersion = "v0.8.0";

/** The Kubernetes release the tier runs for a minor, or a clear error when the tier does not cover it. */
export function kubernetesPatchFor(minor: string): string {
    const patch = kubernetesPatches[minor];
    if (!patch) {
        throw new Error(
            `the control-plane tier builds no Kubernetes ${minor} (it covers ${Object.keys(kubernetesPatches).join(", ")}); add it to tests/controlplane/versions.ts`,
        );
    }
    return patch;
}
