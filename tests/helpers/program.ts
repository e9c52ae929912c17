/**
 * Runs the real program (index.ts) under Pulumi's mock runtime and records what it declares.
 *
 * Each call loads a fresh copy of the program and of @pulumi/pulumi, so runs are independent.
 * The mocks echo inputs back as outputs and add a few deterministic, recognisable values
 * (ids, IPs, command stdout) so tests can follow data from one resource into another.
 */
import type * as pulumiType from "@pulumi/pulumi";

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
    /** Input property names that were secret. */
    secretInputs: string[];
    /** Output property names that the resource marks secret via additionalSecretOutputs. */
    additionalSecretOutputs: string[];
    /** Name of the explicit provider resource, if one was passed. */
    provider?: string;
    custom: boolean;
}

export interface ProgramRun {
    resources: RecordedResource[];
    /** Stack outputs, resolved. */
    outputs: Record<string, any>;
    /** Names of stack outputs that are secret. */
    secretOutputs: string[];
    byType(type: string): RecordedResource[];
    get(name: string): RecordedResource;
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

function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "gcp:compute/address:Address":
            return { ...inputs, address: fakeIp(name), selfLink: `selfLink/${name}` };
        case "gcp:compute/instance:Instance": {
            const nics = (inputs.networkInterfaces ?? []).map((nic: any, i: number) => ({
                ...nic,
                networkIp: `10.240.0.${10 + i}-${name}`,
                accessConfigs: (nic.accessConfigs ?? []).map((ac: any) => ({ ...ac, natIp: ac.natIp ?? fakeIp(name) })),
            }));
            return { ...inputs, networkInterfaces: nics, instanceId: `instance-id-${name}`, selfLink: `selfLink/${name}` };
        }
        case "gcp:serviceaccount/account:Account":
            return { ...inputs, email: `${inputs.accountId}@${inputs.project ?? "test-project"}.iam.gserviceaccount.com` };
        case "tls:index/privateKey:PrivateKey":
            return {
                ...inputs,
                privateKeyOpenssh: "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n",
                publicKeyOpenssh: "ssh-ed25519 AAAAfakepublickey\n",
            };
        case "command:remote:Command":
        case "command:local:Command":
            return { ...inputs, stdout: fakeStdout(name), stderr: "" };
        default:
            return { ...inputs, selfLink: `selfLink/${name}`, name: inputs.name ?? name };
    }
}

/** Runs index.ts with the given project config (keys without the project prefix; `gcp:` keys as is). */
export async function runProgram(config: Record<string, string>, stack = "dev"): Promise<ProgramRun> {
    jest.resetModules();
    const pulumi: typeof pulumiType = require("@pulumi/pulumi");
    const allConfig: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
        allConfig[key.includes(":") ? key : `${projectName}:${key}`] = value;
    }
    pulumi.runtime.setAllConfig(allConfig, Object.keys(allConfig).filter((k) => k.endsWith("Secret")));

    const recorded = new Map<string, RecordedResource>();
    const pending: Promise<void>[] = [];
    const nameOf = (r: any): string => r?.__name ?? "?";

    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const rec = recorded.get(`${args.type}::${args.name}`);
                if (rec) {
                    rec.inputs = unwrapSecrets(args.inputs);
                    rec.provider = args.provider ? args.provider.split("::")[3]?.split("::")[0] : undefined;
                }
                return { id: `${args.name}-id`, state: mockState(args.type, args.name, args.inputs) };
            },
            call: (args) => {
                if (args.token === "gcp:compute/getImage:getImage") {
                    return { selfLink: "projects/ubuntu-os-cloud/global/images/ubuntu-2404-noble-amd64-v20261101" };
                }
                return args.inputs;
            },
        },
        projectName,
        stack,
        false,
    );

    let program: Record<string, unknown> = {};
    let loadError: unknown;
    await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
        const rec: RecordedResource = {
            type: args.type,
            name: args.name,
            inputs: {},
            parent: args.opts.parent && args.opts.parent !== undefined ? nameOf(args.opts.parent) : undefined,
            dependsOn: [],
            dataDependencies: [],
            secretInputs: [],
            additionalSecretOutputs: [...(((args.opts as any).additionalSecretOutputs as string[] | undefined) ?? [])],
            custom: !!(args.resource as any).__pulumiCustomResource || (args.resource as any).constructor?.name !== "ComponentResource",
        };
        if (rec.parent === "?" || rec.parent?.endsWith("-dev") && args.opts.parent?.constructor?.name === "Stack") {
            rec.parent = undefined;
        }
        recorded.set(`${args.type}::${args.name}`, rec);
        pending.push(
            (async () => {
                const deps = args.opts.dependsOn;
                const explicit = Array.isArray(deps) ? deps : deps ? [deps] : [];
                rec.dependsOn = (await Promise.all(explicit.map(async (d: any) => (d instanceof Promise ? await d : d)))).map(nameOf);
                const dataDeps = new Set<string>();
                const secretKeys: string[] = [];
                for (const [key, value] of Object.entries(args.props ?? {})) {
                    for (const out of collectOutputs(value, pulumi)) {
                        for (const res of await (out as any).resources()) {
                            dataDeps.add(nameOf(res));
                        }
                        if (await (out as any).isSecret) {
                            secretKeys.push(key);
                        }
                    }
                }
                rec.dataDependencies = [...dataDeps].filter((d) => d !== args.name).sort();
                rec.secretInputs = [...new Set(secretKeys)].sort();
            })(),
        );
        return undefined;
    });
    try {
        program = require("../../index");
    } catch (e) {
        loadError = e;
    }
    return {};
    });

    if (loadError) {
        await pulumi.runtime.disconnect();
        throw loadError;
    }
    const outputs: Record<string, any> = {};
    const secretOutputs: string[] = [];
    for (const [key, value] of Object.entries(program)) {
        const output = pulumi.output(value);
        outputs[key] = await promiseOf(output);
        if (await (output as any).isSecret) {
            secretOutputs.push(key);
        }
    }
    // Let every registration finish before reading what was recorded.
    for (let i = 0; i < 50; i++) {
        await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    await pulumi.runtime.disconnect();

    const resources = [...recorded.values()];
    return {
        resources,
        outputs,
        secretOutputs,
        byType: (type) => resources.filter((r) => r.type === type),
        get: (name) => {
            const r = resources.find((x) => x.name === name);
            if (!r) {
                throw new Error(`no resource named ${name}; have: ${resources.map((x) => x.name).join(", ")}`);
            }
            return r;
        },
    };
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
