/**
 * When the e2e test runs or skips, and the settings it runs with: pure decisions over a fake machine.
 */
import { supportedKubernetesMinors, versions } from "../../components/versions";
import { applicationDefaultCredentialsFile, decideE2e, e2eSettings, gcpCredentialSource, Probe, pulumiMinimumMinor, upgradeFromMinor } from "./preconditions";

const home = "/home/dev";
const adc = "/home/dev/.config/gcloud/application_default_credentials.json";

/** `pulumi: null` = the CLI is missing. */
function probe(env: Record<string, string | undefined>, files: string[] = [], pulumi: string | null = "v3.230.0"): Probe {
    return { env, homeDir: home, fileExists: (f) => files.includes(f), pulumiVersion: () => pulumi ?? undefined };
}

const ready = { E2E_GCP_PROJECT: "my-proj", GOOGLE_OAUTH_ACCESS_TOKEN: "ya29.token" };

describe("decideE2e", () => {
    test("runs when the CLI, credentials and E2E_GCP_PROJECT are all there", () => {
        const d = decideE2e(probe(ready), "/tmp/x", "abc123");
        expect(d.run).toBe(true);
    });

    test("skips without E2E_GCP_PROJECT (the opt-in), even with everything else", () => {
        expect(decideE2e(probe({ ...ready, E2E_GCP_PROJECT: undefined }), "/tmp/x", "r")).toEqual({
            run: false,
            reason: "E2E_GCP_PROJECT is not set (the GCP project to create the throwaway cluster in)",
        });
        expect(decideE2e(probe({ ...ready, E2E_GCP_PROJECT: "  " }), "/tmp/x", "r").run).toBe(false);
    });

    test("skips without the Pulumi CLI", () => {
        expect(decideE2e(probe(ready, [], null), "/tmp/x", "r")).toEqual({
            run: false,
            reason: "the Pulumi CLI is not on PATH (`pulumi version` failed, install it: https://www.pulumi.com/docs/install/)",
        });
    });

    test("skips with a Pulumi CLI older than tools/setup.sh's minimum, 3.226, naming both", () => {
        expect(pulumiMinimumMinor).toBe(226);
        const old = decideE2e(probe({ E2E_GCP_PROJECT: "p", GOOGLE_OAUTH_ACCESS_TOKEN: "t" }, [], "v3.225.1"), "/tmp/e2e", "abc123");
        expect(old).toEqual({ run: false, reason: expect.stringMatching(/^the Pulumi CLI is v3\.225\.1, older than 3\.226 /) });
        expect(decideE2e(probe({ E2E_GCP_PROJECT: "p", GOOGLE_OAUTH_ACCESS_TOKEN: "t" }, [], "v3.226.0"), "/tmp/e2e", "abc123").run).toBe(true);
    });

    test("skips without GCP credentials", () => {
        const d = decideE2e(probe({ E2E_GCP_PROJECT: "p" }), "/tmp/x", "r");
        expect(d).toEqual({
            run: false,
            reason: "no GCP credentials (GOOGLE_APPLICATION_CREDENTIALS file, `gcloud auth application-default login`, or GOOGLE_OAUTH_ACCESS_TOKEN)",
        });
    });

    test("names every missing precondition in one reason", () => {
        const d = decideE2e(probe({}, [], null), "/tmp/x", "r");
        expect(d.run).toBe(false);
        const reason = (d as { reason: string }).reason;
        expect(reason.split("; ")).toHaveLength(3);
        expect(reason).toMatch(/^E2E_GCP_PROJECT is not set .*; the Pulumi CLI is not on PATH .*; no GCP credentials/);
    });
});

describe("gcpCredentialSource", () => {
    test("a GOOGLE_APPLICATION_CREDENTIALS file counts only if it exists", () => {
        expect(gcpCredentialSource({ GOOGLE_APPLICATION_CREDENTIALS: "/k.json" }, home, (f) => f === "/k.json")).toBe(
            "GOOGLE_APPLICATION_CREDENTIALS (/k.json)",
        );
        expect(gcpCredentialSource({ GOOGLE_APPLICATION_CREDENTIALS: "/missing.json" }, home, () => false)).toBeUndefined();
    });

    test("gcloud's application-default credentials, also under CLOUDSDK_CONFIG", () => {
        expect(gcpCredentialSource({}, home, (f) => f === adc)).toBe(`application default credentials (${adc})`);
        expect(applicationDefaultCredentialsFile({ CLOUDSDK_CONFIG: "/cfg" }, home)).toBe("/cfg/application_default_credentials.json");
        expect(gcpCredentialSource({ CLOUDSDK_CONFIG: "/cfg" }, home, (f) => f === adc)).toBeUndefined();
    });

    test("access tokens and inline credentials", () => {
        expect(gcpCredentialSource({ GOOGLE_OAUTH_ACCESS_TOKEN: "t" }, home, () => false)).toBe("GOOGLE_OAUTH_ACCESS_TOKEN");
        expect(gcpCredentialSource({ CLOUDSDK_AUTH_ACCESS_TOKEN: "t" }, home, () => false)).toBe("CLOUDSDK_AUTH_ACCESS_TOKEN");
        expect(gcpCredentialSource({ GOOGLE_CREDENTIALS: "{}" }, home, () => false)).toBe("GOOGLE_CREDENTIALS");
        expect(gcpCredentialSource({}, home, () => false)).toBeUndefined();
    });
});

describe("e2eSettings", () => {
    test("defaults: us-central1-a, a file backend in the temp dir, a generated passphrase", () => {
        const s = e2eSettings({}, "my-proj", "GOOGLE_OAUTH_ACCESS_TOKEN", "v3.200.0", "/tmp/e2e", "abc123");
        expect(s).toMatchObject({
            project: "my-proj",
            region: "us-central1",
            zone: "us-central1-a",
            stackName: "e2e-abc123",
            backendUrl: "file:///tmp/e2e/pulumi-state",
            generatedPassphrase: true,
        });
        expect(s.pulumiEnv.PULUMI_BACKEND_URL).toBe("file:///tmp/e2e/pulumi-state");
        expect(s.pulumiEnv.PULUMI_CONFIG_PASSPHRASE).toMatch(/^e2e-abc123-/);
    });

    test("region, zone, backend and passphrase from the environment", () => {
        const env = { E2E_GCP_REGION: "europe-west1", PULUMI_BACKEND_URL: "gs://bucket", PULUMI_CONFIG_PASSPHRASE: "" };
        const s = e2eSettings(env, "p", "c", "v", "/tmp/e2e", "r");
        expect([s.region, s.zone, s.backendUrl]).toEqual(["europe-west1", "europe-west1-a", "gs://bucket"]);
        // An empty passphrase is a valid choice of the user's, not "unset".
        expect(s.pulumiEnv.PULUMI_CONFIG_PASSPHRASE).toBe("");
        expect(s.generatedPassphrase).toBe(false);
        expect(e2eSettings({ E2E_GCP_ZONE: "us-east1-c", E2E_GCP_REGION: "us-east1" }, "p", "c", "v", "/t", "r").zone).toBe("us-east1-c");
        const fromFile = e2eSettings({ PULUMI_CONFIG_PASSPHRASE_FILE: "/pp" }, "p", "c", "v", "/t", "r");
        expect(fromFile.pulumiEnv).toMatchObject({ PULUMI_CONFIG_PASSPHRASE_FILE: "/pp" });
        expect(fromFile.pulumiEnv.PULUMI_CONFIG_PASSPHRASE).toBeUndefined();
    });

    test("gcloud's access token is handed to the GCP provider under the name it reads", () => {
        const s = e2eSettings({ CLOUDSDK_AUTH_ACCESS_TOKEN: "ya29.x" }, "p", "CLOUDSDK_AUTH_ACCESS_TOKEN", "v", "/t", "r");
        expect(s.pulumiEnv.GOOGLE_OAUTH_ACCESS_TOKEN).toBe("ya29.x");
        const other = e2eSettings({ CLOUDSDK_AUTH_ACCESS_TOKEN: "ya29.x" }, "p", `application default credentials (${adc})`, "v", "/t", "r");
        expect(other.pulumiEnv.GOOGLE_OAUTH_ACCESS_TOKEN).toBeUndefined();
    });
});

describe("E2E_UPGRADE_FROM", () => {
    test("unset or empty: no upgrade phase", () => {
        expect(upgradeFromMinor(undefined, "1.36", ["1.35", "1.36"])).toBeUndefined();
        expect(upgradeFromMinor(" ", "1.36", ["1.35", "1.36"])).toBeUndefined();
        expect(e2eSettings({}, "p", "c", "v", "/t", "r").upgradeFrom).toBeUndefined();
    });

    test("the supported minor one below the default is accepted", () => {
        expect(upgradeFromMinor("1.35", "1.36", ["1.35", "1.36"])).toBe("1.35");
        expect(upgradeFromMinor(" 1.36 ", "1.37", ["1.35", "1.36", "1.37"])).toBe("1.36");
    });

    test.each([
        ["1.34", /^E2E_UPGRADE_FROM: "1.34" is not valid; accepted: 1\.35 \(the supported minor one below the default 1\.36: the cluster is created at 1\.35, then upgraded to 1\.36\), or unset/],
        ["1.36", /"1.36" is not valid; accepted: 1\.35 /], // the default itself: nothing to upgrade
        ["1.37", /"1.37" is not valid; accepted: 1\.35 /], // above it: a downgrade
        ["v1.35", /"v1.35" is not valid/],
        ["1.35.2", /"1.35.2" is not valid/],
    ])("%s is refused, naming the variable, the value and what is accepted", (value, message) => {
        expect(() => upgradeFromMinor(value, "1.36", ["1.35", "1.36"])).toThrow(message);
    });

    test("with no supported minor below the default, nothing is accepted and the message says why", () => {
        expect(() => upgradeFromMinor("1.35", "1.36", ["1.36"])).toThrow(
            'E2E_UPGRADE_FROM: "1.35" is not valid; accepted: nothing: no supported minor is one below the default 1.36 (supported: 1.36), or unset for no upgrade phase',
        );
    });

    test("decideE2e: with every precondition, a bad value fails before anything runs and a good one turns the phase on", () => {
        expect(() => decideE2e(probe({ ...ready, E2E_UPGRADE_FROM: "1.30" }), "/tmp/x", "r")).toThrow(/^E2E_UPGRADE_FROM: "1.30" is not valid/);
        const below = `1.${Number(versions.kubernetesMinor.split(".")[1]) - 1}`;
        expect(supportedKubernetesMinors).toContain(below); // the phase can run with today's pins
        const d = decideE2e(probe({ ...ready, E2E_UPGRADE_FROM: below }), "/tmp/x", "r");
        expect(d.run && d.settings.upgradeFrom).toBe(below);
    });

    test("decideE2e: without credentials or the CLI it skips with the same one reason, whatever E2E_UPGRADE_FROM says", () => {
        const withoutCli = probe({ ...ready, E2E_UPGRADE_FROM: "garbage" }, [], null);
        expect(decideE2e(withoutCli, "/tmp/x", "r")).toEqual(decideE2e(probe(ready, [], null), "/tmp/x", "r"));
        expect(decideE2e(withoutCli, "/tmp/x", "r").run).toBe(false);
        const withoutCredentials = probe({ E2E_GCP_PROJECT: "p", E2E_UPGRADE_FROM: "1.35" });
        expect(decideE2e(withoutCredentials, "/tmp/x", "r")).toEqual({
            run: false,
            reason: "no GCP credentials (GOOGLE_APPLICATION_CREDENTIALS file, `gcloud auth application-default login`, or GOOGLE_OAUTH_ACCESS_TOKEN)",
        });
    });
});
