/**
 * Builds (first run) or finds (later runs) the binaries of the control-plane tier before any test
 * file starts, so no test times out on a build. Go is required: without it this fails, naming it.
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { versions } from "../../components/versions";
import { containerdVersion, controllerToolsVersion, etcdVersion, kubernetesPatchFor, metallbVersion } from "./versions";

export default async function globalSetup(): Promise<void> {
    const started = Date.now();
    const cache = execFileSync(
        "bash",
        [
            path.join(__dirname, "build.sh"),
            kubernetesPatchFor(versions.kubernetesMinor),
            etcdVersion,
            metallbVersion,
            controllerToolsVersion,
            containerdVersion,
        ],
        { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" },
    ).trim();
    process.env.KUBEADM_GCP_BIN_CACHE = cache;
    const seconds = Math.round((Date.now() - started) / 1000);
    if (seconds > 5) {
        process.stderr.write(`control-plane tier: binaries ready in ${cache} after ${seconds}s\n`);
    }
}
