// Transpile-only: type errors are caught once by `npm run typecheck`, so tests stay fast.

// Node flags for the workers: jest forks them with this process's execArgv (jest-worker), read after
// this file, so they start with these flags and nothing else inherits them (NODE_OPTIONS would reach
// every process a test starts, the e2e test's `pulumi up` among them).
// - AsyncLocalStorage without promise hooks (Node 24's default; Node 22 has it behind this flag).
//   jest-circus runs every test inside an AsyncLocalStorage (jestAdapterInit.js), and under Node 22's
//   hook-based one every promise pays for it, and a program run under mocks is mostly promises.
// - A larger young generation: a run makes many short-lived objects, and scavenges were a sixth of it.
// Together, on two cores: 40-44 CPU-seconds for `npm test` instead of 46-49 (2026-12-07). A single
// test file runs in this process instead, without them. A flag this Node does not know is left out.
for (const flag of ["--experimental-async-context-frame", "--max-semi-space-size=64"]) {
  if (process.allowedNodeEnvironmentFlags.has(flag.split("=")[0]) && !process.execArgv.includes(flag)) {
    process.execArgv.push(flag);
  }
}

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests", "<rootDir>/policy"],
  testMatch: ["**/*.test.ts"],
  setupFiles: ["<rootDir>/tests/helpers/loadOnFirstUse.ts"],
  // The control-plane tier runs real Kubernetes binaries: `npm run test:controlplane`.
  testPathIgnorePatterns: ["/node_modules/", "<rootDir>/tests/controlplane/"],
  transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022" }, module: { type: "commonjs" } }] },
  testTimeout: 30000,
  // Two workers per core on a small machine: jest's main process only waits while the workers run,
  // and the script tests spend seconds waiting (a held apt lock, a timeout, a retry), which the other
  // workers fill (npm test on two cores, 2026-12-07, load average 1-3: 30 s with two workers, 25 s
  // with three, 23 s with four). At most eight, unless jest's own default (a worker per core but
  // one) is more: each worker holds its own copy of the SDKs.
  maxWorkers: (() => {
    const cores = require("os").availableParallelism();
    return Math.max(cores - 1, Math.min(cores * 2, 8));
  })(),
};
