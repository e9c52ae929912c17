/**
 * The kubeadm provisioning graph, derived from the real program under mocks: which SSH steps run
 * where, what waits for what, and how long the chain from VM to Ready cluster is.
 */
import * as yaml from "js-yaml";
import { caCertHash, planClientCredentials } from "../components/identity";
import { renderedMarker } from "../components/scripts";
import { versions } from "../components/versions";
import {
    fakeStdout,
    fixtureCaCertPem,
    inClusterChanges,
    previewChanges,
    ProgramRun,
    RecordedResource,
    runProgram,
    transitiveDependencies,
    unconfiguredProviders,
} from "./helpers/program";

const minimal = { "gcp:project": "test-project" };

let run: ProgramRun;
beforeAll(async () => {
    run = await runProgram(minimal);
});

const commands = (r: ProgramRun) => r.byType("command:remote:Command");
const cmd = (r: ProgramRun, suffix: string) => {
    const found = commands(r).filter((c) => c.name.endsWith(suffix));
    expect(found.map((c) => c.name)).toHaveLength(1);
    return found[0];
};
const hostOf = (c: RecordedResource) => c.inputs.connection.host as string;
const cpHost = (r: ProgramRun) => r.outputs.controlPlane.externalIp as string;

/** Direct predecessors of every command among the commands (data flow and dependsOn). */
function commandGraph(r: ProgramRun): Map<string, string[]> {
    const names = new Set(commands(r).map((c) => c.name));
    return new Map(commands(r).map((c) => [c.name, [...new Set([...c.dataDependencies, ...c.dependsOn])].filter((d) => names.has(d))]));
}

function ancestors(graph: Map<string, string[]>, name: string, seen = new Set<string>()): Set<string> {
    for (const p of graph.get(name) ?? []) {
        if (!seen.has(p)) {
            seen.add(p);
            ancestors(graph, p, seen);
        }
    }
    return seen;
}

/** Longest chain of SSH steps ending at `name`, as a list of step names. */
function criticalPath(graph: Map<string, string[]>, name: string): string[] {
    const preds = graph.get(name) ?? [];
    const longest = preds.map((p) => criticalPath(graph, p)).sort((a, b) => b.length - a.length)[0] ?? [];
    return [...longest, name];
}

describe("provisioning steps", () => {
    test("every node prepares itself after its readiness check, in parallel with the others", () => {
        const graph = commandGraph(run);
        const prepares = commands(run).filter((c) => c.name.endsWith("-prepare"));
        expect(prepares).toHaveLength(3);
        for (const p of prepares) {
            const node = p.name.replace(/-prepare$/, "").split("-cluster-")[1];
            expect(graph.get(p.name)).toEqual([expect.stringMatching(new RegExp(`-${node}-ready$`))]);
            // The apt source of the configured minor (lib/common.sh's use_kubernetes_minor, inlined).
            expect(p.inputs.create).toContain('use_kubernetes_minor "$K8S_MINOR"');
            expect(p.inputs.create).toContain('local url="https://pkgs.k8s.io/core:/stable:/v$1/deb/"');
            expect(p.inputs.create).toContain(`export K8S_MINOR='${versions.kubernetesMinor}'`);
        }
    });

    test("the configured Kubernetes minor reaches the nodes, and the legacy repository appears nowhere", async () => {
        const r = await runProgram({ ...minimal, kubernetesVersion: "1.35" });
        for (const c of commands(r)) {
            expect(c.inputs.create ?? "").not.toMatch(/apt\.kubernetes\.io|packages\.cloud\.google\.com/);
            if (c.name.endsWith("-prepare")) {
                expect(c.inputs.create).toContain("export K8S_MINOR='1.35'");
            }
        }
    });

    test("one kubeadm init, on the control plane, after its images are pulled and its etcd restore step ran", () => {
        const inits = commands(run).filter((c) => c.inputs.create?.includes(renderedMarker("kubeadm-init")));
        expect(inits.map((c) => c.name)).toEqual(["k8s-dev-cluster-control-plane-init"]);
        const init = inits[0];
        expect(hostOf(init)).toBe(cpHost(run));
        expect([...commandGraph(run).get(init.name)!].sort()).toEqual(["k8s-dev-cluster-control-plane-etcd-restore", "k8s-dev-cluster-control-plane-images"]);
        // The restore needs only the VM: it overlaps the preparation instead of lengthening the chain.
        expect(commandGraph(run).get("k8s-dev-cluster-control-plane-etcd-restore")).toEqual(["k8s-dev-nodes-control-plane-ready"]);
        expect(init.inputs.create).toContain(`export PUBLIC_ADDRESS='${cpHost(run)}'`);
        expect(init.inputs.create).toContain("export POD_CIDR='10.244.0.0/16'");
        expect(init.inputs.create).toContain("export NODE_NAME='k8s-dev-control-plane'");
        expect(init.inputs.create).toContain("export FLANNEL_MANIFEST_URL='https://github.com/flannel-io/flannel/releases/download/v0.28.9/kube-flannel.yml'");
    });

    test("each worker joins once, after init, with a token minted for it on the control plane once it is prepared", () => {
        const graph = commandGraph(run);
        for (const worker of ["worker-1", "worker-2"]) {
            const admit = cmd(run, `-${worker}-admit`);
            const join = cmd(run, `-${worker}-join`);
            expect(hostOf(admit)).toBe(cpHost(run));
            expect(admit.inputs.create).toContain(`export WORKER_NAME='k8s-dev-${worker}'`);
            expect(admit.inputs.create).toContain(renderedMarker("join-token"));
            expect(join.inputs.create).toContain(renderedMarker("kubeadm-join"));
            // The token step depends on the worker's preparation: minted just before the join.
            expect(graph.get(admit.name)!.sort()).toEqual(["k8s-dev-cluster-control-plane-init", `k8s-dev-cluster-${worker}-prepare`]);
            expect(admit.inputs.triggers).toEqual(["k8s-dev-cluster-control-plane-init-id", `k8s-dev-cluster-${worker}-prepare-id`]);
            expect(hostOf(join)).not.toBe(cpHost(run));
            expect(join.inputs.stdin).toBe(fakeStdout(admit.name));
            // The stack's CA pin, known before any VM exists, and the cluster incarnation init printed.
            expect(join.inputs.create).toContain(`export CA_CERT_HASH='${caCertHash(fixtureCaCertPem)}'`);
            expect(join.propertyDependencies.create).toEqual(["k8s-dev-cluster-control-plane-init", "k8s-dev-identity-ca"]);
            expect(join.inputs.create).toContain(`export CLUSTER_UID='${fakeStdout("k8s-dev-cluster-control-plane-init")}'`);
            expect(graph.get(join.name)!.sort()).toEqual([admit.name, "k8s-dev-cluster-control-plane-init", `k8s-dev-cluster-${worker}-prepare`].sort());
            expect(ancestors(graph, join.name)).toContain("k8s-dev-cluster-control-plane-init");
        }
        expect(commands(run).filter((c) => c.name.endsWith("-join"))).toHaveLength(2);
    });

    test("no worker's provisioning step waits on another worker (only the in-place upgrade goes one worker at a time)", async () => {
        const r = await runProgram({ ...minimal, workerCount: "3" });
        const graph = commandGraph(r);
        for (const c of commands(r)) {
            const mine = /-(worker-\d+)-/.exec(c.name)?.[1];
            // The upgrade steps are serialized on purpose (tests/upgrade.test.ts holds that order).
            if (!mine || /-upgrade(-drain|-uncordon)?$/.test(c.name)) {
                continue;
            }
            const others = [...ancestors(graph, c.name)].filter((a) => /-worker-\d+-/.test(a) && !a.includes(`-${mine}-`));
            expect({ step: c.name, waitsOn: others }).toEqual({ step: c.name, waitsOn: [] });
        }
    });

    test("workers pull their images while the control plane initialises: nothing waits for those pulls", () => {
        const graph = commandGraph(run);
        const workerPulls = commands(run).filter((c) => /-worker-\d+-images$/.test(c.name));
        expect(workerPulls).toHaveLength(2);
        for (const pull of workerPulls) {
            expect(pull.inputs.create).toContain("export KUBEADM_IMAGES='node'");
            expect(pull.inputs.create).toContain("docker.io/gasbugs/http-go:latest");
            expect(ancestors(graph, pull.name)).not.toContain("k8s-dev-cluster-control-plane-init");
            const dependents = [...graph.entries()].filter(([, preds]) => preds.includes(pull.name));
            expect(dependents).toEqual([]);
        }
    });

    test("removing a worker drains and deletes its node from the control plane before its VM goes", () => {
        const admit = cmd(run, "-worker-2-admit");
        expect(admit.inputs.delete).toContain("export NODE_NAME='k8s-dev-worker-2'");
        expect(admit.inputs.delete).toContain(renderedMarker("drain-node"));
        expect(hostOf(admit)).toBe(cpHost(run));
        // Deleted before the VM because it depends on it.
        expect(transitiveDependencies(run, admit.name)).toContain("k8s-dev-nodes-worker-2");
    });

    test("scaling out leaves the existing workers' steps untouched", async () => {
        const bigger = await runProgram({ ...minimal, workerCount: "3" });
        for (const c of commands(run)) {
            if (c.name.endsWith("cluster-ready")) {
                continue;
            }
            expect(bigger.get(c.name).inputs).toEqual(c.inputs);
        }
        expect(cmd(bigger, "-worker-3-admit").inputs.create).toContain("export WORKER_NAME='k8s-dev-worker-3'");
    });
});

describe("join tokens across re-runs", () => {
    /** The state after an `up` where `failed` failed to create: it and everything after it are absent. */
    const stateAfterFailure = (failed: string) => {
        const gone = new Set(run.resources.filter((r) => r.name === failed || transitiveDependencies(run, r.name).has(failed)).map((r) => r.name));
        return { ...run, resources: run.resources.filter((r) => !gone.has(r.name)) };
    };

    test("a re-run after a failed join creates the join (and what follows) again, and leaves the token step alone", () => {
        // pulumi-command 1.2.1 returns a plain error from a failed create: nothing is kept in the
        // state, so the next `up` creates the join again from the token step's stored output.
        const changes = previewChanges(stateAfterFailure("k8s-dev-cluster-worker-2-join"), run);
        expect(changes.get("k8s-dev-cluster-worker-2-join")).toBe("create");
        expect(changes.get("k8s-dev-cluster-worker-2-revoke-token")).toBe("create");
        expect(changes.has("k8s-dev-cluster-worker-2-admit")).toBe(false);
        expect(cmd(run, "-worker-2-join").inputs.stdin).toBe(fakeStdout("k8s-dev-cluster-worker-2-admit"));
        // So the stored token must still be valid then, at any later time: it is minted without
        // expiry (tests/scripts/join.test.ts) and revoked only once the join has succeeded.
        expect(cmd(run, "-worker-2-admit").inputs.create).toContain(renderedMarker("join-token"));
    });

    test("each token is revoked on the control plane after its join, and again for every new token", () => {
        const graph = commandGraph(run);
        for (const worker of ["worker-1", "worker-2"]) {
            const revoke = cmd(run, `-${worker}-revoke-token`);
            expect(hostOf(revoke)).toBe(cpHost(run));
            expect(revoke.inputs.create).toContain(renderedMarker("revoke-join-token"));
            expect(revoke.inputs.create).toContain(`export WORKER_NAME='k8s-dev-${worker}'`);
            // The token itself too: an admit step re-run by an update (same id) mints a new one.
            expect(revoke.inputs.triggers).toEqual([`k8s-dev-cluster-${worker}-join-id`, `k8s-dev-cluster-${worker}-admit-id`, `stdout-of:k8s-dev-cluster-${worker}-admit`]);
            expect(graph.get(revoke.name)!.sort()).toEqual([`k8s-dev-cluster-${worker}-admit`, `k8s-dev-cluster-${worker}-join`]);
        }
    });

    test("steady state: a second evaluation changes nothing", async () => {
        const again = await runProgram(minimal);
        expect(previewChanges(run, again)).toEqual(new Map());
    });
});

describe("kubeconfig and secrets", () => {
    test("nodeNames is a plain output, though it is known only once every node is Ready", () => {
        expect(run.outputs.nodeNames).toEqual(["k8s-dev-control-plane", "k8s-dev-worker-1", "k8s-dev-worker-2"]);
        expect(run.secretOutputs).not.toContain("nodeNames");
        expect(run.secretOutputs).toContain("kubeconfig");
    });

    test("no command gets its previous output in its environment (a re-run would warn, and it could carry a secret)", () => {
        const all = run.resources.filter((r) => r.type.startsWith("command:"));
        expect(all.length).toBeGreaterThan(10);
        for (const c of all) {
            expect({ name: c.name, addPreviousOutputInEnv: c.inputs.addPreviousOutputInEnv }).toEqual({ name: c.name, addPreviousOutputInEnv: false });
        }
    });

    test("cluster-ready waits on the control plane for every node, after init and every join", () => {
        const ready = cmd(run, "-cluster-ready");
        expect(hostOf(ready)).toBe(cpHost(run));
        expect(ready.inputs.create).toContain("export EXPECTED_NODES='k8s-dev-control-plane k8s-dev-worker-1 k8s-dev-worker-2'");
        expect(commandGraph(run).get(ready.name)!.sort()).toEqual([
            "k8s-dev-cluster-control-plane-init",
            "k8s-dev-cluster-worker-1-join",
            "k8s-dev-cluster-worker-2-join",
        ]);
    });

    test("the provider's kubeconfig is the stack's: the reserved API address, the stack's CA, the client certificate in use", () => {
        const provider = run.one("pulumi:providers:kubernetes");
        const inUse = planClientCredentials(new Date()).inUse;
        // Nothing that runs on a VM feeds it, so no re-run step can make it unknown during preview.
        expect(provider.propertyDependencies.kubeconfig).toEqual(
            ["k8s-dev-identity-ca", `k8s-dev-identity-admin-${inUse}`, `k8s-dev-identity-admin-${inUse}-key`, "k8s-dev-nodes-api-ip"].sort(),
        );
        expect(provider.secretInputs).toContain("kubeconfig");
        const kubeconfig = yaml.load(provider.inputs.kubeconfig) as any;
        const b64 = (s: string) => Buffer.from(s, "base64").toString();
        expect(kubeconfig.clusters[0].cluster.server).toBe(`https://${cpHost(run)}:6443`);
        expect(b64(kubeconfig.clusters[0].cluster["certificate-authority-data"]).trim()).toBe(fixtureCaCertPem.trim());
        expect(b64(kubeconfig.users[0].user["client-certificate-data"])).toContain(`cert-of:k8s-dev-identity-admin-${inUse}`);
        expect(b64(kubeconfig.users[0].user["client-key-data"])).toContain(`key-of:k8s-dev-identity-admin-${inUse}-key`);
        // The exported kubeconfig is the same one, resolved once every node is Ready.
        expect(run.outputs.kubeconfig).toBe(provider.inputs.kubeconfig);
    });

    test("the provider waits for every node to be Ready through dependsOn, so everything deployed through it does", () => {
        const provider = run.one("pulumi:providers:kubernetes");
        expect(provider.dependsOn).toEqual(["k8s-dev-cluster-cluster-ready"]);
        for (const o of run.resources.filter((r) => r.type.startsWith("kubernetes:"))) {
            expect({ name: o.name, waits: transitiveDependencies(run, o.name).has("k8s-dev-cluster-cluster-ready") }).toEqual({ name: o.name, waits: true });
        }
    });

    test("deleteUnreachable is never in the provider's config: a refresh that cannot reach the cluster must fail, not empty the state", () => {
        // The provider flag overrides PULUMI_K8S_DELETE_UNREACHABLE and applies to Read (refresh) as
        // well as Delete; `npm run destroy:unreachable` sets the variable for one destroy only.
        const provider = run.one("pulumi:providers:kubernetes");
        expect(provider.inputs).not.toHaveProperty("deleteUnreachable");
        expect(provider.inputs).not.toHaveProperty("skipUpdateUnreachable");
    });

    test("PULUMI_K8S_DELETE_UNREACHABLE in the environment of an `up` does not reach the provider's state", async () => {
        // The SDK would copy it into the provider's inputs (and so into the state) unless told a value.
        process.env.PULUMI_K8S_DELETE_UNREACHABLE = "true";
        try {
            const withVariable = await runProgram(minimal);
            expect(withVariable.one("pulumi:providers:kubernetes").inputs).not.toHaveProperty("deleteUnreachable");
        } finally {
            delete process.env.PULUMI_K8S_DELETE_UNREACHABLE;
        }
    });

    test("join tokens are secret: minted without logs, passed as secret stdin, never in script text", () => {
        for (const admit of commands(run).filter((c) => c.name.endsWith("-admit"))) {
            expect(admit.inputs.logging).toBe("none");
            expect(admit.additionalSecretOutputs).toContain("stdout");
            expect(admit.inputs.addPreviousOutputInEnv).toBe(false);
        }
        for (const join of commands(run).filter((c) => c.name.endsWith("-join"))) {
            expect(join.secretInputs).toContain("stdin");
            expect(join.secretInputs).not.toContain("create");
        }
    });

    test("the chain of SSH steps from VM to Ready cluster stays at its designed length of 7", () => {
        // ready → prepare → images → init → a worker's token → its join → cluster-ready. The control
        // plane's (no-op) upgrade check and credentials read run beside it and gate nothing.
        const path = criticalPath(commandGraph(run), "k8s-dev-cluster-cluster-ready").map((p) => p.replace(/^k8s-dev-(cluster|nodes)-/, ""));
        expect(path.map((p) => p.replace(/^worker-\d+-/, "worker-N-"))).toEqual([
            "control-plane-ready", "control-plane-prepare", "control-plane-images", "control-plane-init", "worker-N-admit", "worker-N-join", "cluster-ready",
        ]);
    });
});

const kinds = (changes: Map<string, string>) => {
    const out: Record<string, string[]> = {};
    for (const [name, change] of [...changes.entries()].sort()) {
        (out[change] ??= []).push(name.replace(/^k8s-dev-/, ""));
    }
    return out;
};

/** The state after `pulumi refresh --target` a VM that is gone: the VM alone has left the state. */
const refreshedWithout = (r: ProgramRun, vm: string): ProgramRun => ({ ...r, resources: r.resources.filter((x) => x.name !== vm) });

describe("previews of config changes (what a pull request's preview shows)", () => {
    test("scale-out 2 -> 3 workers: one VM and its steps are created; the provider stays known, nothing in the cluster changes", async () => {
        const three = await runProgram({ ...minimal, workerCount: "3" });
        const changes = previewChanges(run, three);
        expect(kinds(changes)).toEqual(EXPECTED_SCALE_OUT);
        expect(unconfiguredProviders(run, three)).toEqual([]);
        expect(inClusterChanges(three, changes)).toEqual([]);
    });

    test("scale-in 3 -> 2 workers: the last worker and its steps are deleted; the provider stays known, nothing in the cluster changes", async () => {
        const three = await runProgram({ ...minimal, workerCount: "3" });
        const changes = previewChanges(three, run);
        expect(kinds(changes)).toEqual(EXPECTED_SCALE_IN);
        expect(unconfiguredProviders(three, run)).toEqual([]);
        expect(inClusterChanges(run, changes)).toEqual([]);
    });

    test("first up: everything is created; the provider cannot be configured yet, so the cluster is not contacted", () => {
        const nothing = { ...run, resources: [] };
        const changes = previewChanges(nothing, run);
        expect(new Set(changes.values())).toEqual(new Set(["create"]));
        expect(unconfiguredProviders(nothing, run)).toEqual(["k8s-dev-cluster-k8s"]);
    });

    test("the provider's clusterIdentifier names the kubeadm init, so only a new cluster replaces the provider", () => {
        const provider = run.one("pulumi:providers:kubernetes");
        expect(provider.inputs.clusterIdentifier).toBe("k8s-dev/k8s-dev-cluster-control-plane-init-id");
        expect(provider.propertyDependencies.clusterIdentifier).toEqual(["k8s-dev-cluster-control-plane-init"]);
    });

    test("the model sees what today's engine does with a kubeconfig a re-run step prints: every object previews as changed", async () => {
        // The design this replaced: the provider's kubeconfig was cluster-ready's stdout. Rewire the
        // recording that way and the same scale-out lists every object (shared/real-engine.md saw
        // exactly this on a real engine: "~ update" with "inputs that are not known during preview").
        const three = await runProgram({ ...minimal, workerCount: "3" });
        const gated = (r: ProgramRun): ProgramRun => ({
            ...r,
            resources: r.resources.map((x) =>
                x.type === "pulumi:providers:kubernetes"
                    ? { ...x, propertyDependencies: { ...x.propertyDependencies, kubeconfig: ["k8s-dev-cluster-cluster-ready"] } }
                    : x,
            ),
        });
        const changes = previewChanges(gated(run), gated(three));
        expect(unconfiguredProviders(gated(run), gated(three))).toEqual(["k8s-dev-cluster-k8s"]);
        expect(changes.get("k8s-dev-app-deployment")).toBe("update");
        expect(changes.get("k8s-dev-metallb-chart")).toBe("delete-children");
    });
});

/**
 * The scale previews, as docs/lifecycle.md states them. cluster-ready is replaced because it waits
 * for one more node; the provider does not change at all.
 */
const workerThreeSteps = ["admit", "images", "join", "prepare", "revoke-token", "upgrade", "upgrade-drain", "upgrade-uncordon"].map(
    (s) => `cluster-worker-3-${s}`,
);
const EXPECTED_SCALE_OUT = {
    create: [...workerThreeSteps, "lb-member-3", "nodes-worker-3", "nodes-worker-3-ready"],
    // The HTTP check re-runs because the load balancer path has one more member.
    replace: ["app-reachable", "cluster-cluster-ready"],
};
const EXPECTED_SCALE_IN = {
    delete: [...workerThreeSteps, "lb-member-3", "nodes-worker-3", "nodes-worker-3-ready"],
    replace: ["app-reachable", "cluster-cluster-ready"],
};
/** Everything on the new VM runs again; the control plane only re-admits it and waits for it to be Ready. */
const workerOneRerun = ["admit", "images", "join", "prepare", "revoke-token"].map((s) => `cluster-worker-1-${s}`);
const EXPECTED_WORKER_REPLACED = {
    replace: ["app-reachable", "cluster-cluster-ready", ...workerOneRerun, "lb-member-1", "nodes-worker-1", "nodes-worker-1-ready"].sort(),
    // The new VM's in-place upgrade step re-runs once it has joined (aligning it to the cluster's patch).
    update: ["cluster-worker-1-upgrade"],
};

/**
 * What `pulumi up` does to the workers' instance group, step by step, from a preview's changes: a
 * model of the engine's replacement order (step_generator.go: create-before-delete by default, the
 * old resource's delete at the end of the run; delete-before-replace first) and of the GCE calls
 * the membership resource makes (create: addInstances; delete: removeInstances of the VM's name,
 * skipped when the old state has retainOnDelete, step.go DeleteStep.Apply). A VM lost outside
 * Pulumi is gone from the group already: GCE drops a deleted VM from its unmanaged groups.
 */
function groupAfterUp(state: ProgramRun, program: ProgramRun, changes: Map<string, string>, group: Set<string>): Set<string> {
    const members = new Set(group);
    const vmName = (membership: RecordedResource) => String(membership.inputs.instance).replace(/^selfLink\//, "").replace(/^k8s-dev-nodes-/, "k8s-dev-");
    const atEnd: (() => void)[] = [];
    const remove = (old: RecordedResource) => () => {
        if (!old.retainOnDelete) {
            members.delete(vmName(old));
        }
    };
    for (const r of program.byType("gcp:compute/instanceGroupMembership:InstanceGroupMembership")) {
        const old = state.resources.find((x) => x.name === r.name);
        const change = changes.get(r.name);
        if (change === "create") {
            members.add(vmName(r));
        } else if (change === "replace" && old) {
            if (r.deleteBeforeReplace) {
                remove(old)();
                members.add(vmName(r));
            } else {
                members.add(vmName(r));
                atEnd.push(remove(old));
            }
        }
    }
    atEnd.forEach((f) => f());
    return members;
}

describe("previews of VM replacements", () => {
    test("a worker VM replaced: its steps run again, its membership is renewed, the HTTP check re-runs; the provider stays known, nothing in the cluster changes", () => {
        const changes = previewChanges(run, run, { replace: ["k8s-dev-nodes-worker-1"] });
        expect(kinds(changes)).toEqual(EXPECTED_WORKER_REPLACED);
        expect(unconfiguredProviders(run, run, { replace: ["k8s-dev-nodes-worker-1"] })).toEqual([]);
    });

    test("a worker VM lost outside Pulumi, refreshed and recreated: the same preview, and the new VM stays in the instance group", () => {
        const state = refreshedWithout(run, "k8s-dev-nodes-worker-1");
        const changes = previewChanges(state, run);
        expect(kinds(changes)).toEqual({ ...EXPECTED_WORKER_REPLACED, create: ["nodes-worker-1"], replace: EXPECTED_WORKER_REPLACED.replace.filter((n) => n !== "nodes-worker-1") });
        expect(inClusterChanges(run, changes)).toEqual([]);
        // The lost VM already left the group; its membership is replaced create-before-delete, and
        // the old membership's delete, at the end of the run, must not take the new VM out.
        const before = new Set(["k8s-dev-worker-2"]);
        expect([...groupAfterUp(state, run, changes, before)].sort()).toEqual(["k8s-dev-worker-1", "k8s-dev-worker-2"]);
        expect(run.get("k8s-dev-lb-member-1").retainOnDelete).toBe(true);
    });
});

/**
 * What the engine deletes, on a delete-before-replace of `root`, before `root` itself goes
 * (step_generator.go calculateDependentReplacements): the resources that are replaced and reach it
 * through property dependencies, a replacementTrigger or their provider, each link replaced too.
 * `dependsOn` alone is not followed.
 */
function replacedBeforeRoot(r: ProgramRun, changes: Map<string, string>, root: string): Set<string> {
    const fanOut = new Set<string>([root]);
    let grew = true;
    while (grew) {
        grew = false;
        for (const x of r.resources) {
            if (fanOut.has(x.name) || changes.get(x.name) !== "replace") {
                continue;
            }
            const links = [...x.dataDependencies, ...x.replacementTriggerDependencies, ...(x.provider ? [x.provider] : [])];
            if (links.some((l) => fanOut.has(l))) {
                fanOut.add(x.name);
                grew = true;
            }
        }
    }
    fanOut.delete(root);
    return fanOut;
}

describe("previews of the other transitions in docs/lifecycle.md", () => {
    test("control-plane VM replaced: a new cluster; everything in the old one is deleted while it still runs, every worker re-joins in place", () => {
        const root = "k8s-dev-nodes-control-plane";
        const changes = previewChanges(run, run, { replace: [root] });
        const of = (n: string) => changes.get(`k8s-dev-${n}`);
        expect(run.get(root).deleteBeforeReplace).toBe(true);
        for (const s of ["ready"]) {
            expect(of(`nodes-control-plane-${s}`)).toBe("replace");
        }
        for (const s of ["prepare", "images", "init"]) {
            expect(of(`cluster-control-plane-${s}`)).toBe("replace");
        }
        for (const w of ["worker-1", "worker-2"]) {
            // A new token from the new control plane; the join re-runs on the same VM (an update:
            // kubeadm-join.sh sees a new cluster UID, resets the node and joins the new cluster).
            expect([of(`cluster-${w}-admit`), of(`cluster-${w}-join`), of(`cluster-${w}-revoke-token`)]).toEqual(["replace", "update", "replace"]);
            // Workers are reached through the control plane, pinned to its host key (docs/node-access.md):
            // the new key re-runs their prepare and image steps as updates, which are no-ops there.
            expect([of(`nodes-${w}`), of(`nodes-${w}-ready`)]).toEqual([undefined, undefined]);
            expect([of(`cluster-${w}-prepare`), of(`cluster-${w}-images`)]).toEqual(["update", "update"]);
        }
        // The provider names a new cluster (a new init), so every Kubernetes object is created anew.
        expect(of("cluster-k8s")).toBe("replace");
        const k8sObjects = run.resources.filter((r) => r.custom && r.type.startsWith("kubernetes:"));
        expect(k8sObjects.length).toBeGreaterThan(5);
        for (const o of k8sObjects) {
            expect({ name: o.name, change: changes.get(o.name) }).toEqual({ name: o.name, change: "replace" });
        }
        // The VM is delete-before-replace, so the engine deletes all of them, and the provider, before
        // the old VM: through the old provider, while the old cluster still answers. No
        // PULUMI_K8S_DELETE_UNREACHABLE is needed.
        const first = replacedBeforeRoot(run, changes, root);
        expect(first).toContain("k8s-dev-cluster-k8s");
        for (const o of k8sObjects) {
            expect({ name: o.name, deletedFirst: first.has(o.name) }).toEqual({ name: o.name, deletedFirst: true });
        }
        // The API address, the network, the load balancer and the cluster's identity stay.
        expect([...changes.keys()].filter((n) => run.get(n).type.startsWith("gcp:") || run.get(n).type.startsWith("tls:")).sort()).toEqual([root]);
    });

    test("control-plane VM replaced in two steps (npm run replace:control-plane): the VM's replacement no longer plans any provider", () => {
        // Step 1, `pulumi destroy --target <provider> --target-dependents`, leaves the state without
        // the provider and everything that depends on it; step 2 replaces the VM from there.
        const provider = "k8s-dev-cluster-k8s";
        const gone = new Set(run.resources.filter((r) => r.name === provider || transitiveDependencies(run, r.name).has(provider)).map((r) => r.name));
        expect([...gone].filter((n) => run.get(n).type.startsWith("kubernetes:")).length).toBeGreaterThan(5);
        const afterStepOne = { ...run, resources: run.resources.filter((r) => !gone.has(r.name)) };
        const root = "k8s-dev-nodes-control-plane";
        const changes = previewChanges(afterStepOne, run, { replace: [root] });
        // Nothing of step 2's delete-before-replace fan-out is a provider resource or goes through one.
        expect([...replacedBeforeRoot(run, changes, root)].filter((n) => gone.has(n))).toEqual([]);
        expect(changes.get(provider)).toBe("create");
        for (const n of gone) {
            expect({ n, change: changes.get(n) ?? (run.get(n).custom ? "none" : "component") }).toEqual({ n, change: run.get(n).custom ? "create" : "component" });
        }
    });

    test("machine type change: the VMs are updated in place, nothing else changes in the preview", async () => {
        const bigger = await runProgram({ ...minimal, machineType: "e2-standard-2" });
        const changes = previewChanges(run, bigger);
        expect(Object.fromEntries(changes)).toEqual({
            "k8s-dev-nodes-control-plane": "update",
            "k8s-dev-nodes-worker-1": "update",
            "k8s-dev-nodes-worker-2": "update",
        });
        for (const vm of bigger.byType("gcp:compute/instance:Instance")) {
            // Stop, resize, start: no replacement, so no new VM and no re-provisioning.
            expect(vm.inputs.allowStoppingForUpdate).toBe(true);
        }
    });
});
