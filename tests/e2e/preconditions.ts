/**
 * Whether the end-to-end test can run here, and with which settings. Pure functions over an
 * injected view of the machine (`Probe`), so the decision is unit-tested without a cloud;
 * `probeMachine()` is the one impure piece that looks at the real environment.
 *
 * The e2e test runs only when all of these hold, and otherwise skips with one printed reason:
 *   - the Pulumi CLI answers `pulumi version` with 3.226 or newer (tools/setup.sh's minimum);
 *   - GCP credentials exist: a GOOGLE_APPLICATION_CREDENTIALS file, gcloud's application-default
 *     credentials file, GOOGLE_CREDENTIALS, or an access token (GOOGLE_OAUTH_ACCESS_TOKEN or
 *     CLOUDSDK_AUTH_ACCESS_TOKEN);
 *   - E2E_GCP_PROJECT names the project to create the throwaway cluster in (the opt-in: without
 *     it, `npm test` never starts a 30-minute cloud run).
 * When they hold, E2E_UPGRADE_FROM (optional) must be the supported minor one below the default, or
 * the run fails before creating anything; with it the test adds its upgrade phase.
 */
import { spawnSync } from "child_process";
import * as os from "os";
import * as path from "path";
import * as fs from "fs";
import { supportedKubernetesMinors, versions } from "../../components/versions";

export type Env = Readonly<Record<string, string | undefined>>;

/** The oldest Pulumi CLI minor the program supports, read from its one home, tools/setup.sh. */
export const pulumiMinimumMinor: number = (() => {
    const text = fs.readFileSync(path.join(__dirname, "..", "..", "tools", "setup.sh"), "utf8");
    const m = /^pulumi_minimum_minor=(\d+)$/m.exec(text);
    if (!m) {
        throw new Error("tools/setup.sh has no pulumi_minimum_minor=<n> line");
    }
    return Number(m[1]);
})();

/** Why `version` (`pulumi version`'s output) is too old, or undefined when it is new enough (or unparsable: the CLI decides). */
export function pulumiTooOld(version: string): string | undefined {
    const m = /^v?3\.(\d+)\./.exec(version.trim());
    if (m && Number(m[1]) < pulumiMinimumMinor) {
        return `the Pulumi CLI is ${version.trim()}, older than 3.${pulumiMinimumMinor} (its engine previews the program wrongly; see tools/setup.sh): upgrade it with curl -fsSL https://get.pulumi.com | sh`;
    }
    return undefined;
}

/** What the decision needs to know about the machine. */
export interface Probe {
    env: Env;
    homeDir: string;
    fileExists: (file: string) => boolean;
    /** `pulumi version`'s output, or undefined when the CLI is missing or fails. */
    pulumiVersion: () => string | undefined;
}

export interface E2eSettings {
    project: string;
    region: string;
    zone: string;
    /** Throwaway stack, e.g. e2e-3f9a1c. */
    stackName: string;
    /** PULUMI_BACKEND_URL if set, else a file:// backend in a fresh temporary directory. */
    backendUrl: string;
    /** Where the credentials come from, for the log. */
    credentials: string;
    pulumiVersion: string;
    /** Environment for every Pulumi command of the test (backend, passphrase, GCP token). */
    pulumiEnv: Record<string, string>;
    /** True when the passphrase was generated for this run (nothing else will ever need it). */
    generatedPassphrase: boolean;
    /** E2E_UPGRADE_FROM: create the cluster at this minor, then upgrade it to the default; undefined: no upgrade phase. */
    upgradeFrom?: string;
}

export type Decision = { run: true; settings: E2eSettings } | { run: false; reason: string };

export const defaultRegion = "us-central1";

/** Where GCP credentials come from, or undefined when there are none. */
export function gcpCredentialSource(env: Env, homeDir: string, fileExists: (file: string) => boolean): string | undefined {
    const keyFile = env.GOOGLE_APPLICATION_CREDENTIALS;
    if (keyFile && fileExists(keyFile)) {
        return `GOOGLE_APPLICATION_CREDENTIALS (${keyFile})`;
    }
    if (env.GOOGLE_CREDENTIALS) {
        return "GOOGLE_CREDENTIALS";
    }
    if (env.GOOGLE_OAUTH_ACCESS_TOKEN) {
        return "GOOGLE_OAUTH_ACCESS_TOKEN";
    }
    if (env.CLOUDSDK_AUTH_ACCESS_TOKEN) {
        return "CLOUDSDK_AUTH_ACCESS_TOKEN";
    }
    const adc = applicationDefaultCredentialsFile(env, homeDir);
    if (fileExists(adc)) {
        return `application default credentials (${adc})`;
    }
    return undefined;
}

/** gcloud's application-default credentials file (`gcloud auth application-default login` writes it). */
export function applicationDefaultCredentialsFile(env: Env, homeDir: string): string {
    const configDir = env.CLOUDSDK_CONFIG || path.join(homeDir, ".config", "gcloud");
    return path.join(configDir, "application_default_credentials.json");
}

/** Run or skip; when skipping, one sentence naming every missing precondition and how to supply it. */
export function decideE2e(probe: Probe, tmpDir: string, random: string): Decision {
    const missing: string[] = [];
    const project = probe.env.E2E_GCP_PROJECT?.trim();
    if (!project) {
        missing.push("E2E_GCP_PROJECT is not set (the GCP project to create the throwaway cluster in)");
    }
    const version = probe.pulumiVersion();
    if (version === undefined) {
        missing.push("the Pulumi CLI is not on PATH (`pulumi version` failed, install it: https://www.pulumi.com/docs/install/)");
    } else if (pulumiTooOld(version)) {
        missing.push(pulumiTooOld(version)!);
    }
    const credentials = gcpCredentialSource(probe.env, probe.homeDir, probe.fileExists);
    if (credentials === undefined) {
        missing.push(
            "no GCP credentials (GOOGLE_APPLICATION_CREDENTIALS file, `gcloud auth application-default login`, or GOOGLE_OAUTH_ACCESS_TOKEN)",
        );
    }
    if (missing.length > 0 || !project || version === undefined || credentials === undefined) {
        return { run: false, reason: missing.join("; ") };
    }
    return { run: true, settings: e2eSettings(probe.env, project, credentials, version, tmpDir, random) };
}

/** Settings of the throwaway stack from the environment, with defaults. */
export function e2eSettings(env: Env, project: string, credentials: string, pulumiVersion: string, tmpDir: string, random: string): E2eSettings {
    const region = env.E2E_GCP_REGION?.trim() || defaultRegion;
    const zone = env.E2E_GCP_ZONE?.trim() || `${region}-a`;
    const backendUrl = env.PULUMI_BACKEND_URL?.trim() || `file://${path.join(tmpDir, "pulumi-state")}`;
    const pulumiEnv: Record<string, string> = { PULUMI_BACKEND_URL: backendUrl, PULUMI_SKIP_UPDATE_CHECK: "true" };
    let generatedPassphrase = false;
    if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) {
        pulumiEnv.PULUMI_CONFIG_PASSPHRASE = env.PULUMI_CONFIG_PASSPHRASE;
    } else if (env.PULUMI_CONFIG_PASSPHRASE_FILE) {
        pulumiEnv.PULUMI_CONFIG_PASSPHRASE_FILE = env.PULUMI_CONFIG_PASSPHRASE_FILE;
    } else {
        // The stack lives for this run only: a random passphrase protects its secrets just as well.
        pulumiEnv.PULUMI_CONFIG_PASSPHRASE = `e2e-${random}-${random}`;
        generatedPassphrase = true;
    }
    // The GCP provider reads GOOGLE_OAUTH_ACCESS_TOKEN, not gcloud's CLOUDSDK_AUTH_ACCESS_TOKEN.
    if (!env.GOOGLE_OAUTH_ACCESS_TOKEN && env.CLOUDSDK_AUTH_ACCESS_TOKEN && credentials === "CLOUDSDK_AUTH_ACCESS_TOKEN") {
        pulumiEnv.GOOGLE_OAUTH_ACCESS_TOKEN = env.CLOUDSDK_AUTH_ACCESS_TOKEN;
    }
    const upgradeFrom = upgradeFromMinor(env.E2E_UPGRADE_FROM, versions.kubernetesMinor, supportedKubernetesMinors);
    return {
        project,
        region,
        zone,
        stackName: `e2e-${random}`,
        backendUrl,
        credentials,
        pulumiVersion,
        pulumiEnv,
        generatedPassphrase,
        upgradeFrom,
    };
}

/**
 * E2E_UPGRADE_FROM, checked before anything is created: unset or empty means no upgrade phase;
 * otherwise it must be the minor one below `defaultMinor` and in `supported` (kubeadm upgrades one
 * minor at a time, and the program accepts only supported minors). Throws naming the variable, the
 * value and what is accepted.
 */
export function upgradeFromMinor(value: string | undefined, defaultMinor: string, supported: readonly string[]): string | undefined {
    const v = value?.trim();
    if (!v) {
        return undefined;
    }
    const below = `1.${Number(defaultMinor.split(".")[1]) - 1}`;
    if (v === below && supported.includes(below)) {
        return v;
    }
    const accepted = supported.includes(below)
        ? `${below} (the supported minor one below the default ${defaultMinor}: the cluster is created at ${below}, then upgraded to ${defaultMinor})`
        : `nothing: no supported minor is one below the default ${defaultMinor} (supported: ${supported.join(", ")})`;
    throw new Error(`E2E_UPGRADE_FROM: ${JSON.stringify(value)} is not valid; accepted: ${accepted}, or unset for no upgrade phase`);
}

/** The real machine. */
export function probeMachine(): Probe {
    return {
        env: process.env,
        homeDir: os.homedir(),
        fileExists: (file) => {
            try {
                return fs.statSync(file).isFile();
            } catch {
                return false;
            }
        },
        pulumiVersion: () => {
            const r = spawnSync("pulumi", ["version"], {
                encoding: "utf8",
                timeout: 30_000,
                env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
            });
            return r.status === 0 && !r.error ? r.stdout.trim() : undefined;
        },
    };
}
