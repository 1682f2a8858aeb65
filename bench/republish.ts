/**
 * Item 5, republish: kubelet calls NodePublishVolume again on every mounted volume (the CSIDriver sets
 * requiresRepublish). One sequential pass over `volumes` mounted volumes: with rotation off (a no-op), and
 * with `--enable-secret-rotation --rotation-poll-interval=0s` once with unchanged content (nothing may be
 * written) and once with every file changed. "Rewritten" counts volumes whose `..data` link moved.
 */
import { join } from "node:path";
import { type Driver, pool, SPC, type World } from "./fixture.ts";
import type { BenchOptions } from "./options.ts";
import { type Spread, spreadEach } from "./stats.ts";

/** One kind of pass, over runs. */
export interface PassResult {
  total_ms: Spread;
  per_volume_ms: Spread;
  /** Volumes whose `..data` link changed, over runs. */
  volumes_rewritten: Spread;
}

/** What item 5 reports. */
export interface RepublishResult {
  volumes: number;
  rotation_off: PassResult;
  rotation: { unchanged: PassResult; changed: PassResult; flags: string[] } | { skipped: string };
}

const ROTATION_FLAGS = ["--enable-secret-rotation", "--rotation-poll-interval=0s"];

function pods(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${tag}-${i}`);
}

async function dataLinks(world: World, names: string[]): Promise<string[]> {
  return await Promise.all(names.map((pod) => Deno.readLink(join(world.target(pod), "..data"))));
}

/** One sequential republish pass; returns the time and how many volumes were rewritten. */
async function pass(world: World, driver: Driver, names: string[]) {
  const before = await dataLinks(world, names);
  const started = performance.now();
  for (const pod of names) await driver.client.nodePublishVolume(world.publishRequest(pod, SPC.rotation));
  const total = performance.now() - started;
  const after = await dataLinks(world, names);
  return {
    total_ms: total,
    per_volume_ms: total / names.length,
    volumes_rewritten: after.filter((link, i) => link !== before[i]).length,
  };
}

async function withMounted<T>(
  world: World,
  driver: Driver,
  names: string[],
  work: () => Promise<T>,
): Promise<T> {
  await pool(names, 32, (pod) => driver.client.nodePublishVolume(world.publishRequest(pod, SPC.rotation)));
  try {
    return await work();
  } finally {
    await pool(
      names,
      32,
      (pod) => driver.client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: world.target(pod) }),
    );
  }
}

async function rotationOff(world: World, options: BenchOptions) {
  const driver = await world.startDriver();
  try {
    const names = pods("republish-off", options.volumes);
    return await withMounted(world, driver, names, async () => {
      const runs = [];
      for (let run = 0; run < options.runs; run++) runs.push(await pass(world, driver, names));
      return spreadEach(runs);
    });
  } finally {
    await driver.stop();
  }
}

async function rotationOn(world: World, options: BenchOptions): Promise<RepublishResult["rotation"]> {
  let driver: Driver;
  try {
    driver = await world.startDriver({ flags: ROTATION_FLAGS });
  } catch (err) {
    return {
      skipped: `the driver does not start with ${ROTATION_FLAGS.join(" ")}: ${
        err instanceof Error ? err.message.split("\n")[0] : err
      }`,
    };
  }
  try {
    const names = pods("republish-on", options.volumes);
    return await withMounted(world, driver, names, async () => {
      const unchanged = [];
      const changed = [];
      for (let run = 0; run < options.runs; run++) {
        unchanged.push(await pass(world, driver, names));
        await world.changeRotationContent(run + 2);
        changed.push(await pass(world, driver, names));
      }
      await world.changeRotationContent(0);
      if (changed.every((r) => r.volumes_rewritten === 0)) {
        return {
          skipped: `with ${ROTATION_FLAGS.join(" ")} a republish after a content change rewrote no volume`,
        };
      }
      return { unchanged: spreadEach(unchanged), changed: spreadEach(changed), flags: ROTATION_FLAGS };
    });
  } finally {
    await driver.stop();
  }
}

/** Runs item 5. */
export async function benchRepublish(world: World, options: BenchOptions): Promise<RepublishResult> {
  return {
    volumes: options.volumes,
    rotation_off: await rotationOff(world, options),
    rotation: await rotationOn(world, options),
  };
}
