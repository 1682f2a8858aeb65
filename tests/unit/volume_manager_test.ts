/**
 * VolumeManager on its ports' in-memory twins (tests/support/twins.ts): every branch of publish,
 * republish, rotation, recovery and unpublish, with a fake clock. No root, no processes.
 */
import assert from "node:assert/strict";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { silentLogger } from "../../lib/log.ts";
import { CONTEXT } from "../../lib/volume/attributes.ts";
import type { MountResponse, Published, PublishRequest, RotationFailure } from "../../lib/volume/ports.ts";
import { VolumeManager } from "../../lib/volume/publish.ts";
import {
  FakeClock,
  MemoryNode,
  MemorySpcs,
  RecordingMetrics,
  ScriptedProviders,
  textFile,
} from "../support/twins.ts";

const TARGET = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/secrets/mount";
const POLL_MS = 60_000;

function request(targetPath = TARGET, spc = "spc-a"): PublishRequest {
  return {
    volumeId: "csi-1",
    targetPath,
    readonly: true,
    volumeContext: {
      [CONTEXT.spc]: spc,
      [CONTEXT.podName]: "pod-1",
      [CONTEXT.podNamespace]: "default",
      [CONTEXT.podUid]: "uid-1",
    },
    secrets: {},
  };
}

/** A VolumeManager on twins; `version` is what the provider serves (bump it to change the content). */
function setup(options: { rotation?: boolean; random?: number; node?: MemoryNode; clock?: FakeClock } = {}) {
  const clock = options.clock ?? new FakeClock();
  const node = options.node ?? new MemoryNode(clock);
  const spcs = new MemorySpcs();
  spcs.add({ name: "spc-a", provider: "vault" });
  const state = { version: "1" };
  const providers = new ScriptedProviders((): MountResponse => ({
    objectVersions: [{ id: "token", version: state.version }],
    files: [textFile("token", `secret-${state.version}`)],
  }));
  const metrics = new RecordingMetrics();
  const published: Published[] = [];
  const unpublished: string[] = [];
  const failures: RotationFailure[] = [];
  const volumes = new VolumeManager({
    spcs,
    providers,
    mounter: node.mounter,
    writer: node.writer,
    log: silentLogger,
    metrics,
    rotation: { enabled: options.rotation ?? false, pollIntervalMs: POLL_MS },
    providerTimeoutMs: 1000,
    afterPublish: (p) => {
      published.push(p);
      return Promise.resolve();
    },
    afterUnpublish: (path) => {
      unpublished.push(path);
      return Promise.resolve();
    },
    rotationFailed: (f) => {
      failures.push(f);
      return Promise.resolve();
    },
    now: clock.now,
    random: () => options.random ?? 0,
  });
  return { clock, node, spcs, state, providers, metrics, published, unpublished, failures, volumes };
}

async function rejectsWith(promise: Promise<unknown>, code: number, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DriverError, `expected a DriverError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("publish: mounts, asks the provider, writes, verifies, then reports the pod (not the request)", async () => {
  const t = setup();
  await t.volumes.publish(request());
  assert.deepEqual(t.node.shown(TARGET)?.map((f) => f.path), ["token"]);
  assert.deepEqual(t.node.calls.filter((c) => !c.startsWith("open")), [
    `mounted ${TARGET}`,
    `mount ${TARGET}`,
    "write memory-root-1",
    `verify ${TARGET}`,
  ]);
  assert.deepEqual(t.published.map((p) => ({ pod: p.pod, targetPath: p.targetPath, changed: p.changed })), [
    { pod: { name: "pod-1", namespace: "default", uid: "uid-1" }, targetPath: TARGET, changed: true },
  ]);
  assert.equal("request" in t.published[0], false);
  assert.equal(t.providers.calls[0].request.targetPath, TARGET);
  assert.deepEqual(t.providers.calls[0].ctx, { pod: "pod-1", namespace: "default", timeoutMs: 1000 });
  assert.deepEqual(t.metrics.events, ["publish vault"]);
  assert.equal(t.metrics.mounted, 1);
  assert.equal(t.node.open, 0, "every opened target is closed");
});

Deno.test("publish: each failing step is counted under upstream's reason and leaves nothing mounted", async () => {
  const cases: [string, (t: ReturnType<typeof setup>) => void, number, RegExp, string][] = [
    [
      "no SPC name",
      () => {},
      GrpcStatus.INVALID_ARGUMENT,
      /secretProviderClass is not set/,
      "FailedToEnsureMountPoint",
    ],
    [
      "SPC missing",
      (t) => t.spcs.spcs.clear(),
      GrpcStatus.NOT_FOUND,
      /not found/,
      "SecretProviderClassNotFound",
    ],
    [
      "mount fails",
      (t) => t.node.failNext.mount = new DriverError(GrpcStatus.INTERNAL, "no tmpfs"),
      GrpcStatus.INTERNAL,
      /no tmpfs/,
      "FailedToMount",
    ],
    [
      "provider fails",
      (t) => t.providers.answer = () => Promise.reject(new DriverError(GrpcStatus.UNKNOWN, "provider down")),
      GrpcStatus.UNKNOWN,
      /provider down/,
      "GRPCProviderError",
    ],
    [
      "invalid payload",
      (t) => t.providers.answer = () => ({ objectVersions: [], files: [textFile("../x", "x")] }),
      GrpcStatus.INTERNAL,
      /provider "vault" returned an invalid file: file path "..\/x"/,
      "FileWriteError",
    ],
    [
      "target moved during the publish",
      (t) => t.node.failNext.verify = new DriverError(GrpcStatus.INTERNAL, "no longer leads to the tmpfs"),
      GrpcStatus.INTERNAL,
      /no longer leads/,
      "FailedToMount",
    ],
  ];
  for (const [name, arrange, code, pattern, reason] of cases) {
    const t = setup();
    arrange(t);
    const req = name === "no SPC name" ? request(TARGET, "") : request();
    await rejectsWith(t.volumes.publish(req), code, pattern);
    assert.equal(t.node.dirs.get(TARGET)?.mount ?? null, null, `${name}: still mounted`);
    assert.equal(t.published.length, 0, name);
    assert.match(t.metrics.events.join(";"), new RegExp(`publish_error [a-z]*,${reason}$`), name);
    assert.equal(t.node.open, 0, `${name}: a target was left open`);
  }
});

Deno.test("publish: a failing afterPublish fails the publish and undoes the mount", async () => {
  const t = setup();
  const seen: (string | undefined)[] = [];
  const volumes: VolumeManager = new VolumeManager({
    spcs: t.spcs,
    providers: t.providers,
    mounter: t.node.mounter,
    writer: t.node.writer,
    log: silentLogger,
    metrics: t.metrics,
    rotation: { enabled: false, pollIntervalMs: 0 },
    providerTimeoutMs: 1000,
    afterPublish: (p) => {
      // The Secret sync that afterPublish schedules asks whether this is one of the driver's volumes.
      seen.push(volumes.podUid(p.targetPath));
      return Promise.reject(new DriverError(GrpcStatus.UNAVAILABLE, "API server down"));
    },
  });
  await rejectsWith(volumes.publish(request()), GrpcStatus.UNAVAILABLE, /API server down/);
  assert.equal(t.node.dirs.get(TARGET)?.mount, null);
  assert.equal(volumes.mountedCount, 0);
  assert.deepEqual(seen, ["uid-1"], "known while afterPublish runs");
  assert.equal(volumes.podUid(TARGET), undefined, "forgotten with the undone mount");
});

Deno.test("publish: a mount that is not the driver's is refused and left alone", async () => {
  const t = setup();
  t.node.mountForeign(TARGET, "an ext4 file system");
  await rejectsWith(t.volumes.publish(request()), GrpcStatus.FAILED_PRECONDITION, /has an ext4 file system/);
  assert.deepEqual(t.node.dirs.get(TARGET)?.mount, { foreign: "an ext4 file system" });
  await rejectsWith(t.volumes.unpublish("v", TARGET), GrpcStatus.FAILED_PRECONDITION, /ext4/);
  assert.deepEqual(t.node.dirs.get(TARGET)?.mount, { foreign: "an ext4 file system" });
  assert.ok(t.node.dirs.has(TARGET), "the directory stays");
});

Deno.test("publish: a tmpfs without a complete payload (an interrupted publish) is remounted", async () => {
  const t = setup();
  const target = (await t.node.mounter.open(TARGET, { create: true }))!;
  await t.node.mounter.mount(target); // mounted, nothing written: the driver was killed here
  t.node.mounter.close(target);
  await t.volumes.publish(request());
  assert.deepEqual(t.node.shown(TARGET)?.map((f) => f.path), ["token"]);
  assert.equal(t.providers.calls.length, 1);
  assert.ok(t.node.calls.includes(`unmount ${TARGET}`));
});

Deno.test("republish without rotation: a no-op that asks no provider", async () => {
  const t = setup();
  await t.volumes.publish(request());
  t.clock.advance(10 * POLL_MS);
  await t.volumes.publish(request());
  assert.equal(t.providers.calls.length, 1);
  assert.equal(t.published.length, 1);
  assert.deepEqual(t.metrics.events, ["publish vault", "publish vault"]);
});

Deno.test("rotation: waits for the poll interval, skips unchanged content, writes changed content", async () => {
  const t = setup({ rotation: true });
  await t.volumes.publish(request());
  t.clock.advance(POLL_MS - 1);
  await t.volumes.publish(request());
  assert.equal(t.providers.calls.length, 1, "inside the poll interval");

  t.clock.advance(1);
  await t.volumes.publish(request());
  assert.equal(t.providers.calls.length, 2);
  assert.deepEqual(t.providers.calls[1].request.currentObjectVersion, [{ id: "token", version: "1" }]);
  assert.equal(t.published.at(-1)?.changed, false);
  assert.ok(t.metrics.events.includes("rotation vault,false"));

  t.state.version = "2";
  t.clock.advance(POLL_MS);
  await t.volumes.publish(request());
  assert.equal(new TextDecoder().decode(t.node.shown(TARGET)![0].contents), "secret-2");
  assert.equal(t.published.at(-1)?.changed, true);
  assert.ok(t.metrics.events.includes("rotation vault,true"));
});

Deno.test("rotation: a failure keeps the old content, answers OK, is counted and reported on the pod", async () => {
  const t = setup({ rotation: true });
  await t.volumes.publish(request());
  t.state.version = "2";
  t.node.failNext.write = new DriverError(GrpcStatus.INTERNAL, "no space left on the volume");
  t.clock.advance(POLL_MS);
  await t.volumes.publish(request());
  assert.equal(new TextDecoder().decode(t.node.shown(TARGET)![0].contents), "secret-1");
  assert.ok(t.metrics.events.includes("rotation_error vault,FileWriteError"), t.metrics.events.join(";"));
  assert.deepEqual(t.failures, [{
    pod: { name: "pod-1", namespace: "default", uid: "uid-1" },
    targetPath: TARGET,
    spcName: "spc-a",
    message: "no space left on the volume",
  }]);

  // A provider failure is reported under its own reason; the next republish retries.
  t.providers.answer = () => Promise.reject(new DriverError(GrpcStatus.UNKNOWN, "provider down"));
  t.clock.advance(POLL_MS);
  await t.volumes.publish(request());
  assert.ok(t.metrics.events.includes("rotation_error vault,GRPCProviderError"));
  assert.equal(t.failures.length, 2);
  assert.match(t.failures[1].message, /provider down/);
});

Deno.test("recovery: a volume mounted before a restart is not rotated in a storm", async () => {
  const clock = new FakeClock();
  const node = new MemoryNode(clock);
  const before = setup({ rotation: true, node, clock });
  await before.volumes.publish(request());
  clock.advance(10 * POLL_MS); // the payload is old by now

  // A new process: with random() = 0.5 the first rotation is spread to half an interval after start.
  const after = setup({ rotation: true, node, clock, random: 0.5 });
  await after.volumes.publish(request());
  assert.equal(after.providers.calls.length, 0, "not rotated on the first republish");
  assert.equal(after.metrics.mounted, 1);
  clock.advance(POLL_MS / 2);
  await after.volumes.publish(request());
  assert.equal(after.providers.calls.length, 1, "rotated once its spread point has passed");
  assert.deepEqual(after.providers.calls[0].request.currentObjectVersion, []);
});

Deno.test("recovery: a payload written recently after a restart waits its full interval", async () => {
  const clock = new FakeClock();
  const node = new MemoryNode(clock);
  await setup({ rotation: true, node, clock }).volumes.publish(request());
  const after = setup({ rotation: true, node, clock, random: 0.99 });
  clock.advance(POLL_MS - 1);
  await after.volumes.publish(request());
  assert.equal(after.providers.calls.length, 0);
  clock.advance(1);
  await after.volumes.publish(request());
  assert.equal(after.providers.calls.length, 1);
});

Deno.test("unpublish: unmounts, removes, records; a missing target converges", async () => {
  const t = setup();
  await t.volumes.publish(request());
  await t.volumes.unpublish("v", TARGET);
  assert.equal(t.node.dirs.has(TARGET), false);
  assert.deepEqual(t.unpublished, [TARGET]);
  assert.equal(t.volumes.mountedCount, 0);
  await t.volumes.unpublish("v", TARGET);
  assert.deepEqual(t.unpublished, [TARGET, TARGET]);
  assert.deepEqual(t.metrics.events.slice(-2), ["unpublish", "unpublish"]);
  assert.equal(t.node.open, 0);

  t.node.failNext.unmount = new DriverError(GrpcStatus.FAILED_PRECONDITION, "busy");
  await t.volumes.publish(request());
  await rejectsWith(t.volumes.unpublish("v", TARGET), GrpcStatus.FAILED_PRECONDITION, /busy/);
  assert.equal(t.metrics.events.at(-1), "unpublish_error");
});

Deno.test("two spellings of one directory share one lock: concurrent publishes mount once", async () => {
  const t = setup();
  const alias = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/alias/mount";
  t.node.aliases.set(alias, TARGET);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const answer = t.providers.answer!;
  t.providers.answer = async (r) => {
    await gate;
    return answer(r);
  };
  const first = t.volumes.publish(request(TARGET));
  const second = t.volumes.publish(request(alias));
  await new Promise((resolve) => setTimeout(resolve, 5));
  release();
  await Promise.all([first, second]);
  assert.equal(t.node.calls.filter((c) => c.startsWith("mount ")).length, 1);
  assert.equal(t.providers.calls.length, 1, "the second publish found the first one's volume");
});

Deno.test("target paths the driver never touches are refused before any port is called", async () => {
  const t = setup();
  await rejectsWith(t.volumes.publish(request("relative")), GrpcStatus.INVALID_ARGUMENT, /not absolute/);
  await rejectsWith(t.volumes.unpublish("v", "/proc/1/root"), GrpcStatus.INVALID_ARGUMENT, /under \/proc/);
  assert.deepEqual(t.node.calls, []);
});

Deno.test("mounted volumes: the pod uid of each published path, known again after a restart's first republish", async () => {
  const clock = new FakeClock();
  const node = new MemoryNode(clock);
  const before = setup({ node, clock });
  assert.equal(before.volumes.podUid(TARGET), undefined);
  await before.volumes.publish(request());
  assert.equal(before.volumes.podUid(TARGET), "uid-1");
  assert.equal(
    before.volumes.podUid("/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~projected/token"),
    undefined,
  );

  const after = setup({ node, clock }); // a new process: nothing known until kubelet republishes
  assert.equal(after.volumes.podUid(TARGET), undefined);
  await after.volumes.publish(request());
  assert.equal(after.volumes.podUid(TARGET), "uid-1");
  await after.volumes.unpublish("v", TARGET);
  assert.equal(after.volumes.podUid(TARGET), undefined);
});

Deno.test("fsGroup: the publish's volume_mount_group reaches the writer and a rotation keeps it", async () => {
  const t = setup({ rotation: true });
  const shared = { ...request(), mountGroup: 2000 };
  await t.volumes.publish(shared);
  const root = [...t.node.payloads.keys()][0];
  assert.equal(t.node.payloads.get(root)?.group, 2000);

  t.state.version = "2";
  t.clock.advance(POLL_MS);
  await t.volumes.publish(shared);
  assert.equal(new TextDecoder().decode(t.node.shown(TARGET)![0].contents), "secret-2");
  assert.equal(t.node.payloads.get(root)?.group, 2000, "the rotated files keep the group");

  // A republish that carries no group (not what kubelet does) still keeps the one the volume has.
  t.state.version = "3";
  t.clock.advance(POLL_MS);
  await t.volumes.publish(request());
  assert.equal(new TextDecoder().decode(t.node.shown(TARGET)![0].contents), "secret-3");
  assert.equal(t.node.payloads.get(root)?.group, 2000);
});

Deno.test("fsGroup: without volume_mount_group nothing is given a group", async () => {
  const t = setup();
  await t.volumes.publish(request());
  assert.equal([...t.node.payloads.values()][0].group, undefined);
});

Deno.test("fsGroup: after a restart the republish's group is applied by the next rotation", async () => {
  const clock = new FakeClock();
  const node = new MemoryNode(clock);
  const before = setup({ node, clock });
  await before.volumes.publish({ ...request(), mountGroup: 2000 });
  const after = setup({ rotation: true, node, clock });
  after.state.version = "2";
  after.clock.advance(2 * POLL_MS);
  await after.volumes.publish({ ...request(), mountGroup: 2000 });
  assert.equal(new TextDecoder().decode(node.shown(TARGET)![0].contents), "secret-2");
  assert.equal([...node.payloads.values()][0].group, 2000);
});
