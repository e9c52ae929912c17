/**
 * Validates the Kubernetes objects the program declares against real schemas, offline.
 *
 * - Built-in kinds (`kubernetes:apps/v1:Deployment`, `kubernetes:core/v1:Service`, …): the
 *   OpenAPI-derived validators of `kubernetes-models` (types, required fields, enums,
 *   int-or-string, nested objects), a fast first check. What only an API server checks (names,
 *   label syntax, selectors, admission such as Pod Security) is the control-plane tier's job.
 * - Custom resources (MetalLB's `IPAddressPool`): left to the control-plane tier
 *   (tests/controlplane/), where the real API server checks them against MetalLB's CRDs generated
 *   from its Go types; here they are only recognised ("api-server").
 * - Helm charts (`kubernetes:helm.sh/v4:Chart`, or a v3 Release): shape only — pinned chart version, https
 *   repository, JSON-clean values, and for the charts this program installs, value keys that exist
 *   in the chart's values.yaml with the expected types. The rendered manifests are not validated.
 *
 * kubernetes-models ships ES modules only, which Jest's CommonJS runtime cannot load, so the
 * built-in validation runs in one child `node` process per call; validate many objects in one
 * call (`validateKubernetesObjects`) to pay that once.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface KubernetesObjectInput {
    /** Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`. */
    type: string;
    /** The resource's inputs as the provider receives them (Outputs resolved). */
    inputs: any;
    /** Used in messages only. */
    name?: string;
}

export type SchemaSource = "kubernetes-models" | "api-server" | "helm-values";

interface TypeToken {
    group: string;
    version: string;
    kind: string;
}

/** Splits `kubernetes:<group>/<version>:<Kind>`; undefined for anything else. */
export function parseTypeToken(type: string): TypeToken | undefined {
    const m = /^kubernetes:([^/:]+)\/([^/:]+):([A-Za-z0-9]+)$/.exec(type);
    return m ? { group: m[1], version: m[2], kind: m[3] } : undefined;
}

/** True for type tokens of Kubernetes objects (not providers). */
export function isKubernetesObjectType(type: string): boolean {
    return parseTypeToken(type) !== undefined;
}

/** Which schema a type is validated against; undefined when this helper has none for it. */
export function schemaSourceFor(type: string): SchemaSource | undefined {
    const t = parseTypeToken(type);
    if (!t) {
        return undefined;
    }
    if (t.group === "helm.sh" && (t.kind === "Release" || t.kind === "Chart")) {
        return "helm-values";
    }
    if (customResourceGroups.includes(t.group)) {
        return "api-server";
    }
    return modelFile(t) ? "kubernetes-models" : undefined;
}

/** Throws with every schema problem of one object. */
export function validateKubernetesObject(type: string, inputs: any): void {
    validateKubernetesObjects([{ type, inputs }]);
}

/** Throws with every problem of every object (one child process for all built-in kinds). */
export function validateKubernetesObjects(objects: KubernetesObjectInput[]): void {
    const problems = kubernetesObjectProblems(objects);
    if (problems.length > 0) {
        throw new Error(`Kubernetes schema validation failed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    }
}

/** Like validateKubernetesObjects, but returns the problems ("<label>: <message>") instead. */
export function kubernetesObjectProblems(objects: KubernetesObjectInput[]): string[] {
    const problems: string[] = [];
    const jobs: ChildJob[] = [];
    const jobLabels: string[] = [];
    for (const { type, inputs, name } of objects) {
        const label = `${type}${name ? ` ${name}` : ""}`;
        const t = parseTypeToken(type);
        if (!t) {
            problems.push(`${label}: not a Kubernetes object type token`);
            continue;
        }
        const source = schemaSourceFor(type);
        if (source === undefined) {
            problems.push(`${label}: no schema known for ${t.group}/${t.version} ${t.kind}`);
            continue;
        }
        if (source === "helm-values") {
            problems.push(...helmReleaseProblems(inputs).map((p) => `${label}: ${p}`));
            continue;
        }
        if (source === "api-server") {
            continue;
        }
        const object = plainJson(inputs);
        const apiVersion = t.group === "core" ? t.version : `${t.group}/${t.version}`;
        if (object.apiVersion !== undefined && object.apiVersion !== apiVersion) {
            problems.push(`${label}: apiVersion is ${JSON.stringify(object.apiVersion)}, expected ${apiVersion}`);
        }
        if (object.kind !== undefined && object.kind !== t.kind) {
            problems.push(`${label}: kind is ${JSON.stringify(object.kind)}, expected ${t.kind}`);
        }
        object.apiVersion = apiVersion;
        object.kind = t.kind;
        jobs.push({ file: modelFile(t)!, exportName: t.kind, object });
        jobLabels.push(label);
    }
    if (jobs.length > 0) {
        runChild(jobs).forEach((error, i) => {
            if (error !== null) {
                problems.push(`${jobLabels[i]}: ${error}`);
            }
        });
    }
    return problems;
}

// ---------------------------------------------------------------------------------------------
// Built-in kinds: kubernetes-models in a child process.

interface ChildJob {
    file: string;
    exportName: string;
    object: unknown;
}

const childScript = `
import { pathToFileURL } from "node:url";
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const jobs = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = [];
for (const job of jobs) {
    try {
        const mod = await import(pathToFileURL(job.file).href);
        new mod[job.exportName](job.object).validate();
        results.push(null);
    } catch (e) {
        results.push(String((e && e.message) || e));
    }
}
process.stdout.write(JSON.stringify(results));
`;

function runChild(jobs: ChildJob[]): (string | null)[] {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", childScript], {
        input: JSON.stringify(jobs),
        encoding: "utf8",
        maxBuffer: 16 * 1024 * 1024,
    });
    return JSON.parse(out);
}

let modelsRoot: string | undefined;
function kubernetesModelsDir(): string {
    if (!modelsRoot) {
        modelsRoot = findUp(path.join("node_modules", "kubernetes-models", "package.json"));
    }
    return modelsRoot;
}

function findUp(relative: string): string {
    for (let dir = __dirname; ; dir = path.dirname(dir)) {
        const candidate = path.join(dir, relative);
        if (fs.existsSync(candidate)) {
            return path.dirname(candidate);
        }
        if (path.dirname(dir) === dir) {
            throw new Error(`k8sSchema: cannot find ${relative} above ${__dirname} (is kubernetes-models installed?)`);
        }
    }
}

function modelFile(t: TypeToken): string | undefined {
    const dir = t.group === "core" ? t.version : path.join(t.group, t.version);
    const file = path.join(kubernetesModelsDir(), dir, `${t.kind}.js`);
    return fs.existsSync(file) ? file : undefined;
}

/** Drops undefined and functions exactly as the wire format would (and copies). */
function plainJson(value: unknown): any {
    return value === undefined ? {} : JSON.parse(JSON.stringify(value));
}

/** API groups of custom resources: the control-plane tier applies them against their real CRDs. */
const customResourceGroups = ["metallb.io"];

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

// ---------------------------------------------------------------------------------------------
// Helm releases: shape of the release and of the values this program sets.

interface ChartValues {
    /** Top-level keys of the chart's values.yaml. */
    topLevel: string[];
    /** Leaf paths this program sets, with the type the chart expects. */
    leaves: Record<string, "boolean" | "string" | "string[]">;
}

/**
 * Value keys of the charts this program installs, from their values.yaml on the projects' default
 * branches (metallb/metallb charts/metallb, kubernetes-sigs/metrics-server charts/metrics-server).
 */
export const knownChartValues: Record<string, ChartValues> = {
    metallb: {
        topLevel: ["imagePullSecrets", "nameOverride", "fullnameOverride", "loadBalancerClass", "rbac", "tls", "prometheus", "controller", "speaker", "crds", "frrk8s", "frr-k8s", "networkpolicies"],
        leaves: {
            "speaker.enabled": "boolean",
            "frrk8s.enabled": "boolean",
            "crds.enabled": "boolean",
            "crds.validationFailurePolicy": "string",
            "controller.enabled": "boolean",
            "controller.logLevel": "string",
        },
    },
    "metrics-server": {
        topLevel: [
            "image", "imagePullSecrets", "nameOverride", "fullnameOverride", "serviceAccount", "rbac", "apiService", "commonLabels",
            "podLabels", "podAnnotations", "podSecurityContext", "securityContext", "priorityClassName", "containerPort", "hostNetwork",
            "replicas", "revisionHistoryLimit", "updateStrategy", "podDisruptionBudget", "defaultArgs", "args", "livenessProbe",
            "readinessProbe", "service", "addonResizer", "metrics", "serviceMonitor", "resources", "extraVolumeMounts", "extraVolumes",
            "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "dnsConfig", "deploymentAnnotations", "schedulerName",
            "tmpVolume",
        ],
        leaves: { defaultArgs: "string[]", args: "string[]" },
    },
};

function leafPaths(value: unknown, prefix = ""): [string, unknown][] {
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        return Object.entries(value).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
    }
    return [[prefix, value]];
}

export function helmReleaseProblems(inputs: any): string[] {
    const problems: string[] = [];
    if (typeof inputs?.chart !== "string" || inputs.chart === "") {
        problems.push("chart must be a chart name");
        return problems;
    }
    if (typeof inputs.version !== "string" || !/^\d+\.\d+\.\d+$/.test(inputs.version)) {
        problems.push(`version ${JSON.stringify(inputs.version)} must pin an exact chart version (x.y.z)`);
    }
    const repo = inputs.repositoryOpts?.repo;
    if (typeof repo !== "string" || !/^https:\/\/[^\s]+$/.test(repo)) {
        problems.push(`repositoryOpts.repo ${JSON.stringify(repo)} must be an https chart repository`);
    }
    if (typeof inputs.namespace !== "string" || !dns1123Label.test(inputs.namespace)) {
        problems.push(`namespace ${JSON.stringify(inputs.namespace)} must be a namespace name`);
    }
    const values = inputs.values ?? {};
    if (JSON.stringify(plainJson(values)) !== JSON.stringify(values)) {
        problems.push("values must be plain JSON (no undefined, functions or class instances)");
    }
    const known = knownChartValues[inputs.chart];
    if (known) {
        for (const key of Object.keys(values)) {
            if (!known.topLevel.includes(key)) {
                problems.push(`values.${key} is not a value of chart ${inputs.chart}`);
            }
        }
        for (const [leaf, value] of leafPaths(values)) {
            const expected = known.leaves[leaf];
            if (expected === undefined) {
                problems.push(`values.${leaf} is not among the ${inputs.chart} values this helper knows; add it to knownChartValues after checking the chart`);
                continue;
            }
            const ok =
                expected === "string[]" ? Array.isArray(value) && value.every((v) => typeof v === "string") : typeof value === expected;
            if (!ok) {
                problems.push(`values.${leaf} must be ${expected}, got ${JSON.stringify(value)}`);
            }
        }
    }
    return problems;
}
