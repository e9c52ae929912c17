/**
 * The guardrails this project promises, as plain policy objects so that tests can call each
 * `validateResource` / `validateStack` directly. `index.ts` puts them in the PolicyPack.
 *
 * Values that are not known yet (outputs of resources that a preview has not created) reach a
 * policy through @pulumi/policy's unknown-checking proxy, which throws on access. Every read here
 * goes through `known()`, so an unknown value never fails a policy: the check that needs it is
 * skipped for that value, and everything else is still checked.
 */
import {
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
    UnknownValueError,
} from "@pulumi/policy";

export const types = {
    firewall: "gcp:compute/firewall:Firewall",
    instance: "gcp:compute/instance:Instance",
    address: "gcp:compute/address:Address",
    service: "kubernetes:core/v1:Service",
    deployment: "kubernetes:apps/v1:Deployment",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    daemonSet: "kubernetes:apps/v1:DaemonSet",
} as const;

// ---------------------------------------------------------------------------------------------
// Unknown values

/** Stands for a value that is not known yet (preview). */
export const UNKNOWN: unique symbol = Symbol("unknown");
export type Maybe<T> = T | typeof UNKNOWN;

/** Runs `read`; if it touches a value that is unknown at preview, returns UNKNOWN instead of throwing. */
export function known<T>(read: () => T): Maybe<T> {
    try {
        return read();
    } catch (e) {
        if (isUnknownValueError(e)) {
            return UNKNOWN;
        }
        throw e;
    }
}

function isUnknownValueError(e: unknown): boolean {
    // The name check covers a second copy of @pulumi/policy (root node_modules vs the pack's own).
    return e instanceof UnknownValueError || (e instanceof Error && e.constructor.name === "UnknownValueError");
}

/** Elements of a possibly unknown array; unknown elements come back as UNKNOWN. Not an array: []. */
function knownElements(read: () => unknown): Maybe<Maybe<any>[]> {
    const value = known(read);
    if (value === UNKNOWN) {
        return UNKNOWN;
    }
    if (!Array.isArray(value)) {
        return [];
    }
    const out: Maybe<any>[] = [];
    for (let i = 0; i < value.length; i++) {
        out.push(known(() => value[i]));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// no-open-admin-ports

/** Ports that give control of the cluster: SSH to the nodes and the Kubernetes API server. */
export const adminPorts: ReadonlyArray<{ port: number; what: string }> = [
    { port: 22, what: "SSH" },
    { port: 6443, what: "Kubernetes API" },
];

/** Source ranges that mean "anyone on the internet". */
export const worldRanges = ["0.0.0.0/0", "::/0"];

export const openAdminAccessSchema: PolicyConfigSchema = {
    properties: {
        allowOpenAdminAccess: {
            type: "boolean",
            default: false,
            description: "Accept firewall rules that open SSH (22) or the Kubernetes API (6443) to the whole internet.",
        },
    },
};

export interface OpenAdminAccessConfig {
    /** Accept firewalls that open SSH / the API server to the whole internet (the default stack config does). */
    allowOpenAdminAccess?: boolean;
}

/** True when a firewall `ports` list (absent or empty = every port) admits `port`; UNKNOWN when it cannot tell. */
export function portsInclude(ports: Maybe<Maybe<unknown>[]>, port: number): Maybe<boolean> {
    if (ports === UNKNOWN) {
        return UNKNOWN;
    }
    if (ports.length === 0) {
        return true;
    }
    let sawUnknown = false;
    for (const entry of ports) {
        if (entry === UNKNOWN) {
            sawUnknown = true;
            continue;
        }
        const text = String(entry).trim();
        const range = /^(\d+)\s*-\s*(\d+)$/.exec(text);
        if (range && Number(range[1]) <= port && port <= Number(range[2])) {
            return true;
        }
        if (/^\d+$/.test(text) && Number(text) === port) {
            return true;
        }
    }
    return sawUnknown ? UNKNOWN : false;
}

/** True when a firewall `protocol` admits TCP ("tcp", "all" or IANA number 6). */
export function protocolIsTcp(protocol: unknown): boolean {
    const p = String(protocol ?? "").trim().toLowerCase();
    return p === "tcp" || p === "all" || p === "6";
}

export const noOpenAdminPorts: ResourceValidationPolicy = {
    name: "no-open-admin-ports",
    description:
        "No firewall rule may open TCP 22 (SSH) or 6443 (Kubernetes API) to 0.0.0.0/0 unless the policy config sets allowOpenAdminAccess: true.",
    // Advisory by default: the project's default stack config opens both to 0.0.0.0/0 so that a first
    // `pulumi up` works from any laptop, and the README asks users to narrow them. A stack makes it
    // blocking with {"no-open-admin-ports": {"enforcementLevel": "mandatory"}} in its policy config.
    enforcementLevel: "advisory",
    configSchema: openAdminAccessSchema,
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (args.type !== types.firewall) {
            return;
        }
        if (args.getConfig<OpenAdminAccessConfig>().allowOpenAdminAccess === true) {
            return;
        }
        const props = args.props;
        const direction = known(() => props.direction);
        if (direction === UNKNOWN || (direction !== undefined && String(direction).toUpperCase() !== "INGRESS")) {
            return;
        }
        if (known(() => props.disabled) === true) {
            return;
        }
        const openTo = worldSources(props);
        if (openTo.length === 0) {
            return;
        }
        const allows = knownElements(() => props.allows);
        if (allows === UNKNOWN) {
            return;
        }
        const opened = adminPorts.filter(({ port }) =>
            allows.some((allow) => {
                if (allow === UNKNOWN) {
                    return false;
                }
                const protocol = known(() => allow.protocol);
                if (protocol === UNKNOWN || !protocolIsTcp(protocol)) {
                    return false;
                }
                return portsInclude(knownElements(() => allow.ports), port) === true;
            }),
        );
        if (opened.length === 0) {
            return;
        }
        const what = opened.map(({ port, what }) => `TCP ${port} (${what})`).join(" and ");
        reportViolation(
            `Firewall "${args.name}" opens ${what} to ${openTo.join(", ")}. Narrow its sourceRanges ` +
                `(stack config sshSourceRanges / apiSourceRanges) to your own addresses, or accept it with ` +
                `allowOpenAdminAccess: true in this policy's config.`,
        );
    },
};

/** The world-wide sources an ingress firewall admits: listed ones, or 0.0.0.0/0 when it names no source at all. */
function worldSources(props: Record<string, any>): string[] {
    const ranges = knownElements(() => props.sourceRanges);
    if (ranges === UNKNOWN) {
        return [];
    }
    const listed = ranges.filter((r): r is string => r !== UNKNOWN && worldRanges.includes(String(r).trim()));
    if (listed.length > 0) {
        return [...new Set(listed.map((r) => r.trim()))];
    }
    if (ranges.length > 0) {
        return [];
    }
    // GCP applies an ingress rule without sourceRanges, sourceTags or sourceServiceAccounts to 0.0.0.0/0.
    const tags = knownElements(() => props.sourceTags);
    const accounts = knownElements(() => props.sourceServiceAccounts);
    if (tags === UNKNOWN || accounts === UNKNOWN || tags.length > 0 || accounts.length > 0) {
        return [];
    }
    return ["0.0.0.0/0 (no source given)"];
}

// ---------------------------------------------------------------------------------------------
// shielded-vms

export const shieldedFlags = ["enableSecureBoot", "enableVtpm", "enableIntegrityMonitoring"] as const;

export const shieldedVms: ResourceValidationPolicy = {
    name: "shielded-vms",
    description: "Every VM instance enables Shielded VM Secure Boot, vTPM and integrity monitoring.",
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (args.type !== types.instance) {
            return;
        }
        const config = known(() => args.props.shieldedInstanceConfig);
        if (config === UNKNOWN) {
            return;
        }
        const missing = shieldedFlags.filter((flag) => {
            if (config === undefined || config === null) {
                return true;
            }
            const value = known(() => config[flag]);
            return value !== UNKNOWN && value !== true;
        });
        if (missing.length > 0) {
            reportViolation(
                `Instance "${args.name}" must set shieldedInstanceConfig { ${shieldedFlags.map((f) => `${f}: true`).join(", ")} }; ` +
                    `not true: ${missing.join(", ")}.`,
            );
        }
    },
};

// ---------------------------------------------------------------------------------------------
// no-default-service-account

export const defaultComputeAccountSuffix = "-compute@developer.gserviceaccount.com";

export const noDefaultServiceAccount: ResourceValidationPolicy = {
    name: "no-default-service-account",
    description:
        "Every VM instance runs as a dedicated service account, never the Compute Engine default account (PROJECT_NUMBER-compute@developer.gserviceaccount.com).",
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (args.type !== types.instance) {
            return;
        }
        const account = known(() => args.props.serviceAccount);
        if (account === UNKNOWN) {
            return;
        }
        if (account === undefined || account === null) {
            reportViolation(
                `Instance "${args.name}" has no serviceAccount block; give it a dedicated service account with only the roles it needs.`,
            );
            return;
        }
        const email = known(() => account.email);
        // At preview the email of a service account created in the same update is not known yet
        // (UNKNOWN, or absent): that must not fail the policy. Only a known default account does.
        if (email === UNKNOWN || email === undefined || email === null) {
            return;
        }
        const text = String(email).trim().toLowerCase();
        if (text === "default" || text.endsWith(defaultComputeAccountSuffix)) {
            reportViolation(
                `Instance "${args.name}" runs as the Compute Engine default service account (${String(email)}), ` +
                    `which has broad project access; use a dedicated service account.`,
            );
        }
    },
};

// ---------------------------------------------------------------------------------------------
// no-default-network

/** True when a network reference (name, id or self link) names the project's "default" network. */
export function isDefaultNetwork(network: unknown): boolean {
    if (typeof network !== "string") {
        return false;
    }
    const text = network.trim();
    return text === "default" || text.endsWith("/default");
}

export const noDefaultNetwork: ResourceValidationPolicy = {
    name: "no-default-network",
    description:
        "No resource uses the project's auto-created \"default\" VPC network (its permissive default firewall rules are not this project's).",
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (!args.type.startsWith("gcp:")) {
            return;
        }
        const props = args.props;
        const network = known(() => props.network);
        if (network !== UNKNOWN && isDefaultNetwork(network)) {
            reportViolation(`${shortType(args.type)} "${args.name}" uses the default network (${String(network)}); use the cluster's own VPC.`);
        }
        const nics = knownElements(() => props.networkInterfaces);
        if (nics === UNKNOWN) {
            return;
        }
        nics.forEach((nic, i) => {
            if (nic === UNKNOWN || nic === null || typeof nic !== "object") {
                return;
            }
            const nicNetwork = known(() => nic.network);
            const nicSubnetwork = known(() => nic.subnetwork);
            if (nicNetwork !== UNKNOWN && isDefaultNetwork(nicNetwork)) {
                reportViolation(
                    `${shortType(args.type)} "${args.name}" networkInterfaces[${i}] uses the default network (${String(nicNetwork)}); use the cluster's own VPC.`,
                );
            } else if (isAbsent(nicNetwork) && isAbsent(nicSubnetwork)) {
                reportViolation(
                    `${shortType(args.type)} "${args.name}" networkInterfaces[${i}] names neither a network nor a subnetwork, so GCP attaches it to the default network; set the cluster's subnetwork.`,
                );
            }
        });
    },
};

function isAbsent(value: Maybe<unknown>): boolean {
    return value === undefined || value === null || value === "";
}

// ---------------------------------------------------------------------------------------------
// workload-probes-and-requests

export const workloadTypes: readonly string[] = [types.deployment, types.statefulSet, types.daemonSet];

/**
 * Components whose children come from someone else's manifests or charts rendered by Pulumi
 * (a resource's URN carries its parents' types). Those workloads are not "declared by the
 * program"; like Helm releases, they are out of this policy's scope.
 */
export const thirdPartyManifestParents = [
    "kubernetes:yaml:ConfigFile",
    "kubernetes:yaml:ConfigGroup",
    "kubernetes:yaml/v2:ConfigFile",
    "kubernetes:yaml/v2:ConfigGroup",
    "kubernetes:helm.sh/v3:Chart",
    "kubernetes:helm.sh/v4:Chart",
    "kubernetes:kustomize:Directory",
    "kubernetes:kustomize/v2:Directory",
];

/** The types of a URN's parents, outermost first: urn:pulumi:stack::project::a$b$c::name -> [a, b]. */
export function parentTypesOfUrn(urn: string): string[] {
    const parts = urn.split("::");
    if (parts.length < 4) {
        return [];
    }
    const chain = parts[2].split("$");
    return chain.slice(0, -1);
}

export const workloadProbesAndRequests: ResourceValidationPolicy = {
    name: "workload-probes-and-requests",
    description:
        "Every container of a Deployment, StatefulSet or DaemonSet that the program declares has a readinessProbe, a livenessProbe and cpu and memory requests.",
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (!workloadTypes.includes(args.type)) {
            return;
        }
        if (parentTypesOfUrn(args.urn).some((t) => thirdPartyManifestParents.includes(t))) {
            return;
        }
        const kind = shortType(args.type);
        const containers = knownElements(() => args.props.spec?.template?.spec?.containers);
        if (containers === UNKNOWN) {
            return;
        }
        containers.forEach((container, i) => {
            if (container === UNKNOWN || container === null || typeof container !== "object") {
                return;
            }
            const name = known(() => container.name);
            const label = typeof name === "string" ? `"${name}"` : `#${i}`;
            const missing: string[] = [];
            for (const probe of ["readinessProbe", "livenessProbe"]) {
                if (isAbsent(known(() => container[probe]))) {
                    missing.push(probe);
                }
            }
            for (const resource of ["cpu", "memory"]) {
                const request = known(() => container.resources?.requests?.[resource]);
                if (isAbsent(request)) {
                    missing.push(`resources.requests.${resource}`);
                }
            }
            if (missing.length > 0) {
                reportViolation(`${kind} "${args.name}" container ${label} has no ${missing.join(", ")}.`);
            }
        });
    },
};

// ---------------------------------------------------------------------------------------------
// loadbalancer-ip-reserved

export const loadBalancerIpAnnotations = ["metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs"];

export const loadBalancerIpReserved: StackValidationPolicy = {
    name: "loadbalancer-ip-reserved",
    description:
        "Every Service of type LoadBalancer pins its IP with the MetalLB loadBalancerIPs annotation to the address of a gcp.compute.Address of this stack, so the public IP survives re-creation and is the one the GCP load balancer forwards.",
    enforcementLevel: "mandatory",
    validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
        const reserved: string[] = [];
        let someAddressUnknown = false;
        for (const r of args.resources) {
            if (r.type !== types.address) {
                continue;
            }
            const address = known(() => r.props.address);
            if (address === UNKNOWN || isAbsent(address)) {
                someAddressUnknown = true;
            } else {
                reserved.push(String(address).trim());
            }
        }
        for (const service of args.resources.filter((r) => r.type === types.service)) {
            checkLoadBalancerService(service, reserved, someAddressUnknown, reportViolation);
        }
    },
};

function checkLoadBalancerService(service: PolicyResource, reserved: string[], someAddressUnknown: boolean, reportViolation: ReportViolation): void {
    const type = known(() => service.props.spec?.type);
    if (type !== "LoadBalancer") {
        return;
    }
    const annotations = known(() => service.props.metadata?.annotations);
    if (annotations === UNKNOWN) {
        return;
    }
    let value: Maybe<unknown> = undefined;
    for (const key of loadBalancerIpAnnotations) {
        const v = annotations === undefined || annotations === null ? undefined : known(() => annotations[key]);
        if (v === UNKNOWN) {
            return;
        }
        if (!isAbsent(v)) {
            value = v;
            break;
        }
    }
    if (value === undefined) {
        reportViolation(
            `Service "${service.name}" is of type LoadBalancer but has no ${loadBalancerIpAnnotations[0]} annotation; ` +
                `set it to the address of a gcp.compute.Address of this stack.`,
            service.urn,
        );
        return;
    }
    if (someAddressUnknown) {
        return;
    }
    const ips = String(value)
        .split(",")
        .map((ip) => ip.trim())
        .filter((ip) => ip !== "");
    const stray = ips.filter((ip) => !reserved.includes(ip));
    if (stray.length > 0 || ips.length === 0) {
        const have = reserved.length > 0 ? reserved.join(", ") : "none";
        reportViolation(
            `Service "${service.name}" asks MetalLB for ${ips.length > 0 ? stray.join(", ") : "an empty address"}, which is not ` +
                `the address of any gcp.compute.Address of this stack (reserved: ${have}).`,
            service.urn,
        );
    }
}

// ---------------------------------------------------------------------------------------------

/** "gcp:compute/firewall:Firewall" -> "Firewall". */
function shortType(type: string): string {
    return type.split(":").pop() ?? type;
}

/** Every policy of the pack, in the order Pulumi reports them. */
export const policies = [
    noOpenAdminPorts,
    shieldedVms,
    noDefaultServiceAccount,
    noDefaultNetwork,
    workloadProbesAndRequests,
    loadBalancerIpReserved,
];
