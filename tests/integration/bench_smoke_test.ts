/**
 * `deno task bench --quick` runs every benchmark with tiny counts and prints one JSON document with every
 * figure, so the bench cannot rot. Nothing here looks at how fast anything was (tests never time).
 */
import assert from "node:assert/strict";
import { requireRoot } from "../support/root.ts";

/** Key paths every bench result has; a Spread is {median, min, max, runs}. */
const SPREADS = [
  "publish_latency.publish_p50_ms",
  "publish_latency.publish_p99_ms",
  "publish_latency.unpublish_p50_ms",
  "publish_latency.unpublish_p99_ms",
  "publish_latency.ratio_vs_exec_mount",
  "publish_latency.baseline.publish_p50_ms",
  "burst.publishes_per_s",
  "burst.publish_p99_ms",
  "publish_latency_main_ts.publish_p50_ms",
  "burst_main_ts.publishes_per_s",
  ...["artifact", "main_ts"].flatMap((program) =>
    ["standalone", "cluster"].flatMap((mode) =>
      ["idle_rss_mib", "mounted_rss_mib"].map((figure) => `memory.${program}.${mode}.${figure}`)
    )
  ),
  "startup.to_probe_ms",
  "startup.to_first_publish_ms",
  "startup.baseline_deno_empty_exit_ms",
  "republish.rotation_off.total_ms",
  "republish.rotation_off.per_volume_ms",
  "republish.rotation_off.volumes_rewritten",
];

const NUMBERS = [
  "machine.nproc",
  "publish_latency.stage_breakdown.publish.total",
  "publish_latency.stage_breakdown.publish.provider_call",
  "publish_latency.stage_breakdown.publish.atomic_write",
  "publish_latency.stage_breakdown.unpublish.total",
  "publish_latency.stage_breakdown.steps.read_mountinfo",
  ...["artifact", "main_ts"].flatMap((program) =>
    ["standalone", "cluster"].flatMap((mode) =>
      ["growth_mib", "peak_rss_mib"].map((figure) => `memory.${program}.${mode}.cycles.${figure}`)
    )
  ),
  "memory.cgroup.cgroup_peak_mib",
  "memory.cgroup.oom_kills",
  "provider_client.mount_round_trips_per_s_1mib",
  "provider_client.largest_vs_1mib_ms_per_mib",
  "soak.mounts_left",
  "soak.fds.growth",
  "soak.growth_mib.rss_after_warmup",
];

const STRINGS = ["machine.cpuModel", "machine.kernel", "machine.deno"];

function at(doc: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], doc);
}

Deno.test("bench --quick prints one JSON document with every figure", async () => {
  requireRoot();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/main.ts", "--quick"],
    cwd: new URL("../..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `bench --quick failed:\n${stderr}`);
  const doc = JSON.parse(new TextDecoder().decode(out.stdout));

  assert.equal(doc.quick, true);
  for (const path of SPREADS) {
    const spread = at(doc, path) as Record<string, unknown> | undefined;
    assert.ok(spread, `${path} is missing`);
    for (const key of ["median", "min", "max", "runs"]) {
      assert.ok(Number.isFinite(spread[key]), `${path}.${key} is not a number: ${spread[key]}`);
    }
  }
  for (const path of NUMBERS) assert.ok(Number.isFinite(at(doc, path)), `${path} is not a number`);
  for (const path of STRINGS) assert.equal(typeof at(doc, path), "string", `${path} is not a string`);

  const rotation = doc.republish.rotation;
  assert.ok(
    typeof rotation.skipped === "string" || (rotation.unchanged?.total_ms && rotation.changed?.total_ms),
    `republish.rotation is neither measured nor skipped with a reason: ${JSON.stringify(rotation)}`,
  );
  assert.ok(doc.provider_client.sizes.length > 0);
  assert.ok(doc.memory.modules.length > 0 && doc.memory.variants.results.length > 0);
  assert.ok("growth_mib" in doc.memory.heap_growth || "skipped" in doc.memory.heap_growth);
  assert.equal(doc.memory.cgroup.survived, true);
  assert.deepEqual(doc.memory.cluster_size.map((s: { spcs: number }) => s.spcs), [0, 20]);
  assert.ok(doc.publish_latency.stage_breakdown.mountinfo_scaling.length === 2);
  assert.ok(Array.isArray(doc.targets) && doc.targets.length === 13);
  for (const target of doc.targets) assert.equal(typeof target.met, "boolean");
  assert.ok(Array.isArray(doc.provider_crashes));
  assert.ok(Array.isArray(doc.soak.violations));
  assert.match(stderr, /targets:/, "the table on stderr is missing");
});
