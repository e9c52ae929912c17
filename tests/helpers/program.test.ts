/**
 * The mock-runtime harness itself (program.ts, loadOnFirstUse.ts): what keeps the program tests fast,
 * one copy of each SDK per test file, without letting runs share the program.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { types } from "util";
import { loadFresh, recordUnderMocks } from "./program";

test("a run uses the test file's own copy of the SDK, so a test file loads it once", async () => {
    const recording = await recordUnderMocks((p) => new p.ComponentResource("test:index:Probe", "probe"));
    expect(recording.pulumi).toBe(pulumi);
    expect(recording.resources.map((r) => r.name)).toEqual(["probe"]);
});

test("loadFresh evaluates a project module anew each time, with the shared SDKs inside it", () => {
    const first = loadFresh<typeof import("../../components/versions")>("../../components/versions");
    const second = loadFresh<typeof import("../../components/versions")>("../../components/versions");
    expect(second).not.toBe(first);
    expect(second.versions).toEqual(first.versions);
    expect(loadFresh("@pulumi/pulumi")).toBe(pulumi);
    expect(loadFresh("@pulumi/gcp")).toBe(gcp);
});

test("TypeScript, which the SDK requires at import and never uses here, is loaded only when read", () => {
    const typescriptLoaded = () => Object.keys(require.cache).some((file) => file.endsWith(path.join("node_modules", "typescript", "lib", "typescript.js")));
    // The SDK has required it (importing this file's pulumi did), and so does this test:
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require("typescript");
    expect(types.isProxy(ts)).toBe(true);
    expect(typescriptLoaded()).toBe(false);
    expect(ts.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typescriptLoaded()).toBe(true);
});

test("a fresh load that would make second copies of a package's modules is refused, naming them", () => {
    expect(() => loadFresh("@pulumi/pulumi/output")).toThrow(/package files again.*add their package to sharedSdks.*node_modules/);
});
