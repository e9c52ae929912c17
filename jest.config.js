// Transpile-only: type errors are caught once by `npm run typecheck`, so tests stay fast.

// Node flags for the workers, which jest forks after reading this file and which inherit its
// environment (NODE_OPTIONS). Most of a program test's time is the Pulumi SDK's own work:
// - AsyncLocalStorage without promise hooks (Node 24's default; Node 22 has it behind this flag).
//   The SDK keeps its state in one (runtime/state.js), and under Node 22's hooks every promise a
//   program run makes pays for them.
// - A larger young generation: a run makes many short-lived objects, and scavenges were a sixth of it.
// Together, on two cores: 40-44 CPU-seconds for `npm test` instead of 46-49 (2026-12-07).
// A flag this Node does not know is left out (NODE_OPTIONS would refuse to start).
const workerFlags = ["--experimental-async-context-frame", "--max-semi-space-size=64"].filter((flag) =>
  process.allowedNodeEnvironmentFlags.has(flag.split("=")[0]),
);
process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, ...workerFlags].filter(Boolean).join(" ");

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
  // Two workers per core: jest's main process only waits while the workers run, and the script tests
  // spend seconds waiting (a held apt lock, a timeout, a retry), which the other workers fill
  // (npm test on two cores, 2026-12-07, load average 1-3: 30 s with two workers, 25 s with three,
  // 23 s with four).
  // (jest reads a percentage above 100 as a number of workers, so the figure is computed.)
  maxWorkers: Math.max(2, require("os").availableParallelism() * 2),
};
