/**
 * components/upgrade.ts: the pure decisions directly; the steps' graph under the mock runtime.
 */
import {
    ClusterState, credentialsRenewalKey, KubernetesChangeRefused, planKubernetesChange, renewalDue, selfStackReferenceName,
} from "../components/upgrade";
import { renderedMarker } from "../components/scripts";
import { supportedKubernetesMinors, versions } from "../components/versions";
import { Recording } from "./helpers/program";
import { buildUpgradeSteps as buildSteps, readClusterStateUnderMocks } from "./helpers/upgrade";

describe("planKubernetesChange", () => {
    const supported = ["1.35", "1.36", "1.37", "1.38"];

    test.each([
        [undefined, "1.36", "none"], // a new stack: the cluster is created at the requested minor
        ["v1.36.3", "1.36", "none"],
        ["v1.36.0", "1.36", "none"], // patches are the upgrade step's business, not a plan change
        ["v1.36.3", "1.37", "upgrade"],
        ["v1.37.2", "1.38", "upgrade"],
    ])("running %s, requested %s: %s", (current, requested, expected) => {
        expect(planKubernetesChange(current, requested, supported)).toBe(expected);
    });

    test.each([
        ["v1.36.3", "1.38", /the cluster runs v1\.36\.3 and 1\.38 was requested, which skips 1\.37; kubeadm upgrades one minor at a time \(set 1\.37, run pulumi up, then 1\.38\)/],
        ["v1.37.2", "1.35", /the cluster runs v1\.37\.2 and 1\.35 was requested; kubeadm cannot downgrade a cluster \(set it back to 1\.37\)/],
        ["v1.37.2", "1.36", /the cluster runs v1\.37\.2 and 1\.36 was requested; kubeadm cannot downgrade/],
        ["v1.36.3", "1.39", /the cluster runs v1\.36\.3 and 1\.39 was requested, which the pinned tools do not support; supported: 1\.35, 1\.36, 1\.37, 1\.38/],
        [undefined, "1.34", /^kubernetesVersion: 1\.34 was requested, which the pinned tools do not support/],
        ["garbage", "1.36", /recorded cluster version 'garbage' is not a Kubernetes version/],
    ])("running %s, requested %s: refused, naming both", (current, requested, message) => {
        const change = planKubernetesChange(current, requested, supported);
        expect(change).toBeInstanceOf(KubernetesChangeRefused);
        const refused = change as KubernetesChangeRefused;
        expect(refused.message).toMatch(message);
        expect(refused.current).toBe(current);
        expect(refused.requested).toBe(requested);
    });

    test("the pinned set's list holds the default minor and nothing it cannot run", () => {
        expect(supportedKubernetesMinors).toContain(versions.kubernetesMinor);
        expect(planKubernetesChange(undefined, versions.kubernetesMinor, supportedKubernetesMinors)).toBe("none");
    });
});

describe("credentials renewal", () => {
    const day = 86_400_000;
    const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

    test("renewal is due within 30 days of the expiry and after it, not before", () => {
        const now = new Date("2027-06-01T00:00:00Z");
        expect(renewalDue(undefined, now)).toBe(false);
        expect(renewalDue(at(now.getTime() + 31 * day), now)).toBe(false);
        expect(renewalDue(at(now.getTime() + 30 * day), now)).toBe(true);
        expect(renewalDue(at(now.getTime() - day), now)).toBe(true);
        expect(() => renewalDue("next year", now)).toThrow(/adminCredentialsExpire: 'next year' is not an RFC 3339 date/);
    });

    test("three years of daily previews: the key changes once a year, when renewal is due, and never on the days between", () => {
        // What the program and the cluster do: the key in state is what the last `up` used; a changed
        // key is a diff, `up` runs renew-certs.sh, which renews when due (one more year) and records the expiry.
        const created = Date.parse("2026-11-26T09:00:00Z");
        let state: ClusterState = {};
        let certificatesExpire = created + 365 * day; // kubeadm init
        const up = (now: number, key: string) => {
            if (renewalDue(at(certificatesExpire), new Date(now))) {
                certificatesExpire = now + 365 * day;
            }
            state = { ...state, adminCredentialsExpire: at(certificatesExpire), credentialsRenewal: key };
        };
        up(created, credentialsRenewalKey(state, new Date(created)));
        expect(state.credentialsRenewal).toBe("initial");

        const diffs: string[] = [];
        for (let now = created + day; now < created + 3 * 365 * day; now += day) {
            const key = credentialsRenewalKey(state, new Date(now));
            if (key !== state.credentialsRenewal) {
                diffs.push(at(now).slice(0, 10));
                up(now, key);
            }
            expect(Date.parse(state.adminCredentialsExpire!)).toBeGreaterThan(now); // never expired
        }
        // Due 30 days before each expiry: 2027-10-27, then a year after that renewal, and so on.
        expect(diffs).toEqual(["2027-10-27", "2028-09-26", "2029-08-27"]);
    });

    test("a renewal done elsewhere (an upgrade, by hand) is picked up without another diff", () => {
        const now = new Date("2027-10-30T00:00:00Z");
        const due: ClusterState = { adminCredentialsExpire: "2027-11-26T09:00:00Z", credentialsRenewal: "initial" };
        expect(credentialsRenewalKey(due, now)).toBe("renew-before-2027-11-26T09:00:00Z");
        // After `kubeadm upgrade apply` the credentials step re-ran (new version) and recorded the new expiry.
        const upgraded: ClusterState = { adminCredentialsExpire: "2028-10-20T09:00:00Z", credentialsRenewal: "initial" };
        expect(credentialsRenewalKey(upgraded, now)).toBe("initial");
    });
});

/** Resources that must have completed before `name` (transitively, through data and dependsOn). */
function ancestors(rec: Recording, name: string, seen = new Set<string>()): Set<string> {
    const r = rec.get(name);
    for (const dep of [...r.dataDependencies, ...r.dependsOn]) {
        if (!seen.has(dep)) {
            seen.add(dep);
            ancestors(rec, dep, seen);
        }
    }
    return seen;
}

describe("upgrade steps under mocks", () => {
    let rec: Awaited<ReturnType<typeof buildSteps>>;
    beforeAll(async () => {
        rec = await buildSteps("1.37");
    });
    const workerSteps = (i: number) => [`k8s-worker-${i}-upgrade-drain`, `k8s-worker-${i}-upgrade`, `k8s-worker-${i}-upgrade-uncordon`];
    const create = (name: string): string => rec.get(name).inputs.create;

    test("the control plane's upgrade runs the configured minor, after kubeadm init, on the control plane", () => {
        const cp = rec.get("k8s-control-plane-upgrade");
        expect(cp.inputs.create).toContain(renderedMarker("upgrade-control-plane"));
        expect(cp.inputs.create).toContain("export K8S_MINOR='1.37'");
        expect(cp.inputs.create).toContain("export NODE_NAME='k8s-control-plane'");
        expect(cp.inputs.connection.host).toBe("203.0.113.10");
        expect(cp.dependsOn).toEqual(["k8s-control-plane-init"]);
        expect(cp.inputs.triggers).toBeUndefined(); // a replaced worker must not re-run it
        expect(cp.parent).toBe("k8s");
    });

    test("the control plane's upgrade precedes every worker's steps", () => {
        for (const i of [1, 2, 3]) {
            for (const step of workerSteps(i)) {
                expect(ancestors(rec, step)).toContain("k8s-control-plane-upgrade");
            }
        }
    });

    test("per worker: drain (control plane) -> upgrade (the worker) -> uncordon (control plane), the drain after its join", () => {
        for (const i of [1, 2, 3]) {
            const [drain, upgrade, uncordon] = workerSteps(i);
            expect(ancestors(rec, upgrade)).toContain(drain);
            expect(ancestors(rec, uncordon)).toContain(upgrade);
            expect(rec.get(drain).dependsOn).toEqual([`k8s-worker-${i}-join`]);
            expect(rec.get(drain).inputs.connection.host).toBe("203.0.113.10");
            expect(rec.get(upgrade).inputs.connection.host).toBe(`203.0.113.${19 + i}`);
            expect(rec.get(uncordon).inputs.connection.host).toBe("203.0.113.10");
            expect(create(drain)).toContain(`export NODE_NAME='k8s-worker-${i}'`);
            expect(create(upgrade)).toContain(renderedMarker("upgrade-worker"));
            expect(create(uncordon)).toContain(`export NODE_NAME='k8s-worker-${i}'`);
        }
    });

    test("the workers are serialized: each worker's drain waits for the previous worker's uncordon, and takes its version from it", () => {
        expect(create("k8s-worker-1-upgrade-drain")).toContain("export KUBERNETES_VERSION='stdout-of:k8s-control-plane-upgrade'");
        for (const i of [2, 3]) {
            const drain = `k8s-worker-${i}-upgrade-drain`;
            expect(ancestors(rec, drain)).toContain(`k8s-worker-${i - 1}-upgrade-uncordon`);
            expect(create(drain)).toContain(`export KUBERNETES_VERSION='stdout-of:k8s-worker-${i - 1}-upgrade-uncordon'`);
            // ... and no step of a later worker is an ancestor of an earlier one.
            for (const earlier of workerSteps(i - 1)) {
                expect(ancestors(rec, earlier)).not.toContain(drain);
            }
        }
        expect(create("k8s-worker-2-upgrade")).toContain("export KUBERNETES_VERSION='stdout-of:k8s-worker-2-upgrade-drain'");
        expect(rec.version).toBe("stdout-of:k8s-worker-3-upgrade-uncordon");
    });

    test("the credentials step follows the control plane's upgrade (which renews the certificates), not the workers'", () => {
        const credentials = rec.get("k8s-credentials");
        expect(credentials.inputs.create).toContain(renderedMarker("renew-certs"));
        expect(credentials.inputs.create).toContain("export RENEW_WITHIN_DAYS='30'");
        expect(credentials.inputs.triggers).toEqual(["stdout-of:k8s-control-plane-upgrade", "initial"]);
        expect(ancestors(rec, "k8s-credentials")).toContain("k8s-control-plane-upgrade");
        expect([...ancestors(rec, "k8s-credentials")].filter((a) => a.includes("worker"))).toEqual([]);
    });

    test("adding a worker adds its three steps and changes no other step", async () => {
        const bigger = await buildSteps("1.37", 4);
        const added = bigger.resources.map((r) => r.name).filter((n) => !rec.resources.some((r) => r.name === n));
        expect(added.sort()).toEqual(["k8s-worker-4-join", ...workerSteps(4)].sort());
        for (const r of rec.resources) {
            expect(bigger.get(r.name).inputs).toEqual(r.inputs);
        }
    });

    test("the SSH key stays secret in every step", () => {
        for (const step of rec.byType("command:remote:Command").filter((r) => /upgrade|credentials/.test(r.name))) {
            expect(step.secretInputs).toContain("connection");
        }
    });

    test("1.36 -> 1.37: only the control plane's upgrade step changes inputs; the rest follow through its output", async () => {
        const before = await buildSteps("1.36");
        const changed = rec.resources
            .filter((r) => JSON.stringify(r.inputs) !== JSON.stringify(before.get(r.name).inputs))
            .map((r) => r.name);
        expect(before.resources.map((r) => r.name).sort()).toEqual(rec.resources.map((r) => r.name).sort());
        expect(changed).toEqual(["k8s-control-plane-upgrade"]);
    });

    test("one worker, then none: the chain still ends in a version", async () => {
        const one = await buildSteps("1.37", 1);
        expect(one.version).toBe("stdout-of:k8s-worker-1-upgrade-uncordon");
        const none = await buildSteps("1.37", 0);
        expect(none.version).toBe("stdout-of:k8s-control-plane-upgrade");
    });
});

describe("readClusterState", () => {
    test("reads what the last deployment of this stack exported, through a reference to the stack itself", async () => {
        const outputs = { kubernetesVersion: "v1.36.3", adminCredentialsExpire: "2027-11-26T09:00:00Z", credentialsRenewal: "initial" };
        const { state, reference } = await readClusterStateUnderMocks(outputs, "dev");
        expect(state).toEqual(outputs);
        // A diy backend (organization "organization"): the bare stack name, which both of its layouts read.
        expect(reference.inputs.name).toBe("dev");
    });

    test("before the first deployment every field is undefined", async () => {
        const { state } = await readClusterStateUnderMocks({});
        expect(state).toEqual({ kubernetesVersion: undefined, adminCredentialsExpire: undefined, credentialsRenewal: undefined });
    });
});

/**
 * The diy (file) backend's two readers of a stack reference, as pulumi/pulumi pkg/backend/diy/store.go
 * has them: the legacy layout (no .pulumi/meta.yaml with version 1) takes only a stack name
 * (tokens.ParseStackName: letters, digits, "-", "_", "."); the project layout takes <stack>,
 * organization/<stack> or organization/<project>/<stack>, a missing project being the current one.
 * Each returns the stack it names as "<project>/<stack>" (legacy: "/<stack>"), or throws as the CLI fails.
 */
const stackNameRe = /^[A-Za-z0-9_.-]+$/;
const diyReaders = {
    legacy: (ref: string) => {
        if (!stackNameRe.test(ref)) {
            throw new Error(`a stack name may only contain alphanumeric, hyphens, underscores, or periods: ${ref}`);
        }
        return `/${ref}`;
    },
    project: (ref: string, currentProject: string) => {
        const parts = ref.split("/");
        const [org, project, name] = parts.length === 3 ? parts : parts.length === 2 ? [parts[0], currentProject, parts[1]] : ["organization", currentProject, parts[0]];
        if (org !== "organization") {
            throw new Error("organization name must be 'organization'");
        }
        if (!stackNameRe.test(name)) {
            throw new Error(`invalid stack name ${name}`);
        }
        return `${project}/${name}`;
    },
};

describe("selfStackReferenceName: the program finds its own last deployment on every backend", () => {
    test.each(["dev", "prod.eu-1"])("a diy backend, legacy layout or project layout: stack %s reads itself", (stack) => {
        const ref = selfStackReferenceName("organization", "kubeadm-gcp", stack);
        expect(diyReaders.legacy(ref)).toBe(`/${stack}`);
        expect(diyReaders.project(ref, "kubeadm-gcp")).toBe(`kubeadm-gcp/${stack}`);
    });

    test("the fully qualified name the program used before fails on the legacy layout (what this replaced)", () => {
        expect(() => diyReaders.legacy("organization/kubeadm-gcp/dev")).toThrow(/may only contain/);
    });

    test("Pulumi Cloud (a real organization): fully qualified, so another default organization cannot be read instead", () => {
        expect(selfStackReferenceName("acme", "kubeadm-gcp", "dev")).toBe("acme/kubeadm-gcp/dev");
    });
});
