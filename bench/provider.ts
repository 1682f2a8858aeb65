/**
 * Item 6, the provider client: sequential Mount round trips from the driver's ProviderClient (in the bench
 * process) to the embedded `local` provider process, for responses of 64 KiB up to 3.75 MiB (under the
 * default 4 MiB receive limit). Linear cost shows as a flat ms-per-MiB column.
 */
import { silentLogger } from "../lib/log.ts";
import { DEFAULT_MAX_RECV_BYTES } from "../lib/config.ts";
import { ProviderClient } from "../lib/provider/client.ts";
import { LARGE_SIZES, type World } from "./fixture.ts";
import type { BenchOptions } from "./options.ts";
import { percentile, type Spread, spread } from "./stats.ts";

/** One response size. */
export interface SizeResult {
  response_bytes: number;
  round_trips_per_s: Spread;
  p50_ms: Spread;
  ms_per_mib: Spread;
}

/** What item 6 reports. */
export interface ProviderResult {
  calls_per_size: number;
  max_recv_bytes: number;
  sizes: SizeResult[];
  /** Round trips per second with 1 MiB responses (median over runs). */
  mount_round_trips_per_s_1mib: number;
  /** ms per MiB at the largest size over ms per MiB at 1 MiB: about 1 when the path is linear. */
  largest_vs_1mib_ms_per_mib: number;
}

function request(size: number) {
  return {
    attributes: JSON.stringify({ objects: `- objectName: large/${size}\n  objectAlias: blob` }),
    secrets: "{}",
    targetPath: "/bench/provider",
    permission: "420",
    currentObjectVersion: [],
  };
}

/** Runs item 6. */
export async function benchProvider(world: World, options: BenchOptions): Promise<ProviderResult> {
  await world.ensureProvider();
  const client = new ProviderClient({ dirs: [world.providerDir], driverVersion: "bench", log: silentLogger });
  const ctx = { pod: "bench", namespace: "default", timeoutMs: 30_000 };
  const sizes: SizeResult[] = [];
  try {
    for (const size of LARGE_SIZES) {
      for (let i = 0; i < 3; i++) await client.mount("local", request(size), ctx); // warm-up
      const runs = [];
      for (let run = 0; run < options.runs; run++) {
        const samples = [];
        const started = performance.now();
        for (let i = 0; i < options.providerCalls; i++) {
          const t = performance.now();
          const response = await client.mount("local", request(size), ctx);
          samples.push(performance.now() - t);
          if (response.files[0]?.contents.byteLength !== size) throw new Error(`expected ${size} bytes back`);
        }
        const wall = performance.now() - started;
        const p50 = percentile(samples, 50);
        runs.push({ rps: options.providerCalls / (wall / 1000), p50, perMib: p50 / (size / (1024 * 1024)) });
      }
      sizes.push({
        response_bytes: size,
        round_trips_per_s: spread(runs.map((r) => r.rps), 1),
        p50_ms: spread(runs.map((r) => r.p50)),
        ms_per_mib: spread(runs.map((r) => r.perMib)),
      });
    }
  } finally {
    client.close();
    await world.ensureProvider();
  }
  const oneMib = sizes.find((s) => s.response_bytes === 1024 * 1024)!;
  return {
    calls_per_size: options.providerCalls,
    max_recv_bytes: DEFAULT_MAX_RECV_BYTES,
    sizes,
    mount_round_trips_per_s_1mib: oneMib.round_trips_per_s.median,
    largest_vs_1mib_ms_per_mib: Number(
      (sizes[sizes.length - 1].ms_per_mib.median / oneMib.ms_per_mib.median).toFixed(2),
    ),
  };
}
