// The reachability check, run exactly as the program runs it (`node - <url> …` with the script
// on stdin) against servers on the loopback interface only.
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";

const script = fs.readFileSync(path.join(__dirname, "../../tools/wait-for-url.js"), "utf8");

interface Result {
    code: number | null;
    stdout: string;
    stderr: string;
}

function runScript(args: string[], env: Record<string, string> = {}): Promise<Result> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["-", ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(script);
    });
}

function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
    return new Promise((resolve) => {
        const server = http.createServer(handler);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as AddressInfo;
            resolve({ server, url: `http://127.0.0.1:${port}/` });
        });
    });
}

const close = (server: http.Server) => new Promise((r) => server.close(r));

describe("tools/wait-for-url.js", () => {
    test("retries through 503s and exits 0 once the URL answers 200, printing the URL on stdout", async () => {
        let requests = 0;
        const { server, url } = await listen((req, res) => {
            requests++;
            if (requests <= 2) {
                res.writeHead(503).end("not yet");
            } else {
                res.writeHead(200, { "content-type": "text/plain" }).end(`Welcome! pod-${req.url}\n`);
            }
        });
        try {
            const result = await runScript([url, "--timeout-seconds", "20", "--interval-seconds", "0.1"]);
            expect(result.code).toBe(0);
            expect(result.stdout.trim()).toBe(url);
            expect(requests).toBe(3);
            expect(result.stderr).toMatch(/attempt 1: HTTP 503/);
            expect(result.stderr).toMatch(/answered 200 after 3 attempt\(s\): Welcome! pod-\//);
        } finally {
            await close(server);
        }
    });

    test("gives up within its bound on a closed port, exits non-zero and says what to check", async () => {
        // A port that was just free: listen, note it, close.
        const { server, url } = await listen(() => undefined);
        await close(server);
        const started = Date.now();
        const result = await runScript([url, "--timeout-seconds", "1", "--interval-seconds", "0.2"], { WAIT_HINT: "Service http-go/http-go" });
        expect(result.code).toBe(1);
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/did not answer 200 within 1s \(\d+ attempts; last: ECONNREFUSED\)/);
        for (const hop of ["forwarding rule", "TCP 80", "35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22", "130.211.0.0/22", "HEALTHY", "10256/healthz", "Ready"]) {
            expect(result.stderr).toContain(hop);
        }
        expect(result.stderr).toContain("Service http-go/http-go");
    });

    // Two tests, so that neither depends on how fast a loaded machine answers: the last attempt's
    // request gets only what is left of the budget (at least 100 ms), and under load the test's own
    // server can miss that, which the script rightly reports as a timeout.
    test("a server stuck on errors is reported with its last status", async () => {
        let requests = 0;
        const { server, url } = await listen((_req, res) => {
            requests++;
            res.writeHead(502).end();
        });
        try {
            // One attempt, with the whole second to answer in: the interval is longer than the budget.
            const result = await runScript([url, "--timeout-seconds", "1", "--interval-seconds", "5"]);
            expect(result.code).toBe(1);
            expect(result.stderr).toMatch(/did not answer 200 within 1s \(1 attempts; last: HTTP 502\)/);
            expect(requests).toBe(1);
        } finally {
            await close(server);
        }
    });

    test("a server stuck on errors gets a bounded number of attempts, one per interval", async () => {
        let requests = 0;
        const { server, url } = await listen((_req, res) => {
            requests++;
            res.writeHead(502).end();
        });
        try {
            const result = await runScript([url, "--timeout-seconds", "2", "--interval-seconds", "0.1"]);
            expect(result.code).toBe(1);
            expect(result.stderr).toContain("attempt 1: HTTP 502; retrying in 0.1s");
            expect(result.stderr).toMatch(/did not answer 200 within 2s/);
            expect(requests).toBeGreaterThanOrEqual(2);
            expect(requests).toBeLessThanOrEqual(21); // ceil(2 / 0.1) + 1
        } finally {
            await close(server);
        }
    });

    test("a hung server counts as a failed attempt (per-request timeout), not a hang", async () => {
        const { server, url } = await listen(() => undefined); // accepts, never answers
        try {
            const result = await runScript([url, "--timeout-seconds", "1", "--interval-seconds", "0.2", "--request-timeout-seconds", "0.3"]);
            expect(result.code).toBe(1);
            expect(result.stderr).toMatch(/last: timeout after \d+ ms/);
        } finally {
            server.closeAllConnections();
            await close(server);
        }
    });

    test("also runs as a file (node tools/wait-for-url.js <url>)", async () => {
        const { server, url } = await listen((_req, res) => res.writeHead(200).end("ok"));
        try {
            const code = await new Promise<number | null>((resolve) => {
                const child = spawn(process.execPath, [path.join(__dirname, "../../tools/wait-for-url.js"), url, "--timeout-seconds", "5"], { stdio: "ignore" });
                child.on("close", resolve);
            });
            expect(code).toBe(0);
        } finally {
            await close(server);
        }
    });

    test("bad usage exits 2 with a usage line", async () => {
        expect((await runScript([])).code).toBe(2);
        const bad = await runScript(["ftp://127.0.0.1/"]);
        expect(bad.code).toBe(2);
        expect(bad.stderr).toMatch(/only http and https/);
        expect((await runScript(["http://127.0.0.1/", "--timeout-seconds", "-1"])).stderr).toMatch(/needs a positive number/);
    });
});
