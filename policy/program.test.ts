/**
 * The real program (index.ts, under Pulumi's mock runtime) against the policy pack: what the
 * program declares must keep every promise the pack enforces. With the default config, only the
 * advisory no-open-admin-ports fires (SSH and the API server open to 0.0.0.0/0 so that a first
 * `pulumi up` works from anywhere); narrowed ranges silence it.
 */
import {
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
    unknownCheckingProxy,
} from "@pulumi/policy";
import { fakeIp, ProgramRun, RecordedResource, runProgram } from "../tests/helpers/program";
import { policies, types } from "./policies";
import { defaultOpts, notApplicable } from "./testing";

const opts = defaultOpts;

const urnOf = (r: RecordedResource) => `urn:pulumi:dev::kubeadm-gcp::${r.type}::${r.name}`;

/** What the stack policy sees of a resource: its outputs. The mocks echo inputs and add an Address's IP. */
function outputsOf(r: RecordedResource): Record<string, any> {
    return r.type === types.address ? { ...r.inputs, address: fakeIp(r.name) } : r.inputs;
}

interface Violation {
    policy: string;
    resource: string;
    message: string;
}

async function violations(run: ProgramRun): Promise<Violation[]> {
    const found: Violation[] = [];
    const custom = run.resources.filter((r) => r.custom);
    for (const policy of policies) {
        if ("validateResource" in policy) {
            const p = policy as ResourceValidationPolicy;
            const validations = Array.isArray(p.validateResource) ? p.validateResource : [p.validateResource];
            for (const r of custom) {
                const args: ResourceValidationArgs = {
                    type: r.type,
                    name: r.name,
                    urn: urnOf(r),
                    props: unknownCheckingProxy(r.inputs),
                    opts,
                    stackTags: new Map(),
                    isType: (() => false) as ResourceValidationArgs["isType"],
                    asType: (() => undefined) as ResourceValidationArgs["asType"],
                    getConfig: (<T extends object>() => ({}) as T) as ResourceValidationArgs["getConfig"],
                    notApplicable,
                };
                for (const validate of validations) {
                    await validate!(args, (message) => found.push({ policy: p.name, resource: r.name, message }));
                }
            }
        } else {
            const p = policy as StackValidationPolicy;
            const resources: PolicyResource[] = custom.map((r) => ({
                type: r.type,
                name: r.name,
                urn: urnOf(r),
                props: unknownCheckingProxy(outputsOf(r)),
                opts,
                dependencies: [],
                propertyDependencies: {},
                isType: (() => false) as PolicyResource["isType"],
                asType: (() => undefined) as PolicyResource["asType"],
            }));
            await p.validateStack(
                { resources, stackTags: new Map(), getConfig: (<T extends object>() => ({}) as T) as never, notApplicable },
                (message, urn) => found.push({ policy: p.name, resource: resources.find((r) => r.urn === urn)?.name ?? "(stack)", message }),
            );
        }
    }
    return found;
}

const minimal = { "gcp:project": "test-project" };

test("default config: no mandatory violation; the advisory one flags exactly the SSH and API server firewalls", async () => {
    const run = await runProgram(minimal);
    // The program does declare what the policies look at, so a pass below means something.
    expect(run.byType(types.firewall).length).toBeGreaterThan(0);
    expect(run.byType(types.instance).length).toBeGreaterThan(0);
    expect(run.byType(types.deployment).length).toBeGreaterThan(0);
    expect(run.byType(types.service).some((s) => s.inputs.spec?.type === "LoadBalancer")).toBe(true);
    expect(run.byType(types.address).length).toBeGreaterThan(0);
    const found = await violations(run);
    expect(found.filter((v) => v.policy !== "no-open-admin-ports")).toEqual([]);
    const advisory = found.filter((v) => v.policy === "no-open-admin-ports");
    expect(advisory.map((v) => v.message.replace(/ to .*/, ""))).toEqual(
        expect.arrayContaining([expect.stringContaining("opens TCP 22 (SSH)"), expect.stringContaining("opens TCP 6443 (Kubernetes API)")]),
    );
    expect(advisory).toHaveLength(2);
});

test("with SSH and the API server narrowed, no policy reports anything", async () => {
    const run = await runProgram({ ...minimal, sshSourceRanges: '["203.0.113.7/32"]', apiSourceRanges: '["198.51.100.0/24"]' });
    expect(await violations(run)).toEqual([]);
});
