/**
 * Counts of every benchmark: the full run (`deno task bench`, well over half an hour on 2 shared cores) and the smoke run
 * (`--quick` or BENCH_QUICK=1, seconds). Each count can be overridden by an environment variable.
 */

/** How much work each benchmark does. */
export interface BenchOptions {
  quick: boolean;
  /** Repetitions behind each median/min/max (BENCH_RUNS). */
  runs: number;
  /** Sequential publish/unpublish cycles per latency run, ours and the exec-mount baseline (BENCH_PUBLISH_CYCLES). */
  publishCycles: number;
  /** Volumes of one burst (BENCH_BURST_VOLUMES) and how many are in flight (BENCH_BURST_IN_FLIGHT). */
  burstVolumes: number;
  burstInFlight: number;
  /** Volumes kept mounted for the memory and republish figures (BENCH_VOLUMES). */
  volumes: number;
  /** Publish/unpublish cycles of the artifact's memory-growth and cgroup runs (BENCH_CYCLES). */
  memoryCycles: number;
  /** The same for `deno run main.ts` (BENCH_SOURCE_CYCLES). */
  sourceCycles: number;
  /** Cycles in cluster mode, where each waits for the API rate limit (BENCH_CLUSTER_CYCLES). */
  clusterCycles: number;
  /** SecretProviderClasses in the cluster for the cluster-size figure, besides none (fixed). */
  clusterSizes: number[];
  /** Cycles between the two heap snapshots (BENCH_HEAP_CYCLES). */
  heapCycles: number;
  /** Publish/unpublish cycles per V8-flag variant (BENCH_VARIANT_CYCLES). */
  variantCycles: number;
  /** Fresh driver starts measured (BENCH_STARTUP_RUNS). */
  startupRuns: number;
  /** Provider Mount calls per response size (BENCH_PROVIDER_CALLS). */
  providerCalls: number;
  /** Sequential cycles of the in-process stage breakdown (BENCH_STAGE_CYCLES). */
  stageCycles: number;
  /** Publish/unpublish cycles of the soak with injected provider faults (BENCH_SOAK_CYCLES), after a warm-up (BENCH_SOAK_WARMUP). */
  soakCycles: number;
  soakWarmup: number;
}

const FULL: Omit<BenchOptions, "quick"> = {
  runs: 5,
  publishCycles: 1000,
  burstVolumes: 110,
  burstInFlight: 32,
  volumes: 110,
  memoryCycles: 20_000,
  sourceCycles: 20_000,
  clusterCycles: 300,
  clusterSizes: [1_000, 10_000],
  heapCycles: 5_000,
  variantCycles: 2_000,
  startupRuns: 10,
  providerCalls: 100,
  stageCycles: 500,
  soakCycles: 20_000,
  soakWarmup: 2_000,
};

const QUICK: Omit<BenchOptions, "quick"> = {
  runs: 2,
  publishCycles: 20,
  burstVolumes: 12,
  burstInFlight: 4,
  volumes: 6,
  memoryCycles: 30,
  sourceCycles: 30,
  clusterCycles: 10,
  clusterSizes: [20],
  heapCycles: 10,
  variantCycles: 10,
  startupRuns: 2,
  providerCalls: 3,
  stageCycles: 10,
  soakCycles: 60,
  soakWarmup: 10,
};

const ENV: Record<keyof Omit<BenchOptions, "quick" | "clusterSizes">, string> = {
  runs: "BENCH_RUNS",
  publishCycles: "BENCH_PUBLISH_CYCLES",
  burstVolumes: "BENCH_BURST_VOLUMES",
  burstInFlight: "BENCH_BURST_IN_FLIGHT",
  volumes: "BENCH_VOLUMES",
  memoryCycles: "BENCH_CYCLES",
  sourceCycles: "BENCH_SOURCE_CYCLES",
  clusterCycles: "BENCH_CLUSTER_CYCLES",
  heapCycles: "BENCH_HEAP_CYCLES",
  variantCycles: "BENCH_VARIANT_CYCLES",
  startupRuns: "BENCH_STARTUP_RUNS",
  providerCalls: "BENCH_PROVIDER_CALLS",
  stageCycles: "BENCH_STAGE_CYCLES",
  soakCycles: "BENCH_SOAK_CYCLES",
  soakWarmup: "BENCH_SOAK_WARMUP",
};

/** The counts for this run: quick or full defaults, then BENCH_* overrides (positive integers). */
export function benchOptions(quick: boolean, env: (name: string) => string | undefined): BenchOptions {
  const options: BenchOptions = { quick, ...(quick ? QUICK : FULL) };
  for (const [key, name] of Object.entries(ENV) as [keyof typeof ENV, string][]) {
    const raw = env(name);
    if (raw === undefined || raw === "") continue;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(raw)}`);
    }
    options[key] = value;
  }
  return options;
}
