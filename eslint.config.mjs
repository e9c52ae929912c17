// ESLint flat config: typescript-eslint's recommended rules on the project's TypeScript
// (index.ts, components/, tests/, policy/). Run with `npx eslint .` (tools/lint.sh does).
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

const tsFiles = ["index.ts", "components/**/*.ts", "tests/**/*.ts", "policy/**/*.ts"];

export default defineConfig([
    globalIgnores(["**/node_modules/", "bin/", "app/", "coverage/", ".ci/.tools/", ".pulumi-state/"]),
    ...tseslint.configs.recommended.map((config) => ({ ...config, files: tsFiles })),
    {
        // Tests and policies handle resource inputs as Pulumi passes them: untyped property bags.
        files: ["tests/**/*.ts", "policy/**/*.ts"],
        rules: { "@typescript-eslint/no-explicit-any": "off" },
    },
    {
        // Test support modules (tests/helpers/, tests/app/harness.ts) require the program's modules
        // inside each run (index.ts afresh, in an isolated jest module registry): a plain require().
        // Test files themselves keep the rule.
        files: ["tests/**/*.ts"],
        ignores: ["tests/**/*.test.ts"],
        rules: { "@typescript-eslint/no-require-imports": "off" },
    },
]);
