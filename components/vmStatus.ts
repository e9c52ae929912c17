/**
 * Whether the stack's VMs are running before an `up` tries to SSH to them. A VM stopped by the
 * schedule, by a Spot preemption (instanceTerminationAction STOP) or by hand keeps its disk, name
 * and internal IP, but no `pulumi up` step can reach it: without this check each SSH step would dial
 * for about 20 minutes (ClusterNodes' dial retries) and fail with a dial error that names no cause.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { SpotSetting, VmSchedule } from "./config";

/**
 * Instance statuses in which the VM does not run (compute/docs/instances/instance-life-cycle):
 * TERMINATED is GCE's name for a stopped VM, a preempted Spot VM included.
 */
export const notRunningStatuses = ["STOPPING", "STOPPED", "SUSPENDING", "SUSPENDED", "TERMINATED"] as const;

export interface VmState {
    name: string;
    /** The instance's currentStatus as the Compute API reports it now. */
    status: string;
    spot: boolean;
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

/** What the program does with the message: an `up` stops before anything changes; a preview warns and goes on. */
export function vmStatusVerdict(message: string | undefined, preview: boolean): { error?: string; warning?: string } {
    if (message === undefined) {
        return {};
    }
    return preview ? { warning: `${message} (A preview does not SSH; \`pulumi up\` will stop here until they run.)` } : { error: message };
}

/** The VM's currentStatus now, or undefined when the Compute API has no such VM (not created yet, or deleted). */
async function currentStatus(name: string, zone: string, project: string): Promise<string | undefined> {
    try {
        return (await gcp.compute.getInstance({ name, zone, project })).currentStatus;
    } catch {
        return undefined;
    }
}

/**
 * Reads each VM's status and refuses an `up` while any of them is stopped (a RunError: Pulumi prints
 * its one line without a stack trace). Called before any resource is declared, and only for a stack
 * whose last `up` created the VMs.
 */
export async function requireVmsRunning(vms: { name: string; spot: boolean }[], project: string, ctx: VmStatusContext): Promise<void> {
    const states = await Promise.all(
        vms.map(async (vm) => ({ ...vm, status: (await currentStatus(vm.name, ctx.zone, project)) ?? "NOT_FOUND" })),
    );
    const verdict = vmStatusVerdict(stoppedVmsMessage(states, ctx), pulumi.runtime.isDryRun());
    if (verdict.warning) {
        pulumi.log.warn(verdict.warning);
    }
    if (verdict.error) {
        throw new pulumi.RunError(verdict.error);
    }
}
