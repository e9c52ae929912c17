#!/usr/bin/env node
// Waits until an HTTP URL answers 200, within a bound; the proof at `pulumi up` that the app is
// reachable through the real load balancer path, not merely that MetalLB assigned an address.
//
//   node tools/wait-for-url.js <url> [--timeout-seconds 300] [--interval-seconds 5] [--request-timeout-seconds 5]
//   node - <url> [...] < tools/wait-for-url.js      (how the Pulumi program runs it)
//
// Progress goes to stderr; on success the URL is printed on stdout and the exit code is 0.
// On failure the exit code is 1 (2 for bad usage) with a message naming what to check.
// WAIT_HINT, if set, is appended to that message (the Pulumi program names its Service there).
// Plain Node, no dependencies: it runs wherever the Pulumi program runs.
"use strict";

const http = require("http");
const https = require("https");

function usage(message) {
    process.stderr.write(`wait-for-url: ${message}\n`);
    process.stderr.write("usage: wait-for-url <http(s)://host[:port]/path> [--timeout-seconds N] [--interval-seconds N] [--request-timeout-seconds N]\n");
    process.exit(2);
}

function parseArgs(argv) {
    const options = { timeoutSeconds: 300, intervalSeconds: 5, requestTimeoutSeconds: 5 };
    const names = {
        "--timeout-seconds": "timeoutSeconds",
        "--interval-seconds": "intervalSeconds",
        "--request-timeout-seconds": "requestTimeoutSeconds",
    };
    let url;
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (arg in names) {
            const value = Number(argv[++i]);
            if (!Number.isFinite(value) || value <= 0) {
                usage(`${arg} needs a positive number`);
            }
            options[names[arg]] = value;
        } else if (url === undefined && !arg.startsWith("--")) {
            url = arg;
        } else {
            usage(`unexpected argument ${JSON.stringify(arg)}`);
        }
    }
    if (url === undefined) {
        usage("missing URL");
    }
    let parsed;
    try {
        parsed = new URL(url);
    } catch {
        usage(`not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
        usage(`only http and https URLs are supported, not ${parsed.protocol}`);
    }
    return { url: parsed, ...options };
}

/** One GET; resolves to { status } or { error }, never rejects. */
function probe(url, timeoutMs) {
    return new Promise((resolve) => {
        const client = url.protocol === "https:" ? https : http;
        const req = client.get(url, { timeout: timeoutMs, headers: { "user-agent": "wait-for-url" } }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (chunk) => {
                if (body.length < 200) {
                    body += chunk;
                }
            });
            res.on("end", () => resolve({ status: res.statusCode, body: body.trim().split("\n")[0] }));
            res.on("error", (err) => resolve({ error: err.code || err.message }));
        });
        req.on("timeout", () => req.destroy(Object.assign(new Error("no answer"), { code: `timeout after ${timeoutMs} ms` })));
        req.on("error", (err) => resolve({ error: err.code || err.message }));
    });
}

function failureMessage(url, seconds, attempts, last) {
    const host = url.hostname;
    const lines = [
        `wait-for-url: ${url.href} did not answer 200 within ${seconds}s (${attempts} attempts; last: ${last}).`,
        "An address assigned by MetalLB only proves IP bookkeeping; check each hop (docs/traffic.md):",
        `  1. the forwarding rule for ${host} exists, is EXTERNAL, TCP port ${url.port || 80}, and points at the backend service`,
        `     (gcloud compute forwarding-rules list --filter="IPAddress=${host}")`,
        "  2. the firewall admits TCP 80 to that address and TCP 10256 from the health-check ranges",
        "     35.191.0.0/16, 209.85.152.0/22, 209.85.204.0/22, 130.211.0.0/22 on the workers' network tag",
        "  3. the instance group holds the workers and they are HEALTHY",
        "     (gcloud compute backend-services get-health <cluster>-http-bs --region <region>)",
        "  4. kube-proxy answers on every worker: curl -s http://localhost:10256/healthz (on the node)",
        "  5. the pods are Ready and behind the Service: kubectl -n <namespace> get pods,endpointslices",
    ];
    if (process.env.WAIT_HINT) {
        lines.push(`  (${process.env.WAIT_HINT})`);
    }
    return lines.join("\n");
}

async function main() {
    const { url, timeoutSeconds, intervalSeconds, requestTimeoutSeconds } = parseArgs(process.argv.slice(2));
    const deadline = Date.now() + timeoutSeconds * 1000;
    // Bounded by count as well as by time, so a clock jump cannot make it loop forever.
    const maxAttempts = Math.max(1, Math.ceil(timeoutSeconds / intervalSeconds) + 1);
    let last = "no attempt";
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const remaining = deadline - Date.now();
        const result = await probe(url, Math.max(100, Math.min(requestTimeoutSeconds * 1000, remaining)));
        if (result.status === 200) {
            process.stderr.write(`wait-for-url: ${url.href} answered 200 after ${attempt} attempt(s): ${result.body}\n`);
            process.stdout.write(`${url.href}\n`);
            return 0;
        }
        last = result.status !== undefined ? `HTTP ${result.status}` : result.error;
        if (attempt === maxAttempts || Date.now() + intervalSeconds * 1000 > deadline) {
            process.stderr.write(`wait-for-url: attempt ${attempt}: ${last}\n`);
            process.stderr.write(`${failureMessage(url, timeoutSeconds, attempt, last)}\n`);
            return 1;
        }
        process.stderr.write(`wait-for-url: attempt ${attempt}: ${last}; retrying in ${intervalSeconds}s\n`);
        await new Promise((r) => setTimeout(r, intervalSeconds * 1000));
    }
    return 1; // not reached: the last attempt returns above
}

main().then(
    (code) => process.exit(code),
    (err) => {
        process.stderr.write(`wait-for-url: ${err && err.stack ? err.stack : err}\n`);
        process.exit(1);
    },
);
