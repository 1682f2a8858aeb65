/**
 * The driver program the end-to-end tests start as a child process: the production bundle, run as the
 * compiled binary runs it (tools/production.ts: same permissions, same V8 flags), so the tests exercise
 * what ships. Importing this module builds the bundle when a source changed (once, under a lock, for
 * every test process running in parallel).
 */
import { ensureBundle } from "../../tools/bundle.ts";
import { prodRunArgs } from "../../tools/production.ts";

await ensureBundle();

/** `deno` arguments that run the driver with `args`; `denoFlags` go before the production flags. */
export function driverArgs(args: readonly string[], denoFlags: readonly string[] = []): string[] {
  const [run, ...rest] = prodRunArgs(args);
  return [run, ...denoFlags, ...rest];
}
