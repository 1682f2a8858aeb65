/**
 * `deno task bench`: every benchmark of the driver on this machine (as root: it mounts tmpfs). Prints one
 * JSON document on stdout and a short table on stderr; `--out FILE` also writes the JSON to FILE, `--note
 * TEXT` records what changed since the previous run in it.
 * `--quick` (or BENCH_QUICK=1) runs everything with tiny counts, for the smoke test. Counts can be
 * overridden with BENCH_* variables (bench/options.ts). The bench measures and reports; it never asserts.
 */
import { parseArgs } from "node:util";
import { benchBurst } from "./burst.ts";
import { World } from "./fixture.ts";
import { describeMachine } from "./machine.ts";
import { benchMemory, type MemoryResult } from "./memory.ts";
import { benchOptions } from "./options.ts";
import { benchProvider } from "./provider.ts";
import { benchPublishLatency } from "./publish.ts";
import { benchRepublish } from "./republish.ts";
import { benchSoak } from "./soak.ts";
import { checkTargets, table } from "./report.ts";
import { benchStages, mountinfoScaling } from "./stages.ts";
import { benchStartup } from "./startup.ts";
import type { Spread } from "./stats.ts";
import { ensureBundle } from "../tools/bundle.ts";

/** The memory rows of the table: each program and mode, then the cluster sizes and the cgroup run. */
function memoryRows(memory: MemoryResult): [string, Spread | number][] {
  const rows: [string, Spread | number][] = [];
  for (const [program, modes] of [["artifact", memory.artifact], ["main.ts", memory.main_ts]] as const) {
    for (const [mode, m] of Object.entries(modes)) {
      rows.push(
        [`${program} ${mode} idle RSS MiB`, m.idle_rss_mib],
        [`${program} ${mode} RSS MiB at ${m.mounted_volumes} mounts`, m.mounted_rss_mib],
        [`${program} ${mode} peak RSS MiB over ${m.cycles.count} cycles`, m.cycles.peak_rss_mib],
      );
    }
  }
  for (const s of memory.cluster_size) {
    rows.push([
      `artifact cluster, ${s.spcs} SPCs: idle / ${s.mounted_volumes} mounts RSS MiB`,
      s.mounted_rss_mib,
    ]);
  }
  rows.push([
    `cgroup ${memory.cgroup.limit_mib} MiB: peak MiB over ${memory.cgroup.cycles} cycles`,
    memory.cgroup.cgroup_peak_mib,
  ]);
  return rows;
}
import { benchUpstream, upstreamBenchOptions } from "./upstream.ts";

/** Progress on stderr, so stdout stays one JSON document. */
function progress(text: string): void {
  console.error(`[bench] ${text}`);
}

async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  progress(`${name}...`);
  const result = await work();
  progress(`${name} done in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  return result;
}

async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean" },
      out: { type: "string" },
      note: { type: "string" },
      upstream: { type: "boolean" },
    },
  });
  if (Deno.uid() !== 0) throw new Error("the bench mounts tmpfs and needs root: run it as root");
  const quick = values.quick === true || Deno.env.get("BENCH_QUICK") === "1";
  const options = benchOptions(quick, (name) => Deno.env.get(name));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  await ensureBundle();
  const machine = await describeMachine();
  const world = await World.create();
  try {
    // The artifact (the production bundle as compiled) and, beside it, `deno run -A main.ts`.
    const latency = async (program: "artifact" | "main.ts") => {
      const driver = await world.startDriver({ program });
      try {
        return {
          publish: await timed(
            `1. publish latency (${program})`,
            () => benchPublishLatency(world, driver, options),
          ),
          burst: await timed(`2. burst (${program})`, () => benchBurst(world, driver, options)),
        };
      } finally {
        await driver.stop();
      }
    };
    const { publish, burst } = await latency("artifact");
    const { publish: publishMainTs, burst: burstMainTs } = await latency("main.ts");
    const stages = await timed("1b. publish stage breakdown", async () => ({
      ...await benchStages(world, options),
      mountinfo_scaling: [
        await mountinfoScaling(world, 0, options.stageCycles),
        await mountinfoScaling(world, options.volumes, options.stageCycles),
      ],
    }));
    const startup = await timed("4. start-up", () => benchStartup(world, options));
    const republish = await timed("5. republish", () => benchRepublish(world, options));
    const provider = await timed("6. provider client", () => benchProvider(world, options));
    const memory = await timed("3. memory", () => benchMemory(world, options));
    const soak = await timed("7. soak", () => benchSoak(options.soakCycles, options.soakWarmup, 1));
    await world.ensureProvider();
    // --upstream: the same figures for upstream v1.6.0 and this driver against a real API server (upstream.ts).
    const upstreamComparison = values.upstream
      ? await timed(
        "8. upstream column",
        () => benchUpstream(upstreamBenchOptions(quick, (n) => Deno.env.get(n))),
      )
      : undefined;

    const targets = checkTargets({ publish, burst, publishMainTs, burstMainTs, memory, startup });
    const result = {
      bench: "secrets-store-csi",
      started_at: startedAt,
      // What changed since the previous recorded run (--note), kept with the figures.
      what_changed: values.note ?? "",
      duration_s: Number(((performance.now() - started) / 1000).toFixed(1)),
      quick,
      options,
      machine,
      publish_latency: { ...publish, stage_breakdown: stages },
      burst,
      publish_latency_main_ts: publishMainTs,
      burst_main_ts: burstMainTs,
      memory,
      startup,
      republish,
      provider_client: provider,
      soak,
      upstream_comparison: upstreamComparison,
      targets,
      provider_crashes: world.providerCrashes,
    };
    const json = JSON.stringify(result, null, 2);
    console.log(json);
    if (values.out) await Deno.writeTextFile(values.out, json + "\n");
    console.error(table([
      ["publish p50 ms", publish.publish_p50_ms],
      ["publish p99 ms", publish.publish_p99_ms],
      ["unpublish p50 ms", publish.unpublish_p50_ms],
      ["baseline (exec mount) publish p50 ms", publish.baseline.publish_p50_ms],
      ["ratio vs exec mount", publish.ratio_vs_exec_mount],
      [`burst publishes/s (${burst.volumes}, ${burst.in_flight} in flight)`, burst.publishes_per_s],
      ["burst publish p99 ms", burst.publish_p99_ms],
      ["main.ts publish p50 ms", publishMainTs.publish_p50_ms],
      ["main.ts: burst publishes/s", burstMainTs.publishes_per_s],
      ...memoryRows(memory),
      ["start to Probe ms", startup.to_probe_ms],
      ["start to first publish ms", startup.to_first_publish_ms],
      ["republish pass, rotation off, ms/volume", republish.rotation_off.per_volume_ms],
      ["provider Mount round trips/s at 1 MiB", provider.mount_round_trips_per_s_1mib],
      [`soak: ${soak.cycles} cycles with faults, violations`, soak.violations.length],
      ["soak: mounts left", soak.mounts_left],
      ["soak: open descriptors growth", soak.fds.growth],
      ["soak: RSS growth MiB after warm-up", soak.growth_mib.rss_after_warmup],
      ["provider crashes during the run", world.providerCrashes.length],
    ], targets));
  } finally {
    await world.close();
  }
}

if (import.meta.main) {
  try {
    await run(Deno.args);
  } catch (err) {
    console.error(`bench failed: ${err instanceof Error ? err.stack ?? err.message : err}`);
    Deno.exit(1);
  }
}
