/** Summaries of repeated measurements: percentiles of samples and median/min/max over runs. */

/** A figure measured over repeated runs: the median, with the smallest and largest run. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** The `p`-th percentile (0..100) of `samples` by the nearest-rank method; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The median (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, min and max of one figure over runs, rounded to `digits` decimals. */
export function spread(values: readonly number[], digits = 3): Spread {
  const round = (v: number) => Number(v.toFixed(digits));
  return {
    median: round(median(values)),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
    runs: values.length,
  };
}

/** Applies `spread` to every numeric key of per-run records that share their keys. */
export function spreadEach<K extends string>(
  runs: readonly Record<K, number>[],
  digits = 3,
): Record<K, Spread> {
  const out = {} as Record<K, Spread>;
  for (const key of Object.keys(runs[0] ?? {}) as K[]) out[key] = spread(runs.map((r) => r[key]), digits);
  return out;
}

/** Milliseconds elapsed while `work` runs. */
export async function timeMs(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** Bytes as MiB with two decimals. */
export function mib(bytes: number): number {
  return Number((bytes / (1024 * 1024)).toFixed(2));
}
