/**
 * `deno task test:upstream`: this driver side by side with upstream's v1.6.0 (issue #14). The same CSI
 * calls, through the grpc-go kubelet stand-in, with the same providers (the embedded `local` provider and
 * the grpc-go provider stand-in in its echo, error and hostile modes), against both drivers, each on its
 * own socket, node name and namespace, both against one API server with the same SecretProviderClasses
 * and Pods. Per step it compares the gRPC code, the files, modes and `..data` layout on the tmpfs and its
 * mount, the MountRequest each provider received (the echo files: attributes JSON byte for byte, secrets,
 * permission, target path, current object versions), the SPCPS objects, the synced Secret, the Events
 * and the scraped /metrics (the driver's own families: names, types, label sets and values).
 *
 * Every difference must be listed in tests/upstream/differences.json (the README's "Differences from
 * upstream, on purpose" table is checked against that file by tests/unit/upstream_differences_test.ts);
 * the suite fails on any difference not listed there, and on a listed one that no longer occurs. Needs
 * root (both drivers mount tmpfs), upstream's binary (tools/upstream/build.sh) and mount(8), which
 * upstream execs.
 */
import assert from "node:assert/strict";
import { readMountinfo } from "../../lib/mount/mountinfo.ts";
import { requireRoot } from "../support/root.ts";
import { type Api, startApi } from "./api.ts";
import { listedDifferences, unlisted } from "./differences.ts";
import {
  comparableEvent,
  comparableFamily,
  comparableObject,
  diff,
  type Difference,
  driverFamilies,
  flatten,
  normalize,
  type Observation,
  parseExposition,
  type Placeholders,
  snapshotFiles,
  snapshotMount,
} from "./observe.ts";
import { type Side, type SideName, startSide } from "./sides.ts";
import type { KubeletOptions } from "../interop/peers.ts";

const GROUP = "secrets-store.csi.x-k8s.io";

/** The local provider's files (the same on both sides). */
const LOCAL_FILES = { "db/password": "hunter2\n", "config.yaml": "level: debug\n" };

/** SecretProviderClasses, by name: provider and spec extras. */
function spcs(namespace: string): Record<string, unknown>[] {
  const spc = (name: string, provider: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: `${GROUP}/v1`,
    kind: "SecretProviderClass",
    metadata: { name, namespace },
    spec: { provider, ...extra },
  });
  return [
    spc("local-spc", "local", {
      parameters: {
        objects:
          '- objectName: db/password\n  objectAlias: password\n  mode: "0400"\n- objectName: config.yaml\n',
      },
    }),
    spc("echo-spc", "echo", {
      parameters: { region: "eu-west-1", "weird key": 'quote " and \\ and \u2028' },
      secretObjects: [{
        secretName: "echo-synced",
        type: "Opaque",
        labels: { team: "a" },
        annotations: { note: "synced" },
        data: [{ objectName: "db-password", key: "password" }, { objectName: "api/token", key: "token" }],
      }],
    }),
    spc("unavailable-spc", "unavailable", { parameters: { a: "b" } }),
    spc("denied-spc", "denied", { parameters: { a: "b" } }),
    spc("escape-spc", "escape", { parameters: { a: "b" } }),
  ];
}

/** Pods, one per volume of the scenario, and the SecretProviderClass each one's volume names. */
const PODS: Record<string, string> = {
  app: "local-spc",
  echo: "echo-spc",
  unavailable: "unavailable-spc",
  denied: "denied-spc",
  escape: "escape-spc",
  missing: "no-such-spc",
  writable: "local-spc",
};

/** The pod's volume: its name is in kubelet's target path, and upstream's Secret sync checks both. */
const volumeName = (pod: string) => `${pod}-vol`;

function podObject(name: string, namespace: string, nodeName: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    // The stand-in keeps a given uid; a real API server assigns its own (read back in prepare()).
    metadata: { name, namespace, uid: `uid-${name}-${namespace}` },
    spec: {
      nodeName,
      automountServiceAccountToken: false,
      containers: [{ name: "app", image: "registry.invalid/app:1" }],
      volumes: [{
        name: volumeName(name),
        csi: {
          driver: "secrets-store.csi.k8s.io",
          readOnly: true,
          volumeAttributes: { secretProviderClass: PODS[name] },
        },
      }],
    },
  };
}

/** A side, the uids of its pods, and what makes its observations comparable. */
interface Run {
  side: Side;
  uids: Record<string, string>;
  placeholders: Placeholders;
}

async function prepare(api: Api, side: Side): Promise<Run> {
  const ns = side.namespace;
  await api.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  await api.apply(
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: ns } },
    ...spcs(ns),
    ...Object.keys(PODS).map((pod) => podObject(pod, ns, side.nodeName)),
  );
  const uids: Record<string, string> = {};
  for (const pod of await api.list("pods", ns)) {
    const meta = pod.metadata as { name: string; uid: string };
    uids[meta.name] = meta.uid;
  }
  const placeholders: Placeholders = { dir: side.dir, nodeName: side.nodeName, namespace: ns };
  return { side, uids, placeholders };
}

/** The scenario's publish requests, by pod. */
function publishOptions(run: Run, pod: string, target: string): KubeletOptions {
  return {
    targetPath: target,
    volumeId: `csi-${pod}`,
    spc: PODS[pod],
    podName: pod,
    podUid: run.uids[pod],
    readonly: pod !== "writable",
    secrets: pod === "echo" ? { username: "admin", password: "s3cr3t" } : undefined,
    attributes: pod === "echo" ? { "extra.attribute": "x" } : undefined,
  };
}

/** Everything compared, gathered per step. */
class Comparison {
  readonly differences: Difference[] = [];

  add(step: string, aspect: string, upstream: Observation, ours: Observation): void {
    this.differences.push(...diff(step, aspect, upstream, ours));
  }
}

/** Replaces pod uids (the API server assigns them) in a normalized text. */
function withoutUids(text: string, run: Run): string {
  let out = normalize(text, run.placeholders);
  for (const [pod, uid] of Object.entries(run.uids)) out = out.replaceAll(uid, `<uid:${pod}>`);
  return out;
}

function uidFree(observation: Observation, run: Run): Observation {
  return new Map([...observation].map(([k, v]) => [withoutUids(k, run), withoutUids(v, run)]));
}

/** The code and message-free outcome of each kubelet call. */
function codes(calls: { call: string; ok: boolean; code?: string }[]): Observation {
  return new Map(calls.map((c) => [c.call, c.ok ? "OK" : c.code ?? "?"]));
}

async function mountOf(target: string) {
  return (await readMountinfo()).find((m) => m.mountPoint === target);
}

/** Polls `get` until it returns a non-empty list or `ms` pass. */
async function eventually<T>(get: () => Promise<T[]>, ms = 15_000): Promise<T[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const items = await get();
    if (items.length > 0 || Date.now() > deadline) return items;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

Deno.test("upstream v1.6.0 and this driver answer the same CSI calls the same way", async () => {
  requireRoot();
  const listed = listedDifferences();
  const api = await startApi();
  const sides: Side[] = [];
  try {
    for (const name of ["upstream", "ours"] as SideName[]) {
      sides.push(await startSide({ name, kubeconfig: api.kubeconfig(name), localFiles: LOCAL_FILES }));
    }
    const [up, ours] = await Promise.all(sides.map((side) => prepare(api, side)));
    const runs: [Run, Run] = [up, ours];
    const c = new Comparison();
    /** Runs `observe` on both sides and compares the observations. */
    const step = async (name: string, aspect: string, observe: (run: Run) => Promise<Observation>) => {
      const [u, o] = [await observe(up), await observe(ours)];
      c.add(name, aspect, uidFree(u, up), uidFree(o, ours));
    };

    await step("identity", "code", async (r) => codes(await r.side.kubelet("identity")));
    await step("identity", "response", async (r) => {
      const calls = await r.side.kubelet("identity");
      const out: Observation = new Map();
      for (const call of calls) flatten(call.response ?? null, call.call, out);
      return new Map([...out].map(([k, v]) => [k, normalize(v, r.placeholders)]));
    });

    const targets = new Map<Run, Record<string, string>>();
    for (const run of runs) {
      const t: Record<string, string> = {};
      for (const pod of Object.keys(PODS)) t[pod] = await run.side.target(run.uids[pod], volumeName(pod));
      targets.set(run, t);
    }
    const target = (run: Run, pod: string) => targets.get(run)![pod];
    const publish = (pod: string) => async (run: Run) =>
      codes(await run.side.kubelet("publish", publishOptions(run, pod, target(run, pod))));
    const unpublish = (pod: string) => async (run: Run) =>
      codes(await run.side.kubelet("unpublish", publishOptions(run, pod, target(run, pod))));
    const files = (pod: string) => (run: Run) => snapshotFiles(target(run, pod), run.placeholders);
    const mount = (pod: string) => async (run: Run) => snapshotMount(await mountOf(target(run, pod)));

    for (const pod of ["app", "echo"]) {
      await step(`publish ${pod}`, "code", publish(pod));
      await step(`publish ${pod}`, "files", files(pod));
      await step(`publish ${pod}`, "mount", mount(pod));
    }
    await step("republish echo", "code", publish("echo"));
    await step("republish echo", "files", files("echo"));

    const spcps = (run: Run) => async () =>
      (await api.list(`secretproviderclasspodstatuses.${GROUP}`, run.side.namespace)).filter((o) =>
        (o.metadata as { labels?: Record<string, string> }).labels
          ?.["internal.secrets-store.csi.k8s.io/node-name"] ===
          run.side.nodeName
      );
    const spcpsObservation = (r: Run, objects: Record<string, unknown>[]) => {
      const out: Observation = new Map();
      for (const o of objects) {
        flatten(comparableSpcps(o, r.placeholders), (o.metadata as { name: string }).name, out);
      }
      return out;
    };
    await step("after publishes", "spcps", async (r) => spcpsObservation(r, await eventually(spcps(r))));
    await step("after publishes", "secret", async (r) => {
      // Upstream creates the Secret, then its patcher adds the owner reference (every 5 s): wait for both.
      const secrets = await eventually(
        async () =>
          (await api.list("secrets", r.side.namespace)).filter((s) => {
            const meta = s.metadata as { name: string; ownerReferences?: unknown[] };
            return meta.name === "echo-synced" && (meta.ownerReferences ?? []).length > 0;
          }),
        30_000,
      );
      return flatten(secrets.map((s) => comparableObject(s, r.placeholders)), "echo-synced");
    });

    for (const pod of ["unavailable", "denied", "escape", "missing", "writable"]) {
      await step(`publish ${pod}`, "code", publish(pod));
      await step(`publish ${pod}`, "mount", mount(pod));
    }

    for (const pod of ["app", "echo"]) {
      await step(`unpublish ${pod}`, "code", unpublish(pod));
      await step(`unpublish ${pod}`, "mount", mount(pod));
    }
    await step("after unpublishes", "spcps", async (r) => spcpsObservation(r, await spcps(r)()));
    await step("after unpublishes", "events", async (r) => {
      const events = await api.list("events", r.side.namespace);
      const out: Observation = new Map();
      for (const e of events.map((e) => comparableEvent(e, r.placeholders))) {
        out.set(`${e.object} ${e.reason}`, `${e.type}: ${e.message}`);
      }
      return out;
    });

    const [upMetrics, ourMetrics] = await Promise.all(
      runs.map(async (r) => parseExposition(await (await fetch(r.side.metricsUrl)).text())),
    );
    for (const name of [...driverFamilies(upMetrics)].sort()) {
      c.add(
        "metrics",
        "metrics",
        prefixed(name, comparableFamily(upMetrics.get(name), up.placeholders)),
        prefixed(name, comparableFamily(ourMetrics.get(name), ours.placeholders)),
      );
    }
    const others = (families: Map<string, unknown>, own: Set<string>) =>
      new Map([...families.keys()].filter((n) => !own.has(n)).map((n) => [n, "present"]));
    const own = driverFamilies(upMetrics);
    c.add("metrics", "other families", others(upMetrics, own), others(ourMetrics, own));

    const { unmatched, stale } = unlisted(c.differences, listed);
    const report = [
      ...unmatched.map((d) => `unlisted difference: ${JSON.stringify(d)}`),
      ...stale.map((l) => `listed difference that no longer occurs: ${JSON.stringify(l.match)}`),
    ];
    const logs = sides.map((side) =>
      `${side.name} driver, error lines:\n` +
      side.log().split("\n").filter((l) => /error|fail/i.test(l)).slice(-15).join("\n")
    );
    assert.deepEqual(report, [], `${report.join("\n")}\n\n(API: ${api.kind})\n${logs.join("\n")}`);
  } finally {
    for (const side of sides) await side.close();
    await api.close();
  }
});

/**
 * An SPCPS as compared: the versions of the echo files are hashes of what the side's driver sent, which
 * holds the side's own paths and names, so they differ by construction (the files themselves are compared).
 */
function comparableSpcps(object: Record<string, unknown>, p: Placeholders): unknown {
  const comparable = comparableObject(object, p) as {
    status?: { objects?: { id: string; version: string }[] };
  };
  for (const o of comparable.status?.objects ?? []) {
    if (o.id.startsWith("echo-")) o.version = "<hash of the echo>";
  }
  return comparable;
}

function prefixed(prefix: string, observation: Observation): Observation {
  return new Map([...observation].map(([k, v]) => [`${prefix} ${k}`, v]));
}
