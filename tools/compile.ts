/**
 * `deno task compile`: the single-binary driver, `dist/secrets-store-csi`, compiled from the production
 * bundle (tools/bundle.ts, rebuilt when a source changed) with the production permissions and V8 flags
 * (tools/production.ts), the same configuration `deno task prod` runs under `deno run`.
 *
 * `deno compile` downloads the Deno runtime it builds on (denort) unless DENORT_BIN names a local copy;
 * DENORT_BIN is passed through. When the download is impossible (offline) this says so in one sentence
 * instead of Deno's multi-line network error, and a DENORT_BIN that is the full `deno` binary (which makes
 * `deno compile` overflow its stack) is refused before compiling. A failed compile leaves nothing behind
 * in the output directory.
 *
 * Usage: deno run -A tools/compile.ts [--output PATH]
 */
import { parseArgs } from "node:util";
import { basename, dirname, join } from "node:path";
import { ensureBundle } from "./bundle.ts";
import { BINARY, BUNDLE_DIR, BUNDLE_ENTRY, REPO_ROOT, runtimeFlags } from "./production.ts";

/** True when `deno compile`'s error output is about fetching the denort runtime (its URL names it). */
function isRuntimeDownloadFailure(stderr: string): boolean {
  return /denort/i.test(stderr);
}

/** Fails with one sentence on stderr and exit code 1. */
function fail(sentence: string): never {
  console.error(sentence);
  Deno.exit(1);
}

/** True when `path` is the full Deno CLI (it answers `--version` with "deno X (…)"); denort does not. */
async function isFullDeno(path: string): Promise<boolean> {
  const out = await new Deno.Command(path, {
    args: ["--version"],
    stdout: "piped",
    stderr: "null",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output().catch(() => undefined);
  return out !== undefined && out.success && /^deno \d+\.\d+\.\d+/.test(new TextDecoder().decode(out.stdout));
}

/** Checks DENORT_BIN; returns it, or "" (and unsets it) when it is empty. */
async function denortBin(): Promise<string> {
  const denort = Deno.env.get("DENORT_BIN") ?? "";
  if (denort === "") {
    // An empty DENORT_BIN (an unset build argument) would make deno look for a file named "".
    Deno.env.delete("DENORT_BIN");
    return "";
  }
  const info = await Deno.stat(denort).catch(() => undefined);
  if (!info?.isFile) {
    fail(`DENORT_BIN is set to ${denort}, which is not a file: point it at a denort binary.`);
  }
  if (await isFullDeno(denort)) {
    fail(
      `DENORT_BIN is set to ${denort}, which is the full deno CLI, not its runtime: point it at the denort ` +
        `binary of Deno ${Deno.version.deno} (denort-<target>.zip of the Deno release).`,
    );
  }
  return denort;
}

/** Removes what a failed `deno compile` left next to `output` (its temp file). */
async function removeLeftovers(output: string, before: Set<string>): Promise<void> {
  const dir = dirname(output);
  for await (const entry of Deno.readDir(dir)) {
    if (!before.has(entry.name) && entry.name.startsWith(basename(output))) {
      await Deno.remove(join(dir, entry.name), { recursive: true }).catch(() => {});
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { output: { type: "string" } }, strict: true });
  const output = values.output ?? join(REPO_ROOT, BINARY);
  const denort = await denortBin();
  await ensureBundle();
  await Deno.mkdir(dirname(output), { recursive: true });
  const before = new Set<string>();
  for await (const entry of Deno.readDir(dirname(output))) before.add(entry.name);

  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["compile", ...runtimeFlags(), "--include", BUNDLE_DIR, "--output", output, BUNDLE_ENTRY],
    cwd: REPO_ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  if (code === 0) {
    await Deno.stderr.write(stderr);
    return;
  }
  await removeLeftovers(output, before);
  if (denort === "" && isRuntimeDownloadFailure(text)) {
    fail(
      `deno compile could not download the Deno runtime (denort ${Deno.version.deno}) and DENORT_BIN is not set: ` +
        "set DENORT_BIN to a local denort binary of that version and run again.",
    );
  }
  await Deno.stderr.write(stderr);
  Deno.exit(code);
}

if (import.meta.main) await main();
