/**
 * SecretSync on the in-memory twins (tests/support/kube-twins.ts) with a fake clock: every branch of a
 * sync (skips, refusals, create, update, conflicts, failures), the retry backoff, the resync and stop().
 * The same controller against a real HTTP API stand-in and real mounts: tests/integration/k8s_secret_sync_test.ts.
 */
import assert from "node:assert/strict";
import { KubeApiError, type KubeObject } from "../../lib/k8s/api.ts";
import { EventRecorder } from "../../lib/k8s/events.ts";
import { MANAGED_LABEL } from "../../lib/k8s/secret-data.ts";
import { NOT_MOUNTED_HERE, SecretSync } from "../../lib/k8s/secret-sync.ts";
import { ClusterSpcSource } from "../../lib/k8s/spc.ts";
import { NODE_LABEL, type Spcps } from "../../lib/k8s/spcps.ts";
import { FakeClock } from "../support/twins.ts";
import {
  MemoryCache,
  MemoryKube,
  MemoryReader,
  MemoryVolumes,
  recordingLogger,
  settle,
  SyncMetrics,
} from "../support/kube-twins.ts";

const NS = "default";
const TARGET = "/var/lib/kubelet/pods/uid-web/volumes/kubernetes.io~csi/secrets/mount";
const BACKOFF = { initialBackoffMs: 1000, maxBackoffMs: 4000 };
const RESYNC_MS = 60_000;

/** A pod `web`, its class `db` with one secretObject, its SPCPS, a mounted volume showing `password`. */
function fixture(
  options: { secretObjects?: unknown[]; podOwners?: KubeObject["metadata"]["ownerReferences"] } = {},
) {
  const kube = new MemoryKube();
  const clock = new FakeClock();
  const pod = kube.put("pods", {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: NS, uid: "uid-web", ownerReferences: options.podOwners },
    status: { phase: "Running" },
  });
  const spcCache = new MemoryCache([{
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name: "db", namespace: NS },
    spec: {
      provider: "vault",
      parameters: { a: "b" },
      secretObjects: options.secretObjects ??
        [{ secretName: "db-creds", type: "Opaque", data: [{ objectName: "password", key: "pw" }] }],
    },
  }]);
  const spcps: Spcps = kube.put("spcps", {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClassPodStatus",
    metadata: {
      name: "web-default-db",
      namespace: NS,
      labels: { [NODE_LABEL]: "node-1" },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "web", uid: "uid-web" }],
    },
    status: { podName: "web", secretProviderClassName: "db", mounted: true, targetPath: TARGET, objects: [] },
  });
  const spcpsCache = new MemoryCache<Spcps>([spcps]);
  const reader = new MemoryReader();
  reader.show(TARGET, { password: "hunter2" });
  const volumes = new MemoryVolumes();
  volumes.mount(TARGET, "uid-web");
  const metrics = new SyncMetrics();
  const { log, lines } = recordingLogger();
  const sync = new SecretSync({
    api: kube,
    spcps: spcpsCache,
    spcs: new ClusterSpcSource(kube, spcCache),
    reader,
    volumes,
    events: new EventRecorder(kube, "node-1", log, 10 * 60_000, () => clock.now()),
    metrics,
    log,
    resyncMs: RESYNC_MS,
    ...BACKOFF,
    clock,
  });
  const events = () => kube.objects("events").map((e) => `${e.reason}: ${e.message}`);
  const secret = () => kube.object<KubeObject & { data?: Record<string, string> }>("secrets", NS, "db-creds");
  /** Enqueues the SPCPS and lets the worker finish. */
  const syncOnce = async () => {
    sync.enqueue(NS, "web-default-db");
    await settle();
  };
  return {
    kube,
    clock,
    pod,
    spcps,
    spcpsCache,
    reader,
    volumes,
    metrics,
    lines,
    sync,
    events,
    secret,
    syncOnce,
  };
}

/** Runs `body` with a started controller and always stops it. */
async function withSync(
  body: (f: ReturnType<typeof fixture>) => Promise<void>,
  options?: Parameters<typeof fixture>[0],
): Promise<void> {
  const f = fixture(options);
  f.sync.start();
  try {
    await body(f);
  } finally {
    await f.sync.stop();
  }
}

Deno.test("a mounted volume's files become the Secret: managed label, data, the SPCPS as owner of an ownerless pod", () =>
  withSync(async (f) => {
    await f.syncOnce();
    const secret = f.secret();
    assert.ok(secret, "the Secret was created");
    assert.equal(secret.metadata.labels?.[MANAGED_LABEL], "true");
    assert.equal(atob(secret.data!.pw), "hunter2");
    assert.deepEqual(secret.metadata.ownerReferences, [{
      apiVersion: "secrets-store.csi.x-k8s.io/v1",
      kind: "SecretProviderClassPodStatus",
      name: "web-default-db",
      uid: f.spcps.metadata.uid,
    }]);
    assert.deepEqual(f.metrics.synced, [{ provider: "vault", count: 1 }]);
    assert.deepEqual(f.reader.reads, [TARGET]);
  }));

Deno.test("a pod with owners: the Secret is owned by them; owners are only ever added", () => {
  const replicaSet = { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-7c9", uid: "rs-1" };
  return withSync(async (f) => {
    await f.syncOnce();
    assert.deepEqual(f.secret()!.metadata.ownerReferences, [replicaSet]);
    const other = { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-8d0", uid: "rs-2" };
    f.kube.put("pods", { ...f.pod, metadata: { ...f.pod.metadata, ownerReferences: [other] } });
    await f.syncOnce();
    assert.deepEqual(f.secret()!.metadata.ownerReferences, [replicaSet, other]);
  }, { podOwners: [replicaSet] });
});

Deno.test("an unchanged Secret is not written again; changed files update it, keeping foreign labels", () =>
  withSync(async (f) => {
    await f.syncOnce();
    await f.syncOnce();
    assert.equal(f.kube.count("create", "secrets"), 1);
    assert.equal(f.kube.count("update", "secrets"), 0, "nothing changed, nothing written");
    const current = f.secret()!;
    f.kube.put("secrets", {
      ...current,
      metadata: { ...current.metadata, labels: { ...current.metadata.labels, team: "a" } },
    });
    f.reader.show(TARGET, { password: "rotated" });
    await f.syncOnce();
    assert.equal(f.kube.count("update", "secrets"), 1);
    assert.equal(atob(f.secret()!.data!.pw), "rotated");
    assert.equal(f.secret()!.metadata.labels?.team, "a");
    assert.deepEqual(f.metrics.synced.map((s) => s.count), [1, 1]);
  }));

Deno.test("a 409 on the write is retried on a fresh read; five in a row fail, are reported and retried later", () =>
  withSync(async (f) => {
    const conflict = () =>
      new KubeApiError(409, "AlreadyExists", "could not create secret default/db-creds: exists");
    f.kube.failNext("create", "secrets", conflict());
    await f.syncOnce();
    assert.equal(f.kube.count("create", "secrets"), 2, "one conflict, one retry");
    assert.ok(f.secret());

    f.reader.show(TARGET, { password: "new" });
    for (let i = 0; i < 5; i++) {
      f.kube.failNext("update", "secrets", new KubeApiError(409, "Conflict", "stale"));
    }
    await f.syncOnce();
    assert.equal(f.kube.count("update", "secrets"), 5, "five attempts in all");
    assert.deepEqual(f.metrics.errors, [{ provider: "vault", errorType: "FailedToWriteSecret" }]);
    assert.deepEqual(f.events(), ["FailedToCreateSecret: stale"]);
    assert.deepEqual(f.clock.pending(), [BACKOFF.initialBackoffMs, RESYNC_MS], "a retry is scheduled");
    f.clock.advance(BACKOFF.initialBackoffMs);
    await settle();
    assert.equal(atob(f.secret()!.data!.pw), "new", "the retry wrote it");
  }));

Deno.test("a Secret the driver did not create, or of another type, is left alone and reported", () =>
  withSync(async (f) => {
    f.kube.put("secrets", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "db-creds", namespace: NS },
      data: {},
    });
    await f.syncOnce();
    assert.deepEqual(f.secret()!.data, {}, "left alone");
    assert.deepEqual(f.metrics.errors, [{ provider: "vault", errorType: "SecretNotWritable" }]);
    const [event] = f.events();
    assert.match(event, /secret default\/db-creds exists and was not created by the driver/);

    f.kube.put("secrets", {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: { name: "db-creds", namespace: NS, labels: { [MANAGED_LABEL]: "true" } },
    });
    f.clock.advance(BACKOFF.initialBackoffMs);
    await settle();
    assert.equal(f.metrics.errors.length, 2);
    assert.match(f.events()[1], /has type kubernetes.io\/tls but the class asks for Opaque/);
  }));

Deno.test("an SPCPS whose target path is no volume of this driver is refused: event, metric, log; nothing read", () =>
  withSync(async (f) => {
    // Someone wrote the SPCPS by hand, pointing at the pod's projected service account token.
    const token = "/var/lib/kubelet/pods/uid-web/volumes/kubernetes.io~projected/kube-api-access-x";
    f.reader.show(token, { token: "eyJhbGciOi..." });
    f.spcpsCache.put({ ...f.spcps, status: { ...f.spcps.status!, targetPath: token } });
    await f.syncOnce();
    assert.equal(f.secret(), undefined, "no Secret");
    assert.deepEqual(f.reader.reads, [], "the files were never read");
    assert.deepEqual(f.metrics.errors, [{ provider: "vault", errorType: NOT_MOUNTED_HERE }]);
    assert.deepEqual(f.events(), [
      `FailedToCreateSecret: refusing to sync from ${token}: it is not a volume this driver mounted`,
    ]);
    assert.ok(f.lines.some((l) => l.level === "error" && String(l.error).includes("refusing to sync")));
    assert.deepEqual(f.clock.pending(), [BACKOFF.initialBackoffMs, RESYNC_MS], "retried with backoff");
  }));

Deno.test("a volume this driver mounted for another pod is refused too (the SPCPS names the wrong pod)", () =>
  withSync(async (f) => {
    f.volumes.mount(TARGET, "uid-of-a-pod-in-another-namespace");
    await f.syncOnce();
    assert.equal(f.secret(), undefined);
    assert.deepEqual(f.reader.reads, []);
    assert.deepEqual(f.events(), [
      `FailedToCreateSecret: refusing to sync from ${TARGET}: it was mounted for another pod than default/web`,
    ]);
    // Mounted for this pod again (a republish after a restart): the retry syncs.
    f.volumes.mount(TARGET, "uid-web");
    f.clock.advance(BACKOFF.initialBackoffMs);
    await settle();
    assert.ok(f.secret());
  }));

Deno.test("nothing to do: no SPCPS, not mounted, no secretObjects, pod gone or finished, SPCPS of an older pod", async () => {
  const quiet = async (
    change: (f: ReturnType<typeof fixture>) => void,
    options?: Parameters<typeof fixture>[0],
  ) => {
    await withSync(async (f) => {
      change(f);
      await f.syncOnce();
      assert.equal(f.secret(), undefined);
      assert.deepEqual(f.reader.reads, []);
      assert.deepEqual(f.metrics.errors, []);
    }, options);
  };
  await quiet((f) => f.spcpsCache.remove(NS, "web-default-db"));
  await quiet((f) => f.spcpsCache.put({ ...f.spcps, status: { ...f.spcps.status!, mounted: false } }));
  await quiet(() => {}, { secretObjects: [] });
  for (const phase of ["Succeeded", "Failed"]) {
    await quiet((f) => f.kube.put("pods", { ...f.pod, status: { phase } }));
  }
  await quiet((f) =>
    f.kube.put("pods", {
      ...f.pod,
      metadata: { ...f.pod.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" },
    })
  );
  await quiet((f) => f.kube.put("pods", { ...f.pod, metadata: { ...f.pod.metadata, uid: "a-newer-pod" } }));
});

Deno.test("a missing pod is retried quietly; a class lookup failure is logged and retried with doubling backoff", () =>
  withSync(async (f) => {
    f.kube.remove("pods", NS, "web");
    await f.syncOnce();
    assert.deepEqual(f.events(), []);
    assert.deepEqual(f.clock.pending(), [1000, RESYNC_MS]);

    f.kube.failNext("get", "pods", new KubeApiError(0, "", "could not get pod default/web: refused"));
    f.clock.advance(1000);
    await settle();
    assert.ok(
      f.lines.some((l) =>
        l.message === "secret sync failed" && l.error === "could not get pod default/web: refused"
      ),
    );
    assert.deepEqual(f.clock.pending(), [2000, RESYNC_MS - 1000], "doubled");
    f.clock.advance(2000);
    await settle();
    assert.deepEqual(f.clock.pending(), [4000, RESYNC_MS - 3000], "doubled again");
    f.clock.advance(4000);
    await settle();
    assert.deepEqual(f.clock.pending(), [4000, RESYNC_MS - 7000], "capped at maxBackoffMs");

    // An enqueue (a publish, a watch event) runs at once and drops the pending retry.
    f.kube.put("pods", f.pod);
    await f.syncOnce();
    assert.ok(f.secret());
    assert.deepEqual(f.clock.pending(), [RESYNC_MS - 7000], "no retry left after a success");
  }));

Deno.test("an unreadable or empty volume is reported, as an event at most every 10 minutes", () =>
  withSync(async (f) => {
    f.reader.payloads.set(TARGET, new Error("EIO"));
    await f.syncOnce();
    assert.deepEqual(f.metrics.errors, [{ provider: "vault", errorType: "FailedToReadMountedFiles" }]);
    assert.deepEqual(f.events(), [`FailedToCreateSecret: failed to get mounted files of ${TARGET}`]);
    assert.ok(f.lines.some((l) => l.message === "cannot read mounted files" && l.error === "EIO"));

    f.reader.payloads.delete(TARGET); // nothing written there: read() answers null
    f.clock.advance(BACKOFF.initialBackoffMs);
    await settle();
    assert.equal(f.metrics.errors.length, 2);
    assert.equal(f.events().length, 1, "the same event again within 10 minutes is not repeated");
    f.clock.advance(10 * 60_000);
    await settle();
    assert.equal(f.events().length, 2, "after 10 minutes it is reported again");
  }));

Deno.test("an invalid secretObject yields its reason; the others are written", () =>
  withSync(async (f) => {
    await f.syncOnce();
    assert.deepEqual(f.metrics.errors.map((e) => e.errorType), [
      "InvalidSecretObject",
      "SecretObjectNotMounted",
    ]);
    assert.ok(f.secret(), "the valid object was synced");
    assert.deepEqual(f.metrics.synced, [{ provider: "vault", count: 1 }]);
  }, {
    secretObjects: [
      { secretName: "", type: "Opaque", data: [{ objectName: "password", key: "pw" }] },
      { secretName: "other", type: "Opaque", data: [{ objectName: "not-mounted", key: "k" }] },
      { secretName: "db-creds", type: "Opaque", data: [{ objectName: "password", key: "pw" }] },
    ],
  }));

Deno.test("resync: every SPCPS is synced again each resyncMs (a deleted Secret comes back)", () =>
  withSync(async (f) => {
    await f.syncOnce();
    f.kube.remove("secrets", NS, "db-creds");
    f.clock.advance(RESYNC_MS - 1);
    await settle();
    assert.equal(f.secret(), undefined);
    f.clock.advance(1);
    await settle();
    assert.ok(f.secret(), "recreated by the resync");
    assert.deepEqual(f.clock.pending(), [RESYNC_MS], "the next resync is scheduled");
  }));

Deno.test("enqueueClass schedules the SPCPS of that class only", () =>
  withSync(async (f) => {
    f.sync.enqueueClass(NS, "another-class");
    await settle();
    assert.equal(f.kube.count("get", "pods"), 0);
    f.sync.enqueueClass(NS, "db");
    await settle();
    assert.ok(f.secret());
  }));

Deno.test("stop() cancels the resync and every retry; later enqueues are ignored", async () => {
  const f = fixture();
  f.sync.start();
  f.volumes.unmount(TARGET);
  await f.syncOnce();
  assert.deepEqual(f.clock.pending(), [1000, RESYNC_MS]);
  await f.sync.stop();
  assert.deepEqual(f.clock.pending(), []);
  f.volumes.mount(TARGET, "uid-web");
  f.sync.enqueue(NS, "web-default-db");
  await settle();
  assert.equal(f.secret(), undefined);
});

Deno.test("a service-account token Secret keeps the keys the token controller adds: a second sync writes nothing", () =>
  withSync(async (f) => {
    await f.syncOnce();
    const secret = f.secret()!;
    // What kube-controller-manager's token controller does to every kubernetes.io/service-account-token.
    f.kube.put("secrets", {
      ...secret,
      data: { ...secret.data, "ca.crt": btoa("CA"), namespace: btoa(NS) },
    });
    await f.syncOnce();
    assert.deepEqual(
      f.metrics.synced,
      [{ provider: "vault", count: 1 }],
      "the second pass found it up to date",
    );
    assert.equal(atob(f.secret()!.data!["ca.crt"]), "CA");
    assert.equal(atob(f.secret()!.data!.pw), "hunter2");
  }, {
    secretObjects: [{
      secretName: "db-creds",
      type: "kubernetes.io/service-account-token",
      annotations: { "kubernetes.io/service-account.name": "default" },
      data: [{ objectName: "password", key: "pw" }],
    }],
  }));
