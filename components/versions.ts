/**
 * Everything the cluster downloads at deploy time, pinned in one place.
 *
 * To bump one, change it here, run `npm run check`, then `pulumi preview`: the diff shows exactly
 * which provisioning steps or releases re-run. The README ("Bumping versions") says what each
 * bump implies for a live cluster.
 */
export const versions = {
    /** Default Kubernetes minor (the `kubernetesVersion` config key overrides it per stack). */
    kubernetesMinor: "1.36",
    /**
     * containerd from Docker's apt repository: the exact `containerd.io` package version, installed
     * as `containerd.io=<this>` and checked with dpkg-query afterwards. Exact, because that repository
     * has advertised a patch whose .deb was missing (docker/for-linux#1557), which broke every
     * node installing "the newest 2.2.x". The `~noble` build matches `osImage` (Ubuntu 24.04);
     * `apt-cache madison containerd.io` on a node lists the others. Ubuntu's own `containerd`
     * package is the end-of-life 1.7 line.
     */
    containerdPackage: "2.2.1-1~ubuntu.24.04~noble",
    /** Flannel CNI release; its manifest comes from the GitHub release of this tag. */
    flannel: "v0.28.9",
    /** MetalLB Helm chart (https://metallb.github.io/metallb), used for IP address management only. */
    metallbChart: "0.16.1",
    /** metrics-server Helm chart (https://kubernetes-sigs.github.io/metrics-server/). */
    metricsServerChart: "3.13.0",
    /** Boot image of every node: Ubuntu 24.04 LTS, newest image of the family at VM creation. */
    osImage: "ubuntu-os-cloud/ubuntu-2404-lts-amd64",
    /** The seed's app image; build your own from app/ and set `appImage` to pin it by tag or digest. */
    appImage: "docker.io/gasbugs/http-go:latest",
} as const;

export const helmRepos = {
    metallb: "https://metallb.github.io/metallb",
    metricsServer: "https://kubernetes-sigs.github.io/metrics-server/",
} as const;

/** Flannel's manifest for the pinned release. */
export function flannelManifestUrl(version: string = versions.flannel): string {
    return `https://github.com/flannel-io/flannel/releases/download/${version}/kube-flannel.yml`;
}
