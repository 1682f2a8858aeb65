/**
 * `deno task bundle`: the production bundle, `dist/bundle/`: main.ts and its npm dependencies minified by
 * `deno bundle` (esbuild), code-split at the dynamic imports so that `version`, `--help` and standalone
 * mode never load @kubernetes/client-node (its chunk is only imported in cluster mode). The .proto files
 * are imported as text, so they are inside the chunks; nothing is read from the source tree at run time.
 *
 * The bundle records a hash of its sources (`dist/bundle/SOURCES`); {@link ensureBundle} rebuilds it when
 * a source changed, under a file lock, so parallel tests and the bench share one fresh build.
 *
 * Usage: deno run -A tools/bundle.ts
 */
import { join, relative } from "node:path";
import { BUNDLE_DIR, REPO_ROOT } from "./production.ts";
import { sha256Hex } from "./sha256.ts";

const SOURCE_ROOTS = ["main.ts", "lib", "proto", "deno.json", "deno.lock"];
const HASH_FILE = "SOURCES";

async function* filesUnder(path: string): AsyncGenerator<string> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    yield path;
    return;
  }
  const entries = [];
  for await (const entry of Deno.readDir(path)) entries.push(entry.name);
  for (const name of entries.sort()) yield* filesUnder(join(path, name));
}

/** SHA-256 over the path and content of every source file, hex. */
export async function sourceHash(): Promise<string> {
  const parts: Uint8Array[] = [];
  const encoder = new TextEncoder();
  for (const root of SOURCE_ROOTS) {
    for await (const file of filesUnder(join(REPO_ROOT, root))) {
      parts.push(encoder.encode(`${relative(REPO_ROOT, file)}\0`), await Deno.readFile(file));
    }
  }
  return await sha256Hex(parts);
}

/** Builds the bundle into a fresh directory and swaps it in; throws with deno bundle's output on failure. */
export async function bundle(): Promise<void> {
  const hash = await sourceHash();
  const target = join(REPO_ROOT, BUNDLE_DIR);
  const staging = `${target}.tmp-${crypto.randomUUID()}`;
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform=deno", "--minify", "--code-splitting", "--outdir", staging, "main.ts"],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno bundle failed:\n${new TextDecoder().decode(stderr)}`);
    }
    await Deno.writeTextFile(join(staging, HASH_FILE), `${hash}\n`);
    await Deno.remove(target, { recursive: true }).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    await Deno.rename(staging, target);
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** The source hash the bundle was built from, or undefined when there is no bundle. */
async function bundledHash(): Promise<string | undefined> {
  const text = await Deno.readTextFile(join(REPO_ROOT, BUNDLE_DIR, HASH_FILE)).catch(() => undefined);
  return text?.trim();
}

/** Builds the bundle unless it is current; parallel callers wait on one lock and build once. */
export async function ensureBundle(): Promise<void> {
  await Deno.mkdir(join(REPO_ROOT, "dist"), { recursive: true });
  using lock = await Deno.open(join(REPO_ROOT, "dist/.bundle.lock"), { create: true, write: true });
  await lock.lock(true);
  try {
    if (await bundledHash() !== await sourceHash()) await bundle();
  } finally {
    await lock.unlock();
  }
}

if (import.meta.main) {
  try {
    await ensureBundle();
    console.error(`bundle: ${BUNDLE_DIR}/main.js (sources ${await bundledHash()})`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
