/**
 * Where the milliseconds of one publish and one unpublish go. The driver's own wiring (wireVolumes and
 * startCsiServer, as `main.ts node` builds them) runs in the bench process with performance.now() marks
 * around each collaborator the use case calls; the `local` provider stays a separate process. Steps inside
 * a collaborator (mountinfo read and parse, the raw syscalls, the provider's own work) are timed alone.
 *
 * Everything shares one event loop here (client, driver), so the totals are a little above the
 * driver-process figures of item 1; the split between stages is what this is for.
 */
import { join } from "node:path";
import { wireVolumes } from "../lib/commands/wiring.ts";
import { connectCsi } from "../lib/csi/client.ts";
import { startCsiServer } from "../lib/csi/server.ts";
import { createLogger, type Logger, silentLogger } from "../lib/log.ts";
import { MS_NODEV, MS_NOSUID, sysMount, sysUmount2, UMOUNT_NOFOLLOW } from "../lib/mount/libc.ts";
import { isMountPoint, parseMountinfo, readMountinfo } from "../lib/mount/mountinfo.ts";
import { DEFAULT_TMPFS_SIZE_BYTES } from "../lib/mount/tmpfs.ts";
import { DEFAULT_MAX_RECV_BYTES } from "../lib/config.ts";
import { localProvider } from "../lib/provider/local.ts";
import { SpcDirectory } from "../lib/spc/files.ts";
import type { ProviderFile } from "../lib/volume/ports.ts";
import { SPC, World } from "./fixture.ts";
import type { BenchOptions } from "./options.ts";
import { percentile } from "./stats.ts";

/** Time spent per stage during the current cycle. */
class Marks {
  #current = new Map<string, number>();

  add(stage: string, ms: number): void {
    this.#current.set(stage, (this.#current.get(stage) ?? 0) + ms);
  }

  async time<T>(stage: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.add(stage, performance.now() - started);
    }
  }

  /** The stages of the cycle that just ended; starts a new one. */
  take(): Map<string, number> {
    const out = this.#current;
    this.#current = new Map();
    return out;
  }
}

/** A logger that writes klog lines to /dev/null (as the driver writes to stderr) and times each call. */
function timedLogger(marks: Marks, sink: Deno.FsFile): Logger {
  const encoder = new TextEncoder();
  const wrap = (inner: Logger): Logger => ({
    info: (msg, fields, v) => {
      const t = performance.now();
      inner.info(msg, fields, v);
      marks.add("log", performance.now() - t);
    },
    warn: (msg, fields) => inner.warn(msg, fields),
    error: (msg, fields) => inner.error(msg, fields),
    with: (fields) => wrap(inner.with(fields)),
  });
  return wrap(
    createLogger({ json: false, verbosity: 0, sink: (line) => sink.writeSync(encoder.encode(line + "\n")) }),
  );
}

/** Median of each stage over cycles, in ms (3 decimals). */
function medians(cycles: Map<string, number>[]): Record<string, number> {
  const stages = new Set(cycles.flatMap((c) => [...c.keys()]));
  const out: Record<string, number> = {};
  for (const stage of stages) {
    out[stage] = Number(percentile(cycles.map((c) => c.get(stage) ?? 0), 50).toFixed(3));
  }
  return out;
}

/** Median ms of `work` over `n` calls. */
async function medianOf(n: number, work: () => unknown): Promise<number> {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await work();
    samples.push(performance.now() - t);
  }
  return Number(percentile(samples, 50).toFixed(3));
}

/** What the stage breakdown reports (median ms per cycle; derived stages named as such). */
export interface StageResult {
  cycles: number;
  publish: Record<string, number>;
  unpublish: Record<string, number>;
  /** Steps inside the collaborators, timed alone (median ms per call). */
  steps: Record<string, number>;
}

/** Runs `options.stageCycles` instrumented cycles and the step microbenchmarks. */
export async function benchStages(world: World, options: BenchOptions): Promise<StageResult> {
  await world.ensureProvider();
  const marks = new Marks();
  const devNull = await Deno.open("/dev/null", { write: true });
  const log = timedLogger(marks, devNull);
  const wired = wireVolumes(
    {
      dirs: [world.providerDir],
      maxRecvBytes: DEFAULT_MAX_RECV_BYTES,
      timeoutMs: 30_000,
      tmpfsSizeBytes: DEFAULT_TMPFS_SIZE_BYTES,
      kubeletRootDir: world.dir,
    },
    timedSpcs(new SpcDirectory(world.spcDir), marks),
    log,
  );
  instrument(wired, marks);
  const volumes = {
    publish: (r: Parameters<typeof wired.volumes.publish>[0]) =>
      marks.time("handler", () => wired.volumes.publish(r)),
    unpublish: (id: string, target: string) =>
      marks.time("handler", () => wired.volumes.unpublish(id, target)),
  };
  const endpoint = `unix://${join(world.dir, "stages.sock")}`;
  const server = await startCsiServer({
    endpoint,
    driverName: "secrets-store.csi.k8s.io",
    version: "bench",
    nodeId: "bench",
    volumes,
    log,
  });
  const client = connectCsi(endpoint);
  const publishes: Map<string, number>[] = [];
  const unpublishes: Map<string, number>[] = [];
  try {
    for (let i = -20; i < options.stageCycles; i++) {
      const pod = `stages-${(i + 20) % 16}`;
      const t0 = performance.now();
      await client.nodePublishVolume(world.publishRequest(pod));
      const t1 = performance.now();
      marks.add("total", t1 - t0);
      const pub = marks.take();
      await client.nodeUnpublishVolume({ volume_id: `csi-${pod}`, target_path: world.target(pod) });
      marks.add("total", performance.now() - t1);
      const unpub = marks.take();
      if (i >= 0) {
        publishes.push(derivePublish(pub));
        unpublishes.push(deriveUnpublish(unpub));
      }
    }
  } finally {
    client.close();
    await server.shutdown(1_000);
    wired.providers.close();
    devNull.close();
    await world.ensureProvider();
  }
  return {
    cycles: options.stageCycles,
    publish: medians(publishes),
    unpublish: medians(unpublishes),
    steps: await stepCosts(world, Math.max(20, options.stageCycles)),
  };
}

function timedSpcs(inner: SpcDirectory, marks: Marks): SpcDirectory {
  const get = inner.get.bind(inner);
  inner.get = (namespace, name) => marks.time("spc_lookup", () => get(namespace, name));
  return inner;
}

/** Wraps the wired collaborators' methods in place, so the VolumeManager calls the timed versions. */
function instrument(wired: ReturnType<typeof wireVolumes>, marks: Marks): void {
  const { mounter, providers, writer } = wired;
  const open = mounter.open.bind(mounter);
  const mounted = mounter.mounted.bind(mounter);
  const mount = mounter.mount.bind(mounter);
  const verify = mounter.verify.bind(mounter);
  const unmount = mounter.unmount.bind(mounter);
  mounter.open = (p, o) => marks.time("target_open", () => open(p, o));
  mounter.mounted = (t) => marks.time("is_mount_point", () => mounted(t));
  mounter.mount = (t) => marks.time("mount_total", () => mount(t));
  mounter.verify = (t, r) => marks.time("verify", () => verify(t, r));
  mounter.unmount = (t) => marks.time("unmount_total", () => unmount(t));
  const call = providers.mount.bind(providers);
  providers.mount = (p, r, c) => marks.time("provider_call", () => call(p, r, c));
  const write = writer.write.bind(writer);
  writer.write = (d, f: ProviderFile[]) => marks.time("atomic_write", () => write(d, f));
}

const get = (m: Map<string, number>, k: string) => m.get(k) ?? 0;

function derivePublish(m: Map<string, number>): Map<string, number> {
  const handler = get(m, "handler");
  const mountTotal = get(m, "mount_total");
  const out = new Map<string, number>([
    ["total", get(m, "total")],
    ["grpc_and_csi_layer", get(m, "total") - handler],
    ["handler", handler],
    ["spc_lookup", get(m, "spc_lookup")],
    ["target_open", get(m, "target_open")],
    ["is_mount_point", get(m, "is_mount_point")],
    ["mount_total", mountTotal],
    ["provider_call", get(m, "provider_call")],
    ["atomic_write", get(m, "atomic_write")],
    ["verify", get(m, "verify")],
    ["log", get(m, "log")],
  ]);
  const named = [
    "spc_lookup",
    "target_open",
    "is_mount_point",
    "mount_total",
    "provider_call",
    "atomic_write",
    "verify",
    "log",
  ];
  out.set("other(checks, lock, close)", handler - named.reduce((s, k) => s + get(m, k), 0));
  return out;
}

function deriveUnpublish(m: Map<string, number>): Map<string, number> {
  const handler = get(m, "handler");
  const unmountTotal = get(m, "unmount_total");
  return new Map([
    ["total", get(m, "total")],
    ["grpc_and_csi_layer", get(m, "total") - handler],
    ["handler", handler],
    ["unmount_total", unmountTotal],
    ["unmount.is_mount_point", get(m, "is_mount_point")],
    ["unmount.umount2", unmountTotal - get(m, "is_mount_point")],
    ["log", get(m, "log")],
    ["rmdir_and_other", handler - unmountTotal - get(m, "log")],
  ]);
}

/** Steps inside the collaborators, each timed alone, with as many mounts as during the cycles. */
async function stepCosts(world: World, n: number): Promise<Record<string, number>> {
  const dir = await Deno.makeTempDir({ dir: world.dir, prefix: "steps-" });
  const text = await Deno.readTextFile("/proc/self/mountinfo");
  const steps: Record<string, number> = {
    mountinfo_lines: text.split("\n").filter((l) => l !== "").length,
    mountinfo_read: await medianOf(n, () => Deno.readTextFile("/proc/self/mountinfo")),
    mountinfo_parse: await medianOf(n, () => parseMountinfo(text)),
    read_mountinfo: await medianOf(n, () => readMountinfo()),
    is_mount_point: await medianOf(n, () => isMountPoint(dir)),
    lstat_and_realpath: await medianOf(n, async () => {
      await Deno.lstat(dir);
      await Deno.realPath(world.dir);
    }),
  };
  const mountUmount = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    sysMount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=16777216,mode=0755");
    const t1 = performance.now();
    sysUmount2(dir, UMOUNT_NOFOLLOW);
    mountUmount.push([t1 - t0, performance.now() - t1]);
  }
  steps.sys_mount = Number(percentile(mountUmount.map((m) => m[0]), 50).toFixed(3));
  steps.sys_umount2 = Number(percentile(mountUmount.map((m) => m[1]), 50).toFixed(3));
  steps.rmdir_mkdir = await medianOf(n, async () => {
    await Deno.mkdir(join(dir, "x"));
    await Deno.remove(join(dir, "x"));
  });
  const provider = localProvider(world.root, silentLogger);
  const request = {
    attributes: JSON.stringify({ objects: await spcObjects(world) }),
    secrets: "{}",
    target_path: dir,
    permission: "420",
    current_object_version: [],
  };
  steps.provider_work_in_process = await medianOf(
    n,
    () => provider.mount(request, new AbortController().signal),
  );
  steps.spc_lookup = await medianOf(n, () => new SpcDirectory(world.spcDir).get("default", SPC.small));
  await Deno.remove(dir);
  return steps;
}

async function spcObjects(world: World): Promise<string> {
  return (await new SpcDirectory(world.spcDir).get("default", SPC.small)).parameters.objects;
}

/** isMountPoint and readMountinfo with `extra` more tmpfs mounts present (how they scale with mounts). */
export async function mountinfoScaling(
  world: World,
  extra: number,
  n: number,
): Promise<Record<string, number>> {
  const base = await Deno.makeTempDir({ dir: world.dir, prefix: "scale-" });
  const points: string[] = [];
  try {
    for (let i = 0; i < extra; i++) {
      const point = join(base, String(i));
      await Deno.mkdir(point);
      sysMount("tmpfs", point, "tmpfs", MS_NOSUID | MS_NODEV, "size=65536");
      points.push(point);
    }
    return {
      extra_mounts: extra,
      mountinfo_lines: (await readMountinfo()).length,
      read_mountinfo: await medianOf(n, () => readMountinfo()),
      is_mount_point: await medianOf(n, () => isMountPoint(base)),
    };
  } finally {
    for (const point of points.reverse()) sysUmount2(point, UMOUNT_NOFOLLOW);
    await Deno.remove(base, { recursive: true });
  }
}
