/**
 * Turns what the program declares (recorded under Pulumi's mock runtime) into the manifests the
 * Kubernetes provider would send, and MetalLB's Go API types into its CRDs, for the real API server.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RecordedResource } from "../helpers/program";
import { binaries } from "./controlPlane";

/** `kubernetes:<group>/<version>:<Kind>` → apiVersion and kind; undefined for providers, Helm and other non-objects. */
export function objectTypeOf(type: string): { apiVersion: string; kind: string } | undefined {
    const m = /^kubernetes:([^/:]+)\/([^/:]+):([A-Za-z0-9]+)$/.exec(type);
    if (!m || m[1] === "helm.sh" || m[1] === "kustomize" || m[1] === "yaml") {
        return undefined;
    }
    return { apiVersion: m[1] === "core" ? m[2] : `${m[1]}/${m[2]}`, kind: m[3] };
}

export interface Manifest {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; [key: string]: unknown };
    [key: string]: unknown;
}

/** The Kubernetes objects among the recorded resources, as manifests (Helm charts are not rendered under mocks). */
export function manifestsOf(resources: RecordedResource[]): Manifest[] {
    return resources.flatMap((r) => {
        const t = objectTypeOf(r.type);
        if (!t) {
            return [];
        }
        const object = JSON.parse(JSON.stringify(r.inputs)) as Manifest;
        if (!object.metadata?.name) {
            throw new Error(`${r.type} ${r.name} has no metadata.name: Pulumi would auto-name it; name it in the program so tests and users can find it`);
        }
        return [{ ...object, apiVersion: t.apiVersion, kind: t.kind }];
    });
}

/** Applies namespaces before what lives in them. */
export function applyOrder(manifests: Manifest[]): Manifest[] {
    const rank = (m: Manifest) => (m.kind === "Namespace" ? 0 : m.kind === "CustomResourceDefinition" ? 1 : 2);
    return [...manifests].sort((a, b) => rank(a) - rank(b));
}

let generatedCrds: string | undefined;

/**
 * MetalLB's CRDs, generated from its Go API types by controller-gen exactly as MetalLB's own build
 * does (tasks.py generate_manifest: `controller-gen crd:crdVersions=v1 ... paths="./api/..."`).
 * Returns a multi-document YAML. Cached for the test file.
 */
export function metallbCrds(): string {
    if (generatedCrds !== undefined) {
        return generatedCrds;
    }
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "metallb-crds-"));
    try {
        execFileSync(binaries.controllerGen, ["crd:crdVersions=v1", 'paths="./api/..."', `output:crd:artifacts:config=${out}`], {
            cwd: fs.realpathSync(binaries.metallbSource),
            env: { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" },
            stdio: ["ignore", "pipe", "pipe"],
        });
        const files = fs.readdirSync(out).filter((f) => f.endsWith(".yaml")).sort();
        if (!files.includes("metallb.io_ipaddresspools.yaml")) {
            throw new Error(`controller-gen wrote no IPAddressPool CRD (got ${files.join(", ")})`);
        }
        generatedCrds = files.map((f) => fs.readFileSync(path.join(out, f), "utf8")).join("\n---\n");
        return generatedCrds;
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
}
