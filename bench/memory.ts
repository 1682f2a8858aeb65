/**
 * Item 3, memory: resident memory (/proc/<pid>/status) of the driver process idle after start-up, with
 * `volumes` volumes mounted, and over `memoryCycles` publish/unpublish cycles; standalone (`main.ts node`)
 * and with the Kubernetes client loaded (bench/kube-driver.ts against the API stand-in). Then where it goes:
 * a heap snapshot at `volumes` mounts, what each imported module adds, and what V8 flags and malloc
 * settings change (each measured on a fresh driver).
 */
import { join } from "node:path";
import { startApiServer } from "../tests/support/apiserver.ts";
import { type Driver, type DriverStart, pool, REPO, type World } from "./fixture.ts";
import { type HeapSummary, summarizeHeapSnapshot } from "./heap.ts";
import type { BenchOptions } from "./options.ts";
import type { ProcessMemory } from "./proc.ts";
import { driverCycles } from "./publish.ts";
import { mib, percentile, type Spread, spread } from "./stats.ts";

const KUBE_DRIVER = join(REPO, "bench/kube-driver.ts");

/** RSS figures of one mode, MiB. */
export interface ModeMemory {
  what: string;
  idle_rss_mib: Spread;
  idle_anon_mib: Spread;
  idle_file_mib: Spread;
  mounted_rss_mib: Spread;
  mounted_anon_mib: Spread;
  mounted_volumes: number;
  cycles: {
    count: number;
    /** RSS after the warm-up (a burst of `volumes` and 200 cycles), before the counted cycles. */
    before_rss_mib: number;
    after_rss_mib: number;
    growth_mib: number;
    peak_rss_mib: number;
    /** RSS every tenth of the cycles. */
    series_rss_mib: number[];
  };
  /** Heap snapshot at `volumes` mounts (written after the RSS figures were taken). */
  heap_at_mounted: HeapSummary | { skipped: string };
}

/** One V8-flag or allocator variant of the standalone driver. */
export interface VariantMemory {
  variant: string;
  idle_rss_mib: number;
  mounted_rss_mib: number;
  after_cycles_rss_mib: number;
  publish_p50_ms: number;
  to_socket_ms: number;
}

/** What item 3 reports. */
export interface MemoryResult {
  standalone: ModeMemory;
  kubernetes_client: ModeMemory;
  modules: { step: string; ms: number; rss_mib: number; anon_mib: number; heap_used_mib: number }[];
  variants: { cycles: number; results: VariantMemory[] };
}

const SETTLE_MS = 1000;

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function ready(driver: Driver): Promise<void> {
  await driver.client.probe();
}

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

/** Idle and mounted RSS on a fresh driver. */
async function idleAndMounted(
  world: World,
  start: DriverStart,
  volumes: number,
  settleMs: number,
  tag: string,
) {
  const driver = await world.startDriver(start);
  try {
    await ready(driver);
    await settle(settleMs);
    const idle = await driver.child.memory();
    const pods = Array.from({ length: volumes }, (_, i) => `${tag}-${i}`);
    await mountAll(world, driver, pods);
    await settle(settleMs);
    const mounted = await driver.child.memory();
    await unmountAll(world, driver, pods);
    return { idle, mounted };
  } finally {
    await driver.stop();
  }
}

async function heapAtMounted(
  world: World,
  start: DriverStart,
  volumes: number,
  tag: string,
): Promise<HeapSummary> {
  const path = join(world.dir, `${tag}.heapsnapshot`);
  const driver = await world.startDriver({
    ...start,
    script: KUBE_DRIVER,
    env: { ...start.env, BENCH_HEAP_SNAPSHOT: path },
  });
  const pods = Array.from({ length: volumes }, (_, i) => `${tag}-heap-${i}`);
  try {
    await mountAll(world, driver, pods);
    Deno.kill(driver.child.pid, "SIGUSR2");
    for (let i = 0; i < 600 && !await Deno.lstat(`${path}.done`).then(() => true, () => false); i++) {
      await settle(50);
    }
    await unmountAll(world, driver, pods);
  } finally {
    await driver.stop();
  }
  const summary = await summarizeHeapSnapshot(path);
  await Deno.remove(path);
  return summary;
}

async function modeMemory(
  world: World,
  options: BenchOptions,
  what: string,
  start: DriverStart,
  tag: string,
) {
  const settleMs = options.quick ? 100 : SETTLE_MS;
  const runs: { idle: ProcessMemory; mounted: ProcessMemory }[] = [];
  for (let run = 0; run < options.runs; run++) {
    runs.push(await idleAndMounted(world, start, options.volumes, settleMs, `${tag}-${run}`));
  }

  const driver = await world.startDriver(start);
  let cycles: ModeMemory["cycles"];
  try {
    const pods = Array.from({ length: options.volumes }, (_, i) => `${tag}-warm-${i}`);
    await mountAll(world, driver, pods);
    await unmountAll(world, driver, pods);
    await driverCycles(world, driver, Math.min(200, options.memoryCycles), `${tag}-warm`);
    const before = await driver.child.memory();
    const series: number[] = [];
    const step = Math.max(1, Math.floor(options.memoryCycles / 10));
    for (let done = 0; done < options.memoryCycles; done += step) {
      await driverCycles(world, driver, Math.min(step, options.memoryCycles - done), `${tag}-cycle`);
      series.push(mib((await driver.child.memory()).rss));
    }
    await settle(settleMs);
    const after = await driver.child.memory();
    cycles = {
      count: options.memoryCycles,
      before_rss_mib: mib(before.rss),
      after_rss_mib: mib(after.rss),
      growth_mib: mib(after.rss - before.rss),
      peak_rss_mib: mib(after.peak),
      series_rss_mib: series,
    };
  } finally {
    await driver.stop();
  }
  const heap = await heapAtMounted(world, start, options.volumes, tag).catch((err) => ({
    skipped: `heap snapshot failed: ${err instanceof Error ? err.message : err}`,
  }));
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
    cycles,
    heap_at_mounted: heap,
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

/** V8 flags and allocator settings tried on the standalone driver (main.ts unchanged). */
export const VARIANTS: { variant: string; start: DriverStart }[] = [
  { variant: "default", start: {} },
  { variant: "--max-semi-space-size=1", start: { v8Flags: ["--max-semi-space-size=1"] } },
  { variant: "--optimize-for-size", start: { v8Flags: ["--optimize-for-size"] } },
  { variant: "--lite-mode", start: { v8Flags: ["--lite-mode"] } },
  { variant: "--single-threaded", start: { v8Flags: ["--single-threaded"] } },
  { variant: "MALLOC_ARENA_MAX=2", start: { env: { MALLOC_ARENA_MAX: "2" } } },
  {
    variant: "--max-semi-space-size=1 --optimize-for-size + MALLOC_ARENA_MAX=2",
    start: { v8Flags: ["--max-semi-space-size=1", "--optimize-for-size"], env: { MALLOC_ARENA_MAX: "2" } },
  },
];

async function variantMemory(world: World, options: BenchOptions, v: (typeof VARIANTS)[number], i: number) {
  const t0 = performance.now();
  const driver = await world.startDriver(v.start);
  const toSocket = performance.now() - t0;
  try {
    await ready(driver);
    await settle(options.quick ? 100 : SETTLE_MS);
    const idle = await driver.child.memory();
    const pods = Array.from({ length: options.volumes }, (_, k) => `variant-${i}-${k}`);
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
  const standalone = await modeMemory(
    world,
    options,
    "main.ts node (standalone, --spc-dir)",
    {},
    "mem-standalone",
  );
  const api = await startApiServer();
  let kubernetes: ModeMemory;
  try {
    const kubeconfig = join(world.dir, "kubeconfig.yaml");
    await Deno.writeTextFile(kubeconfig, api.kubeconfig());
    kubernetes = await modeMemory(
      world,
      options,
      "bench/kube-driver.ts: main.ts node plus @kubernetes/client-node loaded, KubeConfig + CoreV1Api + " +
        "CustomObjectsApi, 2 lists and 1 watch open against the API stand-in (the driver's own Kubernetes " +
        "mode does not exist yet)",
      { script: KUBE_DRIVER, env: { BENCH_KUBECONFIG: kubeconfig } },
      "mem-kube",
    );
  } finally {
    await api.close();
  }
  const results: VariantMemory[] = [];
  for (const [i, v] of VARIANTS.entries()) results.push(await variantMemory(world, options, v, i));
  return {
    standalone,
    kubernetes_client: kubernetes,
    modules: await moduleCosts(),
    variants: { cycles: options.variantCycles, results },
  };
}
