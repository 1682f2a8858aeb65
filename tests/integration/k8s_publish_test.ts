/**
 * NodePublishVolume in a cluster: SecretProviderClasses and SecretProviderClassPodStatus objects in the
 * API-server stand-in, reached through lib/k8s exactly as `node` wires it; real gRPC, real tmpfs, a real
 * provider on a unix socket.
 */
import assert from "node:assert/strict";
import { GrpcStatus } from "../../lib/errors.ts";
import { startApiServer } from "../support/apiserver.ts";
import { requireRoot } from "../support/root.ts";
import { NODE_LABEL, NS, putPod, putSpc, startK8sDriver, waitFor } from "./k8s_harness.ts";

requireRoot();

const SPC_PATH = `/apis/secrets-store.csi.x-k8s.io/v1/namespaces/${NS}/secretproviderclasses`;

async function assertGrpcError(call: Promise<unknown>, code: GrpcStatus, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (err: { code: number; details: string }) => {
    assert.equal(err.code, code, err.details);
    assert.match(err.details, pattern);
    return true;
  });
}

Deno.test("publish with a class from the API server mounts the files and records the SPCPS with every field", async () => {
  await using server = await startApiServer();
  const pod = putPod(server, "web");
  putSpc(server, "vault-db", {}, "v1alpha1"); // written as v1alpha1, read as v1
  const k = await startK8sDriver(server);
  try {
    k.driver.provider.behaviour = {
      files: [{ path: "b-secret", contents: "bee" }, { path: "a-secret", contents: "ay" }],
      objectVersions: [{ id: "b-secret", version: "2" }, { id: "a-secret", version: "1" }],
    };
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "vault-db"));
    const target = k.driver.target("web");
    assert.equal(await Deno.readTextFile(`${target}/a-secret`), "ay");
    assert.equal(await Deno.readTextFile(`${target}/b-secret`), "bee");
    assert.equal(JSON.parse(k.driver.provider.mountRequests[0].attributes).a, "b", "the class's parameters");

    const spcps = server.get("SecretProviderClassPodStatus", NS, "web-default-vault-db");
    assert.ok(spcps, "the SPCPS is named <pod>-<namespace>-<class>");
    assert.equal(spcps.apiVersion, "secrets-store.csi.x-k8s.io/v1");
    assert.deepEqual(spcps.metadata.labels, { [NODE_LABEL]: "node-1" });
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

    // Unpublish deletes nothing, but the status stops claiming a mount.
    await k.driver.client.nodeUnpublishVolume({ volume_id: "csi-web", target_path: target });
    const after = server.get("SecretProviderClassPodStatus", NS, "web-default-vault-db");
    assert.equal(after?.status && (after.status as { mounted: boolean }).mounted, false);
    assert.equal((after!.status as { targetPath: string }).targetPath, target);

    // Deleting the pod removes its SPCPS (owner reference), not the driver.
    server.delete("Pod", NS, "web");
    assert.equal(server.get("SecretProviderClassPodStatus", NS, "web-default-vault-db"), undefined);
  } finally {
    await k.close();
  }
});

Deno.test("a missing class is NOT_FOUND naming it; a class without provider or parameters is INVALID_ARGUMENT", async () => {
  await using server = await startApiServer();
  const pod = putPod(server, "web");
  putSpc(server, "no-params", { parameters: {} });
  putSpc(server, "no-provider", { provider: "" });
  const k = await startK8sDriver(server);
  try {
    const publish = (spc: string) => k.driver.client.nodePublishVolume(k.publishRequest(pod, spc));
    await assertGrpcError(
      publish("absent"),
      GrpcStatus.NOT_FOUND,
      /secretproviderclass absent not found in namespace default/,
    );
    await assertGrpcError(
      publish("no-params"),
      GrpcStatus.INVALID_ARGUMENT,
      /parameters not set in SecretProviderClass default\/no-params/,
    );
    await assertGrpcError(
      publish("no-provider"),
      GrpcStatus.INVALID_ARGUMENT,
      /provider not set in SecretProviderClass default\/no-provider/,
    );
    assert.deepEqual(await k.driver.mounts(), []);
  } finally {
    await k.close();
  }
});

Deno.test("the same pod name published on another node takes the SPCPS over (StatefulSet pod moved)", async () => {
  await using server = await startApiServer();
  putSpc(server, "db");
  const first = putPod(server, "db-0");
  const one = await startK8sDriver(server, { nodeId: "node-1" });
  const two = await startK8sDriver(server, { nodeId: "node-2" });
  try {
    await one.driver.client.nodePublishVolume(one.publishRequest(first, "db"));
    // The pod is recreated elsewhere under the same name before the old status is collected.
    const moved = { ...first, metadata: { ...first.metadata, uid: crypto.randomUUID() } };
    server.put(moved);
    await two.driver.client.nodePublishVolume(two.publishRequest(moved, "db"));
    const spcps = server.get("SecretProviderClassPodStatus", NS, "db-0-default-db")!;
    assert.equal(spcps.metadata.labels?.[NODE_LABEL], "node-2");
    assert.deepEqual(spcps.metadata.ownerReferences?.map((r) => r.uid), [moved.metadata.uid]);
    assert.equal((spcps.status as { targetPath: string }).targetPath, two.driver.target("db-0"));
    assert.equal((spcps.status as { mounted: boolean }).mounted, true);
    assert.equal(server.list("secretproviderclasspodstatuses").length, 1);
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("100 concurrent publishes of pods sharing one class make at most a handful of class GETs", async () => {
  await using server = await startApiServer();
  const k = await startK8sDriver(server);
  try {
    putSpc(server, "shared"); // after start-up: the first publishes may miss the cache
    const pods = Array.from({ length: 100 }, (_, i) => ({
      metadata: { name: `burst-${i}`, namespace: NS, uid: crypto.randomUUID() },
    }));
    await Promise.all(pods.map((p) => k.driver.client.nodePublishVolume(k.publishRequest(p, "shared"))));
    const gets = server.countRequests({ method: "GET", path: `${SPC_PATH}/shared`, watch: false });
    assert.ok(gets <= 3, `${gets} GETs of the class`);
    assert.equal(server.list("secretproviderclasspodstatuses").length, 100);
    assert.equal((await k.driver.mounts()).length, 100);
    await Promise.all(
      pods.map((p) =>
        k.driver.client.nodeUnpublishVolume({ volume_id: "v", target_path: k.driver.target(p.metadata.name) })
      ),
    );
    assert.deepEqual(await k.driver.mounts(), []);
  } finally {
    await k.close();
  }
});

Deno.test("API server slow or down during publish: the publish fails with a clear error and leaves no mount", async () => {
  await using server = await startApiServer();
  putSpc(server, "cached");
  const pod = putPod(server, "web");
  const k = await startK8sDriver(server, { tuning: { requestTimeoutMs: 300 } });
  try {
    // Slow: the class comes from the cache, the SPCPS write times out after the files were written.
    server.pause("hang");
    await assertGrpcError(
      k.driver.client.nodePublishVolume(k.publishRequest(pod, "cached")),
      GrpcStatus.UNKNOWN,
      /could not create secretproviderclasspodstatus default\/web-default-cached: the API server did not answer within 300 ms/,
    );
    assert.deepEqual(await k.driver.mounts(), [], "a failed publish left a mount behind");
    server.resume();

    // Down: a class that is not cached cannot be read.
    await server.stop();
    await assertGrpcError(
      k.driver.client.nodePublishVolume(k.publishRequest(pod, "uncached")),
      GrpcStatus.UNKNOWN,
      /could not get secretproviderclass default\/uncached: the API server at http:\/\/127\.0\.0\.1:\d+ refused the connection/,
    );
    assert.deepEqual(await k.driver.mounts(), []);

    // Back: kubelet's retry succeeds.
    await server.restart();
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "cached"));
    await waitFor("the SPCPS", () => server.get("SecretProviderClassPodStatus", NS, "web-default-cached"));
  } finally {
    await k.close();
  }
});

Deno.test("nodePublishSecretRef contents and service account tokens reach the provider byte for byte", async () => {
  await using server = await startApiServer();
  putSpc(server, "creds", { parameters: { objects: "<list & more>" } });
  const k = await startK8sDriver(server);
  try {
    const tokens = '{"vault":{"token":"eyJ.a&b<c>","expirationTimestamp":"2030-01-01T00:00:00Z"}}';
    const fromSecrets = { metadata: { name: "a", namespace: NS, uid: "uid-a" } };
    await k.driver.client.nodePublishVolume(k.publishRequest(fromSecrets, "creds", {
      username: "admin",
      "pass word": "p&ss<w>rd\u2028é",
      "csi.storage.k8s.io/serviceAccount.tokens": tokens,
    }));
    const [first] = k.driver.provider.mountRequests;
    const escapedTokens = '{\\"vault\\":{\\"token\\":\\"eyJ.a\\u0026b\\u003cc\\u003e\\",' +
      '\\"expirationTimestamp\\":\\"2030-01-01T00:00:00Z\\"}}';
    // Go's json.Marshal of map[string]string: keys sorted, <, >, &, U+2028 escaped, other UTF-8 as is.
    assert.equal(
      first.secrets,
      `{"csi.storage.k8s.io/serviceAccount.tokens":"${escapedTokens}","pass word":"p\\u0026ss\\u003cw\\u003erd\\u2028é","username":"admin"}`,
    );
    const attributes = JSON.parse(first.attributes);
    assert.equal(attributes["csi.storage.k8s.io/serviceAccount.tokens"], tokens, "tokens from the secrets");
    assert.equal(attributes.objects, "<list & more>");
    assert.equal(first.permission, "420");
    assert.ok(first.attributes.includes('"objects":"\\u003clist \\u0026 more\\u003e"'));

    // Older kubelets put the tokens in the volume context only.
    const fromContext = { metadata: { name: "b", namespace: NS, uid: "uid-b" } };
    const request = k.publishRequest(fromContext, "creds");
    request.volume_context!["csi.storage.k8s.io/serviceAccount.tokens"] = '{"aud":{"token":"t"}}';
    await k.driver.client.nodePublishVolume(request);
    const second = k.driver.provider.mountRequests[1];
    assert.equal(second.secrets, "{}");
    assert.equal(
      JSON.parse(second.attributes)["csi.storage.k8s.io/serviceAccount.tokens"],
      '{"aud":{"token":"t"}}',
    );
  } finally {
    await k.close();
  }
});
