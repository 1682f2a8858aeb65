/**
 * A bounded soak: 2,000 publish/unpublish cycles after an 800-cycle warm-up, with provider faults drawn
 * from a seeded PRNG (error.code, UNAVAILABLE, delays, a hang past the deadline, an invalid payload), run
 * by bench/soak.ts in a child process with --expose-gc. Afterwards: no mount left, open descriptors back
 * to where they were after the warm-up, resident memory grown by less than 10 MiB.
 *
 * Why a warm-up: V8 sizes its heap to the workload in the first ~500 cycles (RSS rises by ~75 MiB, then
 * stays flat within about 1 MiB); growth is measured from the end of the warm-up, after a forced GC.
 * Why a 3-descriptor slack: a descriptor or two can be in flight at the moment of counting (a closing
 * unix socket, an fd of /proc/self/fd's own read); a leak grows with the cycles and shows as hundreds.
 * Needs root. About 30 s on 2 cores.
 */
import assert from "node:assert/strict";
import { benchSoak } from "../../bench/soak.ts";
import { requireRoot } from "../support/root.ts";

const CYCLES = 2_000;
const WARMUP = 800;
const FD_SLACK = 3;
const MAX_RSS_GROWTH_MIB = 10;

Deno.test("soak: 2,000 faulty publish/unpublish cycles leave no mount, no descriptor, no memory behind", async () => {
  requireRoot();
  const seed = Math.floor(Math.random() * 2 ** 31);
  const replay = `replay with: deno run -A --v8-flags=--expose-gc bench/soak.ts --cycles=${
    WARMUP + CYCLES
  } --warmup=${WARMUP} --seed=${seed}`;
  const result = await benchSoak(WARMUP + CYCLES, WARMUP, seed);
  const where = `${replay}\n${JSON.stringify(result)}`;

  assert.deepEqual(result.violations, [], where);
  assert.equal(result.mounts_left, 0, where);
  assert.ok(result.gc_forced, "the soak ran without --expose-gc");
  for (const [fault, count] of Object.entries(result.faults)) {
    assert.ok(count > 0, `no ${fault} fault: ${where}`);
  }
  assert.ok(result.publishes_ok > CYCLES / 2 && result.publishes_failed > 0, where);
  assert.ok(result.fds.growth <= FD_SLACK, `descriptors grew by ${result.fds.growth}: ${where}`);
  assert.ok(
    result.growth_mib.rss_after_warmup < MAX_RSS_GROWTH_MIB,
    `RSS grew by ${result.growth_mib.rss_after_warmup} MiB after the warm-up: ${where}`,
  );
});
