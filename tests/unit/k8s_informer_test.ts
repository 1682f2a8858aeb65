/**
 * The informer's list-then-watch loop on the in-memory KubeClient: the cache and its change events, a
 * watch resumed from the last resourceVersion, a re-list after 410 Expired, retries after a failed list.
 */
import assert from "node:assert/strict";
import { KubeApiError, type KubeObject } from "../../lib/k8s/api.ts";
import { type ChangeType, Informer } from "../../lib/k8s/informer.ts";
import { silentLogger } from "../../lib/log.ts";
import { MemoryKube, settle } from "../support/kube-twins.ts";

const spcps = (name: string, node = "node-1") => ({
  apiVersion: "secrets-store.csi.x-k8s.io/v1",
  kind: "SecretProviderClassPodStatus",
  metadata: { name, namespace: "default", labels: { node } },
});

function informer(kube: MemoryKube) {
  const changes: string[] = [];
  const cache = new Informer({
    api: kube,
    resource: "spcps",
    labelSelector: "node=node-1",
    log: silentLogger,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    onChange: (type: ChangeType, o: KubeObject) => changes.push(`${type} ${o.metadata.name}`),
  });
  return { cache, changes };
}

/** Runs `body` with a started informer on `kube` whose first list is done and whose watch is open. */
async function withInformer(
  kube: MemoryKube,
  body: (t: ReturnType<typeof informer>) => Promise<void>,
): Promise<void> {
  const t = informer(kube);
  t.cache.start();
  try {
    assert.equal(await t.cache.waitForSync(1000), true);
    await settle();
    await body(t);
  } finally {
    await t.cache.stop();
  }
}

/** Polls until `probe` holds (the informer runs on real, short timers). */
async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !probe(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(probe(), `timed out waiting for ${what}`);
}

Deno.test("informer: the first list fills the cache; watch events keep it current; other labels stay out", () => {
  const kube = new MemoryKube();
  kube.put("spcps", spcps("a"));
  kube.put("spcps", spcps("elsewhere", "node-2"));
  return withInformer(kube, async ({ cache, changes }) => {
    assert.deepEqual(cache.list().map((o) => o.metadata.name), ["a"]);
    kube.put("spcps", spcps("b"));
    kube.put("spcps", { ...spcps("a"), status: { mounted: false } });
    kube.remove("spcps", "default", "b");
    kube.put("spcps", spcps("other", "node-2"));
    await until("three watch events", () => changes.length === 4);
    assert.deepEqual(changes, ["added a", "added b", "updated a", "deleted b"]);
    assert.deepEqual(cache.get("default", "a")?.status, { mounted: false });
    assert.equal(cache.get("default", "b"), undefined);
  });
});

Deno.test("informer: an ended watch resumes from the last resourceVersion, so a change in between is not lost", () => {
  const kube = new MemoryKube();
  return withInformer(kube, async ({ changes }) => {
    kube.endWatches();
    kube.put("spcps", spcps("while-no-watch-was-open"));
    await until("the missed change", () => changes.length === 1);
    assert.deepEqual(changes, ["added while-no-watch-was-open"]);
    assert.equal(kube.count("list"), 1, "no re-list needed");
  });
});

Deno.test("informer: 410 Expired re-lists and reports every difference", () => {
  const kube = new MemoryKube();
  kube.put("spcps", spcps("stays"));
  kube.put("spcps", spcps("goes"));
  return withInformer(kube, async ({ cache, changes }) => {
    kube.endWatches();
    kube.remove("spcps", "default", "goes");
    kube.put("spcps", spcps("comes"));
    kube.compact();
    await until("the re-list", () => kube.count("list") === 2 && changes.length === 4);
    assert.deepEqual(changes, ["added stays", "added goes", "added comes", "deleted goes"]);
    assert.deepEqual(cache.list().map((o) => o.metadata.name).sort(), ["comes", "stays"]);
  });
});

Deno.test("informer: a failed list is retried with backoff; waitForSync answers false until it succeeds", async () => {
  const kube = new MemoryKube();
  kube.put("spcps", spcps("a"));
  for (let i = 0; i < 3; i++) {
    kube.failNext("list", "spcps", new KubeApiError(0, "", "could not list: refused"));
  }
  const { cache } = informer(kube);
  cache.start();
  try {
    assert.equal(await cache.waitForSync(1), false);
    assert.equal(await cache.waitForSync(1000), true);
    assert.equal(kube.count("list"), 4);
    assert.equal(cache.synced, true);
  } finally {
    await cache.stop();
  }
});
