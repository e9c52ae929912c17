import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";

/** Where the provisioning scripts live; each is a standalone bash file, shellchecked as it is. */
export const scriptsDir = path.join(__dirname, "..", "scripts");

/** The line every script uses to load the shared helpers when run from a checkout. */
const sourceLibLine = /^source "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)\/lib\/common\.sh"$/m;

/** Shell-quotes a value for a single-quoted bash word. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Renders `scripts/<name>.sh` into one self-contained bash program: the settings as exported
 * variables first, then the script with `lib/common.sh` inlined where it sources it.
 * Pure apart from reading the files, so the exact text that ships is what the tests run.
 */
export function renderScript(name: string, env: Record<string, string>): string {
    const body = fs.readFileSync(path.join(scriptsDir, `${name}.sh`), "utf8");
    const lib = fs.readFileSync(path.join(scriptsDir, "lib", "common.sh"), "utf8");
    if (!sourceLibLine.test(body)) {
        throw new Error(`scripts/${name}.sh must source lib/common.sh with: source "$(dirname "\${BASH_SOURCE[0]}")/lib/common.sh"`);
    }
    const lines = body.split("\n");
    const shebangEnd = lines[0].startsWith("#!") ? 1 : 0;
    const settings = Object.keys(env)
        .sort()
        .map((key) => {
            if (!/^[A-Z][A-Z0-9_]*$/.test(key)) {
                throw new Error(`script setting ${key} must be an upper-case shell variable name`);
            }
            return `export ${key}=${shellQuote(env[key])}`;
        });
    const libBody = lib.replace(/^#!.*\n/, "");
    const rest = lines.slice(shebangEnd).join("\n").replace(sourceLibLine, () => libBody.trimEnd());
    const header = [lines.slice(0, shebangEnd).join("\n") || "#!/usr/bin/env bash", renderedMarker(name)];
    return [...header, ...settings, rest].join("\n");
}

/** The line that names a rendered script's source, for readers of preview diffs (and tests). */
export function renderedMarker(name: string): string {
    return `# scripts/${name}.sh, with its settings, rendered by components/scripts.ts`;
}

/**
 * Wraps a rendered script into the command string run over SSH: the script goes to a temporary
 * file first (so nothing it runs can swallow the rest of it from stdin) and runs as root.
 * The quoted heredoc keeps the script text readable in `pulumi preview` diffs.
 */
export function remoteInvocation(rendered: string, delimiter = "PULUMI_SCRIPT_EOF"): string {
    if (rendered.split("\n").includes(delimiter)) {
        throw new Error(`script text contains the heredoc delimiter ${delimiter}`);
    }
    return [
        `script="$(mktemp)"`,
        `trap 'rm -f "$script"' EXIT`,
        `cat >"$script" <<'${delimiter}'`,
        rendered,
        delimiter,
        `sudo bash "$script"`,
    ].join("\n");
}

/** The command of a remote step that runs `scripts/<name>.sh` with `env`, once every setting is known. */
export function remoteScript(name: string, env: Record<string, pulumi.Input<string>>): pulumi.Output<string> {
    return pulumi.all(env).apply((values) => remoteInvocation(renderScript(name, values)));
}
