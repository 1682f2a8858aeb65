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

/** The figures the issue sets targets for. */
export interface Targeted {
  publish: PublishResult;
  burst: BurstResult;
  memory: MemoryResult;
  startup: StartupResult;
}

/** Checks each target of the issue against the medians of `r`. */
export function checkTargets(r: Targeted): TargetCheck[] {
  const at = (figure: string, target: string, value: number, met: (v: number) => boolean): TargetCheck => ({
    figure,
    target,
    value,
    met: met(value),
  });
  return [
    at("publish_p50_ms", "<= 1 ms", r.publish.publish_p50_ms.median, (v) => v <= 1),
    at("publish_p99_ms", "<= 5 ms", r.publish.publish_p99_ms.median, (v) => v <= 5),
    at("ratio_vs_exec_mount", "<= 0.5", r.publish.ratio_vs_exec_mount.median, (v) => v <= 0.5),
    at("burst publishes_per_s", ">= 500", r.burst.publishes_per_s.median, (v) => v >= 500),
    at(
      `kubernetes_client mounted_rss_mib (${r.memory.kubernetes_client.mounted_volumes} mounts)`,
      "<= 64 MiB",
      r.memory.kubernetes_client.mounted_rss_mib.median,
      (v) => v <= 64,
    ),
    at("standalone cycles growth_mib", "< 5 MiB", r.memory.standalone.cycles.growth_mib, (v) => v < 5),
    at(
      "kubernetes_client cycles growth_mib",
      "< 5 MiB",
      r.memory.kubernetes_client.cycles.growth_mib,
      (v) => v < 5,
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
