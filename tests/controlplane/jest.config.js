// The control-plane tier: real etcd, kube-apiserver, kube-controller-manager, kubeadm, kubectl,
// MetalLB's controller, and (in the upgrade files) kube-scheduler and kwok's simulated nodes, on
// loopback. Slower than `npm test` (which excludes this folder); run it with
// `npm run test:controlplane`. The first run builds the binaries (tens of minutes on 2 cores; README "Tests").
/** @type {import('jest').Config} */
module.exports = {
    rootDir: "../..",
    testEnvironment: "<rootDir>/tests/controlplane/environment.js",
    roots: ["<rootDir>/tests/controlplane"],
    testMatch: ["**/*.test.ts"],
    setupFiles: ["<rootDir>/tests/helpers/loadOnFirstUse.ts"],
    globalSetup: "<rootDir>/tests/controlplane/globalSetup.ts",
    transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022" }, module: { type: "commonjs" } }] },
    testTimeout: 120000,
    // Two files at a time, each with its own control plane: most of a file's time is spent waiting on
    // processes (an API server's start, a controller's reaction, a drain's timeout), not on the CPU.
    // Measured on 2 cores at load average 5: 205 s with one worker, 140 s with two. Since issue 21,
    // alone at load average 2-5: 85-92 s and 107-124 CPU-seconds with two workers, 71-75 s and
    // 112-125 with three. Three use no less CPU, so two, which leave more of the cores to the checks
    // that run beside the tier in `npm run check`.
    maxWorkers: 2,
};
