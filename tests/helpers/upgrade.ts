/**
 * components/upgrade.ts under the mock runtime: its steps wired as kubeadm.ts wires them (a control
 * plane, workers that joined, kubeadm init), and readClusterState against a stack with given outputs.
 */
import { promiseOf, recordUnderMocks, RecordedResource } from "./program";

/** The upgrade steps and the credentials step for `workerCount` workers and `minor`; `version` is the chain's end. */
export async function buildUpgradeSteps(minor: string, workerCount = 3) {
    const recording = await recordUnderMocks(
        (pulumi) => {
            const command = require("@pulumi/command");
            const upgrade = require("../../components/upgrade");
            const parent = new pulumi.ComponentResource("kubeadm-gcp:kubeadm:KubeadmCluster", "k8s", {});
            const connection = (host: string) => ({ host, user: "kubeadm", privateKey: pulumi.secret("fake key") });
            const cp = { name: "k8s-control-plane", connection: connection("203.0.113.10") };
            const init = new command.remote.Command("k8s-control-plane-init", { connection: cp.connection, create: "init" }, { parent });
            const workers = Array.from({ length: workerCount }, (_, i) => {
                const node = { name: `k8s-worker-${i + 1}`, connection: connection(`203.0.113.${20 + i}`) };
                const joined = new command.remote.Command(`k8s-worker-${i + 1}-join`, { connection: node.connection, create: "join" }, { parent });
                return { node, joined };
            });
            const steps = upgrade.kubernetesUpgradeSteps({
                controlPlane: cp,
                workers,
                kubernetesMinor: minor,
                after: [init],
                stepName: (node: { name: string }, what: string) => `k8s-${node.name.slice("k8s-".length)}-${what}`,
                parent,
            });
            const credentials = upgrade.credentialsStep("k8s-credentials", { controlPlane: cp, version: upgrade.line(steps.controlPlane), renewal: "initial", parent });
            return { version: steps.version, expires: upgrade.line(credentials) };
        },
        { stack: "test" },
    );
    const version = await promiseOf(recording.value.version);
    await recording.pulumi.runtime.disconnect();
    return { ...recording, version };
}

/** readClusterState() in a stack whose last deployment exported `outputs`. */
export async function readClusterStateUnderMocks(outputs: Record<string, string>, stack = "test") {
    const recording = await recordUnderMocks(
        // recordUnderMocks names the organization as a self-managed backend does ("organization").
        () => require("../../components/upgrade").readClusterState(),
        {
            stack,
            state: (type, _name, inputs) => (type === "pulumi:pulumi:StackReference" ? { ...inputs, outputs, secretOutputNames: [] } : inputs),
        },
    );
    const state = recording.value;
    const reference: RecordedResource = recording.one("pulumi:pulumi:StackReference");
    await recording.pulumi.runtime.disconnect();
    return { state, reference };
}
