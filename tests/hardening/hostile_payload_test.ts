/**
 * Hostile provider payloads and hostile target directories, end to end through the in-process driver
 * (real CSI gRPC, real tmpfs, real provider gRPC). Every refusal must be a clear gRPC error, write nothing
 * outside the target and leave no mount behind. Needs root.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import { isMountPoint, readMountinfo } from "../../lib/mount/mountinfo.ts";
import { type GrpcFailure, grpcFailure, type TestDriver, withTestDriver } from "../support/driver.ts";

function publishError(d: TestDriver, request: object): Promise<GrpcFailure> {
  return grpcFailure(d.client.nodePublishVolume(request));
}

/** Every path below `dir` (relative), directories included, not following symlinks. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    found.push(path);
    if (entry.isDirectory) found.push(...await tree(dir, path));
  }
  return found.sort();
}

async function isEmptyDir(path: string): Promise<boolean> {
  for await (const _ of Deno.readDir(path)) return false;
  return true;
}

const LONG_ELEMENT = "n".repeat(256);
const LONG_PATH = Array.from({ length: 21 }, () => "d".repeat(200)).join("/");

const HOSTILE_PATHS: [string, string][] = [
  ["an absolute path", "/etc/evil"],
  ["the path ..", ".."],
  ["../x", "../x"],
  ["a/../../x", "a/../../x"],
  ["a NUL byte", "ok\0/../../x"],
  ["an element over 255 bytes", `a/${LONG_ELEMENT}`],
  ["a path over 4096 bytes", LONG_PATH],
  ["a name of the writer (..data)", "..data"],
];

Deno.test("hostile provider file paths are refused with a clear error, nothing written, no mount left", () =>
  withTestDriver(async (d) => {
    const before = await tree(d.dir);
    for (const [what, path] of HOSTILE_PATHS) {
      // A valid file first: the refusal must not leave it half-written either.
      d.provider.behaviour = { files: [{ path: "good", contents: "g" }, { path, contents: "evil" }] };
      const pod = `pod-${HOSTILE_PATHS.findIndex(([w]) => w === what)}`;
      const err = await publishError(d, d.publishRequest(pod));
      assert.equal(err.code, status.INTERNAL, `${what}: ${err.details}`);
      assert.match(err.details, /provider "test" returned an invalid file: file path /, what);
      assert.ok(err.details.length < 400, `${what}: the message is ${err.details.length} characters long`);
      assert.deepEqual(await d.mounts(), [], `${what}: a mount was left behind`);
      assert.ok(await isEmptyDir(d.target(pod)), `${what}: the target is not empty`);
    }
    // Nothing appeared anywhere but the (empty) target directories.
    const after = (await tree(d.dir)).filter((p) => !p.startsWith("pods"));
    assert.deepEqual(after, before);
  }));

Deno.test("10,000 files: refused up front when they cannot fit twice, written completely when they do", async (t) => {
  // 10,000 one-block files in 100 directories plus the timestamped one: 10,101 blocks (40,404 KiB) per copy.
  const files = Array.from({ length: 10_000 }, (_, i) => ({ path: `d${i % 100}/f${i}`, contents: "x" }));
  await t.step(
    "1 MiB tmpfs: a clear error before anything is written, no mount",
    () =>
      withTestDriver(async (d) => {
        d.provider.behaviour = { files };
        const err = await publishError(d, d.publishRequest("many"));
        assert.equal(err.code, status.INTERNAL, err.details);
        assert.match(
          err.details,
          /\(10000 files\) needs 40404 KiB of the volume's tmpfs, .* at most 512 KiB is accepted, half the volume's size cap of 1048576 bytes/,
        );
        assert.deepEqual(await d.mounts(), []);
        assert.ok(await isEmptyDir(d.target("many")));
      }),
  );
  await t.step("80 MiB tmpfs (room for two copies): every file is there", () =>
    withTestDriver(async (d) => {
      d.provider.behaviour = { files };
      await d.client.nodePublishVolume(d.publishRequest("many"));
      const written = (await tree(join(d.target("many"), "..data"))).filter((p) => /\/f\d+$/.test(p));
      assert.equal(written.length, 10_000);
      assert.equal(await Deno.readTextFile(join(d.target("many"), "d7/f9907")), "x");
      await d.client.nodeUnpublishVolume({ volume_id: "csi-many", target_path: d.target("many") });
      assert.deepEqual(await d.mounts(), []);
    }, { provider: { tmpfsSizeBytes: 80 * 1024 * 1024 } }));
  await t.step("10,001 files are refused before anything is written", () =>
    withTestDriver(async (d) => {
      d.provider.behaviour = { files: [...files, { path: "one-more", contents: "x" }] };
      const err = await publishError(d, d.publishRequest("many"));
      assert.equal(err.code, status.INTERNAL);
      assert.match(err.details, /returned 10001 files, more than the limit of 10000/);
      assert.deepEqual(await d.mounts(), []);
    }, { provider: { tmpfsSizeBytes: 64 * 1024 * 1024 } }));
});

Deno.test("a symlink planted in the target directory is hidden by the mount and never followed", () =>
  withTestDriver(async (d) => {
    const outside = join(d.dir, "outside");
    await Deno.mkdir(outside);
    await Deno.writeTextFile(join(outside, "secret"), "original");
    const target = d.target("planted");
    await Deno.mkdir(target, { recursive: true });
    // Named like a file of the payload and like the writer's own link.
    await Deno.symlink(join(outside, "secret"), join(target, "secret"));
    await Deno.symlink(outside, join(target, "..data"));

    await d.client.nodePublishVolume(d.publishRequest("planted"));
    assert.equal(await Deno.readTextFile(join(target, "secret")), "s3cr3t");
    assert.equal(await Deno.readTextFile(join(outside, "secret")), "original");
    assert.deepEqual(await tree(outside), ["secret"]);

    // Unmounting uncovers the planted links: the driver does not delete what it did not create, so the
    // unpublish fails clearly (kubelet retries), but the tmpfs is gone and nothing was followed.
    const err = await d.client.nodeUnpublishVolume({ volume_id: "csi-planted", target_path: target }).then(
      () => undefined,
      (e: GrpcFailure) => e,
    );
    assert.deepEqual(await d.mounts(), []);
    assert.equal(err?.code, status.INTERNAL);
    assert.match(err!.details, /failed to remove target path .*planted/);
    assert.equal(await Deno.readTextFile(join(outside, "secret")), "original");
    assert.deepEqual((await tree(target)).sort(), ["..data", "secret"]);
  }));

Deno.test("a target path that is a symlink is refused; nothing is mounted where it points", () =>
  withTestDriver(async (d) => {
    const outside = join(d.dir, "outside");
    await Deno.mkdir(outside);
    const target = d.target("link");
    await Deno.mkdir(join(target, ".."), { recursive: true });
    await Deno.symlink(outside, target);
    const err = await publishError(d, d.publishRequest("link"));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /is a symlink; the driver does not follow it/);
    assert.deepEqual(await d.mounts(), []);
    assert.deepEqual(await tree(outside), []);
    // Unpublish of the link neither follows nor removes what it points to.
    await d.client.nodeUnpublishVolume({ volume_id: "csi-link", target_path: target }).catch(() => {});
    assert.ok((await Deno.lstat(outside)).isDirectory);
  }));

Deno.test("a target path with characters mountinfo escapes publishes, republishes and unpublishes", () =>
  withTestDriver(async (d) => {
    for (const name of ["with space", "tab\there", "new\nline", "back\\slash", "all \t\n\\ é 😀 \\040"]) {
      const target = join(d.dir, "pods", name, "volumes/kubernetes.io~csi/secrets/mount");
      const request = { ...d.publishRequest("odd"), target_path: target };
      await d.client.nodePublishVolume(request);
      assert.ok(await isMountPoint(target), `${JSON.stringify(name)}: not a mount point`);
      assert.ok((await readMountinfo()).some((m) => m.mountPoint === target && m.fsType === "tmpfs"));
      assert.equal(await Deno.readTextFile(join(target, "secret")), "s3cr3t");
      // The republish must recognise the mount (no second provider call, no second mount).
      const calls = d.provider.mountRequests.length;
      await d.client.nodePublishVolume(request);
      assert.equal(d.provider.mountRequests.length, calls, `${JSON.stringify(name)}: republish remounted`);
      assert.deepEqual(await d.mounts(), [target]);
      await d.client.nodeUnpublishVolume({ volume_id: "csi-odd", target_path: target });
      assert.deepEqual(await d.mounts(), [], `${JSON.stringify(name)}: left mounted`);
      await assert.rejects(Deno.lstat(target), Deno.errors.NotFound);
    }
  }));
