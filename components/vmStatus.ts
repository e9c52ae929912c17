/**
 * Whether the stack's VMs are running before an `up` tries to SSH to them. A VM stopped by the
 * schedule, by a Spot preemption (instanceTerminationAction STOP) or by hand keeps its disk, name
 * and internal IP, but no `pulumi up` step can reach it: without this check each SSH step would dial
 * for about 20 minutes (ClusterNodes' dial retries) and fail with a dial error that names no cause.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { SpotSetting, VmSchedule } from "./config";
import { isSpot, nodeNames } from "./nodes";

/**
 * Instance statuses in which the VM does not run (compute/docs/instances/instance-life-cycle):
 * TERMINATED is GCE's name for a stopped VM, a preempted Spot VM included.
 */
export const notRunningStatuses = ["STOPPING", "STOPPED", "SUSPENDING", "SUSPENDED", "TERMINATED"] as const;

export interface VmState {
    name: string;
    /** The instance's currentStatus as the Compute API reports it now; "NOT_FOUND" when there is no such VM. */
    status: string;
    /** Whether the config makes it a Spot VM. */
    spot: boolean;
    /** Its provisioning model as the Compute API reports it, when it exists and says. */
    provisioningModel?: string;
}

export interface VmStatusContext {
    zone: string;
    spot: SpotSetting;
    schedule?: VmSchedule;
}

/**
 * The one line that says which VMs are stopped and how to start them, or undefined when all run.
 * Spot VMs may not start again at once (GCE has no Spot capacity then): the line names the setting.
 */
export function stoppedVmsMessage(vms: VmState[], ctx: VmStatusContext): string | undefined {
    const stopped = vms.filter((vm) => (notRunningStatuses as readonly string[]).includes(vm.status));
    if (stopped.length === 0) {
        return undefined;
    }
    const names = stopped.map((vm) => vm.name);
    const listed = stopped.map((vm) => `${vm.name} (${vm.status})`).join(", ");
    const why = ctx.schedule ? ` The schedule starts them at "${ctx.schedule.start}" (${ctx.schedule.timeZone}); to work now, start them yourself.` : "";
    const spot = stopped.some((vm) => vm.spot)
        ? ` Spot VMs (spot = ${ctx.spot}) may fail to start while GCE has no Spot capacity in ${ctx.zone} ("does not have enough resources available"): try again later, or \`pulumi config set spot none\` to recreate them as standard VMs (docs/lifecycle.md).`
        : "";
    return (
        `${listed}: stopped, so Pulumi cannot reach ${stopped.length === 1 ? "it" : "them"} over SSH. ` +
        `Start ${stopped.length === 1 ? "it" : "them"} with \`gcloud compute instances start ${names.join(" ")} --zone ${ctx.zone}\`, then run \`pulumi up\` again.${why}${spot}`
    );
}

/**
 * The line printed when this run creates Spot VMs: GCE creates one only while it has Spot capacity in
 * the zone, and the provider's error then names no setting. A VM is created when it does not exist
 * yet, or when it exists with another provisioning model (a `spot` change recreates it).
 */
export function spotCreationNotice(vms: VmState[], ctx: VmStatusContext): string | undefined {
    const created = vms.filter((vm) => vm.spot && (vm.status === "NOT_FOUND" || (vm.provisioningModel !== undefined && vm.provisioningModel !== "SPOT")));
    if (created.length === 0) {
        return undefined;
    }
    return (
        `${created.map((vm) => vm.name).join(", ")}: created as Spot VM${created.length === 1 ? "" : "s"} (spot = ${ctx.spot}). GCE creates and starts a Spot VM only while it has ` +
        `Spot capacity in ${ctx.zone}: if a create fails with ZONE_RESOURCE_POOL_EXHAUSTED or "does not have enough resources available to fulfill the request", ` +
        `that is the reason; run \`pulumi up\` again later, or \`pulumi config set spot none\` to create standard VMs instead.`
    );
}

/** What the program does with the message: an `up` stops before anything changes; a preview warns and goes on. */
export function vmStatusVerdict(message: string | undefined, preview: boolean): { error?: string; warning?: string } {
    if (message === undefined) {
        return {};
    }
    return preview ? { warning: `${message} (A preview does not SSH; \`pulumi up\` will stop here until they run.)` } : { error: message };
}

/**
 * The VM as the Compute API reports it now; status "NOT_FOUND" when there is no such VM (not created
 * yet, or deleted: the API's 404), "UNKNOWN" when it could not be read (the run goes on, and the
 * VM's own steps report what is wrong).
 */
async function readVm(name: string, zone: string, project: string): Promise<{ status: string; provisioningModel?: string }> {
    try {
        const vm = await gcp.compute.getInstance({ name, zone, project });
        return { status: vm.currentStatus, provisioningModel: vm.schedulings?.[0]?.provisioningModel || undefined };
    } catch (e) {
        return { status: readErrorStatus(e) };
    }
}

/** A failed read of a VM: "NOT_FOUND" for the Compute API's 404, "UNKNOWN" for anything else (a 403, a network error). */
export function readErrorStatus(e: unknown): "NOT_FOUND" | "UNKNOWN" {
    return /\b404\b|\bnot ?found\b/i.test(String(e)) ? "NOT_FOUND" : "UNKNOWN";
}

/** The stack's VMs as checkVms needs them: the names ClusterNodes gives them, and which are Spot. */
export function stackVms(clusterName: string, workerCount: number, spot: SpotSetting): { name: string; spot: boolean }[] {
    const names = nodeNames(clusterName, workerCount);
    return [
        { name: names.controlPlane, spot: isSpot(spot, "control-plane") },
        ...names.workers.map((w) => ({ name: w, spot: isSpot(spot, "worker") })),
    ];
}

/**
 * Before any resource is declared: refuses an `up` while a VM of the stack is stopped (a RunError:
 * Pulumi prints its one line without a stack trace; a preview warns), and says so when this run will
 * create Spot VMs. `existing`: the last `up` created the VMs, so the Compute API is asked about each;
 * otherwise every VM is new.
 */
export async function checkVms(vms: { name: string; spot: boolean }[], project: string, existing: boolean, ctx: VmStatusContext): Promise<void> {
    const states: VmState[] = await Promise.all(
        vms.map(async (vm) => ({ ...vm, ...(existing ? await readVm(vm.name, ctx.zone, project) : { status: "NOT_FOUND" }) })),
    );
    const verdict = vmStatusVerdict(stoppedVmsMessage(states, ctx), pulumi.runtime.isDryRun());
    if (verdict.warning) {
        pulumi.log.warn(verdict.warning);
    }
    if (verdict.error) {
        throw new pulumi.RunError(verdict.error);
    }
    const notice = spotCreationNotice(states, ctx);
    if (notice) {
        pulumi.log.info(notice);
    }
}
