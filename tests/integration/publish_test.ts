/**
 * NodePublishVolume / NodeUnpublishVolume end to end: a real gRPC client on the CSI socket, real tmpfs,
 * a real gRPC provider. Needs root.
 */
import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { dirname, join } from "node:path";
import { isMountPoint, readMountinfo } from "../../lib/mount/mountinfo.ts";
import { type TestDriver, withTestDriver } from "../support/driver.ts";

const decoder = new TextDecoder();

/** The call must fail with gRPC `code` and a message matching `pattern`. */
async function assertGrpcError(call: Promise<unknown>, code: status, pattern: RegExp): Promise<void> {
  await assert.rejects(call, (err: { code: number; details: string }) => {
    assert.equal(err.code, code, err.details);
    assert.match(err.details, pattern);
    return true;
  });
}

/** Publishing must fail with `code`, a message matching `pattern`, and leave no mount behind. */
async function assertPublishFails(d: TestDriver, pod: string, code: status, pattern: RegExp, spc?: string) {
  await assertGrpcError(d.client.nodePublishVolume(d.publishRequest(pod, spc)), code, pattern);
  assert.deepEqual(await d.mounts(), [], "a failed publish left a mount behind");
}

async function assertMissing(path: string): Promise<void> {
  await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
}

Deno.test("publish mounts a tmpfs with the provider's files through ..data; unpublish removes it", () =>
  withTestDriver(async (d) => {
    d.provider.behaviour = {
      files: [
        { path: "username", contents: "app" },
        { path: "db/password", contents: "pw", mode: 0o400 },
      ],
    };
    const target = d.target("pod-a");
    await d.client.nodePublishVolume(d.publishRequest("pod-a"));

    assert.ok(await isMountPoint(target), "target is not a mount point");
    const entry = (await readMountinfo()).find((m) => m.mountPoint === target)!;
    assert.deepEqual(entry.fsType, "tmpfs");
    assert.ok(entry.mountOptions.includes("nosuid") && entry.mountOptions.includes("nodev"));
    assert.deepEqual(decoder.decode(await Deno.readFile(join(target, "username"))), "app");
    assert.deepEqual(decoder.decode(await Deno.readFile(join(target, "db/password"))), "pw");
    assert.deepEqual((await Deno.stat(join(target, "db/password"))).mode! & 0o777, 0o400);
    assert.deepEqual((await Deno.stat(join(target, "username"))).mode! & 0o777, 0o644);
    assert.deepEqual(await Deno.readLink(join(target, "username")), "..data/username");
    assert.deepEqual(await Deno.readLink(join(target, "db")), "..data/db");
    assert.match(await Deno.readLink(join(target, "..data")), /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./);

    const req = d.provider.mountRequests[0];
    assert.deepEqual(req.target_path, target);
    assert.deepEqual(req.permission, "420");
    assert.deepEqual(JSON.parse(req.attributes)["csi.storage.k8s.io/pod.name"], "pod-a");
    assert.deepEqual(JSON.parse(req.attributes).a, "b");

    await d.client.nodeUnpublishVolume({ volume_id: "csi-pod-a", target_path: target });
    assert.deepEqual(await d.mounts(), []);
    await assertMissing(target);
  }));

Deno.test("publish again on a mounted target (rotation off) is a no-op without a provider call", () =>
  withTestDriver(async (d) => {
    await d.client.nodePublishVolume(d.publishRequest("pod-b"));
    const data = await Deno.readLink(join(d.target("pod-b"), "..data"));
    await d.client.nodePublishVolume(d.publishRequest("pod-b"));
    assert.deepEqual(d.provider.mountRequests.length, 1);
    assert.deepEqual(await Deno.readLink(join(d.target("pod-b"), "..data")), data);
    assert.deepEqual(await d.mounts(), [d.target("pod-b")]);
  }));

Deno.test("unpublish of an unknown or already removed path succeeds", () =>
  withTestDriver(async (d) => {
    await d.client.nodeUnpublishVolume({ volume_id: "x", target_path: d.target("never") });
    await d.client.nodePublishVolume(d.publishRequest("pod-c"));
    await d.client.nodeUnpublishVolume({ volume_id: "x", target_path: d.target("pod-c") });
    await d.client.nodeUnpublishVolume({ volume_id: "x", target_path: d.target("pod-c") });
    assert.deepEqual(await d.mounts(), []);
  }));

const HOSTILE: [string, { path: string; contents: string; mode?: number }[]][] = [
  ["absolute path", [{ path: "/etc/evil", contents: "x" }]],
  ["a .. element", [{ path: "a/../../evil", contents: "x" }]],
  ["a leading ..", [{ path: "..evil", contents: "x" }]],
  ["mode over 511", [{ path: "f", contents: "x", mode: 512 }]],
  ["an empty path", [{ path: "", contents: "x" }]],
  ["duplicate paths", [{ path: "f", contents: "x" }, { path: "f", contents: "y" }]],
  ["a total over the size cap", [{ path: "big", contents: "x".repeat(1024 * 1024 + 1) }]],
];

for (const [what, files] of HOSTILE) {
  Deno.test(`a provider response with ${what} is refused, nothing is written and the mount is undone`, () =>
    withTestDriver(async (d) => {
      d.provider.behaviour = { files };
      await assertPublishFails(d, "pod-h", status.INTERNAL, /provider "test" returned an invalid file/);
      await assertMissing(join(d.dir, "evil"));
      for await (const entry of Deno.readDir(d.target("pod-h"))) throw new Error(`left ${entry.name} behind`);
    }));
}

Deno.test("provider failures are clear gRPC errors naming the pod and provider, with no mount left", () =>
  withTestDriver(async (d) => {
    await d.addSpc("spc-missing", "vault");
    await assertPublishFails(
      d,
      "pod-m",
      status.UNKNOWN,
      /provider "vault" not found.*vault\.sock/,
      "spc-missing",
    );

    await d.addSpc("spc-bad-name", "../etc");
    await assertPublishFails(d, "pod-n", status.INVALID_ARGUMENT, /\.\.\/etc/, "spc-bad-name");

    d.provider.queue({ errorCode: "AccessDenied" });
    await assertPublishFails(d, "pod-e", status.UNKNOWN, /AccessDenied/);
    await assertPublishFails(d, "pod-e", status.NOT_FOUND, /default\/nope/, "nope");
  }));

Deno.test("a provider that hangs past the deadline fails the publish naming provider, pod and time", () =>
  withTestDriver(async (d) => {
    d.provider.behaviour = { hang: true };
    await assertPublishFails(
      d,
      "pod-slow",
      status.UNKNOWN,
      /provider "test" did not answer Mount for pod default\/pod-slow within 300ms/,
    );
  }, { provider: { timeoutMs: 300 } }));

Deno.test("50 concurrent publishes to different targets all succeed", () =>
  withTestDriver(async (d) => {
    const pods = Array.from({ length: 50 }, (_, i) => `pod-${i}`);
    await Promise.all(pods.map((p) => d.client.nodePublishVolume(d.publishRequest(p))));
    assert.deepEqual((await d.mounts()).sort(), pods.map((p) => d.target(p)).sort());
    for (const p of pods) assert.deepEqual(await Deno.readTextFile(join(d.target(p), "secret")), "s3cr3t");
    await Promise.all(
      pods.map((p) => d.client.nodeUnpublishVolume({ volume_id: p, target_path: d.target(p) })),
    );
    assert.deepEqual(await d.mounts(), []);
  }));

Deno.test("10 concurrent publishes to one target end with one mount", () =>
  withTestDriver(async (d) => {
    await Promise.all(
      Array.from({ length: 10 }, () => d.client.nodePublishVolume(d.publishRequest("pod-x"))),
    );
    assert.deepEqual(await d.mounts(), [d.target("pod-x")]);
    assert.deepEqual(d.provider.mountRequests.length, 1);
  }));

Deno.test("target paths outside what a privileged driver may touch are refused", () =>
  withTestDriver(async (d) => {
    for (
      const [path, pattern] of [["/proc/self/x", /under \/proc/], ["/", /never mounts over the root/], [
        "relative/path",
        /not absolute/,
      ]] as const
    ) {
      await assertGrpcError(
        d.client.nodePublishVolume({ ...d.publishRequest("p"), target_path: path }),
        status.INVALID_ARGUMENT,
        pattern,
      );
    }
    // A link where kubelet's target directory belongs.
    const link = d.target("p");
    await Deno.mkdir(dirname(link), { recursive: true });
    await Deno.symlink("/tmp", link);
    const request = { ...d.publishRequest("p"), target_path: link };
    await assertGrpcError(d.client.nodePublishVolume(request), status.INVALID_ARGUMENT, /is a symlink/);
    assert.deepEqual(await d.mounts(), []);
    // Anything that is not a kubelet volume path below the kubelet root dir is refused outright.
    for (
      const path of [join(d.dir, "link"), "/root/x", "/var/tmp/x", "/run/x", join(d.dir, "pods/u/x/mount")]
    ) {
      await assertGrpcError(
        d.client.nodePublishVolume({ ...d.publishRequest("p"), target_path: path }),
        status.INVALID_ARGUMENT,
        /is not a kubelet CSI volume path .*pods\/<pod uid>\/volumes\/kubernetes.io~csi\/<volume>\/mount/,
      );
    }
    assert.deepEqual(await d.mounts(), []);
  }));
