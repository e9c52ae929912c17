/**
 * Runs a tools/ script against a stub `pulumi` that records each call (with the
 * PULUMI_K8S_DELETE_UNREACHABLE it saw), answers `stack export` with a given state and
 * `stack output` with a given API endpoint, and succeeds at everything else.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export interface StubbedRun {
    status: number | null;
    stdout: string;
    stderr: string;
    /** Every `pulumi` call: "<args>|K8S_DELETE_UNREACHABLE=<value or unset>", then "|NEW_CLUSTER=<value>" when KUBEADM_GCP_NEW_CLUSTER is set. */
    calls: string[];
}

export function runWithStubPulumi(tool: string, args: string[], state: unknown, apiEndpoint = "https://127.0.0.1:1"): StubbedRun {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-stub-"));
    const log = path.join(dir, "calls.log");
    fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify(state));
    fs.writeFileSync(
        path.join(dir, "pulumi"),
        `#!/usr/bin/env bash\nprintf '%s|K8S_DELETE_UNREACHABLE=%s%s\\n' "$*" "\${PULUMI_K8S_DELETE_UNREACHABLE:-unset}" "\${KUBEADM_GCP_NEW_CLUSTER:+|NEW_CLUSTER=\$KUBEADM_GCP_NEW_CLUSTER}" >>"${log}"\n` +
            `[[ $1 == stack && $2 == export ]] && cat "${dir}/state.json"\n` +
            `[[ $1 == stack && $2 == output ]] && echo "${apiEndpoint}"\nexit 0\n`,
        { mode: 0o755 },
    );
    const result = spawnSync("bash", [path.join(__dirname, "..", "..", "tools", tool), ...args], {
        encoding: "utf8",
        env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir },
    });
    const calls = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [];
    fs.rmSync(dir, { recursive: true, force: true });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
}

/** A TCP server on loopback that accepts connections: an API endpoint that answers. */
export async function listening(): Promise<{ url: string; close: () => void }> {
    const server = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return { url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`, close: () => server.close() };
}
