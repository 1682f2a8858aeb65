/**
 * SpcpsRecorder and ClusterSpcSource on the in-memory twins: every branch of recording a mount, a rotation
 * and an unmount, and of looking a class up (cache, shared GET, errors). Against the HTTP stand-in and
 * real mounts: tests/integration/k8s_publish_test.ts.
 */
import assert from "node:assert/strict";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { KubeApiError, type KubeObject } from "../../lib/k8s/api.ts";
import { ClusterSpcSource } from "../../lib/k8s/spc.ts";
import { desiredSpcps, NODE_LABEL, type Spcps, SpcpsRecorder } from "../../lib/k8s/spcps.ts";
import type { Published } from "../../lib/volume/ports.ts";
import { MemoryCache, MemoryKube, recordingLogger } from "../support/kube-twins.ts";

const NS = "default";
const TARGET = "/var/lib/kubelet/pods/uid-web/volumes/kubernetes.io~csi/secrets/mount";

function published(overrides: Partial<Published> = {}): Published {
  return {
    pod: { name: "web", namespace: NS, uid: "uid-web" },
    targetPath: TARGET,
    spc: { name: "db", namespace: NS, provider: "vault", parameters: {}, secretObjects: [] },
    objectVersions: [{ id: "b", version: "2" }, { id: "a", version: "1" }],
    changed: true,
    ...overrides,
  };
}

function recorder(nodeId = "node-1") {
  const kube = new MemoryKube();
  const cache = new MemoryCache<Spcps>();
  const { log } = recordingLogger();
  return { kube, cache, recorder: new SpcpsRecorder(kube, nodeId, cache, log) };
}

const stored = (kube: MemoryKube) => kube.object<Spcps>("spcps", NS, "web-default-db");

Deno.test("a mount creates the SPCPS as upstream writes it: name, node label, pod owner, sorted objects", async () => {
  const { kube, recorder: r } = recorder();
  assert.equal(await r.recordMounted(published()), true);
  const spcps = stored(kube)!;
  assert.equal(spcps.metadata.labels?.[NODE_LABEL], "node-1");
  assert.deepEqual(spcps.metadata.ownerReferences, [{
    apiVersion: "v1",
    kind: "Pod",
    name: "web",
    uid: "uid-web",
  }]);
  assert.deepEqual(spcps.status, {
    podName: "web",
    secretProviderClassName: "db",
    mounted: true,
    targetPath: TARGET,
    objects: [{ id: "a", version: "1" }, { id: "b", version: "2" }],
  });
});

Deno.test("a rotation that changed nothing writes nothing when the cache shows the same object", async () => {
  const { kube, cache, recorder: r } = recorder();
  cache.put(kube.put("spcps", desiredSpcps(published(), "node-1")));
  assert.equal(await r.recordMounted(published({ changed: false })), false);
  assert.equal(kube.calls.length, 0);
  // Changed content, or a cache that says something else: written.
  assert.equal(await r.recordMounted(published({ changed: true })), true);
  cache.put({ ...stored(kube)!, status: { ...stored(kube)!.status!, mounted: false } });
  assert.equal(await r.recordMounted(published({ changed: false })), true);
});

Deno.test("an SPCPS that exists (earlier mount, pod moved from another node) is taken over, retrying conflicts", async () => {
  const { kube, recorder: r } = recorder("node-2");
  kube.put("spcps", {
    ...desiredSpcps(published(), "node-1"),
    metadata: {
      ...desiredSpcps(published(), "node-1").metadata,
      labels: { [NODE_LABEL]: "node-1", keep: "me" },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "web", uid: "old-pod" }],
    },
  });
  kube.failNext("update", "spcps", new KubeApiError(409, "Conflict", "stale"));
  assert.equal(await r.recordMounted(published()), true);
  const spcps = stored(kube)!;
  assert.deepEqual(spcps.metadata.labels, { [NODE_LABEL]: "node-2", keep: "me" });
  assert.equal(spcps.metadata.ownerReferences![0].uid, "uid-web");
  assert.equal(kube.count("update", "spcps"), 2, "the conflict was retried on a fresh read");
});

Deno.test("five conflicts in a row, or any other API error, fail the recording (and so the publish)", async () => {
  const { kube, recorder: r } = recorder();
  kube.put("spcps", desiredSpcps(published(), "node-1"));
  for (let i = 0; i < 5; i++) kube.failNext("update", "spcps", new KubeApiError(409, "Conflict", "stale"));
  await assert.rejects(r.recordMounted(published()), /stale/);
  const other = recorder();
  other.kube.failNext("create", "spcps", new KubeApiError(403, "Forbidden", "could not create: forbidden"));
  await assert.rejects(other.recorder.recordMounted(published()), (err) => {
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, GrpcStatus.PERMISSION_DENIED);
    return true;
  });
});

Deno.test("an unmount sets mounted: false on the object of that target path, once", async () => {
  const { kube, recorder: r } = recorder();
  await r.recordMounted(published());
  await r.recordUnmounted(TARGET);
  assert.equal(stored(kube)!.status!.mounted, false);
  assert.equal(stored(kube)!.status!.targetPath, TARGET, "the rest of the status is kept");
  const updates = kube.count("update", "spcps");
  await r.recordUnmounted(TARGET);
  assert.equal(kube.count("update", "spcps"), updates, "nothing recorded for it any more");
});

Deno.test("after a restart the unmounted object is found in the cache; one for another path is left alone", async () => {
  const { kube, cache, recorder: r } = recorder();
  cache.put(kube.put("spcps", desiredSpcps(published(), "node-1")));
  await r.recordUnmounted("/somewhere/else");
  assert.equal(kube.calls.length, 0);
  await r.recordUnmounted(TARGET);
  assert.equal(stored(kube)!.status!.mounted, false);
  // The object in the API says another path by now (remounted elsewhere): no write.
  const { kube: kube2, cache: cache2, recorder: r2 } = recorder();
  cache2.put(desiredSpcps(published(), "node-1"));
  kube2.put("spcps", desiredSpcps(published({ targetPath: "/another/target" }), "node-1"));
  await r2.recordUnmounted(TARGET);
  assert.equal(kube2.count("update", "spcps"), 0);
});

Deno.test("an unmount whose object went with its pod is fine; other errors are thrown", async () => {
  const { kube, recorder: r } = recorder();
  await r.recordMounted(published());
  kube.remove("spcps", NS, "web-default-db");
  await r.recordUnmounted(TARGET);
  await r.recordMounted(published());
  kube.failNext("get", "spcps", new KubeApiError(0, "", "could not get: unreachable"));
  await assert.rejects(r.recordUnmounted(TARGET), /unreachable/);
});

const spc = (
  name: string,
  spec: Record<string, unknown> = { provider: "vault", parameters: { a: "b" } },
) => ({
  apiVersion: "secrets-store.csi.x-k8s.io/v1",
  kind: "SecretProviderClass",
  metadata: { name, namespace: NS },
  spec,
});

Deno.test("SPC lookup: from the cache without a request; a miss is one GET shared by concurrent publishes", async () => {
  const kube = new MemoryKube();
  const cache = new MemoryCache<KubeObject>([spc("cached")]);
  const source = new ClusterSpcSource(kube, cache);
  assert.deepEqual(await source.get(NS, "cached"), {
    name: "cached",
    namespace: NS,
    provider: "vault",
    parameters: { a: "b" },
    secretObjects: [],
  });
  assert.equal(kube.calls.length, 0);
  kube.put("spcs", spc("fresh"));
  const all = await Promise.all(Array.from({ length: 10 }, () => source.get(NS, "fresh")));
  assert.equal(kube.count("get", "spcs"), 1);
  assert.ok(all.every((s) => s.name === "fresh"));
  await source.get(NS, "fresh");
  assert.equal(kube.count("get", "spcs"), 2, "the shared GET is over once it answered");
});

Deno.test("SPC lookup: missing is NOT_FOUND naming it, API errors keep their code, a bad class is INVALID_ARGUMENT", async () => {
  const kube = new MemoryKube();
  const source = new ClusterSpcSource(kube, new MemoryCache());
  await assert.rejects(source.get(NS, "nope"), (err) => {
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, GrpcStatus.NOT_FOUND);
    assert.equal(err.message, "secretproviderclass nope not found in namespace default");
    return true;
  });
  kube.failNext("get", "spcs", new KubeApiError(503, "ServiceUnavailable", "could not get: HTTP 503"));
  await assert.rejects(source.get(NS, "any"), (err) => {
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, GrpcStatus.UNAVAILABLE);
    return true;
  });
  kube.put("spcs", spc("bad", { parameters: { a: "b" } }));
  await assert.rejects(source.get(NS, "bad"), (err) => {
    assert.ok(err instanceof DriverError);
    assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(err.message, /provider not set in SecretProviderClass default\/bad/);
    return true;
  });
});
