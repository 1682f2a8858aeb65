/**
 * The production bundle (`deno task bundle`, tools/bundle.ts) and how it is run (tools/production.ts):
 * code-split so that `version`, `--help` and standalone mode never load @kubernetes/client-node, the
 * .proto sources inside, and `deno task prod` running it with the production V8 flags. No root needed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BUNDLE_DIR, prodRunArgs, REPO_ROOT, V8_FLAGS } from "../../tools/production.ts";
import { driverArgs } from "../support/program.ts";
import { waitUntilListening } from "../../lib/unix-socket.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function chunks(): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for await (const entry of Deno.readDir(join(REPO_ROOT, BUNDLE_DIR))) {
    if (entry.name.endsWith(".js")) {
      texts.set(entry.name, await Deno.readTextFile(join(REPO_ROOT, BUNDLE_DIR, entry.name)));
    }
  }
  return texts;
}

/** The chunk with @kubernetes/client-node: KubeConfig's in-cluster loader survives minification by name. */
async function clientNodeChunk(): Promise<string> {
  const holding = [...(await chunks())].filter(([, text]) => text.includes("loadFromCluster"));
  assert.equal(holding.length, 1, `client-node is in ${holding.map(([n]) => n).join(", ") || "no chunk"}`);
  return holding[0][0];
}

Deno.test("bundle: minified, client-node in its own chunk, the .proto sources inside", async () => {
  const all = await chunks();
  assert.ok(all.has("main.js"));
  const cluster = await clientNodeChunk();
  assert.notEqual(cluster, "main.js");
  for (const text of ["package csi.v1;", "package v1alpha1;"]) {
    assert.ok([...all.values()].some((c) => c.includes(text)), `no chunk holds the proto with "${text}"`);
  }
  // Minified: no line of source indentation survives in the largest chunk.
  const largest = [...all.values()].sort((a, b) => b.length - a.length)[0];
  assert.ok(largest.split("\n").length < largest.length / 1000, "the bundle is not minified");
});

/** A copy of the bundle without client-node's chunk, so that loading it fails. */
async function bundleWithoutClientNode(): Promise<{ dir: string; entry: string }> {
  const dir = await Deno.makeTempDir({ prefix: "bundle-no-client-node-" });
  const cluster = await clientNodeChunk();
  for (const name of (await chunks()).keys()) {
    if (name !== cluster) await Deno.copyFile(join(REPO_ROOT, BUNDLE_DIR, name), join(dir, name));
  }
  return { dir, entry: join(dir, "main.js") };
}

function runArgs(entry: string, args: string[]): string[] {
  return prodRunArgs(args).map((a) => (a === `${REPO_ROOT}${BUNDLE_DIR}/main.js` ? entry : a));
}

Deno.test("bundle: version, --help and standalone node never load client-node; cluster mode does", async () => {
  const { dir, entry } = await bundleWithoutClientNode();
  try {
    for (const args of [["version"], ["node", "--help"]]) {
      const out = await new Deno.Command(Deno.execPath(), { args: runArgs(entry, args), stdout: "piped" })
        .output();
      assert.equal(out.code, 0, `${args.join(" ")}: ${decode(out.stderr)}`);
    }
    const socket = join(dir, "csi.sock");
    const spcDir = join(dir, "spc");
    await Deno.mkdir(spcDir);
    const child = new Deno.Command(Deno.execPath(), {
      args: runArgs(entry, [
        "node",
        "--endpoint",
        `unix://${socket}`,
        "--nodeid",
        "n",
        "--spc-dir",
        spcDir,
        "--provider-volume",
        dir,
        "--additional-provider-volume-paths=",
        "--metrics-addr=",
      ]),
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let exited = false;
    child.status.then(() => exited = true);
    const listening = await waitUntilListening(socket, 60_000, () => exited);
    if (!exited) child.kill("SIGTERM");
    await child.status;
    assert.ok(listening, `standalone node did not start without client-node:\n${await stderr}`);
    await stderr;

    const kubeconfig = join(dir, "kubeconfig");
    await Deno.writeTextFile(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const cluster = await new Deno.Command(Deno.execPath(), {
      args: runArgs(entry, [
        "node",
        "--kubeconfig",
        kubeconfig,
        "--nodeid",
        "n",
        "--endpoint",
        `unix://${socket}`,
      ]),
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.notEqual(cluster.code, 0);
    assert.match(decode(cluster.stderr), new RegExp((await clientNodeChunk()).replace(".", "\\.")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task prod runs the bundle with the production V8 flags, as the tests' driver does", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "prod", "version"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, decode(out.stderr));
  assert.match(decode(out.stdout), /^secrets-store\.csi\.k8s\.io /);
  assert.deepEqual(driverArgs(["version"]), prodRunArgs(["version"]));
  assert.ok(prodRunArgs([]).includes(`--v8-flags=${V8_FLAGS.join(",")}`));
});
