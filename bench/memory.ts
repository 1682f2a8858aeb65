/**
 * Item 3, memory: resident memory (/proc/<pid>/status) of the driver process, for the production
 * artifact (the bundle run as the compiled binary runs it) with `deno run -A main.ts` beside it, each
 * standalone (`--spc-dir`) and in cluster mode (`--kubeconfig` against the API stand-in):
 *
 * - idle after start-up, and with `volumes` volumes mounted (median over runs, fresh driver each run);
 * - the series over many sequential publish/unpublish cycles and its peak (standalone: in cluster mode
 *   every cycle waits for the client-side API rate limit, so it gets `clusterCycles`);
 * - the artifact's 20,000 cycles inside a memory cgroup at the DaemonSet's limit (cgroup usage and peak,
 *   OOM kills), the cluster-size figure (idle and mounted with 1,000 and 10,000 SecretProviderClasses),
 *   and a heap-snapshot diff that says what the RSS growth over the cycles is;
 * - what each imported module adds, and what V8 flags change (each measured on a fresh artifact).
 */
import { join } from "node:path";
import { BUNDLE_ENTRY, DAEMONSET_MEMORY_LIMIT_MIB, REPO_ROOT, runtimeFlags } from "../tools/production.ts";
import { createMemoryCgroup } from "../tests/support/memory-cgroup.ts";
import { type BenchCluster, startBenchCluster } from "./cluster.ts";
import {
  type Driver,
  type DriverStart,
  pool,
  PRODUCTION_V8_FLAGS,
  type Program,
  REPO,
  type World,
} from "./fixture.ts";
import { diffHeapSnapshots, type HeapDiff } from "./heap.ts";
import type { BenchOptions } from "./options.ts";
import type { ProcessMemory } from "./proc.ts";
import { driverCycles } from "./publish.ts";
import { mib, percentile, type Spread, spread } from "./stats.ts";

/** RSS figures of one program in one mode, MiB. */
export interface ModeMemory {
  what: string;
  idle_rss_mib: Spread;
  idle_anon_mib: Spread;
  idle_file_mib: Spread;
  mounted_rss_mib: Spread;
  mounted_anon_mib: Spread;
  mounted_volumes: number;
  cycles: CycleSeries;
}

/** RSS over sequential publish/unpublish cycles. */
export interface CycleSeries {
  count: number;
  /** RSS after the warm-up (a burst of `volumes` and 200 cycles), before the counted cycles. */
  before_rss_mib: number;
  after_rss_mib: number;
  growth_mib: number;
  /** VmHWM: the highest RSS of the process's life. */
  peak_rss_mib: number;
  /** RSS every tenth of the cycles. */
  series_rss_mib: number[];
  publish_p50_ms: number;
}

/** One V8-flag variant of the standalone artifact. */
export interface VariantMemory {
  variant: string;
  idle_rss_mib: number;
  mounted_rss_mib: number;
  after_cycles_rss_mib: number;
  publish_p50_ms: number;
  to_socket_ms: number;
}

/** The cluster-size figure: the artifact in cluster mode with `spcs` classes in the cluster. */
export interface ClusterSize {
  spcs: number;
  idle_rss_mib: number;
  mounted_rss_mib: number;
  mounted_volumes: number;
}

/** The artifact's cycles inside a memory cgroup at the DaemonSet's limit. */
export interface CgroupRun {
  limit_mib: number;
  cgroup_version: number;
  mode: string;
  cycles: number;
  survived: boolean;
  oom_kills: number;
  cgroup_peak_mib: number;
  cgroup_after_mib: number;
  rss_peak_mib: number;
  /** cgroup usage (RSS and the volumes' tmpfs pages) every tenth of the cycles. */
  series_cgroup_mib: number[];
  publish_p50_ms: number;
}

/** What item 3 reports. */
export interface MemoryResult {
  production_v8_flags: readonly string[];
  artifact: { standalone: ModeMemory; cluster: ModeMemory };
  main_ts: { standalone: ModeMemory; cluster: ModeMemory };
  cluster_size: ClusterSize[];
  cgroup: CgroupRun;
  heap_growth: HeapDiff & { cycles: number; what: string } | { skipped: string };
  modules: { step: string; ms: number; rss_mib: number; anon_mib: number; heap_used_mib: number }[];
  variants: { cycles: number; results: VariantMemory[] };
}

const SETTLE_MS = 1000;

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

const podsFor = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

async function mountAll(world: World, driver: Driver, pods: string[]): Promise<void> {
  await pool(pods, 32, (pod) => driver.client.nodePublishVolume(world.publishRequest(pod)));
}

async function unmountAll(world: World, driver: Driver, pods: string[]): Promise<void> {
  await pool(
    pods,
    32,
    (pod) => driver.client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: world.target(pod) }),
  );
}

/** Idle and mounted memory on a fresh driver. */
async function idleAndMounted(
  world: World,
  start: DriverStart,
  volumes: number,
  settleMs: number,
  tag: string,
) {
  const driver = await world.startDriver(start);
  try {
    await driver.client.probe();
    await settle(settleMs);
    const idle = await driver.child.memory();
    const pods = podsFor(tag, volumes);
    await mountAll(world, driver, pods);
    await settle(settleMs);
    const mounted = await driver.child.memory();
    await unmountAll(world, driver, pods);
    return { idle, mounted };
  } finally {
    await driver.stop();
  }
}

/** Warms a driver up (a burst of `volumes`, 200 cycles), then runs `cycles`, sampling `sample` every tenth. */
async function cycleSeries<T>(
  world: World,
  driver: Driver,
  volumes: number,
  cycles: number,
  tag: string,
  sample: () => Promise<T>,
): Promise<{ before: T; series: T[]; publish: number[] }> {
  const pods = podsFor(`${tag}-warm`, volumes);
  await mountAll(world, driver, pods);
  await unmountAll(world, driver, pods);
  await driverCycles(world, driver, Math.min(200, cycles), `${tag}-warm`);
  const before = await sample();
  const series: T[] = [];
  const publish: number[] = [];
  const step = Math.max(1, Math.floor(cycles / 10));
  for (let done = 0; done < cycles; done += step) {
    const samples = await driverCycles(world, driver, Math.min(step, cycles - done), `${tag}-cycle`);
    publish.push(...samples.publish);
    series.push(await sample());
  }
  return { before, series, publish };
}

async function modeMemory(
  world: World,
  options: BenchOptions,
  what: string,
  start: DriverStart,
  cycles: number,
  tag: string,
): Promise<ModeMemory> {
  const settleMs = options.quick ? 100 : SETTLE_MS;
  const runs: { idle: ProcessMemory; mounted: ProcessMemory }[] = [];
  for (let run = 0; run < options.runs; run++) {
    runs.push(await idleAndMounted(world, start, options.volumes, settleMs, `${tag}-${run}`));
  }
  const driver = await world.startDriver(start);
  let series: CycleSeries;
  try {
    const r = await cycleSeries(world, driver, options.volumes, cycles, tag, () => driver.child.memory());
    await settle(settleMs);
    const after = await driver.child.memory();
    series = {
      count: cycles,
      before_rss_mib: mib(r.before.rss),
      after_rss_mib: mib(after.rss),
      growth_mib: mib(after.rss - r.before.rss),
      peak_rss_mib: mib(after.peak),
      series_rss_mib: r.series.map((m) => mib(m.rss)),
      publish_p50_ms: Number(percentile(r.publish, 50).toFixed(3)),
    };
  } finally {
    await driver.stop();
  }
  const m = (key: "idle" | "mounted", field: keyof ProcessMemory) =>
    spread(runs.map((r) => mib(r[key][field])), 2);
  return {
    what,
    idle_rss_mib: m("idle", "rss"),
    idle_anon_mib: m("idle", "anon"),
    idle_file_mib: m("idle", "file"),
    mounted_rss_mib: m("mounted", "rss"),
    mounted_anon_mib: m("mounted", "anon"),
    mounted_volumes: options.volumes,
    cycles: series,
  };
}

/** Both modes of one program. */
async function programMemory(world: World, options: BenchOptions, program: Program, cluster: BenchCluster) {
  const name = program === "artifact"
    ? "the production bundle as compiled (deno task prod)"
    : "deno run -A main.ts";
  return {
    standalone: await modeMemory(
      world,
      options,
      `${name} node --spc-dir`,
      { program },
      program === "artifact" ? options.memoryCycles : options.sourceCycles,
      `mem-${program}-standalone`,
    ),
    cluster: await modeMemory(
      world,
      options,
      `${name} node --kubeconfig (API stand-in; 3 API calls per cycle at the client's 20 requests/s)`,
      { program, source: cluster.source },
      options.clusterCycles,
      `mem-${program}-cluster`,
    ),
  };
}

/** The artifact in cluster mode with 0 and `sizes` more SecretProviderClasses in the cluster. */
async function clusterSizes(world: World, options: BenchOptions): Promise<ClusterSize[]> {
  const results: ClusterSize[] = [];
  for (const spcs of [0, ...options.clusterSizes]) {
    const cluster = await startBenchCluster(world, spcs);
    try {
      const settleMs = options.quick ? 100 : SETTLE_MS;
      const { idle, mounted } = await idleAndMounted(
        world,
        { source: cluster.source },
        options.volumes,
        settleMs,
        `size-${spcs}`,
      );
      results.push({
        spcs,
        idle_rss_mib: mib(idle.rss),
        mounted_rss_mib: mib(mounted.rss),
        mounted_volumes: options.volumes,
      });
    } finally {
      await cluster.close();
    }
  }
  return results;
}

/** The standalone artifact's `memoryCycles` inside a memory cgroup at the DaemonSet's limit. */
async function cgroupRun(world: World, options: BenchOptions): Promise<CgroupRun> {
  const cgroup = await createMemoryCgroup(DAEMONSET_MEMORY_LIMIT_MIB * 1024 * 1024);
  try {
    const driver = await world.startDriver({ wrap: cgroup.wrap });
    let survived = true;
    let r;
    try {
      r = await cycleSeries(
        world,
        driver,
        options.volumes,
        options.memoryCycles,
        "cgroup",
        () => cgroup.read(),
      );
    } catch {
      survived = false;
    }
    const memory = await cgroup.read();
    const rss = await driver.child.memory().catch(() => undefined);
    survived &&= driver.child.exitCode === undefined;
    await driver.stop();
    return {
      limit_mib: DAEMONSET_MEMORY_LIMIT_MIB,
      cgroup_version: cgroup.version,
      mode: "standalone artifact, sequential cycles",
      cycles: options.memoryCycles,
      survived,
      oom_kills: memory.oomKills,
      cgroup_peak_mib: mib(memory.peak),
      cgroup_after_mib: mib(memory.usage),
      rss_peak_mib: rss ? mib(rss.peak) : NaN,
      series_cgroup_mib: r?.series.map((m) => mib(m.usage)) ?? [],
      publish_p50_ms: r ? Number(percentile(r.publish, 50).toFixed(3)) : NaN,
    };
  } finally {
    await cgroup.remove();
  }
}

/** Waits for `<path>.done`, which bench/heap-driver.ts writes after a snapshot. */
async function snapshotDone(path: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await Deno.lstat(`${path}.done`).then(() => true, () => false)) return;
    await settle(50);
  }
  throw new Error(`no heap snapshot at ${path} after 60 s`);
}

/**
 * Heap snapshots of the standalone artifact after the warm-up and after `heapCycles` more cycles: what
 * grew (a leak shows as a kind whose count grows with the cycles; heap sizing as no such kind).
 */
async function heapGrowth(world: World, options: BenchOptions): Promise<MemoryResult["heap_growth"]> {
  const base = join(world.dir, "growth.heapsnapshot");
  const driver = await world.startDriver({
    script: join(REPO, "bench/heap-driver.ts"),
    program: "main.ts",
    env: { BENCH_HEAP_SNAPSHOT: base, BENCH_BUNDLE_ENTRY: `${REPO_ROOT}${BUNDLE_ENTRY}` },
    runtime: runtimeFlags(),
  });
  try {
    await cycleSeries(world, driver, options.volumes, 0, "heap", () => Promise.resolve(0));
    Deno.kill(driver.child.pid, "SIGUSR2");
    await snapshotDone(`${base}.1`);
    await driverCycles(world, driver, options.heapCycles, "heap-cycles");
    Deno.kill(driver.child.pid, "SIGUSR2");
    await snapshotDone(`${base}.2`);
  } finally {
    await driver.stop();
  }
  const diff = await diffHeapSnapshots(`${base}.1`, `${base}.2`);
  for (const n of [1, 2]) await Deno.remove(`${base}.${n}`);
  return {
    what:
      "bench/heap-driver.ts: the bundle's main with the production flags, standalone; snapshot after the " +
      `warm-up and after ${options.heapCycles} more cycles (V8 collects garbage before each snapshot)`,
    cycles: options.heapCycles,
    ...diff,
  };
}

/** Runs bench/module-cost.ts in a fresh process. */
async function moduleCosts(): Promise<MemoryResult["modules"]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", join(REPO, "bench/module-cost.ts")],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`module-cost.ts failed: ${new TextDecoder().decode(out.stderr)}`);
  const steps = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    step: string;
    ms: number;
    rss: number;
    anon: number;
    heapUsed: number;
  }[];
  return steps.map((s) => ({
    step: s.step,
    ms: Number(s.ms.toFixed(1)),
    rss_mib: mib(s.rss),
    anon_mib: mib(s.anon),
    heap_used_mib: mib(s.heapUsed),
  }));
}

/** V8 flags tried on the standalone artifact: the evidence behind tools/production.ts's choice. */
export const VARIANTS: { variant: string; v8Flags: string[] }[] = [
  { variant: "no V8 flags", v8Flags: [] },
  { variant: `production: ${PRODUCTION_V8_FLAGS.join(" ")}`, v8Flags: [...PRODUCTION_V8_FLAGS] },
  { variant: "--max-semi-space-size=1", v8Flags: ["--max-semi-space-size=1"] },
  { variant: "--optimize-for-size", v8Flags: ["--optimize-for-size"] },
  {
    variant: "--max-semi-space-size=1 --max-old-space-size=64",
    v8Flags: ["--max-semi-space-size=1", "--max-old-space-size=64"],
  },
  { variant: "--lite-mode", v8Flags: ["--lite-mode"] },
];

async function variantMemory(world: World, options: BenchOptions, v: (typeof VARIANTS)[number], i: number) {
  const t0 = performance.now();
  const driver = await world.startDriver({ v8Flags: v.v8Flags });
  const toSocket = performance.now() - t0;
  try {
    await driver.client.probe();
    await settle(options.quick ? 100 : SETTLE_MS);
    const idle = await driver.child.memory();
    const pods = podsFor(`variant-${i}`, options.volumes);
    await mountAll(world, driver, pods);
    const mounted = await driver.child.memory();
    await unmountAll(world, driver, pods);
    const samples = await driverCycles(world, driver, options.variantCycles, `variant-${i}`);
    const after = await driver.child.memory();
    return {
      variant: v.variant,
      idle_rss_mib: mib(idle.rss),
      mounted_rss_mib: mib(mounted.rss),
      after_cycles_rss_mib: mib(after.rss),
      publish_p50_ms: Number(percentile(samples.publish, 50).toFixed(3)),
      to_socket_ms: Number(toSocket.toFixed(1)),
    };
  } finally {
    await driver.stop();
  }
}

/** Runs item 3. */
export async function benchMemory(world: World, options: BenchOptions): Promise<MemoryResult> {
  const cluster = await startBenchCluster(world);
  let artifact, mainTs;
  try {
    artifact = await programMemory(world, options, "artifact", cluster);
    mainTs = await programMemory(world, options, "main.ts", cluster);
  } finally {
    await cluster.close();
  }
  const sizes = await clusterSizes(world, options);
  const cgroup = await cgroupRun(world, options);
  const heap = await heapGrowth(world, options).catch((err) => ({
    skipped: `heap snapshots failed: ${err instanceof Error ? err.message : err}`,
  }));
  const results: VariantMemory[] = [];
  for (const [i, v] of VARIANTS.entries()) results.push(await variantMemory(world, options, v, i));
  return {
    production_v8_flags: PRODUCTION_V8_FLAGS,
    artifact,
    main_ts: mainTs,
    cluster_size: sizes,
    cgroup,
    heap_growth: heap,
    modules: await moduleCosts(),
    variants: { cycles: options.variantCycles, results },
  };
}
