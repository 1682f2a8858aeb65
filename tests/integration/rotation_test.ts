/**
 * Rotation on kubelet's republish (NodePublishVolume on a mounted target), through the real CSI socket,
 * tmpfs and providers. Needs root.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../lib/log.ts";
import { noMetrics, PrometheusMetrics } from "../../lib/metrics.ts";
import { SpcDirectory } from "../../lib/spc/files.ts";
import { VolumeManager } from "../../lib/volume/publish.ts";
import { serveLocalProvider } from "../../lib/provider/local.ts";
import { requireRoot } from "../support/root.ts";
import { startTestDriver, type TestDriver } from "../support/driver.ts";
import { startApiServer } from "../support/apiserver.ts";
import { putPod, putSpc, startK8sDriver, waitFor } from "./k8s_harness.ts";
import { GrpcStatus } from "../../lib/errors.ts";

const MINUTE = 60_000;

/** A driver with rotation on (interval 2m), a movable clock and real metrics. */
async function withRotation(
  fn: (d: TestDriver, clock: { now: number }, metrics: PrometheusMetrics) => Promise<void>,
) {
  requireRoot();
  const clock = { now: Date.now() };
  const metrics = new PrometheusMetrics();
  const d = await startTestDriver({
    rotation: { enabled: true, pollIntervalMs: 2 * MINUTE },
    now: () => clock.now,
    metrics,
  });
  try {
    await fn(d, clock, metrics);
  } finally {
    await d.close();
  }
}

const dataTarget = (d: TestDriver, pod: string) => Deno.readLink(join(d.target(pod), "..data"));
const read = (d: TestDriver, pod: string, file: string) => Deno.readTextFile(join(d.target(pod), file));

async function metricValue(metrics: PrometheusMetrics, name: string, labels: Record<string, string>) {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) =>
    Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l)
  );
  return value?.value ?? 0;
}

Deno.test("rotation off: a republish does not call the provider", async () => {
  requireRoot();
  const d = await startTestDriver({ rotation: { enabled: false, pollIntervalMs: 0 } });
  try {
    await d.client.nodePublishVolume(d.publishRequest("p"));
    await d.client.nodePublishVolume(d.publishRequest("p"));
    assert.equal(d.provider.mountRequests.length, 1);
  } finally {
    await d.close();
  }
});

Deno.test("rotation on: no provider call before the interval; changed content rotated after it", () =>
  withRotation(async (d, clock, metrics) => {
    d.provider.behaviour = {
      files: [{ path: "a", contents: "v1" }],
      objectVersions: [{ id: "a", version: "1" }],
    };
    await d.client.nodePublishVolume(d.publishRequest("p"));
    const before = await dataTarget(d, "p");

    clock.now += MINUTE;
    await d.client.nodePublishVolume(d.publishRequest("p"));
    assert.equal(d.provider.mountRequests.length, 1, "rotated before the poll interval");

    clock.now += 2 * MINUTE;
    d.provider.behaviour = {
      files: [{ path: "a", contents: "v2" }],
      objectVersions: [{ id: "a", version: "2" }],
    };
    await d.client.nodePublishVolume(d.publishRequest("p"));
    assert.equal(d.provider.mountRequests.length, 2);
    assert.deepEqual(d.provider.mountRequests[1].current_object_version, [{ id: "a", version: "1" }]);
    assert.equal(await read(d, "p", "a"), "v2");
    assert.notEqual(await dataTarget(d, "p"), before);
    assert.equal(
      await metricValue(metrics, "rotation_reconcile_total", { rotated: "true", provider: "test" }),
      1,
    );
  }));

Deno.test("rotation with identical content writes nothing: same ..data target, counted as unchanged", () =>
  withRotation(async (d, clock, metrics) => {
    await d.client.nodePublishVolume(d.publishRequest("p"));
    const before = await dataTarget(d, "p");
    const mtime = (await Deno.lstat(join(d.target("p"), "..data"))).mtime;
    clock.now += 3 * MINUTE;
    await d.client.nodePublishVolume(d.publishRequest("p"));
    assert.equal(d.provider.mountRequests.length, 2);
    assert.equal(await dataTarget(d, "p"), before);
    assert.deepEqual((await Deno.lstat(join(d.target("p"), "..data"))).mtime, mtime);
    // Upstream's rotated is "true" for every rotation that ran; unchanged content is our own counter.
    assert.equal(await metricValue(metrics, "rotation_reconcile_total", { rotated: "true" }), 1);
    assert.equal(
      await metricValue(metrics, "secrets_store_csi_rotation_unchanged_total", { provider: "test" }),
      1,
    );
  }));

Deno.test("a provider failure on republish keeps the old content and returns success", () =>
  withRotation(async (d, clock, metrics) => {
    d.provider.behaviour = { files: [{ path: "a", contents: "old" }] };
    await d.client.nodePublishVolume(d.publishRequest("p"));
    clock.now += 3 * MINUTE;
    d.provider.queue({ errorCode: "Throttled" });
    await d.client.nodePublishVolume(d.publishRequest("p"));
    assert.equal(await read(d, "p", "a"), "old");
    assert.equal(
      await metricValue(metrics, "rotation_reconcile_error_total", {
        error_type: "Throttled",
        rotated: "true",
      }),
      1,
    );
    // As upstream, the failed rotation is also a failed publish, and not a successful one.
    assert.equal(await metricValue(metrics, "node_publish_error_total", { error_type: "Throttled" }), 1);
    assert.equal(await metricValue(metrics, "node_publish_total", { provider: "test" }), 1);

    d.provider.queue({ files: [{ path: "/abs", contents: "x" }] });
    clock.now += 3 * MINUTE;
    await d.client.nodePublishVolume(d.publishRequest("p"));
    assert.equal(await read(d, "p", "a"), "old", "an invalid rotation payload replaced good content");
    assert.deepEqual(await d.mounts(), [d.target("p")]);
    assert.equal(
      await metricValue(metrics, "rotation_reconcile_error_total", { error_type: "FileWriteError" }),
      1,
    );
  }));

Deno.test("objects added to or removed from the SPC are reflected on the next rotation", () =>
  withRotation(async (d, clock) => {
    const root = join(d.dir, "store");
    await Deno.mkdir(root);
    await Deno.writeTextFile(join(root, "one"), "1");
    await Deno.writeTextFile(join(root, "two"), "2");
    const local = await serveLocalProvider({ socketDir: d.providerDir, root, log: silentLogger });
    try {
      await d.addSpc("spc-local", "local", { objects: "- objectName: one\n" });
      await d.client.nodePublishVolume(d.publishRequest("p", "spc-local"));
      assert.equal(await read(d, "p", "one"), "1");

      await d.addSpc("spc-local", "local", { objects: "- objectName: two\n" });
      clock.now += 3 * MINUTE;
      await d.client.nodePublishVolume(d.publishRequest("p", "spc-local"));
      assert.equal(await read(d, "p", "two"), "2");
      await assert.rejects(Deno.lstat(join(d.target("p"), "one")), Deno.errors.NotFound);

      await Deno.writeTextFile(join(root, "two"), "2b");
      clock.now += 3 * MINUTE;
      await d.client.nodePublishVolume(d.publishRequest("p", "spc-local"));
      assert.equal(await read(d, "p", "two"), "2b");
    } finally {
      await local.close();
    }
  }));

Deno.test("after a driver restart, mounted volumes are not all rotated at once", () =>
  withRotation(async (d, clock) => {
    const pods = ["p0", "p1", "p2", "p3"];
    for (const p of pods) await d.client.nodePublishVolume(d.publishRequest(p));
    clock.now += 10 * MINUTE; // long past the interval: without care, every volume would rotate now

    // A new manager over the same mounts stands in for the restarted driver process.
    const randoms = [0, 0.25, 0.5, 0.75];
    const restarted = new VolumeManager({
      spcs: new SpcDirectory(join(d.dir, "spc")),
      providers: d.wired.providers,
      mounter: d.wired.mounter,
      writer: d.wired.writer,
      log: silentLogger,
      metrics: noMetrics,
      rotation: { enabled: true, pollIntervalMs: 2 * MINUTE },
      providerTimeoutMs: 5_000,
      now: () => clock.now,
      random: () => randoms.shift()!,
    });
    const republish = (p: string) => restarted.publish(toPublishRequest(d.publishRequest(p)));
    const calls = () => d.provider.mountRequests.length - pods.length;

    for (const p of pods) await republish(p);
    assert.equal(calls(), 0, "volumes rotated on the first republish after a restart");
    clock.now += MINUTE + 1; // half the interval: the volumes spread over the first half are due
    for (const p of pods) await republish(p);
    assert.equal(calls(), 2);
    clock.now += MINUTE;
    for (const p of pods) await republish(p);
    assert.equal(calls(), 4);
    assert.equal(restarted.mountedCount, 4);
  }));

/** The use case's request from a CSI request (what lib/csi/node.ts does). */
function toPublishRequest(r: ReturnType<TestDriver["publishRequest"]>) {
  return {
    volumeId: r.volume_id!,
    targetPath: r.target_path!,
    readonly: true,
    volumeContext: r.volume_context!,
    secrets: r.secrets ?? {},
  };
}

Deno.test("a payload that publishes always rotates: the old and the new copy fit side by side", () =>
  // The test driver's tmpfs is 1 MiB: 256 blocks, so a payload may need at most 128.
  withRotation(async (d, clock) => {
    const payload = (n: number, contents: string) => ({
      files: Array.from({ length: n }, (_, i) => ({ path: `f${i}`, contents })),
      objectVersions: [{ id: "all", version: contents }],
    });
    // 127 one-block files and the timestamped directory: exactly the budget.
    d.provider.behaviour = payload(127, "a");
    await d.client.nodePublishVolume(d.publishRequest("fits"));
    clock.now += 2 * MINUTE;
    d.provider.behaviour = payload(127, "b".repeat(4096));
    await d.client.nodePublishVolume(d.publishRequest("fits"));
    assert.equal(await read(d, "fits", "f126"), "b".repeat(4096), "the rotation did not happen");

    // One file more could publish once but never rotate (two copies need 258 of 256 blocks): refused.
    d.provider.behaviour = payload(128, "a");
    const err = await d.client.nodePublishVolume(d.publishRequest("too-big")).then(
      () => assert.fail("a payload that cannot rotate was published"),
      (e: { code: number; details: string }) => e,
    );
    assert.equal(err.code, GrpcStatus.INTERNAL, err.details);
    assert.match(err.details, /\(128 files\) needs 516 KiB of the volume's tmpfs, .* at most 512 KiB/);
    assert.deepEqual(await d.mounts(), [d.target("fits")]);
  }));

Deno.test("a failed rotation is a Warning Event on the pod, not only a log line", async () => {
  requireRoot();
  await using server = await startApiServer();
  const clock = { now: Date.now() };
  const k = await startK8sDriver(server, {
    rotation: { enabled: true, pollIntervalMs: 2 * MINUTE },
    now: () => clock.now,
  });
  try {
    putSpc(server, "rotating");
    const pod = putPod(server, "app");
    k.driver.provider.behaviour = { files: [{ path: "token", contents: "v1" }] };
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "rotating"));
    clock.now += 2 * MINUTE;
    k.driver.provider.behaviour = { errorCode: "VaultSealed" };
    await k.driver.client.nodePublishVolume(k.publishRequest(pod, "rotating")); // OK: the old content stays
    assert.equal(await read(k.driver, "app", "token"), "v1");
    const event = await waitFor(
      "the rotation event",
      () =>
        server.list("events", { namespace: "default" }).find((e) =>
          (e.involvedObject as { name: string; uid: string }).uid === pod.metadata.uid
        ),
    );
    assert.equal(event.type, "Warning");
    assert.equal(event.reason, "FailedToRotate");
    assert.match(
      String(event.message),
      /failed to rotate the secrets of SecretProviderClass rotating: .*VaultSealed/,
    );
  } finally {
    await k.close();
  }
});

/** A publish of `pod` whose pod has `fsGroup` (kubelet's volume_mount_group, CSI VOLUME_MOUNT_GROUP). */
function withFsGroup(d: TestDriver, pod: string, fsGroup: string) {
  const request = d.publishRequest(pod);
  return {
    ...request,
    volume_capability: { ...request.volume_capability, mount: { volume_mount_group: fsGroup } },
  };
}

/** Reads `path` as uid 1000 with primary group 1000 and the supplementary `groups`: true when allowed. */
async function readsAs(path: string, groups: number[]): Promise<boolean> {
  const { code } = await new Deno.Command("setpriv", {
    args: ["--reuid=1000", "--regid=1000", `--groups=${groups.join(",")}`, "cat", path],
    stdout: "null",
    stderr: "null",
  }).output();
  return code === 0;
}

/** Opens every directory from `top` down to `dir` for search by anyone (the test's temp dirs are 0700). */
async function searchableDown(top: string, dir: string): Promise<void> {
  for (let p = dir; p.startsWith(top) && p !== top; p = join(p, "..")) await Deno.chmod(p, 0o711);
  await Deno.chmod(top, 0o711);
}

/** A 0640 secret at version `version` and a 0644 file. */
const groupPayload = (version: string) => ({
  files: [
    { path: "db/password", contents: `v${version}`, mode: 0o640 },
    { path: "open", contents: "o", mode: 0o644 },
  ],
  objectVersions: [{ id: "db/password", version }],
});

Deno.test("fsGroup: the pod's group can read a 0640 secret on the real tmpfs, another group cannot; rotation keeps it", () =>
  withRotation(async (d, clock) => {
    d.provider.behaviour = groupPayload("1");
    const target = d.target("p");
    await d.client.nodePublishVolume(withFsGroup(d, "p", "2000"));
    const root = await Deno.stat(target);
    assert.equal(root.gid, 2000);
    assert.equal(root.mode! & 0o7777, 0o750);
    assert.equal((await Deno.stat(join(target, "db/password"))).mode! & 0o777, 0o640, "mode widened");
    assert.equal((await Deno.stat(join(target, "db/password"))).gid, 2000);

    await searchableDown(d.dir, join(target, ".."));
    const secret = join(target, "db/password");
    assert.equal(await readsAs(secret, [2000]), true, "the pod's fsGroup cannot read its secret");
    assert.equal(await readsAs(secret, [3000]), false, "another group read the secret");
    assert.equal(await readsAs(join(target, "open"), [3000]), false, "the root let another group in");

    clock.now += 3 * MINUTE;
    d.provider.behaviour = groupPayload("2");
    await d.client.nodePublishVolume(withFsGroup(d, "p", "2000"));
    assert.equal(await read(d, "p", "db/password"), "v2");
    assert.equal((await Deno.stat(secret)).gid, 2000);
    assert.equal(await readsAs(secret, [2000]), true, "the rotated secret lost the group");
    assert.equal(await readsAs(secret, [3000]), false);
  }));

Deno.test("fsGroup: a volume_mount_group that is not a gid is INVALID_ARGUMENT and mounts nothing", () =>
  withRotation(async (d) => {
    await assert.rejects(
      d.client.nodePublishVolume(withFsGroup(d, "p", "wheel")),
      (err: { code: number; details: string }) => {
        assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
        assert.match(err.details, /volume_mount_group "wheel" is not a group id/);
        return true;
      },
    );
    assert.deepEqual(await d.mounts(), []);
    assert.equal(d.provider.mountRequests.length, 0);
  }));
