/**
 * `deno task compile`: builds the single-binary driver, `dist/secrets-store-csi`, with `deno compile`.
 *
 * `deno compile` downloads the Deno runtime it builds on (denort) unless DENORT_BIN names a local copy;
 * DENORT_BIN is passed through. When the download is impossible (offline) this says so in one sentence
 * instead of Deno's multi-line network error. Nothing else is needed at run time: the .proto files are
 * imported as text (lib/proto.ts), so they are part of the module graph that `deno compile` embeds.
 *
 * Usage: deno run -A tools/compile.ts [--output PATH]
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url);
const DEFAULT_OUTPUT = "dist/secrets-store-csi";

/** True when `deno compile`'s error output is about fetching the denort runtime (its URL names it). */
function isRuntimeDownloadFailure(stderr: string): boolean {
  return /denort/i.test(stderr);
}

/** Fails with one sentence on stderr and exit code 1. */
function fail(sentence: string): never {
  console.error(sentence);
  Deno.exit(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { output: { type: "string" } }, strict: true });
  const output = values.output ?? DEFAULT_OUTPUT;
  const denort = Deno.env.get("DENORT_BIN") ?? "";
  if (denort === "") {
    // An empty DENORT_BIN (an unset build argument) would make deno look for a file named "".
    Deno.env.delete("DENORT_BIN");
  } else {
    const info = await Deno.stat(denort).catch(() => undefined);
    if (!info?.isFile) {
      fail(`DENORT_BIN is set to ${denort}, which is not a file: point it at a denort binary.`);
    }
  }

  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "-A", "--output", output, "main.ts"],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  if (code === 0) {
    await Deno.stderr.write(stderr);
    return;
  }
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
