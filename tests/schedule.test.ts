/**
 * Spot VMs and the on/off schedule (components/schedule.ts, components/vmStatus.ts, nodes.ts): each
 * setting's VMs, policy and grants from the real program under mocks; what switching a live stack
 * previews; and what an `up` does while the VMs are stopped.
 */
import { costModel, computeServiceAgent, scheduleRoleId } from "../components/schedule";
import { readErrorStatus, spotCreationNotice, stoppedVmsMessage, vmStatusVerdict } from "../components/vmStatus";
import {
    Change,
    fakeProjectNumber,
    inClusterChanges,
    invokeTokens,
    mockInvoke,
    MockInvoke,
    previewChanges,
    ProgramRun,
    Recording,
    RecordedResource,
    runProgram,
} from "./helpers/program";

const minimal = { "gcp:project": "test-project" };
const weekdays = { scheduleStart: "0 8 * * 1-5", scheduleStop: "0 20 * * 1-5", scheduleTimeZone: "Europe/Berlin" };
const cpVm = "k8s-dev-nodes-control-plane";
const workerVms = ["k8s-dev-nodes-worker-1", "k8s-dev-nodes-worker-2"];
/** What the last `up` recorded of a stack whose VMs exist (index.ts reads it back). */
const liveStack = { controlPlane: { name: "k8s-dev-control-plane", internalIp: "10.240.0.2", externalIp: "203.0.113.10" } };

const instances = (r: Recording) => r.byType("gcp:compute/instance:Instance");
const vm = (r: Recording, logical: string) => r.get(logical);
const grants = (r: Recording) => r.byType("gcp:compute/instanceIAMMember:InstanceIAMMember");
const sorted = (changes: Map<string, Change>) => [...changes.entries()].sort(([a], [b]) => a.localeCompare(b));

const runs = new Map<string, Promise<ProgramRun>>();
/** One program run per config, shared by the tests that read it. */
function runWith(config: Record<string, string>): Promise<ProgramRun> {
    const key = JSON.stringify(config);
    if (!runs.has(key)) {
        runs.set(key, runProgram({ ...minimal, ...config }));
    }
    return runs.get(key)!;
}

describe("spot: which VMs use the Spot provisioning model", () => {
    test("none (the default): every VM is a standard VM, stated in full so that a VM moved back from Spot is told so", async () => {
        const run = await runWith({});
        expect(instances(run)).toHaveLength(3);
        for (const i of instances(run)) {
            expect(i.inputs.scheduling).toEqual({ provisioningModel: "STANDARD", preemptible: false, automaticRestart: true, onHostMaintenance: "MIGRATE" });
        }
        expect(run.outputs.costModel).toBe("standard; always on");
    });

    test.each([
        ["workers", workerVms, [cpVm]],
        ["all", [cpVm, ...workerVms], []],
    ])("%s: those VMs are Spot, stopped (not deleted) when preempted; the others standard", async (setting, spot, standard) => {
        const run = await runWith({ spot: setting });
        for (const name of spot) {
            expect({ name, scheduling: vm(run, name).inputs.scheduling }).toEqual({
                name,
                scheduling: { provisioningModel: "SPOT", preemptible: true, automaticRestart: false, onHostMaintenance: "TERMINATE", instanceTerminationAction: "STOP" },
            });
        }
        for (const name of standard) {
            expect(vm(run, name).inputs.scheduling.provisioningModel).toBe("STANDARD");
        }
        // A stopped VM keeps its name and internal address: nothing else about the VMs differs.
        const base = await runWith({});
        const withoutScheduling = (inputs: Record<string, unknown>) => Object.fromEntries(Object.entries(inputs).filter(([k]) => k !== "scheduling"));
        for (const i of instances(run)) {
            expect(withoutScheduling(i.inputs)).toEqual(withoutScheduling(vm(base, i.name).inputs));
        }
        expect(run.outputs.costModel).toBe(`spot-${setting}; always on`);
    });
});

describe("schedule: GCE starts and stops every VM", () => {
    test("without a schedule there is no policy, no role and no grant to the Compute Engine service agent", async () => {
        const run = await runWith({ spot: "all" });
        expect(run.byType("gcp:compute/resourcePolicy:ResourcePolicy")).toEqual([]);
        expect(run.byType("gcp:projects/iAMCustomRole:IAMCustomRole")).toEqual([]);
        expect(grants(run)).toEqual([]);
        expect(instances(run).map((i) => i.inputs.resourcePolicies)).toEqual([undefined, undefined, undefined]);
        expect(run.invokes.filter((i) => i.token === invokeTokens.project)).toEqual([]);
    });

    test("one instance-schedule policy in the VMs' region, with both times and the time zone, attached to every VM", async () => {
        const run = await runWith(weekdays);
        const policy = run.one("gcp:compute/resourcePolicy:ResourcePolicy");
        expect(policy.inputs).toMatchObject({
            name: "k8s-dev-schedule",
            region: "us-central1",
            project: "test-project",
            instanceSchedulePolicy: { vmStartSchedule: { schedule: "0 8 * * 1-5" }, vmStopSchedule: { schedule: "0 20 * * 1-5" }, timeZone: "Europe/Berlin" },
        });
        for (const i of instances(run)) {
            expect({ vm: i.name, policy: i.inputs.resourcePolicies }).toEqual({ vm: i.name, policy: `selfLink/${policy.name}` });
            expect(i.propertyDependencies.resourcePolicies).toEqual([policy.name]);
        }
        expect(run.outputs.costModel).toBe('standard; scheduled: start "0 8 * * 1-5", stop "0 20 * * 1-5" (Europe/Berlin)');
    });

    test("the Compute Engine service agent gets exactly start and stop, on each VM of the stack and nowhere else", async () => {
        const run = await runWith(weekdays);
        const role = run.one("gcp:projects/iAMCustomRole:IAMCustomRole");
        expect(role.inputs.permissions).toEqual(["compute.instances.start", "compute.instances.stop"]);
        expect(role.inputs).toMatchObject({ project: "test-project", roleId: "k8s_dev_vmStartStop" });
        expect(run.invokes.filter((i) => i.token === invokeTokens.project).map((i) => i.inputs.projectId)).toEqual(["test-project"]);

        const agent = `serviceAccount:service-${fakeProjectNumber}@compute-system.iam.gserviceaccount.com`;
        expect(grants(run).map((g) => g.inputs.instanceName).sort()).toEqual(["k8s-dev-control-plane", "k8s-dev-worker-1", "k8s-dev-worker-2"]);
        for (const g of grants(run)) {
            expect(g.inputs).toEqual({
                project: "test-project",
                zone: "us-central1-a",
                instanceName: g.inputs.instanceName,
                role: "projects/test-project/roles/k8s_dev_vmStartStop",
                member: agent,
            });
        }
        // No project-wide grant to the agent (the nodes' own accounts keep their two roles).
        const projectGrants = run.byType("gcp:projects/iAMMember:IAMMember");
        expect(projectGrants.filter((b) => b.inputs.member === agent)).toEqual([]);
        expect(projectGrants).toHaveLength((await runWith({})).byType("gcp:projects/iAMMember:IAMMember").length);
    });

    test("a VM's grant is replaced with the VM and never deleted through the API (it names the VM by name, which a new VM shares)", async () => {
        const run = await runWith(weekdays);
        for (const g of grants(run)) {
            const vmName = g.inputs.instanceName.replace(/^k8s-dev-/, "k8s-dev-nodes-");
            expect(g.replacementTriggerDependencies).toEqual([vmName]);
            expect(g.replacementTrigger).toBe(`instance-id-${vmName}`);
            expect(g.retainOnDelete).toBe(true);
        }
    });
});

describe("preview of switching a live stack", () => {
    const logical = (r: RecordedResource) => r.name;
    const changesFor = async (from: Record<string, string>, to: Record<string, string>) => previewChanges(await runWith(from), await runWith(to));

    test("none -> workers: each worker VM is replaced, exactly as `pulumi up --replace` of those VMs previews; the control plane is untouched", async () => {
        const before = await runWith({});
        const changes = await changesFor({}, { spot: "workers" });
        expect(sorted(changes)).toEqual(sorted(previewChanges(before, before, { replace: workerVms })));
        expect(changes.get(cpVm)).toBeUndefined();
        for (const w of workerVms) {
            expect(changes.get(w)).toBe("replace");
        }
        expect(inClusterChanges(before, changes)).toEqual([]);
    });

    test("workers -> all: the control-plane VM is replaced (a new cluster, as `npm run replace:control-plane`), the workers' VMs are not", async () => {
        const before = await runWith({ spot: "workers" });
        const changes = await changesFor({ spot: "workers" }, { spot: "all" });
        expect(sorted(changes)).toEqual(sorted(previewChanges(before, before, { replace: [cpVm] })));
        for (const w of workerVms) {
            expect(changes.get(w)).toBeUndefined();
        }
    });

    test("all -> none: every VM is replaced", async () => {
        const changes = await changesFor({ spot: "all" }, {});
        expect([cpVm, ...workerVms].map((n) => changes.get(n))).toEqual(["replace", "replace", "replace"]);
    });

    test("adding a schedule creates the policy, the role and the grants and updates each VM in place (no VM is replaced)", async () => {
        const before = await runWith({});
        const after = await runWith(weekdays);
        const changes = previewChanges(before, after);
        const created = [
            ...after.byType("gcp:compute/resourcePolicy:ResourcePolicy"),
            ...after.byType("gcp:projects/iAMCustomRole:IAMCustomRole"),
            ...grants(after),
        ].map(logical);
        expect(sorted(changes)).toEqual(
            sorted(new Map<string, Change>([...created.map((n) => [n, "create"] as [string, Change]), ...[cpVm, ...workerVms].map((n) => [n, "update"] as [string, Change])])),
        );
    });

    test("new times update the policy alone; removing the schedule detaches it from the VMs in place and deletes policy and role", async () => {
        const later = { ...weekdays, scheduleStart: "30 7 * * 1-5" };
        expect(sorted(await changesFor(weekdays, later))).toEqual([["k8s-dev-schedule-policy", "update"]]);

        const removed = await changesFor(weekdays, {});
        for (const n of [cpVm, ...workerVms]) {
            expect(removed.get(n)).toBe("update");
        }
        expect(removed.get("k8s-dev-schedule-policy")).toBe("delete");
        expect(removed.get("k8s-dev-schedule-role")).toBe("delete");
    });

    test("the model: of an instance's scheduling, only provisioningModel and preemptible replace the VM", async () => {
        const before = await runWith({ spot: "all" });
        const edited = (field: string, value: unknown): Recording => ({
            ...before,
            resources: before.resources.map((r) => (r.name === cpVm ? { ...r, inputs: { ...r.inputs, scheduling: { ...r.inputs.scheduling, [field]: value } } } : r)),
        });
        expect(previewChanges(before, edited("instanceTerminationAction", "DELETE")).get(cpVm)).toBe("update");
        expect(previewChanges(before, edited("automaticRestart", true)).get(cpVm)).toBe("update");
        expect(previewChanges(before, edited("provisioningModel", "STANDARD")).get(cpVm)).toBe("replace");
        expect(previewChanges(before, edited("preemptible", false)).get(cpVm)).toBe("replace");
    });
});

describe("`pulumi up` while VMs are stopped", () => {
    const stopped =
        (names: string[], status = "TERMINATED"): MockInvoke =>
        (token, inputs) =>
            token === invokeTokens.instance && names.includes(inputs.name) ? { ...mockInvoke(token, inputs), currentStatus: status, networkInterfaces: [{ accessConfigs: [{}] }] } : mockInvoke(token, inputs);

    test("an `up` stops before it declares any SSH step, in one line naming the VMs and the gcloud command that starts them", async () => {
        const declaredSteps: string[] = [];
        const up = runProgram(minimal, "dev", stopped(["k8s-dev-worker-1", "k8s-dev-control-plane"]), liveStack, (step) => {
            declaredSteps.push(step);
            return undefined;
        });
        await expect(up).rejects.toThrow(
            "k8s-dev-control-plane (TERMINATED), k8s-dev-worker-1 (TERMINATED): stopped, so Pulumi cannot reach them over SSH. " +
                "Start them with `gcloud compute instances start k8s-dev-control-plane k8s-dev-worker-1 --zone us-central1-a`, then run `pulumi up` again.",
        );
        await expect(up).rejects.not.toThrow(/\n/);
        // Not one SSH step was declared, so none dialled the stopped VMs.
        expect(declaredSteps).toEqual([]);
    });

    test("with Spot VMs and a schedule, the line also names the schedule's start and the setting that avoids Spot", async () => {
        const up = runProgram({ ...minimal, ...weekdays, spot: "workers" }, "dev", stopped(["k8s-dev-worker-2"], "STOPPED"), liveStack);
        await expect(up).rejects.toThrow(/^k8s-dev-worker-2 \(STOPPED\): stopped, .* The schedule starts them at "0 8 \* \* 1-5" \(Europe\/Berlin\)/);
        await expect(up).rejects.toThrow(/Spot VMs \(spot = workers\) may fail to start while GCE has no Spot capacity in us-central1-a .*`pulumi config set spot none`/);
    });

    test("every VM running: the `up` goes on, having read each VM's status once", async () => {
        const declaredSteps: string[] = [];
        const run = await runProgram(minimal, "dev", undefined, liveStack, (step) => {
            declaredSteps.push(step);
            return undefined;
        });
        expect(declaredSteps).toContain("k8s-dev-nodes-worker-1-ready");
        const reads = run.invokes.filter((i) => i.token === invokeTokens.instance).map((i) => i.inputs.name);
        // The status check reads all three; the workers are read once more for their current external IP.
        expect([...new Set(reads)].sort()).toEqual(["k8s-dev-control-plane", "k8s-dev-worker-1", "k8s-dev-worker-2"]);
        expect(reads.filter((n) => n === "k8s-dev-control-plane")).toHaveLength(1);
        expect(instances(run)).toHaveLength(3);
    });

    test("after they are back, a preview lists only the ready step of each worker that came back with a new external IP", async () => {
        const before = await runProgram(minimal, "dev", undefined, liveStack);
        const restarted: MockInvoke = (token, inputs) =>
            token === invokeTokens.instance && inputs.name === "k8s-dev-worker-1"
                ? { ...mockInvoke(token, inputs), networkInterfaces: [{ accessConfigs: [{ natIp: "198.51.100.42" }] }] }
                : mockInvoke(token, inputs);
        const after = await runProgram(minimal, "dev", restarted, liveStack);
        expect(sorted(previewChanges(before, after))).toEqual([["k8s-dev-nodes-worker-1-ready", "update"]]);
    });

    test("a new stack (no VMs yet) is not checked", async () => {
        const run = await runProgram(minimal, "dev", stopped(["k8s-dev-control-plane"]));
        expect(run.invokes.filter((i) => i.token === invokeTokens.instance).map((i) => i.inputs.name)).not.toContain("k8s-dev-control-plane");
    });

    test("a preview warns in the same words and goes on (it does not SSH); an `up` fails with exactly the line", () => {
        // The mock runtime cannot evaluate the whole program as a preview (unknown outputs never
        // resolve), so the decision is tested here and its wiring by the `up` tests above.
        const message = stoppedVmsMessage([{ name: "k8s-dev-worker-1", status: "TERMINATED", spot: false }], { zone: "us-central1-a", spot: "none" })!;
        expect(vmStatusVerdict(message, true)).toEqual({ warning: expect.stringContaining(message) });
        expect(vmStatusVerdict(message, false)).toEqual({ error: message });
        expect(vmStatusVerdict(undefined, false)).toEqual({});
        expect(vmStatusVerdict(undefined, true)).toEqual({});
    });

    test.each(["RUNNING", "PROVISIONING", "STAGING", "REPAIRING", "NOT_FOUND"])("status %s is not reported as stopped", (status) => {
        expect(stoppedVmsMessage([{ name: "k8s-dev-worker-1", status, spot: true }], { zone: "us-central1-a", spot: "all" })).toBeUndefined();
    });
});

describe("Spot capacity is not guaranteed", () => {
    const ctx = { zone: "us-central1-a", spot: "workers" as const };

    test("a run that creates Spot VMs says so, naming the capacity errors GCE gives and the setting that avoids them", () => {
        const notice = spotCreationNotice(
            [
                { name: "k8s-dev-control-plane", status: "RUNNING", spot: false, provisioningModel: "STANDARD" },
                { name: "k8s-dev-worker-1", status: "RUNNING", spot: true, provisioningModel: "STANDARD" }, // recreated by the change
                { name: "k8s-dev-worker-2", status: "RUNNING", spot: true, provisioningModel: "SPOT" }, // already Spot
                { name: "k8s-dev-worker-3", status: "NOT_FOUND", spot: true }, // scaled out
            ],
            ctx,
        );
        expect(notice).toBe(
            'k8s-dev-worker-1, k8s-dev-worker-3: created as Spot VMs (spot = workers). GCE creates and starts a Spot VM only while it has Spot capacity in us-central1-a: ' +
                'if a create fails with ZONE_RESOURCE_POOL_EXHAUSTED or "does not have enough resources available to fulfill the request", that is the reason; ' +
                "run `pulumi up` again later, or `pulumi config set spot none` to create standard VMs instead.",
        );
    });

    test("a VM the Compute API does not have (404) counts as created; one it could not read, as unknown: neither stopped nor created", () => {
        expect(readErrorStatus(new Error("googleapi: Error 404: The resource 'projects/p/zones/z/instances/k8s-dev-worker-3' was not found, notFound"))).toBe("NOT_FOUND");
        expect(readErrorStatus(new Error("googleapi: Error 403: Required 'compute.instances.get' permission, forbidden"))).toBe("UNKNOWN");
        expect(spotCreationNotice([{ name: "k8s-dev-worker-1", status: "UNKNOWN", spot: true }], ctx)).toBeUndefined();
        expect(stoppedVmsMessage([{ name: "k8s-dev-worker-1", status: "UNKNOWN", spot: true }], ctx)).toBeUndefined();
    });

    test("nothing is said when no Spot VM is created (standard VMs, or Spot VMs that exist)", () => {
        expect(spotCreationNotice([{ name: "k8s-dev-worker-1", status: "NOT_FOUND", spot: false }], ctx)).toBeUndefined();
        expect(spotCreationNotice([{ name: "k8s-dev-worker-1", status: "TERMINATED", spot: true, provisioningModel: "SPOT" }], ctx)).toBeUndefined();
        // Under test mocks the Compute API reports no model: an existing VM is not taken as recreated.
        expect(spotCreationNotice([{ name: "k8s-dev-worker-1", status: "RUNNING", spot: true }], ctx)).toBeUndefined();
    });

    test("a Spot VM that is stopped (preempted, or unable to start again) is named as Spot in the stop line", () => {
        const message = stoppedVmsMessage([{ name: "k8s-dev-worker-1", status: "TERMINATED", spot: true }], { ...ctx, schedule: undefined })!;
        expect(message).toMatch(/Spot VMs \(spot = workers\) may fail to start while GCE has no Spot capacity in us-central1-a/);
        expect(stoppedVmsMessage([{ name: "k8s-dev-worker-1", status: "TERMINATED", spot: false }], { ...ctx, spot: "none" })).not.toMatch(/Spot/);
    });
});

describe("pure parts", () => {
    test("the service agent is named after the project number; the role id is an IAM-valid form of the cluster name", () => {
        expect(computeServiceAgent("42")).toBe("serviceAccount:service-42@compute-system.iam.gserviceaccount.com");
        for (const cluster of ["k8s-dev", "a", "k8s-feature-branch-w"]) {
            // IAM custom role ids: [a-zA-Z0-9_.]{3,64}
            expect(scheduleRoleId(cluster)).toMatch(/^[a-zA-Z0-9_.]{3,64}$/);
        }
    });

    test("costModel names the Spot setting and the schedule", () => {
        expect(costModel("none", undefined)).toBe("standard; always on");
        expect(costModel("all", { start: "0 9 * * *", stop: "0 18 * * *", timeZone: "UTC" })).toBe('spot-all; scheduled: start "0 9 * * *", stop "0 18 * * *" (UTC)');
    });
});
