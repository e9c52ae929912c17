import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import {
    cidrsOverlap,
    ConfigError,
    defaultClusterName,
    defaults,
    minimumKubernetesMinor,
    parseCidr,
    parseConfig,
    projectKeys,
    RawConfig,
    cronProblem,
    isTimeZone,
    undersizedMachineReason,
} from "../components/config";
import { supportedKubernetesMinors } from "../components/versions";

const base: RawConfig = { "gcp:project": "my-project" };

function problemsOf(raw: RawConfig): string[] {
    try {
        parseConfig({ ...base, ...raw }, "dev");
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

describe("parseConfig defaults", () => {
    test("only gcp:project set gives the documented defaults", () => {
        const cfg = parseConfig(base, "dev");
        expect(cfg).toMatchObject({
            project: "my-project",
            region: "us-central1",
            zone: "us-central1-a",
            clusterName: "k8s-dev",
            workerCount: 2,
            machineType: "e2-medium",
            kubernetesVersion: "1.37",
            sshSourceRanges: ["0.0.0.0/0"],
            apiSourceRanges: ["0.0.0.0/0"],
            podCidr: "10.244.0.0/16",
            serviceCidr: "10.96.0.0/12",
            subnetCidr: "10.240.0.0/24",
            bootDiskSizeGb: 30,
            app: { namespace: "http-go", image: "docker.io/gasbugs/http-go:latest", replicas: 3, maxReplicas: 6, cpuTargetPercent: 70 },
        });
    });

    test("overrides are parsed and normalised", () => {
        const cfg = parseConfig(
            {
                ...base,
                "gcp:region": "europe-west1",
                "gcp:zone": "europe-west1-b",
                workerCount: "5",
                machineType: "n2-standard-4",
                kubernetesVersion: "1.35",
                sshSourceRanges: '["203.0.113.7", "198.51.100.0/24"]',
                apiSourceRanges: "203.0.113.7/32,192.0.2.0/28",
                clusterName: "",
            },
            "prod",
        );
        expect(cfg.workerCount).toBe(5);
        expect(cfg.zone).toBe("europe-west1-b");
        expect(cfg.clusterName).toBe("k8s-prod");
        expect(cfg.sshSourceRanges).toEqual(["203.0.113.7/32", "198.51.100.0/24"]);
        expect(cfg.apiSourceRanges).toEqual(["203.0.113.7/32", "192.0.2.0/28"]);
    });

    test("every supported Kubernetes minor is accepted; the default is the newest, and none predates kubeadm's v1beta4 config", () => {
        for (const minor of supportedKubernetesMinors) {
            expect(parseConfig({ ...base, kubernetesVersion: minor }, "dev").kubernetesVersion).toBe(minor);
            expect(Number(minor.split(".")[1])).toBeGreaterThanOrEqual(minimumKubernetesMinor);
        }
        expect(defaults.kubernetesVersion).toBe(supportedKubernetesMinors[supportedKubernetesMinors.length - 1]);
    });

    test("the default cluster name is a valid prefix for any stack name", () => {
        expect(defaultClusterName("dev")).toBe("k8s-dev");
        expect(defaultClusterName("Feature_Branch.With-A-Very-Long-Name")).toBe("k8s-feature-branch-w");
        expect(defaultClusterName("e2e-1234567890123456-")).toMatch(/^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$/);
    });
});

describe("parseConfig rejects bad input naming the key, the value and what is accepted", () => {
    test.each([
        ["workerCount", "-1", /workerCount: "-1" is not valid; accepted: a whole number from 1 to 10/],
        ["workerCount", "1.5", /workerCount: "1.5" is not valid; accepted: a whole number from 1 to 10/],
        ["workerCount", "two", /workerCount: "two" is not valid/],
        ["workerCount", "", /workerCount: "" is not valid/],
        ["workerCount", "0", /workerCount: "0" is not valid/],
        ["bootDiskSizeGb", "10", /bootDiskSizeGb: "10" is not valid; accepted: a whole number from 20 to 1000/],
        ["appReplicas", "-3", /appReplicas: "-3" is not valid/],
        ["kubernetesVersion", "1.37.2", /kubernetesVersion: "1.37.2" is not valid; accepted: a Kubernetes minor that every pinned tool supports: 1\.35, 1\.36 or 1\.37 \(no patch, no "v"/],
        ["kubernetesVersion", "v1.36", /kubernetesVersion: "v1.36" is not valid/],
        ["kubernetesVersion", "1.30", /kubernetesVersion: "1.30" is not valid; accepted: .*: 1\.35, 1\.36 or 1\.37/],
        // Newer than kubeadm's v1beta4 floor, but outside what the pinned containerd documents.
        ["kubernetesVersion", "1.34", /kubernetesVersion: "1.34" is not valid; accepted: a Kubernetes minor that every pinned tool supports: 1\.35, 1\.36 or 1\.37/],
        ["kubernetesVersion", "1.38", /kubernetesVersion: "1.38" is not valid; accepted: a Kubernetes minor that every pinned tool supports: 1\.35, 1\.36 or 1\.37/],
        ["kubernetesVersion", "", /kubernetesVersion: "" is not valid/],
        ["sshSourceRanges", '["10.0.0.0/33"]', /sshSourceRanges: "10.0.0.0\/33" in .* is not valid; accepted: a non-empty list of IPv4 CIDR blocks/],
        ["sshSourceRanges", "[]", /sshSourceRanges: "\[\]" is not valid; accepted: a non-empty list/],
        ["sshSourceRanges", "", /sshSourceRanges: "" is not valid; accepted: a non-empty list/],
        ["apiSourceRanges", '["300.1.1.1/32"]', /apiSourceRanges: "300.1.1.1\/32" in .* is not valid/],
        ["apiSourceRanges", "[not json", /apiSourceRanges: "\[not json" is not valid/],
        ["podCidr", "10.244.0.0", /podCidr: "10.244.0.0" is not valid; accepted: an IPv4 CIDR block/],
        ["podCidr", "10.244.1.0/16", /podCidr: "10.244.1.0\/16" is not valid; .*without host bits set/],
        ["podCidr", "", /podCidr: "" is not valid/],
        ["machineType", "e2-small", /machineType: "e2-small" is not valid; accepted: a type with at least 2 vCPU and 4 GB memory \(kubeadm's floor; e2-medium is the smallest\), not a shared-core type/],
        ["machineType", "n1-standard-1", /machineType: "n1-standard-1" is not valid; .*not 1 vCPU/],
        ["machineType", "e2-highcpu-2", /machineType: "e2-highcpu-2" is not valid/],
        ["machineType", "e2-custom-2-2048", /machineType: "e2-custom-2-2048" is not valid; .*2 vCPU \/ 2048 MB/],
        ["machineType", "", /machineType: "" is not valid; accepted: a Compute Engine machine type/],
        ["clusterName", "Prod_Cluster", /clusterName: "Prod_Cluster" is not valid; accepted: 1 to 20 lowercase letters/],
        ["clusterName", "a-very-long-cluster-name", /clusterName: "a-very-long-cluster-name" is not valid/],
        ["appImage", "", /appImage: "" is not valid; accepted: a container image reference/],
        ["appImage", "my image", /appImage: "my image" is not valid/],
        ["appNamespace", "Http_Go", /appNamespace: "Http_Go" is not valid/],
        ["gcp:zone", "us-central1", /gcp:zone: "us-central1" is not valid; accepted: a GCP zone/],
        ["spot", "yes", /spot: "yes" is not valid; accepted: "none", "workers" or "all"/],
        ["spot", "", /spot: "" is not valid; accepted: "none", "workers" or "all"/],
        ["scheduleTimeZone", "Mars/Olympus", /scheduleTimeZone: "Mars\/Olympus" is not valid; accepted: a time zone of the tz database such as UTC or Europe\/Berlin/],
    ] as const)("%s = %j", (key, value, message) => {
        const problems = problemsOf({ [key]: value });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatch(message);
    });

    test.each([
        ["0 8 * *", /scheduleStart: "0 8 \* \*" is not valid \(4 fields, not 5\); accepted: a unix-cron expression of five fields/],
        ["60 8 * * *", /scheduleStart: "60 8 \* \* \*" is not valid \(the minute field "60" is not 0-59/],
        ["0 24 * * *", /the hour field "24" is not 0-23/],
        ["0 8 * * MON-XYZ", /the day of week field "MON-XYZ" is not 0-7 or SUN-SAT/],
        ["0 8 * * 5-1", /the day of week field "5-1"/],
        ["*/0 8 * * *", /the minute field "\*\/0"/],
    ])("scheduleStart = %j names the field that is wrong", (value, message) => {
        const problems = problemsOf({ scheduleStart: value, scheduleStop: "0 20 * * *" });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatch(message);
    });

    test("a schedule needs both times, and different ones", () => {
        expect(problemsOf({ scheduleStart: "0 8 * * *" })).toEqual([
            "scheduleStop: is not set while scheduleStart is; accepted: both set (a schedule) or both empty (none)",
        ]);
        expect(problemsOf({ scheduleStop: "0 8 * * *" })).toEqual([
            "scheduleStart: is not set while scheduleStop is; accepted: both set (a schedule) or both empty (none)",
        ]);
        expect(problemsOf({ scheduleStart: "0 8 * * *", scheduleStop: "0  8 * * *" })).toEqual([
            'scheduleStop: "0  8 * * *" equals scheduleStart; accepted: a stop time other than the start time',
        ]);
    });

    test("gcp:project is required", () => {
        expect(() => parseConfig({}, "dev")).toThrow(/gcp:project: is not set; accepted: your GCP project id/);
        expect(() => parseConfig({ "gcp:project": " " }, "dev")).toThrow(/gcp:project: is not set/);
    });

    test("a zone outside the region is rejected", () => {
        expect(problemsOf({ "gcp:region": "europe-west1", "gcp:zone": "us-central1-a" })).toEqual([
            'gcp:zone: "us-central1-a" is not in gcp:region "europe-west1"; accepted: a zone of that region, e.g. europe-west1-a',
        ]);
    });

    test("overlapping ranges are rejected", () => {
        expect(problemsOf({ podCidr: "10.240.0.0/16" })).toEqual([
            'podCidr: "10.240.0.0/16" overlaps subnetCidr "10.240.0.0/24"; accepted: a range disjoint from subnetCidr',
        ]);
        expect(problemsOf({ serviceCidr: "10.244.0.0/20" })[0]).toMatch(/serviceCidr: "10.244.0.0\/20" overlaps podCidr/);
    });

    test("max replicas below replicas is rejected", () => {
        expect(problemsOf({ appReplicas: "4", appMaxReplicas: "3" })).toEqual([
            "appMaxReplicas: 3 is below appReplicas (4); accepted: a whole number >= appReplicas",
        ]);
    });

    test("every problem is reported in one error", () => {
        const problems = problemsOf({ workerCount: "-1", podCidr: "x", machineType: "f1-micro" });
        expect(problems.map((p) => p.split(":")[0])).toEqual(["workerCount", "machineType", "podCidr"]);
    });
});

describe("pod and service ranges that kubeadm or Flannel would refuse later", () => {
    test("workerCount 5 (6 nodes, a /24 each) is refused with a /22 (four /24s) and accepted with a /20", () => {
        expect(problemsOf({ workerCount: "5", podCidr: "10.244.0.0/22" })).toEqual([
            'podCidr: "10.244.0.0/22" is not valid; accepted: a block with a /24 for each of the 6 nodes ' +
                "(workerCount + the control plane; kubeadm gives every node a /24): /21 or wider, up to /8",
        ]);
        expect(parseConfig({ ...base, workerCount: "5", podCidr: "10.244.0.0/20" }, "dev").podCidr).toBe("10.244.0.0/20");
    });

    test.each([
        // [workerCount, the narrowest pod block that fits, the next narrower one, which does not]
        ["1", "10.244.0.0/23", "10.244.0.0/24"], // 2 nodes: a /23 holds two /24s
        ["2", "10.244.0.0/22", "10.244.0.0/23"], // 3 nodes (the default): a /23 holds only two
        ["3", "10.244.0.0/22", "10.244.0.0/23"], // 4 nodes: exactly four /24s in a /22
        ["4", "10.244.0.0/21", "10.244.0.0/22"], // 5 nodes
        ["5", "10.244.0.0/21", "10.244.0.0/22"], // 6 nodes: a /21 has eight, a /22 four
        ["7", "10.244.0.0/21", "10.244.0.0/22"], // 8 nodes: exactly eight
        ["10", "10.244.0.0/20", "10.244.0.0/21"], // 11 nodes, the most workers allowed
    ])("workerCount %s: %s is accepted, %s is refused", (workerCount, fits, tooSmall) => {
        expect(parseConfig({ ...base, workerCount, podCidr: fits }, "dev").podCidr).toBe(fits);
        expect(problemsOf({ workerCount, podCidr: tooSmall })).toEqual([expect.stringMatching(/^podCidr: .* is not valid; accepted: a block with a \/24 for each of/)]);
    });

    test("a pod range narrower than one node's /24 or wider than kubeadm's /8 is refused", () => {
        expect(problemsOf({ workerCount: "1", podCidr: "10.244.0.0/25" })[0]).toMatch(/^podCidr: "10.244.0.0\/25" is not valid; .*\/23 or wider, up to \/8$/);
        expect(problemsOf({ podCidr: "10.0.0.0/7", serviceCidr: "172.16.0.0/16", subnetCidr: "192.168.0.0/24" })).toEqual([
            expect.stringMatching(/^podCidr: "10.0.0.0\/7" is not valid; accepted: .*up to \/8$/),
        ]);
        expect(parseConfig({ ...base, podCidr: "10.0.0.0/8", serviceCidr: "172.16.0.0/16", subnetCidr: "192.168.0.0/24" }, "dev").podCidr).toBe("10.0.0.0/8");
    });

    test("a service range wider than /12 is refused with kubeadm's rule, /12 itself is accepted", () => {
        expect(problemsOf({ serviceCidr: "10.96.0.0/11" })).toEqual([
            'serviceCidr: "10.96.0.0/11" is not valid; accepted: an IPv4 CIDR block from /12 to /28 (kubeadm: "the mask must be >= 12", and at least 10 addresses)',
        ]);
        expect(parseConfig({ ...base, serviceCidr: "10.96.0.0/12" }, "dev").serviceCidr).toBe("10.96.0.0/12");
    });

    test("a service range with fewer than 10 addresses is refused, a /28 is accepted", () => {
        expect(problemsOf({ serviceCidr: "10.96.0.0/29" })[0]).toMatch(/^serviceCidr: "10.96.0.0\/29" is not valid; accepted: an IPv4 CIDR block from \/12 to \/28/);
        expect(parseConfig({ ...base, serviceCidr: "10.96.0.0/28" }, "dev").serviceCidr).toBe("10.96.0.0/28");
    });
});

describe("CIDR helpers", () => {
    test("parseCidr accepts canonical blocks and bare addresses only", () => {
        expect(parseCidr("0.0.0.0/0")?.canonical).toBe("0.0.0.0/0");
        expect(parseCidr("203.0.113.7")?.canonical).toBe("203.0.113.7/32");
        expect(parseCidr("10.0.0.1/8")).toBeUndefined();
        expect(parseCidr("10.0.0/8")).toBeUndefined();
        expect(parseCidr("256.0.0.0/8")).toBeUndefined();
        expect(parseCidr("10.0.0.0/33")).toBeUndefined();
        // Shorthand and non-decimal forms that inet_aton (and so ipaddr.js's plain parse) would accept.
        expect(parseCidr("10.1/16")).toBeUndefined();
        expect(parseCidr("0x0a.0.0.0/8")).toBeUndefined();
        expect(parseCidr(" 10.0.0.0/8 ")?.canonical).toBe("10.0.0.0/8");
        expect(parseCidr("10.244.0.0/16")?.prefix).toBe(16);
    });

    test("cidrsOverlap", () => {
        expect(cidrsOverlap("10.0.0.0/8", "10.1.0.0/16")).toBe(true);
        expect(cidrsOverlap("10.1.0.0/16", "10.0.0.0/8")).toBe(true);
        expect(cidrsOverlap("10.244.0.0/16", "10.240.0.0/24")).toBe(false);
        expect(cidrsOverlap("10.96.0.0/12", "10.112.0.0/12")).toBe(false);
        expect(cidrsOverlap("10.96.0.0/12", "10.111.255.0/24")).toBe(true);
        expect(cidrsOverlap("0.0.0.0/0", "192.0.2.1/32")).toBe(true);
    });

    test("undersizedMachineReason knows kubeadm's floor", () => {
        expect(undersizedMachineReason("e2-medium")).toBeUndefined();
        expect(undersizedMachineReason("n2-standard-2")).toBeUndefined();
        expect(undersizedMachineReason("e2-highcpu-4")).toBeUndefined();
        expect(undersizedMachineReason("e2-custom-2-4096")).toBeUndefined();
        expect(undersizedMachineReason("e2-micro")).toBe("a shared-core type");
        expect(undersizedMachineReason("n1-standard-1")).toBe("1 vCPU");
    });
});

describe("spot and schedule", () => {
    test("default: no Spot VM, no schedule", () => {
        const cfg = parseConfig(base, "dev");
        expect(cfg.spot).toBe("none");
        expect(cfg.schedule).toBeUndefined();
    });

    test("a schedule is both times in the time zone (UTC unless set); spot takes each setting", () => {
        expect(parseConfig({ ...base, scheduleStart: " 0 8 * * 1-5 ", scheduleStop: "0 20 * * MON-FRI" }, "dev").schedule).toEqual({
            start: "0 8 * * 1-5",
            stop: "0 20 * * MON-FRI",
            timeZone: "UTC",
        });
        expect(parseConfig({ ...base, scheduleStart: "0 8 * * *", scheduleStop: "0 20 * * *", scheduleTimeZone: "America/Chicago" }, "dev").schedule?.timeZone).toBe(
            "America/Chicago",
        );
        for (const setting of ["none", "workers", "all"]) {
            expect(parseConfig({ ...base, spot: setting }, "dev").spot).toBe(setting);
        }
    });

    test("cron: lists, ranges, steps and names as crontab(5) has them", () => {
        for (const ok of ["0 8 * * 1-5", "*/15 6-22/2 1,15 JAN-MAR sun", "30 7 * * 0,7", "0 0 1 * *"]) {
            expect({ ok, problem: cronProblem(ok) }).toEqual({ ok, problem: undefined });
        }
        expect(cronProblem("0 8 * * * *")).toBe("6 fields, not 5");
        expect(isTimeZone("Europe/Berlin")).toBe(true);
        expect(isTimeZone("UTC")).toBe(true);
        expect(isTimeZone("Europe/Atlantis")).toBe(false);
    });
});

describe("Pulumi.yaml", () => {
    const project = yaml.load(fs.readFileSync(path.join(__dirname, "..", "Pulumi.yaml"), "utf8")) as any;

    test("documents every project key with a description and the default the program applies", () => {
        expect(Object.keys(project.config).sort()).toEqual([...projectKeys].sort());
        for (const key of projectKeys) {
            const entry = project.config[key];
            expect(entry.description).toEqual(expect.any(String));
            expect(entry).toHaveProperty("default");
            if (key === "clusterName") {
                expect(entry.default).toBe("");
            } else {
                expect(entry.default).toEqual((defaults as Record<string, unknown>)[key]);
            }
        }
    });

    test("the dev stack sets region and zone and leaves gcp:project to the user", () => {
        const dev = yaml.load(fs.readFileSync(path.join(__dirname, "..", "Pulumi.dev.yaml"), "utf8")) as any;
        expect(dev.config["gcp:region"]).toBe(defaults.region);
        expect(dev.config["gcp:zone"]).toBe(defaults.zone);
        expect(dev.config["gcp:project"]).toBeUndefined();
    });
});
