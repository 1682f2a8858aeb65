/** Tests of the API-server stand-in, driven through @kubernetes/client-node over real HTTP. */

import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubernetesObjectApi,
  makeInformer,
  type V1Secret,
  Watch,
} from "@kubernetes/client-node";
import assert from "node:assert/strict";
import {
  type ApiServer,
  type ApiServerOptions,
  SECRETS_STORE_GROUP,
  startApiServer,
} from "../support/apiserver.ts";

const NS = "default";

/** Polls until `probe` returns something truthy; bounded so a broken server fails the test, not hangs it. */
async function waitFor<T>(what: string, probe: () => T | undefined | null | false): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const value = probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs `body` with a fresh server and always closes it. */
async function withServer(
  body: (server: ApiServer) => Promise<void>,
  options?: ApiServerOptions,
): Promise<void> {
  await using server = await startApiServer(options);
  await body(server);
}

/** The client-node error of a failed call, with its Status body parsed. */
async function apiError(call: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof ApiException, `expected an ApiException, got ${err}`);
    return { code: err.code, body: JSON.parse(err.body as string) };
  }
  throw new Error("the call succeeded but should have failed");
}

function secret(name: string, labels?: Record<string, string>): V1Secret {
  return { metadata: { name, labels }, stringData: undefined, data: { key: btoa("value") } };
}

const spcps = (name: string, ownerUid?: string) => ({
  apiVersion: `${SECRETS_STORE_GROUP}/v1`,
  kind: "SecretProviderClassPodStatus",
  metadata: {
    name,
    labels: { "internal.secrets-store.csi.k8s.io/node-name": "node-1" },
    ownerReferences: ownerUid === undefined
      ? undefined
      : [{ apiVersion: "v1", kind: "Pod", name: "p", uid: ownerUid }],
  },
  status: { podName: "p", secretProviderClassName: "spc", mounted: true, targetPath: "/t", objects: [] },
});

/** Starts a client-node Watch and collects its events; `stop()` aborts it. */
async function collectWatch(
  server: ApiServer,
  path: string,
  query: Record<string, string | boolean | number> = {},
) {
  const events: {
    type: string;
    object: { metadata?: { name?: string; resourceVersion?: string }; code?: number };
  }[] = [];
  let finished: ((err: unknown) => void) | undefined;
  const done = new Promise<unknown>((resolve) => (finished = resolve));
  const controller = await new Watch(server.kubeConfig()).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    (err) => finished!(err),
  );
  return {
    events,
    done,
    // Under Deno, undici never errors an aborted body, so client-node's `done` does not fire on abort:
    // wait for the server to see the stream go instead.
    stop: async () => {
      const before = server.openWatches;
      controller.abort();
      await waitFor("the server to see the watch end", () => server.openWatches < before);
    },
  };
}

Deno.test("core resources: create, read, list, replace and delete pods, secrets, events, serviceaccounts, nodes", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);

    const created = await core.createNamespacedSecret({ namespace: NS, body: secret("s1") });
    assert.equal(created.metadata?.namespace, NS);
    assert.match(created.metadata?.uid ?? "", /^[0-9a-f-]{36}$/);
    assert.ok(created.metadata?.creationTimestamp instanceof Date);
    assert.equal((await core.readNamespacedSecret({ name: "s1", namespace: NS })).data?.key, btoa("value"));
    const replaced = await core.replaceNamespacedSecret({
      name: "s1",
      namespace: NS,
      body: { ...created, data: { key: btoa("other") } },
    });
    assert.ok(Number(replaced.metadata?.resourceVersion) > Number(created.metadata?.resourceVersion));
    assert.equal(replaced.metadata?.uid, created.metadata?.uid);
    const deleted = await core.deleteNamespacedSecret({ name: "s1", namespace: NS });
    assert.equal(deleted.status, "Success");
    assert.equal(server.get("secrets", NS, "s1"), undefined);

    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: "p1" }, spec: { containers: [{ name: "c", image: "i" }] } },
    });
    assert.equal(pod.status?.phase, "Pending");
    const withStatus = await core.replaceNamespacedPodStatus({
      name: "p1",
      namespace: NS,
      body: { ...pod, spec: { containers: [{ name: "changed", image: "i" }] }, status: { phase: "Running" } },
    });
    assert.equal(withStatus.status?.phase, "Running");
    assert.equal(withStatus.spec?.containers[0].name, "c", "a status update leaves the spec alone");
    assert.equal((await core.deleteNamespacedPod({ name: "p1", namespace: NS })).metadata?.name, "p1");

    await core.createNamespacedServiceAccount({ namespace: "other", body: { metadata: { name: "sa" } } });
    const accounts = await core.listServiceAccountForAllNamespaces();
    assert.deepEqual(accounts.items.map((a) => `${a.metadata?.namespace}/${a.metadata?.name}`), ["other/sa"]);

    await core.createNamespacedEvent({
      namespace: NS,
      body: {
        metadata: { generateName: "p1." },
        involvedObject: { kind: "Pod", name: "p1" },
        reason: "Mounted",
      },
    });
    const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=p1" });
    assert.equal(events.items.length, 1);
    assert.match(events.items[0].metadata?.name ?? "", /^p1\.[bcdfghjklmnpqrstvwxz2456789]{5}$/);

    const eventsV1 = server.kubeConfig().makeApiClient(EventsV1Api);
    await eventsV1.createNamespacedEvent({
      namespace: NS,
      body: { metadata: { name: "e" }, eventTime: new Date(), reason: "R", regarding: { name: "p1" } },
    });
    assert.equal((await eventsV1.listNamespacedEvent({ namespace: NS })).items.length, 1);

    const node = await core.createNode({ body: { metadata: { name: "node-1", namespace: "ignored" } } });
    assert.equal(node.metadata?.namespace, undefined);
    assert.equal((await core.readNode({ name: "node-1" })).metadata?.name, "node-1");
    await core.deleteNode({ name: "node-1" });
    assert.deepEqual((await core.listNode()).items, []);
  });
});

Deno.test("custom resources: the same objects under v1 and v1alpha1, across namespaces", async () => {
  await withServer(async (server) => {
    const custom = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const group = SECRETS_STORE_GROUP;
    const plural = "secretproviderclasses";
    const spc = {
      apiVersion: `${group}/v1alpha1`,
      kind: "SecretProviderClass",
      metadata: { name: "spc" },
      spec: { provider: "local", parameters: { a: "b" } },
    };
    const created = await custom.createNamespacedCustomObject({
      group,
      version: "v1alpha1",
      namespace: NS,
      plural,
      body: spc,
    });
    assert.equal(created.apiVersion, `${group}/v1alpha1`);
    assert.equal(created.metadata.generation, 1);
    const asV1 = await custom.getNamespacedCustomObject({
      group,
      version: "v1",
      namespace: NS,
      plural,
      name: "spc",
    });
    assert.equal(asV1.apiVersion, `${group}/v1`);
    assert.deepEqual(asV1.spec, spc.spec);
    assert.equal(server.get("SecretProviderClass", NS, "spc")?.apiVersion, `${group}/v1`, "stored as v1");

    const updated = await custom.replaceNamespacedCustomObject({
      group,
      version: "v1",
      namespace: NS,
      plural,
      name: "spc",
      body: { ...asV1, spec: { provider: "other" } },
    });
    assert.equal(updated.metadata.generation, 2, "a spec change bumps generation");

    const statusPlural = "secretproviderclasspodstatuses";
    await custom.createNamespacedCustomObject({
      group,
      version: "v1",
      namespace: "ns2",
      plural: statusPlural,
      body: spcps("p-ns2-spc"),
    });
    const all = await custom.listClusterCustomObject({ group, version: "v1alpha1", plural: statusPlural });
    assert.equal(all.kind, "SecretProviderClassPodStatusList");
    assert.equal(all.items[0].apiVersion, `${group}/v1alpha1`);
    assert.equal(all.items[0].status.mounted, true, "no status subresource: status is written on create");
    await custom.deleteNamespacedCustomObject({
      group,
      version: "v1",
      namespace: "ns2",
      plural: statusPlural,
      name: "p-ns2-spc",
    });
    assert.equal(
      (await custom.listClusterCustomObject({ group, version: "v1", plural: statusPlural })).items.length,
      0,
    );
  });
});

Deno.test("errors: 404 NotFound and 409 AlreadyExists arrive as ApiException with the real Status body", async () => {
  await withServer(async (server) => {
    const kc = server.kubeConfig();
    const custom = kc.makeApiClient(CustomObjectsApi);
    const missing = await apiError(custom.getNamespacedCustomObject({
      group: SECRETS_STORE_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      name: "x",
    }));
    assert.equal(missing.code, 404);
    assert.deepEqual(missing.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'secretproviderclasses.secrets-store.csi.x-k8s.io "x" not found',
      reason: "NotFound",
      details: { name: "x", group: SECRETS_STORE_GROUP, kind: "secretproviderclasses" },
      code: 404,
    });

    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: NS, body: secret("dup") });
    const duplicate = await apiError(core.createNamespacedSecret({ namespace: NS, body: secret("dup") }));
    assert.equal(duplicate.code, 409);
    assert.equal(duplicate.body.reason, "AlreadyExists");
    assert.equal(duplicate.body.message, 'secrets "dup" already exists');
    assert.deepEqual(duplicate.body.details, { name: "dup", kind: "secrets" });

    const badName = await apiError(core.createNamespacedSecret({ namespace: NS, body: secret("Not_Valid") }));
    assert.equal(badName.code, 422);
    assert.match(
      String(badName.body.message),
      /^Secret "Not_Valid" is invalid: metadata.name: Invalid value/,
    );
    const noName = await apiError(core.createNamespacedSecret({ namespace: NS, body: { metadata: {} } }));
    assert.equal(noName.code, 422);
    const wrongNamespace = await apiError(
      core.createNamespacedSecret({
        namespace: NS,
        body: { metadata: { name: "a", namespace: "elsewhere" } },
      }),
    );
    assert.equal(wrongNamespace.code, 400);
    const unknownPath = await fetch(`${server.url}/api/v1/namespaces/${NS}/configmaps`);
    assert.equal(unknownPath.status, 404);
    assert.equal((await unknownPath.json()).message, "the server could not find the requested resource");
  });
});

Deno.test("update: a stale resourceVersion gets 409 Conflict; a no-op update keeps the version", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const first = await core.createNamespacedSecret({ namespace: NS, body: secret("s") });
    await core.replaceNamespacedSecret({
      name: "s",
      namespace: NS,
      body: { ...first, data: { key: btoa("2") } },
    });
    const stale = await apiError(
      core.replaceNamespacedSecret({
        name: "s",
        namespace: NS,
        body: { ...first, data: { key: btoa("3") } },
      }),
    );
    assert.equal(stale.code, 409);
    assert.equal(stale.body.reason, "Conflict");
    assert.equal(
      stale.body.message,
      'Operation cannot be fulfilled on secrets "s": the object has been modified; please apply your changes to the latest version and try again',
    );
    const current = await core.readNamespacedSecret({ name: "s", namespace: NS });
    const again = await core.replaceNamespacedSecret({ name: "s", namespace: NS, body: current });
    assert.equal(again.metadata?.resourceVersion, current.metadata?.resourceVersion);
    const unconditional = { ...current, metadata: { ...current.metadata, resourceVersion: undefined } };
    unconditional.data = { key: btoa("4") };
    const written = await core.replaceNamespacedSecret({ name: "s", namespace: NS, body: unconditional });
    assert.equal(written.data?.key, btoa("4"));
    const renamed = await apiError(
      core.replaceNamespacedSecret({ name: "other", namespace: NS, body: current }),
    );
    assert.equal(renamed.code, 400);
  });
});

Deno.test("list: label selectors (=, ==, !=, in, notin, exists, !key), field selectors and pagination", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    server.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "a", labels: { tier: "web", managed: "true" } },
    });
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "b", labels: { tier: "db" } } });
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "c" } });
    server.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "d", namespace: "other", labels: { tier: "web" } },
    });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await core.listNamespacedSecret({ namespace: NS, labelSelector, fieldSelector })).items.map((s) =>
        s.metadata?.name
      );

    assert.deepEqual(await names("tier=web"), ["a"]);
    assert.deepEqual(await names("tier==db"), ["b"]);
    assert.deepEqual(await names("tier!=web"), ["b", "c"]);
    assert.deepEqual(await names("tier in (web, db)"), ["a", "b"]);
    assert.deepEqual(await names("tier notin (web)"), ["b", "c"]);
    assert.deepEqual(await names("managed"), ["a"]);
    assert.deepEqual(await names("!tier"), ["c"]);
    assert.deepEqual(await names("tier,!managed"), ["b"]);
    assert.deepEqual(await names(undefined, "metadata.name=b"), ["b"]);
    assert.deepEqual(await names(undefined, "metadata.name!=b,metadata.namespace=default"), ["a", "c"]);
    const all = await core.listSecretForAllNamespaces({ labelSelector: "tier=web" });
    assert.deepEqual(all.items.map((s) => s.metadata?.name), ["a", "d"]);
    assert.equal(all.metadata?.resourceVersion, server.resourceVersion);

    assert.equal(
      (await apiError(core.listNamespacedSecret({ namespace: NS, labelSelector: "tier in (web" }))).code,
      400,
    );
    const badField = await apiError(
      core.listNamespacedSecret({ namespace: NS, fieldSelector: "spec.nope=1" }),
    );
    assert.equal(badField.body.message, "field label not supported: spec.nope");

    const page1 = await core.listNamespacedSecret({ namespace: NS, limit: 2 });
    assert.deepEqual(page1.items.map((s) => s.metadata?.name), ["a", "b"]);
    assert.equal(page1.metadata?.remainingItemCount, 1);
    const page2 = await core.listNamespacedSecret({
      namespace: NS,
      limit: 2,
      _continue: page1.metadata?._continue,
    });
    assert.deepEqual(page2.items.map((s) => s.metadata?.name), ["c"]);
    assert.equal(page2.metadata?._continue, undefined);
  });
});

Deno.test("watch: ADDED, MODIFIED, DELETED in order, and a label selector sees objects enter and leave", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const all = await collectWatch(server, `/api/v1/namespaces/${NS}/secrets`);
    const selected = await collectWatch(server, `/api/v1/namespaces/${NS}/secrets`, {
      labelSelector: "pick=yes",
    });
    assert.equal(server.openWatches, 2);

    const created = await core.createNamespacedSecret({ namespace: NS, body: secret("w") });
    const picked = await core.replaceNamespacedSecret({
      name: "w",
      namespace: NS,
      body: { ...created, metadata: { ...created.metadata, labels: { pick: "yes" } } },
    });
    await core.replaceNamespacedSecret({
      name: "w",
      namespace: NS,
      body: { ...picked, metadata: { ...picked.metadata, labels: { pick: "no" } } },
    });
    await core.deleteNamespacedSecret({ name: "w", namespace: NS });
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "elsewhere", namespace: "other" } });

    await waitFor("four events", () => all.events.length >= 4);
    assert.deepEqual(all.events.map((e) => e.type), ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);
    const versions = all.events.map((e) => Number(e.object.metadata?.resourceVersion));
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
    assert.deepEqual(selected.events.map((e) => e.type), ["ADDED", "DELETED"]);
    await all.stop();
    await selected.stop();
    await waitFor("the server to see both watches end", () => server.openWatches === 0);
  });
});

Deno.test("watch: replays from an old resourceVersion; one older than the history gets 410 Expired", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const start = (await core.listNamespacedSecret({ namespace: NS })).metadata!.resourceVersion!;
    for (const name of ["r1", "r2", "r3"]) {
      await core.createNamespacedSecret({ namespace: NS, body: secret(name) });
    }
    const replay = await collectWatch(server, `/api/v1/namespaces/${NS}/secrets`, { resourceVersion: start });
    await waitFor("the replayed events", () => replay.events.length >= 3);
    assert.deepEqual(replay.events.map((e) => e.object.metadata?.name), ["r1", "r2", "r3"]);
    await replay.stop();

    for (const name of ["r4", "r5", "r6"]) {
      await core.createNamespacedSecret({ namespace: NS, body: secret(name) });
    }
    const expired = await collectWatch(server, `/api/v1/namespaces/${NS}/secrets`, {
      resourceVersion: start,
    });
    assert.equal(await expired.done, null, "the server ends the stream after the ERROR event");
    assert.equal(expired.events.length, 1);
    assert.equal(expired.events[0].type, "ERROR");
    assert.deepEqual(expired.events[0].object, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      // Like the real watch cache: the version before the oldest one kept (history of 4, 6 writes).
      message: `too old resource version: ${start} (${Number(start) + 2})`,
      reason: "Expired",
      code: 410,
    });
  }, { historyLimit: 4 });
});

Deno.test("watch: bookmarks when allowed, timeoutSeconds ends the stream, ?watch=1 works", async () => {
  await withServer(async (server) => {
    server.put({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" } });
    const bookmarked = await collectWatch(server, `/api/v1/pods`, { allowWatchBookmarks: true });
    await waitFor("a bookmark", () => bookmarked.events.some((e) => e.type === "BOOKMARK"));
    assert.equal(
      bookmarked.events[0].type,
      "ADDED",
      "a watch without resourceVersion starts with the current objects",
    );
    const bookmark = bookmarked.events.find((e) => e.type === "BOOKMARK")!;
    assert.equal(bookmark.object.metadata?.resourceVersion, server.resourceVersion);
    await bookmarked.stop();

    const timed = await collectWatch(server, `/api/v1/pods`, {
      timeoutSeconds: 1,
      resourceVersion: server.resourceVersion,
    });
    assert.equal(await timed.done, null);
    assert.deepEqual(timed.events, []);

    const raw = await fetch(`${server.url}/api/v1/namespaces/${NS}/pods?watch=1&timeoutSeconds=1`);
    const lines = (await raw.text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.type, l.object.metadata.name]), [["ADDED", "p"]]);
  }, { bookmarkIntervalMs: 20 });
});

Deno.test("informer: lists, follows changes, and re-lists after a server restart expires its version", async () => {
  await withServer(async (server) => {
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "keep" } });
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "gone" } });
    const informer = makeInformer(
      kc,
      `/api/v1/namespaces/${NS}/secrets`,
      () => core.listNamespacedSecret({ namespace: NS }),
    );
    const log: string[] = [];
    const errors: unknown[] = [];
    informer.on("add", (s) => log.push(`add ${s.metadata?.name}`));
    informer.on("update", (s) => log.push(`update ${s.metadata?.name}`));
    informer.on("delete", (s) => log.push(`delete ${s.metadata?.name}`));
    informer.on("error", (err) => errors.push(err));
    await informer.start();
    await waitFor("the informer's watch", () => server.openWatches === 1);
    assert.deepEqual(log.splice(0), ["add gone", "add keep"]);

    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "keep", labels: { v: "2" } } });
    await waitFor("the update", () => log.length === 1);
    assert.deepEqual(log.splice(0), ["update keep"]);

    await server.stop();
    await waitFor("the informer to see the cut", () => errors.length === 1);
    server.delete("secrets", NS, "gone");
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "new" } });
    await server.restart();
    const lists = server.countRequests({
      method: "GET",
      path: `/api/v1/namespaces/${NS}/secrets`,
      watch: false,
    });
    await informer.start();
    await waitFor("the re-list", () => log.length === 2);
    assert.deepEqual(log.sort(), ["add new", "delete gone"]);
    assert.equal(server.countRequests({ method: "GET", watch: false }), lists + 1, "exactly one re-list");
    await waitFor("the informer's new watch", () => server.openWatches === 1);
    assert.deepEqual(informer.list().map((s) => s.metadata?.name).sort(), ["keep", "new"]);
    await informer.stop();
    await waitFor("the watch to end", () => server.openWatches === 0);
  });
});

Deno.test("garbage collection: deleting an owner deletes dependents two levels down, keeps co-owned ones", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    const pod = server.put({ apiVersion: "v1", kind: "Pod", metadata: { name: "owner" } });
    const other = server.put({ apiVersion: "v1", kind: "Pod", metadata: { name: "other-owner" } });
    const ref = (o: typeof pod) => ({
      apiVersion: "v1",
      kind: o.kind!,
      name: o.metadata.name!,
      uid: o.metadata.uid!,
    });
    const status = server.put(spcps("owner-default-spc", pod.metadata.uid));
    server.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "grandchild", ownerReferences: [ref(status)] },
    });
    server.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "co-owned", ownerReferences: [ref(pod), ref(other)] },
    });
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "unrelated" } });
    const watch = await collectWatch(server, `/api/v1/namespaces/${NS}/secrets`, {
      resourceVersion: server.resourceVersion,
    });

    await core.deleteNamespacedPod({ name: "owner", namespace: NS });
    assert.equal(server.get("SecretProviderClassPodStatus", NS, "owner-default-spc"), undefined);
    assert.equal(server.get("Secret", NS, "grandchild"), undefined);
    assert.deepEqual(server.get("Secret", NS, "co-owned")?.metadata.ownerReferences, [ref(other)]);
    assert.ok(server.get("Secret", NS, "unrelated"));
    await waitFor("the secret events", () => watch.events.length >= 2);
    assert.deepEqual(watch.events.map((e) => `${e.type} ${e.object.metadata?.name}`).sort(), [
      "DELETED grandchild",
      "MODIFIED co-owned",
    ]);
    await watch.stop();

    // Orphan leaves dependents, without the reference; finalizers hold a deletion until they are removed.
    server.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "orphan", ownerReferences: [ref(other)] },
    });
    server.delete("Pod", NS, "other-owner", { propagationPolicy: "Orphan" });
    assert.equal(server.get("Secret", NS, "orphan")?.metadata.ownerReferences, undefined);
    server.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "held", finalizers: ["example.com/x"] },
    });
    const marked = await core.deleteNamespacedSecret({ name: "held", namespace: NS });
    assert.equal(marked.status, undefined, "a held object comes back, not a Status");
    assert.ok(server.get("Secret", NS, "held")?.metadata.deletionTimestamp);
    const held = await core.readNamespacedSecret({ name: "held", namespace: NS });
    await core.replaceNamespacedSecret({
      name: "held",
      namespace: NS,
      body: { ...held, metadata: { ...held.metadata, finalizers: [] } },
    });
    assert.equal(server.get("Secret", NS, "held"), undefined);
  });
});

Deno.test("request log: counts requests by method, path and watch; nextRequest waits for one", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } });
    const next = server.nextRequest({ method: "GET", path: /\/secrets\/s$/ });
    for (let i = 0; i < 3; i++) await core.readNamespacedSecret({ name: "s", namespace: NS });
    await core.listNamespacedSecret({ namespace: NS, labelSelector: "a=b" });
    assert.equal((await next).method, "GET");
    assert.equal(server.countRequests({ method: "GET", path: `/api/v1/namespaces/${NS}/secrets/s` }), 3);
    assert.equal(server.countRequests({ method: "GET" }), 4);
    assert.deepEqual(server.requests[3].query, { labelSelector: "a=b" });
    assert.equal(server.requests[0].authorization, "Bearer apiserver-standin-token");
    server.clearRequests();
    assert.equal(server.countRequests(), 0);
    await assert.rejects(server.nextRequest({ method: "PUT" }, 10), /no request matching/);
  });
});

Deno.test("faults: failNext, pause (fail and hang), delay, and stop/restart on the same port", async () => {
  await withServer(async (server) => {
    const core = server.kubeConfig().makeApiClient(CoreV1Api);
    server.put({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" } });
    const read = () => core.readNamespacedSecret({ name: "s", namespace: NS });

    server.failNext(2, 500, { method: "GET" });
    assert.equal((await apiError(read())).code, 500);
    const second = await apiError(read());
    assert.deepEqual([second.code, second.body.reason], [500, "InternalError"]);
    assert.equal((await read()).metadata?.name, "s");
    server.failNext(1, 429);
    assert.equal((await apiError(read())).body.reason, "TooManyRequests");

    server.pause("fail");
    const unavailable = await apiError(read());
    assert.deepEqual([unavailable.code, unavailable.body.reason], [503, "ServiceUnavailable"]);
    server.pause("hang");
    const arrived = server.nextRequest({ method: "GET" });
    let answered = false;
    const held = read().then((s) => (answered = true, s));
    await arrived;
    assert.equal(answered, false, "a held request waits for resume()");
    server.resume();
    assert.equal((await held).metadata?.name, "s");

    server.delayMs = 5;
    assert.equal((await read()).metadata?.name, "s");
    server.delayMs = 0;

    const port = server.port;
    await server.stop();
    await assert.rejects(read());
    await server.restart();
    assert.equal(server.port, port);
    assert.equal((await read()).metadata?.name, "s", "objects survive a restart");

    server.pause("hang");
    const cut = read();
    await server.nextRequest({ method: "GET" });
    await server.stop();
    assert.equal((await apiError(cut)).code, 503, "stop() answers held requests");
    await server.restart();
    server.resume();
  });
});

Deno.test("discovery: /version, /api, /apis and KubernetesObjectApi resolving kinds through them", async () => {
  await withServer(async (server) => {
    const version = await (await fetch(`${server.url}/version`)).json();
    assert.equal(version.major, "1");
    const apis = await (await fetch(`${server.url}/apis`)).json();
    const group = apis.groups.find((g: { name: string }) => g.name === SECRETS_STORE_GROUP);
    assert.deepEqual(group.versions.map((v: { version: string }) => v.version), ["v1", "v1alpha1"]);
    const coreList = await (await fetch(`${server.url}/api/v1`)).json();
    assert.ok(coreList.resources.some((r: { name: string }) => r.name === "pods/status"));

    const objects = KubernetesObjectApi.makeApiClient(server.kubeConfig());
    await objects.create({
      apiVersion: `${SECRETS_STORE_GROUP}/v1`,
      kind: "SecretProviderClass",
      metadata: { name: "spc", namespace: NS },
      spec: { provider: "local" },
    } as never);
    const read = await objects.read({
      apiVersion: `${SECRETS_STORE_GROUP}/v1alpha1`,
      kind: "SecretProviderClass",
      metadata: { name: "spc", namespace: NS },
    });
    assert.equal(read.apiVersion, `${SECRETS_STORE_GROUP}/v1alpha1`);
  });
});
