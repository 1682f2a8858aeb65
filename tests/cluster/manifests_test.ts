/**
 * manifests/ and examples/ against the real API server: `deno task cluster up` applied manifests/ with
 * `kubectl apply -k` (a rejected object fails start-up, so every test); here each object is also
 * server-side applied again with strict field validation (an unknown or misspelt field is an error, where
 * kubectl only warns), the CRDs are established with structural schemas, the examples' classes pass the
 * real schema, and the schema really validates and prunes.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { type KubeObject, RestError, restPath, sharedCluster, testNamespace } from "../support/cluster.ts";

const { admin } = sharedCluster();
const ROOT = new URL("../../", import.meta.url);
const SPC_GROUP = "secrets-store.csi.x-k8s.io";

const PLURALS: Record<string, string> = {
  CustomResourceDefinition: "customresourcedefinitions",
  CSIDriver: "csidrivers",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
  ServiceAccount: "serviceaccounts",
  DaemonSet: "daemonsets",
  SecretProviderClass: "secretproviderclasses",
};

async function objectsOf(file: string): Promise<KubeObject[]> {
  return parseAllDocuments(await Deno.readTextFile(new URL(file, ROOT)))
    .map((doc) => doc.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

/** manifests/ in kustomization.yaml's order. */
async function manifestObjects(): Promise<{ file: string; object: KubeObject }[]> {
  const [kustomization] = await objectsOf("manifests/kustomization.yaml");
  const files = (kustomization.resources as string[]).map((f) => `manifests/${f}`);
  return (await Promise.all(
    files.map(async (file) => (await objectsOf(file)).map((object) => ({ file, object }))),
  ))
    .flat();
}

function pathOf(object: KubeObject, namespace = object.metadata.namespace): string {
  const plural = PLURALS[object.kind!];
  assert.ok(plural, `no REST path known for kind ${object.kind}`);
  return restPath(object.apiVersion!, plural, namespace, object.metadata.name);
}

/** Server-side apply with strict field validation, as a dry run: the server's full admission and validation. */
function strictDryRunApply(object: KubeObject, namespace?: string): Promise<KubeObject> {
  const query = "fieldManager=manifests-test&force=true&dryRun=All&fieldValidation=Strict";
  const body = namespace ? { ...object, metadata: { ...object.metadata, namespace } } : object;
  return admin.request("PATCH", `${pathOf(object, namespace)}?${query}`, body, {
    contentType: "application/apply-patch+yaml",
  });
}

Deno.test("every object of manifests/ is in the cluster and passes a strict server-side apply", async () => {
  const objects = await manifestObjects();
  assert.ok(objects.length >= 10, `${objects.length} objects`);
  const rejected: string[] = [];
  for (const { file, object } of objects) {
    const what = `${file}: ${object.kind} ${object.metadata.name}`;
    const stored = await admin.find(pathOf(object));
    if (!stored) rejected.push(`${what} is not in the cluster`);
    await strictDryRunApply(object).catch((err) => rejected.push(`${what}: ${err.message}`));
  }
  assert.deepEqual(rejected, []);
});

Deno.test("both CRDs are established with structural schemas, v1 stored and v1alpha1 served", async () => {
  for (const plural of ["secretproviderclasses", "secretproviderclasspodstatuses"]) {
    const crd = await admin.get(
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.${SPC_GROUP}`,
    );
    const conditions = Object.fromEntries(
      (crd.status as { conditions: { type: string; status: string }[] }).conditions.map((
        c,
      ) => [c.type, c.status]),
    );
    assert.equal(conditions.Established, "True", plural);
    assert.equal(conditions.NamesAccepted, "True", plural);
    assert.equal(
      conditions.NonStructuralSchema,
      undefined,
      `${plural}: the server calls its schema non-structural`,
    );
    const versions = (crd.spec as { versions: { name: string; served: boolean; storage: boolean }[] })
      .versions
      .map(({ name, served, storage }) => ({ name, served, storage }));
    assert.deepEqual(versions, [
      { name: "v1", served: true, storage: true },
      { name: "v1alpha1", served: true, storage: false },
    ]);
    // Discovery lists the resource under both versions.
    for (const version of ["v1", "v1alpha1"]) {
      const resources = await admin.get<{ resources: { name: string }[] }>(`/apis/${SPC_GROUP}/${version}`);
      assert.ok(resources.resources.some((r) => r.name === plural), `${plural} in ${version} discovery`);
    }
  }
});

Deno.test("the examples' SecretProviderClasses pass the real schema with strict field validation", async () => {
  await using ns = await testNamespace(admin);
  const files = [
    "examples/spc/demo-local.yaml",
    "examples/azure-spc.yaml",
    "examples/local/spc.yaml",
    "examples/spc-with-secret-objects.yaml",
  ];
  const classes = (await Promise.all(files.map(objectsOf))).flat().filter((o) =>
    o.kind === "SecretProviderClass"
  );
  assert.equal(classes.length, files.length);
  for (const spc of classes) await strictDryRunApply(spc, ns.name);
});

Deno.test("the SecretProviderClass schema is enforced: wrong types are refused, unknown fields pruned", async () => {
  await using ns = await testNamespace(admin);
  const spc = (spec: unknown, name: string): KubeObject => ({
    apiVersion: `${SPC_GROUP}/v1`,
    kind: "SecretProviderClass",
    metadata: { name, namespace: ns.name },
    spec,
  });
  await assert.rejects(
    admin.create("secretproviderclasses", spc({ provider: "test", parameters: { port: 8200 } }, "typed")),
    (err: RestError) => {
      assert.equal(err.status, 422);
      assert.match(
        err.message,
        /spec\.parameters\.port: Invalid value: "integer": spec\.parameters\.port in body must be of type string/,
      );
      return true;
    },
  );
  const stored = await admin.create(
    "secretproviderclasses",
    spc({ provider: "test", parameters: { a: "b" }, providr: "typo" }, "pruned"),
  );
  assert.deepEqual(stored.spec, { provider: "test", parameters: { a: "b" } });
  // Written as v1alpha1, the same object reads back as v1 (conversion None: same schema).
  await admin.create("secretproviderclasses", {
    ...spc({ provider: "test", parameters: { a: "b" } }, "old"),
    apiVersion: `${SPC_GROUP}/v1alpha1`,
  });
  const asV1 = await admin.get(restPath(`${SPC_GROUP}/v1`, "secretproviderclasses", ns.name, "old"));
  assert.equal(asV1.apiVersion, `${SPC_GROUP}/v1`);
});
