/**
 * Validates the Kubernetes objects the program declares against real schemas, offline.
 *
 * - Built-in kinds (`kubernetes:apps/v1:Deployment`, `kubernetes:core/v1:Service`, …): the
 *   OpenAPI-derived validators of `kubernetes-models` (types, required fields, enums,
 *   int-or-string, nested objects), plus the API server checks that OpenAPI cannot express and
 *   that are cheap to restate: names, label and annotation syntax, a workload's selector matching
 *   its pod template. Unknown fields are NOT rejected by those validators (the schemas allow
 *   extra properties); the TypeScript types of @pulumi/kubernetes catch misspelt fields instead.
 * - MetalLB's `IPAddressPool` (no kubernetes-models package exists for MetalLB): the CRD's
 *   openAPIV3Schema, transcribed below from metallb/metallb config/crd/bases (controller-gen
 *   v0.16) without descriptions, checked by a small structural validator that also rejects unknown
 *   fields (the API server would prune them silently); metadata through the real ObjectMeta schema.
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

export type SchemaSource = "kubernetes-models" | "metallb-crd" | "helm-values";

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
    if (customResourceSchemas[`${t.group}/${t.version}/${t.kind}`]) {
        return "metallb-crd";
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
        problems.push(...apiServerProblems(t, object).map((p) => `${label}: ${p}`));
        if (source === "metallb-crd") {
            const schema = customResourceSchemas[`${t.group}/${t.version}/${t.kind}`];
            const { metadata, ...rest } = object;
            problems.push(...structuralProblems(schema, rest, "").map((p) => `${label}: ${p}`));
            if (metadata !== undefined) {
                jobs.push({
                    file: path.join(scopedPackageDir("apimachinery"), "_schemas", "IoK8sApimachineryPkgApisMetaV1ObjectMeta.js"),
                    exportName: "validate",
                    isFunction: true,
                    runner: path.join(scopedPackageDir("validate"), "dist", "index.js"),
                    object: metadata,
                });
                jobLabels.push(`${label} metadata`);
            }
            continue;
        }
        jobs.push({ file: modelFile(t)!, exportName: t.kind, isFunction: false, object });
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
    /** A bare ajv validate function (ObjectMeta) rather than a model class. */
    isFunction: boolean;
    /** @kubernetes-models/validate's entry, which turns ajv errors into messages. */
    runner?: string;
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
        if (job.isFunction) {
            const { runValidateFunc } = await import(pathToFileURL(job.runner).href);
            runValidateFunc(mod[job.exportName], job.object);
        } else {
            new mod[job.exportName](job.object).validate();
        }
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

/** A dependency of kubernetes-models (`@kubernetes-models/<name>`), nested or hoisted. */
function scopedPackageDir(name: string): string {
    const nested = path.join(kubernetesModelsDir(), "node_modules", "@kubernetes-models", name);
    return fs.existsSync(nested) ? nested : findUp(path.join("node_modules", "@kubernetes-models", name, "package.json"));
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

// ---------------------------------------------------------------------------------------------
// API server validation that the OpenAPI schemas do not carry.

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const qualifiedNamePart = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function qualifiedNameProblem(key: string): string | undefined {
    const parts = key.split("/");
    if (parts.length > 2) {
        return "has more than one '/'";
    }
    const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]];
    if (prefix !== undefined && (prefix.length > 253 || !dns1123Subdomain.test(prefix))) {
        return "has a prefix that is not a DNS subdomain";
    }
    if (name.length === 0 || name.length > 63 || !qualifiedNamePart.test(name)) {
        return "has a name part that is not 1-63 alphanumerics, '-', '_' or '.'";
    }
    return undefined;
}

function labelProblems(where: string, labels: unknown): string[] {
    if (labels === undefined) {
        return [];
    }
    const problems: string[] = [];
    for (const [key, value] of Object.entries(labels as Record<string, unknown>)) {
        const keyProblem = qualifiedNameProblem(key);
        if (keyProblem) {
            problems.push(`${where} key "${key}" ${keyProblem}`);
        }
        if (typeof value !== "string" || value.length > 63 || !labelValue.test(value)) {
            problems.push(`${where} "${key}" value ${JSON.stringify(value)} is not a valid label value`);
        }
    }
    return problems;
}

function apiServerProblems(t: TypeToken, object: any): string[] {
    const problems: string[] = [];
    const metadata = object.metadata ?? {};
    const name = metadata.name;
    if (name !== undefined) {
        // Services become DNS labels of their own; namespaces are DNS labels; the rest subdomains.
        const [re, what, max] =
            t.kind === "Service" ? [dns1035Label, "DNS-1035 label", 63] : t.kind === "Namespace" ? [dns1123Label, "DNS-1123 label", 63] : [dns1123Subdomain, "DNS-1123 subdomain", 253];
        if (typeof name !== "string" || name.length > max || !re.test(name)) {
            problems.push(`metadata.name ${JSON.stringify(name)} is not a ${what}`);
        }
    }
    if (metadata.namespace !== undefined && (typeof metadata.namespace !== "string" || !dns1123Label.test(metadata.namespace))) {
        problems.push(`metadata.namespace ${JSON.stringify(metadata.namespace)} is not a DNS-1123 label`);
    }
    problems.push(...labelProblems("metadata.labels", metadata.labels));
    for (const key of Object.keys(metadata.annotations ?? {})) {
        const keyProblem = qualifiedNameProblem(key);
        if (keyProblem) {
            problems.push(`metadata.annotations key "${key}" ${keyProblem}`);
        }
    }
    const template = object.spec?.template;
    if (template !== undefined) {
        problems.push(...labelProblems("spec.template.metadata.labels", template.metadata?.labels));
        const matchLabels: Record<string, string> = object.spec?.selector?.matchLabels ?? {};
        const podLabels: Record<string, string> = template.metadata?.labels ?? {};
        for (const [key, value] of Object.entries(matchLabels)) {
            if (podLabels[key] !== value) {
                problems.push(`spec.selector.matchLabels ${key}=${value} does not match the pod template's labels`);
            }
        }
    }
    return problems;
}

// ---------------------------------------------------------------------------------------------
// Custom resources: transcribed CRD schemas and a structural validator.

/** The subset of OpenAPI v3 that structural CRD schemas use. */
export interface StructuralSchema {
    type?: "object" | "array" | "string" | "boolean" | "integer" | "number";
    properties?: Record<string, StructuralSchema>;
    required?: string[];
    items?: StructuralSchema;
    additionalProperties?: StructuralSchema;
    enum?: unknown[];
}

const labelSelectorSchema: StructuralSchema = {
    type: "object",
    properties: {
        matchExpressions: {
            type: "array",
            items: {
                type: "object",
                required: ["key", "operator"],
                properties: {
                    key: { type: "string" },
                    operator: { type: "string" },
                    values: { type: "array", items: { type: "string" } },
                },
            },
        },
        matchLabels: { type: "object", additionalProperties: { type: "string" } },
    },
};

/**
 * `ipaddresspools.metallb.io` v1beta1, openAPIV3Schema without descriptions (metallb/metallb
 * config/crd/bases/metallb.io_ipaddresspools.yaml; the same fields since MetalLB 0.13).
 */
export const ipAddressPoolSchema: StructuralSchema = {
    type: "object",
    required: ["spec"],
    properties: {
        apiVersion: { type: "string" },
        kind: { type: "string" },
        spec: {
            type: "object",
            required: ["addresses"],
            properties: {
                addresses: { type: "array", items: { type: "string" } },
                autoAssign: { type: "boolean" },
                avoidBuggyIPs: { type: "boolean" },
                serviceAllocation: {
                    type: "object",
                    properties: {
                        namespaceSelectors: { type: "array", items: labelSelectorSchema },
                        namespaces: { type: "array", items: { type: "string" } },
                        priority: { type: "integer" },
                        serviceSelectors: { type: "array", items: labelSelectorSchema },
                    },
                },
            },
        },
        status: { type: "object" },
    },
};

const customResourceSchemas: Record<string, StructuralSchema> = {
    "metallb.io/v1beta1/IPAddressPool": ipAddressPoolSchema,
};

/** Problems of `value` against `schema`, with JSON-pointer-like paths; unknown fields are problems. */
export function structuralProblems(schema: StructuralSchema, value: unknown, at: string): string[] {
    const where = at === "" ? "(root)" : at;
    const typeOk: Record<string, (v: unknown) => boolean> = {
        object: (v) => typeof v === "object" && v !== null && !Array.isArray(v),
        array: Array.isArray,
        string: (v) => typeof v === "string",
        boolean: (v) => typeof v === "boolean",
        integer: (v) => Number.isInteger(v),
        number: (v) => typeof v === "number" && Number.isFinite(v),
    };
    if (schema.type && !typeOk[schema.type](value)) {
        return [`${where} must be ${schema.type}, got ${JSON.stringify(value)}`];
    }
    if (schema.enum && !schema.enum.includes(value)) {
        return [`${where} must be one of ${JSON.stringify(schema.enum)}, got ${JSON.stringify(value)}`];
    }
    const problems: string[] = [];
    if (schema.type === "array" && schema.items) {
        (value as unknown[]).forEach((item, i) => problems.push(...structuralProblems(schema.items!, item, `${at}/${i}`)));
    }
    if (schema.type === "object") {
        const object = value as Record<string, unknown>;
        for (const key of schema.required ?? []) {
            if (object[key] === undefined) {
                problems.push(`${at}/${key} is required`);
            }
        }
        for (const [key, item] of Object.entries(object)) {
            const sub = schema.properties?.[key] ?? schema.additionalProperties;
            if (sub) {
                problems.push(...structuralProblems(sub, item, `${at}/${key}`));
            } else if (schema.properties) {
                problems.push(`${at}/${key} is not a field of this schema`);
            }
        }
    }
    return problems;
}

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
