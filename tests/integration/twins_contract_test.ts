/**
 * The in-memory twins keep the contract of the real parts: the same calls on MemoryKube and on KubeApi
 * against the HTTP API stand-in, and on ScriptedProviders and on the gRPC ProviderClient against a real
 * provider on a unix socket, give the same answers, error codes and reasons. Needs no root.
 */
import assert from "node:assert/strict";
import { DriverError } from "../../lib/errors.ts";
import { KubeApi, KubeApiError, type KubeClient, type WatchEvent } from "../../lib/k8s/api.ts";
import { silentLogger } from "../../lib/log.ts";
import { ProviderCallError, ProviderClient } from "../../lib/provider/client.ts";
import type { CallContext, MountRequest, ProviderCaller } from "../../lib/volume/ports.ts";
import { startApiServer } from "../support/apiserver.ts";
import { MemoryKube } from "../support/kube-twins.ts";
import { ScriptedProviders } from "../support/twins.ts";
import { TestProvider } from "../support/test-provider.ts";

const NS = "default";
/** An SPCPS: the one resource the driver creates, gets, lists, updates and watches. */
const spcps = (name: string, labels: Record<string, string> = {}, mounted = true) => ({
  apiVersion: "secrets-store.csi.x-k8s.io/v1",
  kind: "SecretProviderClassPodStatus",
  metadata: { name, namespace: NS, labels },
  status: { podName: "web", secretProviderClassName: "db", mounted, targetPath: "/t", objects: [] },
});

/** What a client answers to one scripted sequence: outcomes as plain values, errors as status + reason. */
async function kubeTranscript(kube: KubeClient): Promise<unknown[]> {
  const out: unknown[] = [];
  const outcome = async (call: () => Promise<unknown>, show: (v: unknown) => unknown = () => "ok") => {
    try {
      out.push(show(await call()));
    } catch (err) {
      assert.ok(err instanceof KubeApiError, `not a KubeApiError: ${err}`);
      out.push({ httpStatus: err.httpStatus, reason: err.reason, code: err.code, notFound: err.notFound });
    }
  };
  const events: string[] = [];
  const abort = new AbortController();
  const list = await kube.list("spcps", { namespace: NS });
  const watching = kube.watch(
    "spcps",
    {
      namespace: NS,
      resourceVersion: list.metadata.resourceVersion,
      timeoutSeconds: 30,
      inactivityMs: 30_000,
    },
    (e: WatchEvent) => {
      if (e.type !== "BOOKMARK") events.push(`${e.type} ${e.object.metadata.name}`);
    },
    abort.signal,
  );
  await outcome(() => kube.get("spcps", NS, "a"));
  const created = await kube.create("spcps", NS, spcps("a", { app: "x" }));
  out.push(typeof created.metadata.uid === "string" && typeof created.metadata.resourceVersion === "string");
  await outcome(() => kube.create("spcps", NS, spcps("a")));
  await kube.create("spcps", NS, spcps("b", { app: "y" }));
  await outcome(() => kube.update("spcps", { ...created, status: { ...spcps("a").status, mounted: false } }));
  await outcome(
    () => kube.update("spcps", { ...created, status: { ...spcps("a").status, targetPath: "/u" } }),
    undefined,
  );
  await outcome(
    () => kube.list("spcps", { namespace: NS, labelSelector: "app=x" }),
    (l) => (l as { items: { metadata: { name: string } }[] }).items.map((o) => o.metadata.name),
  );
  await outcome(() => kube.get("spcps", NS, "a"), (o) => (o as { status: unknown }).status);
  await outcome(() =>
    kube.update("spcps", {
      ...spcps("never-created"),
      metadata: { ...spcps("x").metadata, name: "never-created" },
    })
  );
  for (let i = 0; i < 100 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  abort.abort();
  await watching;
  out.push(events);
  return out;
}

Deno.test("MemoryKube answers like KubeApi on the API stand-in: 404, 409 on create and stale update, selectors, watch", async () => {
  await using server = await startApiServer();
  const api = new KubeApi(server.kubeConfig(), { userAgent: "twins-contract" });
  try {
    const real = await kubeTranscript(api);
    const twin = await kubeTranscript(new MemoryKube());
    assert.deepEqual(twin, real);
  } finally {
    await api.close();
  }
});

Deno.test("MemoryKube refuses, like KubeApi, a call the driver does not make", async () => {
  await using server = await startApiServer();
  const api = new KubeApi(server.kubeConfig(), { userAgent: "twins-contract" });
  try {
    for (const kube of [api, new MemoryKube()]) {
      await assert.rejects(kube.list("events"), /the driver does not list events: add it to API_CALLS/);
    }
  } finally {
    await api.close();
  }
});

const REQUEST: MountRequest = {
  attributes: "{}",
  secrets: "{}",
  targetPath: "/t",
  permission: "420",
  currentObjectVersion: [],
};
const CTX: CallContext = { pod: "web", namespace: NS, timeoutMs: 5_000 };

/** Outcome of one Mount: the response, or the error's class, code, reason and message. */
async function mountOutcome(providers: ProviderCaller, provider: string): Promise<unknown> {
  try {
    const { objectVersions, files } = await providers.mount(provider, REQUEST, CTX);
    return {
      objectVersions,
      files: files.map((f) => ({ ...f, contents: new TextDecoder().decode(f.contents) })),
    };
  } catch (err) {
    assert.ok(err instanceof ProviderCallError, `not a ProviderCallError: ${err}`);
    assert.ok(err instanceof DriverError);
    // The lookup failure names the real directories searched; the rest of the sentence is the contract.
    return { code: err.code, reason: err.reason, message: err.message.replace(/: no test\.sock in .*$/, "") };
  }
}

Deno.test("ScriptedProviders answers like ProviderClient and a real provider: files, error.code, no versions, not found", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sscsi-twins-" });
  const provider = await TestProvider.start(dir, "test");
  const client = new ProviderClient({
    dirs: [dir],
    driverVersion: "v0",
    retry: { attempts: 1, initialMs: 10, maxMs: 10 },
    log: silentLogger,
  });
  const twin = new ScriptedProviders();
  try {
    const cases = [
      { files: [{ path: "a", contents: "1", mode: 0o600 }] },
      { files: [{ path: "a", contents: "1" }], objectVersions: [{ id: "obj", version: "7" }] },
      { errorCode: "AccessDenied" },
      { files: [], objectVersions: [] },
    ];
    for (const behaviour of cases) {
      provider.queue(behaviour);
      twin.script("test", behaviour);
      assert.deepEqual(
        await mountOutcome(twin, "test"),
        await mountOutcome(client, "test"),
        JSON.stringify(behaviour),
      );
    }
    const real = await mountOutcome(client, "missing") as { code: number; reason: string; message: string };
    const fake = await mountOutcome(twin, "missing") as typeof real;
    assert.deepEqual([fake.code, fake.reason], [real.code, real.reason]);
    assert.match(real.message, /^cannot mount for pod default\/web: provider "missing" not found/);
    assert.match(fake.message, /^cannot mount for pod default\/web: provider "missing" not found/);
    assert.deepEqual(twin.calls.map((m) => m.request), Array(cases.length + 1).fill(REQUEST));
  } finally {
    client.close();
    await provider.close();
    await Deno.remove(dir, { recursive: true });
  }
});
