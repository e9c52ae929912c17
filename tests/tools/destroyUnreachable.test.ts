/**
 * tools/destroy-unreachable.sh (`npm run destroy:unreachable`) against a stub `pulumi` that records
 * its calls and the environment they ran in.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

const tool = path.join(__dirname, "..", "..", "tools", "destroy-unreachable.sh");

const state = {
    deployment: {
        resources: [
            { urn: "urn:pulumi:dev::kubeadm-gcp::pulumi:pulumi:Stack::kubeadm-gcp-dev", type: "pulumi:pulumi:Stack" },
            { urn: "urn:x::ready", type: "command:remote:Command", inputs: { create: "hostname" } },
            { urn: "urn:x::worker-1-admit", type: "command:remote:Command", inputs: { create: "mint", delete: "drain" } },
            { urn: "urn:x::worker-2-admit", type: "command:remote:Command", inputs: { create: "mint", delete: "drain" } },
            { urn: "urn:x::vm", type: "gcp:compute/instance:Instance", inputs: { name: "vm" } },
        ],
    },
};

async function listening(): Promise<net.Server> {
    const server = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return server;
}

function runTool(args: string[], apiEndpoint = "https://127.0.0.1:1") {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "destroy-unreachable-"));
    const log = path.join(dir, "calls.log");
    fs.writeFileSync(path.join(dir, "state.json"), JSON.stringify(state));
    fs.writeFileSync(
        path.join(dir, "pulumi"),
        `#!/usr/bin/env bash\nprintf '%s|K8S_DELETE_UNREACHABLE=%s\\n' "$*" "\${PULUMI_K8S_DELETE_UNREACHABLE:-unset}" >>"${log}"\n` +
            `[[ $1 == stack && $2 == export ]] && cat "${dir}/state.json"\n` +
            `[[ $1 == stack && $2 == output ]] && echo "${apiEndpoint}"\nexit 0\n`,
        { mode: 0o755 },
    );
    const result = spawnSync("bash", [tool, ...args], {
        encoding: "utf8",
        env: { PATH: `${dir}:${process.env.PATH}`, HOME: dir },
    });
    const calls = fs.readFileSync(log, "utf8").trim().split("\n");
    fs.rmSync(dir, { recursive: true, force: true });
    return { ...result, calls };
}

describe("destroy-unreachable.sh: teardown when the cluster is already gone", () => {
    test("drops the drain steps (and their dependents) from the state unrun, then destroys with PULUMI_K8S_DELETE_UNREACHABLE", () => {
        const r = runTool(["--stack", "dev", "--yes"]);
        expect(r.status).toBe(0);
        expect(r.calls).toEqual([
            "stack output --stack dev apiEndpoint|K8S_DELETE_UNREACHABLE=unset",
            "stack export --stack dev|K8S_DELETE_UNREACHABLE=unset",
            "state delete --stack dev --target-dependents --yes urn:x::worker-1-admit|K8S_DELETE_UNREACHABLE=unset",
            "state delete --stack dev --target-dependents --yes urn:x::worker-2-admit|K8S_DELETE_UNREACHABLE=unset",
            "destroy --stack dev --yes|K8S_DELETE_UNREACHABLE=true",
        ]);
    });

    test("refuses, changing nothing, while the cluster's API endpoint accepts connections", async () => {
        const server = await listening();
        const port = (server.address() as net.AddressInfo).port;
        // spawnSync blocks this process, but the kernel still completes the handshake on a listening socket.
        const r = runTool(["--yes"], `https://127.0.0.1:${port}`);
        server.close();
        expect(r.status).toBe(1);
        expect(r.stderr).toMatch(/API server answers at https:\/\/127\.0\.0\.1:\d+: use 'pulumi destroy'/);
        expect(r.calls).toEqual(["stack output apiEndpoint|K8S_DELETE_UNREACHABLE=unset"]);
    });

    test("the variable is set for the destroy only: nothing else, and no VM or other resource is dropped from the state", () => {
        const r = runTool([]);
        expect(r.status).toBe(0);
        expect(r.calls.filter((c) => c.endsWith("=true"))).toEqual(["destroy|K8S_DELETE_UNREACHABLE=true"]);
        expect(r.calls.filter((c) => c.startsWith("state delete")).join("\n")).not.toMatch(/::(vm|ready)\b/);
    });
});
