/**
 * The deployable manifests (manifests/) and examples (examples/): they parse, use the right kinds and
 * API versions, the CRD schemas have upstream's fields and accept the example SecretProviderClasses,
 * the driver's RBAC matches the API calls the code makes, and the DaemonSets' command lines are ones
 * the CLI accepts.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import {
  NODE_FLAGS,
  nodeConfig,
  nodeFlagNames,
  PROVIDER_LOCAL_FLAGS,
  providerLocalConfig,
  providerLocalFlagNames,
} from "../../lib/config.ts";
import { type FlagSpecs, type FlagValues, parseFlags } from "../../lib/flags.ts";
import { DRIVER_NAME, DRIVER_VERSION } from "../../lib/version.ts";
import { type Schema, validate } from "../support/openapi-validate.ts";
import { DEPLOY_ARGS, UPSTREAM_SIDECARS } from "../support/upstream.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

interface Doc {
  file: string;
  obj: Obj;
}

const ROOT = new URL("../../", import.meta.url);
const SPC_GROUP = "secrets-store.csi.x-k8s.io";
const DRIVER_SA = { name: "secrets-store-csi-driver", namespace: "kube-system" };
const DRIVER_IMAGE = "localhost/secrets-store-csi";
const CHART_DIR = "manifests/helm";

/** The API versions each kind may use, and whether it is namespaced. */
const KINDS: Record<string, { apiVersions: string[]; namespaced: boolean }> = {
  CustomResourceDefinition: { apiVersions: ["apiextensions.k8s.io/v1"], namespaced: false },
  CSIDriver: { apiVersions: ["storage.k8s.io/v1"], namespaced: false },
  ClusterRole: { apiVersions: ["rbac.authorization.k8s.io/v1"], namespaced: false },
  ClusterRoleBinding: { apiVersions: ["rbac.authorization.k8s.io/v1"], namespaced: false },
  ServiceAccount: { apiVersions: ["v1"], namespaced: true },
  ConfigMap: { apiVersions: ["v1"], namespaced: true },
  Pod: { apiVersions: ["v1"], namespaced: true },
  DaemonSet: { apiVersions: ["apps/v1"], namespaced: true },
  SecretProviderClass: { apiVersions: [`${SPC_GROUP}/v1`, `${SPC_GROUP}/v1alpha1`], namespaced: true },
};

async function yamlFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}/${entry.name}`;
    // The Helm chart's templates are not YAML until rendered; tests/helm/ checks the chart.
    if (path === CHART_DIR) continue;
    if (entry.isDirectory) files.push(...await yamlFiles(path));
    else if (/\.ya?ml$/.test(entry.name)) files.push(path);
  }
  return files.sort();
}

async function loadDocs(file: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await Deno.readTextFile(new URL(file, ROOT)));
  if (!Array.isArray(docs)) throw new Error(`${file}: not YAML documents`);
  return docs.flatMap((doc) => {
    assert.deepEqual(doc.errors.map((e) => e.message), [], `${file} does not parse`);
    const obj = doc.toJS();
    return obj === null ? [] : [{ file, obj }];
  });
}

async function loadAll(dir: string): Promise<Doc[]> {
  return (await Promise.all((await yamlFiles(dir)).map(loadDocs))).flat();
}

const manifests = await loadAll("manifests");
const examples = await loadAll("examples");

function only(docs: Doc[], kind: string, name?: string): Obj {
  const found = docs.filter((d) =>
    d.obj.kind === kind && (name === undefined || d.obj.metadata?.name === name)
  );
  assert.equal(found.length, 1, `expected exactly one ${kind} ${name ?? ""}, found ${found.length}`);
  return found[0].obj;
}

Deno.test("manifests and examples: every document has a known kind, its API version, a name and the right scope", () => {
  assert.ok(manifests.length > 0 && examples.length > 0);
  for (const { file, obj } of [...manifests, ...examples]) {
    const where = `${file}: ${obj.kind} ${obj.metadata?.name}`;
    if (obj.kind === "Kustomization") {
      assert.equal(obj.apiVersion, "kustomize.config.k8s.io/v1beta1", where);
      continue;
    }
    const kind = KINDS[obj.kind];
    assert.ok(kind, `${where}: unexpected kind`);
    assert.ok(kind.apiVersions.includes(obj.apiVersion), `${where}: apiVersion ${obj.apiVersion}`);
    assert.match(obj.metadata?.name ?? "", /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, `${where}: metadata.name`);
    assert.equal(typeof obj.metadata.namespace === "string", kind.namespaced, `${where}: metadata.namespace`);
  }
});

Deno.test("kustomizations: list every manifest file of their directory, each of which exists", async () => {
  for (const dir of ["manifests", "examples/local"]) {
    const kustomization = (await loadDocs(`${dir}/kustomization.yaml`))[0].obj;
    const listed = [...kustomization.resources].sort();
    const present = (await yamlFiles(dir)).map((f) => f.slice(dir.length + 1))
      .filter((f) => f !== "kustomization.yaml" && !f.includes("/")).sort();
    assert.deepEqual(listed, present, `${dir}/kustomization.yaml resources`);
  }
});

// ---- CRDs ----

/** Field paths of a schema: `a.b` for properties, `a.*` for additionalProperties, `a[]` for items. */
function fieldPaths(schema: Schema, prefix = ""): string[] {
  const paths: string[] = [];
  for (const [name, sub] of Object.entries(schema.properties ?? {})) {
    const path = prefix === "" ? name : `${prefix}.${name}`;
    paths.push(path, ...fieldPaths(sub, path));
  }
  if (typeof schema.additionalProperties === "object") {
    paths.push(`${prefix}.*`, ...fieldPaths(schema.additionalProperties, `${prefix}.*`));
  }
  if (schema.items) paths.push(`${prefix}[]`, ...fieldPaths(schema.items, `${prefix}[]`));
  return paths;
}

/** Every node says its type, as a structural schema must. */
function untypedNodes(schema: Schema, path = "(root)"): string[] {
  const here = schema.type === undefined && !schema["x-kubernetes-preserve-unknown-fields"] ? [path] : [];
  return [
    ...here,
    ...Object.entries(schema.properties ?? {}).flatMap(([name, sub]) => untypedNodes(sub, `${path}.${name}`)),
    ...(typeof schema.additionalProperties === "object"
      ? untypedNodes(schema.additionalProperties, `${path}.*`)
      : []),
    ...(schema.items ? untypedNodes(schema.items, `${path}[]`) : []),
  ];
}

const TOP = ["apiVersion", "kind", "metadata"];
const SPC_SPEC = [
  "spec",
  "spec.provider",
  "spec.parameters",
  "spec.parameters.*",
  "spec.secretObjects",
  "spec.secretObjects[]",
  "spec.secretObjects[].secretName",
  "spec.secretObjects[].type",
  "spec.secretObjects[].labels",
  "spec.secretObjects[].labels.*",
  "spec.secretObjects[].annotations",
  "spec.secretObjects[].annotations.*",
  "spec.secretObjects[].data",
  "spec.secretObjects[].data[]",
  "spec.secretObjects[].data[].objectName",
  "spec.secretObjects[].data[].key",
];
const SPCPS_STATUS = [
  "status",
  "status.podName",
  "status.secretProviderClassName",
  "status.mounted",
  "status.targetPath",
  "status.objects",
  "status.objects[]",
  "status.objects[].id",
  "status.objects[].version",
];

/** Upstream's fields, per CRD and version (v1 SecretProviderClass dropped status.byPod). */
const UPSTREAM_FIELDS: Record<string, Record<string, string[]>> = {
  [`secretproviderclasses.${SPC_GROUP}`]: {
    v1: [...TOP, ...SPC_SPEC, "status"],
    v1alpha1: [
      ...TOP,
      ...SPC_SPEC,
      "status",
      "status.byPod",
      "status.byPod[]",
      "status.byPod[].id",
      "status.byPod[].namespace",
    ],
  },
  [`secretproviderclasspodstatuses.${SPC_GROUP}`]: {
    v1: [...TOP, ...SPCPS_STATUS],
    v1alpha1: [...TOP, ...SPCPS_STATUS],
  },
};

function crdSchema(plural: string, version: string): Schema {
  const crd = only(manifests, "CustomResourceDefinition", `${plural}.${SPC_GROUP}`);
  const v = crd.spec.versions.find((x: Obj) => x.name === version);
  assert.ok(v, `${plural} has no version ${version}`);
  return v.schema.openAPIV3Schema;
}

Deno.test("CRDs: upstream's names and versions, v1 stored and v1alpha1 served as deprecated", () => {
  const expected = [
    ["secretproviderclasses", "SecretProviderClass", "secretproviderclass"],
    ["secretproviderclasspodstatuses", "SecretProviderClassPodStatus", "secretproviderclasspodstatus"],
  ];
  for (const [plural, kind, singular] of expected) {
    const crd = only(manifests, "CustomResourceDefinition", `${plural}.${SPC_GROUP}`);
    assert.equal(crd.spec.group, SPC_GROUP);
    assert.equal(crd.spec.scope, "Namespaced");
    assert.deepEqual(crd.spec.names, { kind, listKind: `${kind}List`, plural, singular });
    const versions = Object.fromEntries(crd.spec.versions.map((v: Obj) => [v.name, v]));
    assert.deepEqual(Object.keys(versions).sort(), ["v1", "v1alpha1"]);
    assert.equal(versions.v1.served, true);
    assert.equal(versions.v1.storage, true);
    assert.equal(versions.v1alpha1.served, true);
    assert.equal(versions.v1alpha1.storage, false);
    assert.equal(versions.v1alpha1.deprecated, true);
  }
});

Deno.test("CRDs: each version's schema is structural and has exactly upstream's fields", () => {
  for (const [name, versions] of Object.entries(UPSTREAM_FIELDS)) {
    for (const [version, fields] of Object.entries(versions)) {
      const schema = crdSchema(name.split(".")[0], version);
      assert.deepEqual(untypedNodes(schema), [], `${name} ${version}: nodes without a type`);
      assert.deepEqual(fieldPaths(schema).sort(), [...fields].sort(), `${name} ${version}: fields`);
    }
  }
});

const exampleSpcs = examples.filter((d) => d.obj.kind === "SecretProviderClass");

Deno.test("CRDs: every example SecretProviderClass validates, under both served versions", () => {
  assert.ok(exampleSpcs.length >= 3);
  for (const { file, obj } of exampleSpcs) {
    for (const version of ["v1", "v1alpha1"]) {
      const errors = validate(crdSchema("secretproviderclasses", version), {
        ...obj,
        apiVersion: `${SPC_GROUP}/${version}`,
      });
      assert.deepEqual(errors, [], `${file} as ${version}`);
    }
  }
});

Deno.test("examples: the seed-style Azure class and a class with secretObjects are among them", () => {
  const azure = exampleSpcs.find((d) => d.file === "examples/azure-spc.yaml")?.obj;
  assert.ok(azure, "examples/azure-spc.yaml");
  assert.equal(azure.spec.provider, "azure");
  assert.deepEqual(Object.keys(azure.spec.parameters).sort(), [
    "keyvaultName",
    "objects",
    "tenantId",
    "usePodIdentity",
  ]);
  assert.equal(azure.spec.parameters.usePodIdentity, "false");
  const objects = parseAllDocuments(azure.spec.parameters.objects);
  assert.ok(!Array.isArray(objects) || objects.length === 1);
  const entries = (Array.isArray(objects) ? objects[0] : objects).toJS().array as string[];
  for (const entry of entries) {
    const parsed = parseAllDocuments(entry);
    const object = (Array.isArray(parsed) ? parsed[0] : parsed).toJS();
    assert.deepEqual(Object.keys(object).sort(), ["objectName", "objectType", "objectVersion"]);
  }

  const synced = exampleSpcs.find((d) => d.file === "examples/spc-with-secret-objects.yaml")?.obj;
  assert.ok(synced, "examples/spc-with-secret-objects.yaml");
  assert.ok(synced.spec.secretObjects.length >= 1);
  for (const secret of synced.spec.secretObjects) {
    assert.ok(secret.secretName && secret.type && secret.data.length > 0, JSON.stringify(secret));
  }
});

Deno.test("CRDs: a SecretProviderClassPodStatus as the driver writes it validates under both versions", () => {
  const status = {
    kind: "SecretProviderClassPodStatus",
    metadata: {
      name: "web-default-azure-kvname",
      namespace: "default",
      labels: { "internal.secrets-store.csi.k8s.io/node-name": "node-1" },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "web", uid: "0000" }],
    },
    status: {
      podName: "web",
      secretProviderClassName: "azure-kvname",
      mounted: true,
      targetPath: "/var/lib/kubelet/pods/0000/volumes/kubernetes.io~csi/secrets/mount",
      objects: [{ id: "secret/secret1", version: "1" }],
    },
  };
  for (const version of ["v1", "v1alpha1"]) {
    const errors = validate(crdSchema("secretproviderclasspodstatuses", version), {
      ...status,
      apiVersion: `${SPC_GROUP}/${version}`,
    });
    assert.deepEqual(errors, [], version);
  }
});

Deno.test("CRDs: the schemas reject what the API server would reject", () => {
  const spc = (spec: unknown, extra: Obj = {}) => ({
    apiVersion: `${SPC_GROUP}/v1`,
    kind: "SecretProviderClass",
    metadata: { name: "x" },
    spec,
    ...extra,
  });
  const v1 = crdSchema("secretproviderclasses", "v1");
  const cases: [unknown, string][] = [
    [
      spc({ provider: "azure", parameters: { port: 8080 } }),
      "spec.parameters.port: expected string, got integer",
    ],
    [
      spc({ provider: "azure", secretObjects: { secretName: "s" } }),
      "spec.secretObjects: expected array, got object",
    ],
    [spc({ providr: "azure" }), "spec.providr: unknown field"],
    [
      spc({ secretObjects: [{ data: [{ objectName: "a", value: "b" }] }] }),
      "spec.secretObjects[0].data[0].value: unknown field",
    ],
    [spc({ provider: "azure" }, { status: { byPod: [] } }), "status.byPod: unknown field"],
  ];
  for (const [obj, error] of cases) assert.deepEqual(validate(v1, obj), [error]);
  // v1alpha1 still has status.byPod.
  assert.deepEqual(
    validate(
      crdSchema("secretproviderclasses", "v1alpha1"),
      spc({ provider: "a" }, { status: { byPod: [{ id: "p", namespace: "n" }] } }),
    ),
    [],
  );
});

// ---- CSIDriver ----

Deno.test("CSIDriver: the driver's name, ephemeral inline volumes only, pod info and periodic republish", () => {
  const driver = only(manifests, "CSIDriver");
  assert.equal(driver.metadata.name, DRIVER_NAME);
  assert.deepEqual(driver.spec, {
    attachRequired: false,
    podInfoOnMount: true,
    requiresRepublish: true,
    volumeLifecycleModes: ["Ephemeral"],
  });
});

// ---- RBAC ----

/** One Kubernetes API call the driver makes: the verbs it uses on a resource. */
interface ApiCall {
  group: string;
  resource: string;
  verbs: string[];
}

/**
 * Used only while lib/k8s/api.ts does not exist yet: what upstream's driver does. Once that module
 * exists, its API_CALLS is the one truth and this list is ignored.
 */
const FALLBACK_API_CALLS: ApiCall[] = [
  { group: SPC_GROUP, resource: "secretproviderclasses", verbs: ["get", "list", "watch"] },
  {
    group: SPC_GROUP,
    resource: "secretproviderclasspodstatuses",
    verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  },
  { group: "", resource: "pods", verbs: ["get", "list", "watch"] },
  { group: "", resource: "events", verbs: ["create", "patch"] },
  { group: "", resource: "secrets", verbs: ["create", "delete", "get", "list", "patch", "update", "watch"] },
];

async function driverApiCalls(): Promise<ApiCall[]> {
  const module = new URL("lib/k8s/api.ts", ROOT);
  try {
    await Deno.stat(module);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return FALLBACK_API_CALLS;
    throw err;
  }
  const { API_CALLS } = await import(module.href);
  assert.ok(
    Array.isArray(API_CALLS) && API_CALLS.length > 0,
    "lib/k8s/api.ts must export a non-empty API_CALLS",
  );
  return API_CALLS;
}

/** `group/resource verb` for every permission the ClusterRoles bound to the driver's account grant. */
function driverGrants(): Set<string> {
  const roleNames = manifests
    .filter((d) => d.obj.kind === "ClusterRoleBinding")
    .map((d) => d.obj)
    .filter((b) =>
      b.subjects.some((s: Obj) =>
        s.kind === "ServiceAccount" && s.name === DRIVER_SA.name && s.namespace === DRIVER_SA.namespace
      )
    )
    .map((b) => {
      assert.equal(b.roleRef.kind, "ClusterRole");
      return b.roleRef.name;
    });
  const grants = new Set<string>();
  for (const name of roleNames) {
    for (const rule of only(manifests, "ClusterRole", name).rules) {
      const where = `ClusterRole ${name}: ${JSON.stringify(rule)}`;
      assert.ok(
        ![...rule.apiGroups, ...rule.resources, ...rule.verbs].includes("*"),
        `${where}: no wildcards`,
      );
      assert.equal(rule.resourceNames, undefined, `${where}: the driver's calls are not limited to names`);
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs) grants.add(`${group}/${resource} ${verb}`);
        }
      }
    }
  }
  return grants;
}

Deno.test("RBAC: the driver's account may make every API call the code makes, and nothing more", async () => {
  const needed = new Set(
    (await driverApiCalls()).flatMap((c) => c.verbs.map((v) => `${c.group}/${c.resource} ${v}`)),
  );
  const granted = driverGrants();
  assert.deepEqual([...needed].filter((p) => !granted.has(p)).sort(), [], "calls the RBAC does not allow");
  assert.deepEqual([...granted].filter((p) => !needed.has(p)).sort(), [], "permissions no call needs");
});

Deno.test("RBAC: Secrets are granted by a role of their own; viewer and admin roles aggregate into the built-in ones", () => {
  const secretRoles = manifests.filter((d) =>
    d.obj.kind === "ClusterRole" && d.obj.rules.some((r: Obj) => r.resources.includes("secrets"))
  );
  assert.equal(secretRoles.length, 1);
  assert.ok(secretRoles[0].obj.rules.every((r: Obj) => r.resources.every((x: string) => x === "secrets")));

  const aggregated = (label: string) =>
    manifests.filter((d) =>
      d.obj.kind === "ClusterRole" && d.obj.metadata.labels?.[`rbac.authorization.k8s.io/${label}`] === "true"
    )
      .flatMap((d) =>
        d.obj.rules.flatMap((r: Obj) =>
          r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${res} ${v}`))
        )
      );
  const view = aggregated("aggregate-to-view");
  for (const resource of ["secretproviderclasses", "secretproviderclasspodstatuses"]) {
    for (const verb of ["get", "list", "watch"]) {
      assert.ok(view.includes(`${resource} ${verb}`), `view: ${resource} ${verb}`);
    }
  }
  for (const label of ["aggregate-to-admin", "aggregate-to-edit"]) {
    const verbs = aggregated(label).filter((p) => p.startsWith("secretproviderclasses ")).map((p) =>
      p.split(" ")[1]
    );
    assert.deepEqual(verbs.sort(), ["create", "delete", "get", "list", "patch", "update", "watch"], label);
    assert.ok(
      !aggregated(label).some((p) =>
        p.startsWith("secretproviderclasspodstatuses ") && !/ (get|list|watch)$/.test(p)
      ),
    );
  }
});

// ---- DaemonSets ----

function container(ds: Obj, name: string): Obj {
  const found = ds.spec.template.spec.containers.find((c: Obj) => c.name === name);
  assert.ok(found, `${ds.metadata.name} has no container ${name}`);
  return found;
}

/** The container's args with $(VAR) replaced by its env values (fieldRefs get a stand-in node name). */
function expandedArgs(c: Obj): string[] {
  const env = new Map<string, string>((c.env ?? []).map((e: Obj) => [e.name, e.value ?? "node-1"]));
  return c.args.map((arg: string) =>
    arg.replace(/\$\(([A-Z_]+)\)/g, (_, name) => {
      assert.ok(env.has(name), `${c.name}: $(${name}) is not in env`);
      return env.get(name)!;
    })
  );
}

function flagName(arg: string): string {
  assert.match(arg, /^--?[a-z]/, `${arg} is not a flag`);
  return arg.replace(/^--?/, "").split("=")[0];
}

function flagValue(args: string[], name: string): string {
  const arg = args.find((a) => a.startsWith("-") && flagName(a) === name);
  assert.ok(arg, `no --${name}`);
  return arg.slice(arg.indexOf("=") + 1);
}

/** Host path of the volume mounted at `mountPath` in container `c`. */
function hostPathAt(ds: Obj, c: Obj, mountPath: string): string {
  const mount = c.volumeMounts.find((m: Obj) =>
    m.mountPath.replace(/\/$/, "") === mountPath.replace(/\/$/, "")
  );
  assert.ok(mount, `${c.name}: nothing mounted at ${mountPath}`);
  const volume = ds.spec.template.spec.volumes.find((v: Obj) =>
    v.name === mount.volumeName || v.name === mount.name
  );
  assert.ok(volume?.hostPath, `${c.name}: ${mountPath} is not a hostPath`);
  return volume.hostPath.path.replace(/\/$/, "");
}

/** Checks the container's subcommand and flag names, then parses its flags as the CLI does. */
function parseCommandLine(c: Obj, subcommand: string[], specs: FlagSpecs, names: string[]): FlagValues {
  const args = expandedArgs(c);
  assert.deepEqual(args.slice(0, subcommand.length), subcommand, `${c.name}: subcommand`);
  const flags = args.slice(subcommand.length);
  for (const arg of flags) {
    assert.ok(names.includes(flagName(arg)), `${c.name}: ${arg} is not a flag of ${subcommand.join(" ")}`);
  }
  return parseFlags(flags, specs).values;
}

const driverSet = only(manifests, "DaemonSet", "csi-secrets-store");
const driver = container(driverSet, "secrets-store");

Deno.test("DaemonSet: in kube-system on every Linux node, under the driver's account, with both sidecars", () => {
  assert.equal(driverSet.metadata.namespace, "kube-system");
  const pod = driverSet.spec.template.spec;
  assert.equal(pod.serviceAccountName, DRIVER_SA.name);
  assert.deepEqual(pod.nodeSelector, { "kubernetes.io/os": "linux" });
  assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
  assert.deepEqual(driverSet.spec.selector.matchLabels, { app: "csi-secrets-store" });
  for (const [k, v] of Object.entries(driverSet.spec.selector.matchLabels)) {
    assert.equal(driverSet.spec.template.metadata.labels[k], v);
  }
  assert.deepEqual(pod.containers.map((c: Obj) => c.name).sort(), [
    "liveness-probe",
    "node-driver-registrar",
    "secrets-store",
  ]);
  assert.match(
    container(driverSet, "node-driver-registrar").image,
    /^registry\.k8s\.io\/sig-storage\/csi-node-driver-registrar:v\d/,
  );
  assert.match(
    container(driverSet, "liveness-probe").image,
    /^registry\.k8s\.io\/sig-storage\/livenessprobe:v\d/,
  );
});

Deno.test("DaemonSet: the driver is privileged, propagates mounts under kubelet's pods dir and runs our image", () => {
  assert.equal(driver.image, `${DRIVER_IMAGE}:${DRIVER_VERSION}`);
  assert.equal(driver.securityContext.privileged, true);
  const pods = driver.volumeMounts.find((m: Obj) => m.mountPath === "/var/lib/kubelet/pods");
  assert.equal(pods?.mountPropagation, "Bidirectional");
  assert.equal(hostPathAt(driverSet, driver, "/var/lib/kubelet/pods"), "/var/lib/kubelet/pods");
  assert.equal(
    driverSet.spec.template.metadata.annotations["kubectl.kubernetes.io/default-container"],
    "secrets-store",
  );
});

Deno.test("DaemonSet: every container has requests and limits and a read-only root filesystem", () => {
  for (const c of driverSet.spec.template.spec.containers) {
    for (const kind of ["requests", "limits"]) {
      assert.ok(c.resources?.[kind]?.cpu && c.resources?.[kind]?.memory, `${c.name}: ${kind}`);
    }
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true, c.name);
  }
});

Deno.test("DaemonSet: the driver's flags exist in the CLI and its command line is one `node` accepts", () => {
  const config = nodeConfig(parseCommandLine(driver, [], NODE_FLAGS, nodeFlagNames()));
  assert.equal(config.driverName, DRIVER_NAME);
  assert.equal(config.nodeId, "node-1");
});

Deno.test("DaemonSet: the driver runs upstream v1.6.0's args as they are, the sidecars upstream's versions", () => {
  assert.deepEqual(driver.args, DEPLOY_ARGS);
  for (const [name, want] of Object.entries(UPSTREAM_SIDECARS)) {
    const c = container(driverSet, name);
    assert.equal(c.image, want.image, name);
    assert.deepEqual(c.args, want.args, name);
  }
  // Upstream dropped the registrar's deprecated `--mode=kubelet-registration-probe` exec probe.
  assert.equal(container(driverSet, "node-driver-registrar").livenessProbe, undefined);
});

Deno.test("kustomization: the driver image can be retargeted with `kustomize edit set image`", () => {
  const kustomization = only(
    manifests.filter((d) => d.file === "manifests/kustomization.yaml"),
    "Kustomization",
  );
  const [name, tag] = driver.image.split(/:(?=[^:/]+$)/);
  assert.deepEqual(kustomization.images, [{ name, newTag: tag }]);
  assert.equal(driver.imagePullPolicy, "IfNotPresent");
});

Deno.test("DaemonSet: registrar, probe and driver share the CSI socket that kubelet is told about", () => {
  const endpoint = flagValue(expandedArgs(driver), "endpoint");
  assert.equal(endpoint, "unix:///csi/csi.sock");
  const registrar = container(driverSet, "node-driver-registrar");
  const probe = container(driverSet, "liveness-probe");
  for (const c of [registrar, probe]) assert.equal(flagValue(c.args, "csi-address"), "/csi/csi.sock");
  const pluginDir = hostPathAt(driverSet, driver, "/csi");
  for (const c of [registrar, probe]) assert.equal(hostPathAt(driverSet, c, "/csi"), pluginDir);
  assert.equal(flagValue(registrar.args, "kubelet-registration-path"), `${pluginDir}/csi.sock`);
  assert.equal(hostPathAt(driverSet, registrar, "/registration"), "/var/lib/kubelet/plugins_registry");
  assert.equal(driver.livenessProbe.httpGet.port, "healthz");
  const healthz = driver.ports.find((p: Obj) => p.name === "healthz");
  assert.equal(flagValue(probe.args, "http-endpoint"), `0.0.0.0:${healthz.containerPort}`);
});

Deno.test("DaemonSet: each provider directory the driver searches is the same directory on the host", () => {
  const args = expandedArgs(driver);
  const dirs = [
    flagValue(args, "provider-volume"),
    ...flagValue(args, "additional-provider-volume-paths").split(","),
  ];
  assert.deepEqual(dirs, [
    "/var/run/secrets-store-csi-providers",
    "/etc/kubernetes/secrets-store-csi-providers",
  ]);
  for (const dir of dirs) assert.equal(hostPathAt(driverSet, driver, dir), dir);
});

// ---- the kind try-out ----

const localSet = only(examples, "DaemonSet", "secrets-store-local-provider");
const localProvider = container(localSet, "provider");

Deno.test("examples/local: the provider DaemonSet runs `provider local` with flags the CLI accepts", () => {
  const values = parseCommandLine(
    localProvider,
    ["provider", "local"],
    PROVIDER_LOCAL_FLAGS,
    providerLocalFlagNames(),
  );
  assert.equal(providerLocalConfig(values).root, "/data");
  assert.equal(localProvider.image, driver.image);
  assert.equal(localProvider.securityContext?.readOnlyRootFilesystem, true);
  assert.ok(localProvider.resources?.requests && localProvider.resources?.limits);
});

Deno.test("examples/local: the provider's socket lands in the host directory of the driver's --provider-volume", () => {
  const socketDir = flagValue(localProvider.args, "provider-volume");
  const driverDir = flagValue(expandedArgs(driver), "provider-volume");
  assert.equal(hostPathAt(localSet, localProvider, socketDir), hostPathAt(driverSet, driver, driverDir));
});

Deno.test("examples/local: the pod mounts the local class, whose objects are files the provider serves", () => {
  const pod = only(examples, "Pod");
  const volume = pod.spec.volumes.find((v: Obj) => v.csi);
  assert.equal(volume.csi.driver, DRIVER_NAME);
  assert.equal(volume.csi.readOnly, true);
  const spc = only(examples, "SecretProviderClass", volume.csi.volumeAttributes.secretProviderClass);
  assert.equal(spc.metadata.namespace, pod.metadata.namespace);
  assert.equal(spc.spec.provider, "local");

  const root = flagValue(localProvider.args, "root");
  const dataMount = localProvider.volumeMounts.find((m: Obj) => m.mountPath === root);
  const configMapName =
    localSet.spec.template.spec.volumes.find((v: Obj) => v.name === dataMount.name).configMap.name;
  const files = Object.keys(only(examples, "ConfigMap", configMapName).data);
  const parsed = parseAllDocuments(spc.spec.parameters.objects);
  const objects = (Array.isArray(parsed) ? parsed[0] : parsed).toJS() as Obj[];
  for (const { objectName } of objects) {
    assert.ok(files.includes(objectName), `${objectName} is not in ConfigMap ${configMapName}`);
  }
});
