/**
 * Bench-only child script: imports the driver's dependencies one group at a time and prints, as one JSON
 * line on stdout, the time and memory each group adds (after a full GC), ending with what a KubeConfig and
 * the API clients cost. Run with `--v8-flags=--expose-gc`.
 */
import { readProcessMemory } from "./proc.ts";

const gc = (globalThis as { gc?: () => void }).gc;

async function sample() {
  gc?.();
  const usage = Deno.memoryUsage();
  const memory = await readProcessMemory(Deno.pid);
  return { rss: memory.rss, anon: memory.anon, heapUsed: usage.heapUsed, external: usage.external };
}

const steps: { step: string; ms: number; rss: number; anon: number; heapUsed: number; external: number }[] =
  [];
let before = await sample();
steps.push({ step: "runtime (nothing imported)", ms: performance.now(), ...before });

async function step(name: string, work: () => Promise<unknown>): Promise<void> {
  const t = performance.now();
  await work();
  const ms = performance.now() - t;
  const after = await sample();
  steps.push({
    step: name,
    ms,
    rss: after.rss - before.rss,
    anon: after.anon - before.anon,
    heapUsed: after.heapUsed - before.heapUsed,
    external: after.external - before.external,
  });
  before = after;
}

// The order follows what `main.ts node` loads: the CLI, gRPC, the protos, the rest of the node command.
await step("main.ts + config + flags", () => import("../main.ts"));
await step("@grpc/grpc-js", () => import("@grpc/grpc-js"));
await step(
  "protobufjs + @grpc/proto-loader",
  () => Promise.all([import("protobufjs"), import("@grpc/proto-loader")]),
);
await step(
  "CSI proto parsed (lib/proto.ts csiServices)",
  async () => (await import("../lib/proto.ts")).csiServices(),
);
await step(
  "provider proto parsed (providerService)",
  async () => (await import("../lib/proto.ts")).providerService(),
);
await step("yaml", () => import("yaml"));
await step("lib/commands/node.ts (rest of the driver)", () => import("../lib/commands/node.ts"));
await step("@kubernetes/client-node imported", () => import("@kubernetes/client-node"));
await step("KubeConfig + CoreV1Api + CustomObjectsApi created", async () => {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "bench", server: "http://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "bench" }],
    contexts: [{ name: "bench", cluster: "bench", user: "bench" }],
    currentContext: "bench",
  });
  (globalThis as Record<string, unknown>).benchKeep = [
    kc.makeApiClient(k8s.CoreV1Api),
    kc.makeApiClient(k8s.CustomObjectsApi),
  ];
});
console.log(JSON.stringify(steps));
