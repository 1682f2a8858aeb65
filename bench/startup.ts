/**
 * Item 4, start-up: from spawning the driver (`node ...` of the production artifact) to the first successful Probe and to the
 * first successful NodePublishVolume, on fresh processes. Baselines from the same run: `deno run` of an
 * empty module (the runtime's own start and exit) and `main.ts version` (the CLI without gRPC).
 */
import { join } from "node:path";
import { connectCsi } from "../lib/csi/client.ts";
import { MAIN, REPO, type World } from "./fixture.ts";
import type { BenchOptions } from "./options.ts";
import { type Spread, spreadEach } from "./stats.ts";

/** What item 4 reports, each over fresh starts. */
export interface StartupResult {
  starts: number;
  to_socket_ms: Spread;
  to_probe_ms: Spread;
  to_first_publish_ms: Spread;
  first_publish_ms: Spread;
  baseline_deno_empty_exit_ms: Spread;
  baseline_main_version_exit_ms: Spread;
  /** to_probe over the empty deno process, per start. */
  ratio_probe_vs_deno_empty: Spread;
}

async function exitTime(args: string[]): Promise<number> {
  const t = performance.now();
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: REPO, stdout: "null", stderr: "null" })
    .output();
  if (!out.success) throw new Error(`deno ${args.join(" ")} exited with ${out.code}`);
  return performance.now() - t;
}

async function oneStart(world: World, run: number) {
  await world.ensureProvider();
  const endpoint = world.nextEndpoint();
  const socket = endpoint.slice("unix://".length);
  const t0 = performance.now();
  const child = world.spawn(world.nodeArgs(endpoint), "the driver");
  try {
    await child.waitForSocket(socket);
    const tSocket = performance.now();
    const client = connectCsi(endpoint);
    try {
      for (;;) {
        try {
          if ((await client.probe()).ready?.value !== false) break;
        } catch { /* not serving yet */ }
        await new Promise((r) => setTimeout(r, 1));
      }
      const tProbe = performance.now();
      const pod = `startup-${run}`;
      await client.nodePublishVolume(world.publishRequest(pod));
      const tPublish = performance.now();
      await client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: world.target(pod) });
      return {
        to_socket_ms: tSocket - t0,
        to_probe_ms: tProbe - t0,
        to_first_publish_ms: tPublish - t0,
        first_publish_ms: tPublish - tProbe,
      };
    } finally {
      client.close();
    }
  } finally {
    await child.stop();
  }
}

/** Starts `options.startupRuns` fresh drivers, interleaved with the baselines. */
export async function benchStartup(world: World, options: BenchOptions): Promise<StartupResult> {
  const empty = join(world.dir, "empty.ts");
  await Deno.writeTextFile(empty, "");
  await exitTime(["run", "-A", empty]); // warm the module cache, as the driver's was by earlier runs
  const runs = [];
  for (let run = 0; run < options.startupRuns; run++) {
    const start = await oneStart(world, run);
    const emptyMs = await exitTime(["run", "-A", empty]);
    const versionMs = await exitTime(["run", "-A", MAIN, "version"]);
    runs.push({
      ...start,
      baseline_deno_empty_exit_ms: emptyMs,
      baseline_main_version_exit_ms: versionMs,
      ratio_probe_vs_deno_empty: start.to_probe_ms / emptyMs,
    });
  }
  return { starts: options.startupRuns, ...spreadEach(runs, 2) };
}
