/**
 * NodePublishVolume against the real control plane: SecretProviderClasses read from the real API server
 * (v1 and v1alpha1 objects), SecretProviderClassPodStatus objects written through the driver's RBAC and
 * collected by the real garbage collector; real gRPC, real tmpfs, a real provider on a unix socket.
 */
import assert from "node:assert/strict";
import { GrpcStatus } from "../../lib/errors.ts";
import { assertGrpcError, NODE_LABEL } from "../integration/k8s_harness.ts";
import {
  createPod,
  createSpc,
  driverRequests,
  eventually,
  type KubeObject,
  restPath,
  sharedCluster,
  testNamespace,
} from "../support/cluster.ts";
import { requireRoot } from "../support/root.ts";
import { startClusterDriver } from "./harness.ts";

requireRoot();
const cluster = sharedCluster();
const { admin } = cluster;
const SPC_GROUP = "secrets-store.csi.x-k8s.io";
const spcpsPath = (ns: string, name?: string) =>
  restPath(`${SPC_GROUP}/v1`, "secretproviderclasspodstatuses", ns, name);

Deno.test("a v1alpha1 class is read as v1, the SPCPS has every field, and the garbage collector removes it with the pod", async () => {
  await using ns = await testNamespace(admin);
  const pod = await createPod(admin, ns.name, "web");
  await createSpc(admin, ns.name, "vault-db", {}, "v1alpha1");
  const k = await startClusterDriver(cluster);
  try {
    k.driver.provider.behaviour = {
      files: [{ path: "b-secret", contents: "bee" }, { path: "a-secret", contents: "ay" }],
      objectVersions: [{ id: "b-secret", version: "2" }, { id: "a-secret", version: "1" }],
    };
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "vault-db"));
    const target = k.driver.target("web");
    assert.equal(await Deno.readTextFile(`${target}/a-secret`), "ay");
    assert.equal(JSON.parse(k.driver.provider.mountRequests[0].attributes).a, "b", "the class's parameters");

    const spcps = await admin.get(spcpsPath(ns.name, `web-${ns.name}-vault-db`));
    assert.equal(spcps.apiVersion, `${SPC_GROUP}/v1`);
    assert.deepEqual(spcps.metadata.labels, { [NODE_LABEL]: k.nodeId });
    assert.deepEqual(spcps.metadata.ownerReferences, [
      { apiVersion: "v1", kind: "Pod", name: "web", uid: pod.metadata.uid },
    ]);
    assert.deepEqual(spcps.status, {
      podName: "web",
      secretProviderClassName: "vault-db",
      mounted: true,
      targetPath: target,
      objects: [{ id: "a-secret", version: "1" }, { id: "b-secret", version: "2" }],
    });

    await k.driver.client.nodeUnpublishVolume({ volume_id: "csi-web", target_path: target });
    const after = await admin.get(spcpsPath(ns.name, `web-${ns.name}-vault-db`));
    assert.equal((after.status as { mounted: boolean }).mounted, false);

    // The driver deletes nothing: kube-controller-manager's garbage collector follows the owner reference.
    await admin.delete(restPath("v1", "pods", ns.name, "web"));
    await eventually(
      "the garbage collector to delete the SPCPS",
      async () => (await admin.find(spcpsPath(ns.name, `web-${ns.name}-vault-db`))) === undefined,
      60_000,
    );
  } finally {
    await k.close();
  }
});

Deno.test("a missing class is NOT_FOUND naming it; a class without provider or parameters is INVALID_ARGUMENT", async () => {
  await using ns = await testNamespace(admin);
  const pod = await createPod(admin, ns.name, "web");
  await createSpc(admin, ns.name, "no-params", { parameters: {} });
  await createSpc(admin, ns.name, "no-provider", { provider: "" });
  const k = await startClusterDriver(cluster);
  try {
    const publish = (spc: string) => k.driver.client.nodePublishVolume(k.publishRequest(pod, spc));
    await assertGrpcError(
      publish("absent"),
      GrpcStatus.NOT_FOUND,
      new RegExp(`secretproviderclass absent not found in namespace ${ns.name}`),
    );
    await assertGrpcError(
      publish("no-params"),
      GrpcStatus.INVALID_ARGUMENT,
      new RegExp(`parameters not set in SecretProviderClass ${ns.name}/no-params`),
    );
    await assertGrpcError(
      publish("no-provider"),
      GrpcStatus.INVALID_ARGUMENT,
      new RegExp(`provider not set in SecretProviderClass ${ns.name}/no-provider`),
    );
    assert.deepEqual(await k.driver.mounts(), []);
  } finally {
    await k.close();
  }
});

Deno.test("a StatefulSet pod recreated under its name on another node: that node's driver takes the SPCPS over", async () => {
  await using ns = await testNamespace(admin);
  await createSpc(admin, ns.name, "db");
  const first = await createPod(admin, ns.name, "db-0");
  const one = await startClusterDriver(cluster);
  const two = await startClusterDriver(cluster);
  try {
    await one.driver.client.nodePublishVolume(one.publishRequest(first, "db"));
    // The pod is deleted and recreated under the same name; its old status may not be collected yet.
    await admin.delete(restPath("v1", "pods", ns.name, "db-0"));
    const moved = await createPod(admin, ns.name, "db-0");
    assert.notEqual(moved.metadata.uid, first.metadata.uid);
    await two.driver.client.nodePublishVolume(two.publishRequest(moved, "db"));
    const name = `db-0-${ns.name}-db`;
    // Whether the collector removed the old status before the publish or not, the new one stays.
    const spcps = await eventually("the SPCPS of the moved pod", async () => {
      const found = await admin.find(spcpsPath(ns.name, name));
      return found?.metadata.ownerReferences?.[0].uid === moved.metadata.uid ? found : undefined;
    });
    assert.equal(spcps.metadata.labels?.[NODE_LABEL], two.nodeId);
    assert.equal((spcps.status as { targetPath: string }).targetPath, two.driver.target("db-0"));
    assert.equal((spcps.status as { mounted: boolean }).mounted, true);
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // give the collector a chance to err
    assert.equal((await admin.list(spcpsPath(ns.name))).length, 1);
    assert.ok(await admin.find(spcpsPath(ns.name, name)), "the collector removed the moved pod's status");
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("100 concurrent publishes of pods sharing one class make at most a handful of class GETs (audit log)", async () => {
  await using ns = await testNamespace(admin);
  const k = await startClusterDriver(cluster);
  try {
    // Real pods: the garbage collector would remove a status whose owner does not exist.
    const pods: KubeObject[] = [];
    for (let i = 0; i < 100; i += 25) {
      pods.push(
        ...await Promise.all(
          Array.from({ length: 25 }, (_, j) => createPod(admin, ns.name, `burst-${i + j}`)),
        ),
      );
    }
    await createSpc(admin, ns.name, "shared"); // after start-up: the first publishes may miss the cache
    await Promise.all(pods.map((p) => k.driver.client.nodePublishVolume(k.publishRequest(p, "shared"))));
    assert.equal((await admin.list(spcpsPath(ns.name))).length, 100);
    const gets = (await driverRequests(cluster.cluster, k.nodeId)).filter((e) =>
      e.verb === "get" && e.objectRef?.resource === "secretproviderclasses" && e.objectRef.name === "shared"
    );
    assert.ok(gets.length <= 3, `${gets.length} GETs of the class`);
    await Promise.all(
      pods.map((p) =>
        k.driver.client.nodeUnpublishVolume({
          volume_id: "v",
          target_path: k.driver.target(p.metadata.name!),
        })
      ),
    );
    assert.deepEqual(await k.driver.mounts(), []);
  } finally {
    await k.close();
  }
});

Deno.test("nodePublishSecretRef contents and a TokenRequest token of the pod's account reach the provider byte for byte", async () => {
  await using ns = await testNamespace(admin);
  await createSpc(admin, ns.name, "creds", { parameters: { objects: "<list & more>" } });
  const pod = await createPod(admin, ns.name, "app");
  // What kubelet does for the volume: read the nodePublishSecretRef Secret, request a token bound to the pod.
  await admin.create("secrets", {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "creds", namespace: ns.name },
    stringData: { username: "admin", "pass-word": "p&ss<w>rd\u2028é" },
  });
  const secret = await admin.get(restPath("v1", "secrets", ns.name, "creds"));
  const secrets = Object.fromEntries(
    Object.entries(secret.data as Record<string, string>).map(([k, v]) => [
      k,
      new TextDecoder().decode(Uint8Array.from(atob(v), (c) => c.charCodeAt(0))),
    ]),
  );
  const tokenRequest = await admin.post<{ status: { token: string; expirationTimestamp: string } }>(
    `/api/v1/namespaces/${ns.name}/serviceaccounts/default/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: ["vault"],
        expirationSeconds: 3600,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "app", uid: pod.metadata.uid },
      },
    },
  );
  const tokens = JSON.stringify({
    vault: { token: tokenRequest.status.token, expirationTimestamp: tokenRequest.status.expirationTimestamp },
  });
  const k = await startClusterDriver(cluster);
  try {
    await k.driver.client.nodePublishVolume(
      k.publishRequest(pod, "creds", { ...secrets, "csi.storage.k8s.io/serviceAccount.tokens": tokens }),
    );
    const [request] = k.driver.provider.mountRequests;
    // Go's json.Marshal of map[string]string: keys sorted, <, >, &, U+2028 escaped, other UTF-8 as is
    // (the token and its timestamp hold none of the escaped characters).
    assert.equal(
      request.secrets,
      `{"csi.storage.k8s.io/serviceAccount.tokens":${JSON.stringify(tokens)},` +
        `"pass-word":"p\\u0026ss\\u003cw\\u003erd\\u2028é","username":"admin"}`,
    );
    const attributes = JSON.parse(request.attributes);
    assert.equal(attributes["csi.storage.k8s.io/serviceAccount.tokens"], tokens, "tokens from the secrets");
    assert.equal(attributes.objects, "<list & more>");
    assert.equal(request.permission, "420");
    assert.ok(request.attributes.includes('"objects":"\\u003clist \\u0026 more\\u003e"'));

    // The token the provider got is one the API server still accepts for that audience and pod.
    const review = await admin.post<{ status: { authenticated: boolean; user: KubeObject["metadata"] } }>(
      "/apis/authentication.k8s.io/v1/tokenreviews",
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: {
          token: JSON.parse(attributes["csi.storage.k8s.io/serviceAccount.tokens"]).vault.token,
          audiences: ["vault"],
        },
      },
    );
    assert.equal(review.status.authenticated, true);
    assert.equal(
      (review.status.user as { username: string }).username,
      `system:serviceaccount:${ns.name}:default`,
    );

    // Older kubelets put the tokens in the volume context only.
    const other = await createPod(admin, ns.name, "other");
    const fromContext = k.publishRequest(other, "creds");
    fromContext.volume_context!["csi.storage.k8s.io/serviceAccount.tokens"] = tokens;
    await k.driver.client.nodePublishVolume(fromContext);
    const second = k.driver.provider.mountRequests[1];
    assert.equal(second.secrets, "{}");
    assert.equal(JSON.parse(second.attributes)["csi.storage.k8s.io/serviceAccount.tokens"], tokens);
  } finally {
    await k.close();
  }
});

Deno.test("1,000 SecretProviderClasses in the cluster: the driver's cache holds them all and publishes need no GET", async () => {
  await using ns = await testNamespace(admin);
  const names = Array.from({ length: 1000 }, (_, i) => `class-${String(i).padStart(4, "0")}`);
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(names.slice(i, i + 25).map((name) => createSpc(admin, ns.name, name)));
  }
  const started = performance.now();
  const k = await startClusterDriver(cluster);
  try {
    const startMs = performance.now() - started;
    const picked = [0, 1, 499, 500, 998, 999].map((i) => names[i]);
    for (const name of picked) {
      const pod = { metadata: { name: `pod-${name}`, namespace: ns.name, uid: crypto.randomUUID() } };
      await k.driver.client.nodePublishVolume(k.publishRequest(pod, name));
    }
    const requests = await driverRequests(cluster.cluster, k.nodeId);
    const classGets = requests.filter((e) =>
      e.verb === "get" && e.objectRef?.resource === "secretproviderclasses"
    );
    assert.deepEqual(classGets.map((e) => e.objectRef?.name), [], "publishes answered from the cache");
    const lists = requests.filter((e) =>
      e.verb === "list" && e.objectRef?.resource === "secretproviderclasses"
    );
    // One list at start-up, read in pages of 500 as client-go's reflector reads it.
    const firstPages = lists.filter((e) => !new URL(e.requestURI, "https://x").searchParams.has("continue"));
    assert.equal(firstPages.length, 1, "one list of every class at start-up");
    assert.ok(
      lists.length >= Math.ceil(names.length / 500),
      `${lists.length} pages for ${names.length} classes`,
    );
    assert.ok(startMs < 30_000, `the driver took ${Math.round(startMs)} ms to start with 1,000 classes`);
  } finally {
    await k.close();
  }
});
