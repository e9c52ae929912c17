/**
 * Everything the cluster downloads at deploy time, pinned in one place.
 *
 * To bump one, change it here, run `npm run check`, then `pulumi preview`: the diff shows exactly
 * which provisioning steps or releases re-run. The README ("Bumping versions") says what each
 * bump implies for a live cluster.
 */
/**
 * The Kubernetes minors a stack may run (`kubernetesVersion` accepts only these, and upgrades move
 * between them): those for which every pinned tool documents support. containerd is the bound: its
 * RELEASES.md ("Kubernetes Support", as of v2.4.2) recommends 2.4.0+ or 2.3.0+ for 1.37, 2.3.0+ or
 * 2.2.0+ for 1.36, 2.2.0+ (and older lines) for 1.35. The pinned 2.4 is the newest line it lists for
 * 1.37; for 1.35 and 1.36 it is newer than the lines listed, which the same section allows ("Any
 * actively supported version of containerd may receive patches to fix bugs encountered in any
 * version of Kubernetes"), and they stay here so that running stacks keep a supported path to 1.37.
 * metrics-server 0.8 supports 1.31+, MetalLB 0.16 1.13+, and Flannel v0.28's manifest uses GA APIs only.
 *
 * To add a minor: once containerd's RELEASES.md (main branch) lists it for the pinned containerd
 * (bump `containerdPackage` first if only a newer containerd does), append it here and add its
 * patch release to `kubernetesPatches` in tests/controlplane/versions.ts, then run `npm run check`
 * and `npm run test:controlplane`. docs/upgrading.md ("Supported versions") cites each source.
 */
export const supportedKubernetesMinors: readonly string[] = ["1.35", "1.36", "1.37"];

export const versions = {
    /**
     * Default Kubernetes minor (the `kubernetesVersion` config key overrides it per stack): the newest
     * of supportedKubernetesMinors. Stacks that never set the key move with it, which is an upgrade.
     */
    kubernetesMinor: "1.37",
    /**
     * containerd from Docker's apt repository: the exact `containerd.io` package version, installed
     * as `containerd.io=<this>` and checked with dpkg-query afterwards. Exact, because that repository
     * has advertised a patch whose .deb was missing (docker/for-linux#1557), which broke every
     * node installing "the newest 2.2.x". The `~noble` build matches `osImage` (Ubuntu 24.04);
     * `apt-cache madison containerd.io` on a node lists the others. Ubuntu's own `containerd`
     * package is the end-of-life 1.7 line.
     *
     * 2.4.2: the newest release of the newest line whose RELEASES.md lists Kubernetes 1.37 (the
     * v2.4.2 tag's RELEASES.md, read from the Go module proxy's github.com/containerd/containerd/v2
     * v2.4.2; the 2.2 line's support ended November 6, 2026, its "Current State" table says). The
     * version string follows the pattern of Docker's repository (`<upstream>-1~ubuntu.24.04~noble`,
     * as 2.2.1-1~ubuntu.24.04~noble was); download.docker.com was not reachable where this was
     * chosen, so `apt-cache madison containerd.io` on a node is the check that it is published.
     */
    containerdPackage: "2.4.2-1~ubuntu.24.04~noble",
    /**
     * etcd release of the etcdctl and etcdutl that save and restore snapshots (scripts/etcd-backup.sh),
     * from etcd's GitHub release, checked against its SHA256SUMS: kubeadm 1.36's own etcd
     * (cmd/kubeadm/app/constants DefaultEtcdVersion 3.6.8-0). Bump it with the Kubernetes minor.
     */
    etcdTools: "v3.6.8",
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
