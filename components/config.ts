import * as pulumi from "@pulumi/pulumi";
import * as ipaddr from "ipaddr.js";
import { supportedKubernetesMinors, versions } from "./versions";

/**
 * The stack's settings, read and validated in one place before any resource is created.
 * Every key is documented (type, default, description) in Pulumi.yaml's `config:` schema.
 */
export interface ClusterConfig {
    /** GCP project that holds every resource (`gcp:project`). */
    project: string;
    region: string;
    zone: string;
    /** Prefix of every cloud resource name; also the cluster's name in the kubeconfig. */
    clusterName: string;
    workerCount: number;
    machineType: string;
    /** Kubernetes minor, one of supportedKubernetesMinors: selects the pkgs.k8s.io repository and kubeadm's version. */
    kubernetesVersion: string;
    sshSourceRanges: string[];
    apiSourceRanges: string[];
    subnetCidr: string;
    podCidr: string;
    serviceCidr: string;
    bootDiskSizeGb: number;
    app: AppConfig;
    backups: BackupConfig;
    /** Which VMs use the Spot provisioning model (components/schedule.ts). */
    spot: SpotSetting;
    /** When GCE starts and stops every VM of the stack; undefined: they run around the clock. */
    schedule?: VmSchedule;
}

/** `spot`: none (every VM standard), workers (the workers Spot), all (the control plane too). */
export const spotSettings = ["none", "workers", "all"] as const;
export type SpotSetting = (typeof spotSettings)[number];

/** An instance schedule: two unix-cron expressions read in an IANA time zone. */
export interface VmSchedule {
    start: string;
    stop: string;
    timeZone: string;
}

/** etcd snapshots in the stack's bucket (docs/backups.md). */
export interface BackupConfig {
    intervalMinutes: number;
    retentionDays: number;
    /** Keep the bucket (and its snapshots) when the stack is destroyed. */
    retainOnDestroy: boolean;
    /** What a new control plane restores: the newest snapshot of the cluster, none, or one object by name. */
    restoreFrom: "newest" | "none" | string;
    /** The snapshots' encryption key (64 hex characters) when set in config; otherwise the stack generates one. */
    key?: string;
}

export interface AppConfig {
    namespace: string;
    image: string;
    /** Initial replicas and the autoscaler's floor. */
    replicas: number;
    maxReplicas: number;
    cpuTargetPercent: number;
}

/** Raw values as strings, exactly as `pulumi config` stores them; absent keys are undefined. */
export type RawConfig = Partial<Record<RawKey, string>>;

export const projectKeys = [
    "clusterName",
    "workerCount",
    "machineType",
    "kubernetesVersion",
    "sshSourceRanges",
    "apiSourceRanges",
    "subnetCidr",
    "podCidr",
    "serviceCidr",
    "bootDiskSizeGb",
    "appNamespace",
    "appImage",
    "appReplicas",
    "appMaxReplicas",
    "appCpuTargetPercent",
    "etcdBackupIntervalMinutes",
    "etcdBackupRetentionDays",
    "retainBackupsOnDestroy",
    "etcdRestoreFrom",
    "etcdBackupKey",
    "spot",
    "scheduleStart",
    "scheduleStop",
    "scheduleTimeZone",
] as const;
type ProjectKey = (typeof projectKeys)[number];
type RawKey = ProjectKey | "gcp:project" | "gcp:region" | "gcp:zone";

/** Defaults of the project keys; Pulumi.yaml repeats them for `pulumi config` users (a test keeps the two equal). */
export const defaults = {
    workerCount: 2,
    machineType: "e2-medium",
    kubernetesVersion: versions.kubernetesMinor,
    // Open to the world so that a first `pulumi up` works from any laptop or CI runner: SSH only
    // accepts the stack's own key and the API server only client certificates. Narrow both to your
    // own address (README, "Narrowing access").
    sshSourceRanges: ["0.0.0.0/0"],
    apiSourceRanges: ["0.0.0.0/0"],
    subnetCidr: "10.240.0.0/24",
    podCidr: "10.244.0.0/16",
    serviceCidr: "10.96.0.0/12",
    bootDiskSizeGb: 30,
    appNamespace: "http-go",
    appImage: versions.appImage,
    appReplicas: 3,
    appMaxReplicas: 6,
    appCpuTargetPercent: 70,
    etcdBackupIntervalMinutes: 60,
    etcdBackupRetentionDays: 7,
    retainBackupsOnDestroy: false,
    etcdRestoreFrom: "newest",
    // Empty: the stack generates the key and keeps it in its secret state (docs/backups.md).
    etcdBackupKey: "",
    spot: "none",
    // Empty start and stop: no schedule, the VMs run until you stop them.
    scheduleStart: "",
    scheduleStop: "",
    scheduleTimeZone: "UTC",
    region: "us-central1",
    zone: "us-central1-a",
} as const;

/** Oldest minor whose kubeadm reads the v1beta4 configuration the provisioning writes; supportedKubernetesMinors stays above it. */
export const minimumKubernetesMinor = 31;
export const maxWorkers = 10;

/** A RunError: Pulumi prints its message alone, without the program's stack trace. */
export class ConfigError extends pulumi.RunError {
    constructor(readonly problems: string[]) {
        super(
            `Invalid stack configuration (nothing was created):\n${problems.map((p) => `  - ${p}`).join("\n")}`,
        );
        this.name = "ConfigError";
    }
}

/** Reads the stack's config; throws ConfigError (naming key, value, what is accepted) on bad input. */
export function loadConfig(): ClusterConfig {
    const project = new pulumi.Config();
    const gcp = new pulumi.Config("gcp");
    const raw: RawConfig = {
        "gcp:project": gcp.get("project"),
        "gcp:region": gcp.get("region"),
        "gcp:zone": gcp.get("zone"),
    };
    for (const key of projectKeys) {
        // The key is a secret: read it without the SDK's plaintext warning; it is wrapped as a secret
        // wherever it is used (components/backups.ts) and never printed by validation.
        raw[key] = key === "etcdBackupKey" ? pulumi.runtime.getConfig(`${pulumi.getProject()}:${key}`) : project.get(key);
    }

    return parseConfig(raw, pulumi.getStack());
}

/** Pure: validates raw config values and applies defaults. Collects every problem before throwing. */
export function parseConfig(raw: RawConfig, stack: string): ClusterConfig {
    const problems: string[] = [];
    // Pulumi.yaml's default for clusterName is "", meaning "derive it from the stack name".
    const p = new Parser({ ...raw, clusterName: raw.clusterName === "" ? undefined : raw.clusterName }, problems);

    const project = p.requiredString("gcp:project", "your GCP project id, e.g. `pulumi config set gcp:project my-project`");
    const region = p.pattern("gcp:region", defaults.region, /^[a-z]+-[a-z]+\d+$/, "a GCP region such as us-central1");
    const zone = p.pattern("gcp:zone", `${region}-a`, zonePattern, "a GCP zone such as us-central1-a");
    if (raw["gcp:zone"] !== undefined && zonePattern.test(zone) && !zone.startsWith(`${region}-`)) {
        problems.push(`gcp:zone: "${zone}" is not in gcp:region "${region}"; accepted: a zone of that region, e.g. ${region}-a`);
    }
    const clusterName = p.pattern(
        "clusterName",
        defaultClusterName(stack),
        clusterNamePattern,
        "1 to 20 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen",
    );
    const workerCount = p.integer("workerCount", defaults.workerCount, 1, maxWorkers);
    const machineType = p.machineType("machineType", defaults.machineType);
    const kubernetesVersion = p.kubernetesMinor("kubernetesVersion", defaults.kubernetesVersion);
    const sshSourceRanges = p.cidrList("sshSourceRanges", defaults.sshSourceRanges);
    const apiSourceRanges = p.cidrList("apiSourceRanges", defaults.apiSourceRanges);
    const subnetCidr = p.cidr("subnetCidr", defaults.subnetCidr);
    const podCidr = p.cidr("podCidr", defaults.podCidr);
    const serviceCidr = p.cidr("serviceCidr", defaults.serviceCidr);
    const podProblem = podCidrProblem(podCidr, workerCount + 1);
    if (podProblem) {
        problems.push(`podCidr: ${JSON.stringify(podCidr)} is not valid; accepted: ${podProblem}`);
    }
    const serviceProblem = serviceCidrProblem(serviceCidr);
    if (serviceProblem) {
        problems.push(`serviceCidr: ${JSON.stringify(serviceCidr)} is not valid; accepted: ${serviceProblem}`);
    }
    const bootDiskSizeGb = p.integer("bootDiskSizeGb", defaults.bootDiskSizeGb, 20, 1000);
    const namespace = p.pattern(
        "appNamespace",
        defaults.appNamespace,
        kubernetesNamePattern,
        "a Kubernetes namespace name (lowercase letters, digits, hyphens; at most 63)",
    );
    const image = p.pattern("appImage", defaults.appImage, /^[^\s]+$/, "a container image reference such as ghcr.io/you/http-go:1.0.0");
    const replicas = p.integer("appReplicas", defaults.appReplicas, 1, 50);
    const maxReplicas = p.integer("appMaxReplicas", defaults.appMaxReplicas, 1, 100);
    if (maxReplicas < replicas) {
        problems.push(`appMaxReplicas: ${maxReplicas} is below appReplicas (${replicas}); accepted: a whole number >= appReplicas`);
    }
    const cpuTargetPercent = p.integer("appCpuTargetPercent", defaults.appCpuTargetPercent, 1, 100);
    const backups = parseBackupConfig(p, raw, problems);
    const spot = p.oneOf("spot", defaults.spot, spotSettings);
    const schedule = parseSchedule(p, problems);

    for (const [a, b] of [
        ["subnetCidr", "podCidr"],
        ["subnetCidr", "serviceCidr"],
        ["podCidr", "serviceCidr"],
    ] as const) {
        const ranges = { subnetCidr, podCidr, serviceCidr };
        if (ranges[a] && ranges[b] && cidrsOverlap(ranges[a], ranges[b])) {
            problems.push(`${b}: "${ranges[b]}" overlaps ${a} "${ranges[a]}"; accepted: a range disjoint from ${a}`);
        }
    }

    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    return {
        project,
        region,
        zone,
        clusterName,
        workerCount,
        machineType,
        kubernetesVersion,
        sshSourceRanges,
        apiSourceRanges,
        subnetCidr,
        podCidr,
        serviceCidr,
        bootDiskSizeGb,
        app: { namespace, image, replicas, maxReplicas, cpuTargetPercent },
        backups,
        spot,
        schedule,
    };
}

/** Names of the snapshots etcd-snapshot.sh writes: etcd/<cluster uid>/<UTC time>-<reason>.snapshot. */
export const snapshotNamePattern = /^etcd\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/[0-9]{8}T[0-9]{6}Z-[a-z0-9.-]+\.snapshot$/;

function parseBackupConfig(p: Parser, raw: RawConfig, problems: string[]): BackupConfig {
    const intervalMinutes = p.integer("etcdBackupIntervalMinutes", defaults.etcdBackupIntervalMinutes, 5, 1440);
    const retentionDays = p.integer("etcdBackupRetentionDays", defaults.etcdBackupRetentionDays, 1, 3650);
    const retainOnDestroy = p.boolean("retainBackupsOnDestroy", defaults.retainBackupsOnDestroy);
    const restoreFrom = p.value("etcdRestoreFrom")?.trim() ?? defaults.etcdRestoreFrom;
    if (restoreFrom !== "newest" && restoreFrom !== "none" && !snapshotNamePattern.test(restoreFrom)) {
        problems.push(
            `etcdRestoreFrom: ${JSON.stringify(restoreFrom)} is not valid; accepted: "newest", "none", or a snapshot's object name such as etcd/<cluster uid>/20261206T210000Z-scheduled.snapshot (docs/backups.md lists them)`,
        );
    }
    const key = raw.etcdBackupKey?.trim() || undefined;
    if (key !== undefined && !/^[0-9a-f]{64}$/.test(key)) {
        // Never echo a secret: name the key and what is accepted only.
        problems.push("etcdBackupKey: the value (not shown, it is a secret) is not valid; accepted: 64 lowercase hex characters (32 random bytes, e.g. `openssl rand -hex 32`)");
    }
    return { intervalMinutes, retentionDays, retainOnDestroy, restoreFrom, key };
}

/**
 * scheduleStart/scheduleStop/scheduleTimeZone: both times or neither. GCE reads them as unix-cron
 * (five fields) in the IANA time zone given (the resource policy's instanceSchedulePolicy).
 */
function parseSchedule(p: Parser, problems: string[]): VmSchedule | undefined {
    const start = p.value("scheduleStart")?.trim() ?? defaults.scheduleStart;
    const stop = p.value("scheduleStop")?.trim() ?? defaults.scheduleStop;
    const timeZone = p.value("scheduleTimeZone")?.trim() || defaults.scheduleTimeZone;
    const cronAccepted = 'a unix-cron expression of five fields (minute hour day-of-month month day-of-week), e.g. "0 8 * * 1-5"';
    for (const [key, value] of [["scheduleStart", start], ["scheduleStop", stop]] as const) {
        const problem = value === "" ? undefined : cronProblem(value);
        if (problem) {
            problems.push(`${key}: ${JSON.stringify(value)} is not valid (${problem}); accepted: ${cronAccepted}, or empty for no schedule`);
        }
    }
    if (!isTimeZone(timeZone)) {
        problems.push(`scheduleTimeZone: ${JSON.stringify(timeZone)} is not valid; accepted: a time zone of the tz database such as UTC or Europe/Berlin`);
    }
    if ((start === "") !== (stop === "")) {
        const [set, unset] = start === "" ? ["scheduleStop", "scheduleStart"] : ["scheduleStart", "scheduleStop"];
        problems.push(`${unset}: is not set while ${set} is; accepted: both set (a schedule) or both empty (none)`);
        return undefined;
    }
    if (start !== "" && start.split(/\s+/).join(" ") === stop.split(/\s+/).join(" ")) {
        problems.push(`scheduleStop: ${JSON.stringify(stop)} equals scheduleStart; accepted: a stop time other than the start time`);
    }
    return start === "" ? undefined : { start, stop, timeZone };
}

const cronFields = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    { name: "month", min: 1, max: 12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
    // 0 and 7 are both Sunday, as in crontab(5).
    { name: "day of week", min: 0, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

/** Why `expression` is not a five-field unix-cron expression (crontab(5): lists, ranges, steps, names), or undefined. */
export function cronProblem(expression: string): string | undefined {
    const fields = expression.trim().split(/\s+/);
    if (fields.length !== cronFields.length) {
        return `${fields.length} field${fields.length === 1 ? "" : "s"}, not 5`;
    }
    for (const [i, field] of fields.entries()) {
        const spec = cronFields[i];
        const value = (v: string): number | undefined => {
            const named = spec.names?.indexOf(v.toUpperCase()) ?? -1;
            const n = named >= 0 ? named + (spec.name === "month" ? 1 : 0) : /^\d+$/.test(v) ? Number(v) : NaN;
            return Number.isInteger(n) && n >= spec.min && n <= spec.max ? n : undefined;
        };
        for (const item of field.split(",")) {
            const m = /^(\*|[^-/]+(?:-[^-/]+)?)(?:\/(\d+))?$/.exec(item);
            const bounds = m?.[1] === "*" ? [] : (m?.[1].split("-") ?? [""]);
            const values = bounds.map(value);
            const badStep = m?.[2] !== undefined && Number(m[2]) < 1;
            if (!m || values.some((v) => v === undefined) || badStep || (values.length === 2 && values[0]! > values[1]!)) {
                return `the ${spec.name} field "${field}" is not ${spec.min}-${spec.max}${spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : ""}, a list, a range or a step of them`;
            }
        }
    }
    return undefined;
}

/** True for a time zone name the tz database knows (as Node's ICU reads it). */
export function isTimeZone(name: string): boolean {
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: name });
        return name !== "";
    } catch {
        return false;
    }
}

/** A Kubernetes object name (DNS label): namespaces, pools. */
export const kubernetesNamePattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const zonePattern = /^[a-z]+-[a-z]+\d+-[a-z]$/;
/** GCE-safe prefix; 20 characters so that `<name>-nodes` fits a service account id (6-30). */
export const clusterNamePattern = /^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$/;

/** `k8s-<stack>`, squeezed into a valid GCE name prefix (the service account id caps it at 20). */
export function defaultClusterName(stack: string): string {
    const cleaned = `k8s-${stack.toLowerCase().replace(/[^a-z0-9-]+/g, "-")}`
        .slice(0, 20)
        .replace(/-+$/, "");
    return cleaned;
}

/** An IPv4 CIDR block without host bits set; `canonical` is "a.b.c.d/n". */
export interface Cidr {
    address: ipaddr.IPv4;
    prefix: number;
    canonical: string;
}

/** Parses "a.b.c.d/n" (or a bare address, taken as /32); undefined when malformed or host bits are set. */
export function parseCidr(text: string): Cidr | undefined {
    const trimmed = text.trim();
    const block = trimmed.includes("/") ? trimmed : `${trimmed}/32`;
    // Four-part decimal only: ipaddr.js would otherwise also read "10.1" or "0x0a.0.0.1" as addresses.
    if (!ipaddr.IPv4.isValidCIDRFourPartDecimal(block)) {
        return undefined;
    }
    const [address, prefix] = ipaddr.IPv4.parseCIDR(block);
    // Host bits set: GCP and kubeadm would read it differently than intended.
    if (ipaddr.IPv4.networkAddressFromCIDR(block).toString() !== address.toString()) {
        return undefined;
    }
    return { address, prefix, canonical: `${address.toString()}/${prefix}` };
}

/** The `n`th address of a block (n = 2: the first a VM can get, after the network and the gateway). */
export function hostAddress(cidr: string, n: number): string {
    const parsed = parseCidr(cidr);
    if (!parsed) {
        throw new Error(`hostAddress: ${cidr} is not an IPv4 CIDR block`);
    }
    const base = parsed.address.toByteArray().reduce((acc, b) => acc * 256 + b, 0);
    const value = base + n;
    return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

export function cidrsOverlap(a: string, b: string): boolean {
    const x = parseCidr(a);
    const y = parseCidr(b);
    if (!x || !y) {
        return false;
    }
    // Two aligned blocks overlap exactly when one contains the other's first address.
    return x.address.match(y.address, y.prefix) || y.address.match(x.address, x.prefix);
}

/**
 * kubeadm's default node CIDR mask for IPv4 (kubeadm's getClusterNodeMask): the controller manager
 * gives every node a /24 of the pod range, and a node without one never gets Flannel running.
 */
export const nodePodCidrPrefix = 24;
/** kubeadm refuses a pod range more than 16 bits wider than the node mask (PodSubnetNodeMaskMaxDiff). */
const widestPodCidrPrefix = nodePodCidrPrefix - 16;
/** kubeadm: "for 32-bit addresses, the mask must be >= 12" (MaximumBitsForServiceSubnet = 20). */
export const widestServiceCidrPrefix = 12;
/** kubeadm wants at least 10 addresses in the service range (MinimumAddressesInServiceSubnet): a /28. */
const narrowestServiceCidrPrefix = 28;

/** The widest prefix whose block still holds a node-sized block for each of `nodes` nodes. */
export function narrowestPodCidrPrefix(nodes: number): number {
    return nodePodCidrPrefix - Math.ceil(Math.log2(nodes));
}

/** Why `cidr` cannot be the pod range of a cluster of `nodes` nodes (what is accepted), or undefined. */
export function podCidrProblem(cidr: string, nodes: number): string | undefined {
    const parsed = parseCidr(cidr);
    if (!parsed) {
        return undefined; // reported as malformed already
    }
    const narrowest = narrowestPodCidrPrefix(nodes);
    if (parsed.prefix <= narrowest && parsed.prefix >= widestPodCidrPrefix) {
        return undefined;
    }
    return (
        `a block with a /${nodePodCidrPrefix} for each of the ${nodes} nodes (workerCount + the control plane; ` +
        `kubeadm gives every node a /${nodePodCidrPrefix}): /${narrowest} or wider, up to /${widestPodCidrPrefix}`
    );
}

/** Why `cidr` cannot be the service range (what is accepted), or undefined. */
export function serviceCidrProblem(cidr: string): string | undefined {
    const parsed = parseCidr(cidr);
    if (!parsed || (parsed.prefix >= widestServiceCidrPrefix && parsed.prefix <= narrowestServiceCidrPrefix)) {
        return undefined;
    }
    return (
        `an IPv4 CIDR block from /${widestServiceCidrPrefix} to /${narrowestServiceCidrPrefix} ` +
        `(kubeadm: "the mask must be >= ${widestServiceCidrPrefix}", and at least 10 addresses)`
    );
}

/** Machine shapes below kubeadm's floor of 2 vCPU / 4 GB, by name. Undefined when big enough or unknown. */
export function undersizedMachineReason(machineType: string): string | undefined {
    const sharedCore = ["e2-micro", "e2-small", "f1-micro", "g1-small"];
    if (sharedCore.includes(machineType)) {
        return "a shared-core type";
    }
    const custom = /^(?:[a-z0-9]+-)?custom-(\d+)-(\d+)(?:-ext)?$/.exec(machineType);
    if (custom) {
        const [cpus, mb] = [Number(custom[1]), Number(custom[2])];
        return cpus < 2 || mb < 4096 ? `${cpus} vCPU / ${mb} MB` : undefined;
    }
    const predefined = /^[a-z0-9]+-(standard|highmem|highcpu)-(\d+)$/.exec(machineType);
    if (predefined) {
        const cpus = Number(predefined[2]);
        if (cpus < 2) {
            return `${cpus} vCPU`;
        }
        // highcpu shapes carry about 1 GB per vCPU
        if (predefined[1] === "highcpu" && cpus < 4) {
            return `${cpus} vCPU / about ${cpus} GB`;
        }
    }
    return undefined;
}

class Parser {
    constructor(
        private readonly raw: RawConfig,
        private readonly problems: string[],
    ) {}

    value(key: RawKey): string | undefined {
        return this.raw[key];
    }

    private fail(key: RawKey, value: string, accepted: string): void {
        this.problems.push(`${key}: ${JSON.stringify(value)} is not valid; accepted: ${accepted}`);
    }

    requiredString(key: RawKey, accepted: string): string {
        const v = this.value(key);
        if (v === undefined || v.trim() === "") {
            this.problems.push(`${key}: is not set; accepted: ${accepted}`);
            return "";
        }
        return v.trim();
    }

    pattern(key: RawKey, fallback: string, re: RegExp, accepted: string): string {
        const v = this.value(key);
        if (v === undefined) {
            return fallback;
        }
        if (!re.test(v)) {
            this.fail(key, v, accepted);
        }
        return v;
    }

    boolean(key: RawKey, fallback: boolean): boolean {
        const v = this.value(key);
        if (v === undefined) {
            return fallback;
        }
        if (v.trim() !== "true" && v.trim() !== "false") {
            this.fail(key, v, "true or false");
            return fallback;
        }
        return v.trim() === "true";
    }

    oneOf<T extends string>(key: RawKey, fallback: T, accepted: readonly T[]): T {
        const v = this.value(key);
        if (v === undefined) {
            return fallback;
        }
        if (!(accepted as readonly string[]).includes(v.trim())) {
            this.fail(key, v, accepted.map((a) => JSON.stringify(a)).join(", ").replace(/, ([^,]*)$/, " or $1"));
            return fallback;
        }
        return v.trim() as T;
    }

    integer(key: RawKey, fallback: number, min: number, max: number): number {
        const v = this.value(key);
        if (v === undefined) {
            return fallback;
        }
        const n = Number(v.trim());
        if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
            this.fail(key, v, `a whole number from ${min} to ${max}`);
            return fallback;
        }
        return n;
    }

    machineType(key: RawKey, fallback: string): string {
        const v = this.pattern(key, fallback, /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/, "a Compute Engine machine type such as e2-medium");
        const reason = undersizedMachineReason(v);
        if (reason) {
            this.fail(key, v, `a type with at least 2 vCPU and 4 GB memory (kubeadm's floor; e2-medium is the smallest), not ${reason}`);
        }
        return v;
    }

    kubernetesMinor(key: RawKey, fallback: string): string {
        const v = this.value(key);
        if (v === undefined) {
            return fallback;
        }
        // Only minors the whole pinned set supports (components/versions.ts): a kubelet the pinned
        // containerd does not document, or a kubeadm older than the v1beta4 config, fails on the nodes.
        if (!supportedKubernetesMinors.includes(v.trim())) {
            this.fail(key, v, `a Kubernetes minor that every pinned tool supports: ${[supportedKubernetesMinors.slice(0, -1).join(", "), supportedKubernetesMinors.at(-1)].filter(Boolean).join(" or ")} (no patch, no "v"; see docs/upgrading.md)`);
            return fallback;
        }
        return v.trim();
    }

    cidr(key: RawKey, fallback: string): string {
        const v = this.value(key);
        if (v === undefined) {
            return fallback;
        }
        const parsed = parseCidr(v);
        if (!parsed || !v.includes("/")) {
            this.fail(key, v, "an IPv4 CIDR block such as 10.244.0.0/16, without host bits set");
            return "";
        }
        return parsed.canonical;
    }

    cidrList(key: RawKey, fallback: readonly string[]): string[] {
        const v = this.value(key);
        if (v === undefined) {
            return [...fallback];
        }
        const accepted = 'a non-empty list of IPv4 CIDR blocks, e.g. ["203.0.113.7/32"] (a bare address means /32)';
        let items: unknown;
        if (v.trim() === "") {
            this.fail(key, v, accepted);
            return [];
        }
        try {
            items = v.trim().startsWith("[") ? JSON.parse(v) : v.split(",");
        } catch {
            this.fail(key, v, accepted);
            return [];
        }
        if (!Array.isArray(items) || items.length === 0) {
            this.fail(key, v, accepted);
            return [];
        }
        const result: string[] = [];
        for (const item of items) {
            const parsed = typeof item === "string" ? parseCidr(item) : undefined;
            if (!parsed) {
                this.problems.push(`${key}: ${JSON.stringify(item)} in ${v} is not valid; accepted: ${accepted}`);
                continue;
            }
            result.push(parsed.canonical);
        }
        return result;
    }
}
