/** The command line as users run it: exit codes, one-line errors, help, and the one-shot mount/unmount. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { silentLogger } from "../../lib/log.ts";
import { isMountPoint } from "../../lib/mount/mountinfo.ts";
import { serveLocalProvider } from "../../lib/provider/local.ts";
import { requireRoot } from "../support/root.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;

/** No cluster configuration reaches the child, whatever this shell has. */
const STANDALONE = { KUBECONFIG: "", KUBERNETES_SERVICE_HOST: "" };

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: STANDALONE,
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
      [["--bogus"], /^secrets-store-csi node: Unknown option '--bogus'\n$/],
      [["--nodeid=n", "--metrics-backend=opencensus"], /unsupported metrics backend "opencensus"/],
      [["provider", "local"], /--root is required/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ] as const
  ) {
    const { code, stderr } = await run(...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
});

Deno.test("no command, or flags first, runs node: without a cluster or --spc-dir it says what is missing", async () => {
  for (const args of [[], ["--endpoint=unix:///nonexistent/csi.sock", "-v=2"]]) {
    const { code, stderr } = await run(...args);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^secrets-store-csi node: no SecretProviderClass source: pass --kubeconfig/);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
  const help = await run("--help");
  assert.equal(help.code, 0);
  assert.match(
    help.stdout,
    /Without a command \(flags only, as\nupstream's DaemonSet passes them\) it runs `node`/,
  );
});

Deno.test("version, --version and every command's --help", async () => {
  assert.match((await run("version")).stdout, /^secrets-store\.csi\.k8s\.io v\d+\.\d+\.\d+/);
  assert.match((await run("node", "--version")).stdout, /^\{"BuildVersion":"v\d+\.\d+\.\d+",/);
  for (const command of [["node"], ["provider", "local"], ["mount"], ["unmount"], ["version"]]) {
    const { code, stdout } = await run(...command, "--help");
    assert.equal(code, 0, command.join(" "));
    assert.match(stdout, new RegExp(`usage: secrets-store-csi ${command.join(" ")}`));
  }
  for (const flag of ["-h", "-help"]) {
    const { code, stdout } = await run("--endpoint=unix:///x.sock", flag);
    assert.equal(code, 0, flag);
    assert.match(stdout, /^usage: secrets-store-csi node \[flags\]/, flag);
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

/** `mount` of the demo class on `target`, with `providerDir` the only provider directory. */
function mountDemo(target: string, providerDir: string) {
  return run(
    "mount",
    "--spc",
    join(EXAMPLES, "spc/demo-local.yaml"),
    "--target",
    target,
    "--provider-volume",
    providerDir,
    "--additional-provider-volume-paths=",
  );
}

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
    const mounted = await mountDemo(target, providerDir);
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

Deno.test("a failed mount removes the directories it created; unmount names what it left behind", async () => {
  requireRoot();
  const dir = await Deno.makeTempDir({ prefix: "sscsi-cli-" });
  try {
    const target = join(dir, "new/secrets");
    const failed = await mountDemo(target, join(dir, "no-providers"));
    assert.equal(failed.code, 1, failed.stderr);
    // The driver's log (the undone mount) comes first; the error is the last line, one sentence.
    assert.match(
      failed.stderr.trim().split("\n").at(-1)!,
      /^secrets-store-csi mount: .*provider "local" not found/,
    );
    await assert.rejects(
      Deno.lstat(join(dir, "new")),
      Deno.errors.NotFound,
      "the created directories are left",
    );

    const stray = join(dir, "stray");
    await Deno.mkdir(stray);
    await Deno.writeTextFile(join(stray, "notes.txt"), "mine");
    const unmounted = await run("unmount", "--target", stray);
    assert.equal(unmounted.code, 1);
    assert.equal(
      unmounted.stderr,
      `secrets-store-csi unmount: unmounted ${stray}, but did not remove it: it still holds "notes.txt", which the driver did not write\n`,
    );
    assert.equal(await Deno.readTextFile(join(stray, "notes.txt")), "mine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
