/**
 * `deno task prod <command> [flags]`: runs the production bundle under `deno run` exactly as the compiled
 * binary runs it (same permissions, same V8 flags, no deno.json: tools/production.ts), building the
 * bundle first when a source changed. It makes the production configuration runnable and measurable
 * where `deno compile` cannot download its runtime. SIGTERM and SIGINT are passed on to the driver; the
 * exit code is the driver's.
 */
import { ensureBundle } from "./bundle.ts";
import { prodRunArgs } from "./production.ts";

async function main(args: string[]): Promise<number> {
  await ensureBundle();
  const child = new Deno.Command(Deno.execPath(), { args: prodRunArgs(args), stdin: "inherit" }).spawn();
  const forward = (signal: Deno.Signal) => () => {
    try {
      child.kill(signal);
    } catch { /* already exited */ }
  };
  const signals = (["SIGTERM", "SIGINT"] as const).map((s) => [s, forward(s)] as const);
  for (const [signal, handler] of signals) Deno.addSignalListener(signal, handler);
  const status = await child.status;
  for (const [signal, handler] of signals) Deno.removeSignalListener(signal, handler);
  return status.code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
