// The control-plane tier: real etcd, kube-apiserver, kube-controller-manager, kubeadm, kubectl,
// MetalLB's controller, and (in the upgrade file) kube-scheduler and kwok's simulated nodes, on
// loopback. Slower than `npm test` (which excludes this folder); run it with
// `npm run test:controlplane`. The first run builds the binaries (tens of minutes on 2 cores; README "Tests").
/** @type {import('jest').Config} */
module.exports = {
    rootDir: "../..",
    testEnvironment: "<rootDir>/tests/controlplane/environment.js",
    roots: ["<rootDir>/tests/controlplane"],
    testMatch: ["**/*.test.ts"],
    globalSetup: "<rootDir>/tests/controlplane/globalSetup.ts",
    transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022" }, module: { type: "commonjs" } }] },
    testTimeout: 120000,
    // One control plane at a time: two would compete for the machine's two cores.
    maxWorkers: 1,
};
