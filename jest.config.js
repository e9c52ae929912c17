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
};
