/**
 * Attacks on the target path of a privileged driver (issue "hardening round 2", items 2, 3, 5, 9): a
 * parent swapped for a symlink while the provider answers, the target exchanged with a symlink by a
 * racing thread (renameat2 RENAME_EXCHANGE), a symlinked parent pointing into a system directory,
 * someone else's mount on the target, two spellings of one directory. Real tmpfs, real races, bounded
 * loops. Needs root.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { dirname, join } from "node:path";
import { wireVolumes } from "../../lib/commands/wiring.ts";
import { silentLogger } from "../../lib/log.ts";
import { MNT_DETACH, sysMount, sysUmount2 } from "../../lib/mount/libc.ts";
import { mountsUnder, readMountinfo } from "../../lib/mount/mountinfo.ts";
import { CONTEXT } from "../../lib/volume/attributes.ts";
import { type GrpcFailure, grpcFailure, type TestDriver, withTestDriver } from "../support/driver.ts";
import { startExchanger } from "../support/exchanger.ts";
import { requireRoot } from "../support/root.ts";
import { TestProvider } from "../support/test-provider.ts";

const SECRET = "top-secret-never-on-disk";

/** Every path below `dir` (relative), not following symlinks. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (relative: string) => {
    for await (const entry of Deno.readDir(join(dir, relative))) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      out.push(path);
      if (entry.isDirectory) await walk(path);
    }
  };
  await walk("");
  return out.sort();
}

/** Files holding `SECRET` below `dir` on the disk itself: mount points are skipped, links not followed. */
async function secretsOnDisk(dir: string): Promise<string[]> {
  const mountPoints = new Set((await readMountinfo()).map((m) => m.mountPoint));
  const found: string[] = [];
  const walk = async (path: string) => {
    for await (const entry of Deno.readDir(path)) {
      const child = join(path, entry.name);
      if (entry.isDirectory && !mountPoints.has(child)) await walk(child);
      else if (entry.isFile && (await Deno.readTextFile(child)) === SECRET) found.push(child);
    }
  };
  await walk(dir);
  return found;
}

/** True when something is mounted exactly on `path`. */
async function mountedOn(path: string): Promise<boolean> {
  return (await readMountinfo()).some((m) => m.mountPoint === path);
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function unpublish(d: TestDriver, pod: string) {
  return d.client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: d.target(pod) });
}

function assertFailure(err: GrpcFailure, code: number, pattern: RegExp): void {
  assert.equal(err.code, code, err.details);
  assert.match(err.details, pattern);
}

Deno.test("a parent swapped for a symlink while the provider answers: nothing on disk, no OK, unpublish converges", () =>
  withTestDriver(async (d) => {
    const target = d.target("swap");
    const volumeDir = dirname(target); // .../kubernetes.io~csi/secrets
    const decoy = join(d.dir, "decoy"); // a plain directory on the node's disk
    await Deno.mkdir(join(decoy, "mount"), { recursive: true });
    d.provider.behaviour = { files: [{ path: "token", contents: SECRET }], delayMs: 300 };

    const publishing = grpcFailure(d.client.nodePublishVolume(d.publishRequest("swap")))
      .catch(() => null); // null: the publish answered OK
    await until(() => d.provider.mountRequests.length === 1);
    await Deno.rename(volumeDir, `${volumeDir}-moved`);
    await Deno.symlink(decoy, volumeDir);
    const err = await publishing;

    assert.ok(err, "the publish answered OK although the target path led to a directory on disk");
    assertFailure(err, status.INTERNAL, /no longer leads to the tmpfs the driver mounted/);
    assert.deepEqual(await tree(decoy), ["mount"], "files were written into the decoy on disk");
    assert.deepEqual(await d.mounts(), [], "a tmpfs was left mounted (under the moved directory?)");

    // An unpublish through the planted link does not follow it, and leaves the decoy alone.
    assertFailure(await grpcFailure(unpublish(d, "swap")), status.INVALID_ARGUMENT, /is a symlink/);
    assert.deepEqual(await tree(decoy), ["mount"]);
    // Once the path is a directory again, unpublish works.
    await Deno.remove(volumeDir);
    await Deno.rename(`${volumeDir}-moved`, volumeDir);
    await unpublish(d, "swap");
    await assert.rejects(Deno.lstat(target), Deno.errors.NotFound);
  }));

Deno.test("the target exchanged with a symlink by a racing thread: never a mount or a file where it points", () =>
  withTestDriver(async (d) => {
    const target = d.target("race");
    const sibling = `${target}-decoy`;
    const decoy = join(d.dir, "decoy");
    await Deno.mkdir(target, { recursive: true });
    await Deno.mkdir(decoy);
    await Deno.symlink(decoy, sibling);
    d.provider.behaviour = { files: [{ path: "token", contents: SECRET }] };

    const racer = startExchanger(target, sibling);
    let answeredOk = 0;
    let swaps = 0;
    /** The tmpfs mounts below the temp dir, by name (the target or its sibling: never anything else). */
    const mounts = async () => (await mountsUnder(d.dir)).map((m) => m.mountPoint);
    try {
      for (let i = 0; i < 150; i++) {
        const ok = await d.client.nodePublishVolume(d.publishRequest("race")).then(() => true, () => false);
        if (ok) answeredOk++;
        const unpublished = await unpublish(d, "race").then(() => true, () => false);
        assert.equal(await mountedOn(decoy), false, `round ${i}: a tmpfs was mounted on the decoy`);
        assert.deepEqual(await tree(decoy), [], `round ${i}: files were written into the decoy`);
        assert.deepEqual(await secretsOnDisk(d.dir), [], `round ${i}: secrets on the node's disk`);
        const left = await mounts();
        assert.ok(left.length <= 1, `round ${i}: tmpfs stacked or leaked: ${left.join(", ")}`);
        assert.ok(left.every((m) => m === target || m === sibling), `round ${i}: a tmpfs on ${left}`);
        if (unpublished) assert.deepEqual(left, [], `round ${i}: the unpublish answered OK and left a mount`);
      }
    } finally {
      swaps = await racer.stop();
    }
    assert.ok(swaps > 0, "the racer never swapped");
    assert.ok(answeredOk > 0, "no publish succeeded: the race did not exercise the mount path");
    assert.deepEqual(await tree(decoy), []);
  }));

Deno.test("a symlinked parent into a system directory: publish and unpublish refuse, nothing there is touched", () =>
  withTestDriver(async (d) => {
    // `etc` stands in for /etc: `.../kubernetes.io~csi/secrets -> etc`.
    const etc = join(d.dir, "etc");
    await Deno.mkdir(join(etc, "keep"), { recursive: true });
    const target = d.target("link");
    await Deno.mkdir(dirname(dirname(target)), { recursive: true });
    await Deno.symlink(etc, dirname(target));

    const err = await grpcFailure(d.client.nodePublishVolume(d.publishRequest("link")));
    assertFailure(err, status.INVALID_ARGUMENT, /is a symlink; the driver does not follow it/);
    assert.deepEqual(await tree(etc), ["keep"], "the publish created or wrote something in etc");
    assert.deepEqual(await mountsUnder(d.dir), []);

    await Deno.mkdir(join(etc, "mount"));
    assertFailure(await grpcFailure(unpublish(d, "link")), status.INVALID_ARGUMENT, /is a symlink/);
    assert.deepEqual(await tree(etc), ["keep", "mount"], "the unpublish removed a directory in etc");
  }));

Deno.test("someone else's mount on the target is neither mounted over nor unmounted; the error names it", () =>
  withTestDriver(async (d) => {
    const target = d.target("foreign");
    await Deno.mkdir(target, { recursive: true });
    sysMount("elsewhere", target, "ramfs", 0n, "");
    try {
      const err = await grpcFailure(d.client.nodePublishVolume(d.publishRequest("foreign")));
      assertFailure(
        err,
        status.FAILED_PRECONDITION,
        /target path .* has a ramfs file system \(source "elsewhere"\) mounted on it, which this driver did not mount/,
      );
      const mounted = async () => (await readMountinfo()).filter((m) => m.mountPoint === target);
      assert.deepEqual((await mounted()).map((m) => m.fsType), ["ramfs"]);
      assert.equal(d.provider.mountRequests.length, 0);

      assertFailure(await grpcFailure(unpublish(d, "foreign")), status.FAILED_PRECONDITION, /has a ramfs/);
      assert.deepEqual((await mounted()).map((m) => m.fsType), ["ramfs"], "the unpublish unmounted it");
    } finally {
      for (const m of (await mountsUnder(d.dir)).reverse()) sysUmount2(m.mountPoint, MNT_DETACH);
    }
  }));

Deno.test("two spellings of one directory (a symlinked parent, standalone mode) share one lock: one mount, no failures", async () => {
  requireRoot();
  const dir = await Deno.makeTempDir({ prefix: "sscsi-spellings-" });
  const provider = await TestProvider.start(dir, "test");
  provider.behaviour = { files: [{ path: "token", contents: SECRET }], delayMs: 20 };
  await Deno.mkdir(join(dir, "real"));
  await Deno.symlink(join(dir, "real"), join(dir, "link"));
  // No kubelet root: the one-shot `mount` command's policy, where a user-named parent is followed.
  const wired = wireVolumes(
    { dirs: [dir], maxRecvBytes: 4 << 20, timeoutMs: 5_000, tmpfsSizeBytes: 1 << 20 },
    {
      get: (namespace, name) =>
        Promise.resolve({ name, namespace, provider: "test", parameters: {}, secretObjects: [] }),
    },
    silentLogger,
  );
  try {
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) =>
      wired.volumes.publish({
        volumeId: "v",
        targetPath: join(dir, i % 2 === 0 ? "real" : "link", "vol"),
        readonly: true,
        volumeContext: { [CONTEXT.spc]: "spc", [CONTEXT.podName]: "p", [CONTEXT.podNamespace]: "default" },
        secrets: {},
      })));
    const failed = results.filter((r) => r.status === "rejected").map((r) => String(r.reason));
    assert.deepEqual(failed, [], "publishes failed");
    const stacked = (await readMountinfo()).filter((m) => m.mountPoint === join(dir, "real", "vol"));
    assert.equal(stacked.length, 1, "tmpfs stacked on one directory");
    assert.equal(provider.mountRequests.length, 1);
  } finally {
    wired.providers.close();
    await provider.close();
    for (const m of (await mountsUnder(dir)).reverse()) sysUmount2(m.mountPoint, MNT_DETACH);
    await Deno.remove(dir, { recursive: true });
  }
});
