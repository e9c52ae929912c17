import * as fs from "fs";
import * as path from "path";
import { appConfig, buildAll, fakeIp, Recorded, run, Run } from "./harness";

const T = {
    ns: "kubernetes:core/v1:Namespace",
    deployment: "kubernetes:apps/v1:Deployment",
    service: "kubernetes:core/v1:Service",
    pdb: "kubernetes:policy/v1:PodDisruptionBudget",
    hpa: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    command: "command:local:Command",
};

describe("HttpGoApp", () => {
    let r: Run<any>;
    let deployment: Recorded;
    let service: Recorded;
    let podSpec: any;
    let container: any;
    const ip = fakeIp("k8s-lb-address");
    beforeAll(async () => {
        r = await run((m) => buildAll(m));
        deployment = r.one(T.deployment);
        service = r.one(T.service);
        podSpec = deployment.inputs.spec.template.spec;
        container = podSpec.containers[0];
    });

    test("runs in its own namespace from the config, which enforces the restricted pod security standard", () => {
        const ns = r.byType(T.ns).find((n) => n.parent === "k8s-app")!;
        expect(ns.inputs.metadata.name).toBe(appConfig.namespace);
        expect(ns.inputs.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
        for (const x of [deployment, service, r.one(T.pdb), r.one(T.hpa)]) {
            expect(x.inputs.metadata.namespace).toBe(appConfig.namespace);
        }
    });

    test("Deployment http-go: image and initial replicas from config; the HPA owns replicas afterwards", () => {
        expect(deployment.inputs.metadata.name).toBe("http-go");
        expect(container.image).toBe(appConfig.image);
        expect(deployment.inputs.spec.replicas).toBe(appConfig.replicas);
        expect(deployment.ignoreChanges).toEqual(["spec.replicas"]);
    });

    test("container port 8080 is named http and both probes GET / on it", () => {
        expect(container.ports).toEqual([{ name: "http", containerPort: 8080, protocol: "TCP" }]);
        for (const probe of [container.readinessProbe, container.livenessProbe]) {
            expect(probe.httpGet).toEqual({ path: "/", port: "http" });
        }
    });

    test("requests and limits are set, and 6 replicas' requests fit well inside one e2-medium worker", () => {
        const { requests, limits } = container.resources;
        expect(requests).toEqual({ cpu: "50m", memory: "32Mi" });
        expect(limits).toEqual({ cpu: "250m", memory: "64Mi" });
        const milli = (q: string) => (q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000);
        const mebi = (q: string) => Number(q.replace(/Mi$/, ""));
        // An e2-medium worker has ~1930m / ~3.3Gi allocatable; keep the app below a quarter of it.
        expect(milli(requests.cpu) * appConfig.maxReplicas).toBeLessThanOrEqual(1930 / 4);
        expect(mebi(requests.memory) * appConfig.maxReplicas).toBeLessThanOrEqual(3300 / 4);
        expect(milli(limits.cpu)).toBeGreaterThan(milli(requests.cpu));
    });

    test("access logs are off, stated explicitly; the Go runtime is sized to the container's limits", () => {
        const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
        expect(env.ACCESS_LOG).toBe("off");
        // One scheduler thread for a limit below one CPU (250m), not Go's container minimum of 2.
        const cpuMilli = Number(container.resources.limits.cpu.replace(/m$/, ""));
        expect(env.GOMAXPROCS).toBe(String(Math.max(1, Math.floor(cpuMilli / 1000))));
        expect(env.GOMAXPROCS).toBe("1");
        const mib = (q: string) => Number(q.replace(/MiB?$/, ""));
        expect(env.GOMEMLIMIT).toMatch(/^\d+MiB$/);
        expect(mib(env.GOMEMLIMIT)).toBeGreaterThanOrEqual(16 + 8); // the app's 16 MB GC floor plus runtime
        expect(mib(env.GOMEMLIMIT)).toBeLessThan(mib(container.resources.limits.memory));
    });

    test("rolls out one extra pod at a time, never fewer than before", () => {
        expect(deployment.inputs.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    });

    test("spreads pods over nodes softly, by the same labels", () => {
        const labels = deployment.inputs.spec.template.metadata.labels;
        expect(podSpec.topologySpreadConstraints).toEqual([
            expect.objectContaining({
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                maxSkew: 1,
                labelSelector: { matchLabels: labels },
            }),
        ]);
    });

    test("meets the restricted Pod Security Standard (as the namespace enforces) with numeric non-root ids", () => {
        expect(podSpec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } });
        expect(podSpec.automountServiceAccountToken).toBe(false);
        expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
        // The restricted profile's other rules: nothing host-level, no privileged, no added caps.
        expect(podSpec.hostNetwork ?? false).toBe(false);
        expect(podSpec.hostPID ?? false).toBe(false);
        expect(podSpec.volumes ?? []).toEqual([]);
        expect(container.securityContext.privileged ?? false).toBe(false);
        expect(container.securityContext.capabilities.add).toBeUndefined();
    });

    test("the Service selects exactly the pod template's labels and the Deployment selector agrees", () => {
        const templateLabels = deployment.inputs.spec.template.metadata.labels;
        expect(Object.keys(templateLabels).length).toBeGreaterThan(0);
        expect(service.inputs.spec.selector).toEqual(templateLabels);
        expect(deployment.inputs.spec.selector).toEqual({ matchLabels: templateLabels });
    });

    test("the Service is a LoadBalancer on port 80 whose targetPort names a container port", () => {
        expect(service.inputs.spec.type).toBe("LoadBalancer");
        expect(service.inputs.spec.externalTrafficPolicy).toBe("Cluster");
        const [port] = service.inputs.spec.ports;
        expect(service.inputs.spec.ports).toHaveLength(1);
        expect(port.port).toBe(80);
        const names = podSpec.containers.flatMap((c: any) => c.ports.map((p: any) => p.name));
        expect(names).toContain(port.targetPort);
    });

    test("the Service asks MetalLB for the reserved IP from the pool, by annotation", () => {
        const annotations = service.inputs.metadata.annotations;
        expect(annotations["metallb.io/loadBalancerIPs"]).toBe(ip);
        expect(annotations["metallb.io/address-pool"]).toBe(r.result.poolName);
        expect(service.inputs.spec.loadBalancerIP).toBeUndefined(); // deprecated field, not used
    });

    test("PodDisruptionBudget allows one pod down, over the same pods", () => {
        const pdb = r.one(T.pdb);
        expect(pdb.inputs.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: deployment.inputs.spec.template.metadata.labels } });
    });

    test("HPA v2 scales the Deployment on CPU utilisation between the configured bounds, after metrics-server", () => {
        const hpa = r.one(T.hpa);
        expect(hpa.inputs.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "http-go" });
        expect(hpa.inputs.spec.minReplicas).toBe(appConfig.replicas);
        expect(hpa.inputs.spec.maxReplicas).toBe(appConfig.maxReplicas);
        expect(hpa.inputs.spec.metrics).toEqual([
            { type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: appConfig.cpuTargetPercent } } },
        ]);
        expect(hpa.dependsOn).toEqual(["k8s-metrics"]);
    });

    test("the reachability check GETs http://<reserved ip>/ with the shipped wait script, bounded", () => {
        const check = r.one(T.command);
        expect(check.inputs.create).toBe(`node - 'http://${ip}/' --timeout-seconds 300 --interval-seconds 5`);
        expect(check.inputs.stdin).toBe(fs.readFileSync(path.join(__dirname, "../../tools/wait-for-url.js"), "utf8"));
        expect(check.inputs.environment.WAIT_HINT).toContain("http-go/http-go");
        expect(check.provider).toBeUndefined();
    });

    test("ordering by data: the Service follows the pool and the address; the check follows the Service and the Deployment", () => {
        expect(service.dataDependencies).toEqual(expect.arrayContaining(["k8s-metallb-pool", "k8s-lb-address"]));
        expect(r.one(T.command).dataDependencies).toEqual(expect.arrayContaining(["k8s-app-service", "k8s-app-deployment", "k8s-lb-address"]));
        expect(service.dependsOn).toEqual([]);
    });

    test("the check re-runs when the IP or the pod template changes", () => {
        const triggers = r.one(T.command).inputs.triggers;
        expect(triggers[0]).toBe(ip);
        expect(JSON.parse(triggers[1])).toEqual(deployment.inputs.spec.template);
    });

    test("url is http://<reserved ip>/ and is derived from the check's output", async () => {
        expect(r.result.url).toBe(`http://${ip}/`);
        let url: any;
        await run((m) => {
            url = buildAll(m).url;
            return {};
        });
        const dependsOn = [...(await url.resources())].map((x: any) => x.__name);
        expect(dependsOn).toContain("k8s-app-reachable");
    });
});

describe("HttpGoApp argument validation", () => {
    test("refuses maxReplicas below replicas, a bad namespace and an out-of-range CPU target", async () => {
        await run((m) => {
            const provider = new m.k8s.Provider("p", { kubeconfig: "x" });
            expect(
                () =>
                    new m.httpGoApp.HttpGoApp("app", {
                        provider,
                        app: { namespace: "Bad NS", image: "i", replicas: 4, maxReplicas: 2, cpuTargetPercent: 0 },
                        loadBalancerIp: "203.0.113.9",
                        addressPool: "pool",
                        trafficPath: "{}",
                    }),
            ).toThrow(/namespace "Bad NS".*maxReplicas 2.*cpuTargetPercent 0/);
            return {};
        });
    });
});
