/**
 * Item 2, burst throughput: the volumes of `burstVolumes` pods published at once with `burstInFlight`
 * calls in flight (kubelet starting a node full of pods), then all unpublished the same way.
 */
import { type Driver, pool, type World } from "./fixture.ts";
import type { BenchOptions } from "./options.ts";
import { percentile, type Spread, spreadEach } from "./stats.ts";

/** What item 2 reports, each over runs. */
export interface BurstResult {
  volumes: number;
  in_flight: number;
  publishes_per_s: Spread;
  publish_p50_ms: Spread;
  publish_p99_ms: Spread;
  publish_wall_ms: Spread;
  unpublishes_per_s: Spread;
  unpublish_p99_ms: Spread;
}

async function timedAll(items: string[], limit: number, call: (pod: string) => Promise<unknown>) {
  const started = performance.now();
  const latencies = await pool(items, limit, async (pod) => {
    const t = performance.now();
    await call(pod);
    return performance.now() - t;
  });
  return { wall: performance.now() - started, latencies };
}

/** Runs `options.runs` bursts against a running driver. */
export async function benchBurst(world: World, driver: Driver, options: BenchOptions): Promise<BurstResult> {
  const runs = [];
  for (let run = 0; run < options.runs; run++) {
    const pods = Array.from({ length: options.burstVolumes }, (_, i) => `burst-${run}-${i}`);
    const pub = await timedAll(
      pods,
      options.burstInFlight,
      (pod) => driver.client.nodePublishVolume(world.publishRequest(pod)),
    );
    const unpub = await timedAll(
      pods,
      options.burstInFlight,
      (pod) => driver.client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: world.target(pod) }),
    );
    runs.push({
      publishes_per_s: pods.length / (pub.wall / 1000),
      publish_p50_ms: percentile(pub.latencies, 50),
      publish_p99_ms: percentile(pub.latencies, 99),
      publish_wall_ms: pub.wall,
      unpublishes_per_s: pods.length / (unpub.wall / 1000),
      unpublish_p99_ms: percentile(unpub.latencies, 99),
    });
  }
  return { volumes: options.burstVolumes, in_flight: options.burstInFlight, ...spreadEach(runs, 2) };
}
