// Transpile-only: type errors are caught once by `npm run typecheck`, so tests stay fast.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests", "<rootDir>/policy"],
  testMatch: ["**/*.test.ts"],
  // The control-plane tier runs real Kubernetes binaries: `npm run test:controlplane`.
  testPathIgnorePatterns: ["/node_modules/", "<rootDir>/tests/controlplane/"],
  transform: { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2022" }, module: { type: "commonjs" } }] },
  testTimeout: 30000,
  // Three workers on two cores: jest's default keeps one core for its main process, which only waits
  // while the workers run, and the script tests spend seconds waiting (a held apt lock, a timeout), so a
  // third worker fills that time (npm test, warm, load average below 1: 47 s with two workers, 37 to
  // 41 s with three, 40 s with four).
  // (jest reads a percentage above 100 as a number of workers, so the figure is computed.)
  maxWorkers: Math.max(2, Math.floor(require("os").availableParallelism() * 1.5)),
};
