/**
 * The stack's on/off schedule: a GCE instance-schedule resource policy that every VM of the stack
 * is attached to, and the one grant GCE needs to act on it. See README "Cost" and docs/lifecycle.md.
 *
 * GCE starts and stops the VMs as the Compute Engine service agent
 * (service-<project number>@compute-system.iam.gserviceaccount.com), which needs
 * compute.instances.start and compute.instances.stop on them ("Scheduling a VM instance to start and
 * stop", cloud.google.com/compute/docs/instances/schedule-instance-start-stop). The program gives it
 * a custom role with exactly those two permissions, bound on each VM of the stack (nodes.ts), rather
 * than roles/compute.instanceAdmin.v1 on the project, which would let it act on every VM there.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { SpotSetting, VmSchedule } from "./config";

/** Exactly what GCE's instance schedule does to a VM. */
export const scheduleRolePermissions = ["compute.instances.start", "compute.instances.stop"] as const;

/** The Compute Engine service agent of a project: who runs the instance schedules. */
export function computeServiceAgent(projectNumber: string): string {
    return `serviceAccount:service-${projectNumber}@compute-system.iam.gserviceaccount.com`;
}

/** A custom role id for the cluster: IAM allows letters, digits, `_` and `.` (3-64), so hyphens become `_`. */
export function scheduleRoleId(clusterName: string): string {
    return `${clusterName.replace(/-/g, "_")}_vmStartStop`;
}

/**
 * What the stack runs on, in one line (the `costModel` output): "standard", "spot-workers" or
 * "spot-all", then "always on" or the schedule's start and stop with their time zone.
 */
export function costModel(spot: SpotSetting, schedule: VmSchedule | undefined): string {
    const model = spot === "none" ? "standard" : `spot-${spot}`;
    return schedule ? `${model}; scheduled: start "${schedule.start}", stop "${schedule.stop}" (${schedule.timeZone})` : `${model}; always on`;
}

export interface InstanceScheduleArgs {
    /** Prefix of the policy's and the role's names. */
    clusterName: string;
    /** The project of the VMs: the role is defined there and its service agent is granted it. */
    project: string;
    /** The VMs' region: GCE attaches a schedule only to VMs of its own region. */
    region: string;
    schedule: VmSchedule;
}

/**
 * The schedule's policy, the role GCE needs to follow it, and who to grant that role to. The grants
 * themselves are per VM (ClusterNodes): a VM's IAM policy is the narrowest scope that has them.
 */
export class InstanceSchedule extends pulumi.ComponentResource {
    /** The resource policy's self link, for each Instance's `resourcePolicies`. */
    readonly policy: pulumi.Output<string>;
    /** The custom role (projects/<project>/roles/<id>) with exactly scheduleRolePermissions. */
    readonly role: pulumi.Output<string>;
    /** The Compute Engine service agent, as an IAM member. */
    readonly member: pulumi.Output<string>;

    constructor(name: string, args: InstanceScheduleArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:schedule:InstanceSchedule", name, {}, opts);
        // Updated in place when the times change (terraform-provider-google made ResourcePolicy
        // updatable in v5.38, resource_compute_resource_policy.go resourceComputeResourcePolicyUpdate),
        // so a new schedule neither replaces the policy nor detaches it from the VMs.
        const policy = new gcp.compute.ResourcePolicy(
            `${name}-policy`,
            {
                name: `${args.clusterName}-schedule`,
                project: args.project,
                region: args.region,
                description: `Starts and stops every VM of ${args.clusterName}`,
                instanceSchedulePolicy: {
                    vmStartSchedule: { schedule: args.schedule.start },
                    vmStopSchedule: { schedule: args.schedule.stop },
                    timeZone: args.schedule.timeZone,
                },
            },
            { parent: this },
        );
        // IAM keeps a deleted custom role's id for a while; a stack that sets a schedule again (or is
        // re-created) gets the same role back: the provider undeletes a soft-deleted role of that id
        // instead of failing (terraform-provider-google resource_google_project_iam_custom_role.go, create).
        const role = new gcp.projects.IAMCustomRole(
            `${name}-role`,
            {
                project: args.project,
                roleId: scheduleRoleId(args.clusterName),
                title: `Start and stop the VMs of ${args.clusterName}`,
                description: "Granted on each VM of the cluster to the Compute Engine service agent, which runs the instance schedule",
                permissions: [...scheduleRolePermissions],
            },
            { parent: this },
        );
        const project = gcp.organizations.getProjectOutput({ projectId: args.project }, { parent: this });
        this.policy = policy.selfLink;
        this.role = role.name;
        this.member = project.number.apply(computeServiceAgent);
        this.registerOutputs({ policy: this.policy, role: this.role });
    }
}
