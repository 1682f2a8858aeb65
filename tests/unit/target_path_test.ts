import assert from "node:assert/strict";
import { DriverError, GrpcStatus } from "../../lib/errors.ts";
import { checkTargetPath } from "../../lib/volume/target-path.ts";

Deno.test("kubelet-shaped target paths are accepted and cleaned", () => {
  const path = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/v/mount";
  assert.equal(checkTargetPath(path), path);
  assert.equal(checkTargetPath("/tmp//a/./b/"), "/tmp/a/b");
});

Deno.test("paths a privileged driver must not mount on are INVALID_ARGUMENT", () => {
  for (
    const [path, pattern] of [
      ["relative", /not absolute/],
      ["/", /root/],
      ["//", /root/],
      ["/proc/1/root", /under \/proc/],
      ["/sys", /under \/sys/],
      ["/dev/shm/x", /under \/dev/],
      ["/etc/kubernetes/x", /under \/etc/],
      ["/tmp/../etc", /\.\./],
      ["/tmp/a\0b", /NUL/],
    ] as const
  ) {
    assert.throws(() => checkTargetPath(path), (err: DriverError) => {
      assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT, path);
      assert.match(err.message, pattern);
      return true;
    });
  }
});
