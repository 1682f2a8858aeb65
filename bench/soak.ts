/**
 * Soak: publish/unpublish cycles through the whole driver stack (CSI gRPC server, the driver's own wiring
 * of tmpfs mounter, atomic writer and provider client, a scripted gRPC provider) with provider faults
 * injected from a seeded PRNG, measuring what is left afterwards: mounts, open file descriptors, resident
 * memory and V8 heap. Memory growth is measured after a warm-up (V8 sizes its heap to the workload first)
 * and reported both ways.
 *
 *   deno run -A --v8-flags=--expose-gc bench/soak.ts [--cycles N] [--warmup N] [--seed N]
 *
 * prints one JSON document (SoakResult) on stdout. `benchSoak()` runs exactly that as a child process, for
 * bench/main.ts and the hardening test; the driver runs in the child, so GC can be forced there without
 * touching the caller. Needs root (it mounts tmpfs).
 */
import { parseArgs } from "node:util";
import { isMountPoint } from "../lib/mount/mountinfo.ts";
import { startTestDriver, type TestDriver } from "../tests/support/driver.ts";
import type { MountBehaviour } from "../tests/support/test-provider.ts";
import { GrpcStatus } from "../lib/errors.ts";
import { readProcessMemory } from "./proc.ts";

/** The faults injected into a cycle's provider call, and what the publish must then do. */
const FAULTS = {
  none: { weight: 70, publish: "succeeds" },
  delay: { weight: 10, publish: "succeeds" },
  errorCode: { weight: 6, publish: "fails" },
  invalidPayload: { weight: 6, publish: "fails" },
  // One UNAVAILABLE: the client retries when its jittered backoff fits the deadline, so either outcome.
  unavailable: { weight: 6, publish: "either" },
  pastDeadline: { weight: 2, publish: "fails" },
} as const;
type Fault = keyof typeof FAULTS;

/** Provider deadline in the soak: short, so that deadline faults cost little time, yet above what an ordinary
 * answer takes on two cores shared with the rest of the suite and a test cluster. */
const PROVIDER_TIMEOUT_MS = 600;

/** Memory after a forced GC (when --expose-gc), in MiB. */
export interface MemorySample {
  cycle: number;
  /** VmRSS. */
  rss: number;
  /** RssAnon: what the process allocated (V8 heap, malloc), without the mapped binary. */
  anon: number;
  /** V8's committed heap and the part of it in use. */
  heap_total: number;
  heap_used: number;
}

/** What the soak measured. */
export interface SoakResult {
  seed: number;
  cycles: number;
  warmup_cycles: number;
  duration_s: number;
  faults: Record<Fault, number>;
  publishes_ok: number;
  publishes_failed: number;
  /** Cycles whose outcome contradicted the injected fault, or that left a mount or a file behind. */
  violations: string[];
  mounts_left: number;
  /** Open descriptors of the process (/proc/self/fd) after the warm-up and at the end. */
  fds: { after_warmup: number; end: number; growth: number };
  /** Growth from the sample at the end of the warm-up to the last one, and from before the driver started. */
  growth_mib: {
    rss_after_warmup: number;
    anon_after_warmup: number;
    heap_used_after_warmup: number;
    rss_total: number;
  };
  /** Post-GC samples: before the driver started, every `SAMPLE_EVERY` cycles, at the end of the warm-up, at the end. */
  samples: MemorySample[];
  gc_forced: boolean;
}

/** Memory is sampled (after a forced GC) this often, which also keeps V8's heap sizing comparable. */
const SAMPLE_EVERY = 250;

/** mulberry32: a small seeded PRNG, so that a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickFault(random: () => number): Fault {
  const total = Object.values(FAULTS).reduce((sum, f) => sum + f.weight, 0);
  let at = random() * total;
  for (const [name, { weight }] of Object.entries(FAULTS)) {
    if ((at -= weight) < 0) return name as Fault;
  }
  return "none";
}

function behaviourFor(fault: Fault, random: () => number, cycle: number): MountBehaviour {
  const files = [{ path: "secret", contents: `cycle-${cycle}` }, { path: "dir/cert", contents: "c" }];
  switch (fault) {
    case "none":
      return { files };
    case "delay":
      return { files, delayMs: 1 + Math.floor(random() * 20) };
    case "errorCode":
      return { errorCode: "AccessDenied" };
    case "invalidPayload":
      return { files: [...files, { path: "../escape", contents: "x" }] };
    case "unavailable":
      return { grpcError: { code: GrpcStatus.UNAVAILABLE, message: "soak: provider restarting" } };
    case "pastDeadline":
      return { hang: true };
  }
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => Number((bytes / MIB).toFixed(2));

async function openFds(): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir("/proc/self/fd")) n++;
  return n;
}

/** Forces full GCs when the process runs with --expose-gc; false otherwise. */
function forceGc(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  gc();
  gc();
  return true;
}

/** Lets closed connections and timers finish, forces a GC and measures. */
async function sample(cycle: number): Promise<MemorySample> {
  await new Promise((r) => setTimeout(r, 100));
  forceGc();
  const process = await readProcessMemory(Deno.pid);
  const heap = Deno.memoryUsage();
  return {
    cycle,
    rss: mib(process.rss),
    anon: mib(process.anon),
    heap_total: mib(heap.heapTotal),
    heap_used: mib(heap.heapUsed),
  };
}

async function cycle(d: TestDriver, n: number, fault: Fault, random: () => number, result: SoakResult) {
  const pod = `soak-${n}`;
  const target = d.target(pod);
  // This cycle's files are also the fallback, so that a retried UNAVAILABLE gets them, not a stale answer.
  d.provider.behaviour = behaviourFor("none", random, n);
  if (fault !== "none") d.provider.queue(behaviourFor(fault, random, n));
  const published = await d.client.nodePublishVolume(d.publishRequest(pod)).then(() => true, () => false);
  if (published) result.publishes_ok++;
  else result.publishes_failed++;
  const expected = FAULTS[fault].publish;
  if ((expected === "succeeds" && !published) || (expected === "fails" && published)) {
    result.violations.push(`cycle ${n}: fault ${fault}, publish ${published ? "succeeded" : "failed"}`);
  }
  if (published && await Deno.readTextFile(`${target}/secret`) !== `cycle-${n}`) {
    result.violations.push(`cycle ${n}: the published file is not this cycle's`);
  }
  if (!published && await isMountPoint(target)) {
    result.violations.push(`cycle ${n}: a failed publish left a mount`);
  }
  await d.client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: target });
  if (await Deno.lstat(target).then(() => true, () => false)) {
    result.violations.push(`cycle ${n}: the target survived its unpublish`);
  }
}

/** Runs the soak in this process. */
export async function runSoak(cycles: number, warmup: number, seed: number): Promise<SoakResult> {
  const random = prng(seed);
  const faults = Object.fromEntries(Object.keys(FAULTS).map((f) => [f, 0])) as Record<Fault, number>;
  const started = performance.now();
  const result: SoakResult = {
    seed,
    cycles,
    warmup_cycles: warmup,
    duration_s: 0,
    faults,
    publishes_ok: 0,
    publishes_failed: 0,
    violations: [],
    mounts_left: 0,
    fds: { after_warmup: 0, end: 0, growth: 0 },
    growth_mib: { rss_after_warmup: 0, anon_after_warmup: 0, heap_used_after_warmup: 0, rss_total: 0 },
    samples: [await sample(0)],
    gc_forced: forceGc(),
  };
  const d = await startTestDriver({ provider: { timeoutMs: PROVIDER_TIMEOUT_MS } });
  let warm: MemorySample | undefined;
  try {
    for (let n = 0; n < cycles; n++) {
      if (n === warmup) {
        warm = await sample(n);
        result.samples.push(warm);
        result.fds.after_warmup = await openFds();
      } else if (n > 0 && n % SAMPLE_EVERY === 0) {
        result.samples.push(await sample(n));
      }
      // Faults only after the first cycle, so that the warm-up has connected everything.
      const fault = n === 0 ? "none" : pickFault(random);
      faults[fault]++;
      await cycle(d, n, fault, random, result);
      // The test provider records every request; the soak measures the driver, not that record.
      d.provider.mountRequests.length = 0;
    }
    const end = await sample(cycles);
    result.samples.push(end);
    result.mounts_left = (await d.mounts()).length;
    result.fds.end = await openFds();
    result.fds.growth = result.fds.end - result.fds.after_warmup;
    const from = warm ?? result.samples[0];
    result.growth_mib = {
      rss_after_warmup: mib((end.rss - from.rss) * MIB),
      anon_after_warmup: mib((end.anon - from.anon) * MIB),
      heap_used_after_warmup: mib((end.heap_used - from.heap_used) * MIB),
      rss_total: mib((end.rss - result.samples[0].rss) * MIB),
    };
  } finally {
    await d.close();
  }
  result.duration_s = Number(((performance.now() - started) / 1000).toFixed(1));
  return result;
}

/** Runs the soak in a child process with --expose-gc and returns its result. */
export async function benchSoak(cycles: number, warmup: number, seed: number): Promise<SoakResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      `--cycles=${cycles}`,
      `--warmup=${warmup}`,
      `--seed=${seed}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `the soak (seed ${seed}) exited with ${output.code}:\n${
        new TextDecoder().decode(output.stderr)
      }${text}`,
    );
  }
  return JSON.parse(text) as SoakResult;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      cycles: { type: "string", default: "20000" },
      warmup: { type: "string", default: "2000" },
      seed: { type: "string" },
    },
  });
  if (Deno.uid() !== 0) throw new Error("the soak mounts tmpfs and needs root: run it as root");
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  console.log(JSON.stringify(await runSoak(Number(values.cycles), Number(values.warmup), seed), null, 2));
}
