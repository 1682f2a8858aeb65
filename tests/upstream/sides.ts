/**
 * One "side" of the differential suite: a driver (upstream's v1.6.0 binary, or this driver as it ships: the
 * production bundle, tests/support/program.ts) on its own CSI socket, node name, namespace and directories, with its own copies of the same
 * providers (the embedded `local` provider and the grpc-go provider stand-in, healthy and failing), all
 * talking to one API server. Steps are made through the grpc-go kubelet stand-in, as kubelet makes them.
 */
import { join } from "node:path";
import { connectCsi } from "../../lib/csi/client.ts";
import { MNT_DETACH, sysUmount2 } from "../../lib/mount/libc.ts";
import { mountsUnder } from "../../lib/mount/mountinfo.ts";
import { goPeers } from "../support/go-peers.ts";
import { driverArgs } from "../support/program.ts";
import {
  type GoProviderOptions,
  type KubeletCall,
  type KubeletOptions,
  runKubelet,
  type Server,
  startGoProvider,
  startLocalProvider,
} from "../interop/peers.ts";

const UPSTREAM_BUILD = new URL("../../tools/upstream/build.sh", import.meta.url).pathname;

export type SideName = "upstream" | "ours";

/** The providers every side gets, by socket name: what each one does. */
export const GO_PROVIDERS: Record<string, GoProviderOptions> = {
  // Answers with fixed files plus echo-*.json: exactly what the driver sent.
  echo: { files: { "db-password": "hunter2", "api/token": "t0k3n" } },
  unavailable: { grpcCode: 14, echo: false },
  denied: { errorCode: "AccessDenied", echo: false },
  // A hostile answer: a path that climbs out of the volume.
  escape: { files: { "../escape": "x" }, echo: false },
};

/** The path of upstream's binary, built (or found in the cache) by tools/upstream/build.sh. */
export async function upstreamBinary(): Promise<string> {
  const output = await new Deno.Command("bash", { args: [UPSTREAM_BUILD], stderr: "inherit" }).output();
  if (!output.success) throw new Error(`tools/upstream/build.sh failed (exit ${output.code})`);
  return new TextDecoder().decode(output.stdout).trim();
}

/** A free TCP port on 127.0.0.1 (closed again at once; the driver binds it a moment later). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A running side. */
export interface Side {
  name: SideName;
  /** The driver's process id. */
  pid: number;
  /** From spawning the driver to its first answered Probe, in ms. */
  startupMs: number;
  dir: string;
  nodeName: string;
  namespace: string;
  socket: string;
  metricsUrl: string;
  /** kubelet's target path for volume `volume` of the pod with uid `uid` (its parent is created). */
  target(uid: string, volume: string): Promise<string>;
  /** Runs one kubelet step in this side's namespace. */
  kubelet(
    step: "identity" | "publish" | "unpublish",
    options?: KubeletOptions,
  ): Promise<KubeletCall[]>;
  /** The driver's log so far. */
  log(): string;
  /** Mount points below the side's directory. */
  mounts(): Promise<string[]>;
  close(): Promise<void>;
}

export interface SideOptions {
  name: SideName;
  /** kubeconfig the driver uses. */
  kubeconfig: string;
  /** Files the `local` provider serves (relative path → contents). */
  localFiles: Record<string, string>;
  /** Also start the grpc-go providers of GO_PROVIDERS (default true; the bench needs only `local`). */
  goProviders?: boolean;
}

/** Starts a side's providers and driver. */
export async function startSide(options: SideOptions): Promise<Side> {
  const { name } = options;
  const dir = await Deno.makeTempDir({ prefix: `sscsi-diff-${name}-` });
  const providerDir = join(dir, "providers");
  const root = join(dir, "local-root");
  await Deno.mkdir(providerDir);
  await Deno.mkdir(root);
  for (const [path, contents] of Object.entries(options.localFiles)) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), contents);
  }
  const servers: Server[] = [];
  let driver: Deno.ChildProcess | undefined;
  let log = "";
  let logging: Promise<void> | undefined;
  const close = async () => {
    if (driver) {
      try {
        driver.kill("SIGTERM");
      } catch { /* exited */ }
      await driver.status;
      await logging;
    }
    for (const server of servers.reverse()) await server.stop();
    // SSCSI_DIFF_LOGS=DIR keeps each driver's whole log as DIR/<side>.log.
    const keep = Deno.env.get("SSCSI_DIFF_LOGS");
    if (keep) await Deno.writeTextFile(join(keep, `${name}.log`), log);
    for (const mount of (await mountsUnder(dir)).reverse()) sysUmount2(mount.mountPoint, MNT_DETACH);
    await Deno.remove(dir, { recursive: true });
  };
  const socket = join(dir, "plugins", "csi.sock");
  const nodeName = `node-${name}`;
  const port = freePort();
  try {
    servers.push(await startLocalProvider(providerDir, root));
    if (options.goProviders !== false) {
      const { provider: goProvider } = await goPeers();
      for (const [socketName, providerOptions] of Object.entries(GO_PROVIDERS)) {
        servers.push(
          await startGoProvider(goProvider, join(providerDir, `${socketName}.sock`), providerOptions),
        );
      }
    }
    await Deno.mkdir(join(dir, "plugins"));
    const args = [
      "--endpoint",
      `unix://${socket}`,
      "--nodeid",
      nodeName,
      "--provider-volume",
      providerDir,
      "--additional-provider-volume-paths=",
      `--metrics-addr=127.0.0.1:${port}`,
      "--kubeconfig",
      options.kubeconfig,
      "-v=2",
    ];
    const command = name === "upstream"
      ? new Deno.Command(await upstreamBinary(), { args, stdin: "null", stdout: "null", stderr: "piped" })
      : new Deno.Command(Deno.execPath(), {
        // Kubelet's root is this side's directory (upstream has no such flag: it mounts wherever it is told).
        args: driverArgs(["node", ...args, `--kubelet-root-dir=${dir}`]),
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      });
    const spawned = performance.now();
    driver = command.spawn();
    logging = (async () => {
      for await (const chunk of driver!.stderr.pipeThrough(new TextDecoderStream())) log += chunk;
    })();
    await waitForProbe(socket, driver, () => log);
    const startupMs = performance.now() - spawned;
    const side: Side = {
      name,
      pid: driver.pid,
      startupMs,
      dir,
      nodeName,
      namespace: `diff-${name}`,
      socket,
      metricsUrl: `http://127.0.0.1:${port}/metrics`,
      async target(uid, volume) {
        const volumeDir = join(dir, "pods", uid, "volumes", "kubernetes.io~csi", volume);
        await Deno.mkdir(volumeDir, { recursive: true });
        return join(volumeDir, "mount");
      },
      async kubelet(step, kubeletOptions = {}) {
        const { kubelet } = await goPeers();
        const result = await runKubelet(kubelet, socket, step, {
          podNamespace: side.namespace,
          ...kubeletOptions,
        });
        if (result.exitCode === 2) throw new Error(`kubelet ${step} on ${name}: ${result.stderr}\n${log}`);
        return result.calls;
      },
      log: () => log,
      mounts: async () => (await mountsUnder(dir)).map((m) => m.mountPoint),
      close,
    };
    return side;
  } catch (err) {
    await close();
    throw new Error(`cannot start the ${name} side: ${err instanceof Error ? err.message : err}\n${log}`, {
      cause: err,
    });
  }
}

/** Waits until the driver answers Probe (upstream needs its caches first), or fails with its log. */
async function waitForProbe(socket: string, driver: Deno.ChildProcess, log: () => string): Promise<void> {
  let exited = false;
  driver.status.then(() => exited = true);
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && !exited) {
    if (await Deno.lstat(socket).then(() => true, () => false)) {
      const client = connectCsi(`unix://${socket}`);
      try {
        await client.probe();
        return;
      } catch {
        /* not serving yet */
      } finally {
        client.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(
    `the driver did not answer on ${socket}${exited ? " (it exited)" : " within 90 s"}:\n${log()}`,
  );
}
