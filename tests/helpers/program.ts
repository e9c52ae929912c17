/**
 * Runs the real program (index.ts) under Pulumi's mock runtime and records what it declares.
 *
 * Each run loads a fresh copy of the program; the SDKs are loaded once per test file and their
 * runtime state is set up anew for each run, so runs are independent.
 * The mocks echo inputs back as outputs and add a few deterministic, recognisable values
 * (ids, IPs, command stdout) so tests can follow data from one resource into another.
 */
import type * as pulumiType from "@pulumi/pulumi";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

export const projectName = "kubeadm-gcp";

export interface RecordedResource {
    type: string;
    name: string;
    /** Inputs as the provider receives them (Outputs resolved; secrets unwrapped). */
    inputs: Record<string, any>;
    /** Logical name of the parent component, undefined for children of the stack. */
    parent?: string;
    /** Logical names of resources listed in `dependsOn`. */
    dependsOn: string[];
    /** Logical names of resources whose outputs flow into this resource's inputs. */
    dataDependencies: string[];
    /** The same, per input property. */
    propertyDependencies: Record<string, string[]>;
    /** The `replacementTrigger` option, resolved, and the resources it was derived from. */
    replacementTrigger?: unknown;
    replacementTriggerDependencies: string[];
    /** Input property names that were secret. */
    secretInputs: string[];
    /** Output property names that the resource marks secret via additionalSecretOutputs. */
    additionalSecretOutputs: string[];
    /** Name of the explicit provider resource, if one was passed. */
    provider?: string;
    ignoreChanges: string[];
    /** The `deleteBeforeReplace` and `retainOnDelete` options. */
    deleteBeforeReplace: boolean;
    retainOnDelete: boolean;
    /** A provider-backed resource rather than one of this project's components. */
    custom: boolean;
}


/** Deterministic fake external IP for a resource name, recognisable in other resources' inputs. */
export function fakeIp(name: string): string {
    let h = 0;
    for (const c of name) {
        h = (h * 31 + c.charCodeAt(0)) >>> 0;
    }
    return `203.0.${(h >>> 8) % 256}.${(h % 253) + 1}`;
}

export const fakeStdout = (name: string) => `stdout-of:${name}`;

/** Deterministic fake SSH host public key of a VM (by instance name), as the guest agent publishes it. */
export function fakeHostKeyBlob(instanceName: string): string {
    const name = Buffer.from("ssh-ed25519");
    const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    const key = createHash("sha256").update(`host-key-of:${instanceName}`).digest();
    return Buffer.concat([u32(name.length), name, u32(key.length), key]).toString("base64");
}

/** The authorized_keys line a connection pinned to `instanceName`'s published key carries. */
export const fakeHostKey = (instanceName: string) => `ssh-ed25519 ${fakeHostKeyBlob(instanceName)}`;

/** Deterministic fake current external IP of a VM, as the Compute API reports it now (distinct from its state's). */
export const fakeCurrentIp = (instanceName: string) => fakeIp(`current:${instanceName}`);

export const invokeTokens = {
    guestAttributes: "gcp:compute/getInstanceGuestAttributes:getInstanceGuestAttributes",
    instance: "gcp:compute/getInstance:getInstance",
    bucketObjects: "gcp:storage/getBucketObjects:getBucketObjects",
    project: "gcp:organizations/getProject:getProject",
} as const;

/** The project number the mocked getProject reports (the Compute Engine service agent is named after it). */
export const fakeProjectNumber = "123456789012";

/** The snapshots the mocked bucket holds (etcd-backup.sh's names), oldest first. */
export const fakeSnapshots = [
    "etcd/3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b/20261205T220000Z-scheduled.snapshot",
    "etcd/3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b/20261205T230000Z-scheduled.snapshot",
];

/**
 * Provider functions (invokes): every VM has published its host keys as guest attributes (namespace
 * `hostkeys`, one key per algorithm, value = the base64 key blob) and has a current external IP.
 */
export function mockInvoke(token: string, inputs: Record<string, any>): Record<string, any> {
    switch (token) {
        case invokeTokens.guestAttributes: {
            const all = [
                { namespace: "hostkeys", key: "ecdsa-sha2-nistp256", value: Buffer.from(`ecdsa-of:${inputs.name}`).toString("base64") },
                { namespace: "hostkeys", key: "ssh-ed25519", value: fakeHostKeyBlob(inputs.name) },
                { namespace: "hostkeys", key: "ssh-rsa", value: Buffer.from(`rsa-of:${inputs.name}`).toString("base64") },
            ];
            const queryValues = all.filter((a) => !inputs.queryPath || `${a.namespace}/${a.key}`.startsWith(inputs.queryPath));
            return { ...inputs, queryValues, variableValue: "" };
        }
        case invokeTokens.project:
            return { ...inputs, number: fakeProjectNumber };
        case invokeTokens.bucketObjects:
            return { ...inputs, bucketObjects: fakeSnapshots.map((name) => ({ name })) };
        case invokeTokens.instance:
            return {
                ...inputs,
                currentStatus: "RUNNING",
                networkInterfaces: [{ networkIp: `10.240.0.99-${inputs.name}`, accessConfigs: [{ natIp: fakeCurrentIp(inputs.name) }] }],
            };
        default:
            return inputs;
    }
}

/** A real CA certificate (tests/fixtures/pki), handed out as every tls.SelfSignedCert's: the program parses the cluster CA's. */
export const fixtureCaCertPem = fs.readFileSync(path.join(__dirname, "..", "fixtures", "pki", "ca.crt"), "utf8");

/** The expiry the mocks give every stack-issued client certificate. */
export const fakeCertificateExpiry = "2027-12-06T00:00:00Z";

function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "tls:index/selfSignedCert:SelfSignedCert":
            return { ...inputs, certPem: fixtureCaCertPem, validityEndTime: "2036-12-04T00:00:00Z" };
        case "tls:index/locallySignedCert:LocallySignedCert":
            return { ...inputs, certPem: `-----BEGIN CERTIFICATE-----\ncert-of:${name}\n-----END CERTIFICATE-----\n`, validityEndTime: fakeCertificateExpiry };
        case "tls:index/certRequest:CertRequest":
            return { ...inputs, certRequestPem: `-----BEGIN CERTIFICATE REQUEST-----\ncsr-of:${name}\n-----END CERTIFICATE REQUEST-----\n` };
        case "gcp:compute/address:Address":
            return { ...inputs, address: inputs.address ?? fakeIp(name), selfLink: `selfLink/${name}` };
        case "gcp:compute/instance:Instance": {
            const nics = (inputs.networkInterfaces ?? []).map((nic: any, i: number) => ({
                ...nic,
                networkIp: nic.networkIp ?? `10.240.0.${10 + i}-${name}`,
                accessConfigs: (nic.accessConfigs ?? []).map((ac: any) => ({ ...ac, natIp: ac.natIp ?? fakeIp(name) })),
            }));
            return { ...inputs, networkInterfaces: nics, instanceId: `instance-id-${name}`, selfLink: `selfLink/${name}` };
        }
        case "gcp:projects/iAMCustomRole:IAMCustomRole":
            return { ...inputs, name: `projects/${inputs.project}/roles/${inputs.roleId}` };
        case "gcp:serviceaccount/account:Account":
            return { ...inputs, email: `${inputs.accountId}@${inputs.project ?? "test-project"}.iam.gserviceaccount.com` };
        case "tls:index/privateKey:PrivateKey":
            return {
                ...inputs,
                privateKeyOpenssh: "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n",
                publicKeyOpenssh: "ssh-ed25519 AAAAfakepublickey\n",
                privateKeyPem: `-----BEGIN RSA PRIVATE KEY-----\nkey-of:${name}\n-----END RSA PRIVATE KEY-----\n`,
                publicKeyPem: `-----BEGIN PUBLIC KEY-----\npublic-key-of:${name}\n-----END PUBLIC KEY-----\n`,
            };
        case "command:remote:Command":
        case "command:local:Command":
            return { ...inputs, stdout: fakeStdout(name), stderr: "" };
        case "random:index/randomBytes:RandomBytes":
            return { ...inputs, hex: createHash("sha256").update(`random-bytes-of:${name}`).digest("hex"), base64: "" };
        default:
            return { ...inputs, selfLink: `selfLink/${name}`, name: inputs.name ?? name };
    }
}

/** What a build under mocks declared: every resource, looked up by type or name. */
export interface Recording {
    resources: RecordedResource[];
    byType(type: string): RecordedResource[];
    /** The single resource of a type; throws when there is not exactly one. */
    one(type: string): RecordedResource;
    get(name: string): RecordedResource;
    /** Provider functions the program called, in call order. */
    invokes: RecordedInvoke[];
}

/** One provider function call made while the program ran. */
export interface RecordedInvoke {
    token: string;
    inputs: Record<string, any>;
}

export interface ProgramRun extends Recording {
    /** Stack outputs, resolved. */
    outputs: Record<string, any>;
    /** Names of stack outputs that are secret. */
    secretOutputs: string[];
}

export type MockState = (type: string, name: string, inputs: Record<string, any>) => Record<string, any>;
export type MockInvoke = (token: string, inputs: Record<string, any>) => Record<string, any> | Promise<Record<string, any>>;

/**
 * Runs `build` inside a fresh mock runtime and root stack, recording every resource it declares
 * (inputs, parent, dependsOn, data dependencies, secrets, provider). Runs are independent: the SDKs
 * are shared, but each call sets up their runtime state anew; a module that declares resources when
 * loaded (index.ts) is loaded with loadFresh.
 */
export function recordUnderMocks<T>(
    build: (pulumi: typeof pulumiType) => T,
    options: { config?: Record<string, string>; stack?: string; state?: MockState; invoke?: MockInvoke } = {},
): Promise<Recording & { pulumi: typeof pulumiType; value: T }> {
    return withoutStackTraces(() => record(build, options));
}

/**
 * The packages every run shares: the SDKs, and the libraries the program uses that keep no state.
 * "@pulumi/pulumi/runtime" is the same module as `pulumi.runtime`; the provider SDKs' utilities.js
 * require it by that path.
 */
const sharedSdks = ["@pulumi/pulumi", "@pulumi/pulumi/runtime", "@pulumi/gcp", "@pulumi/kubernetes", "@pulumi/command", "@pulumi/tls", "@pulumi/random", "ssh2", "ipaddr.js"];
let sdksShared = false;
/**
 * Makes the test file's own copy of each SDK (the one its imports of components loaded, or loads it
 * now) the copy every fresh load of the program gets too (loadFresh: mocks reach into isolation), so
 * a test file loads each SDK once. Their state lives in the runtime's store, which setMocks and
 * runInPulumiStack set up anew for each run.
 */
function shareSdks(): void {
    if (sdksShared) {
        return;
    }
    sdksShared = true;
    for (const sdk of sharedSdks) {
        const loaded: unknown = require(sdk);
        jest.doMock(sdk, () => loaded);
    }
}

/**
 * A fresh copy of the module at `modulePath` (relative to this file) and of the project modules it
 * imports, in an isolated registry: index.ts declares the stack when it is loaded, so each run loads
 * it anew. The SDKs come from shareSdks. Unlike jest.resetModules, isolation keeps what jest has
 * already read, resolved and transformed, and the provider SDKs' resource modules, which they load
 * lazily (utilities.lazyLoad) once the program first awaits, stay loaded from one run to the next (a
 * run took 6% longer with a reset).
 *
 * Only the mocked entry points reach into the isolation: anything else a package requires while the
 * module loads (before its first await) would be a second copy, state and all (the SDK's
 * runtime/settings.js keeps its monitor in a module variable). That is refused here, naming the files.
 */
export function loadFresh<T>(modulePath: string): T {
    shareSdks();
    let loaded: T | undefined;
    jest.isolateModules(() => {
        loaded = require(modulePath);
        const packageFiles = Object.keys(require.cache).filter((file) => file.includes(`${path.sep}node_modules${path.sep}`));
        if (packageFiles.length > 0) {
            throw new Error(
                `loading ${modulePath} afresh loaded ${packageFiles.length} package files again, which would be second copies of ` +
                    `what the program shares (add their package to sharedSdks in tests/helpers/program.ts): ${packageFiles.slice(0, 5).join(", ")}`,
            );
        }
    });
    return loaded as T;
}

/**
 * Runs `work` with no stack frames captured. The SDK records `new Error().stack` on every promise it
 * makes (runtime/debuggable.js, debuggablePromise), and under jest every such stack is source-mapped
 * (@jest/source-map): that took more time than evaluating the program. Errors keep their messages.
 * The SDK still reads a full stack for every resource's source position (Resource.callsites, which
 * lifts the limit itself); V8's own formatting serves it without jest's source mapping.
 */
export async function withoutStackTraces<T>(work: () => Promise<T>): Promise<T> {
    const limit = Error.stackTraceLimit;
    const prepare = Error.prepareStackTrace;
    Error.stackTraceLimit = 0;
    Error.prepareStackTrace = (error: Error, frames: NodeJS.CallSite[]) => `${error}${frames.map((f) => `\n    at ${f}`).join("")}`;
    try {
        return await work();
    } finally {
        Error.stackTraceLimit = limit;
        Error.prepareStackTrace = prepare;
    }
}

async function record<T>(
    build: (pulumi: typeof pulumiType) => T,
    options: { config?: Record<string, string>; stack?: string; state?: MockState; invoke?: MockInvoke },
): Promise<Recording & { pulumi: typeof pulumiType; value: T }> {
    shareSdks();
    const pulumi: typeof pulumiType = require("@pulumi/pulumi");
    pulumi.runtime.setAllConfig(options.config ?? {});

    const recorded = new Map<string, RecordedResource>();
    const pending: Promise<void>[] = [];
    const nameOf = (r: any): string => r?.__name ?? "?";
    const state = options.state ?? mockState;
    const invoke = options.invoke ?? mockInvoke;
    const invokes: RecordedInvoke[] = [];

    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const rec = recorded.get(`${args.type}::${args.name}`);
                if (rec) {
                    rec.inputs = unwrapSecrets(args.inputs);
                    // A provider reference is "<urn>::<id>"; the URN ends in "::<name>".
                    rec.provider = args.provider ? args.provider.split("::")[3] : undefined;
                }
                // As the engine does: outputs named in additionalSecretOutputs come back secret.
                const out = state(args.type, args.name, args.inputs);
                for (const key of rec?.additionalSecretOutputs ?? []) {
                    if (key in out) {
                        out[key] = { [secretSig]: secretValueSig, value: out[key] };
                    }
                }
                return { id: `${args.name}-id`, state: out };
            },
            call: (args) => {
                invokes.push({ token: args.token, inputs: args.inputs });
                return invoke(args.token, args.inputs);
            },
        },
        projectName,
        options.stack ?? "dev",
        false,
        // The DIY backends' organization: index.ts names its own stack to read the last deployment.
        "organization",
    );

    let value: T | undefined;
    let buildError: unknown;
    await pulumi.runtime.runInPulumiStack(async () => {
        pulumi.runtime.registerStackTransformation((args) => {
            const parent = args.opts.parent as any;
            const rec: RecordedResource = {
                type: args.type,
                name: args.name,
                inputs: {},
                parent: parent && parent.constructor?.name !== "Stack" ? nameOf(parent) : undefined,
                dependsOn: [],
                dataDependencies: [],
                propertyDependencies: {},
                replacementTriggerDependencies: [],
                secretInputs: [],
                additionalSecretOutputs: [...(((args.opts as any).additionalSecretOutputs as string[] | undefined) ?? [])],
                ignoreChanges: [...(args.opts.ignoreChanges ?? [])],
                deleteBeforeReplace: (args.opts as pulumiType.CustomResourceOptions).deleteBeforeReplace === true,
                retainOnDelete: args.opts.retainOnDelete === true,
                // instanceof, not isInstance: the transformation runs inside the constructor, before
                // CustomResource sets its marker; the prototype is already in place. A remote
                // component (helm.v4.Chart) is a component, not a custom resource.
                custom: args.resource instanceof pulumi.CustomResource,
            };
            recorded.set(`${args.type}::${args.name}`, rec);
            pending.push(
                (async () => {
                    const deps = await (args.opts.dependsOn as any);
                    const explicit = Array.isArray(deps) ? deps : deps ? [deps] : [];
                    rec.dependsOn = (await Promise.all(explicit)).map(nameOf);
                    const dataDeps = new Set<string>();
                    const secretKeys = new Set<string>();
                    for (const [key, value] of Object.entries(args.props ?? {})) {
                        const propDeps = new Set<string>();
                        for (const out of collectOutputs(value, pulumi)) {
                            for (const res of await (out as any).resources()) {
                                dataDeps.add(nameOf(res));
                                propDeps.add(nameOf(res));
                            }
                            if (await (out as any).isSecret) {
                                secretKeys.add(key);
                            }
                        }
                        propDeps.delete(args.name);
                        if (propDeps.size > 0) {
                            rec.propertyDependencies[key] = [...propDeps].sort();
                        }
                    }
                    const trigger = (args.opts as any).replacementTrigger;
                    if (trigger !== undefined) {
                        const triggerDeps = new Set<string>();
                        for (const out of collectOutputs({ trigger }, pulumi)) {
                            for (const res of await (out as any).resources()) {
                                triggerDeps.add(nameOf(res));
                            }
                        }
                        rec.replacementTriggerDependencies = [...triggerDeps].sort();
                        rec.replacementTrigger = pulumi.Output.isInstance(trigger) ? await promiseOf(trigger) : trigger;
                    }
                    rec.dataDependencies = [...dataDeps].filter((d) => d !== args.name).sort();
                    rec.secretInputs = [...secretKeys].sort();
                })(),
            );
            return undefined;
        });
        // A throw here would also reject the stack's own bookkeeping; keep it and rethrow below.
        try {
            // The program is an async function's promise (index.ts reads the last deployment first).
            value = await build(pulumi);
        } catch (e) {
            buildError = e;
        }
        return {};
    });
    if (buildError) {
        await pulumi.runtime.disconnect();
        throw buildError;
    }
    // Let every registration finish before reading what was recorded.
    for (let i = 0; i < 50; i++) {
        await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);

    const resources = [...recorded.values()];
    const byType = (type: string) => resources.filter((r) => r.type === type);
    return {
        pulumi,
        value: value as T,
        resources,
        invokes,
        byType,
        one: (type) => {
            const found = byType(type);
            if (found.length !== 1) {
                throw new Error(`expected exactly one ${type}, found ${found.length}`);
            }
            return found[0];
        },
        get: (name) => {
            const r = resources.find((x) => x.name === name);
            if (!r) {
                throw new Error(`no resource named ${name}; have: ${resources.map((x) => x.name).join(", ")}`);
            }
            return r;
        },
    };
}

/**
 * What `name` waits for on create and so outlives it on destroy (Pulumi deletes in reverse
 * dependency order): data dependencies, `dependsOn`, its explicit provider, transitively. Depending
 * on a component means depending on its children, as in Pulumi.
 */
export function transitiveDependencies(recording: Recording, name: string): Set<string> {
    const direct = (r: RecordedResource): string[] => [
        ...r.dataDependencies,
        ...r.dependsOn,
        ...(r.provider ? [r.provider] : []),
        ...(r.custom ? [] : recording.resources.filter((c) => c.parent === r.name).map((c) => c.name)),
    ];
    const seen = new Set<string>();
    const visit = (n: string) => {
        const r = recording.resources.find((x) => x.name === n);
        for (const d of r ? direct(r) : []) {
            if (!seen.has(d)) {
                seen.add(d);
                visit(d);
            }
        }
    };
    visit(name);
    return seen;
}

/**
 * What a preview lists for a resource. "delete-children": a remote component (a helm.v4.Chart) whose
 * provider cannot be configured during preview; it is not constructed, so every child it had is
 * listed as deleted (the `up` itself constructs it again and changes nothing).
 */
export type Change = "create" | "update" | "replace" | "delete" | "delete-children";

/** The options of a preview: what `pulumi up --replace` names. */
export interface PreviewOptions {
    /** Resources replaced regardless of their inputs (`pulumi up --replace`). */
    replace?: string[];
}

/** The Instance's scheduling fields that force a new VM (terraform-provider-google resource_compute_instance.go, `ForceNew: true`). */
export const instanceSchedulingForceNew = ["provisioningModel", "preemptible"] as const;

/** pulumi-kubernetes provider inputs that name the cluster (provider.go DiffConfig). */
const kubernetesClusterInputs = ["kubeconfig", "context", "cluster"];

/**
 * What `pulumi preview` would show when the program moves from `before` (the state: what the last
 * deployment registered) to `after` (this evaluation): the PR preview, made testable. A model of the
 * engine's diff, kept to the rules this program relies on, each read in pulumi/pulumi (engine) and
 * pulumi-kubernetes (provider):
 *   - a resource only in `after` is created, one only in `before` deleted; outputs of created and
 *     replaced resources are unknown during preview, those of updated ones keep their stored values
 *     (pulumi-command v1.2.1 remote/commandController.go Update: at preview it returns the old
 *     stdout, `BaseOutputs: olds.BaseOutputs`);
 *   - an input differs, or depends (property dependency) on an unknown output: update, unless that
 *     input is in `ignoreChanges` (the stored value is kept);
 *   - replaced when the difference reaches a property that forces replacement: a command's
 *     `triggers` (pulumi-command), any input of a tls key or certificate but `earlyRenewalHours`
 *     (terraform-provider-tls), a GCE instance's `scheduling.provisioningModel` or `.preemptible`
 *     (terraform-provider-google: the only ForceNew fields of the block; the others, and
 *     `resourcePolicies`, are updated in place), a `replacementTrigger` that differs or is unknown
 *     (step_generator.go shouldTriggerReplace), and for a Kubernetes provider its DiffConfig
 *     (provider/pkg/provider/provider.go): a changed or unknown `clusterIdentifier` replaces it; a
 *     changed or unknown kubeconfig replaces it unless `clusterIdentifier` is set and unchanged;
 *   - a resource whose provider is replaced is replaced (step_generator.go providerChanged);
 *   - a resource whose provider keeps any input unknown is listed as an update: the engine does not
 *     configure such a provider, whose Diff then answers DiffUnavailable ("The provider for this
 *     resource has inputs that are not known during preview", plugin/provider_plugin.go), which
 *     continueStepsFromDiff turns into DiffSome; a remote component through it (a chart) cannot be
 *     constructed, so its children are listed as deleted ("delete-children");
 *   - a known, changed provider input that does not replace it is an update of the provider only:
 *     the registry configures the new instance at preview and its resources are diffed with it
 *     (deploy/providers/registry.go Update);
 *   - `dependsOn` alone never changes or replaces a dependent.
 * Resources with no change are left out of the result.
 */
export function previewChanges(before: Recording, after: Recording, options: PreviewOptions = {}): Map<string, Change> {
    return simulatePreview(before, after, options).changes;
}

/** Providers whose inputs a preview from `before` to `after` cannot know (so it cannot configure them). */
export function unconfiguredProviders(before: Recording, after: Recording, options: PreviewOptions = {}): string[] {
    return [...simulatePreview(before, after, options).unconfigured].sort();
}

function simulatePreview(before: Recording, after: Recording, options: PreviewOptions): { changes: Map<string, Change>; unconfigured: Set<string> } {
    const changes = new Map<string, Change>();
    const unknownOutputs = new Set<string>();
    /** Providers configured with an unknown input during preview. */
    const unconfigured = new Set<string>();
    const previous = new Map(before.resources.map((r) => [r.name, r]));
    const current = new Map(after.resources.map((r) => [r.name, r]));
    const done = new Set<string>();
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const visit = (r: RecordedResource) => {
        if (done.has(r.name)) {
            return;
        }
        done.add(r.name);
        for (const d of [...r.dataDependencies, ...r.replacementTriggerDependencies, ...(r.provider ? [r.provider] : [])]) {
            const dep = current.get(d);
            if (dep) {
                visit(dep);
            }
        }
        const providerReplaced = r.provider !== undefined && changes.get(r.provider) === "replace";
        const providerUnknown = r.provider !== undefined && unconfigured.has(r.provider);
        if (!r.custom) {
            if (r.provider !== undefined && previous.has(r.name) && (providerReplaced || providerUnknown)) {
                changes.set(r.name, providerReplaced ? "replace" : "delete-children");
            }
            return;
        }
        const old = previous.get(r.name);
        const unknown = (k: string) => (r.propertyDependencies[k] ?? []).some((d) => unknownOutputs.has(d));
        const isProvider = r.type.startsWith("pulumi:providers:");
        if (!old) {
            changes.set(r.name, "create");
            unknownOutputs.add(r.name);
            if (isProvider && Object.keys(r.inputs).some(unknown)) {
                unconfigured.add(r.name);
            }
            return;
        }
        const keys = new Set([...Object.keys(old.inputs), ...Object.keys(r.inputs)]);
        // ignoreChanges keeps the stored value of those inputs, so they never show as a change.
        const changed = [...keys].filter((k) => !r.ignoreChanges.includes(k) && (unknown(k) || !same(old.inputs[k], r.inputs[k])));
        const isKubernetesProvider = r.type === "pulumi:providers:kubernetes";
        const forcesReplace = (k: string): boolean => {
            if (r.type.startsWith("command:")) {
                return k === "triggers";
            }
            if (r.type === "gcp:compute/instance:Instance") {
                // terraform-provider-google (read at e03b762), resource_compute_instance.go: of the scheduling block only
                // provisioning_model and preemptible are ForceNew; every other field of it is set in
                // place (setScheduling, compute_instance_helpers.go schedulingHasChangeWithoutReboot),
                // as are resource_policies (add/removeResourcePolicies in resourceComputeInstanceUpdate).
                return k === "scheduling" && (unknown(k) || instanceSchedulingForceNew.some((f) => !same(old.inputs[k]?.[f], r.inputs[k]?.[f])));
            }
            if (r.type.startsWith("tls:")) {
                // terraform-provider-tls: every input of its keys, requests and certificates carries a
                // RequiresReplace plan modifier but early_renewal_hours (internal/provider/*_resource.go).
                return k !== "earlyRenewalHours";
            }
            if (isKubernetesProvider) {
                const id = "clusterIdentifier";
                const idUnchanged = r.inputs[id] !== undefined && !unknown(id) && same(old.inputs[id], r.inputs[id]);
                return k === id ? !idUnchanged : kubernetesClusterInputs.includes(k) && !idUnchanged;
            }
            return false;
        };
        const triggerChanged =
            r.replacementTrigger !== undefined &&
            (r.replacementTriggerDependencies.some((d) => unknownOutputs.has(d)) || !same(old.replacementTrigger, r.replacementTrigger));
        if (options.replace?.includes(r.name) || triggerChanged || providerReplaced || changed.some(forcesReplace)) {
            changes.set(r.name, "replace");
            unknownOutputs.add(r.name);
        } else if (changed.length > 0 || providerUnknown) {
            changes.set(r.name, "update");
        }
        if (isProvider && changes.get(r.name) !== "replace" && Object.keys(r.inputs).some(unknown)) {
            unconfigured.add(r.name);
        }
    };
    after.resources.forEach(visit);
    for (const r of before.resources) {
        if (r.custom && !current.has(r.name)) {
            changes.set(r.name, "delete");
        }
    }
    return { changes, unconfigured };
}

/**
 * The inputs a resource is created with when it is replaced (or updated) from `before` to `after`:
 * the engine puts the stored value of every `ignoreChanges` input back whenever the resource has an
 * old state, replacement included (pkg/resource/deploy/step_generator.go: `if hasOld` ...
 * processIgnoreChanges, before the diff that may plan NewCreateReplacementStep with those inputs).
 */
export function inputsAfterChange(before: Recording, after: Recording, name: string): Record<string, any> {
    const old = before.resources.find((r) => r.name === name);
    const now = after.resources.find((r) => r.name === name);
    if (!now) {
        throw new Error(`${name} is not declared by the program`);
    }
    if (!old) {
        return now.inputs;
    }
    const kept = Object.fromEntries(now.ignoreChanges.filter((k) => k in old.inputs).map((k) => [k, old.inputs[k]]));
    return { ...now.inputs, ...kept };
}

/** The Kubernetes objects and charts `changes` lists: empty when a preview touches nothing in the cluster. */
export function inClusterChanges(recording: Recording, changes: Map<string, Change>): string[] {
    return [...changes.keys()].filter((n) => {
        const r = recording.resources.find((x) => x.name === n);
        return r !== undefined && r.type.startsWith("kubernetes:");
    });
}

/** Runs index.ts with the given project config (keys without the project prefix; `gcp:` keys as is). */
export async function runProgram(
    config: Record<string, string>,
    stack = "dev",
    invoke?: MockInvoke,
    /** The outputs of the stack's last deployment, which index.ts reads back (default: none, a new stack). */
    previous: Record<string, unknown> = {},
    /** What a command prints, by logical name, where a test needs more than `fakeStdout` (e.g. a version). */
    stdoutOf: (name: string) => string | undefined = () => undefined,
    /** The moment the program runs at (its clock decides renewals); default: now. Only Date is faked. */
    now?: Date,
): Promise<ProgramRun> {
    if (now === undefined) {
        return withoutStackTraces(() => runProgramNow(config, stack, invoke, previous, stdoutOf));
    }
    jest.useFakeTimers({ now, doNotFake: timersThatKeepRunning });
    try {
        return await withoutStackTraces(() => runProgramNow(config, stack, invoke, previous, stdoutOf));
    } finally {
        jest.useRealTimers();
    }
}

/** Everything jest can fake but the clock: the mock runtime's promises and timers keep running. */
const timersThatKeepRunning: Extract<Parameters<typeof jest.useFakeTimers>[0], { doNotFake?: unknown }>["doNotFake"] = [
    "hrtime", "nextTick", "performance", "queueMicrotask", "requestAnimationFrame", "cancelAnimationFrame", "requestIdleCallback",
    "cancelIdleCallback", "setImmediate", "clearImmediate", "setInterval", "clearInterval", "setTimeout", "clearTimeout",
];

async function runProgramNow(
    config: Record<string, string>,
    stack: string,
    invoke: MockInvoke | undefined,
    previous: Record<string, unknown>,
    stdoutOf: (name: string) => string | undefined,
): Promise<ProgramRun> {
    const allConfig: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
        allConfig[key.includes(":") ? key : `${projectName}:${key}`] = value;
    }
    const state: MockState = (type, name, inputs) => {
        if (type === "pulumi:pulumi:StackReference") {
            return { ...inputs, outputs: previous, secretOutputNames: [] };
        }
        const printed = type === "command:remote:Command" ? stdoutOf(name) : undefined;
        return printed === undefined ? mockState(type, name, inputs) : { ...inputs, stdout: printed, stderr: "" };
    };
    const recording = await recordUnderMocks(() => loadFresh<Promise<Record<string, unknown>>>("../../index"), { config: allConfig, stack, invoke, state });
    const outputs: Record<string, any> = {};
    const secretOutputs: string[] = [];
    for (const [key, value] of Object.entries(recording.value)) {
        const output = recording.pulumi.output(value);
        outputs[key] = await promiseOf(output);
        if (await (output as any).isSecret) {
            secretOutputs.push(key);
        }
    }
    await recording.pulumi.runtime.disconnect();
    return { ...recording, outputs, secretOutputs };
}

export function promiseOf<T>(output: pulumiType.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** Every Output inside a resource's props (not descending into resources). */
export function collectOutputs(value: unknown, pulumi: typeof pulumiType, seen = new Set<unknown>()): pulumiType.Output<unknown>[] {
    if (value === null || typeof value !== "object" || seen.has(value)) {
        return [];
    }
    seen.add(value);
    if (pulumi.Output.isInstance(value)) {
        return [value];
    }
    if (pulumi.Resource.isInstance(value)) {
        return [];
    }
    return Object.values(value as Record<string, unknown>).flatMap((v) => collectOutputs(v, pulumi, seen));
}

const secretSig = "4dabf18193072939515e22adb298388d";
const secretValueSig = "1b47061264138c4ac30d75fd1eb44270";

/** Provider inputs arrive with secrets still wrapped; tests read plain values (secretInputs says which were secret). */
function unwrapSecrets(value: any): any {
    if (Array.isArray(value)) {
        return value.map(unwrapSecrets);
    }
    if (value && typeof value === "object") {
        if (value[secretSig] !== undefined && "value" in value) {
            return unwrapSecrets(value.value);
        }
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    }
    return value;
}
