/**
 * Runs the provisioning scripts exactly as they ship (renderScript output) against a sandbox:
 *   - FS_ROOT points at a temporary directory standing in for "/";
 *   - PATH holds only the stubs of tests/scripts/fixtures/stubs (apt-get, systemctl, kubeadm, ...) and
 *     a directory of links to a short allow-list of harmless host tools (coreutils, sed, awk, grep).
 *     Any other command is "not found", so no real system-changing command can ever run;
 *   - the stubs append every call to a log and keep the state they emulate in a state directory.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { renderScript, scriptsDir } from "../../components/scripts";

export const fixturesDir = path.join(__dirname, "fixtures");
const stubsDir = path.join(fixturesDir, "stubs");

/** Host tools the scripts and stubs may use: read-only or confined to the paths they are given. */
const hostTools = [
    "bash", "cat", "sed", "awk", "grep", "mktemp", "cmp", "mv", "cp", "rm", "mkdir", "chmod", "tr",
    "date", "sleep", "head", "tail", "dirname", "basename", "touch", "timeout", "env", "ls", "wc",
    // Read-only: kubeadm-join.sh pins the node's cluster CA with them.
    "openssl", "sha256sum",
    // etcd-backup.sh: listing a directory standing in for the bucket, and unpacking etcd's release.
    "find", "sort", "cut", "rmdir", "tar",
];

function findOnHostPath(tool: string): string {
    for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(path.delimiter)) {
        const candidate = path.join(dir, tool);
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            return candidate;
        } catch {
            // not in this directory
        }
    }
    throw new Error(`host tool ${tool} not found on PATH`);
}

const hostToolPaths = new Map(hostTools.map((t) => [t, findOnHostPath(t)]));
export const bashPath = hostToolPaths.get("bash")!;

/**
 * perl, for fixtures/fcntl-lock.pl (holding and testing apt-style fcntl locks). Not on the scripts'
 * PATH: the stubs get it as STUB_PERL. Undefined when the host has none.
 */
export const perlPath: string | undefined = (() => {
    try {
        return findOnHostPath("perl");
    } catch {
        return undefined;
    }
})();

const lockHolders: ChildProcess[] = [];

/**
 * Holds apt's lists lock under the sandbox (an fcntl lock, like apt's own) from another process for
 * `seconds`, as apt-daily does; the stubbed apt-get then fails like apt when STUB_PERL is set.
 * Resolves once the lock is held. releaseAptLocks (afterAll) ends every holder still running.
 */
export async function holdAptListsLock(sb: Sandbox, seconds: number): Promise<ChildProcess> {
    if (!perlPath) {
        throw new Error("holding an apt lock needs perl on the host");
    }
    const dir = path.join(sb.root, "var/lib/apt/lists");
    fs.mkdirSync(dir, { recursive: true });
    const holder = spawn(perlPath, [path.join(fixturesDir, "fcntl-lock.pl"), "hold", path.join(dir, "lock"), String(seconds)]);
    lockHolders.push(holder);
    await new Promise<void>((resolve, reject) => {
        holder.stdout!.on("data", (d: Buffer) => d.toString().includes("locked") && resolve());
        holder.on("error", reject);
        holder.on("exit", () => reject(new Error("lock holder exited before locking")));
    });
    return holder;
}

export function releaseAptLocks(): void {
    lockHolders.splice(0).forEach((h) => h.kill());
}

export interface Sandbox {
    dir: string;
    /** Stands in for "/" (FS_ROOT). */
    root: string;
    /** Stub state: pkg/<name>, hold/<name>, images/<ref>, nodes/<name>, enabled-<unit>, ... */
    state: string;
    logFile: string;
    bin: string;
    tools: string;
}

export interface RunResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

/**
 * The stubs as each sandbox gets them: run by the host's bash itself. Their `#!/usr/bin/env bash`
 * would add an exec of env to each of the hundreds of stub calls a test file makes.
 */
const stubs: [string, string][] = fs
    .readdirSync(stubsDir)
    .map((stub) => [stub, fs.readFileSync(path.join(stubsDir, stub), "utf8").replace(/^#!\/usr\/bin\/env bash\n/, `#!${bashPath}\n`)]);

const sandboxes: string[] = [];

export function createSandbox(): Sandbox {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "provision-test-"));
    sandboxes.push(dir);
    const sb: Sandbox = {
        dir,
        root: path.join(dir, "root"),
        state: path.join(dir, "state"),
        logFile: path.join(dir, "calls.log"),
        bin: path.join(dir, "bin"),
        tools: path.join(dir, "tools"),
    };
    for (const d of [sb.root, sb.state, sb.bin, sb.tools, path.join(dir, "tmp")]) {
        fs.mkdirSync(d, { recursive: true });
    }
    for (const [stub, text] of stubs) {
        fs.writeFileSync(path.join(sb.bin, stub), text, { mode: 0o755 });
    }
    for (const [tool, target] of hostToolPaths) {
        fs.symlinkSync(target, path.join(sb.tools, tool));
    }
    fs.writeFileSync(sb.logFile, "");
    return sb;
}

export function removeSandboxes(): void {
    for (const dir of sandboxes.splice(0)) {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

let runCount = 0;

/** Renders scripts/<name>.sh with `settings` and runs it with bash in the sandbox. */
export function runScript(
    sb: Sandbox,
    name: string,
    settings: Record<string, string>,
    opts: { input?: string; env?: Record<string, string> } = {},
): RunResult {
    const file = path.join(sb.dir, `${name}-${++runCount}.sh`);
    fs.writeFileSync(file, renderScript(name, settings));
    const result = spawnSync(bashPath, [file], {
        input: opts.input ?? "",
        encoding: "utf8",
        timeout: 20000,
        env: {
            PATH: `${sb.bin}:${sb.tools}`,
            HOME: sb.dir,
            TMPDIR: path.join(sb.dir, "tmp"),
            LC_ALL: "C",
            FS_ROOT: sb.root,
            STUB_STATE: sb.state,
            STUB_LOG: sb.logFile,
            STUB_FIXTURES: fixturesDir,
            RETRY_DELAY_SECONDS: "0",
            // A real containerd binary for the containerd stub to run instead of its fixture (the
            // control-plane test tier builds one).
            ...(process.env.CONTAINERD_BIN ? { CONTAINERD_BIN: process.env.CONTAINERD_BIN } : {}),
            ...opts.env,
        },
    });
    // EPIPE: the script ended before reading all of its stdin, as one that refuses its settings does
    // (a race: more likely on a loaded machine). Its status and output are still whole.
    if (result.error && !((result.error as NodeJS.ErrnoException).code === "EPIPE" && result.status !== null)) {
        throw result.error;
    }
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every stub call so far, one "command arg1 arg2 ..." line each. */
export function calls(sb: Sandbox): string[] {
    return fs.readFileSync(sb.logFile, "utf8").split("\n").filter((l) => l !== "");
}

/** Stub calls of one command. */
export function callsTo(sb: Sandbox, command: string): string[] {
    return calls(sb).filter((l) => l === command || l.startsWith(`${command} `));
}

export function clearCalls(sb: Sandbox): void {
    fs.writeFileSync(sb.logFile, "");
}

export function writeRoot(sb: Sandbox, rel: string, content: string): void {
    const file = path.join(sb.root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
}

export function readRoot(sb: Sandbox, rel: string): string {
    return fs.readFileSync(path.join(sb.root, rel), "utf8");
}

export function existsRoot(sb: Sandbox, rel: string): boolean {
    return fs.existsSync(path.join(sb.root, rel));
}

/** Creates a stub state entry, e.g. setState(sb, "nodes/w-1") or setState(sb, "pkg/curl", "8.5.0"). */
export function setState(sb: Sandbox, rel: string, content = ""): void {
    const file = path.join(sb.state, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
}

export function hasState(sb: Sandbox, rel: string): boolean {
    return fs.existsSync(path.join(sb.state, rel));
}

/** The stub's file name for an image reference (crictl/kubeadm stubs: "/" and ":" become "_"). */
export function imageKey(ref: string): string {
    return `images/${ref.replace(/[/:]/g, "_")}`;
}

/** Every file under the sandbox root with its content, to compare runs byte for byte. */
export function snapshotRoot(sb: Sandbox): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) {
                walk(full);
            } else {
                const mode = (fs.statSync(full).mode & 0o777).toString(8);
                out[path.relative(sb.root, full)] = `${mode}:${fs.readFileSync(full, "utf8")}`;
            }
        }
    };
    walk(sb.root);
    return out;
}

/** The lines of a TOML table (from its header to the next header), or undefined when absent. */
export function tomlTable(text: string, header: string): string[] | undefined {
    const lines = text.split("\n");
    const start = lines.findIndex((l) => l.trim() === header);
    if (start < 0) {
        return undefined;
    }
    const rest = lines.slice(start + 1);
    const end = rest.findIndex((l) => l.trim().startsWith("["));
    return (end < 0 ? rest : rest.slice(0, end)).map((l) => l.trim()).filter((l) => l !== "");
}

export function listScripts(): string[] {
    return fs
        .readdirSync(scriptsDir)
        .filter((f) => f.endsWith(".sh"))
        .map((f) => f.replace(/\.sh$/, ""))
        .sort();
}

/** A bootstrap-token-shaped string anywhere in text. */
export const tokenLike = /[a-z0-9]{6}\.[a-z0-9]{16}/;
