/**
 * The Helm chart (manifests/helm/secrets-store-csi-driver) against upstream's chart v1.6.0: `helm lint`
 * passes; the same release gets the same object names; every upstream value the chart takes shows up
 * where upstream's chart puts it (both charts rendered with the same value, compared at the same place);
 * our own values do what values.yaml says; values we cannot honour stop the render with one sentence; and
 * the chart renders with upstream's values.yaml alone, which is what `helm upgrade --reuse-values` from an
 * upstream release hands it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { NODE_FLAGS, nodeConfig } from "../../lib/config.ts";
import { parseFlags } from "../../lib/flags.ts";
import { DRIVER_VERSION } from "../../lib/version.ts";
import {
  CHART,
  find,
  helm,
  isHook,
  type Obj,
  one,
  render,
  renderError,
  type RenderOptions,
  runOk,
  upstreamChart,
} from "./helm.ts";

// ---- where things are in a rendered chart ----

const daemonSet = (objs: Obj[]) => one(objs.filter((o) => !isHook(o)), "DaemonSet");
const podSpec = (objs: Obj[]) => daemonSet(objs).spec.template.spec;
const container = (objs: Obj[], name: string): Obj => {
  const found = podSpec(objs).containers.find((c: Obj) => c.name === name);
  assert.ok(found, `no container ${name}`);
  return found;
};
const driver = (objs: Obj[]) => container(objs, "secrets-store");
const registrar = (objs: Obj[]) => container(objs, "node-driver-registrar");
const probe = (objs: Obj[]) => container(objs, "liveness-probe");
/** A container's flags by name (`-v=2` and `--v=2` alike); arguments that are not flags are left out. */
const flags = (c: Obj): Record<string, string> =>
  Object.fromEntries(
    (c.args ?? []).filter((a: string) => a.startsWith("-")).map((a: string) => {
      const [name, ...value] = a.replace(/^--?/, "").split("=");
      return [name, value.join("=")];
    }),
  );
const flag = (c: Obj, name: string) => flags(c)[name];
const named = (list: Obj[] | undefined, name: string) => (list ?? []).find((x) => x.name === name);
const volume = (objs: Obj[], name: string) => named(podSpec(objs).volumes, name);
const providerDirs = (objs: Obj[]) => ({
  mounts: driver(objs).volumeMounts.filter((m: Obj) => m.name.startsWith("providers-dir")),
  volumes: podSpec(objs).volumes.filter((v: Obj) => v.name.startsWith("providers-dir")),
});
const hookJobs = (objs: Obj[]) => find(objs, "Job").filter(isHook);
const jobPods = (objs: Obj[]) => hookJobs(objs).map((j) => j.spec.template);
/** kind/namespace/name of every object, sorted. */
const objectIds = (objs: Obj[]) =>
  objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`).sort();
const csiDriver = (objs: Obj[]) => one(objs, "CSIDriver").spec;

/** One upstream value: set in both charts, each probe must read the same in both and differ from our default. */
interface ValueCase {
  value: string;
  set: Record<string, unknown>;
  probes: Record<string, (objs: Obj[]) => unknown>;
  options?: RenderOptions;
}

const UPSTREAM_VALUES: ValueCase[] = [
  {
    value: "linux.enabled",
    set: { "linux.enabled": false },
    probes: { daemonSets: (o) => find(o, "DaemonSet").length },
  },
  {
    value: "linux.image",
    set: { "linux.image": { repository: "example.com/driver", tag: "v9", pullPolicy: "Always" } },
    probes: { image: (o) => driver(o).image, pullPolicy: (o) => driver(o).imagePullPolicy },
  },
  {
    value: "linux.image.digest",
    set: { "linux.image": { repository: "example.com/driver", digest: "sha256:abc" } },
    probes: { image: (o) => driver(o).image },
  },
  {
    value: "linux.crds.enabled",
    set: { "linux.crds.enabled": false },
    probes: { hooks: (o) => objectIds(o.filter(isHook)) },
  },
  {
    value: "linux.crds.image",
    set: { "linux.crds.image": { repository: "example.com/kubectl", tag: "v2", pullPolicy: "Always" } },
    probes: {
      images: (o) =>
        jobPods(o).map((p) => [p.spec.containers[0].image, p.spec.containers[0].imagePullPolicy]),
    },
  },
  {
    value: "linux.crds.resources",
    set: { "linux.crds.resources": { limits: { cpu: "1", memory: "64Mi" } } },
    probes: { resources: (o) => jobPods(o).map((p) => p.spec.containers[0].resources) },
  },
  {
    value: "linux.crds.annotations",
    set: { "linux.crds.annotations": { "example.com/a": "b" } },
    probes: { annotations: (o) => jobPods(o).map((p) => p.metadata.annotations) },
  },
  {
    value: "linux.crds.podLabels",
    set: { "linux.crds.podLabels": { team: "storage" } },
    probes: { labels: (o) => jobPods(o).map((p) => p.metadata.labels) },
  },
  {
    value: "linux.kubeletRootDir",
    set: { "linux.kubeletRootDir": "/data/kubelet" },
    probes: {
      registration: (o) => flag(registrar(o), "kubelet-registration-path"),
      podsMount: (o) => named(driver(o).volumeMounts, "mountpoint-dir"),
      hostPaths: (o) => ["mountpoint-dir", "registration-dir", "plugin-dir"].map((n) => volume(o, n)),
    },
  },
  {
    value: "linux.providersDir and linux.additionalProvidersDirs",
    set: {
      "linux.providersDir": "/p/main",
      "linux.additionalProvidersDirs": ["/p/one", "/p/main", "/p/two"],
    },
    probes: {
      providerVolume: (o) => flag(driver(o), "provider-volume"),
      additional: (o) => flag(driver(o), "additional-provider-volume-paths"),
      dirs: providerDirs,
    },
  },
  {
    value: "linux.metricsAddr",
    set: { "linux.metricsAddr": ":9100" },
    probes: {
      flag: (o) => flag(driver(o), "metrics-addr"),
      port: (o) => named(driver(o).ports, "metrics"),
    },
  },
  {
    value: "linux.env",
    set: { "linux.env": [{ name: "HTTPS_PROXY", value: "http://proxy:3128" }] },
    probes: { env: (o) => driver(o).env[0] },
  },
  {
    value: "linux.priorityClassName",
    set: { "linux.priorityClassName": "node-critical-custom" },
    probes: { priorityClassName: (o) => podSpec(o).priorityClassName },
  },
  {
    value: "linux.nodeSelector",
    set: { "linux.nodeSelector": { pool: "system" } },
    probes: {
      pod: (o) => podSpec(o).nodeSelector,
      jobs: (o) => jobPods(o).map((p) => p.spec.nodeSelector),
    },
  },
  {
    value: "linux.tolerations",
    set: { "linux.tolerations": [{ key: "dedicated", operator: "Equal", value: "x", effect: "NoSchedule" }] },
    probes: {
      pod: (o) => podSpec(o).tolerations,
      jobs: (o) => jobPods(o).map((p) => p.spec.tolerations),
    },
  },
  {
    value: "linux.affinity",
    set: { "linux.affinity": { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } } },
    probes: { affinity: (o) => podSpec(o).affinity },
  },
  {
    value: "linux.updateStrategy",
    set: { "linux.updateStrategy": { type: "OnDelete" } },
    probes: { updateStrategy: (o) => daemonSet(o).spec.updateStrategy },
  },
  {
    value: "linux.driver.resources",
    set: {
      "linux.driver.resources": {
        requests: { cpu: "20m", memory: "90Mi" },
        limits: { cpu: "300m", memory: "180Mi" },
      },
    },
    probes: { resources: (o) => driver(o).resources },
  },
  {
    value: "linux.registrarImage",
    set: { "linux.registrarImage": { repository: "example.com/registrar", tag: "v1", pullPolicy: "Always" } },
    probes: { image: (o) => registrar(o).image, pullPolicy: (o) => registrar(o).imagePullPolicy },
  },
  {
    value: "linux.registrar",
    set: { "linux.registrar": { logVerbosity: 3, resources: { limits: { memory: "50Mi" } } } },
    probes: { v: (o) => flag(registrar(o), "v"), resources: (o) => registrar(o).resources },
  },
  {
    value: "linux.livenessProbeImage",
    set: { "linux.livenessProbeImage": { repository: "example.com/probe", digest: "sha256:def" } },
    probes: { image: (o) => probe(o).image },
  },
  {
    value: "linux.livenessProbe",
    set: { "linux.livenessProbe": { resources: { limits: { memory: "40Mi" } } } },
    probes: { resources: (o) => probe(o).resources },
  },
  {
    value: "linux.volumes and linux.volumeMounts",
    set: {
      "linux.volumes": [{ name: "extra", emptyDir: {} }],
      "linux.volumeMounts": [{ name: "extra", mountPath: "/extra", readOnly: true }],
    },
    probes: { volume: (o) => volume(o, "extra"), mount: (o) => named(driver(o).volumeMounts, "extra") },
  },
  {
    value: "linux.daemonsetAnnotations, linux.podAnnotations, linux.podLabels",
    set: {
      "linux.daemonsetAnnotations": { "example.com/ds": "1" },
      "linux.podAnnotations": { "example.com/pod": "2" },
      "linux.podLabels": { team: "storage" },
    },
    probes: {
      dsAnnotations: (o) => daemonSet(o).metadata.annotations,
      podAnnotation: (o) => daemonSet(o).spec.template.metadata.annotations["example.com/pod"],
      podLabel: (o) => daemonSet(o).spec.template.metadata.labels.team,
    },
  },
  {
    value: "logVerbosity",
    set: { logVerbosity: 4 },
    probes: { v: (o) => flag(driver(o), "v") },
  },
  {
    value: "logFormatJSON",
    set: { logFormatJSON: true },
    probes: { flag: (o) => flag(driver(o), "log-format-json") },
  },
  {
    value: "livenessProbe.port and livenessProbe.logLevel",
    set: { "livenessProbe.port": 9909, "livenessProbe.logLevel": 4 },
    probes: {
      endpoint: (o) => flag(probe(o), "http-endpoint"),
      v: (o) => flag(probe(o), "v"),
      port: (o) => named(driver(o).ports, "healthz"),
    },
  },
  {
    value: "maxCallRecvMsgSize",
    set: { maxCallRecvMsgSize: 8388608 },
    probes: { flag: (o) => flag(driver(o), "max-call-recv-msg-size") },
  },
  {
    value: "rbac.install",
    set: { "rbac.install": false },
    probes: { objects: (o) => objectIds(o.filter((x) => !isHook(x))) },
  },
  {
    value: "syncSecret.enabled",
    set: { "syncSecret.enabled": true },
    probes: {
      secretRbac: (o) => objectIds([...find(o, "ClusterRole"), ...find(o, "ClusterRoleBinding")]),
      binding: (o) => find(o, "ClusterRoleBinding", "secretprovidersyncing-rolebinding")[0]?.subjects,
    },
  },
  {
    value: "enableSecretRotation",
    set: { enableSecretRotation: true },
    probes: {
      flag: (o) => flag(driver(o), "enable-secret-rotation"),
      requiresRepublish: (o) => csiDriver(o).requiresRepublish,
    },
  },
  {
    value: "rotationPollInterval",
    set: { rotationPollInterval: "30s" },
    probes: { flag: (o) => flag(driver(o), "rotation-poll-interval") },
  },
  {
    value: "providerHealthCheck and providerHealthCheckInterval",
    set: { providerHealthCheck: true, providerHealthCheckInterval: "30s" },
    probes: {
      check: (o) => flag(driver(o), "provider-health-check"),
      interval: (o) => flag(driver(o), "provider-health-check-interval"),
    },
  },
  {
    value: "imagePullSecrets",
    set: { imagePullSecrets: [{ name: "registry-key" }] },
    probes: {
      pod: (o) => podSpec(o).imagePullSecrets,
      jobs: (o) => jobPods(o).map((p) => p.spec.imagePullSecrets),
    },
  },
  {
    value: "tokenRequests",
    set: { tokenRequests: [{ audience: "api://AzureADTokenExchange" }] },
    probes: { csiDriver: csiDriver },
  },
  {
    value: "tokenRequests on Kubernetes 1.35",
    set: { tokenRequests: [{ audience: "vault" }] },
    options: { kubeVersion: "v1.35.0" },
    probes: { csiDriver: csiDriver },
  },
  {
    value: "automountServiceAccountToken",
    set: { automountServiceAccountToken: false },
    probes: { automount: (o) => podSpec(o).automountServiceAccountToken },
  },
  {
    value: "commonLabels",
    set: { commonLabels: { team: "dev" } },
    probes: { everyObject: (o) => o.every((x) => x.metadata.labels?.team === "dev") },
  },
];

const upstream = await upstreamChart();
const ours = await render(CHART);

for (const c of UPSTREAM_VALUES) {
  Deno.test(`values: ${c.value} shows up where upstream's chart puts it`, async () => {
    const options = { ...c.options, set: c.set };
    const [theirs, mine, mineByDefault] = await Promise.all([
      render(upstream, options),
      render(CHART, options),
      c.options ? render(CHART, c.options) : ours,
    ]);
    for (const [name, read] of Object.entries(c.probes)) {
      assert.deepEqual(read(mine), read(theirs), `${name}: ours differs from upstream's`);
      assert.notDeepEqual(read(mine), read(mineByDefault), `${name}: the value changes nothing`);
    }
  });
}

Deno.test("values: every upstream value listed above is in values.yaml with upstream's default", async () => {
  const theirs = parse(await Deno.readTextFile(join(upstream, "values.yaml")));
  const mine = parse(await Deno.readTextFile(join(CHART, "values.yaml")));
  const get = (values: Obj, path: string) => path.split(".").reduce((v, k) => v?.[k], values);
  // Defaults that are ours on purpose (values.yaml says why at each).
  const ownDefaults = ["linux.image", "linux.driver.resources", "linux.priorityClassName", "windows"];
  const paths = [
    "linux.enabled",
    "linux.crds",
    "linux.affinity",
    "linux.registrarImage",
    "linux.registrar",
    "linux.livenessProbeImage",
    "linux.livenessProbe",
    "linux.updateStrategy",
    "linux.kubeletRootDir",
    "linux.providersDir",
    "linux.additionalProvidersDirs",
    "linux.nodeSelector",
    "linux.tolerations",
    "linux.metricsAddr",
    "linux.env",
    "linux.daemonsetAnnotations",
    "linux.podAnnotations",
    "linux.podLabels",
    "linux.volumes",
    "linux.volumeMounts",
    "logVerbosity",
    "logFormatJSON",
    "livenessProbe",
    "maxCallRecvMsgSize",
    "rbac",
    "syncSecret",
    "enableSecretRotation",
    "rotationPollInterval",
    "providerHealthCheck",
    "providerHealthCheckInterval",
    "imagePullSecrets",
    "tokenRequests",
    "automountServiceAccountToken",
    "commonLabels",
  ];
  for (const path of paths) assert.deepEqual(get(mine, path), get(theirs, path), path);
  for (const path of ownDefaults) assert.ok(get(mine, path) !== undefined, path);
  assert.equal(get(mine, "windows.enabled"), false);
});

// ---- names ----

/** Ours minus the hook ConfigMap that carries our CRDs (upstream's image has its CRDs built in). */
const withoutCrdConfigMap = (objs: Obj[]) => objs.filter((o) => !(o.kind === "ConfigMap" && isHook(o)));

for (
  const [label, options] of [
    ["release secrets-store-csi-driver", { release: "secrets-store-csi-driver" }],
    ["release csi in namespace security", { release: "csi", namespace: "security" }],
    ["nameOverride", { release: "csi", set: { nameOverride: "sscd" } }],
    ["fullnameOverride", { release: "csi", set: { fullnameOverride: "secrets-store" } }],
    ["syncSecret.enabled", { release: "csi", set: { "syncSecret.enabled": true } }],
  ] as [string, RenderOptions][]
) {
  Deno.test(`names: the same objects, names and DaemonSet selector as upstream's chart (${label})`, async () => {
    const [theirs, mine] = await Promise.all([render(upstream, options), render(CHART, options)]);
    assert.deepEqual(objectIds(withoutCrdConfigMap(mine)), objectIds(theirs));
    assert.deepEqual(daemonSet(mine).spec.selector, daemonSet(theirs).spec.selector);
    assert.equal(
      daemonSet(mine).spec.template.metadata.labels.app,
      daemonSet(theirs).spec.template.metadata.labels.app,
    );
    assert.deepEqual(podSpec(mine).serviceAccountName, podSpec(theirs).serviceAccountName);
  });
}

Deno.test("CRDs: crds/ holds manifests/' CRD files, and the upgrade hook applies exactly those", async () => {
  const withCrds = await render(CHART, { includeCrds: true });
  const crds = find(withCrds, "CustomResourceDefinition").map((c) => c.metadata.name).sort();
  assert.deepEqual(crds, [
    "secretproviderclasses.secrets-store.csi.x-k8s.io",
    "secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io",
  ]);
  for (const file of Deno.readDirSync(join(CHART, "crds"))) {
    const chartFile = join(CHART, "crds", file.name);
    assert.equal(Deno.realPathSync(chartFile), Deno.realPathSync(join(CHART, "../../", file.name)));
  }
  const configMap = one(ours, "ConfigMap");
  const job = one(ours, "Job", "secrets-store-csi-driver-upgrade-crds");
  const pod = job.spec.template.spec;
  assert.deepEqual(pod.containers[0].args, ["apply", "-f", "/chart-crds/"]);
  assert.equal(
    named(pod.volumes, pod.containers[0].volumeMounts[0].name)?.configMap.name,
    configMap.metadata.name,
  );
  for (const [name, text] of Object.entries(configMap.data as Record<string, string>)) {
    assert.equal(text.trim(), (await Deno.readTextFile(join(CHART, "crds", name))).trim(), name);
  }
  // Events and weights as upstream's: accounts and the ConfigMap first, then the jobs.
  const hooks = Object.fromEntries(
    ours.filter(isHook).map((o) => [
      `${o.kind}/${o.metadata.name}`,
      `${o.metadata.annotations["helm.sh/hook"]} ${o.metadata.annotations["helm.sh/hook-weight"]}`,
    ]),
  );
  const theirs = Object.fromEntries(
    (await render(upstream)).filter(isHook).map((o) => [
      `${o.kind}/${o.metadata.name}`,
      `${o.metadata.annotations["helm.sh/hook"]} ${o.metadata.annotations["helm.sh/hook-weight"]}`,
    ]),
  );
  assert.deepEqual(hooks, {
    ...theirs,
    [`ConfigMap/${configMap.metadata.name}`]: "pre-install,pre-upgrade 1",
  });
  // The keep Job patches what upstream's does (the patch compared as JSON).
  const keepArgs = (objs: Obj[]) => {
    const args = [
      ...one(objs, "Job", "secrets-store-csi-driver-keep-crds").spec.template.spec.containers[0].args,
    ];
    return [...args.slice(0, -1), JSON.parse(args.at(-1))];
  };
  assert.deepEqual(keepArgs(ours), keepArgs(await render(upstream)));
});

// ---- our own values ----

Deno.test("tmpfsSize: passed to the driver as --tmpfs-size, absent by default", async () => {
  assert.equal(flag(driver(ours), "tmpfs-size"), undefined);
  assert.equal(flag(driver(await render(CHART, { set: { tmpfsSize: "32Mi" } })), "tmpfs-size"), "32Mi");
});

Deno.test("V8 heap: --max-old-space-size is the memory limit minus nonHeapMemory", async () => {
  const heapFlag = (objs: Obj[]) => named(driver(objs).env, "DENO_V8_FLAGS")?.value;
  assert.equal(heapFlag(ours), "--max-old-space-size=128"); // 200Mi - 72Mi
  const cases: [Record<string, unknown>, string | undefined][] = [
    [{ "linux.driver.resources.limits.memory": "1Gi" }, "--max-old-space-size=952"],
    [{ "linux.driver.resources.limits.memory": "512M" }, "--max-old-space-size=416"],
    [{ "linux.driver.resources.limits.memory": 268435456 }, "--max-old-space-size=184"],
    [
      { "linux.driver.resources.limits.memory": "200Mi", "linux.driver.nonHeapMemory": "100Mi" },
      "--max-old-space-size=100",
    ],
    [{ "linux.driver.resources.limits": null }, undefined],
  ];
  for (const [set, expected] of cases) {
    assert.equal(heapFlag(await render(CHART, { set })), expected, JSON.stringify(set));
  }
});

Deno.test("V8 heap: a limit that is not a quantity, or leaves no heap, fails with one sentence", async () => {
  assert.match(
    await renderError(CHART, { set: { "linux.driver.resources.limits.memory": "lots" } }),
    /linux\.driver\.resources\.limits\.memory must be a whole memory quantity such as 200Mi or 1Gi, not "lots"\./,
  );
  assert.match(
    await renderError(CHART, { set: { "linux.driver.resources.limits.memory": "64Mi" } }),
    /linux\.driver\.resources\.limits\.memory \(64Mi\) leaves no room for V8's heap after linux\.driver\.nonHeapMemory \(72Mi\): raise the limit or lower nonHeapMemory\./,
  );
});

Deno.test("the driver runs this repository's image, at the driver's version", () => {
  assert.ok(driver(ours).image.endsWith(`secrets-store-csi:${DRIVER_VERSION}`), driver(ours).image);
});

Deno.test("the driver's command line, with every flag value set, is one `node` accepts", async () => {
  const objs = await render(CHART, {
    set: {
      logVerbosity: 4,
      logFormatJSON: true,
      enableSecretRotation: true,
      rotationPollInterval: "30s",
      providerHealthCheck: true,
      providerHealthCheckInterval: "1m",
      maxCallRecvMsgSize: 8388608,
      tmpfsSize: "32Mi",
      "linux.metricsAddr": ":9100",
      "linux.additionalProvidersDirs": ["/p/one", "/p/two"],
    },
  });
  const c = driver(objs);
  const args = (c.args as string[]).map((a) => a.replace("$(CSI_ENDPOINT)", "unix:///csi/csi.sock"))
    .map((a) => a.replace("$(KUBE_NODE_NAME)", "node-1"));
  assert.equal(args[0], "node");
  const config = nodeConfig(parseFlags(args.slice(1), NODE_FLAGS).values);
  assert.deepEqual(config.logging, { json: true, verbosity: 4, vmodule: [] });
  assert.deepEqual(config.rotation, { enabled: true, pollIntervalMs: 30_000 });
  assert.deepEqual(config.healthCheck, { enabled: true, intervalMs: 60_000 });
  assert.equal(config.provider.maxRecvBytes, 8388608);
  assert.equal(config.provider.tmpfsSizeBytes, 32 * 1024 * 1024);
  // (The search order is the driver's business, not the chart's.)
  assert.deepEqual([...config.provider.dirs].sort(), [
    "/p/one",
    "/p/two",
    "/var/run/secrets-store-csi-providers",
  ]);
  assert.equal(config.metricsAddr, ":9100");
});

// ---- values we cannot honour ----

Deno.test("windows.enabled and rbac.pspEnabled fail the render with one sentence", async () => {
  assert.match(
    await renderError(CHART, { set: { "windows.enabled": true } }),
    /windows\.enabled=true: this driver runs on Linux nodes only \(it mounts tmpfs through Linux's mount\(2\)\); set windows\.enabled=false, which leaves Windows nodes without a Secrets Store CSI driver\./,
  );
  assert.match(
    await renderError(CHART, { set: { "rbac.pspEnabled": true } }),
    /rbac\.pspEnabled=true: PodSecurityPolicy was removed in Kubernetes 1\.25 and this chart creates none; set rbac\.pspEnabled=false\./,
  );
});

// ---- `helm upgrade --reuse-values` from an upstream release ----

Deno.test("--reuse-values: with upstream's values.yaml in place of ours the chart renders our driver", async () => {
  // Helm's --reuse-values renders the new chart with the old release's coalesced values instead of the
  // new chart's values.yaml: a copy of the chart with upstream's values.yaml is exactly that render.
  const dir = await Deno.makeTempDir({ prefix: "sscsi-helm-reuse-" });
  try {
    const chart = join(dir, "chart");
    await runOk("cp", ["-rL", CHART, chart]);
    await Deno.copyFile(join(upstream, "values.yaml"), join(chart, "values.yaml"));
    const reused = await render(chart);
    assert.equal(driver(reused).image, driver(ours).image, "upstream's driver image means ours");
    // Upstream's 200Mi limit, less our nonHeapMemory default, which the templates know without values.yaml.
    const nonHeap = parse(await Deno.readTextFile(join(CHART, "values.yaml"))).linux.driver.nonHeapMemory;
    assert.equal(nonHeap, "72Mi");
    assert.equal(named(driver(reused).env, "DENO_V8_FLAGS")?.value, "--max-old-space-size=128");
    assert.deepEqual(objectIds(reused), objectIds(ours));
    const lint = await helm(["lint", chart]);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- helm lint ----

Deno.test("helm lint --strict passes with the default values and with every option on", async () => {
  for (
    const set of [
      [],
      ["--set", "syncSecret.enabled=true,enableSecretRotation=true,tmpfsSize=32Mi,logFormatJSON=true"],
      ["--set", "rbac.install=false,linux.crds.enabled=false"],
    ]
  ) {
    const out = await helm(["lint", "--strict", CHART, ...set]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});
