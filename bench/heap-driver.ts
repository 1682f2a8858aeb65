/**
 * Bench-only: the production bundle's `main` (same arguments, same program) in a process that writes a
 * V8 heap snapshot to `$BENCH_HEAP_SNAPSHOT.<n>` on the n-th SIGUSR2 (then `<that path>.done`). Run it with
 * the production runtime flags (tools/production.ts runtimeFlags) so the heap is sized as in production.
 */
import v8 from "node:v8";

const entry = Deno.env.get("BENCH_BUNDLE_ENTRY");
const snapshotPath = Deno.env.get("BENCH_HEAP_SNAPSHOT");
if (!entry || !snapshotPath) throw new Error("set BENCH_BUNDLE_ENTRY and BENCH_HEAP_SNAPSHOT");
const { main } = await import(entry) as { main: (args: string[]) => Promise<number> };
let taken = 0;
Deno.addSignalListener("SIGUSR2", () => {
  const path = `${snapshotPath}.${++taken}`;
  v8.writeHeapSnapshot(path);
  Deno.writeTextFileSync(`${path}.done`, "");
});
Deno.exit(await main(Deno.args));
