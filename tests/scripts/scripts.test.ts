import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { renderScript, scriptsDir } from "../../components/scripts";
import { bashPath, createSandbox, listScripts, removeSandboxes, runScript } from "./harness";

const sourceLine = 'source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"';

/** The settings each script is called with (the contract with the TypeScript program). */
const contract: Record<string, Record<string, string>> = {
    "prepare-node": { K8S_MINOR: "1.36", CONTAINERD_VERSION: "2.2.1-1~ubuntu.24.04~noble" },
    "pull-images": { KUBEADM_IMAGES: "node", IMAGES: "", MANIFEST_URLS: "" },
    "kubeadm-init": {
        NODE_NAME: "k8s-cp-0", ADVERTISE_ADDRESS: "10.240.0.2", PUBLIC_ADDRESS: "203.0.113.7", POD_CIDR: "10.244.0.0/16",
        SERVICE_CIDR: "10.96.0.0/12", CLUSTER_NAME: "kubeadm-gcp",
        FLANNEL_MANIFEST_URL: "https://github.com/flannel-io/flannel/releases/download/v0.28.9/kube-flannel.yml",
    },
    "join-token": { WORKER_NAME: "k8s-worker-1" },
    "revoke-join-token": { WORKER_NAME: "k8s-worker-1" },
    "kubeadm-join": {
        NODE_NAME: "k8s-worker-1",
        CA_CERT_HASH: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        CLUSTER_UID: "3f2b8c1e-5d4a-4e6f-9a7b-0c1d2e3f4a5b",
    },
    "cluster-ready": { EXPECTED_NODES: "k8s-cp-0 k8s-worker-1", TIMEOUT_SECONDS: "600" },
    "drain-node": { NODE_NAME: "k8s-worker-1" },
    "upgrade-control-plane": { K8S_MINOR: "1.37", NODE_NAME: "k8s-cp-0" },
    "upgrade-drain": { NODE_NAME: "k8s-worker-1", KUBERNETES_VERSION: "v1.37.2" },
    "upgrade-worker": { KUBERNETES_VERSION: "v1.37.2" },
    "upgrade-uncordon": { NODE_NAME: "k8s-worker-1", KUBERNETES_VERSION: "v1.37.2" },
    "renew-certs": { RENEW_WITHIN_DAYS: "30" },
    "etcd-backup": { BACKUP_URL: "gs://k8s-dev-backups-bucket-1a2b3c4", ETCD_VERSION: "v3.6.8" },
};

/** Settings that may be empty or left out (they have defaults). */
const optional = new Set(["IMAGES", "MANIFEST_URLS", "TIMEOUT_SECONDS"]);

afterAll(removeSandboxes);

describe("provisioning scripts", () => {
    test("are exactly the scripts of the contract", () => {
        expect(listScripts()).toEqual(Object.keys(contract).sort());
    });

    describe.each(Object.keys(contract))("%s.sh", (name) => {
        const text = fs.readFileSync(path.join(scriptsDir, `${name}.sh`), "utf8");
        const lines = text.split("\n");

        test("uses bash strict mode and sources the shared library once, after set -euo pipefail", () => {
            expect(lines[0]).toBe("#!/usr/bin/env bash");
            const strict = lines.indexOf("set -euo pipefail");
            const source = lines.indexOf(sourceLine);
            expect(strict).toBeGreaterThan(0);
            expect(source).toBeGreaterThan(strict);
            expect(lines.filter((l) => l === sourceLine)).toHaveLength(1);
            expect(lines[source - 1]).toMatch(/^# shellcheck .*source=lib\/common\.sh/);
        });

        test("checks every setting of its contract with a ${VAR:?...} message", () => {
            for (const key of Object.keys(contract[name]).filter((k) => !optional.has(k))) {
                expect(text).toContain(`: "\${${key}:?${key} is required (`);
            }
        });

        test("renders into one self-contained program that bash can parse", () => {
            const rendered = renderScript(name, contract[name]);
            expect(rendered).not.toContain(sourceLine);
            expect(rendered).toContain('ROOT="${FS_ROOT:-}"');
            expect(rendered).toContain("retry() {");
            for (const [key, value] of Object.entries(contract[name])) {
                expect(rendered).toContain(`export ${key}='${value}'`);
            }
            const check = spawnSync(bashPath, ["-n"], { input: rendered, encoding: "utf8" });
            expect(check.stderr).toBe("");
            expect(check.status).toBe(0);
        });

        test("fails with a clear message, and calls nothing, when a required setting is missing", () => {
            const sb = createSandbox();
            const result = runScript(sb, name, {});
            expect(result.status).not.toBe(0);
            expect(result.stderr).toMatch(/[A-Z_]+ is required \(/);
            expect(fs.readFileSync(sb.logFile, "utf8")).toBe("");
        });
    });

    test("never reference the legacy Kubernetes package repositories", () => {
        const legacy = new RegExp(["apt", "kubernetes", "io"].join("\\.") + "|packages\\.cloud\\.google\\.com");
        for (const file of [...listScripts().map((n) => `${n}.sh`), "lib/common.sh"]) {
            expect(`${file}: ${fs.readFileSync(path.join(scriptsDir, file), "utf8")}`).not.toMatch(legacy);
        }
    });

    test("the retry helper bounds its attempts and backs off exponentially", () => {
        const lib = fs.readFileSync(path.join(scriptsDir, "lib", "common.sh"), "utf8");
        const script = `${lib}\nn=0\nflaky() { n=$((n + 1)); echo "try $n"; return 7; }\nretry flaky; echo "rc=$?"`;
        const result = spawnSync(bashPath, ["--norc", "-c", script], {
            encoding: "utf8",
            env: { PATH: process.env.PATH, RETRY_ATTEMPTS: "3", RETRY_DELAY_SECONDS: "0" },
        });
        expect(result.stdout).toBe("try 1\ntry 2\ntry 3\nrc=7\n");
        expect(result.stderr).toMatch(/attempt 1\/3 failed \(exit 7\)/);
        expect(result.stderr).toMatch(/giving up after 3 attempt/);
        // Doubling, capped: 1 -> 2 -> 4 -> 4.
        const timed = spawnSync(bashPath, ["--norc", "-c", `${lib}\nsleep() { echo "sleep $1"; }\nretry false || true`], {
            encoding: "utf8",
            env: { PATH: process.env.PATH, RETRY_ATTEMPTS: "5", RETRY_DELAY_SECONDS: "1", RETRY_MAX_DELAY_SECONDS: "4" },
        });
        expect(timed.stdout).toBe("sleep 1\nsleep 2\nsleep 4\nsleep 4\n");
    });

    test("the log helper writes to stderr only and masks anything shaped like a bootstrap token", () => {
        const lib = fs.readFileSync(path.join(scriptsDir, "lib", "common.sh"), "utf8");
        const result = spawnSync(bashPath, ["--norc", "-c", `${lib}\nLOG_TAG=t\nlog "token abcdef.0123456789abcdef, again abcdef.0123456789abcdef"`], {
            encoding: "utf8",
            env: { PATH: process.env.PATH },
        });
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/^\d\d:\d\d:\d\d \[t\] token <token redacted>, again <token redacted>\n$/);
    });
});
