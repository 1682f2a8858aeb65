/**
 * The upstream column (issue #14 item 2): the same figures for upstream's v1.6.0 driver and for this one,
 * measured in one run, against the same real API server (`deno task cluster up`), with the same `local`
 * provider and the same CSI client (lib/csi/client.ts), each driver on its own node name and namespace
 * (tests/upstream/sides.ts starts them). Returns `{ ours, upstream, ratio_to_upstream }`; each ratio is
 * ours / upstream: below 1 is better for every figure except burst_publishes_per_s.
 *
 * Counts: BENCH_UPSTREAM_CYCLES sequential publish/unpublish cycles (1,000), a burst of
 * BENCH_BURST_VOLUMES (110) at BENCH_BURST_IN_FLIGHT (32), BENCH_UPSTREAM_SOAK cycles for the peak RSS
 * (2,000; the 20,000 take hours on a shared 2-core machine, where a cycle against the API server
 * takes ~0.4 s). Our driver runs as the production bundle (tests/support/program.ts), as it ships.
 *
 * `deno task bench --upstream` adds this as the report's `upstream_comparison`; `deno run -A
 * bench/upstream.ts [--quick]` runs it alone.
 */
import { connectCsi, type CsiClient, kubeletPublishRequest } from "../lib/csi/client.ts";
import { type Api, startApi } from "../tests/upstream/api.ts";
import { type Side, type SideName, startSide } from "../tests/upstream/sides.ts";
import { readProcessMemory } from "./proc.ts";
import { percentile } from "./stats.ts";

/** How much work the comparison does. */
export interface UpstreamBenchOptions {
  cycles: number;
  burstVolumes: number;
  burstInFlight: number;
  soakCycles: number;
}

/** The figures of one driver. */
export interface DriverFigures {
  startup_to_first_probe_ms: number;
  publish_p50_ms: number;
  publish_p99_ms: number;
  unpublish_p50_ms: number;
  burst_publishes_per_s: number;
  burst_publish_p99_ms: number;
  rss_idle_mib: number;
  rss_at_burst_mib: number;
  rss_peak_mib: number;
  cpu_s_per_1000_publishes: number;
}

const SPC = "bench-local";
const POOL = 16;
const LOCAL_FILES = {
  "db/username": "admin".padEnd(512, "."),
  "db/password": "s3cr3t".padEnd(1536, "."),
  "api-token": "t0k3n".padEnd(2048, "."),
};
const OBJECTS = '- objectName: db/username\n- objectName: db/password\n  mode: "0400"\n' +
  "- objectName: api-token\n  objectAlias: token\n";

export function upstreamBenchOptions(
  quick: boolean,
  env: (name: string) => string | undefined,
): UpstreamBenchOptions {
  const count = (name: string, full: number, small: number) => Number(env(name) ?? (quick ? small : full));
  return {
    cycles: count("BENCH_UPSTREAM_CYCLES", 1000, 10),
    burstVolumes: count("BENCH_BURST_VOLUMES", 110, 8),
    burstInFlight: count("BENCH_BURST_IN_FLIGHT", 32, 4),
    soakCycles: count("BENCH_UPSTREAM_SOAK", 2_000, 20),
  };
}

const mib = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(1));
const ms = (value: number) => Number(value.toFixed(2));

/** CPU seconds (user + system) the process has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of stat(5), counted from the state field (3).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Pods the driver publishes for, with their uids. */
async function createPods(api: Api, side: Side, count: number): Promise<string[]> {
  const ns = side.namespace;
  await api.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  const pods = Array.from({ length: count }, (_, i) => `bench-${i}`);
  await api.apply(
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: ns } },
    {
      apiVersion: "secrets-store.csi.x-k8s.io/v1",
      kind: "SecretProviderClass",
      metadata: { name: SPC, namespace: ns },
      spec: { provider: "local", parameters: { objects: OBJECTS } },
    },
    ...pods.map((name) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: ns, uid: `uid-${name}-${ns}` },
      spec: {
        nodeName: side.nodeName,
        automountServiceAccountToken: false,
        containers: [{ name: "app", image: "registry.invalid/app:1" }],
        volumes: [{
          name: "secrets",
          csi: {
            driver: "secrets-store.csi.k8s.io",
            readOnly: true,
            volumeAttributes: { secretProviderClass: SPC },
          },
        }],
      },
    })),
  );
  const uids = new Map<string, string>();
  for (const pod of await api.list("pods", ns)) {
    const meta = pod.metadata as { name: string; uid: string };
    uids.set(meta.name, meta.uid);
  }
  return pods.map((pod) => uids.get(pod)!);
}

interface Volume {
  pod: string;
  uid: string;
  target: string;
}

async function volumesOf(side: Side, uids: string[]): Promise<Volume[]> {
  return await Promise.all(
    uids.map(async (uid, i) => ({ pod: `bench-${i}`, uid, target: await side.target(uid, "secrets") })),
  );
}

function publish(client: CsiClient, side: Side, v: Volume) {
  return client.nodePublishVolume(kubeletPublishRequest({
    pod: v.pod,
    namespace: side.namespace,
    podUid: v.uid,
    targetPath: v.target,
    spc: SPC,
  }));
}

const unpublish = (client: CsiClient, v: Volume) =>
  client.nodeUnpublishVolume({ volume_id: `csi-${v.pod}`, target_path: v.target });

async function measure(api: Api, name: SideName, options: UpstreamBenchOptions): Promise<DriverFigures> {
  const side = await startSide({
    name,
    kubeconfig: api.kubeconfig(name),
    localFiles: LOCAL_FILES,
    goProviders: false,
  });
  const client = connectCsi(`unix://${side.socket}`);
  try {
    const volumes = await volumesOf(side, await createPods(api, side, Math.max(POOL, options.burstVolumes)));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const idle = await readProcessMemory(side.pid);
    // Warm-up (channels, caches, JIT), not measured.
    for (const v of volumes.slice(0, POOL)) {
      await publish(client, side, v);
      await unpublish(client, v);
    }
    const publishMs: number[] = [];
    const unpublishMs: number[] = [];
    const cpuBefore = await cpuSeconds(side.pid);
    for (let i = 0; i < options.cycles; i++) {
      const v = volumes[i % POOL];
      const t0 = performance.now();
      await publish(client, side, v);
      const t1 = performance.now();
      await unpublish(client, v);
      publishMs.push(t1 - t0);
      unpublishMs.push(performance.now() - t1);
    }
    const cpu = await cpuSeconds(side.pid) - cpuBefore;

    const burst = volumes.slice(0, options.burstVolumes);
    const burstMs: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: options.burstInFlight }, async () => {
      while (next < burst.length) {
        const v = burst[next++];
        const t0 = performance.now();
        await publish(client, side, v);
        burstMs.push(performance.now() - t0);
      }
    }));
    const burstSeconds = (performance.now() - started) / 1000;
    const atBurst = await readProcessMemory(side.pid);
    for (const v of burst) await unpublish(client, v);

    for (let i = 0; i < options.soakCycles; i++) {
      const v = volumes[i % POOL];
      await publish(client, side, v);
      await unpublish(client, v);
    }
    const peak = await readProcessMemory(side.pid);
    return {
      startup_to_first_probe_ms: ms(side.startupMs),
      publish_p50_ms: ms(percentile(publishMs, 50)),
      publish_p99_ms: ms(percentile(publishMs, 99)),
      unpublish_p50_ms: ms(percentile(unpublishMs, 50)),
      burst_publishes_per_s: Number((burst.length / burstSeconds).toFixed(1)),
      burst_publish_p99_ms: ms(percentile(burstMs, 99)),
      rss_idle_mib: mib(idle.rss),
      rss_at_burst_mib: mib(atBurst.rss),
      rss_peak_mib: mib(peak.peak),
      cpu_s_per_1000_publishes: Number((cpu / options.cycles * 1000).toFixed(3)),
    };
  } finally {
    client.close();
    await side.close();
  }
}

/** Both drivers' figures and ours / upstream for each. */
export async function benchUpstream(options: UpstreamBenchOptions): Promise<{
  ours: DriverFigures;
  upstream: DriverFigures;
  ratio_to_upstream: Record<keyof DriverFigures, number>;
}> {
  const api = await startApi();
  try {
    const upstream = await measure(api, "upstream", options);
    const ours = await measure(api, "ours", options);
    const ratio = Object.fromEntries(
      (Object.keys(ours) as (keyof DriverFigures)[]).map((
        k,
      ) => [k, Number((ours[k] / upstream[k]).toFixed(3))]),
    ) as Record<keyof DriverFigures, number>;
    return { ours, upstream, ratio_to_upstream: ratio };
  } finally {
    await api.close();
  }
}

if (import.meta.main) {
  const options = upstreamBenchOptions(Deno.args.includes("--quick"), (name) => Deno.env.get(name));
  console.log(JSON.stringify(await benchUpstream(options), null, 2));
}
