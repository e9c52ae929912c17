/**
 * The kubeadm-gcp policy pack. Pulumi loads this file when a preview or update runs with
 * `--policy-pack policy` (the GitHub workflows pass it; locally: `npm ci --prefix policy` once,
 * then `pulumi preview --policy-pack policy`). The policies themselves live in policies.ts.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("kubeadm-gcp-guardrails", {
    // Each policy sets its own level; this is the fallback for any that does not.
    enforcementLevel: "mandatory",
    policies,
});
