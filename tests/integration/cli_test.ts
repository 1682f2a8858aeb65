/** The command line as users run it: exit codes, one-line errors, help, and the one-shot mount/unmount. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../lib/log.ts";
import { isMountPoint } from "../../lib/mount/mountinfo.ts";
import { serveLocalProvider } from "../../lib/provider/local.ts";
import { requireRoot } from "../support/root.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("bad usage exits 2 with one line on stderr", async () => {
  for (
    const [args, pattern] of [
      [["node", "--bogus"], /^secrets-store-csi node: Unknown option '--bogus'\n$/],
      [["node", "--nodeid=n", "--rotation-poll-interval=soon"], /takes a duration/],
      [["node"], /--nodeid is required/],
      [["provider", "local"], /--root is required/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ] as const
  ) {
    const { code, stderr } = await run(...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
  assert.equal((await run()).code, 2);
});

Deno.test("version, --version and every command's --help", async () => {
  assert.match((await run("version")).stdout, /^secrets-store\.csi\.k8s\.io v\d+\.\d+\.\d+/);
  assert.match((await run("node", "--version")).stdout, /^secrets-store\.csi\.k8s\.io v/);
  for (const command of [["node"], ["provider", "local"], ["mount"], ["unmount"], ["version"]]) {
    const { code, stdout } = await run(...command, "--help");
    assert.equal(code, 0, command.join(" "));
    assert.match(stdout, new RegExp(`usage: secrets-store-csi ${command.join(" ")}`));
  }
  const help = (await run("node", "--help")).stdout;
  for (
    const flag of ["--endpoint", "--nodeid", "--provider-volume", "--enable-secret-rotation", "--spc-dir"]
  ) {
    assert.ok(help.includes(flag), `node --help lacks ${flag}`);
  }
});

Deno.test("a runtime failure exits 1 with one clear line", async () => {
  const { code, stderr } = await run(
    "node",
    "--nodeid=n",
    "--endpoint=tcp://0.0.0.0:1",
    "--spc-dir=/nonexistent",
  );
  assert.equal(code, 1, stderr);
  assert.match(stderr, /endpoint/);
});

Deno.test("one-shot mount and unmount against the local provider", async () => {
  requireRoot();
  const dir = await Deno.makeTempDir({ prefix: "sscsi-cli-" });
  const providerDir = join(dir, "providers");
  const provider = await serveLocalProvider({
    socketDir: providerDir,
    root: join(EXAMPLES, "local-secrets"),
    log: silentLogger,
  });
  const target = join(dir, "secrets");
  try {
    const mounted = await run(
      "mount",
      "--spc",
      join(EXAMPLES, "spc/demo-local.yaml"),
      "--target",
      target,
      "--provider-volume",
      providerDir,
      "--additional-provider-volume-paths=",
    );
    assert.equal(mounted.code, 0, mounted.stderr);
    assert.ok(await isMountPoint(target));
    assert.equal(await Deno.readTextFile(join(target, "db/username")), "app");
    assert.equal((await Deno.stat(join(target, "db/password"))).mode! & 0o777, 0o400);

    const unmounted = await run("unmount", "--target", target);
    assert.equal(unmounted.code, 0, unmounted.stderr);
    assert.ok(!await isMountPoint(target));
    await assert.rejects(Deno.lstat(target), Deno.errors.NotFound);
  } finally {
    await provider.close();
    if (await isMountPoint(target)) await run("unmount", "--target", target);
    await Deno.remove(dir, { recursive: true });
  }
});
