/**
 * Item 1, publish latency: sequential NodePublishVolume / NodeUnpublishVolume cycles through the CSI
 * socket of a driver process, and in the same run the exec-mount baseline (baseline.ts).
 */
import { baselinePublish, baselineUnpublish } from "./baseline.ts";
import type { Driver, World } from "./fixture.ts";
import type { BenchOptions } from "./options.ts";
import { percentile, type Spread, spread, spreadEach } from "./stats.ts";

/** The tmpfs size cap the driver uses by default (16 MiB), so the baseline mounts the same. */
const TMPFS_SIZE = 16 * 1024 * 1024;
/** Pods whose targets the sequential cycles reuse (kubelet would use a fresh uid per pod). */
const POD_POOL = 16;
/** Cycles run before each measured run and thrown away (JIT, caches, channels). */
const WARMUP = 20;

/** Latencies of one sequence of cycles, in milliseconds. */
export interface CycleSamples {
  publish: number[];
  unpublish: number[];
}

/** One publish + unpublish of `pod` through `driver`; returns both latencies in ms. */
export async function publishCycle(world: World, driver: Driver, pod: string): Promise<[number, number]> {
  const t0 = performance.now();
  await driver.client.nodePublishVolume(world.publishRequest(pod));
  const t1 = performance.now();
  await driver.client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: world.target(pod) });
  return [t1 - t0, performance.now() - t1];
}

/** `cycles` sequential publish/unpublish cycles through `driver`. */
export async function driverCycles(
  world: World,
  driver: Driver,
  cycles: number,
  tag: string,
): Promise<CycleSamples> {
  const samples: CycleSamples = { publish: [], unpublish: [] };
  for (let i = 0; i < cycles; i++) {
    const [pub, unpub] = await publishCycle(world, driver, `${tag}-${i % POD_POOL}`);
    samples.publish.push(pub);
    samples.unpublish.push(unpub);
  }
  return samples;
}

async function baselineCycles(world: World, cycles: number): Promise<CycleSamples> {
  const samples: CycleSamples = { publish: [], unpublish: [] };
  for (let i = 0; i < cycles; i++) {
    const target = world.target(`baseline-${i % POD_POOL}`);
    const t0 = performance.now();
    await baselinePublish(target, TMPFS_SIZE);
    const t1 = performance.now();
    await baselineUnpublish(target);
    samples.publish.push(t1 - t0);
    samples.unpublish.push(performance.now() - t1);
  }
  return samples;
}

type Percentiles = Record<
  "publish_p50_ms" | "publish_p99_ms" | "unpublish_p50_ms" | "unpublish_p99_ms",
  number
>;

function percentiles(samples: CycleSamples): Percentiles {
  return {
    publish_p50_ms: percentile(samples.publish, 50),
    publish_p99_ms: percentile(samples.publish, 99),
    unpublish_p50_ms: percentile(samples.unpublish, 50),
    unpublish_p99_ms: percentile(samples.unpublish, 99),
  };
}

/** What item 1 reports: each figure's median, min and max over runs. */
export interface PublishResult {
  cycles_per_run: number;
  publish_p50_ms: Spread;
  publish_p99_ms: Spread;
  unpublish_p50_ms: Spread;
  unpublish_p99_ms: Spread;
  /** Our publish p50 over the baseline's publish p50, per run. */
  ratio_vs_exec_mount: Spread;
  /** Our publish+unpublish p50 over the baseline's, per run. */
  cycle_ratio_vs_exec_mount: Spread;
  baseline: {
    what: string;
    publish_p50_ms: Spread;
    publish_p99_ms: Spread;
    unpublish_p50_ms: Spread;
    unpublish_p99_ms: Spread;
  };
}

/** Runs item 1 against a running driver: per run, our cycles then the baseline's. */
export async function benchPublishLatency(
  world: World,
  driver: Driver,
  options: BenchOptions,
): Promise<PublishResult> {
  await driverCycles(world, driver, WARMUP, "warm");
  await baselineCycles(world, Math.min(WARMUP, options.publishCycles));
  const ours: Percentiles[] = [];
  const base: Percentiles[] = [];
  for (let run = 0; run < options.runs; run++) {
    ours.push(percentiles(await driverCycles(world, driver, options.publishCycles, "lat")));
    base.push(percentiles(await baselineCycles(world, options.publishCycles)));
  }
  const o = spreadEach(ours);
  const b = spreadEach(base);
  return {
    cycles_per_run: options.publishCycles,
    ...o,
    ratio_vs_exec_mount: spread(ours.map((r, i) => r.publish_p50_ms / base[i].publish_p50_ms)),
    cycle_ratio_vs_exec_mount: spread(
      ours.map((r, i) =>
        (r.publish_p50_ms + r.unpublish_p50_ms) / (base[i].publish_p50_ms + base[i].unpublish_p50_ms)
      ),
    ),
    baseline: {
      what:
        "exec mount -t tmpfs + 3 files via temp dir and rename + exec umount + rmdir, from the bench process",
      ...b,
    },
  };
}
