/** The targets of the benchmark issue, checked against a result (reported, never asserted), and the table. */
import type { BurstResult } from "./burst.ts";
import type { MemoryResult } from "./memory.ts";
import type { PublishResult } from "./publish.ts";
import type { Spread } from "./stats.ts";
import type { StartupResult } from "./startup.ts";

/** One target of the issue and whether the median met it. */
export interface TargetCheck {
  figure: string;
  target: string;
  value: number;
  met: boolean;
}

/** The figures the issues set targets for. */
export interface Targeted {
  publish: PublishResult;
  burst: BurstResult;
  /** The same through `deno run -A main.ts`, for the "no worse than main.ts" targets. */
  publishMainTs: PublishResult;
  burstMainTs: BurstResult;
  memory: MemoryResult;
  startup: StartupResult;
}

/** Checks each target against the medians of `r`. */
export function checkTargets(r: Targeted): TargetCheck[] {
  const at = (figure: string, target: string, value: number, met: (v: number) => boolean): TargetCheck => ({
    figure,
    target,
    value: Number(value.toFixed(3)),
    met: met(value),
  });
  const m = r.memory;
  const cluster = m.artifact.cluster;
  const bare = m.cluster_size.find((s) => s.spcs === 0);
  const largest = m.cluster_size.at(-1);
  return [
    at("publish_p50_ms", "<= 1 ms", r.publish.publish_p50_ms.median, (v) => v <= 1),
    at("publish_p99_ms", "<= 5 ms", r.publish.publish_p99_ms.median, (v) => v <= 5),
    at("ratio_vs_exec_mount", "<= 0.5", r.publish.ratio_vs_exec_mount.median, (v) => v <= 0.5),
    at("burst publishes_per_s", ">= 500", r.burst.publishes_per_s.median, (v) => v >= 500),
    at(
      "publish p50, artifact / main.ts",
      "<= 1.1",
      r.publish.publish_p50_ms.median / r.publishMainTs.publish_p50_ms.median,
      (v) => v <= 1.1,
    ),
    at(
      "burst publishes/s, artifact / main.ts",
      ">= 0.9",
      r.burst.publishes_per_s.median / r.burstMainTs.publishes_per_s.median,
      (v) => v >= 0.9,
    ),
    at("artifact cluster idle_rss_mib", "<= 64 MiB", cluster.idle_rss_mib.median, (v) => v <= 64),
    at(
      `artifact cluster mounted_rss_mib (${cluster.mounted_volumes} mounts)`,
      "<= 80 MiB",
      cluster.mounted_rss_mib.median,
      (v) => v <= 80,
    ),
    at(
      `artifact standalone peak_rss_mib over ${m.artifact.standalone.cycles.count} cycles`,
      "<= 100 MiB",
      m.artifact.standalone.cycles.peak_rss_mib,
      (v) => v <= 100,
    ),
    at(
      `artifact cluster peak_rss_mib over ${cluster.cycles.count} cycles`,
      "<= 100 MiB",
      cluster.cycles.peak_rss_mib,
      (v) => v <= 100,
    ),
    at(
      `cgroup run at ${m.cgroup.limit_mib} MiB: ${m.cgroup.cycles} cycles survived (1 = yes)`,
      "= 1",
      m.cgroup.survived ? 1 : 0,
      (v) => v === 1,
    ),
    at(
      `cluster with ${largest?.spcs} SPCs and ${largest?.mounted_volumes} SPCPS over idle without (MiB)`,
      "<= 20 MiB",
      (largest?.mounted_rss_mib ?? NaN) - (bare?.idle_rss_mib ?? NaN),
      (v) => v <= 20,
    ),
    at("startup to_probe_ms", "<= 250 ms", r.startup.to_probe_ms.median, (v) => v <= 250),
  ];
}

function cell(s: Spread | number): string {
  return typeof s === "number" ? String(s) : `${s.median} [${s.min}..${s.max}]`;
}

/** A short table for stderr: the main figures as median [min..max], then the targets. */
export function table(rows: [string, Spread | number][], targets: TargetCheck[]): string {
  const width = Math.max(...rows.map(([name]) => name.length), ...targets.map((t) => t.figure.length));
  const lines = rows.map(([name, value]) => `${name.padEnd(width)}  ${cell(value)}`);
  lines.push("", "targets:");
  for (const t of targets) {
    lines.push(
      `${t.figure.padEnd(width)}  ${String(t.value).padStart(9)}  ${t.target.padEnd(10)} ${
        t.met ? "met" : "MISSED"
      }`,
    );
  }
  return lines.join("\n");
}
