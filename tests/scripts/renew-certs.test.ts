import * as fs from "fs";
import * as path from "path";
import { callsTo, calls, clearCalls, createSandbox, existsRoot, readRoot, removeSandboxes, runScript, Sandbox, setState, snapshotRoot, writeRoot } from "./harness";

const components = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];
const day = 86_400_000;
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** A control plane whose admin credentials expire in `days` days, with its four static Pod manifests. */
function controlPlane(days: number): Sandbox {
    const sb = createSandbox();
    writeRoot(sb, "etc/kubernetes/admin.conf", "apiVersion: v1\nkind: Config\n");
    for (const c of components) {
        writeRoot(sb, `etc/kubernetes/manifests/${c}.yaml`, `kind: Pod\nmetadata: {name: ${c}}\n`);
    }
    setState(sb, "admin-expiry", rfc3339(Date.now() + days * day));
    setState(sb, "api-up");
    return sb;
}

const renew = (sb: Sandbox) => runScript(sb, "renew-certs", { RENEW_WITHIN_DAYS: "30" }, { env: { POLL_INTERVAL_SECONDS: "0" } });

afterAll(removeSandboxes);

describe("renew-certs.sh", () => {
    test("outside the window: prints the expiry and changes nothing", () => {
        const sb = controlPlane(200);
        const before = snapshotRoot(sb);
        const result = renew(sb);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe(`${fs.readFileSync(path.join(sb.state, "admin-expiry"), "utf8")}\n`);
        expect(result.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
        expect(callsTo(sb, "kubeadm")).toEqual([`kubeadm certs check-expiration -o jsonpath={.certificates[?(@.name=="admin.conf")].expirationDate} --rootfs ${sb.root}`]);
        expect(callsTo(sb, "crictl")).toEqual([]);
        expect(snapshotRoot(sb)).toEqual(before);
    });

    test("inside the window: renews every certificate, restarts each static Pod by moving its manifest out and back, prints the new expiry; a re-run is a no-op", () => {
        const sb = controlPlane(10);
        const before = snapshotRoot(sb);
        const result = renew(sb);
        expect(result.stderr).not.toMatch(/ERROR/);
        expect(result.status).toBe(0);
        const printed = Date.parse(result.stdout.trim());
        expect(printed).toBeGreaterThan(Date.now() + 364 * day);
        expect(callsTo(sb, "kubeadm")).toContain(`kubeadm certs renew all --rootfs ${sb.root}`);

        // Per component: stopped (manifest out) then running again (manifest back), etcd first.
        const crictl = callsTo(sb, "crictl").map((l) => /--name \^(.*)\$/.exec(l)![1]);
        expect([...new Set(crictl)]).toEqual(components);
        // The manifests are back byte for byte, nothing is left parked.
        expect(snapshotRoot(sb)).toEqual(before);
        expect(existsRoot(sb, "etc/kubernetes/manifests-parked-for-restart")).toBe(false);
        // The API answers before the new expiry is read.
        const log = calls(sb);
        expect(log.findIndex((l) => / get --raw \/readyz$/.test(l))).toBeLessThan(log.lastIndexOf(callsTo(sb, "kubeadm").at(-1)!));

        clearCalls(sb);
        const again = renew(sb);
        expect(again.stdout).toBe(result.stdout);
        expect(callsTo(sb, "kubeadm").filter((l) => / renew /.test(l))).toEqual([]);
        expect(callsTo(sb, "crictl")).toEqual([]);
    });

    test("already expired counts as inside the window", () => {
        const sb = controlPlane(-3);
        const result = renew(sb);
        expect(result.status).toBe(0);
        expect(callsTo(sb, "kubeadm")).toContain(`kubeadm certs renew all --rootfs ${sb.root}`);
        expect(Date.parse(result.stdout.trim())).toBeGreaterThan(Date.now());
    });

    test("puts back a manifest that an interrupted run left parked", () => {
        const sb = controlPlane(200);
        const manifest = readRoot(sb, "etc/kubernetes/manifests/kube-apiserver.yaml");
        writeRoot(sb, "etc/kubernetes/manifests-parked-for-restart/kube-apiserver.yaml", manifest);
        fs.rmSync(`${sb.root}/etc/kubernetes/manifests/kube-apiserver.yaml`);
        const result = renew(sb);
        expect(result.status).toBe(0);
        expect(readRoot(sb, "etc/kubernetes/manifests/kube-apiserver.yaml")).toBe(manifest);
        expect(existsRoot(sb, "etc/kubernetes/manifests-parked-for-restart")).toBe(false);
    });

    test("fails when the renewal did not move the expiry", () => {
        const sb = controlPlane(10);
        // A kubeadm whose renewal has no effect: the stub's renew writes a new expiry, this one keeps the old.
        fs.writeFileSync(`${sb.bin}/kubeadm`, `#!/usr/bin/env bash\n. "\${0%/*}/_stub.sh"\n[[ $2 == renew ]] || cat "$S/admin-expiry"\n`);
        const result = renew(sb);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/admin\.conf still expires at .* after 'kubeadm certs renew all'/);
    });

    test("refuses to run on a node that is not a control plane", () => {
        const sb = createSandbox();
        const result = renew(sb);
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/admin\.conf not found/);
        expect(calls(sb)).toEqual([]);
    });
});
