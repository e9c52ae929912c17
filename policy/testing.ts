/** Shared by the policy tests: what the policy runtime passes besides the resource itself. */
import { PolicyResourceOptions } from "@pulumi/policy";

export const defaultOpts: PolicyResourceOptions = {
    protect: false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: [],
};

export function notApplicable(reason?: string): never {
    throw new Error(`notApplicable: ${reason}`);
}
