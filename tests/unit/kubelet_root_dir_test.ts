import assert from "node:assert/strict";
import { parseFlags, UsageError } from "../../lib/flags.ts";
import { MOUNT_FLAGS, mountConfig, NODE_FLAGS, nodeConfig } from "../../lib/config.ts";

Deno.test("--kubelet-root-dir: /var/lib/kubelet by default, any directory when given, never empty", () => {
  const node = (...args: string[]) => nodeConfig(parseFlags(["--nodeid=n", ...args], NODE_FLAGS).values);
  assert.equal(node().provider.kubeletRootDir, "/var/lib/kubelet");
  assert.equal(
    node("--kubelet-root-dir=/var/lib/k0s/kubelet").provider.kubeletRootDir,
    "/var/lib/k0s/kubelet",
  );
  assert.throws(() => node("--kubelet-root-dir="), (err: Error) => {
    assert.ok(err instanceof UsageError);
    assert.match(err.message, /--kubelet-root-dir must name a directory/);
    return true;
  });
  // The one-shot `mount` command has no such flag: it mounts on the directory its user names.
  const mount = mountConfig(parseFlags(["--spc=s.yaml", "--target=/tmp/x"], MOUNT_FLAGS).values);
  assert.equal(mount.provider.kubeletRootDir, undefined);
});
