/**
 * Builds (first run) or finds (later runs) the binaries of the control-plane tier before any test
 * file starts, so no test times out on a build. Go is required: without it this fails, naming it.
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { versions } from "../../components/versions";
import { containerdVersion, controllerToolsVersion, etcdVersion, kubernetesPatchFor, kubernetesPatches, kwokVersion, metallbVersion } from "./versions";

export default async function globalSetup(): Promise<void> {
    const started = Date.now();
    // The program's default minor must be one the tier builds; this names the file to extend.
    kubernetesPatchFor(versions.kubernetesMinor);
    const cache = execFileSync(
        "bash",
        [
            path.join(__dirname, "build.sh"),
            // Every release the tier covers: the upgrade tests move a control plane from one to the next.
            Object.values(kubernetesPatches).join(" "),
            etcdVersion,
            metallbVersion,
            controllerToolsVersion,
            containerdVersion,
            kwokVersion,
        ],
        { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" },
    ).trim();
    process.env.KUBEADM_GCP_BIN_CACHE = cache;
    const seconds = Math.round((Date.now() - started) / 1000);
    if (seconds > 5) {
        process.stderr.write(`control-plane tier: binaries ready in ${cache} after ${seconds}s\n`);
    }
}
