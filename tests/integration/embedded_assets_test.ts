/**
 * The compiled binary must not need the source tree at run time. `deno compile` embeds main.ts's module
 * graph (code, and the .proto files imported as text) plus deno.json and deno.lock; this test copies
 * exactly that to a fresh directory and runs the program from an unrelated working directory, so any
 * read of a file outside the graph (a path relative to the cwd or to the repository) fails here.
 *
 * It also checks `deno task compile`: it either builds a binary that runs, or (offline, without
 * DENORT_BIN) fails with one sentence naming what is missing. No root needed: nothing is mounted.
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../lib/log.ts";
import { ProviderClient } from "../../lib/provider/client.ts";
import { DRIVER_VERSION } from "../../lib/version.ts";
import { waitUntilListening } from "../../lib/unix-socket.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Absolute paths of the local files in main.ts's module graph, as `deno info` reports them. */
async function moduleGraphFiles(): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string; local?: string; error?: string }[];
  };
  const broken = graph.modules.filter((m) => m.error !== undefined).map((m) => `${m.specifier}: ${m.error}`);
  assert.deepEqual(broken, [], "main.ts's module graph does not resolve");
  return graph.modules.filter((m) => m.specifier.startsWith("file://") && m.local).map((m) => m.local!);
}

/** Copies `files` (absolute, inside the repository) and deno.json/deno.lock to `dest`, keeping paths. */
async function copyToTree(files: string[], dest: string): Promise<void> {
  for (const file of [...files, join(ROOT, "deno.json"), join(ROOT, "deno.lock")]) {
    const target = join(dest, relative(ROOT, file));
    await Deno.mkdir(dirname(target), { recursive: true });
    await Deno.copyFile(file, target);
  }
}

/** A copy of only what `deno compile` embeds, and an empty directory to run it from. */
async function embeddedCopy() {
  const base = await Deno.makeTempDir({ prefix: "embedded-assets-" });
  const app = join(base, "app");
  const cwd = join(base, "elsewhere");
  await Deno.mkdir(cwd);
  const files = await moduleGraphFiles();
  await copyToTree(files, app);
  return {
    base,
    app,
    cwd,
    files: files.map((f) => relative(ROOT, f)),
    /** `deno run -A <copy>/main.ts ...args` from the unrelated directory. */
    command(args: string[], stdout: "piped" | "null" = "piped"): Deno.Command {
      return new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(app, "main.ts"), ...args],
        cwd,
        stdout,
        stderr: "piped",
      });
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(base, { recursive: true });
    },
  };
}

Deno.test("embedded assets: the module graph carries the .proto files and no test or tool code", async () => {
  await using copy = await embeddedCopy();
  for (const proto of ["proto/csi.proto", "proto/provider.proto"]) {
    assert.ok(copy.files.includes(proto), `${proto} is not in main.ts's module graph`);
  }
  const strays = copy.files.filter((f) =>
    !f.startsWith("lib/") && !f.startsWith("proto/") && f !== "main.ts"
  );
  assert.deepEqual(strays, [], "files outside main.ts, lib/ and proto/ in the module graph");
});

Deno.test("embedded assets: `version` runs from a copy of the module graph alone, in another directory", async () => {
  await using copy = await embeddedCopy();
  const { code, stdout, stderr } = await copy.command(["version"]).output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, err);
  assert.match(new TextDecoder().decode(stdout), new RegExp(DRIVER_VERSION.replaceAll(".", "\\.")));
});

/** Resolves once something listens on `path`; fails if `child` exits first. */
async function waitForSocket(path: string, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  if (await waitUntilListening(path, 60_000, () => exited)) return;
  assert.fail(exited ? "the provider exited before creating its socket" : `${path} never appeared`);
}

Deno.test("embedded assets: `provider local` serves Version and Mount from the copy (protos embedded)", async () => {
  await using copy = await embeddedCopy();
  const sockets = join(copy.base, "sockets");
  const root = join(copy.base, "root");
  await Deno.mkdir(root);
  await Deno.writeTextFile(join(root, "token"), "t-1");

  const child = copy.command(["provider", "local", "--provider-volume", sockets, "--root", root], "null")
    .spawn();
  const stderr = new Response(child.stderr).text();
  const client = new ProviderClient({ dirs: [sockets], driverVersion: DRIVER_VERSION, log: silentLogger });
  try {
    await waitForSocket(join(sockets, "local.sock"), child);
    const version = await client.version("local", 10_000);
    assert.equal(version.runtimeVersion, DRIVER_VERSION);
    const response = await client.mount("local", {
      attributes: JSON.stringify({ objects: "- objectName: token" }),
      secrets: "{}",
      targetPath: join(copy.base, "target"),
      permission: "420",
      currentObjectVersion: [],
    }, { pod: "p", namespace: "default", timeoutMs: 10_000 });
    assert.deepEqual(response.files.map((f) => [f.path, new TextDecoder().decode(f.contents)]), [[
      "token",
      "t-1",
    ]]);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${(err as Error).message}\nprovider stderr:\n${await stderr}`, { cause: err });
  } finally {
    client.close();
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone (killed above or exited on its own).
    }
    await child.status;
    await stderr;
  }
});

Deno.test("deno task compile: builds a binary that runs, or says in one sentence what is missing", async () => {
  const out = await Deno.makeTempDir({ prefix: "compile-" });
  try {
    const binary = join(out, "secrets-store-csi");
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tools/compile.ts", "--output", binary],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    const message = new TextDecoder().decode(stderr).trim();
    if (code === 0) {
      const run = await new Deno.Command(binary, { args: ["version"], cwd: out, stdout: "piped" }).output();
      assert.equal(run.code, 0);
      assert.match(new TextDecoder().decode(run.stdout), new RegExp(DRIVER_VERSION.replaceAll(".", "\\.")));
    } else {
      assert.equal(code, 1, message);
      assert.match(
        message,
        /^deno compile could not download the Deno runtime \(denort [^)\n]+\)[^\n]*DENORT_BIN[^\n]*\.$/,
      );
    }

    const missing = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tools/compile.ts", "--output", binary],
      cwd: ROOT,
      env: { DENORT_BIN: join(out, "no-such-denort") },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(missing.code, 1);
    assert.equal(
      new TextDecoder().decode(missing.stderr).trim(),
      `DENORT_BIN is set to ${
        join(out, "no-such-denort")
      }, which is not a file: point it at a denort binary.`,
    );

    // The full deno CLI in place of denort made `deno compile` overflow its stack and leave a temp file.
    const fullDeno = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tools/compile.ts", "--output", binary],
      cwd: ROOT,
      env: { DENORT_BIN: Deno.execPath() },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(fullDeno.code, 1);
    assert.match(
      new TextDecoder().decode(fullDeno.stderr).trim(),
      /^DENORT_BIN is set to \S+, which is the full deno CLI, not its runtime: point it at the denort binary of Deno [^\n]+\.$/,
    );
    const left = [];
    for await (const entry of Deno.readDir(out)) {
      if (entry.name !== "secrets-store-csi") left.push(entry.name);
    }
    assert.deepEqual(left, [], "a failed compile left files in the output directory");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
