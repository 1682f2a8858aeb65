/**
 * Migration from an upstream Helm release, against a real control plane of the test's own (tools/cluster:
 * etcd, kube-apiserver, kube-controller-manager): `helm install` of upstream's chart v1.6.0, then `helm
 * upgrade --reuse-values` to ours. Every object of the release keeps its name and its identity (the
 * DaemonSet is updated in place and rolls, the CSIDriver, RBAC and CRDs are kept, SecretProviderClasses and
 * their pod statuses are untouched), nothing of upstream's release or of either chart's hooks is left over,
 * `helm rollback` returns to upstream's driver in place, and `helm uninstall` removes ours but the CRDs, as
 * upstream's chart does. The control plane has no node:
 * HookRunner runs the hook Jobs' kubectl commands.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { clusterDown, clusterUp } from "../../tools/cluster/control-plane.ts";
import { HookRunner } from "./hook-runner.ts";
import {
  CHART,
  helm,
  isHook,
  kubectlBinary,
  KUSTOMIZE_DIR,
  type Obj,
  one,
  parseObjects,
  render,
  runOk,
  upstreamChart,
} from "./helm.ts";

const RELEASE = "csi-secrets-store"; // the name upstream's install guide uses
const NAMESPACE = "kube-system";
const CRDS = [
  "secretproviderclasses.secrets-store.csi.x-k8s.io",
  "secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io",
];
/** Every kind either chart creates, hooks included. */
const RELEASE_KINDS =
  "daemonsets,serviceaccounts,configmaps,jobs,pods,clusterroles,clusterrolebindings,csidrivers";
/** What upstream's hook image holds (docker/crd.Dockerfile): kubectl as its entrypoint, upstream's CRDs in /crds. */
const UPSTREAM_CRDS_IMAGE = "registry.k8s.io/csi-secrets-store/driver-crds:v1.6.0";

/** A class, and the status the driver wrote for a pod that mounts it. */
const USER_OBJECTS = `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata: { name: db, namespace: app }
spec: { provider: vault, parameters: { roleName: app } }
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClassPodStatus
metadata:
  name: web-0-app-db
  namespace: app
  labels: { internal.secrets-store.csi.k8s.io/node-name: node-1 }
status:
  podName: web-0
  secretProviderClassName: db
  mounted: true
  targetPath: /var/lib/kubelet/pods/0a/volumes/kubernetes.io~csi/secrets/mount
  objects: [{ id: password, version: "1" }]
`;

const key = (o: Obj) => `${o.kind}/${o.metadata.name}`;
const keys = (objs: Obj[]) => objs.map(key).sort();

Deno.test({
  name:
    "migration: helm upgrade --reuse-values replaces an upstream v1.6.0 release in place; helm uninstall removes ours",
  // The control plane's processes outlive this test's handles until clusterDown.
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-helm-cluster-" });
  await Deno.remove(dir); // `up` makes it, so `down` removes it
  const cluster = await clusterUp(dir);
  const kubeconfig = cluster.files.adminKubeconfig;
  const work = await Deno.makeTempDir({ prefix: "sscsi-helm-migration-" });
  const upstream = await upstreamChart();
  const hooks = new HookRunner({
    kubectl: kubectlBinary(),
    adminKubeconfig: kubeconfig,
    server: cluster.server,
    caCert: cluster.files.caCert,
    namespace: NAMESPACE,
    imageFiles: {
      [UPSTREAM_CRDS_IMAGE]: Object.fromEntries(
        [...Deno.readDirSync(join(upstream, "crds"))].map((f) => [
          `crds/${f.name}`,
          Deno.readTextFileSync(join(upstream, "crds", f.name)),
        ]),
      ),
    },
  });
  const kubectl = (...args: string[]) => runOk(kubectlBinary(), [`--kubeconfig=${kubeconfig}`, ...args]);
  const get = async (kind: string, name: string, namespace?: string): Promise<Obj | undefined> => {
    const out = await kubectl(
      "get",
      kind,
      name,
      ...(namespace ? ["-n", namespace] : []),
      "--ignore-not-found",
      "-o",
      "json",
    );
    return out.trim() === "" ? undefined : JSON.parse(out);
  };
  const helmOk = async (...args: string[]) => {
    const out = await helm(args, { KUBECONFIG: kubeconfig });
    if (out.code !== 0) {
      throw new Error(
        `helm ${args.join(" ")} exited ${out.code}:\n${out.stderr}${out.stdout}\nhook runs: ${
          JSON.stringify({ runs: hooks.runs, pollErrors: hooks.pollErrors }, null, 2)
        }`,
      );
    }
    return out.stdout;
  };
  const manifest = async () =>
    parseObjects(await helmOk("get", "manifest", RELEASE, "-n", NAMESPACE), "helm get manifest");
  /** uid of each object, by kind/name. */
  const uids = async (objs: Obj[]) =>
    Object.fromEntries(
      await Promise.all(
        objs.map(async (
          o,
        ) => [key(o), (await get(o.kind, o.metadata.name, o.metadata.namespace))?.metadata.uid]),
      ),
    );
  /** Every object of the charts' kinds that carries the release's instance label. */
  const labelled = async () =>
    keys(
      JSON.parse(
        await kubectl(
          "get",
          RELEASE_KINDS,
          "-A",
          "-l",
          `app.kubernetes.io/instance=${RELEASE}`,
          "-o",
          "json",
        ),
      )
        .items,
    );

  try {
    // tools/cluster applied manifests/, whose objects an upstream release would clash with: start empty.
    await kubectl("delete", "-k", KUSTOMIZE_DIR, "--wait=true");
    hooks.start();

    // ---- upstream's release, with values of the user's own that --reuse-values must carry over ----
    await helmOk(
      "install",
      RELEASE,
      upstream,
      "-n",
      NAMESPACE,
      "--set",
      "syncSecret.enabled=true",
      "--set",
      "linux.podAnnotations.team=payments",
      "--timeout=4m",
    );
    const upstreamObjects = await manifest();
    const daemonSetName = upstreamObjects.find((o) => o.kind === "DaemonSet")!.metadata.name;
    assert.equal(daemonSetName, "csi-secrets-store-secrets-store-csi-driver");
    await kubectl("create", "namespace", "app");
    await Deno.writeTextFile(join(work, "objects.yaml"), USER_OBJECTS);
    await kubectl("apply", "-f", join(work, "objects.yaml"));
    const kept = [
      ...CRDS.map((name) => ({ kind: "CustomResourceDefinition", metadata: { name } })),
      ...parseObjects(USER_OBJECTS, "USER_OBJECTS"),
    ];
    const before = await uids([...upstreamObjects, ...kept]);
    const generationBefore = (await get("daemonset", daemonSetName, NAMESPACE))!.metadata.generation;

    // ---- the upgrade to ours ----
    await helmOk("upgrade", RELEASE, CHART, "-n", NAMESPACE, "--reuse-values", "--timeout=4m");
    const ourObjects = await manifest();
    assert.deepEqual(keys(ourObjects), keys(upstreamObjects), "the same objects, by kind and name");
    assert.deepEqual(
      await uids([...ourObjects, ...kept]),
      before,
      "every object kept its identity: updated in place, not replaced",
    );

    const ds = (await get("daemonset", daemonSetName, NAMESPACE))!;
    const driver = ds.spec.template.spec.containers.find((c: Obj) => c.name === "secrets-store");
    const ourImage = one((await render(CHART)).filter((o) => !isHook(o)), "DaemonSet").spec.template.spec
      .containers.find((c: Obj) => c.name === "secrets-store").image;
    assert.equal(driver.image, ourImage, "the DaemonSet runs our driver");
    assert.equal(driver.args[0], "node");
    assert.equal(ds.metadata.labels["helm.sh/chart"], "secrets-store-csi-driver-0.1.0");
    assert.equal(
      ds.spec.template.metadata.annotations.team,
      "payments",
      "--reuse-values kept the user's value",
    );
    assert.ok(ds.metadata.generation > generationBefore, "the pod template changed: the DaemonSet rolls");
    assert.equal(ds.spec.updateStrategy.type, "RollingUpdate");
    assert.deepEqual(
      (await get("clusterrole", "secretproviderclasses-role"))!.rules.map((r: Obj) => r.resources[0]),
      ["secretproviderclasses", "secretproviderclasspodstatuses", "pods", "events"],
      "the driver's role is ours",
    );
    assert.ok(await get("clusterrole", "secretprovidersyncing-role"), "syncSecret.enabled was carried over");
    for (const name of CRDS) {
      const live = (await get("crd", name))!;
      assert.equal(live.metadata.annotations["helm.sh/resource-policy"], "keep", name);
      const ours = parse(
        await Deno.readTextFile(join(CHART, "crds", `crd-${name.split(".")[0]}.yaml`)),
      );
      assert.equal(
        live.spec.versions[0].schema.openAPIV3Schema.description,
        ours.spec.versions[0].schema.openAPIV3Schema.description,
        `${name}: the upgrade hook applied this chart's CRD`,
      );
    }
    assert.deepEqual(
      await labelled(),
      keys(ourObjects),
      "nothing left over: no hook object, nothing of upstream's",
    );
    assert.deepEqual(
      hooks.runs.map((r) => `${r.job} as ${r.serviceAccount}: ${r.code}`),
      [
        "secrets-store-csi-driver-upgrade-crds as csi-secrets-store-secrets-store-csi-driver-upgrade-crds: 0",
        "secrets-store-csi-driver-upgrade-crds as csi-secrets-store-secrets-store-csi-driver-upgrade-crds: 0",
        "secrets-store-csi-driver-keep-crds as csi-secrets-store-secrets-store-csi-driver-keep-crds: 0",
      ],
      JSON.stringify(hooks.runs, null, 2),
    );

    // ---- rollback to upstream's revision, and forward again ----
    const driverImage = async () =>
      (await get("daemonset", daemonSetName, NAMESPACE))!.spec.template.spec.containers
        .find((c: Obj) => c.name === "secrets-store").image;
    await helmOk("rollback", RELEASE, "1", "-n", NAMESPACE, "--timeout=4m");
    assert.equal(await driverImage(), "registry.k8s.io/csi-secrets-store/driver:v1.6.0");
    assert.deepEqual(
      await uids([...upstreamObjects, ...kept]),
      before,
      "the rollback, too, updates in place",
    );
    await helmOk("upgrade", RELEASE, CHART, "-n", NAMESPACE, "--reuse-values", "--timeout=4m");
    assert.equal(await driverImage(), ourImage);

    // ---- uninstall ----
    await helmOk("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout=4m");
    assert.deepEqual(await labelled(), [], "helm uninstall removed every object of the release");
    for (const o of ourObjects) {
      assert.equal(await get(o.kind, o.metadata.name, o.metadata.namespace), undefined, `${key(o)} is gone`);
    }
    const after = await uids(kept);
    assert.deepEqual(
      after,
      Object.fromEntries(Object.entries(before).filter(([k]) => k in after)),
      "the CRDs and their objects stay",
    );
  } finally {
    await hooks.stop();
    // clusterDown awaits the exit of processes clusterUp unref'd: keep the event loop alive meanwhile.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await clusterDown(dir);
    } finally {
      clearInterval(keepAlive);
    }
    await Deno.remove(work, { recursive: true });
  }
});
