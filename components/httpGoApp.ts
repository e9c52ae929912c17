import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { AppConfig, kubernetesNamePattern } from "./config";

/** The wait script; its text is handed to `node -` on stdin, so it runs from any working directory. */
export const waitForUrlScript = path.join(__dirname, "..", "tools", "wait-for-url.js");

/** How long `pulumi up` waits for the app to answer through the load balancer. */
export const WAIT_TIMEOUT_SECONDS = 300;

/** The port http-go listens on inside the pod. */
export const CONTAINER_PORT = 8080;

/** UID/GID of the pod: distroless's `nonroot`; numeric so runAsNonRoot can be checked for any image. */
export const APP_UID = 65532;

/** The container's CPU limit in millicores and memory limit in MiB. */
export const APP_CPU_LIMIT_MILLI = 250;
export const APP_MEMORY_LIMIT_MIB = 64;

/**
 * Environment of the http-go container; measurements behind it in docs/app-performance.md.
 * ACCESS_LOG is the app's default, stated here so that turning per-request logs on is a one-line
 * change; under load they cost more CPU than the requests. GOMAXPROCS: one scheduler thread per
 * whole CPU of the limit (Go's own container default never goes below 2), which served more
 * requests within a 250m quota in most runs. GOMEMLIMIT keeps the Go heap, which the app lets grow to 16 MB
 * between collections, well below the memory limit. GOMAXPROCS and GOMEMLIMIT are read by any Go
 * binary, so they apply to the seed's image too; ACCESS_LOG only to images built from app/.
 */
export const APP_ENV: Record<string, string> = {
    ACCESS_LOG: "off",
    GOMAXPROCS: String(Math.max(1, Math.floor(APP_CPU_LIMIT_MILLI / 1000))),
    GOMEMLIMIT: `${(APP_MEMORY_LIMIT_MIB * 3) / 4}MiB`,
};

export interface HttpGoAppArgs {
    /** The cluster's provider; every Kubernetes object and nothing else goes through it. */
    provider: k8s.Provider;
    /** Namespace, image, replicas (initial and floor), maxReplicas, cpuTargetPercent. */
    app: AppConfig;
    /** The load balancer's reserved IPv4 address; MetalLB puts it into the Service's status. */
    loadBalancerIp: pulumi.Input<string>;
    /** Name of MetalLB's IPAddressPool holding that address (pass `MetalLb.poolName`: a data link). */
    addressPool: pulumi.Input<string>;
    /**
     * Identity of the load balancer path in front of the workers (pass `AppLoadBalancer.trafficPath`):
     * the reachability check waits for it and re-runs whenever it changes.
     */
    trafficPath: pulumi.Input<string>;
    /**
     * Created before the HorizontalPodAutoscaler when given (pass the MetricsServer component), so
     * the autoscaler has CPU numbers from its first minute. Nothing else waits for it.
     */
    metricsServer?: pulumi.Resource;
}

/**
 * The pod of http-go: non-root, read-only, no capabilities ("restricted"), softly spread over the
 * workers, probed on `/`, sized for a small node (docs/app-performance.md).
 */
export function httpGoPodSpec(image: pulumi.Input<string>, labels: Record<string, string>): k8s.types.input.core.v1.PodSpec {
    return {
        // The app never calls the Kubernetes API.
        automountServiceAccountToken: false,
        securityContext: {
            runAsNonRoot: true,
            runAsUser: APP_UID,
            runAsGroup: APP_UID,
            seccompProfile: { type: "RuntimeDefault" },
        },
        // Soft spread over the workers: one node's loss takes at most about
        // half the pods, yet pods still schedule when only one worker is left.
        // The tainted control-plane node is not counted as an empty domain.
        topologySpreadConstraints: [
            {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: { matchLabels: labels },
                matchLabelKeys: ["pod-template-hash"],
                nodeTaintsPolicy: "Honor",
            },
        ],
        containers: [
            {
                name: "http-go",
                image,
                ports: [{ name: "http", containerPort: CONTAINER_PORT, protocol: "TCP" }],
                env: Object.entries(APP_ENV).map(([name, value]) => ({ name, value })),
                // `/`, not `/healthz`: the seed's image serves only `/`.
                readinessProbe: {
                    httpGet: { path: "/", port: "http" },
                    periodSeconds: 5,
                    timeoutSeconds: 2,
                    failureThreshold: 2,
                },
                livenessProbe: {
                    httpGet: { path: "/", port: "http" },
                    initialDelaySeconds: 5,
                    periodSeconds: 10,
                    timeoutSeconds: 2,
                    failureThreshold: 3,
                },
                // Sizing and the measured cost per request: docs/app-performance.md.
                resources: {
                    requests: { cpu: "50m", memory: "32Mi" },
                    limits: { cpu: `${APP_CPU_LIMIT_MILLI}m`, memory: `${APP_MEMORY_LIMIT_MIB}Mi` },
                },
                securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ["ALL"] },
                },
            },
        ],
    };
}

/**
 * The http-go app: Deployment, LoadBalancer Service on the reserved IP, PodDisruptionBudget and
 * CPU-based HorizontalPodAutoscaler in its own namespace, and a check that `http://<ip>/` answers
 * through the real GCP load balancer before `url` is exported.
 */
export class HttpGoApp extends pulumi.ComponentResource {
    readonly namespace: k8s.core.v1.Namespace;
    readonly deployment: k8s.apps.v1.Deployment;
    readonly service: k8s.core.v1.Service;
    readonly podDisruptionBudget: k8s.policy.v1.PodDisruptionBudget;
    readonly autoscaler: k8s.autoscaling.v2.HorizontalPodAutoscaler;
    readonly reachable: command.local.Command;
    /** `http://<ip>/`, resolved only after the app answered 200 through the load balancer. */
    readonly url: pulumi.Output<string>;

    constructor(name: string, args: HttpGoAppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-gcp:app:HttpGoApp", name, {}, opts);
        validateArgs(args);
        const { app, provider } = args;
        const k8sOpts = { parent: this, provider };

        // One object for the selector, the pod template, the spread, the PDB and the Service, so
        // that none of them can select something else than the pods this Deployment runs.
        const labels = { "app.kubernetes.io/name": "http-go" };

        // The pod below meets the "restricted" Pod Security Standard; enforcing it keeps it so.
        this.namespace = new k8s.core.v1.Namespace(
            `${name}-ns`,
            {
                metadata: {
                    name: app.namespace,
                    labels: {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            },
            k8sOpts,
        );
        const namespace = this.namespace.metadata.name;

        this.deployment = new k8s.apps.v1.Deployment(
            `${name}-deployment`,
            {
                metadata: { name: "http-go", namespace, labels },
                spec: {
                    replicas: app.replicas,
                    selector: { matchLabels: labels },
                    // Never below the current count during a rollout: one extra pod at a time.
                    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
                    template: {
                        metadata: { labels },
                        spec: httpGoPodSpec(app.image, labels),
                    },
                },
            },
            // The HPA owns the replica count once it exists; without this every `pulumi up` would
            // reset a scaled-out Deployment to the configured floor (and the HPA would scale it
            // back), flapping the app. The configured count still applies: it is the HPA's minimum.
            { ...k8sOpts, ignoreChanges: ["spec.replicas"] },
        );

        this.service = new k8s.core.v1.Service(
            `${name}-service`,
            {
                metadata: {
                    name: "http-go",
                    namespace,
                    labels,
                    annotations: {
                        "metallb.io/loadBalancerIPs": args.loadBalancerIp,
                        "metallb.io/address-pool": args.addressPool,
                    },
                },
                spec: {
                    type: "LoadBalancer",
                    selector: labels,
                    ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
                    // GCP's health check probes kube-proxy on :10256, which under Cluster policy is
                    // healthy on every working node, and every node forwards to pods on any node.
                    // Local would need a per-Service healthCheckNodePort as the probe target instead.
                    externalTrafficPolicy: "Cluster",
                },
            },
            k8sOpts,
        );

        this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
            `${name}-pdb`,
            {
                metadata: { name: "http-go", namespace, labels },
                spec: {
                    // maxUnavailable rather than minAvailable: with replicas == 1 a drain (scale-in
                    // of the workers, node upgrade) can still evict the pod instead of hanging.
                    maxUnavailable: 1,
                    selector: { matchLabels: labels },
                },
            },
            k8sOpts,
        );

        this.autoscaler = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
            `${name}-hpa`,
            {
                metadata: { name: "http-go", namespace, labels },
                spec: {
                    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: this.deployment.metadata.name },
                    minReplicas: app.replicas,
                    maxReplicas: app.maxReplicas,
                    metrics: [
                        {
                            type: "Resource",
                            resource: { name: "cpu", target: { type: "Utilization", averageUtilization: app.cpuTargetPercent } },
                        },
                    ],
                },
            },
            { ...k8sOpts, dependsOn: args.metricsServer ? [args.metricsServer] : [] },
        );

        const target = pulumi.interpolate`http://${args.loadBalancerIp}/`;
        this.reachable = this.checkReachable(name, args, target);

        // Derived from the check's output: exported only once the check passed.
        this.url = pulumi.all([this.reachable.stdout, target]).apply(([, url]) => url);

        this.registerOutputs({ url: this.url, namespace });
    }

    /**
     * MetalLB writes the Service's status whether or not GCP delivers traffic, so the Service
     * being "ready" proves nothing about the path from the internet. This step does: it runs on the
     * machine running Pulumi, GETs http://<ip>/ until it answers 200 or the bound passes, and fails
     * `pulumi up` with what to check otherwise. It waits for the Service (the hint names it) and
     * every part of the load balancer path, and re-runs when the address, the pod template or any
     * part of that path changes (a replaced worker included).
     */
    private checkReachable(name: string, args: HttpGoAppArgs, target: pulumi.Output<string>): command.local.Command {
        return new command.local.Command(
            `${name}-reachable`,
            {
                create: pulumi.interpolate`node - '${target}' --timeout-seconds ${WAIT_TIMEOUT_SECONDS} --interval-seconds 5`,
                stdin: fs.readFileSync(waitForUrlScript, "utf8"),
                environment: {
                    WAIT_HINT: pulumi.interpolate`Service ${this.service.metadata.namespace}/${this.service.metadata.name}: kubectl -n ${this.service.metadata.namespace} describe service ${this.service.metadata.name}`,
                },
                triggers: [args.loadBalancerIp, pulumi.jsonStringify(this.deployment.spec.template), args.trafficPath],
                logging: "stderr",
                addPreviousOutputInEnv: false,
            },
            { parent: this },
        );
    }
}

function validateArgs(args: HttpGoAppArgs): void {
    const { app } = args;
    const problems: string[] = [];
    if (!kubernetesNamePattern.test(app.namespace)) {
        problems.push(`namespace "${app.namespace}" is not a valid Kubernetes namespace name`);
    }
    if (app.image.trim() === "" || /\s/.test(app.image)) {
        problems.push(`image "${app.image}" is not an image reference`);
    }
    if (!Number.isInteger(app.replicas) || app.replicas < 1) {
        problems.push(`replicas ${app.replicas} must be a whole number >= 1`);
    }
    if (!Number.isInteger(app.maxReplicas) || app.maxReplicas < app.replicas) {
        problems.push(`maxReplicas ${app.maxReplicas} must be a whole number >= replicas (${app.replicas})`);
    }
    if (!Number.isInteger(app.cpuTargetPercent) || app.cpuTargetPercent < 1 || app.cpuTargetPercent > 100) {
        problems.push(`cpuTargetPercent ${app.cpuTargetPercent} must be a whole number from 1 to 100`);
    }
    if (problems.length > 0) {
        throw new Error(`HttpGoApp: ${problems.join("; ")}`);
    }
}
