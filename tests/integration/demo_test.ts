/** `deno task demo` runs end to end and exits 0 (needs root: it mounts tmpfs). */
import assert from "node:assert/strict";
import { requireRoot } from "../support/root.ts";

Deno.test("the demo publishes, shows and unpublishes a volume and exits 0", async () => {
  requireRoot();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: new URL("../..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `demo failed:\n${stdout}\n${stderr}`);
  assert.match(stdout, /type tmpfs \(.*nosuid.*nodev.*size=/);
  assert.match(stdout, /\.\.data -> \.\.\d{4}_/);
  assert.match(stdout, /password \(mode 0400, \d+ bytes\)/);
  assert.match(stdout, /mounts left under .*: 0; target directory exists: false/);
  // The demo lists files but never prints secret contents, and neither do the driver's logs.
  for (const secret of ["demo-password-not-a-real-secret", "demo-token-0123456789abcdef"]) {
    assert.ok(!stdout.includes(secret) && !stderr.includes(secret), "secret contents were printed");
  }
});
